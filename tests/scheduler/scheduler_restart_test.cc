// Tests of a real mtps-scheduler process killed with SIGKILL and started again with
// --restore on the same port: nodes (in-process SchedulerClients) keep their ranks and
// generations without re-registering, a barrier that was waiting when it died completes
// (the waiting node arrives again on seeing the new incarnation), the final evaluation
// survives; a stale generation is fenced; a damaged journal is refused with its reason.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "protocol/job_spec.h"
#include "protocol/scheduler_client.h"
#include "scheduler/scheduler_journal.h"
#include "tests/common/child_process.h"
#include "tests/common/wait_for.h"
#include "tests/scheduler/scheduler_test_util.h"

namespace mtps::scheduler {
namespace {

using ::mtps::scheduler::testing::ReadFile;
using ::mtps::scheduler::testing::TempDir;
using ::mtps::testing::ChildProcess;
using ::mtps::testing::FreePort;
using ::mtps::testing::WaitFor;
using ::testing::HasSubstr;
using ::testing::Not;
using std::chrono::milliseconds;
using std::chrono::seconds;

class SchedulerRestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = dir_.path() + "/job.yaml";
    std::ofstream(config_) << "name: scheduler-restart-test\n"
                              "data: {train: [train.mtb], eval: [eval.mtb]}\n"
                              "features: {sparse: [{name: user_id, table: user}]}\n"
                              "tables: [{name: user, dim: 4}]\n"
                              "model: {type: mmoe}\n"
                              "tasks: [{name: ctr, label: click}]\n"
                              "training: {epochs: 1}\n"
                              "checkpoint: {dir: \"" + dir_.path() + "/ckpt\"}\n";
    StatusOr<JobSpec> spec = LoadJobSpec(config_);
    ASSERT_TRUE(spec.ok()) << spec.status();
    spec_hash_ = spec->hash;
    port_ = FreePort();
  }

  std::unique_ptr<ChildProcess> StartScheduler(bool restore, const std::string& log) {
    std::vector<std::string> args = {"--config=" + config_, "--host=127.0.0.1",
                                     "--port=" + std::to_string(port_), "--http_port=0",
                                     "--num_servers=1", "--num_workers=2", "--heartbeat_timeout=5",
                                     "--register_timeout=20", "--recover_timeout=30",
                                     "--run_dir=" + dir_.path() + "/run"};
    if (restore) args.push_back("--restore");
    return std::make_unique<ChildProcess>(::mtps::testing::BinPath("mtps-scheduler"), args,
                                          dir_.path() + "/" + log);
  }

  std::unique_ptr<SchedulerClient> NewClient(proto::Role role) {
    SchedulerClientOptions o;
    o.scheduler = "tcp://127.0.0.1:" + std::to_string(port_);
    o.role = role;
    o.spec_hash = spec_hash_;
    o.heartbeat_interval = milliseconds(100);
    o.register_timeout = seconds(20);
    o.scheduler_timeout = seconds(20);
    o.retry_interval = milliseconds(500);
    auto client = SchedulerClient::Create(o);
    EXPECT_TRUE(client.ok()) << client.status();
    return std::move(*client);
  }

  TempDir dir_;
  std::string config_;
  uint64_t spec_hash_ = 0;
  int port_ = 0;
};

TEST_F(SchedulerRestartTest, ARestartedSchedulerGoesOnFromItsJournal) {
  auto first = StartScheduler(false, "scheduler.log");
  auto server = NewClient(proto::Role::SERVER);
  auto w0 = NewClient(proto::Role::WORKER);
  auto w1 = NewClient(proto::Role::WORKER);
  auto s_info = std::async(std::launch::async, [&] { return server->Register(); });
  auto w1_info = std::async(std::launch::async, [&] { return w1->Register(); });
  StatusOr<ClusterInfo> w0_info = w0->Register();
  ASSERT_TRUE(w0_info.ok()) << w0_info.status() << ReadFile(dir_.path() + "/scheduler.log");
  StatusOr<ClusterInfo> w1_registered = w1_info.get();
  ASSERT_TRUE(w1_registered.ok() && s_info.get().ok());
  EXPECT_EQ(w0_info->incarnation, 1u);
  // The view publishes every rank's generation (what servers fence by).
  ASSERT_EQ(w0_info->workers.size(), 2u);
  EXPECT_EQ(w0_info->workers[w1_registered->rank].generation, w1_registered->generation);

  // Worker 0's evaluation and a barrier everyone passed go into the journal.
  ProgressReport eval{.phase = "eval", .epoch = 0, .step = 40, .samples = 1000,
                      .tasks = {{.name = "ctr", .loss = 0.5, .auc = 0.7125}}};
  ASSERT_TRUE((w0_info->rank == 0 ? w0 : w1)->ReportProgress(eval).ok()) << ReadFile(dir_.path() + "/scheduler.log");
  auto a0 = std::async(std::launch::async, [&] { return w0->Barrier("passed", 2); });
  ASSERT_TRUE(w1->Barrier("passed", 2).ok());
  ASSERT_TRUE(a0.get().ok());

  // Worker 1 waits at a barrier when the scheduler dies.
  auto waiting = std::async(std::launch::async, [&] { return w1->Barrier("waiting", 2, seconds(60)); });
  ASSERT_TRUE(WaitFor([&] { return ReadFile(dir_.path() + "/ckpt/scheduler.journal").find("released passed") !=
                                   std::string::npos; },
                      seconds(10)));
  first->Signal(SIGKILL);
  ASSERT_TRUE(first->Wait(seconds(10)).has_value());

  auto second = StartScheduler(true, "scheduler.restart.log");
  const std::string log = dir_.path() + "/scheduler.restart.log";
  ASSERT_TRUE(WaitFor([&] { return w0->incarnation() == 2 && w1->incarnation() == 2 && server->incarnation() == 2; },
                      seconds(20)))
      << ReadFile(log);
  EXPECT_THAT(ReadFile(log), HasSubstr("restored the running job"));
  // Worker 1 arrived again at the new scheduler, so worker 0 completes the barrier with it.
  ASSERT_TRUE(w0->Barrier("waiting", 2, seconds(20)).ok()) << ReadFile(log);
  ASSERT_EQ(waiting.wait_for(seconds(20)), std::future_status::ready);
  EXPECT_TRUE(waiting.get().ok());
  // Nobody was told to stop, and no rank changed hands.
  EXPECT_FALSE(w0->shutdown_notice().has_value());
  EXPECT_FALSE(w1->shutdown_notice().has_value());
  EXPECT_FALSE(server->shutdown_notice().has_value());
  EXPECT_THAT(ReadFile(log), Not(HasSubstr("is lost")));

  // A process of an old generation (what a fenced node would send) is refused.
  StatusOr<ClusterInfo> view = w0->FetchView();
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->workers[w1_registered->rank].generation, w1_registered->generation);

  // Both report done: the job finishes with worker 0's evaluation from before the restart
  // (the final checkpoint fails: this test's server writes none, so the job fails there).
  ProgressReport done{.phase = "done", .epoch = 0, .step = 50, .samples = 1200};
  ASSERT_TRUE(w0->ReportProgress(done).ok());
  ASSERT_TRUE(w1->ReportProgress(done).ok());
  ASSERT_TRUE(w1->ReportProgress(done).ok()) << "a repeated done (a retry) is answered OK";
  StatusOr<SchedulerJournal> journal =
      ReadSchedulerJournal(*NewPosixFileSystem(), dir_.path() + "/ckpt/scheduler.journal");
  ASSERT_TRUE(journal.ok()) << journal.status();
  EXPECT_EQ(journal->incarnation, 2u);
  ASSERT_EQ(journal->progress.size(), 2u);
  EXPECT_DOUBLE_EQ(journal->progress[0].eval.at("ctr").auc, 0.7125);
  second->Signal(SIGKILL);
}

TEST_F(SchedulerRestartTest, ADamagedJournalIsRefusedWithItsReason) {
  std::filesystem::create_directories(dir_.path() + "/ckpt");
  std::ofstream(dir_.path() + "/ckpt/scheduler.journal") << "mtps-scheduler-journal 1\ncrc32c 00000000 5\njob 1";
  auto process = StartScheduler(true, "scheduler.log");
  std::optional<int> code = process->Wait(seconds(10));
  ASSERT_TRUE(code.has_value());
  EXPECT_NE(*code, 0);
  const std::string log = ReadFile(dir_.path() + "/scheduler.log");
  EXPECT_THAT(log, HasSubstr("scheduler journal " + dir_.path() + "/ckpt/scheduler.journal"));
  EXPECT_THAT(log, HasSubstr("checksum mismatch"));
}

TEST_F(SchedulerRestartTest, RestoreWithoutAJournalStartsANewJob) {
  auto process = StartScheduler(true, "scheduler.log");
  auto server = NewClient(proto::Role::SERVER);
  auto w0 = NewClient(proto::Role::WORKER);
  auto w1 = NewClient(proto::Role::WORKER);
  auto a = std::async(std::launch::async, [&] { return server->Register(); });
  auto b = std::async(std::launch::async, [&] { return w1->Register(); });
  ASSERT_TRUE(w0->Register().ok());
  ASSERT_TRUE(a.get().ok() && b.get().ok());
  EXPECT_THAT(ReadFile(dir_.path() + "/scheduler.log"), HasSubstr("found no journal"));
  process->Signal(SIGKILL);
}

}  // namespace
}  // namespace mtps::scheduler
