// Whole-cluster tests: a real mtps-scheduler, mtps-server and mtps-worker processes on
// loopback. A one-worker synchronous run must equal LocalTrainer on every parameter; an
// asynchronous 2 x 2 run must reach LocalTrainer's AUC; a node with another job spec is
// refused; a worker killed mid-training fails the job within the heartbeat timeout.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "ps/checkpoint.h"
#include "base/checkpoint_manifest.h"
#include "models/blas_core.h"
#include "protocol/exit_codes.h"
#include "tests/common/child_process.h"
#include "tests/common/wait_for.h"
#include "worker/data/datagen.h"
#include "worker/local_trainer.h"

namespace mtps {
namespace {

namespace fs = std::filesystem;
using mtps::testing::BinPath;
using mtps::testing::ChildProcess;
using mtps::testing::FreePort;
using mtps::testing::WaitFor;
using std::chrono::seconds;

// A job over a generated e-commerce data set: two optimizers (Adagrad and Adam, whose
// bias correction depends on the per-row update count) so that both travel the wire.
std::string JobYaml(const fs::path& data, const std::string& mode, int epochs,
                    const fs::path& checkpoints, uint64_t checkpoint_interval_steps = 0) {
  return "name: cluster-test\n"
         "data:\n  format: mtb\n  train: [\"" + (data / "train-*.mtb").string() + "\"]\n"
         "  eval: [\"" + (data / "eval-*.mtb").string() + "\"]\n"
         "  oracle: \"" + (data / "oracle.json").string() + "\"\n"
         "features:\n  sparse:\n"
         "    - {name: user_id, table: user}\n"
         "    - {name: item_id, table: item}\n"
         "    - {name: category, table: item}\n"
         "    - {name: shop, table: shop}\n"
         "    - {name: recent_items, table: item, multi_valued: true, pooling: mean}\n"
         "  dense: [position, price, user_activity]\n"
         "tables:\n"
         "  - {name: user, dim: 8, optimizer: {type: adagrad, lr: 0.05}}\n"
         "  - {name: item, dim: 8, optimizer: {type: adam, lr: 0.01}}\n"
         "  - {name: shop, dim: 4, optimizer: {type: sgd, lr: 0.05, l2: 0.001}}\n"
         "model: {type: mmoe, experts: 3, expert_units: [16], tower_units: [8]}\n"
         "tasks:\n  - {name: ctr, label: click}\n  - {name: cvr, label: purchase}\n"
         "training: {batch_size: 256, epochs: " + std::to_string(epochs) + ", mode: " + mode +
         ", prefetch: 1, max_staleness: 2, eval_batch_size: 2048,"
         " dense_optimizer: {type: adam, lr: 0.003}}\n"
         "checkpoint: {dir: \"" + checkpoints.string() + "\", interval_steps: " +
         std::to_string(checkpoint_interval_steps) + "}\n";
}

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The pid keeps two runs of the same test (two people, one machine) out of each other's
    // directory: SetUp empties it.
    dir_ = fs::path(::testing::TempDir()) /
           ("cluster_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
            "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "logs");
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }

  void Generate(int64_t rows) {
    DatagenOptions options;
    options.out_dir = (dir_ / "data").string();
    options.rows = rows;
    options.train_files = 4;
    options.row_group_rows = 1024;
    options.world.seed = 5;
    options.world.users = 300;
    options.world.items = 200;
    options.world.categories = 12;
    options.world.shops = 30;
    StatusOr<DatagenReport> report = GenerateDataset(options);
    ASSERT_TRUE(report.ok()) << report.status();
  }

  std::string WriteSpec(const std::string& name, const std::string& yaml) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << yaml;
    return path;
  }

  // Starts a scheduler for `servers` servers and `workers` workers on `spec_path`, the
  // servers, and the first `start_workers` workers (all by default).
  void StartCluster(const std::string& spec_path, int servers, int workers,
                    double heartbeat_timeout = 10, int start_workers = -1,
                    double recover_timeout = 0) {
    const int port = FreePort();
    scheduler_endpoint_ = "tcp://127.0.0.1:" + std::to_string(port);
    scheduler_args_ = {"--config", spec_path, "--host", "127.0.0.1", "--port",
                       std::to_string(port), "--http_port", "0", "--num_servers",
                       std::to_string(servers), "--num_workers", std::to_string(workers),
                       "--run_dir", (dir_ / "run").string(), "--heartbeat_timeout",
                       std::to_string(heartbeat_timeout), "--register_timeout", "60",
                       "--recover_timeout", std::to_string(recover_timeout), "--logtostderr"};
    scheduler_ = std::make_unique<ChildProcess>(BinPath("mtps-scheduler"), scheduler_args_,
                                                (dir_ / "logs" / "scheduler.log").string());
    for (int s = 0; s < servers; ++s) StartServer(spec_path, s);
    for (int w = 0; w < (start_workers < 0 ? workers : start_workers); ++w) StartWorker(spec_path, w);
  }
  // Server `index` asks for rank `index`. `restart` > 0: the process started again (as
  // local.sh does) under its rank, restoring the newest checkpoint; it replaces servers_[index].
  void StartServer(const std::string& spec_path, int index, int restart = 0) {
    std::vector<std::string> args = {"--config", spec_path, "--scheduler", scheduler_endpoint_,
                                     "--host", "127.0.0.1", "--port", "0", "--http_port", "0",
                                     "--threads", "2", "--rank", std::to_string(index),
                                     "--logtostderr"};
    if (restart > 0) args.push_back("--restore");
    auto process = std::make_unique<ChildProcess>(
        BinPath("mtps-server"), args,
        (dir_ / "logs" / ("server-" + std::to_string(index) + (restart ? ".restart" + std::to_string(restart) : "") +
                          ".log")).string());
    if (restart > 0) servers_[index] = std::move(process);
    else servers_.push_back(std::move(process));
  }

  // The scheduler started again as local.sh does: same port, --restore (its journal).
  void RestartScheduler(int restart) {
    std::vector<std::string> args = scheduler_args_;
    args.push_back("--restore");
    scheduler_ = std::make_unique<ChildProcess>(
        BinPath("mtps-scheduler"), args,
        (dir_ / "logs" / ("scheduler.restart" + std::to_string(restart) + ".log")).string());
  }
  // The last "step N" a worker logged (0 before any).
  static uint64_t LastLoggedStep(const std::string& log) {
    const size_t at = log.rfind(" step ");
    return at == std::string::npos ? 0 : std::strtoull(log.c_str() + at + 6, nullptr, 10);
  }

  bool HasWholeCheckpoint() { return !ListWholeCheckpoints((dir_ / "ckpt").string(), 0).empty(); }
  std::string Summary() { return mtps::testing::ReadFile((dir_ / "run" / "summary.json").string()); }

  // A job of `mode` on `servers` servers and 2 workers, 4 epochs at most, which early
  // stopping (patience 2, min_delta 1: no epoch after the first counts as a gain) ends
  // after epoch 2; a checkpoint every 10 steps. Returns the spec's path once it succeeded.
  std::string RunJobThatStopsEarly(const std::string& mode, int servers) {
    Generate(20000);
    std::string yaml = JobYaml(dir_ / "data", mode, 4, dir_ / "ckpt", /*interval=*/10);
    yaml.insert(yaml.find("dense_optimizer:"), "early_stopping: {patience: 2, min_delta: 1.0}, ");
    const std::string spec_path = WriteSpec("job.yaml", yaml);
    StartCluster(spec_path, servers, 2);
    ExpectJobSucceeds(seconds(180));
    return spec_path;
  }

  // A 2-server, 2-worker job of `mode`, checkpointing every 10 steps: once a whole
  // checkpoint exists, server 1 gets `signal` and the scheduler declares it lost (after
  // the 2 s heartbeat timeout). Sets *spec_path.
  void StartJobAndLoseServerOne(const std::string& mode, int signal, std::string* spec_path) {
    Generate(60000);
    *spec_path = WriteSpec("job.yaml", JobYaml(dir_ / "data", mode, 2, dir_ / "ckpt", /*interval=*/10));
    StartCluster(*spec_path, 2, 2, /*heartbeat_timeout=*/2, -1, /*recover_timeout=*/60);
    ASSERT_TRUE(WaitFor([&] { return HasWholeCheckpoint(); }, seconds(60))) << AllLogs();
    servers_[1]->Signal(signal);
    ASSERT_TRUE(WaitFor([&] { return scheduler_->Log().find("is lost") != std::string::npos; },
                        seconds(30)))
        << AllLogs();
  }
  // StartJobAndLoseServerOne with SIGKILL, server 1 started again under its rank (as
  // local.sh does); returns the spec's path once the job succeeded.
  std::string RunWithServerOneKilledAndReplaced(const std::string& mode) {
    std::string spec_path;
    EXPECT_NO_FATAL_FAILURE(StartJobAndLoseServerOne(mode, SIGKILL, &spec_path));
    if (HasFatalFailure()) return spec_path;
    StartServer(spec_path, 1, /*restart=*/1);
    ExpectJobSucceeds(seconds(180));
    return spec_path;
  }

  // summary.json's AUC of every task is within `tolerance` of an undisturbed LocalTrainer run.
  void ExpectAucNearLocalTrainer(const std::string& spec_path, double tolerance) {
    const std::string summary = mtps::testing::ReadFile((dir_ / "run" / "summary.json").string());
    ASSERT_FALSE(summary.empty()) << AllLogs();
    StatusOr<JobSpec> spec = LoadJobSpec(spec_path);
    ASSERT_TRUE(spec.ok());
    StatusOr<std::unique_ptr<LocalTrainer>> local = LocalTrainer::Create(*spec, {});
    ASSERT_TRUE(local.ok());
    StatusOr<EvalResult> reference = (*local)->Run();
    ASSERT_TRUE(reference.ok()) << reference.status();
    for (const TaskEval& task : reference->tasks) {
      const size_t at = summary.find("\"" + task.name + "\"");
      ASSERT_NE(at, std::string::npos) << summary;
      const size_t auc_at = summary.find("\"auc\":", at);
      ASSERT_NE(auc_at, std::string::npos) << summary;
      EXPECT_NEAR(std::stod(summary.substr(auc_at + 6)), task.auc, tolerance) << task.name << "\n" << summary;
    }
  }
  // Worker `index` asks for rank `index`; `restart` > 0 replaces workers_[index].
  void StartWorker(const std::string& spec_path, int index, int restart = 0) {
    auto process = std::make_unique<ChildProcess>(
        BinPath("mtps-worker"),
        std::vector<std::string>{"--config", spec_path, "--scheduler", scheduler_endpoint_,
                                 "--http_port", "0", "--log_every", "5", "--rank",
                                 std::to_string(index), "--logtostderr"},
        (dir_ / "logs" / ("worker-" + std::to_string(index) +
                          (restart ? ".restart" + std::to_string(restart) : "") + ".log")).string());
    if (restart > 0) workers_[index] = std::move(process);
    else workers_.push_back(std::move(process));
  }
  // A whole checkpoint that recorded the workers' data positions (a consistent cut).
  bool HasCutCheckpoint() {
    for (const WholeCheckpoint& c : ListWholeCheckpoints((dir_ / "ckpt").string(), 0)) {
      if (c.manifest.ok() && !c.manifest->workers.empty()) return true;
    }
    return false;
  }

  std::string AllLogs() {
    std::string logs = "--- scheduler\n" + scheduler_->LogTail(40);
    for (size_t i = 0; i < servers_.size(); ++i) {
      logs += "--- server " + std::to_string(i) + "\n" + servers_[i]->LogTail(20);
    }
    for (size_t i = 0; i < workers_.size(); ++i) {
      logs += "--- worker " + std::to_string(i) + "\n" + workers_[i]->LogTail(20);
    }
    return logs;
  }

  // Every process of a successful job exits 0 within `limit`.
  void ExpectJobSucceeds(seconds limit) {
    std::optional<int> code = scheduler_->Wait(limit);
    ASSERT_TRUE(code.has_value()) << "the scheduler did not finish\n" << AllLogs();
    ASSERT_EQ(*code, 0) << AllLogs();
    for (auto& p : servers_) EXPECT_EQ(p->Wait(seconds(20)), std::optional<int>(0)) << AllLogs();
    for (auto& p : workers_) EXPECT_EQ(p->Wait(seconds(20)), std::optional<int>(0)) << AllLogs();
  }

  fs::path dir_;
  std::string scheduler_endpoint_;
  std::vector<std::string> scheduler_args_;
  std::unique_ptr<ChildProcess> scheduler_;
  std::vector<std::unique_ptr<ChildProcess>> servers_;
  std::vector<std::unique_ptr<ChildProcess>> workers_;
};

TEST_F(ClusterTest, OneSyncWorkerEqualsLocalTrainerOnEveryParameter) {
  Generate(8000);
  const std::string spec_path = WriteSpec("job.yaml", JobYaml(dir_ / "data", "sync", 1, dir_ / "ckpt"));
  // The worker loads the BLAS kernels of the LocalTrainer it is compared with: this
  // process's, once it has picked them (models/blas_core.h).
  models::UseTheBestBlasKernels();
  const char* before = std::getenv("OPENBLAS_CORETYPE");
  const std::optional<std::string> restore = before ? std::optional<std::string>(before) : std::nullopt;
  ASSERT_EQ(setenv("OPENBLAS_CORETYPE", models::BlasCoreName().c_str(), 1), 0);
  StartCluster(spec_path, 1, 1);
  if (restore) setenv("OPENBLAS_CORETYPE", restore->c_str(), 1);
  else unsetenv("OPENBLAS_CORETYPE");
  ExpectJobSucceeds(seconds(120));
  if (HasFatalFailure()) return;

  StatusOr<JobSpec> spec = LoadJobSpec(spec_path);
  ASSERT_TRUE(spec.ok()) << spec.status();
  StatusOr<std::unique_ptr<LocalTrainer>> local = LocalTrainer::Create(*spec, {});
  ASSERT_TRUE(local.ok()) << local.status();
  ASSERT_TRUE((*local)->TrainEpoch(0).ok());

  // The servers' final checkpoint holds every parameter of the distributed run.
  StatusOr<std::string> checkpoint = FindNewestCheckpoint((dir_ / "ckpt").string(), 0);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status() << "\n" << AllLogs();
  auto files = NewPosixFileSystem();
  size_t rows_compared = 0;
  for (uint32_t t = 0; t < spec->tables.size(); ++t) {
    const TableSpec& table_spec = spec->tables[t];
    auto loaded = ps::LoadTableParts(*files, ps::TableCheckpointPath(*checkpoint, 0, table_spec.name),
                                     table_spec, 1);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    const ps::EmbeddingTable& remote = *(*loaded)[0];
    const ps::EmbeddingTable* reference = (*local)->store().table(t);
    ASSERT_EQ(remote.rows(), reference->rows()) << table_spec.name;
    const int values = reference->values_per_row();
    std::vector<float> weights(table_spec.dim), state(values - table_spec.dim);
    reference->ForEachRow([&](uint64_t key, const float* expected, const ps::RowMeta& meta) {
      ps::RowMeta remote_meta;
      ASSERT_TRUE(remote.Lookup(key, weights.data(), state.data(), &remote_meta)) << key;
      for (int d = 0; d < table_spec.dim; ++d) ASSERT_NEAR(weights[d], expected[d], 1e-5) << key;
      for (size_t s = 0; s < state.size(); ++s) {
        ASSERT_NEAR(state[s], expected[table_spec.dim + s], 1e-5) << key;
      }
      EXPECT_EQ(remote_meta.update_count, meta.update_count) << key;
      ++rows_compared;
    });
  }
  EXPECT_GT(rows_compared, 400u);

  ps::DenseBlockStore remote_dense(spec->training.dense_optimizer);
  ASSERT_TRUE(ps::LoadDenseCheckpoint(*files, ps::DenseCheckpointPath(*checkpoint, 0), remote_dense).ok());
  std::vector<ps::DenseBlockSnapshot> expected = (*local)->store().dense().Snapshot();
  std::vector<ps::DenseBlockSnapshot> actual = remote_dense.Snapshot();
  ASSERT_EQ(actual.size(), expected.size());
  ASSERT_GT(expected.size(), 10u);
  for (size_t b = 0; b < expected.size(); ++b) {
    ASSERT_EQ(actual[b].id, expected[b].id);
    EXPECT_EQ(actual[b].update_count, expected[b].update_count);
    ASSERT_EQ(actual[b].values.size(), expected[b].values.size());
    for (size_t i = 0; i < expected[b].values.size(); ++i) {
      ASSERT_NEAR(actual[b].values[i], expected[b].values[i], 1e-5) << expected[b].name << "[" << i << "]";
    }
  }
}

TEST_F(ClusterTest, TwoAsyncWorkersReachLocalTrainerAuc) {
  Generate(60000);
  const std::string spec_path = WriteSpec("job.yaml", JobYaml(dir_ / "data", "async", 2, dir_ / "ckpt"));
  StartCluster(spec_path, 2, 2);
  ExpectJobSucceeds(seconds(240));
  if (HasFatalFailure()) return;

  ExpectAucNearLocalTrainer(spec_path, 0.01);
  const std::string summary = mtps::testing::ReadFile((dir_ / "run" / "summary.json").string());
  EXPECT_NE(summary.find("\"oracle_auc\""), std::string::npos) << summary;
  EXPECT_NE(summary.find("\"workers\": 2"), std::string::npos) << summary;
}

TEST_F(ClusterTest, TwoSyncWorkersTakeTheSameStepsAndLearn) {
  Generate(20000);
  const std::string spec_path = WriteSpec("job.yaml", JobYaml(dir_ / "data", "sync", 1, dir_ / "ckpt"));
  StartCluster(spec_path, 2, 2);
  ExpectJobSucceeds(seconds(180));
  if (HasFatalFailure()) return;
  // Both workers ran the same number of synchronous steps (the smaller shard's count).
  std::string steps[2];
  for (int w = 0; w < 2; ++w) {
    const std::string log = workers_[w]->Log();
    const size_t at = log.rfind("trained: ");
    ASSERT_NE(at, std::string::npos) << log;
    const size_t step_at = log.find("step ", at);
    steps[w] = log.substr(step_at, log.find(',', step_at) - step_at);
  }
  EXPECT_EQ(steps[0], steps[1]);
  const std::string summary = mtps::testing::ReadFile((dir_ / "run" / "summary.json").string());
  const size_t auc_at = summary.find("\"auc\":");
  ASSERT_NE(auc_at, std::string::npos) << summary;
  EXPECT_GT(std::stod(summary.substr(auc_at + 6)), 0.6) << summary;
}

// The step count of a worker's last "epoch N trained: ..., step S" line (0 before any).
uint64_t TrainedSteps(const std::string& log) {
  const size_t at = log.rfind("trained: ");
  if (at == std::string::npos) return 0;
  const size_t step_at = log.find("step ", at);
  return step_at == std::string::npos ? 0 : std::strtoull(log.c_str() + step_at + 5, nullptr, 10);
}

// Sync mode: worker 1 is killed at a random step and started again under its rank (as
// local.sh does); the other waits for it at the step, the replacement goes on from the
// newest finished step, and the run ends as an undisturbed one does: the same number of
// steps, every step applied exactly once (each dense block's update count on both servers
// is the step count), and the AUC of an undisturbed run of the same job.
TEST_F(ClusterTest, AKilledSyncWorkerIsReplacedTheOtherWaitsForItAndTheRunCompletes) {
  Generate(40000);  // 36,000 training records: 71 sync steps per epoch with 2 workers
  // The undisturbed run first.
  const std::string reference_spec =
      WriteSpec("reference.yaml", JobYaml(dir_ / "data", "sync", 2, dir_ / "reference-ckpt"));
  StartCluster(reference_spec, 2, 2, /*heartbeat_timeout=*/2, -1, /*recover_timeout=*/60);
  ExpectJobSucceeds(seconds(180));
  if (HasFatalFailure()) return;
  const uint64_t steps = TrainedSteps(workers_[0]->Log());
  ASSERT_GT(steps, 100u) << workers_[0]->LogTail();
  fs::rename(dir_ / "run" / "summary.json", dir_ / "reference-summary.json");
  const std::string reference = mtps::testing::ReadFile((dir_ / "reference-summary.json").string());
  servers_.clear();
  workers_.clear();
  // Fresh log files: a wait on a log line must not see the undisturbed run's.
  fs::rename(dir_ / "logs", dir_ / "reference-logs");
  fs::create_directories(dir_ / "logs");

  const std::string spec_path = WriteSpec("job.yaml", JobYaml(dir_ / "data", "sync", 2, dir_ / "ckpt"));
  StartCluster(spec_path, 2, 2, /*heartbeat_timeout=*/2, -1, /*recover_timeout=*/60);
  std::mt19937 random(std::random_device{}());
  const uint64_t kill_at = 10 + random() % (steps - 25);
  ASSERT_TRUE(WaitFor([&] { return LastLoggedStep(workers_[0]->Log()) >= kill_at; }, seconds(120)))
      << AllLogs();
  workers_[1]->Signal(SIGKILL);
  ASSERT_TRUE(workers_[1]->Wait(seconds(10)).has_value());
  std::cerr << "killed worker 1 at worker 0's step " << LastLoggedStep(workers_[0]->Log()) << "\n";
  StartWorker(spec_path, 1, /*restart=*/1);
  ExpectJobSucceeds(seconds(180));
  if (HasFatalFailure()) return;
  EXPECT_NE(scheduler_->Log().find("worker 1 resumes after sync step"), std::string::npos) << scheduler_->Log();
  EXPECT_NE(workers_[1]->Log().find("resumes at epoch"), std::string::npos) << workers_[1]->Log();
  const std::string replacement_log = workers_[1]->Log();
  const size_t resumed = replacement_log.find("resumes at epoch");
  if (resumed != std::string::npos) {
    std::cerr << "the replacement " << replacement_log.substr(resumed, replacement_log.find('\n', resumed) - resumed)
              << "\n";
  }
  EXPECT_EQ(TrainedSteps(workers_[0]->Log()), steps) << AllLogs();
  EXPECT_EQ(TrainedSteps(workers_[1]->Log()), steps) << AllLogs();

  // No step applied twice, none skipped: every dense block took one update per step.
  StatusOr<JobSpec> spec = LoadJobSpec(spec_path);
  ASSERT_TRUE(spec.ok()) << spec.status();
  StatusOr<std::string> final_checkpoint = FindNewestCheckpoint((dir_ / "ckpt").string(), 0);
  ASSERT_TRUE(final_checkpoint.ok()) << final_checkpoint.status();
  auto files = NewPosixFileSystem();
  for (int s = 0; s < 2; ++s) {
    ps::DenseBlockStore dense(spec->training.dense_optimizer);
    ASSERT_TRUE(ps::LoadDenseCheckpoint(*files, ps::DenseCheckpointPath(*final_checkpoint, s), dense).ok());
    for (const ps::DenseBlockSnapshot& block : dense.Snapshot()) {
      EXPECT_EQ(block.update_count, steps) << "server " << s << " block " << block.name;
    }
  }
  // The AUC of the undisturbed run.
  const std::string summary = mtps::testing::ReadFile((dir_ / "run" / "summary.json").string());
  for (const char* task : {"\"ctr\"", "\"cvr\""}) {
    const size_t want_at = reference.find("\"auc\":", reference.find(task));
    const size_t got_at = summary.find("\"auc\":", summary.find(task));
    ASSERT_NE(want_at, std::string::npos) << reference;
    ASSERT_NE(got_at, std::string::npos) << summary;
    EXPECT_NEAR(std::stod(summary.substr(got_at + 6)), std::stod(reference.substr(want_at + 6)), 0.01)
        << task << "\n" << summary << "\nundisturbed:\n" << reference;
    std::cerr << task << " auc " << std::stod(summary.substr(got_at + 6)) << ", undisturbed "
              << std::stod(reference.substr(want_at + 6)) << "\n";
  }
}

TEST_F(ClusterTest, ANodeWithAnotherJobSpecIsRefused) {
  Generate(3000);
  const std::string spec_path = WriteSpec("job.yaml", JobYaml(dir_ / "data", "async", 1, dir_ / "ckpt"));
  std::string other = JobYaml(dir_ / "data", "async", 1, dir_ / "ckpt");
  other.replace(other.find("batch_size: 256"), 15, "batch_size: 128");
  const std::string other_path = WriteSpec("other.yaml", other);

  // The mismatched worker arrives while the cluster forms: it is refused, the cluster
  // keeps its place for a well-matched worker, and the job then runs to its end.
  StartCluster(spec_path, 1, 1, 10, /*start_workers=*/0);
  StartWorker(other_path, 0);
  std::optional<int> code = workers_[0]->Wait(seconds(60));
  ASSERT_TRUE(code.has_value()) << "the mismatched worker was not refused\n" << AllLogs();
  EXPECT_NE(*code, 0);
  EXPECT_NE(workers_[0]->Log().find("job spec hash"), std::string::npos) << workers_[0]->Log();
  workers_.clear();
  StartWorker(spec_path, 0);
  ExpectJobSucceeds(seconds(120));
}

TEST_F(ClusterTest, AKilledServerIsReplacedUnderItsRankAndTheJobCompletes) {
  const std::string spec_path = RunWithServerOneKilledAndReplaced("async");
  if (HasFatalFailure()) return;
  const std::string log = scheduler_->Log();
  EXPECT_NE(log.find("server 1 (tcp://127.0.0.1"), std::string::npos) << log;
  EXPECT_EQ(log.find("server 0 (tcp://127.0.0.1"), std::string::npos) << "an innocent lost\n" << log;
  EXPECT_NE(log.find("rejoined"), std::string::npos) << log;
  EXPECT_NE(log.find("steps of its updates are lost"), std::string::npos) << log;
  EXPECT_NE(servers_[1]->Log().find("restored"), std::string::npos) << servers_[1]->Log();
  ExpectAucNearLocalTrainer(spec_path, 0.01);
}

// Sync mode: the workers hold their pushes of the step the dead server was gathering and
// send them again once its replacement is in the view; the live server takes each resent
// part in place of the one it holds (a later attempt), so every step completes once.
TEST_F(ClusterTest, AKilledServerInASyncJobIsReplacedAndTheJobCompletes) {
  const std::string spec_path = RunWithServerOneKilledAndReplaced("sync");
  if (HasFatalFailure()) return;
  const std::string log = scheduler_->Log();
  EXPECT_NE(log.find("rejoined"), std::string::npos) << log;
  EXPECT_NE(servers_[1]->Log().find("restored"), std::string::npos) << servers_[1]->Log();
  // Both workers took every step of both epochs.
  const uint64_t steps = TrainedSteps(workers_[0]->Log());
  EXPECT_GT(steps, 150u) << workers_[0]->LogTail();
  EXPECT_EQ(TrainedSteps(workers_[1]->Log()), steps) << AllLogs();
  ExpectAucNearLocalTrainer(spec_path, 0.01);
}

TEST_F(ClusterTest, AKilledServerRestoresThroughItsIncrementChainAndTheJobCompletes) {
  Generate(60000);
  std::string yaml = JobYaml(dir_ / "data", "async", 2, dir_ / "ckpt", /*interval=*/10);
  // Every checkpoint after the first is incremental, so the restore goes through a chain.
  yaml.replace(yaml.find("interval_steps: 10}"), 19, "interval_steps: 10, full_every: 1000}");
  const std::string spec_path = WriteSpec("job.yaml", yaml);
  StartCluster(spec_path, 2, 2, /*heartbeat_timeout=*/2, -1, /*recover_timeout=*/60);
  auto server1_has_increment = [&] {
    for (const WholeCheckpoint& c : ListWholeCheckpoints((dir_ / "ckpt").string(), 1)) {
      if (!c.manifest.ok()) continue;
      for (const CheckpointFileInfo& f : c.manifest->files) {
        if (f.base_id != 0 && f.path.find("server-1.table-") != std::string::npos) return true;
      }
    }
    return false;
  };
  ASSERT_TRUE(WaitFor(server1_has_increment, seconds(60))) << AllLogs();
  servers_[1]->Signal(SIGKILL);
  ASSERT_TRUE(WaitFor([&] { return scheduler_->Log().find("is lost") != std::string::npos; },
                      seconds(30)))
      << AllLogs();
  StartServer(spec_path, 1, /*restart=*/1);
  ExpectJobSucceeds(seconds(180));
  if (HasFatalFailure()) return;
  const std::string log = servers_[1]->Log();
  const size_t at = log.find(" increments applied over whole table files");
  ASSERT_NE(at, std::string::npos) << log;
  const size_t number = log.find_last_of(' ', at - 1) + 1;
  EXPECT_GT(std::stoi(log.substr(number, at - number)), 0) << log.substr(number, 200);
  // The restarted server starts a chain of its own: its next checkpoint is whole.
  EXPECT_NE(log.find("(whole)"), std::string::npos) << log;
  EXPECT_NE(servers_[0]->Log().find("tables incremental over checkpoint"), std::string::npos);
  ExpectAucNearLocalTrainer(spec_path, 0.01);
}

TEST_F(ClusterTest, AStoppedServerThatComesBackIsFencedAndTheJobCompletes) {
  std::string spec_path;
  ASSERT_NO_FATAL_FAILURE(StartJobAndLoseServerOne("async", SIGSTOP, &spec_path));
  // The stopped process keeps its port; the replacement gets another.
  std::unique_ptr<ChildProcess> stale = std::move(servers_[1]);
  StartServer(spec_path, 1, /*restart=*/1);
  ASSERT_TRUE(WaitFor([&] { return scheduler_->Log().find("rejoined") != std::string::npos; },
                      seconds(30)))
      << AllLogs();
  stale->Signal(SIGCONT);
  std::optional<int> stale_exit = stale->Wait(seconds(30));
  ASSERT_TRUE(stale_exit.has_value()) << "the stale server was not fenced\n" << stale->LogTail();
  EXPECT_NE(*stale_exit, 0);
  EXPECT_NE(stale->Log().find("fenced"), std::string::npos) << stale->LogTail();
  ExpectJobSucceeds(seconds(180));
}

TEST_F(ClusterTest, AKilledSchedulerIsRestartedFromItsJournalAndTheJobCompletes) {
  Generate(60000);
  const std::string spec_path =
      WriteSpec("job.yaml", JobYaml(dir_ / "data", "async", 2, dir_ / "ckpt", /*interval=*/10));
  StartCluster(spec_path, 2, 2, /*heartbeat_timeout=*/3, -1, /*recover_timeout=*/60);
  // A random step of the first epoch (about 117 steps per worker), after the first cut.
  std::mt19937 random(std::random_device{}());
  const uint64_t kill_at = 20 + random() % 60;
  ASSERT_TRUE(WaitFor([&] { return HasCutCheckpoint() && LastLoggedStep(workers_[0]->Log()) >= kill_at; },
                      seconds(90)))
      << AllLogs();
  scheduler_->Signal(SIGKILL);
  ASSERT_TRUE(scheduler_->Wait(seconds(10)).has_value());
  RestartScheduler(1);
  ExpectJobSucceeds(seconds(180));
  if (HasFatalFailure()) return;
  const std::string log = scheduler_->Log();
  EXPECT_NE(log.find("restored the running job"), std::string::npos) << log;
  EXPECT_EQ(log.find("is lost"), std::string::npos) << "no node may be lost over a scheduler restart\n" << log;
  // No assertion on the nodes noticing the new incarnation: on an idle machine the job can
  // end within one heartbeat of the restart, and the shutdown is then the first they hear.
  ExpectAucNearLocalTrainer(spec_path, 0.01);
  std::cerr << "killed the scheduler at worker 0's step " << kill_at << "\n";
}

TEST_F(ClusterTest, AStoppedWorkerThatComesBackIsFencedByTheServersAndTheJobCompletes) {
  // Long enough that the job still runs when the stale worker wakes up.
  Generate(300000);
  const std::string spec_path =
      WriteSpec("job.yaml", JobYaml(dir_ / "data", "async", 3, dir_ / "ckpt", /*interval=*/20));
  StartCluster(spec_path, 2, 2, /*heartbeat_timeout=*/2, -1, /*recover_timeout=*/60);
  ASSERT_TRUE(WaitFor([&] { return HasCutCheckpoint(); }, seconds(60))) << AllLogs();
  workers_[1]->Signal(SIGSTOP);
  ASSERT_TRUE(WaitFor([&] { return scheduler_->Log().find("worker 1 (tcp") != std::string::npos &&
                                   scheduler_->Log().find("is lost") != std::string::npos; },
                      seconds(30)))
      << AllLogs();
  std::unique_ptr<ChildProcess> stale = std::move(workers_[1]);
  StartWorker(spec_path, 1, /*restart=*/1);
  // Both servers hold the view in which rank 1 is the replacement's generation.
  auto fences_the_old_one = [&](ChildProcess& server) {
    const std::string log = server.Log();
    const size_t at = log.rfind("workers' generations");
    return at != std::string::npos && log.substr(at, log.find('\n', at) - at).find(" 1:") != std::string::npos;
  };
  ASSERT_TRUE(WaitFor([&] { return fences_the_old_one(*servers_[0]) && fences_the_old_one(*servers_[1]); },
                      seconds(30)))
      << AllLogs();
  stale->Signal(SIGCONT);
  std::optional<int> stale_exit = stale->Wait(seconds(30));
  ASSERT_TRUE(stale_exit.has_value()) << "the stale worker was not fenced\n" << stale->LogTail();
  EXPECT_NE(*stale_exit, 0);
  EXPECT_NE(stale->Log().find("is fenced"), std::string::npos) << stale->LogTail();
  ExpectJobSucceeds(seconds(180));
  if (HasFatalFailure()) return;
  // Its "failed" report came from a fenced generation: refused, so the job did not fail.
  EXPECT_EQ(scheduler_->Log().find("the job failed"), std::string::npos) << scheduler_->Log();
}

TEST_F(ClusterTest, CheckpointsComeEveryIntervalSecondsAndASigtermedSchedulerTakesOneBeforeStopping) {
  Generate(200000);
  std::string yaml = JobYaml(dir_ / "data", "async", 3, dir_ / "ckpt");
  yaml.replace(yaml.find("interval_steps: 0}"), 18, "interval_steps: 0, interval_seconds: 1}");
  const std::string spec_path = WriteSpec("job.yaml", yaml);
  StartCluster(spec_path, 2, 2);
  // No step interval: the cuts come from interval_seconds alone.
  ASSERT_TRUE(WaitFor([&] { return HasCutCheckpoint(); }, seconds(60))) << AllLogs();
  ASSERT_TRUE(WaitFor([&] { return LastLoggedStep(workers_[0]->Log()) >= 60; }, seconds(60))) << AllLogs();
  scheduler_->Signal(SIGTERM);
  std::optional<int> code = scheduler_->Wait(seconds(60));
  ASSERT_TRUE(code.has_value()) << AllLogs();
  EXPECT_EQ(*code, 143) << "a clean stop is retryable (protocol/exit_codes.h)\n" << AllLogs();
  // Every node leaves promptly on the scheduler's shutdown notice, retryable: a worker
  // does not wait out the timeouts of requests its stopping servers will never answer.
  const auto stopped_at = std::chrono::steady_clock::now();
  for (auto* nodes : {&servers_, &workers_}) {
    for (auto& node : *nodes) {
      std::optional<int> exit_code = node->Wait(seconds(5));
      ASSERT_TRUE(exit_code.has_value()) << "a node still runs 5 s after the stop\n" << AllLogs();
      EXPECT_EQ(*exit_code, kExitRetryable) << AllLogs();
    }
  }
  std::cerr << "every node exited within "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped_at).count()
            << " s of the scheduler\n";
  // The checkpoint taken on the stop request (or the one in flight then) is whole, and
  // it is the newest one.
  const std::string log = scheduler_->Log();
  ASSERT_NE(log.find("taking a checkpoint before stopping"), std::string::npos) << log;
  const size_t held = log.find("a checkpoint at step ");
  ASSERT_NE(held, std::string::npos) << log;
  const uint64_t step = std::strtoull(log.c_str() + held + 21, nullptr, 10);
  StatusOr<std::string> newest = FindNewestCheckpoint((dir_ / "ckpt").string(), 0);
  ASSERT_TRUE(newest.ok()) << newest.status();
  StatusOr<CheckpointManifest> manifest = ReadCheckpointManifest(ManifestPath(*newest));
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->step, step) << log;
  EXPECT_EQ(manifest->workers.size(), 2u) << "a consistent cut records both workers";
  // The journal still holds the running job, for a restart.
  EXPECT_NE(mtps::testing::ReadFile((dir_ / "ckpt" / "scheduler.journal").string()).find("phase running"),
            std::string::npos);
}

TEST_F(ClusterTest, AsyncCheckpointsAreConsistentCutsOfEveryShard) {
  Generate(200000);
  const std::string spec_path =
      WriteSpec("job.yaml", JobYaml(dir_ / "data", "async", 2, dir_ / "ckpt", /*interval=*/20));
  StartCluster(spec_path, 2, 2);
  // Read each cut while the job runs (older ones are removed as new ones commit).
  int cuts_checked = 0;
  const auto deadline = std::chrono::steady_clock::now() + seconds(120);
  StatusOr<JobSpec> spec = LoadJobSpec(spec_path);
  ASSERT_TRUE(spec.ok());
  auto files = NewPosixFileSystem();
  std::set<std::string> seen;
  while (scheduler_->running() && std::chrono::steady_clock::now() < deadline) {
    for (const WholeCheckpoint& c : ListWholeCheckpoints((dir_ / "ckpt").string(), 0)) {
      if (!c.manifest.ok() || c.manifest->workers.empty() || !seen.insert(c.dir).second) continue;
      // Every dense block is pushed once per worker step. A cut in which the shards hold
      // the same steps has every block, on either server, updated sum-of-steps times.
      uint64_t steps = 0;
      for (const WorkerPosition& w : c.manifest->workers) steps += w.step;
      std::set<uint64_t> counts;
      bool loaded = true;
      for (int s = 0; s < 2; ++s) {
        ps::DenseBlockStore dense(spec->training.dense_optimizer);
        loaded = loaded && ps::LoadDenseCheckpoint(*files, ps::DenseCheckpointPath(c.dir, s), dense).ok();
        for (const ps::DenseBlockSnapshot& b : dense.Snapshot()) counts.insert(b.update_count);
      }
      if (!loaded) continue;  // removed by retention while we read it
      EXPECT_EQ(counts, std::set<uint64_t>{steps}) << c.dir << ": blocks cut at different steps";
      ++cuts_checked;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ExpectJobSucceeds(seconds(60));
  EXPECT_GE(cuts_checked, 2) << AllLogs();
  EXPECT_NE(scheduler_->Log().find("ms for the cut"), std::string::npos);
}

TEST_F(ClusterTest, AKilledWorkerResumesFromItsCheckpointPositionAndTheJobCompletes) {
  Generate(200000);
  const std::string spec_path =
      WriteSpec("job.yaml", JobYaml(dir_ / "data", "async", 3, dir_ / "ckpt", /*interval=*/20));
  StartCluster(spec_path, 2, 2, /*heartbeat_timeout=*/2, -1, /*recover_timeout=*/60);
  ASSERT_TRUE(WaitFor([&] { return HasCutCheckpoint(); }, seconds(60))) << AllLogs();
  workers_[1]->Signal(SIGKILL);
  StartWorker(spec_path, 1, /*restart=*/1);
  ExpectJobSucceeds(seconds(180));
  if (HasFatalFailure()) return;
  EXPECT_NE(scheduler_->Log().find("worker 1 resumes at epoch"), std::string::npos) << scheduler_->Log();
  EXPECT_NE(workers_[1]->Log().find("resumes at epoch"), std::string::npos) << workers_[1]->Log();
  ExpectAucNearLocalTrainer(spec_path, 0.01);
}

TEST_F(ClusterTest, AKilledWorkerFailsTheJobWithinTheHeartbeatTimeout) {
  Generate(200000);
  const std::string spec_path = WriteSpec("job.yaml", JobYaml(dir_ / "data", "async", 3, dir_ / "ckpt"));
  StartCluster(spec_path, 1, 2, /*heartbeat_timeout=*/3);
  // Wait until worker 1 is training (its progress lines), then kill it.
  WaitFor([&] { return workers_[1]->Log().find("step ") != std::string::npos ||
                       workers_[1]->Log().find("epoch") != std::string::npos; },
          seconds(60));
  ASSERT_TRUE(workers_[1]->running()) << AllLogs();
  const auto killed_at = std::chrono::steady_clock::now();
  workers_[1]->Signal(SIGKILL);

  std::optional<int> code = scheduler_->Wait(seconds(30));
  ASSERT_TRUE(code.has_value()) << "the scheduler hangs after a worker died\n" << AllLogs();
  EXPECT_NE(*code, 0);
  const double seconds_to_fail =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  EXPECT_LT(seconds_to_fail, 3 + 5) << "detected after " << seconds_to_fail << " s";
  EXPECT_NE(scheduler_->Log().find("worker"), std::string::npos) << scheduler_->Log();
  // Nothing hangs: the other processes end too, with a nonzero status.
  std::optional<int> survivor = workers_[0]->Wait(seconds(30));
  ASSERT_TRUE(survivor.has_value()) << AllLogs();
  EXPECT_NE(*survivor, 0);
  ASSERT_TRUE(servers_[0]->Wait(seconds(30)).has_value()) << AllLogs();
}

// Early stopping in a cluster: every worker scores the eval split after each epoch, so all
// reach the same verdict and stop together; summary.json reports the best epoch. A
// min_delta of 1 makes every epoch after the first a non-gain: patience 1 ends the job
// after two of its five epochs.
TEST_F(ClusterTest, EarlyStoppingEndsEveryWorkerTogetherAndReportsTheBestEpoch) {
  Generate(20000);
  std::string yaml = JobYaml(dir_ / "data", "async", 5, dir_ / "ckpt");
  yaml.insert(yaml.find("dense_optimizer:"), "early_stopping: {patience: 1, min_delta: 1.0}, ");
  const std::string spec_path = WriteSpec("job.yaml", yaml);
  StartCluster(spec_path, 2, 2);
  ExpectJobSucceeds(seconds(180));
  if (HasFatalFailure()) return;
  const std::string summary = mtps::testing::ReadFile((dir_ / "run" / "summary.json").string());
  EXPECT_NE(summary.find("\"epochs\": 2,"), std::string::npos) << summary;
  EXPECT_NE(summary.find("\"stopped_early\": true"), std::string::npos) << summary;
  EXPECT_TRUE(summary.find("\"best_epoch\": 0,") != std::string::npos ||
              summary.find("\"best_epoch\": 1,") != std::string::npos) << summary;
  for (auto& worker : workers_) {
    EXPECT_NE(worker->LogTail(400).find("early stopping after epoch 1"), std::string::npos) << AllLogs();
  }
  ExpectAucNearLocalTrainer(spec_path, 0.015);  // LocalTrainer stops alike and reports its best epoch
}

// A worker replaced after two evaluated epochs takes over the job's early-stopping record:
// patience 2 with a min_delta of 1 ends the job after epoch 2 for everyone. A replacement
// that counted patience from its own first evaluation would train on into epoch 3 and wait
// there for peers that had stopped.
TEST_F(ClusterTest, AReplacedWorkerStopsEarlyTogetherWithTheOthers) {
  Generate(60000);
  std::string yaml = JobYaml(dir_ / "data", "async", 6, dir_ / "ckpt", /*interval=*/20);
  yaml.insert(yaml.find("dense_optimizer:"), "early_stopping: {patience: 2, min_delta: 1.0}, ");
  const std::string spec_path = WriteSpec("job.yaml", yaml);
  StartCluster(spec_path, 1, 2, /*heartbeat_timeout=*/2, -1, /*recover_timeout=*/60);
  // Rank 0 reports an epoch's evaluation before anyone leaves the epoch.
  ASSERT_TRUE(WaitFor([&] { return workers_[0]->Log().find("epoch 1 eval ") != std::string::npos; },
                      seconds(120)))
      << AllLogs();
  workers_[1]->Signal(SIGKILL);
  ASSERT_TRUE(workers_[1]->Wait(seconds(10)).has_value());
  StartWorker(spec_path, 1, /*restart=*/1);
  ExpectJobSucceeds(seconds(180));
  if (HasFatalFailure()) return;
  const std::string replacement = workers_[1]->Log();
  const size_t took = replacement.find("takes the job's evaluations of ");
  ASSERT_NE(took, std::string::npos) << replacement;
  std::cerr << "the replacement " << replacement.substr(took, replacement.find('\n', took) - took) << "\n";
  const std::string summary = mtps::testing::ReadFile((dir_ / "run" / "summary.json").string());
  EXPECT_NE(summary.find("\"epochs\": 3,"), std::string::npos) << summary;
  EXPECT_NE(summary.find("\"stopped_early\": true"), std::string::npos) << summary;
  for (auto& worker : workers_) {
    EXPECT_NE(worker->LogTail(400).find("early stopping after epoch 2"), std::string::npos) << AllLogs();
  }
}

// summary.json's best epoch and the checkpoint that holds its model, with the update count
// of every dense block in it (one per worker step: a cut holds one count for all blocks).
struct BestCheckpoint {
  int epoch = -1;
  std::string dir;
  std::vector<WorkerPosition> positions;
  std::set<uint64_t> dense_updates;
};
BestCheckpoint ReadBestCheckpoint(const std::string& summary, const std::string& spec_path, int servers) {
  BestCheckpoint best;
  const size_t epoch_at = summary.find("\"best_epoch\": ");
  if (epoch_at != std::string::npos) best.epoch = std::atoi(summary.c_str() + epoch_at + 14);
  const size_t dir_at = summary.find("\"best_checkpoint\": \"");
  if (dir_at == std::string::npos) return best;
  const size_t start = dir_at + 20;
  best.dir = summary.substr(start, summary.find('"', start) - start);
  StatusOr<CheckpointManifest> manifest = ReadCheckpointManifest(ManifestPath(best.dir));
  if (manifest.ok()) best.positions = manifest->workers;
  StatusOr<JobSpec> spec = LoadJobSpec(spec_path);
  auto files = NewPosixFileSystem();
  for (int s = 0; spec.ok() && s < servers; ++s) {
    ps::DenseBlockStore dense(spec->training.dense_optimizer);
    if (!ps::LoadDenseCheckpoint(*files, ps::DenseCheckpointPath(best.dir, s), dense).ok()) continue;
    for (const ps::DenseBlockSnapshot& block : dense.Snapshot()) best.dense_updates.insert(block.update_count);
  }
  return best;
}

// The run keeps its best epoch's model: when rank 0's evaluation is the best so far, the
// scheduler checkpoints before anyone leaves the epoch, and retention (keep 2, a checkpoint
// every 10 steps) leaves that one on disk. Async: a cut with every worker at the end of the
// best epoch.
TEST_F(ClusterTest, TheBestEpochsModelIsACheckpointKeptToTheEndAsync) {
  const std::string spec_path = RunJobThatStopsEarly("async", 2);
  if (HasFatalFailure()) return;
  const BestCheckpoint best = ReadBestCheckpoint(Summary(), spec_path, 2);
  ASSERT_FALSE(best.dir.empty()) << Summary() << AllLogs();
  EXPECT_TRUE(fs::exists(ManifestPath(best.dir))) << best.dir;
  ASSERT_EQ(best.positions.size(), 2u) << best.dir;
  uint64_t steps = 0;
  for (const WorkerPosition& p : best.positions) {
    EXPECT_EQ(p.epoch, static_cast<uint32_t>(best.epoch)) << "worker " << p.rank << " in " << best.dir;
    EXPECT_GT(p.records, 0u);
    steps += p.step;
  }
  EXPECT_EQ(best.dense_updates, std::set<uint64_t>{steps}) << best.dir;
  EXPECT_NE(scheduler_->Log().find("holds the model of epoch " + std::to_string(best.epoch)), std::string::npos);
}

// Sync: the best epoch's checkpoint holds exactly the steps up to that epoch's end.
TEST_F(ClusterTest, TheBestEpochsModelIsACheckpointKeptToTheEndSync) {
  const std::string spec_path = RunJobThatStopsEarly("sync", 1);
  if (HasFatalFailure()) return;
  const BestCheckpoint best = ReadBestCheckpoint(Summary(), spec_path, 1);
  ASSERT_FALSE(best.dir.empty()) << Summary() << AllLogs();
  const uint64_t steps = TrainedSteps(workers_[0]->Log());  // 3 epochs: stopped after epoch 2
  ASSERT_EQ(steps % 3, 0u) << steps;
  EXPECT_EQ(best.dense_updates, std::set<uint64_t>{steps / 3 * (best.epoch + 1)}) << best.dir;
}

// training.dense_sync_every: 4 — two async workers sum their dense gradients over 4 steps
// and push once per window (and at every checkpoint cut): they push a quarter as often,
// the job completes through its checkpoints and reaches LocalTrainer's AUC (which applies
// every step).
TEST_F(ClusterTest, AsyncWorkersPushingSummedDenseGradientsEveryFourStepsConverge) {
  Generate(60000);
  std::string yaml = JobYaml(dir_ / "data", "async", 2, dir_ / "ckpt", /*interval=*/20);
  yaml.replace(yaml.find("max_staleness: 2"), 16, "max_staleness: 4, dense_sync_every: 4");
  const std::string spec_path = WriteSpec("job.yaml", yaml);
  StartCluster(spec_path, 2, 2);
  ExpectJobSucceeds(seconds(240));
  if (HasFatalFailure()) return;
  EXPECT_TRUE(HasCutCheckpoint());
  for (auto& worker : workers_) {
    // "(P dense pulls, D dense pushes in S steps)" after the last epoch.
    const std::string log = worker->LogTail(400);
    const size_t at = log.rfind(" dense pulls, ");
    ASSERT_NE(at, std::string::npos) << log;
    const uint64_t pushes = std::strtoull(log.c_str() + at + 14, nullptr, 10);
    const uint64_t steps = std::strtoull(log.c_str() + log.find(" dense pushes in ", at) + 17, nullptr, 10);
    EXPECT_GT(steps, 40u) << log;
    EXPECT_LT(pushes, steps / 2) << log;
  }
  ExpectAucNearLocalTrainer(spec_path, 0.02);
}


}  // namespace
}  // namespace mtps
