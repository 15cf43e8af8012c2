// The sequence world of mtps-datagen: every impression carries its own history (most
// recent last, at most history_length items, hashed as item_id), P(click) depends on that
// history relative to the shown item, the history's categories ride beside it (hashed as
// category), CSV and .mtb hold the same records, and the written job.yaml reads them as a
// sequence field with a side sequence.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "data_test_util.h"
#include "worker/data/datagen.h"
#include "worker/data/ecommerce_world.h"
#include "models/metrics.h"
#include "worker/data/input_files.h"

namespace mtps {
namespace {

using testing_data::Drain;
using testing_data::ReadFile;
using testing_data::Record;
using testing_data::ScratchDir;
using ::testing::HasSubstr;

WorldOptions SequenceWorld(double weight,
                           WorldOptions::SequenceTerm term = WorldOptions::SequenceTerm::kInterests) {
  WorldOptions w;
  w.sequence_term = term;
  w.seed = 4;
  w.users = 400;
  w.items = 600;
  w.categories = 25;
  w.shops = 40;
  w.history_length = 12;
  w.sequence_weight = weight;
  return w;
}

// Datagen options for `rows` rows of the sequence world (weight 2.5) in dir/mtb.
DatagenOptions SequenceData(ScratchDir& dir, int64_t rows, int train_files, int threads) {
  DatagenOptions o;
  o.rows = rows;
  o.train_files = train_files;
  o.threads = threads;
  o.world = SequenceWorld(2.5);
  o.out_dir = dir.File("mtb");
  return o;
}

double Logit(double p) { return std::log(p / (1 - p)); }

class SequenceTermTest : public ::testing::TestWithParam<WorldOptions::SequenceTerm> {};

TEST_P(SequenceTermTest, TheClickDependsOnTheHistoryAndNothingElseChanges) {
  const EcommerceWorld with(SequenceWorld(2.5, GetParam())), without(SequenceWorld(0.0, GetParam()));
  Impression a, b;
  double sum = 0, sum_sq = 0;
  int with_history = 0;
  std::set<size_t> lengths;
  for (uint64_t row = 0; row < 3000; ++row) {
    with.Sample(row, &a);
    without.Sample(row, &b);
    // The same draws: only the weight of the similarity differs.
    ASSERT_EQ(a.history, b.history);
    ASSERT_EQ(a.item, b.item);
    ASSERT_EQ(a.user, b.user);
    ASSERT_LE(a.history.size(), 12u);
    lengths.insert(a.history.size());
    const double shift = Logit(a.p_click) - Logit(b.p_click) - (with.click_bias() - without.click_bias());
    if (a.history.empty()) {
      EXPECT_NEAR(shift, 0.0, 1e-6);  // no history, no sequence term
      continue;
    }
    ++with_history;
    sum += shift;
    sum_sq += shift * shift;
  }
  ASSERT_GT(with_history, 2000);
  EXPECT_GE(lengths.size(), 10u);  // lengths vary per impression
  const double mean = sum / with_history;
  const double stddev = std::sqrt(sum_sq / with_history - mean * mean);
  EXPECT_GT(stddev, 0.3) << "the history's similarity to the item moves P(click)";
  EXPECT_GT(mean, 0.0) << "recent items lean to the session, which the shown item often comes from";
}

INSTANTIATE_TEST_SUITE_P(BothTerms, SequenceTermTest,
                         ::testing::Values(WorldOptions::SequenceTerm::kInterests,
                                           WorldOptions::SequenceTerm::kSimilarity));

// The diverse-interests term: sequence_weight * 0.9^age of the most recent history item of
// the shown item's category, 0 without one; histories mix several categories.
TEST(SequenceWorldTest, TheInterestsTermIsTheMostRecentItemOfTheShownItemsCategory) {
  const EcommerceWorld with(SequenceWorld(2.5)), without(SequenceWorld(0.0));
  Impression a, b;
  int matched = 0, unmatched = 0, long_histories = 0, diverse = 0;
  for (uint64_t row = 0; row < 3000; ++row) {
    with.Sample(row, &a);
    without.Sample(row, &b);
    ASSERT_EQ(a.history, b.history);
    int newest = -1;
    std::set<uint32_t> categories;
    for (size_t j = 0; j < a.history.size(); ++j) {
      categories.insert(with.category_of(a.history[j]));
      if (with.category_of(a.history[j]) == with.category_of(a.item)) newest = static_cast<int>(j);
    }
    const double age = static_cast<double>(a.history.size()) - 1 - newest;
    const double term = newest < 0 ? 0.0 : 2.5 * std::pow(0.9, age);
    const double shift = Logit(a.p_click) - Logit(b.p_click) - (with.click_bias() - without.click_bias());
    ASSERT_NEAR(shift, term, 1e-6) << "row " << row;
    (newest < 0 ? unmatched : matched)++;
    if (a.history.size() >= 8) {
      ++long_histories;
      diverse += categories.size() >= 3;
    }
  }
  EXPECT_GT(matched, 600);  // both outcomes are common, so the term carries signal
  EXPECT_GT(unmatched, 600);
  EXPECT_GT(diverse, long_histories * 9 / 10) << "histories mix interests and unrelated items";
}

// oracle.json's AUC is that of the true P(click), which includes the sequence term.
TEST(SequenceWorldTest, TheOracleScoresTheTrueProbabilitiesWithTheInterestsTerm) {
  ScratchDir dir;
  DatagenOptions o = SequenceData(dir, 4000, 1, 2);
  StatusOr<DatagenReport> r = GenerateDataset(o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->eval_rows, 400);
  const EcommerceWorld with(SequenceWorld(2.5)), without(SequenceWorld(0.0));
  std::vector<float> truth, blind, clicks;
  Impression a, b;
  for (uint64_t row = r->train_rows; row < static_cast<uint64_t>(o.rows); ++row) {
    with.Sample(row, &a);
    without.Sample(row, &b);
    truth.push_back(static_cast<float>(a.p_click));
    blind.push_back(static_cast<float>(b.p_click));
    clicks.push_back(a.click ? 1.0f : 0.0f);
  }
  EXPECT_DOUBLE_EQ(r->ctr.oracle_auc, *models::ExactAuc(truth, clicks));
  EXPECT_GT(r->ctr.oracle_auc, *models::ExactAuc(blind, clicks) + 0.02)
      << "without the sequence term the truth would score worse";
}

TEST(SequenceWorldTest, TheOrdinaryWorldIsUnchanged) {
  WorldOptions plain = SequenceWorld(2.5);
  plain.history_length = 0;
  const EcommerceWorld world(plain);
  Impression imp;
  world.Sample(17, &imp);
  EXPECT_TRUE(imp.history.empty());
}

TEST(SequenceWorldTest, HistoryCategoriesAreTheHistoryItemsCategories) {
  for (WorldOptions::SequenceTerm term :
       {WorldOptions::SequenceTerm::kInterests, WorldOptions::SequenceTerm::kSimilarity}) {
    const EcommerceWorld world(SequenceWorld(2.5, term));
    size_t items = 0;
    for (uint64_t i = 0; i < 200; ++i) {
      Impression imp;
      world.Sample(i, &imp);
      ASSERT_EQ(imp.history_categories.size(), imp.history.size());
      for (size_t j = 0; j < imp.history.size(); ++j) {
        EXPECT_EQ(imp.history_categories[j], world.category_of(imp.history[j]));
      }
      items += imp.history.size();
    }
    EXPECT_GT(items, 200u);
  }
}

TEST(SequenceWorldTest, DatasetsCarryHistoriesAsASequenceOfItemKeys) {
  ScratchDir dir;
  DatagenOptions o = SequenceData(dir, 3000, 2, 1);
  o.row_group_rows = 256;
  StatusOr<DatagenReport> r = GenerateDataset(o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->ctr.oracle_auc, 0.7);
  o.format = DataSpec::Format::kCsv;
  o.out_dir = dir.File("csv");
  ASSERT_TRUE(GenerateDataset(o).ok());

  const std::string yaml = ReadFile(dir.File("mtb/job.yaml"));
  EXPECT_THAT(yaml, HasSubstr("name: hist_items, table: item, key_field: item_id, multi_valued: true, "
                              "pooling: sequence, max_length: 12"));
  EXPECT_THAT(yaml, HasSubstr("name: hist_cats, table: category, key_field: category, "
                              "multi_valued: true, pooling: sequence, max_length: 12"));
  // The best configuration measured: DIN over items with their categories, positions and
  // softmax weights, and dot.
  EXPECT_THAT(yaml, HasSubstr("sequence: {field: hist_items, target: item_id, encoder: din, "
                              "din_positions: true,\n"
                              "                   weights_softmax: true, attention_hidden: [64],\n"
                              "                   side: [{field: hist_cats, target: category}]}"));
  EXPECT_THAT(yaml, HasSubstr("interaction: {kind: dot}"));
  const std::string csv = ReadFile(dir.File("csv/train-00000.csv"));
  EXPECT_THAT(csv.substr(0, csv.find('\n')), HasSubstr(",recent_items,hist_items,hist_cats"));

  const JobSpec spec = *LoadJobSpec(dir.File("mtb/job.yaml"));
  const FeatureMap map = *FeatureMap::Create(spec);
  ASSERT_EQ(map.num_sparse(), 8);
  ASSERT_EQ(map.sparse(6).name, "hist_items");
  ASSERT_EQ(map.sparse(7).name, "hist_cats");
  PipelineOptions po;
  po.shuffle = false;
  po.batch_size = 500;
  po.format = DataSpec::Format::kMtb;
  auto mtb = *BatchPipeline::Create(map, *ExpandInputFiles({dir.File("mtb/train-*.mtb")}, po.format), po);
  po.format = DataSpec::Format::kCsv;
  auto from_csv = *BatchPipeline::Create(map, *ExpandInputFiles({dir.File("csv/train-*.csv")}, po.format), po);
  const std::vector<Record> a = Drain(mtb.get()), b = Drain(from_csv.get());
  ASSERT_EQ(a.size(), 2700u);
  EXPECT_TRUE(a == b);
  std::set<uint64_t> item_keys;
  for (const Record& rec : a) item_keys.insert(rec.keys[1][0]);
  size_t empty = 0, shared = 0, total = 0;
  for (const Record& rec : a) {
    const std::vector<uint64_t>& hist = rec.keys[6];
    empty += hist.empty();
    EXPECT_LE(hist.size(), 12u);
    for (uint64_t k : hist) {
      ++total;
      shared += item_keys.count(k);
    }
  }
  EXPECT_GT(empty, 0u);          // a session may start with no history: an empty sequence
  EXPECT_GT(shared, total / 2);  // history items are item_id keys: the same embedding rows
  // hist_cats: one category key per history item, the key its item's shown impressions
  // carry in `category` (an item's category is fixed), so the same category rows.
  std::map<uint64_t, uint64_t> category_of;
  for (const Record& rec : a) category_of[rec.keys[1][0]] = rec.keys[2][0];
  size_t checked = 0;
  for (const Record& rec : a) {
    ASSERT_EQ(rec.keys[7].size(), rec.keys[6].size());
    for (size_t j = 0; j < rec.keys[6].size(); ++j) {
      auto it = category_of.find(rec.keys[6][j]);
      if (it == category_of.end()) continue;
      EXPECT_EQ(rec.keys[7][j], it->second);
      ++checked;
    }
  }
  EXPECT_EQ(checked, shared);
}

TEST(SequenceWorldTest, ASpecWithAShorterMaxLengthKeepsTheMostRecentValuesOfAnMtbFile) {
  ScratchDir dir;
  DatagenOptions o = SequenceData(dir, 1500, 1, 1);
  ASSERT_TRUE(GenerateDataset(o).ok());
  JobSpec spec = *LoadJobSpec(dir.File("mtb/job.yaml"));
  const FeatureMap full = *FeatureMap::Create(spec);
  spec.sparse_fields[6].max_length = 3;
  const FeatureMap cut = *FeatureMap::Create(spec);
  const std::vector<std::string> files = *ExpandInputFiles({dir.File("mtb/train-*.mtb")}, DataSpec::Format::kMtb);
  for (bool shuffle : {false, true}) {  // range copies and gathers
    PipelineOptions po;
    po.shuffle = shuffle;
    po.batch_size = 64;
    const std::vector<Record> a = Drain(BatchPipeline::Create(full, files, po)->get());
    const std::vector<Record> b = Drain(BatchPipeline::Create(cut, files, po)->get());
    ASSERT_EQ(a.size(), b.size());
    size_t cut_records = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      const std::vector<uint64_t>& h = a[i].keys[6];
      const std::vector<uint64_t> last(h.size() > 3 ? h.end() - 3 : h.begin(), h.end());
      EXPECT_EQ(b[i].keys[6], last);
      cut_records += h.size() > 3;
      EXPECT_EQ(b[i].keys[1], a[i].keys[1]);  // other fields untouched
    }
    EXPECT_GT(cut_records, a.size() / 2);
  }
}

}  // namespace
}  // namespace mtps
