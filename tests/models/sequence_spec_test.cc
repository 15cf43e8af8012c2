// The model.sequence and model.interaction sections: a good spec parses into the right
// values and builds a model; each kind of bad spec is refused with the path of the field
// at fault, by the parser and by MultiTaskModel::Create for specs built in code.
#include <gtest/gtest.h>

#include <string>

#include "models/cpu_backend.h"
#include "models/multitask_model.h"
#include "protocol/job_spec.h"
#include "tests/models/model_test_util.h"

namespace mtps::models {
namespace {

// A spec with a behaviour sequence; `model_extra` is appended to the model section and
// `hist_table` names the history's table.
std::string SpecText(const std::string& model_extra, const std::string& hist_table = "item",
                     const std::string& hist_pooling = "sequence") {
  return R"(
features:
  sparse:
    - {name: user, table: user}
    - {name: item, table: item}
    - {name: cat, table: cat}
    - {name: hist, table: )" + hist_table + R"(, multi_valued: true, pooling: )" +
         hist_pooling + (hist_pooling == "sequence" ? ", max_length: 5" : "") + R"(}
tables:
  - {name: user, dim: 8}
  - {name: item, dim: 8}
  - {name: cat, dim: 8}
model:
  type: mmoe
  experts: 2
  expert_units: [8]
)" + model_extra + R"(
tasks:
  - {name: ctr, label: click}
)";
}

std::string ParseError(const std::string& text) {
  StatusOr<JobSpec> spec = ParseJobSpec(text, "job.yaml");
  if (spec.ok()) return "parsed";
  return std::string(spec.status().message());
}

TEST(SequenceSpecTest, ParsesEncoderAndInteraction) {
  StatusOr<JobSpec> spec = ParseJobSpec(SpecText(R"(
  interaction: {kind: dcn, cross_layers: 3, low_rank: 4}
  sequence: {field: hist, target: item, encoder: bst, attention_hidden: [16, 8], heads: 4,
             ffn_hidden: 32, bst_pooling: mean})"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  const ModelSpec& m = spec->model;
  EXPECT_EQ(m.interaction.kind, InteractionSpec::Kind::kDcn);
  EXPECT_EQ(m.interaction.cross_layers, 3);
  EXPECT_EQ(m.interaction.low_rank, 4);
  EXPECT_EQ(m.sequence.field, "hist");
  EXPECT_EQ(m.sequence.encoder, SequenceSpec::Encoder::kBst);
  EXPECT_EQ(m.sequence.attention_hidden, (std::vector<int>{16, 8}));
  EXPECT_EQ(m.sequence.heads, 4);
  EXPECT_EQ(m.sequence.bst_pooling, SequenceSpec::BstPooling::kMean);
  EXPECT_EQ(spec->sparse_fields[3].max_length, 5);
  auto model = MultiTaskModel<float>::Create(*spec, MakeCpuBackend<float>(1), {.max_batch = 4});
  EXPECT_TRUE(model.ok()) << model.status();

  spec = ParseJobSpec(SpecText(
      "  sequence: {field: hist, target: item, din_positions: true, weights_softmax: true}"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->model.sequence.encoder, SequenceSpec::Encoder::kDin);
  EXPECT_TRUE(spec->model.sequence.din_positions);
  EXPECT_TRUE(spec->model.sequence.weights_softmax);
  EXPECT_EQ(spec->model.interaction.kind, InteractionSpec::Kind::kNone);
}

TEST(SequenceSpecTest, UnknownEncoderNamesThePath) {
  EXPECT_NE(ParseError(SpecText("  sequence: {field: hist, target: item, encoder: gru}"))
                .find("model.sequence.encoder: unknown value 'gru'"),
            std::string::npos);
  EXPECT_NE(ParseError(SpecText("  interaction: {kind: cross}"))
                .find("model.interaction.kind: unknown value 'cross'"),
            std::string::npos);
}

TEST(SequenceSpecTest, SequenceFieldMissingOrNotASequence) {
  EXPECT_NE(ParseError(SpecText("  sequence: {field: clicks, target: item}"))
                .find("model.sequence.field: no sparse feature 'clicks'"),
            std::string::npos);
  EXPECT_NE(ParseError(SpecText("  sequence: {target: item}"))
                .find("model.sequence.field: required field is missing"),
            std::string::npos);
  EXPECT_NE(ParseError(SpecText("  sequence: {field: hist, target: item}", "item", "mean"))
                .find("model.sequence.field: feature 'hist' must have pooling: sequence"),
            std::string::npos);
  // A sequence field nobody encodes.
  EXPECT_NE(ParseError(SpecText("")).find("features.sparse[3].pooling: field 'hist' is a sequence, "
                                          "but model.sequence.field is not set"),
            std::string::npos);
}

TEST(SequenceSpecTest, TargetMustShareTheSequencesTable) {
  EXPECT_NE(ParseError(SpecText("  sequence: {field: hist, target: cat}"))
                .find("model.sequence.target: feature 'cat' reads table 'cat', the sequence "
                      "'hist' reads 'item'"),
            std::string::npos);
  EXPECT_NE(ParseError(SpecText("  sequence: {field: hist, target: shop}"))
                .find("model.sequence.target: no sparse feature 'shop'"),
            std::string::npos);
}

TEST(SequenceSpecTest, HeadsMustDivideTheDim) {
  EXPECT_NE(ParseError(SpecText("  sequence: {field: hist, target: item, encoder: bst, heads: 3}"))
                .find("model.sequence.heads: 3 heads do not divide table 'item' dim 8"),
            std::string::npos);
  EXPECT_NE(ParseError(SpecText("  sequence: {field: hist, target: item, heads: 0}"))
                .find("model.sequence.heads"),
            std::string::npos);
}

TEST(SequenceSpecTest, DotNeedsOneDimAcrossFields) {
  std::string text = SpecText("  interaction: {kind: dot}\n  sequence: {field: hist, target: item}");
  text.replace(text.find("{name: cat, dim: 8}"), 19, "{name: cat, dim: 4}");
  EXPECT_NE(ParseError(text).find("model.interaction.kind: dot needs every sparse feature at one "
                                  "dim; 'user' has 8, 'cat' has 4"),
            std::string::npos);
}

TEST(SequenceSpecTest, ModelCreateRefusesSpecsBuiltInCode) {
  JobSpec spec = testing::SequenceSpecOf(ModelSpec::Type::kMmoe, SequenceSpec::Encoder::kBst);
  spec.model.sequence.heads = 3;  // dim 4
  auto model = MultiTaskModel<double>::Create(spec, MakeCpuBackend<double>(1));
  ASSERT_FALSE(model.ok());
  EXPECT_NE(std::string(model.status().message()).find("model.sequence.heads"), std::string::npos);
  spec = testing::SequenceSpecOf(ModelSpec::Type::kMmoe, SequenceSpec::Encoder::kDin);
  spec.model.sequence.target = "user";
  model = MultiTaskModel<double>::Create(spec, MakeCpuBackend<double>(1));
  ASSERT_FALSE(model.ok());
  EXPECT_NE(std::string(model.status().message()).find("model.sequence.target"),
            std::string::npos);
}

TEST(SequenceSpecTest, TooLongSequenceIsRefusedAtLoad) {
  JobSpec spec = testing::SequenceSpecOf(ModelSpec::Type::kMmoe, SequenceSpec::Encoder::kDin);
  spec.sparse_fields[2].max_length = 2;
  auto model = MultiTaskModel<float>::Create(spec, MakeCpuBackend<float>(1));
  ASSERT_TRUE(model.ok()) << model.status();
  testing::RandomBatch<float> batch(spec, 8, 3);
  ModelOutput out;
  Status s = (*model)->Train(batch.input(), 1, &out);
  bool long_record = false;
  for (int r = 0; r < 8; ++r) long_record |= batch.offsets[2][r + 1] - batch.offsets[2][r] > 2;
  ASSERT_TRUE(long_record) << "the seed must draw a record of 3 items";
  ASSERT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("sequence field 'history': record"), std::string::npos)
      << s;
}

// SpecText plus hist_cats, the history's categories: a sequence of table cat.
std::string SideSpecText(const std::string& sequence, const std::string& hist_cats_extra =
                                                          "pooling: sequence, max_length: 5") {
  std::string text = SpecText("  sequence: " + sequence);
  const std::string after = "max_length: 5}\n";
  text.insert(text.find(after) + after.size(),
              "    - {name: hist_cats, table: cat, multi_valued: true, " + hist_cats_extra + "}\n");
  return text;
}

TEST(SequenceSpecTest, ParsesSideSequences) {
  StatusOr<JobSpec> spec = ParseJobSpec(
      SideSpecText("{field: hist, target: item, side: [{field: hist_cats, target: cat}]}"), "j");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->model.sequence.side.size(), 1u);
  EXPECT_EQ(spec->model.sequence.side[0].field, "hist_cats");
  EXPECT_EQ(spec->model.sequence.side[0].target, "cat");
  EXPECT_TRUE(MultiTaskModel<float>::Create(*spec, MakeCpuBackend<float>(1)).ok());
}

TEST(SequenceSpecTest, BadSideSequencesNameThePath) {
  auto error = [](const std::string& side, const std::string& extra = "pooling: sequence, max_length: 5") {
    return ParseError(SideSpecText("{field: hist, target: item, encoder: bst, side: " + side + "}",
                                   extra));
  };
  EXPECT_NE(error("[{field: clicks, target: cat}]")
                .find("model.sequence.side[0].field: no sparse feature 'clicks'"),
            std::string::npos);
  EXPECT_NE(error("[{field: hist_cats}]").find("model.sequence.side[0].target: required field"),
            std::string::npos);
  EXPECT_NE(error("[{field: hist_cats, target: cat, weight: 2}]").find("model.sequence.side[0]"),
            std::string::npos);
  EXPECT_NE(error("{field: hist_cats, target: cat}").find("model.sequence.side: expected a list"),
            std::string::npos);
  EXPECT_NE(error("[{field: hist, target: item}]")
                .find("model.sequence.side[0].field: 'hist' is the sequence itself"),
            std::string::npos);
  EXPECT_NE(error("[{field: hist_cats, target: cat}, {field: hist_cats, target: cat}]")
                .find("model.sequence.side[1].field: 'hist_cats' is listed twice"),
            std::string::npos);
  EXPECT_NE(error("[{field: hist_cats, target: cat}]", "pooling: sequence, max_length: 4")
                .find("model.sequence.side[0].field: feature 'hist_cats' must have pooling: "
                      "sequence and max_length 5 like 'hist'"),
            std::string::npos);
  EXPECT_NE(error("[{field: hist_cats, target: cat}]", "pooling: sum")
                .find("must have pooling: sequence"),
            std::string::npos);
  EXPECT_NE(error("[{field: hist_cats, target: item}]")
                .find("model.sequence.side[0].target: feature 'item' reads table 'item', the side "
                      "sequence 'hist_cats' reads 'cat'"),
            std::string::npos);
  EXPECT_NE(error("[{field: hist_cats, target: hist}]")
                .find("model.sequence.side[0].target: feature 'hist' is itself a sequence"),
            std::string::npos);
  // Without a side entry, hist_cats is a sequence nobody reads.
  EXPECT_NE(error("[]").find("field 'hist_cats' is a sequence"), std::string::npos);
}

TEST(SequenceSpecTest, HeadsMustDivideTheConcatenatedDim) {
  std::string text =
      SideSpecText("{field: hist, target: item, encoder: bst, heads: 4, side: [{field: hist_cats, "
                   "target: cat}]}");
  text.replace(text.find("{name: cat, dim: 8}"), 19, "{name: cat, dim: 2}");
  EXPECT_NE(ParseError(text).find("model.sequence.heads: 4 heads do not divide table 'item' dim "
                                  "8 + the side fields' dims = 10"),
            std::string::npos);
}

TEST(SequenceSpecTest, MisalignedSideSequenceIsRefusedAtLoad) {
  JobSpec spec = testing::WithCategorySide(
      testing::SequenceSpecOf(ModelSpec::Type::kMmoe, SequenceSpec::Encoder::kDin), 4);
  auto model = MultiTaskModel<float>::Create(spec, MakeCpuBackend<float>(1));
  ASSERT_TRUE(model.ok()) << model.status();
  testing::RandomBatch<float> batch(spec, 8, 3);
  ModelOutput out;
  ASSERT_TRUE((*model)->Train(batch.input(), 1, &out).ok());
  // One value of history_cats (the last field) moves from record r to record r + 1,
  // within max_length.
  std::vector<int32_t>& cats = batch.offsets.back();
  int r = 0;
  while (r + 2 < static_cast<int>(cats.size()) &&
         !(cats[r + 1] > cats[r] && cats[r + 2] - cats[r + 1] < 3)) {
    ++r;
  }
  ASSERT_LT(r + 2, static_cast<int>(cats.size())) << "the seed must draw such a pair";
  const int length = cats[r + 1] - cats[r];
  --cats[r + 1];
  Status s = (*model)->Train(batch.input(), 2, &out);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message())
                .find("model.sequence.side: record " + std::to_string(r) + " of the batch has " +
                      std::to_string(length - 1) + " values of 'history_cats' and " +
                      std::to_string(length) + " of 'history'"),
            std::string::npos)
      << s;
}

}  // namespace
}  // namespace mtps::models
