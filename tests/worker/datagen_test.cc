// Tests of the synthetic data generator: determinism by seed, the funnel it promises,
// the oracle AUC (models::ExactAuc, which it uses, against hand computations), job.yaml, and the mtps-datagen
// binary including `convert`.
#include "worker/data/datagen.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>

#include "data_test_util.h"
#include "models/metrics.h"
#include "worker/data/csv_reader.h"
#include "worker/data/input_files.h"

namespace mtps {
namespace {

using testing_data::Drain;
using testing_data::ReadFile;
using testing_data::Record;
using testing_data::ScratchDir;
using ::testing::HasSubstr;

DatagenOptions Small(const std::string& dir, uint64_t seed, int64_t rows = 4000) {
  DatagenOptions o;
  o.out_dir = dir;
  o.rows = rows;
  o.world.seed = seed;
  o.world.users = 500;
  o.world.items = 800;
  o.world.categories = 30;
  o.world.shops = 60;
  o.row_group_rows = 512;
  return o;
}

TEST(OracleAuc, EqualsHandComputation) {
  // Positives 0.35, 0.8; negatives 0.1, 0.4: pairs won 1 + 0 + 1 + 1 = 3 of 4.
  const std::vector<float> s1 = {0.1f, 0.4f, 0.35f, 0.8f}, y1 = {0, 0, 1, 1};
  EXPECT_DOUBLE_EQ(*models::ExactAuc(s1, y1), 0.75);
  // A tie between a positive and a negative counts half: (0.5 + 1 + 1 + 1) / 4.
  const std::vector<float> s2 = {0.5f, 0.5f, 0.2f, 0.9f}, y2 = {1, 0, 0, 1};
  EXPECT_DOUBLE_EQ(*models::ExactAuc(s2, y2), 0.875);
  EXPECT_FALSE(models::ExactAuc(s2, std::vector<float>{1, 1, 1, 1}).ok());
}

TEST(OracleAuc, EqualsPairCountingWithManyTies) {
  std::mt19937 rng(5);
  std::vector<float> s(700), y(700);
  for (size_t i = 0; i < s.size(); ++i) {
    s[i] = static_cast<float>(rng() % 20) / 20;  // heavy ties
    y[i] = rng() % 3 == 0 ? 1.0f : 0.0f;
  }
  double won = 0, pairs = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    for (size_t j = 0; j < s.size(); ++j) {
      if (y[i] != 1 || y[j] != 0) continue;
      pairs += 1;
      won += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
    }
  }
  EXPECT_NEAR(*models::ExactAuc(s, y), won / pairs, 1e-12);
}

TEST(Datagen, SameSeedSameBytesWhateverTheThreads) {
  ScratchDir dir;
  DatagenOptions a = Small(dir.File("a"), 3);
  a.threads = 1;
  DatagenOptions b = Small(dir.File("b"), 3);
  b.threads = 3;
  DatagenOptions c = Small(dir.File("c"), 4);
  ASSERT_TRUE(GenerateDataset(a).ok());
  ASSERT_TRUE(GenerateDataset(b).ok());
  ASSERT_TRUE(GenerateDataset(c).ok());
  for (const char* f : {"train-00000.mtb", "train-00003.mtb", "eval-00000.mtb", "oracle.json"}) {
    const std::string fa = ReadFile(dir.File(std::string("a/") + f));
    EXPECT_GT(fa.size(), 100u) << f;
    EXPECT_EQ(fa, ReadFile(dir.File(std::string("b/") + f))) << f;
    EXPECT_NE(fa, ReadFile(dir.File(std::string("c/") + f))) << f;
  }
}

// Reads a generated split (labels: click, purchase[, rating]).
std::vector<Record> ReadSplit(const std::string& dir, const char* pattern, DataSpec::Format format) {
  JobSpec spec = *LoadJobSpec(dir + "/job.yaml");
  static FeatureMap map;
  map = *FeatureMap::Create(spec);
  PipelineOptions o;
  o.format = format;
  o.shuffle = false;
  auto files = ExpandInputFiles({dir + "/" + pattern}, format);
  EXPECT_TRUE(files.ok()) << files.status();
  auto p = BatchPipeline::Create(map, *files, o);
  EXPECT_TRUE(p.ok()) << p.status();
  return Drain(p->get());
}

TEST(Datagen, FunnelIsWhatTheGeneratorPromises) {
  ScratchDir dir;
  DatagenOptions o = Small(dir.File("d"), 9, 60000);
  o.world.ctr = 0.15;
  o.world.conversion = 0.3;
  StatusOr<DatagenReport> r = GenerateDataset(o);
  ASSERT_TRUE(r.ok()) << r.status();
  const std::vector<Record> train = ReadSplit(o.out_dir, "train-*.mtb", DataSpec::Format::kMtb);
  ASSERT_EQ(train.size(), 54000u);
  double clicks = 0, purchases = 0;
  for (const Record& rec : train) {
    ASSERT_TRUE(rec.labels[1] == 0 || rec.labels[0] == 1) << "a purchase without a click";
    clicks += rec.labels[0];
    purchases += rec.labels[1];
  }
  // Calibrated targets, within sampling and calibration error (~4 standard deviations).
  EXPECT_NEAR(clicks / train.size(), 0.15, 0.01);
  EXPECT_NEAR(purchases / clicks, 0.3, 0.025);
  EXPECT_NEAR(r->train_ctr, clicks / train.size(), 1e-12);
  EXPECT_NEAR(r->train_conversion, purchases / clicks, 1e-12);
  // Labels correlate: P(purchase | click) = 0.3 against P(purchase | no click) = 0.
  EXPECT_GT(r->cvr.oracle_auc, r->ctr.oracle_auc);  // a purchase needs a click: easier to rank
}

TEST(Datagen, OracleAucIsTheTrueProbabilitiesAucOnTheEvalSplit) {
  ScratchDir dir;
  DatagenOptions o = Small(dir.File("o"), 21, 20000);
  o.eval_fraction = 0.25;
  StatusOr<DatagenReport> r = GenerateDataset(o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->eval_rows, 5000);
  // Recompute from the world: eval rows are the last 25% of row indices.
  EcommerceWorld world(o.world);
  std::vector<float> pc, pp, yc, yp;
  Impression imp;
  for (int64_t row = 15000; row < 20000; ++row) {
    world.Sample(row, &imp);
    pc.push_back(static_cast<float>(imp.p_click));
    pp.push_back(static_cast<float>(imp.p_click * imp.p_buy));
    yc.push_back(imp.click);
    yp.push_back(imp.purchase);
  }
  EXPECT_DOUBLE_EQ(r->ctr.oracle_auc, *models::ExactAuc(pc, yc));
  EXPECT_DOUBLE_EQ(r->cvr.oracle_auc, *models::ExactAuc(pp, yp));
  // The labels in the eval file are the ones scored.
  const std::vector<Record> eval = ReadSplit(o.out_dir, "eval-*.mtb", DataSpec::Format::kMtb);
  ASSERT_EQ(eval.size(), 5000u);
  for (size_t i = 0; i < eval.size(); ++i) {
    ASSERT_EQ(eval[i].labels[0], yc[i]);
    ASSERT_EQ(eval[i].labels[1], yp[i]);
  }
  // Learnable but not trivial.
  EXPECT_GT(r->ctr.oracle_auc, 0.65);
  EXPECT_LT(r->ctr.oracle_auc, 0.95);
  const std::string json = ReadFile(o.out_dir + "/oracle.json");
  char auc[32];
  std::snprintf(auc, sizeof auc, "%.6f", r->ctr.oracle_auc);
  EXPECT_THAT(json, HasSubstr(std::string("\"oracle_auc\": ") + auc));
  EXPECT_THAT(json, HasSubstr("CTCVR"));
}

TEST(Datagen, JobYamlIsACompleteSpecForTheData) {
  ScratchDir dir;
  DatagenOptions o = Small(dir.File("j"), 2);
  o.rating = true;
  StatusOr<DatagenReport> r = GenerateDataset(o);
  ASSERT_TRUE(r.ok()) << r.status();
  StatusOr<JobSpec> spec = LoadJobSpec(o.out_dir + "/job.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->model.type, ModelSpec::Type::kMmoe);
  ASSERT_EQ(spec->tasks.size(), 3u);
  EXPECT_EQ(spec->tasks[0].label, "click");
  EXPECT_EQ(spec->tasks[1].name, "cvr");
  EXPECT_EQ(spec->tasks[1].label, "purchase");
  EXPECT_EQ(spec->tasks[2].loss, TaskSpec::Loss::kMse);
  StatusOr<std::vector<std::string>> train = ExpandInputFiles(spec->data.train, spec->data.format);
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ(*train, r->train_files);
  EXPECT_EQ(*ExpandInputFiles(spec->data.eval, spec->data.format), r->eval_files);
  // The rating's noise is N(0, 0.5^2): the oracle MSE is near 0.25.
  EXPECT_NEAR(r->rating.oracle_mse, 0.25, 0.03);
  EXPECT_THAT(ReadFile(o.out_dir + "/oracle.json"), HasSubstr("\"rating\": {\"label\": \"rating\", \"loss\": \"mse\""));
}

TEST(Datagen, RefusesBadOptions) {
  ScratchDir dir;
  DatagenOptions o = Small(dir.File("x"), 1);
  o.rows = 0;
  EXPECT_THAT(GenerateDataset(o).status().message(), HasSubstr("rows must be > 0, got 0"));
  o = Small(dir.File("x"), 1);
  o.world.conversion = 1.5;
  EXPECT_THAT(GenerateDataset(o).status().message(), HasSubstr("conversion"));
}

int RunCommand(const std::string& command) {
  const int rc = std::system((command + " > /dev/null 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(DatagenBinary, GeneratesCsvAndConvertsIt) {
  ScratchDir dir;
  const std::string bin = std::string(MTPS_BIN_DIR) + "/mtps-datagen";
  const std::string out = dir.File("cli");
  ASSERT_EQ(RunCommand(bin + " --out " + out + " --rows 3000 --seed 5 --users 200 --items 300 --categories 10 --shops 20 "
                      "--format csv --train_files 2 --threads 1"),
            0);
  ASSERT_EQ(RunCommand(bin + " convert --in " + out + "/train-00001.csv --config " + out + "/job.yaml --out " + out +
                "/train-00001.mtb"),
            0);
  const std::vector<Record> csv = ReadSplit(out, "train-00001.csv", DataSpec::Format::kCsv);
  const std::vector<Record> mtb = ReadSplit(out, "train-00001.mtb", DataSpec::Format::kMtb);
  EXPECT_EQ(csv.size(), 1350u);
  EXPECT_TRUE(csv == mtb);
  EXPECT_NE(RunCommand(bin + " convert --in " + out + "/absent.csv --config " + out + "/job.yaml --out " + out + "/x.mtb"), 0);
  EXPECT_NE(RunCommand(bin + " --out " + out + " --format parquet"), 0);
  EXPECT_NE(RunCommand(bin + " frobnicate"), 0);
}

}  // namespace
}  // namespace mtps
