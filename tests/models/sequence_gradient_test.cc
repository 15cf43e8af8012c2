// Finite-difference checks, in double precision, of the behaviour-sequence layers: DIN
// target attention, the Transformer block, and the whole SequenceEncoder (DIN, BST with
// attention, BST with mean) down to the embedding rows, over padded batches with an empty
// record and duplicate items. Padding must not matter: its values get zero gradient.
#include <gtest/gtest.h>

#include <vector>

#include "models/sequence_encoder.h"
#include "models/target_attention.h"
#include "models/transformer_block.h"
#include "tests/models/gradient_check.h"

namespace mtps::models {
namespace {

using testing::Dot;
using testing::ExpectGradient;
using testing::RandomVector;

class SequenceGradientTest : public testing::GradientTest {
 protected:
  static constexpr int kDim = 4, kMaxLen = 3;
  // Lengths 2, 0, 3: an empty record and a full one.
  std::vector<int32_t> offsets_{0, 2, 2, 5};
  SequenceShape shape_{.batch = 3, .max_len = kMaxLen, .dim = kDim, .offsets = offsets_.data()};
  int batch() const { return shape_.batch; }
  int rows() const { return shape_.batch * shape_.max_len; }
  bool padded(int row) const {
    const int r = row / kMaxLen, j = row % kMaxLen;
    return j >= offsets_[r + 1] - offsets_[r];
  }
};

TEST_F(SequenceGradientTest, TargetAttentionMasksPaddingAndEmptyRecords) {
  TargetAttention<double> din(backend_.get(), &params_, "din", kDim, {5}, rows());
  FinalizeParams();
  std::vector<double> h = RandomVector(rows() * kDim, rng_);  // padding rows random too
  std::vector<double> t = RandomVector(batch() * kDim, rng_);
  std::vector<double> out(batch() * kDim), r = RandomVector(out.size(), rng_);
  MatrixView<double> tv{t.data(), batch(), kDim, kDim}, ov{out.data(), batch(), kDim, kDim};
  auto f = [&] {
    din.Forward(shape_, h.data(), tv, ov);
    return Dot(out.data(), r, r.size());
  };
  f();
  for (int c = 0; c < kDim; ++c) EXPECT_EQ(out[kDim + c], 0.0) << "the empty record";
  // Record 0: sum of score_j * h_j over its 2 items.
  const double* s = din.scores();
  EXPECT_NEAR(out[0], s[0] * h[0] + s[1] * h[kDim], 1e-14);
  std::vector<double> dh(h.size(), 0.0), dt(t.size(), 0.0);
  MatrixView<double> dtv{dt.data(), batch(), kDim, kDim};
  din.Backward(shape_, h.data(), tv, {r.data(), batch(), kDim, kDim}, dh.data(), &dtv);
  for (int row = 0; row < rows(); ++row) {
    if (!padded(row)) continue;
    for (int c = 0; c < kDim; ++c) EXPECT_EQ(dh[row * kDim + c], 0.0) << "padding row " << row;
  }
  ExpectGradient(&h, dh, f, "dh");
  ExpectGradient(&t, dt, f, "dtarget");
  ExpectParamGradients(f);
}

TEST_F(SequenceGradientTest, TransformerBlock) {
  TransformerBlock<double> block(backend_.get(), &params_, "block", kDim, /*heads=*/2,
                                 /*ffn_hidden=*/5, batch(), kMaxLen);
  FinalizeParams();
  std::vector<double> x = RandomVector(rows() * kDim, rng_);
  // The block's consumers read real positions only: so does the projection.
  std::vector<double> r = RandomVector(rows() * kDim, rng_);
  for (int row = 0; row < rows(); ++row) {
    if (padded(row)) std::fill(r.begin() + row * kDim, r.begin() + (row + 1) * kDim, 0.0);
  }
  auto f = [&] {
    block.Forward(shape_, x.data());
    return Dot(block.out(rows()).data, r, r.size());
  };
  f();
  std::vector<double> dx(x.size(), 0.0);
  block.Backward(shape_, x.data(), r.data(), dx.data());
  ExpectGradient(&x, dx, f, "dx");
  ExpectParamGradients(f);
}

struct EncoderCase {
  std::string name;
  SequenceSpec::Encoder encoder;
  SequenceSpec::BstPooling pooling;
};

class SequenceEncoderGradientTest : public SequenceGradientTest,
                                    public ::testing::WithParamInterface<EncoderCase> {};

TEST_P(SequenceEncoderGradientTest, RowTargetAndWeightGradients) {
  SequenceSpec spec{.field = "history", .target = "item", .encoder = GetParam().encoder,
                    .attention_hidden = {5}, .heads = 2, .ffn_hidden = 6,
                    .bst_pooling = GetParam().pooling};
  SequenceEncoder<double> encoder(backend_.get(), &params_, spec, kDim, kMaxLen, batch());
  FinalizeParams();
  constexpr int kRows = 4;
  std::vector<double> table = RandomVector(kRows * kDim, rng_);
  std::vector<int32_t> items{3, 1, 2, 2, 0};  // row 2 twice in record 2
  std::vector<double> t = RandomVector(batch() * kDim, rng_);
  std::vector<double> out(batch() * kDim), r = RandomVector(out.size(), rng_);
  MatrixView<double> tv{t.data(), batch(), kDim, kDim}, ov{out.data(), batch(), kDim, kDim};
  auto f = [&] {
    encoder.Forward(shape_, items.data(), table.data(), tv, ov);
    return Dot(out.data(), r, r.size());
  };
  f();
  std::vector<double> dt(t.size(), 0.0), dtable(table.size(), 0.0);
  MatrixView<double> dtv{dt.data(), batch(), kDim, kDim};
  encoder.Backward(shape_, tv, {r.data(), batch(), kDim, kDim}, &dtv);
  encoder.ScatterItemGrads(shape_, items.data(), dtable.data());
  ExpectGradient(&table, dtable, f, "row grads");
  if (GetParam().pooling == SequenceSpec::BstPooling::kAttention) {
    ExpectGradient(&t, dt, f, "dtarget");
  } else {
    for (double v : dt) EXPECT_EQ(v, 0.0) << "mean pooling does not read the target";
  }
  ExpectParamGradients(f);
}

INSTANTIATE_TEST_SUITE_P(
    Encoders, SequenceEncoderGradientTest,
    ::testing::Values(
        EncoderCase{"Din", SequenceSpec::Encoder::kDin, SequenceSpec::BstPooling::kAttention},
        EncoderCase{"BstAttention", SequenceSpec::Encoder::kBst,
                    SequenceSpec::BstPooling::kAttention},
        EncoderCase{"BstMean", SequenceSpec::Encoder::kBst, SequenceSpec::BstPooling::kMean}),
    [](const ::testing::TestParamInfo<EncoderCase>& info) { return info.param.name; });

}  // namespace
}  // namespace mtps::models
