// Row precision (TableSpec::precision): fp16/bf16 rounding to nearest even and
// saturation; tables that store half-precision weights but speak fp32 on pull and push;
// checkpoints that reload every precision bit for bit and refuse another precision.
#include "ps/precision.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <vector>

#include "ps/checkpoint.h"
#include "ps/embedding_table.h"
#include "tests/common/test_files.h"

namespace mtps::ps {
namespace {

TEST(PrecisionTest, Fp16RoundsToNearestEvenAndSaturates) {
  EXPECT_EQ(HalfToFloat(FloatToHalf(1.0f)), 1.0f);
  const float ulp = std::ldexp(1.0f, -10);  // fp16 spacing at 1
  EXPECT_EQ(HalfToFloat(FloatToHalf(1.0f + ulp / 2)), 1.0f);             // tie, even below
  EXPECT_EQ(HalfToFloat(FloatToHalf(1.0f + 3 * ulp / 2)), 1.0f + 2 * ulp); // tie, even above
  EXPECT_EQ(HalfToFloat(FloatToHalf(1.0f + 0.6f * ulp)), 1.0f + ulp);
  EXPECT_EQ(HalfToFloat(FloatToHalf(-0.1f)), -0.0999755859375f);
  EXPECT_EQ(HalfToFloat(FloatToHalf(1e6f)), 65504.0f);
  EXPECT_EQ(HalfToFloat(FloatToHalf(-1e6f)), -65504.0f);
  EXPECT_EQ(HalfToFloat(FloatToHalf(std::ldexp(1.0f, -24))), std::ldexp(1.0f, -24));  // subnormal
  EXPECT_EQ(HalfToFloat(FloatToHalf(std::ldexp(1.0f, -26))), 0.0f);
}

TEST(PrecisionTest, Bf16RoundsToNearestEvenAndKeepsFp32Range) {
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(1.0f)), 1.0f);
  const float ulp = std::ldexp(1.0f, -7);  // bf16 spacing at 1
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(1.0f + ulp / 2)), 1.0f);
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(1.0f + 3 * ulp / 2)), 1.0f + 2 * ulp);
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(1.0f + 0.6f * ulp)), 1.0f + ulp);
  for (float big_or_tiny : {1e30f, -3e-30f, 2e-38f}) {  // fp16 holds none of these
    EXPECT_NEAR(Bf16ToFloat(FloatToBf16(big_or_tiny)) / big_or_tiny, 1.0, 1.0 / 256);
  }
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(3.4e38f)), std::ldexp(255.0f / 128, 127));  // saturates
}

TEST(PrecisionTest, RowConversionsMatchTheScalarOnesAtEveryLength) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  for (size_t n : {1, 7, 8, 9, 31, 64, 100}) {
    std::vector<float> src(n), back(n);
    for (float& v : src) v = normal(rng);
    for (Precision p : {Precision::kFp16, Precision::kBf16}) {
      std::vector<uint16_t> stored(n);
      StoreWeights(p, src.data(), n, stored.data());
      LoadWeights(p, stored.data(), n, back.data());
      for (size_t i = 0; i < n; ++i) {
        const uint16_t one = p == Precision::kFp16 ? FloatToHalf(src[i]) : FloatToBf16(src[i]);
        ASSERT_EQ(stored[i], one) << PrecisionName(p) << " n=" << n << " i=" << i;
        ASSERT_EQ(back[i], p == Precision::kFp16 ? HalfToFloat(one) : Bf16ToFloat(one));
      }
      std::vector<float> rounded = src;
      RoundToPrecision(p, rounded.data(), n);
      EXPECT_EQ(rounded, back);
    }
  }
}

TableSpec Spec(Precision precision, int dim = 12,
               OptimizerSpec::Type opt = OptimizerSpec::Type::kAdagrad) {
  TableSpec spec;
  spec.name = "user";
  spec.dim = dim;
  spec.precision = precision;
  spec.optimizer.type = opt;
  spec.optimizer.lr = 0.05f;
  spec.seed = 11;
  return spec;
}

std::unique_ptr<EmbeddingTable> Table(const TableSpec& spec) {
  auto table = EmbeddingTable::Create(spec);
  EXPECT_TRUE(table.ok()) << table.status();
  return table.ok() ? std::move(table).value() : nullptr;
}

class HalfTableTest : public ::testing::TestWithParam<Precision> {};

TEST_P(HalfTableTest, PullsAndPushesAreTheFp32MathRoundedOncePerUpdate) {
  const Precision p = GetParam();
  for (auto opt : {OptimizerSpec::Type::kAdagrad, OptimizerSpec::Type::kAdam}) {
    const TableSpec spec = Spec(p, 12, opt);
    auto table = Table(spec);
    const std::vector<uint64_t> keys = {3, 99, 12345, 1ull << 40};
    const int dim = spec.dim;
    std::vector<float> pulled(keys.size() * dim);
    table->Pull(keys.data(), keys.size(), pulled.data(), 1, true);

    // The reference: an fp32 row and state, rounded as the table stores the weights.
    RowOptimizer opt_ref(spec.optimizer);
    RowInitializer init(spec.initializer, spec.seed);
    std::vector<std::vector<float>> w(keys.size(), std::vector<float>(dim));
    std::vector<std::vector<float>> s(keys.size(), std::vector<float>(opt_ref.StateFloats(dim)));
    for (size_t k = 0; k < keys.size(); ++k) {
      init.Fill(keys[k], w[k].data(), dim);
      RoundToPrecision(p, w[k].data(), dim);
      opt_ref.InitState(s[k].data(), dim);
      for (int i = 0; i < dim; ++i) ASSERT_EQ(pulled[k * dim + i], w[k][i]) << k << "," << i;
    }
    std::mt19937 rng(5);
    std::normal_distribution<float> normal(0.0f, 0.3f);
    for (int step = 1; step <= 5; ++step) {
      std::vector<float> grads(keys.size() * dim);
      for (float& g : grads) g = normal(rng);
      ASSERT_TRUE(table->Push(keys.data(), grads.data(), keys.size(), step).ok());
      for (size_t k = 0; k < keys.size(); ++k) {
        opt_ref.Apply(w[k].data(), s[k].data(), grads.data() + k * dim, dim, step);
        RoundToPrecision(p, w[k].data(), dim);
      }
    }
    table->Pull(keys.data(), keys.size(), pulled.data(), 9, false);
    for (size_t k = 0; k < keys.size(); ++k) {
      std::vector<float> state(s[k].size());
      ASSERT_TRUE(table->Lookup(keys[k], nullptr, state.data(), nullptr));
      EXPECT_EQ(state, s[k]) << "state stays fp32";
      for (int i = 0; i < dim; ++i) ASSERT_EQ(pulled[k * dim + i], w[k][i]) << k << "," << i;
    }
  }
}

TEST_P(HalfTableTest, AKeyWithoutARowPullsItsInitialValueAsItsRowWouldStoreIt) {
  TableSpec spec = Spec(GetParam());
  spec.admit_min_count = 3;
  auto table = Table(spec);
  const uint64_t key = 77;
  std::vector<float> before(spec.dim), after(spec.dim);
  table->Pull(&key, 1, before.data(), 1, true);
  ASSERT_EQ(table->rows(), 0u);
  table->Pull(&key, 1, after.data(), 2, true);
  table->Pull(&key, 1, after.data(), 3, true);
  ASSERT_EQ(table->rows(), 1u);
  EXPECT_EQ(before, after);
}

TEST_P(HalfTableTest, WeightsTakeHalfTheBytesAndStateStaysFp32) {
  const RowLayout full = RowLayoutFor(Spec(Precision::kFp32, 64));
  const RowLayout half = RowLayoutFor(Spec(GetParam(), 64));
  EXPECT_EQ(half.weight_bytes * 2, full.weight_bytes);
  EXPECT_EQ(half.slot_bytes, full.slot_bytes - 128);
  EXPECT_EQ(half.state_floats, full.state_floats);
  // An odd dim pads the weights so the fp32 state stays 4-byte aligned.
  const RowLayout odd = RowLayoutFor(Spec(GetParam(), 5));
  EXPECT_EQ(odd.state_offset, RowLayout::kMetaBytes + 12);
  EXPECT_EQ(odd.padding_bytes(), 2u);

  auto fp32 = Table(Spec(Precision::kFp32, 64));
  auto small = Table(Spec(GetParam(), 64));
  std::vector<uint64_t> keys(20000);
  std::iota(keys.begin(), keys.end(), 1);
  std::vector<float> out(keys.size() * 64);
  fp32->Pull(keys.data(), keys.size(), out.data(), 1, true);
  small->Pull(keys.data(), keys.size(), out.data(), 1, true);
  EXPECT_LT(double(small->MemoryBytes()), 0.82 * double(fp32->MemoryBytes()));
}

class HalfCheckpointTest : public ::testing::TestWithParam<Precision> {
 protected:
  mtps::testing::ScratchDir dir_;
  std::unique_ptr<FileSystem> fs_ = NewPosixFileSystem();
};

// Every row's stored bytes and metadata, by key.
std::map<uint64_t, std::pair<std::vector<char>, RowMeta>> StoredRows(const EmbeddingTable& t) {
  std::map<uint64_t, std::pair<std::vector<char>, RowMeta>> rows;
  const size_t bytes = t.layout().stored_value_bytes();
  t.ForEachStoredRow([&](uint64_t key, const char* v, const RowMeta& m) {
    rows[key] = {std::vector<char>(v, v + bytes), m};
  });
  return rows;
}

TEST_P(HalfCheckpointTest, EveryPrecisionReloadsBitForBitAcrossShardCounts) {
  // Odd dim: the weights' padding must not reach the file.
  const TableSpec spec = Spec(GetParam(), 7, OptimizerSpec::Type::kAdam);
  auto table = Table(spec);
  std::vector<uint64_t> keys(2000);
  std::iota(keys.begin(), keys.end(), 100);
  std::vector<float> grads(keys.size() * spec.dim, 0.25f);
  std::vector<float> out(keys.size() * spec.dim);
  table->Pull(keys.data(), keys.size(), out.data(), 1, true);
  ASSERT_TRUE(table->Push(keys.data(), grads.data(), keys.size(), 2).ok());

  const std::string path = dir_.File("t.ckpt");
  auto info = SaveTableParts(*fs_, path, {table.get()});
  ASSERT_TRUE(info.ok()) << info.status();
  auto loaded = LoadTableParts(*fs_, path, spec, 3);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  std::map<uint64_t, std::pair<std::vector<char>, RowMeta>> reloaded;
  for (auto& part : *loaded) reloaded.merge(StoredRows(*part));
  EXPECT_EQ(reloaded, StoredRows(*table));

  // The file is smaller than the same rows in fp32 by the weights' halves.
  TableSpec full_spec = spec;
  full_spec.precision = Precision::kFp32;
  auto full = Table(full_spec);
  full->Pull(keys.data(), keys.size(), out.data(), 1, true);
  auto full_info = SaveTableParts(*fs_, dir_.File("full.ckpt"), {full.get()});
  ASSERT_TRUE(full_info.ok());
  if (GetParam() != Precision::kFp32) {
    EXPECT_LE(info->bytes + keys.size() * spec.dim * 2, full_info->bytes + 64);
  }
}

TEST_P(HalfCheckpointTest, AFileOfAnotherPrecisionIsRefusedNamingBoth) {
  const TableSpec spec = Spec(GetParam());
  auto table = Table(spec);
  const uint64_t key = 5;
  std::vector<float> out(spec.dim);
  table->Pull(&key, 1, out.data(), 1, true);
  const std::string path = dir_.File("t.ckpt");
  ASSERT_TRUE(SaveTableParts(*fs_, path, {table.get()}).ok());
  TableSpec other = spec;
  other.precision = GetParam() == Precision::kBf16 ? Precision::kFp16 : Precision::kBf16;
  auto loaded = LoadTableParts(*fs_, path, other, 1);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(loaded.status().message().find(std::string("precision is ") +
                                           PrecisionName(GetParam())),
            std::string::npos)
      << loaded.status();
}

std::string Name(const ::testing::TestParamInfo<Precision>& info) {
  return PrecisionName(info.param);
}
INSTANTIATE_TEST_SUITE_P(Half, HalfTableTest,
                         ::testing::Values(Precision::kFp16, Precision::kBf16), Name);
INSTANTIATE_TEST_SUITE_P(All, HalfCheckpointTest,
                         ::testing::Values(Precision::kFp32, Precision::kFp16, Precision::kBf16),
                         Name);

TEST(PrecisionSpecTest, TheJobSpecNamesThePrecisionAndRefusesOthers) {
  const std::string base = R"(
data: {format: mtb, train: [x.mtb]}
features: {sparse: [{name: user_id, table: user}]}
model: {type: mmoe}
tasks: [{name: ctr, label: click}]
tables:
  - {name: user, dim: 8, precision: )";
  auto bf16 = ParseJobSpec(base + "bf16}\n");
  ASSERT_TRUE(bf16.ok()) << bf16.status();
  EXPECT_EQ(bf16->tables[0].precision, Precision::kBf16);
  auto fp8 = ParseJobSpec(base + "fp8}\n");
  ASSERT_FALSE(fp8.ok());
  EXPECT_NE(fp8.status().message().find("tables[0].precision: unknown value 'fp8'"),
            std::string::npos)
      << fp8.status();
}

}  // namespace
}  // namespace mtps::ps
