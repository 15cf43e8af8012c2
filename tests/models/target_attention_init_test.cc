// How DIN target attention starts: with raw weights the score's bias starts at 1, so an
// untrained DIN is sum pooling (and learns which items to weigh); with softmax it starts at
// 0 (equal weights: mean pooling). From a 0 bias, raw weights would start near 0 and so
// would the output and its gradients, which cost the first epochs.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <vector>

#include "models/backend.h"
#include "models/cpu_backend.h"
#include "models/dense_parameters.h"
#include "models/target_attention.h"

namespace mtps::models {
namespace {

constexpr int kDim = 4;

// Records of 2, 0 and 3 items.
struct Batch {
  std::vector<int32_t> offsets{0, 2, 2, 5};
  SequenceShape shape{.batch = 3, .max_len = 3, .dim = kDim, .items = 5, .offsets = offsets.data()};
  std::vector<double> h, t;
  Batch() {
    std::mt19937_64 rng(3);
    std::normal_distribution<double> n(0.0, 1.0);
    for (int i = 0; i < shape.items * kDim; ++i) h.push_back(n(rng));
    for (int i = 0; i < shape.batch * kDim; ++i) t.push_back(n(rng));
  }
};

// The output of a TargetAttention whose scorer's last layer has zero weights (its bias
// alone sets every item's weight), as it starts when its input features are near 0.
std::vector<double> OutputWithBiasOnly(bool softmax, double* bias) {
  std::unique_ptr<Backend<double>> backend = MakeCpuBackend<double>(1);
  DenseParameters<double> params(backend.get());
  TargetAttention<double> din(backend.get(), &params, "din", kDim, {5}, 5, softmax);
  params.Finalize(1);
  const DenseBlock* w = params.Find("din/scorer/l1/w");
  const DenseBlock* b = params.Find("din/scorer/l1/b");
  EXPECT_NE(w, nullptr);
  EXPECT_NE(b, nullptr);
  if (w == nullptr || b == nullptr) return {};
  *bias = params.values()[b->offset];
  std::fill(params.values() + w->offset, params.values() + w->offset + w->size, 0.0);
  Batch batch;
  std::vector<double> out(batch.shape.batch * kDim, -1.0);
  din.Forward(batch.shape, batch.h.data(), {batch.t.data(), 3, kDim, kDim}, {out.data(), 3, kDim, kDim});
  return out;
}

TEST(TargetAttentionInitTest, RawWeightsStartAsSumPooling) {
  double bias = 0;
  const std::vector<double> out = OutputWithBiasOnly(/*softmax=*/false, &bias);
  ASSERT_EQ(out.size(), 3u * kDim);
  EXPECT_EQ(bias, 1.0);
  Batch batch;
  for (int d = 0; d < kDim; ++d) {
    EXPECT_NEAR(out[d], batch.h[d] + batch.h[kDim + d], 1e-12);
    EXPECT_EQ(out[kDim + d], 0.0);  // an empty record
    EXPECT_NEAR(out[2 * kDim + d], batch.h[2 * kDim + d] + batch.h[3 * kDim + d] + batch.h[4 * kDim + d], 1e-12);
  }
}

TEST(TargetAttentionInitTest, SoftmaxWeightsStartAsMeanPooling) {
  double bias = 1;
  const std::vector<double> out = OutputWithBiasOnly(/*softmax=*/true, &bias);
  ASSERT_EQ(out.size(), 3u * kDim);
  EXPECT_EQ(bias, 0.0);
  Batch batch;
  for (int d = 0; d < kDim; ++d) {
    EXPECT_NEAR(out[d], (batch.h[d] + batch.h[kDim + d]) / 2, 1e-12);
    EXPECT_NEAR(out[2 * kDim + d], (batch.h[2 * kDim + d] + batch.h[3 * kDim + d] + batch.h[4 * kDim + d]) / 3,
                1e-12);
  }
}

}  // namespace
}  // namespace mtps::models
