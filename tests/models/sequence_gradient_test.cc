// Finite-difference checks, in double precision, of the behaviour-sequence layers: DIN
// target attention, the Transformer block, and the whole SequenceEncoder (DIN, BST with
// attention, BST with mean) down to the embedding rows, over packed batches with an empty
// record and duplicate items.
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
  SequenceShape shape_{.batch = 3, .max_len = kMaxLen, .dim = kDim, .items = 5,
                       .offsets = offsets_.data()};
  int batch() const { return shape_.batch; }
  int rows() const { return shape_.items; }
};

TEST_F(SequenceGradientTest, TargetAttentionPerRecordAndEmptyRecords) {
  TargetAttention<double> din(backend_.get(), &params_, "din", kDim, {5}, rows());
  FinalizeParams();
  std::vector<double> h = RandomVector(rows() * kDim, rng_);
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
  const double* s = din.weights();
  EXPECT_NEAR(out[0], s[0] * h[0] + s[1] * h[kDim], 1e-14);
  std::vector<double> dh(h.size(), 0.0), dt(t.size(), 0.0);
  MatrixView<double> dtv{dt.data(), batch(), kDim, kDim};
  din.Backward(shape_, h.data(), tv, {r.data(), batch(), kDim, kDim}, dh.data(), &dtv);
  ExpectGradient(&h, dh, f, "dh");
  ExpectGradient(&t, dt, f, "dtarget");
  ExpectParamGradients(f);
}

TEST_F(SequenceGradientTest, TransformerBlock) {
  TransformerBlock<double> block(backend_.get(), &params_, "block", kDim, /*heads=*/2,
                                 /*ffn_hidden=*/5, batch(), kMaxLen);
  FinalizeParams();
  std::vector<double> x = RandomVector(rows() * kDim, rng_);
  std::vector<double> r = RandomVector(rows() * kDim, rng_);
  auto f = [&] {
    block.Forward(shape_, x.data());
    return Dot(block.out(rows()).data, r, r.size());
  };
  f();
  // Items attend within their record only: moving record 0's items leaves record 2's out.
  std::vector<double> before(block.out(rows()).data + 2 * kDim, block.out(rows()).data + 5 * kDim);
  for (int k = 0; k < 2 * kDim; ++k) x[k] += 1.0;
  f();
  for (int k = 0; k < 3 * kDim; ++k) EXPECT_EQ(block.out(rows()).data[2 * kDim + k], before[k]);
  for (int k = 0; k < 2 * kDim; ++k) x[k] -= 1.0;
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
  bool din_positions = false;
  bool softmax = false;
};

class SequenceEncoderGradientTest : public SequenceGradientTest,
                                    public ::testing::WithParamInterface<EncoderCase> {};

TEST_P(SequenceEncoderGradientTest, RowTargetAndWeightGradients) {
  SequenceSpec spec{.field = "history", .target = "item", .encoder = GetParam().encoder,
                    .attention_hidden = {5}, .heads = 2, .ffn_hidden = 6,
                    .bst_pooling = GetParam().pooling, .din_positions = GetParam().din_positions,
                    .weights_softmax = GetParam().softmax};
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

// DIN's goods + category sequences: each item is [item row (dim 4) ⊕ its side row (dim 2)],
// attended against [target item ⊕ target side value]. The targets and outputs are column
// blocks of one wide X (ld 20), as MultiTaskModel passes them; both tables' rows, both
// targets and the weights must get the gradient of the concatenation.
TEST_P(SequenceEncoderGradientTest, SideSequenceRowTargetAndWeightGradients) {
  SequenceSpec spec{.field = "history", .target = "item", .encoder = GetParam().encoder,
                    .attention_hidden = {5}, .heads = 2, .ffn_hidden = 6,
                    .bst_pooling = GetParam().pooling, .din_positions = GetParam().din_positions,
                    .weights_softmax = GetParam().softmax,
                    .side = {{.field = "history_cats", .target = "cat"}}};
  constexpr int kSideDim = 2, kLd = 20;
  constexpr int kItemTarget = 0, kSideTarget = 4, kItemOut = 8, kSideOut = 14;
  SequenceEncoder<double> encoder(backend_.get(), &params_, spec, {kDim, kSideDim}, kMaxLen,
                                  batch());
  FinalizeParams();
  constexpr int kItemRows = 4, kSideRows = 3;
  std::vector<double> items = RandomVector(kItemRows * kDim, rng_);
  std::vector<double> sides = RandomVector(kSideRows * kSideDim, rng_);
  std::vector<int32_t> item_rows{3, 1, 2, 2, 0};  // row 2 twice in record 2
  std::vector<int32_t> side_rows{0, 1, 2, 2, 2};  // side row 2 three times
  std::vector<double> x = RandomVector(batch() * kLd, rng_);
  std::vector<double> r = RandomVector(batch() * kLd, rng_);
  auto view = [&](std::vector<double>& m, int col, int cols) {
    return MatrixView<double>{m.data() + col, batch(), cols, kLd};
  };
  std::vector<double> out_mask(batch() * kLd, 0.0);  // the loss reads the outputs only
  for (int b = 0; b < batch(); ++b) {
    for (int c = 0; c < kDim; ++c) out_mask[b * kLd + kItemOut + c] = 1.0;
    for (int c = 0; c < kSideDim; ++c) out_mask[b * kLd + kSideOut + c] = 1.0;
  }
  auto f = [&] {
    encoder.Forward(shape_, {{item_rows.data(), items.data(), view(x, kItemTarget, kDim),
                              view(x, kItemOut, kDim)},
                             {side_rows.data(), sides.data(), view(x, kSideTarget, kSideDim),
                              view(x, kSideOut, kSideDim)}});
    double sum = 0;
    for (size_t k = 0; k < x.size(); ++k) sum += out_mask[k] * x[k] * r[k];
    return sum;
  };
  f();
  for (int c = 0; c < kSideDim; ++c) {
    EXPECT_EQ(x[kLd + kSideOut + c], 0.0) << "the empty record's side output";
  }
  std::vector<double> dx(x.size(), 0.0), ditems(items.size(), 0.0), dsides(sides.size(), 0.0);
  MatrixView<double> dt_item = view(dx, kItemTarget, kDim), dt_side = view(dx, kSideTarget, kSideDim);
  encoder.Backward(shape_, {view(r, kItemOut, kDim), view(r, kSideOut, kSideDim)},
                   {&dt_item, &dt_side});
  encoder.ScatterItemGrads(shape_, {item_rows.data(), side_rows.data()},
                           {ditems.data(), dsides.data()});
  ExpectGradient(&items, ditems, f, "item row grads");
  ExpectGradient(&sides, dsides, f, "side row grads");
  // X's target columns are the inputs; perturbing an output column changes nothing (each
  // Forward overwrites it) and its dx stays 0, as do the columns nobody reads.
  if (GetParam().pooling == SequenceSpec::BstPooling::kAttention) {
    ExpectGradient(&x, dx, f, "dX (targets)");
  } else {
    for (double v : dx) EXPECT_EQ(v, 0.0) << "mean pooling does not read the target";
  }
  // A softmax is unchanged when every score moves by one amount: the scorer's last bias
  // has a true gradient of 0 (in rounding it may come out exactly 0).
  const std::string name = GetParam().encoder == SequenceSpec::Encoder::kBst ? "bst" : "din";
  ExpectParamGradients(f, GetParam().softmax ? name + "/attention/scorer/l1/b" : "");
}

INSTANTIATE_TEST_SUITE_P(
    Encoders, SequenceEncoderGradientTest,
    ::testing::Values(
        EncoderCase{"Din", SequenceSpec::Encoder::kDin, SequenceSpec::BstPooling::kAttention},
        EncoderCase{"DinWithPositions", SequenceSpec::Encoder::kDin,
                    SequenceSpec::BstPooling::kAttention, true},
        EncoderCase{"DinSoftmax", SequenceSpec::Encoder::kDin,
                    SequenceSpec::BstPooling::kAttention, false, true},
        // The default sequence spec's options together (mtps-datagen --world sequence).
        EncoderCase{"DinWithPositionsSoftmax", SequenceSpec::Encoder::kDin,
                    SequenceSpec::BstPooling::kAttention, true, true},
        EncoderCase{"BstSoftmax", SequenceSpec::Encoder::kBst,
                    SequenceSpec::BstPooling::kAttention, false, true},
        EncoderCase{"BstAttention", SequenceSpec::Encoder::kBst,
                    SequenceSpec::BstPooling::kAttention},
        EncoderCase{"BstMean", SequenceSpec::Encoder::kBst, SequenceSpec::BstPooling::kMean}),
    [](const ::testing::TestParamInfo<EncoderCase>& info) { return info.param.name; });

}  // namespace
}  // namespace mtps::models
