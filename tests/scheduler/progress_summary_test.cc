// Tests of ProgressTracker (validation, aggregation over workers) and of summary.json and
// oracle.json handling.
#include <capnp/message.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

// property_tree's JSON parser includes the deprecated <boost/bind.hpp>; this keeps its
// build-time notice quiet without changing behaviour.
#define BOOST_BIND_GLOBAL_PLACEHOLDERS
#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <cmath>
#include <fstream>

#include "scheduler/progress_tracker.h"
#include "scheduler/run_summary.h"
#include "tests/scheduler/scheduler_test_util.h"

namespace mtps::scheduler {
namespace {

using ::mtps::scheduler::testing::ReadFile;
using ::mtps::scheduler::testing::TempDir;
using ::testing::HasSubstr;

struct Task {
  std::string name;
  double loss, auc, logloss;
};

void SetTasks(proto::Progress::Builder p, const std::vector<Task>& tasks) {
  auto list = p.initTasks(tasks.size());
  for (size_t i = 0; i < tasks.size(); ++i) {
    list[i].setName(tasks[i].name);
    list[i].setLoss(tasks[i].loss);
    list[i].setAuc(tasks[i].auc);
    list[i].setLogloss(tasks[i].logloss);
  }
}

Status Report(ProgressTracker& t, int rank, const std::string& phase, uint64_t step, uint64_t samples,
              double sps, double train_seconds, std::vector<Task> tasks) {
  capnp::MallocMessageBuilder message;
  auto p = message.initRoot<proto::Progress>();
  p.setPhase(phase);
  p.setStep(step);
  p.setSamples(samples);
  p.setSamplesPerSec(sps);
  p.setTrainSeconds(train_seconds);
  p.setEpoch(1);
  SetTasks(p, tasks);
  return t.Record(rank, p.asReader());
}

TEST(ProgressTrackerTest, AggregatesOverWorkers) {
  ProgressTracker t(2, {"ctr", "cvr"});
  ASSERT_TRUE(Report(t, 0, "train", 100, 1000, 500, 2, {{"ctr", 0.5, NAN, NAN}, {"cvr", 0.2, NAN, NAN}}).ok());
  ASSERT_TRUE(Report(t, 1, "train", 120, 3000, 700, 4, {{"ctr", 0.7, NAN, NAN}}).ok());
  ClusterProgress c = t.Current();
  EXPECT_EQ(c.reporting, 2);
  EXPECT_EQ(c.samples, 4000u);
  EXPECT_DOUBLE_EQ(c.samples_per_sec, 1200);
  EXPECT_DOUBLE_EQ(c.train_seconds, 4);
  EXPECT_EQ(c.min_step, 100u);
  EXPECT_EQ(c.max_step, 120u);
  EXPECT_DOUBLE_EQ(c.train_loss["ctr"], 0.6);
  EXPECT_DOUBLE_EQ(c.train_loss["cvr"], 0.2);
  EXPECT_TRUE(c.eval.empty());
  EXPECT_THAT(t.Line(), HasSubstr("4000 samples | 1200 samples/s | 0/2 workers done | ctr loss 0.6000"));

  ASSERT_TRUE(Report(t, 0, "eval", 100, 1000, 0, 2, {{"ctr", 0.4, 0.70, 0.45}}).ok());
  ASSERT_TRUE(Report(t, 1, "done", 150, 3500, 0, 5, {{"ctr", 0.4, 0.80, 0.35}}).ok());
  c = t.Current();
  EXPECT_DOUBLE_EQ(c.eval["ctr"].auc, 0.75);
  EXPECT_DOUBLE_EQ(c.eval["ctr"].logloss, 0.40);
  EXPECT_EQ(c.done, 1);
  EXPECT_FALSE(t.AllDone());
  ASSERT_TRUE(Report(t, 0, "done", 140, 2000, 0, 3, {}).ok());
  EXPECT_TRUE(t.AllDone());
  EXPECT_DOUBLE_EQ(t.Current().eval["ctr"].auc, 0.75) << "an empty done report keeps the eval";
}

TEST(ProgressTrackerTest, BadReportsAreRefusedNamingTheValue) {
  ProgressTracker t(1, {"ctr"});
  Status s = Report(t, 3, "train", 1, 1, 1, 1, {});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("worker 3: no such worker (the job has 1)"));
  s = Report(t, 0, "warmup", 1, 1, 1, 1, {});
  EXPECT_THAT(s.message(), HasSubstr("unknown phase 'warmup'"));
  s = Report(t, 0, "train", 1, 1, 1, 1, {{"ctrr", 0.1, NAN, NAN}});
  EXPECT_THAT(s.message(), HasSubstr("unknown task 'ctrr'"));
  s = Report(t, 0, "train", 1, 1, INFINITY, 1, {});
  EXPECT_THAT(s.message(), HasSubstr("must be finite"));
  EXPECT_EQ(t.Current().reporting, 0) << "refused reports change nothing";
  ASSERT_TRUE(Report(t, 0, "done", 1, 1, 1, 1, {}).ok());
  EXPECT_EQ(Report(t, 0, "train", 2, 2, 1, 1, {}).code(), StatusCode::kFailedPrecondition);
}

// A "train" report that closes `epoch` (epochEnd), or an "eval" report of it.
Status EpochReport(ProgressTracker& t, int rank, const std::string& phase, uint32_t epoch, uint64_t epoch_samples,
                   double epoch_seconds, std::vector<Task> tasks) {
  capnp::MallocMessageBuilder message;
  auto p = message.initRoot<proto::Progress>();
  p.setPhase(phase);
  p.setEpoch(epoch);
  p.setEpochEnd(phase == "train");
  p.setEpochSamples(epoch_samples);
  p.setEpochSeconds(epoch_seconds);
  p.setEpochRecords(40000);
  p.setDataPosition(phase == "train" ? 20000 : 0);
  SetTasks(p, tasks);
  return t.Record(rank, p.asReader());
}

TEST(ProgressTrackerTest, HistoryHasOneEntryPerEpochWithItsValues) {
  ProgressTracker t(2, {"ctr", "cvr"});
  // Epoch 0: both workers close it, rank 0 evaluates it.
  ASSERT_TRUE(EpochReport(t, 0, "train", 0, 20000, 2.0, {{"ctr", 0.50, NAN, NAN}, {"cvr", 0.20, NAN, NAN}}).ok());
  ASSERT_TRUE(EpochReport(t, 1, "train", 0, 19000, 2.5, {{"ctr", 0.70, NAN, NAN}, {"cvr", 0.10, NAN, NAN}}).ok());
  ASSERT_TRUE(EpochReport(t, 0, "eval", 0, 0, 0, {{"ctr", 0.4, 0.70, 0.45}, {"cvr", 0.1, 0.80, 0.09}}).ok());
  // A plain train report in epoch 1 adds nothing to the history.
  ASSERT_TRUE(Report(t, 0, "train", 300, 30000, 900, 3, {{"ctr", 0.9, NAN, NAN}}).ok());
  // Epoch 1: closed by both, evaluated after; the worker's "best epoch" report of epoch 0
  // sent again at the end changes nothing.
  ASSERT_TRUE(EpochReport(t, 0, "train", 1, 20000, 1.5, {{"ctr", 0.40, NAN, NAN}, {"cvr", 0.15, NAN, NAN}}).ok());
  ASSERT_TRUE(EpochReport(t, 1, "train", 1, 20000, 1.0, {{"ctr", 0.30, NAN, NAN}, {"cvr", 0.05, NAN, NAN}}).ok());
  ASSERT_TRUE(EpochReport(t, 0, "eval", 1, 0, 0, {{"ctr", 0.3, 0.72, 0.43}, {"cvr", 0.1, 0.79, 0.10}}).ok());
  ASSERT_TRUE(EpochReport(t, 0, "eval", 0, 0, 0, {{"ctr", 0.4, 0.70, 0.45}, {"cvr", 0.1, 0.80, 0.09}}).ok());

  const std::vector<EpochSummary> h = t.History();
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].epoch, 0);
  EXPECT_EQ(h[0].samples, 39000u);
  EXPECT_DOUBLE_EQ(h[0].seconds, 2.5) << "the slowest worker";
  ASSERT_EQ(h[0].tasks.size(), 2u);
  EXPECT_EQ(h[0].tasks[0].name, "ctr");
  EXPECT_DOUBLE_EQ(h[0].tasks[0].train_loss, 0.60);
  EXPECT_DOUBLE_EQ(h[0].tasks[0].auc, 0.70);
  EXPECT_DOUBLE_EQ(h[0].tasks[0].logloss, 0.45);
  EXPECT_DOUBLE_EQ(h[0].tasks[1].train_loss, 0.15);
  EXPECT_DOUBLE_EQ(h[0].tasks[1].auc, 0.80);
  EXPECT_EQ(h[1].epoch, 1);
  EXPECT_EQ(h[1].samples, 40000u);
  EXPECT_DOUBLE_EQ(h[1].seconds, 1.5);
  EXPECT_DOUBLE_EQ(h[1].tasks[0].train_loss, 0.35);
  EXPECT_DOUBLE_EQ(h[1].tasks[0].auc, 0.72);
  EXPECT_DOUBLE_EQ(h[1].tasks[1].auc, 0.79);
  EXPECT_TRUE(h[0].evaluated);
  EXPECT_TRUE(h[1].evaluated);
  EXPECT_EQ(t.Current().epoch_records, 40000u);

  // The history survives the journal's Export/Import.
  ProgressTracker restored(2, {"ctr", "cvr"});
  ASSERT_TRUE(restored.Import(t.Export()).ok());
  EXPECT_EQ(restored.History().size(), 2u);
  EXPECT_DOUBLE_EQ(restored.History()[1].tasks[0].train_loss, 0.35);

  EXPECT_EQ(EpochReport(t, 0, "train", 2, 1, -1, {}).code(), StatusCode::kInvalidArgument)
      << "negative epoch seconds";
}

TEST(ProgressTrackerTest, HistoryWithoutEvaluationHasNaNMetrics) {
  ProgressTracker t(1, {"ctr"});
  ASSERT_TRUE(EpochReport(t, 0, "train", 0, 100, 1, {{"ctr", 0.5, NAN, NAN}}).ok());
  const std::vector<EpochSummary> h = t.History();
  ASSERT_EQ(h.size(), 1u);
  EXPECT_DOUBLE_EQ(h[0].tasks[0].train_loss, 0.5);
  EXPECT_TRUE(std::isnan(h[0].tasks[0].auc));
  EXPECT_FALSE(h[0].evaluated) << "a rejoining worker must not take it as an evaluation";
}

TEST(ProgressTrackerTest, LineAtTheEndShowsTheRunsRateNotZero) {
  ProgressTracker t(1, {"ctr"});
  ASSERT_TRUE(Report(t, 0, "done", 100, 5000, 0, 2, {}).ok());
  EXPECT_THAT(t.Line(), HasSubstr("5000 samples | 2500 samples/s | 1/1 workers done"));
}

TEST(RunSummaryTest, WritesEveryFieldAsJson) {
  TempDir dir;
  RunSummary s{.model = "mmoe", .mode = "async", .servers = 2, .workers = 3, .epochs = 4,
               .best_epoch = 2, .best_checkpoint = "/ckpt/000007", .samples = 123456, .train_seconds = 2.5, .samples_per_sec = 49382.4,
               .tasks = {{"ctr", 0.75, 0.41, 0.78}, {"cvr", NAN, 0.1, std::nullopt}}};
  auto fs = NewPosixFileSystem();
  const std::string run_dir = dir.path() + "/run/nested";
  ASSERT_TRUE(WriteRunSummary(*fs, run_dir, s).ok());
  EXPECT_FALSE(std::filesystem::exists(SummaryPath(run_dir) + ".tmp"));
  const std::string text = ReadFile(SummaryPath(run_dir));
  EXPECT_THAT(text, HasSubstr("\"cvr\": {\"auc\": null, \"logloss\": 0.1}"));
  boost::property_tree::ptree root;
  std::istringstream in(text);
  boost::property_tree::read_json(in, root);
  EXPECT_EQ(root.get<std::string>("model"), "mmoe");
  EXPECT_EQ(root.get<std::string>("mode"), "async");
  EXPECT_EQ(root.get<int>("servers"), 2);
  EXPECT_EQ(root.get<int>("workers"), 3);
  EXPECT_EQ(root.get<int>("epochs"), 4);
  EXPECT_EQ(root.get<int>("best_epoch"), 2);
  EXPECT_EQ(root.get<std::string>("best_checkpoint"), "/ckpt/000007");
  EXPECT_EQ(root.get<uint64_t>("samples"), 123456u);
  EXPECT_DOUBLE_EQ(root.get<double>("train_seconds"), 2.5);
  EXPECT_DOUBLE_EQ(root.get<double>("samples_per_sec"), 49382.4);
  EXPECT_DOUBLE_EQ(root.get<double>("tasks.ctr.auc"), 0.75);
  EXPECT_DOUBLE_EQ(root.get<double>("tasks.ctr.logloss"), 0.41);
  EXPECT_DOUBLE_EQ(root.get<double>("tasks.ctr.oracle_auc"), 0.78);
  EXPECT_FALSE(root.get_optional<double>("tasks.cvr.oracle_auc"));
  EXPECT_EQ(root.get_child("history").size(), 0u);
}

TEST(RunSummaryTest, WritesThePerEpochHistory) {
  RunSummary s{.model = "mmoe", .mode = "sync", .epochs = 2};
  s.history = {{.epoch = 0, .samples = 1000, .seconds = 1.5, .tasks = {{"ctr", 0.5, 0.7, 0.45}, {"cvr", 0.2, NAN, 0.1}}},
               {.epoch = 1, .samples = 900, .seconds = 1.25, .tasks = {{"ctr", 0.4, 0.72, 0.44}, {"cvr", 0.1, 0.8, 0.09}}}};
  const std::string text = RunSummaryJson(s);
  EXPECT_THAT(text, HasSubstr("\"cvr\": {\"train_loss\": 0.2, \"auc\": null, \"logloss\": 0.1}"));
  boost::property_tree::ptree root;
  std::istringstream in(text);
  boost::property_tree::read_json(in, root);
  std::vector<boost::property_tree::ptree> epochs;
  for (const auto& [key, epoch] : root.get_child("history")) epochs.push_back(epoch);
  ASSERT_EQ(epochs.size(), 2u);
  EXPECT_EQ(epochs[1].get<int>("epoch"), 1);
  EXPECT_EQ(epochs[1].get<uint64_t>("samples"), 900u);
  EXPECT_DOUBLE_EQ(epochs[1].get<double>("seconds"), 1.25);
  EXPECT_DOUBLE_EQ(epochs[1].get<double>("tasks.ctr.train_loss"), 0.4);
  EXPECT_DOUBLE_EQ(epochs[1].get<double>("tasks.cvr.auc"), 0.8);
  EXPECT_DOUBLE_EQ(epochs[0].get<double>("tasks.ctr.logloss"), 0.45);
}

TEST(RunSummaryTest, ReadsOracleAucsInEveryAcceptedShape) {
  TempDir dir;
  const std::string path = dir.path() + "/oracle.json";
  std::ofstream(path) << R"({"tasks": {"ctr": {"auc": 0.81}, "cvr": {"oracle_auc": 0.9}}, "rating": 0.6})";
  auto aucs = ReadOracleAucs(path, {"ctr", "cvr", "rating", "absent"});
  ASSERT_TRUE(aucs.ok()) << aucs.status();
  EXPECT_DOUBLE_EQ(aucs->at("ctr"), 0.81);
  EXPECT_DOUBLE_EQ(aucs->at("cvr"), 0.9);
  EXPECT_DOUBLE_EQ(aucs->at("rating"), 0.6);
  EXPECT_EQ(aucs->count("absent"), 0u);

  std::ofstream(path) << R"({"ctr": {"auc": 1.7}})";
  EXPECT_THAT(ReadOracleAucs(path, {"ctr"}).status().message(), HasSubstr("no AUC in [0, 1]"));
  std::ofstream(path) << R"({"ctr": {"auc": 0.7)";
  auto truncated = ReadOracleAucs(path, {"ctr"});
  EXPECT_EQ(truncated.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(truncated.status().message(), HasSubstr(path));
  EXPECT_EQ(ReadOracleAucs(dir.path() + "/missing.json", {"ctr"}).status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace mtps::scheduler
