// EmbeddingTable: pulls, pushes through the optimizer, bad gradients, admission,
// eviction under a Zipf stream, ttl expiry, and the memory report against the process's
// measured growth.
#include "ps/embedding_table.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "tests/ps/zipf_keys.h"

namespace mtps::ps {
namespace {

TableSpec MakeSpec(int dim, OptimizerSpec::Type type = OptimizerSpec::Type::kAdagrad) {
  TableSpec spec;
  spec.name = "t";
  spec.dim = dim;
  spec.optimizer.type = type;
  spec.optimizer.lr = 0.1f;
  spec.seed = 77;
  return spec;
}

std::unique_ptr<EmbeddingTable> MakeTable(const TableSpec& spec) {
  auto table = EmbeddingTable::Create(spec);
  EXPECT_TRUE(table.ok()) << table.status();
  return std::move(table).value();
}

std::vector<float> InitialRow(const TableSpec& spec, uint64_t key) {
  std::vector<float> row(spec.dim);
  RowInitializer(spec.initializer, spec.seed).Fill(key, row.data(), spec.dim);
  return row;
}

TEST(EmbeddingTableTest, PullGivesInitialValuesAndPushAppliesTheOptimizer) {
  const TableSpec spec = MakeSpec(8, OptimizerSpec::Type::kAdam);
  auto table = MakeTable(spec);
  const std::vector<uint64_t> keys = {5, 9, 1ULL << 60};
  std::vector<float> out(keys.size() * 8);
  table->Pull(keys.data(), keys.size(), out.data(), 1, true);
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(std::vector<float>(out.begin() + i * 8, out.begin() + (i + 1) * 8),
              InitialRow(spec, keys[i]));
  }
  EXPECT_EQ(table->rows(), 3u);

  // Two pushes: the row equals RowOptimizer applied twice, with update counts 1 and 2.
  std::vector<float> grads(keys.size() * 8);
  std::iota(grads.begin(), grads.end(), -10.0f);
  ASSERT_TRUE(table->Push(keys.data(), grads.data(), keys.size(), 2).ok());
  auto r = table->Push(keys.data(), grads.data(), keys.size(), 3);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->applied, 3u);
  EXPECT_EQ(r->dropped, 0u);

  RowOptimizer opt(spec.optimizer);
  std::vector<float> w = InitialRow(spec, keys[1]), state(16);
  opt.InitState(state.data(), 8);
  opt.Apply(w.data(), state.data(), grads.data() + 8, 8, 1);
  opt.Apply(w.data(), state.data(), grads.data() + 8, 8, 2);
  std::vector<float> got_w(8), got_state(16);
  RowMeta meta;
  ASSERT_TRUE(table->Lookup(keys[1], got_w.data(), got_state.data(), &meta));
  EXPECT_EQ(got_w, w);
  EXPECT_EQ(got_state, state);
  EXPECT_EQ(meta.update_count, 2u);
  EXPECT_EQ(meta.last_step, 3u);
  EXPECT_EQ(meta.frequency, 1u);

  // A sighting pull returns the updated row and counts.
  table->Pull(keys.data(), 2, out.data(), 4, true);
  EXPECT_EQ(std::vector<float>(out.begin() + 8, out.begin() + 16), w);
  ASSERT_TRUE(table->Lookup(keys[1], nullptr, nullptr, &meta));
  EXPECT_EQ(meta.frequency, 2u);
  EXPECT_EQ(meta.last_step, 4u);
}

TEST(EmbeddingTableTest, NonFiniteGradientRejectsTheWholePushAndChangesNothing) {
  const TableSpec spec = MakeSpec(4);
  auto table = MakeTable(spec);
  std::vector<uint64_t> keys(10);
  std::iota(keys.begin(), keys.end(), 100);
  std::vector<float> grads(40, 0.5f);
  ASSERT_TRUE(table->Push(keys.data(), grads.data(), 10, 1).ok());
  std::vector<float> before(40), after(40);
  for (int i = 0; i < 10; ++i) table->Lookup(keys[i], before.data() + 4 * i, nullptr, nullptr);

  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    grads[5 * 4 + 2] = bad;  // key index 5, element 2
    auto r = table->Push(keys.data(), grads.data(), 10, 2);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("key index 5"), std::string::npos) << r.status();
    EXPECT_NE(r.status().message().find("key 105"), std::string::npos) << r.status();
    EXPECT_NE(r.status().message().find("table 't'"), std::string::npos) << r.status();
  }
  for (int i = 0; i < 10; ++i) {
    RowMeta meta;
    table->Lookup(keys[i], after.data() + 4 * i, nullptr, &meta);
    EXPECT_EQ(meta.update_count, 1u);
  }
  EXPECT_EQ(before, after);
  EXPECT_EQ(table->Counters().rejected_requests, 3u);
}

TEST(EmbeddingTableTest, AdmissionDropsRareKeysAndPullsBeforeAdmissionGiveInitialValues) {
  TableSpec spec = MakeSpec(4, OptimizerSpec::Type::kSgd);
  spec.admit_min_count = 3;
  auto table = MakeTable(spec);
  const uint64_t key = 4242;
  std::vector<float> out(4), grad(4, 1.0f);
  for (int sighting = 1; sighting <= 2; ++sighting) {
    table->Pull(&key, 1, out.data(), sighting, true);
    EXPECT_EQ(out, InitialRow(spec, key));
    auto r = table->Push(&key, grad.data(), 1, sighting);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->applied, 0u);
    EXPECT_EQ(r->dropped, 1u);
    EXPECT_EQ(table->rows(), 0u);
  }
  // Eval pulls do not count toward admission.
  for (int i = 0; i < 5; ++i) table->Pull(&key, 1, out.data(), 3, false);
  EXPECT_EQ(table->rows(), 0u);
  table->Pull(&key, 1, out.data(), 3, true);  // third sighting: admitted
  EXPECT_EQ(table->rows(), 1u);
  auto r = table->Push(&key, grad.data(), 1, 3);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->applied, 1u);
  const TableCounters c = table->Counters();
  EXPECT_EQ(c.dropped_pushes, 2u);
  EXPECT_EQ(c.admitted, 1u);

  // A stream where most keys are seen once or twice: only the frequent ones get rows.
  std::vector<uint64_t> stream;
  for (uint64_t k = 0; k < 5000; ++k) stream.push_back(1000000 + k);          // once
  for (uint64_t k = 0; k < 2000; ++k) stream.insert(stream.end(), 2, 2000000 + k);  // twice
  for (uint64_t k = 0; k < 300; ++k) stream.insert(stream.end(), 4, 3000000 + k);   // 4 times
  std::shuffle(stream.begin(), stream.end(), std::mt19937(1));
  std::vector<float> buf(stream.size() * 4);
  table->Pull(stream.data(), stream.size(), buf.data(), 10, true);
  EXPECT_EQ(table->rows(), 1u + 300u);
  for (uint64_t k = 0; k < 300; ++k) EXPECT_TRUE(table->Lookup(3000000 + k, nullptr, nullptr, nullptr));
}

TEST(EmbeddingTableTest, EvictionKeepsTheTableUnderItsCapUnderZipf) {
  TableSpec spec = MakeSpec(16);
  spec.capacity_rows = 20000;
  auto table = MakeTable(spec);
  EXPECT_EQ(table->RowCapacity(), 20000u);
  testing::ZipfKeys zipf(10'000'000, 1.1, 3);
  constexpr size_t kBatch = 4096;
  std::vector<uint64_t> keys(kBatch);
  std::vector<float> rows(kBatch * 16), grads(kBatch * 16, 0.01f);
  for (int step = 0; step < 100; ++step) {
    for (auto& k : keys) k = zipf.NextKey();
    table->Pull(keys.data(), kBatch, rows.data(), step, true);
    ASSERT_LE(table->rows(), 20000u) << "step " << step;
    ASSERT_TRUE(table->Push(keys.data(), grads.data(), kBatch, step).ok());
    ASSERT_LE(table->rows(), 20000u) << "step " << step;
  }
  const TableCounters c = table->Counters();
  EXPECT_GT(c.evicted, 10000u);
  EXPECT_EQ(c.admitted - c.evicted, table->rows());
  // The most frequent keys are the most valuable: they survive.
  for (uint64_t rank = 1; rank <= 20; ++rank) {
    EXPECT_TRUE(table->Lookup(testing::ZipfKeys::KeyOfRank(rank), nullptr, nullptr, nullptr))
        << "rank " << rank;
  }
}

TEST(EmbeddingTableTest, ByteCapacityBoundsTheReportedMemory) {
  TableSpec spec = MakeSpec(16);
  spec.capacity_bytes = 4 << 20;
  auto table = MakeTable(spec);
  testing::ZipfKeys zipf(10'000'000, 1.1, 4);
  std::vector<uint64_t> keys(4096);
  std::vector<float> rows(keys.size() * 16);
  for (int step = 0; step < 40; ++step) {
    for (auto& k : keys) k = zipf.NextKey();
    table->Pull(keys.data(), keys.size(), rows.data(), step, true);
    ASSERT_LE(table->MemoryBytes(), spec.capacity_bytes);
  }
  EXPECT_GT(table->Counters().evicted, 0u);
  EXPECT_GT(table->MemoryBytes(), spec.capacity_bytes * 8 / 10);  // and it does use it
}

TEST(EmbeddingTableTest, RowsIdlePastTtlExpire) {
  TableSpec spec = MakeSpec(4, OptimizerSpec::Type::kSgd);
  spec.ttl_steps = 10;
  auto table = MakeTable(spec);
  const uint64_t idle = 1, busy = 2;
  std::vector<float> grad(4, 1.0f), out(4);
  ASSERT_TRUE(table->Push(&idle, grad.data(), 1, 0).ok());
  for (uint64_t step = 0; step <= 30; step += 5) ASSERT_TRUE(table->Push(&busy, grad.data(), 1, step).ok());
  // Touched after 30 idle steps: the row is gone and the key reads its initial value.
  table->Pull(&idle, 1, out.data(), 30, false);
  EXPECT_EQ(out, InitialRow(spec, idle));
  EXPECT_FALSE(table->Lookup(idle, nullptr, nullptr, nullptr));
  EXPECT_TRUE(table->Lookup(busy, nullptr, nullptr, nullptr));
  EXPECT_EQ(table->Counters().expired, 1u);
}

TEST(EmbeddingTableTest, ExpireIdleSweepsRowsNobodyTouches) {
  TableSpec spec = MakeSpec(4, OptimizerSpec::Type::kSgd);
  spec.ttl_steps = 10;
  auto table = MakeTable(spec);
  std::vector<uint64_t> old_keys(1000), new_keys(100);
  std::iota(old_keys.begin(), old_keys.end(), 500);
  std::iota(new_keys.begin(), new_keys.end(), 100000);
  std::vector<float> grads(1000 * 4, 0.1f);
  ASSERT_TRUE(table->Push(old_keys.data(), grads.data(), old_keys.size(), 40).ok());
  ASSERT_TRUE(table->Push(new_keys.data(), grads.data(), new_keys.size(), 50).ok());
  size_t removed = 0;
  for (int i = 0; i < 100 && table->rows() > 100; ++i) removed += table->ExpireIdle(55, 64);
  EXPECT_EQ(table->rows(), 100u + 1000u - removed);
  EXPECT_EQ(removed, 1000u);
  for (uint64_t k : new_keys) EXPECT_TRUE(table->Lookup(k, nullptr, nullptr, nullptr));
  EXPECT_EQ(table->Counters().expired, 1000u);
}

TEST(EmbeddingTableTest, InsertRowAndForEachRowRoundTripEverything) {
  const TableSpec spec = MakeSpec(3, OptimizerSpec::Type::kFtrl);
  auto table = MakeTable(spec);
  std::vector<float> values(table->values_per_row());
  std::iota(values.begin(), values.end(), 1.5f);
  table->InsertRow(11, values.data(), RowMeta{7, 8, 9});
  int seen = 0;
  table->ForEachRow([&](uint64_t key, const float* v, const RowMeta& meta) {
    ++seen;
    EXPECT_EQ(key, 11u);
    EXPECT_EQ(std::vector<float>(v, v + values.size()), values);
    EXPECT_EQ(meta, (RowMeta{7, 8, 9}));
  });
  EXPECT_EQ(seen, 1);
  EXPECT_TRUE(table->Erase(11));
  EXPECT_FALSE(table->Erase(11));
  EXPECT_EQ(table->rows(), 0u);
}

TEST(EmbeddingTableTest, ByteCapacityTooSmallForOneRowIsRefused) {
  TableSpec spec = MakeSpec(16);
  spec.capacity_bytes = 100;
  auto table = EmbeddingTable::Create(spec);
  ASSERT_FALSE(table.ok());
  EXPECT_NE(table.status().message().find("capacity_bytes 100"), std::string::npos);
  spec.dim = 0;
  EXPECT_FALSE(EmbeddingTable::Create(spec).ok());
}

size_t ResidentBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  long size = 0, resident = 0;
  if (f) {
    if (std::fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<size_t>(resident) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

TEST(EmbeddingTableTest, ReportedMemoryIsWithinFivePercentOfMeasuredGrowth) {
  TableSpec spec = MakeSpec(16);
  spec.admit_min_count = 2;        // the sketch is part of the report too,
  spec.capacity_rows = 1 << 20;    // sized from the capacity (not reached here)
  constexpr size_t kRows = 400000;
  std::vector<uint64_t> keys(kRows);
  std::iota(keys.begin(), keys.end(), 1);
  std::vector<float> out(kRows * 16, 0.0f);  // touched before the baseline
  const size_t rss_before = ResidentBytes();
  auto table = MakeTable(spec);
  const uint64_t reported_before = table->MemoryBytes();
  table->Pull(keys.data(), kRows, out.data(), 1, true);
  table->Pull(keys.data(), kRows, out.data(), 2, true);  // second sighting: admitted
  ASSERT_EQ(table->rows(), kRows);
  const double grown = double(ResidentBytes() - rss_before);
  const double reported = double(table->MemoryBytes());
  EXPECT_NEAR(reported / grown, 1.0, 0.05)
      << "reported " << reported << " (at creation " << reported_before << "), RSS grew " << grown;
}

TEST(EmbeddingTableTest, RowFootprintStaysWithinAQuarterOfTheIdealAtDim16) {
  // A 144-byte slot (16 of metadata) and 9 to 11.5 bytes of index, whatever the size.
  for (size_t rows : {30000, 100000, 250000}) {
    auto table = MakeTable(MakeSpec(16));
    std::vector<uint64_t> keys(rows);
    std::iota(keys.begin(), keys.end(), 1);
    std::vector<float> grads(rows * 16, 0.01f);
    ASSERT_TRUE(table->Push(keys.data(), grads.data(), rows, 1).ok());
    const double per_row = double(table->MemoryBytes()) / rows;
    EXPECT_LE(per_row, 1.25 * table->IdealRowBytes()) << rows << " rows";
  }
}

}  // namespace
}  // namespace mtps::ps
