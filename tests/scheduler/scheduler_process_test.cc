// Tests of the mtps-scheduler program as a real process: its HTTP endpoint, a node that
// goes silent ending the job with a nonzero exit, SIGTERM ending it cleanly, a bad config.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "protocol/exit_codes.h"
#include "protocol/job_spec.h"
#include "protocol/scheduler_client.h"
#include "tests/common/child_process.h"
#include "tests/common/wait_for.h"
#include "tests/protocol/http_test_client.h"
#include "tests/scheduler/scheduler_test_util.h"

namespace mtps::scheduler {
namespace {

using ::mtps::scheduler::testing::ReadFile;
using ::mtps::scheduler::testing::TempDir;
using ::mtps::testing::HttpRequest;
using ::testing::HasSubstr;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kSpec[] = R"(
name: scheduler-process-test
data:
  train: [train.mtb]
  eval: [eval.mtb]
features:
  sparse:
    - {name: user_id, table: user}
tables:
  - {name: user, dim: 4}
model:
  type: mmoe
tasks:
  - {name: ctr, label: click}
training:
  epochs: 1
)";

using ::mtps::testing::ChildProcess;
using ::mtps::testing::FreePort;

// Polls /healthz until the program answers.
bool WaitForHttp(int port, seconds limit = seconds(10)) {
  return ::mtps::testing::WaitFor([port] { return HttpRequest(port, "GET", "/healthz").status != 0; }, limit);
}

class SchedulerProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = dir_.path() + "/job.yaml";
    std::ofstream(config_) << kSpec;
    StatusOr<JobSpec> spec = LoadJobSpec(config_);
    ASSERT_TRUE(spec.ok()) << spec.status();
    spec_hash_ = spec->hash;
    port_ = FreePort();
    http_port_ = FreePort();
    log_ = dir_.path() + "/scheduler.log";
  }

  std::vector<std::string> Args(double heartbeat_timeout = 1) {
    return {"--config=" + config_, "--host=127.0.0.1", "--port=" + std::to_string(port_),
            "--http_port=" + std::to_string(http_port_), "--num_servers=1", "--num_workers=1",
            "--heartbeat_timeout=" + std::to_string(heartbeat_timeout), "--register_timeout=20",
            "--run_dir=" + dir_.path() + "/run"};
  }

  std::unique_ptr<SchedulerClient> NewClient(proto::Role role) {
    SchedulerClientOptions o;
    o.scheduler = "tcp://127.0.0.1:" + std::to_string(port_);
    o.role = role;
    o.spec_hash = spec_hash_;
    o.heartbeat_interval = milliseconds(100);
    o.register_timeout = seconds(10);
    auto client = SchedulerClient::Create(o);
    EXPECT_TRUE(client.ok()) << client.status();
    return std::move(*client);
  }

  TempDir dir_;
  std::string config_;
  std::string log_;
  uint64_t spec_hash_ = 0;
  int port_ = 0;
  int http_port_ = 0;
};

TEST_F(SchedulerProcessTest, ASilentWorkerEndsTheJobWithANonzeroExit) {
  // 3 s, 30 heartbeat intervals: a loaded machine (CI, ASan) can starve a client's heartbeat
  // thread for a second, which made the server look lost instead of the worker.
  ChildProcess process(::mtps::testing::BinPath("mtps-scheduler"), Args(/*heartbeat_timeout=*/3), log_);
  ASSERT_TRUE(WaitForHttp(http_port_)) << ReadFile(log_);
  auto server = NewClient(proto::Role::SERVER);
  auto worker = NewClient(proto::Role::WORKER);
  auto server_info = std::async(std::launch::async, [&] { return server->Register(); });
  StatusOr<ClusterInfo> worker_info = worker->Register();
  ASSERT_TRUE(worker_info.ok()) << worker_info.status() << "\n" << ReadFile(log_);
  ASSERT_TRUE(server_info.get().ok());
  auto healthz = HttpRequest(http_port_, "GET", "/healthz");
  EXPECT_EQ(healthz.status, 200);
  EXPECT_THAT(HttpRequest(http_port_, "GET", "/metrics").body,
              HasSubstr("mtps_scheduler_registered_nodes{role=\"server\"} 1\n"));

  const auto silent_from = std::chrono::steady_clock::now();
  worker->Stop();  // the worker goes quiet
  std::optional<int> code = process.Wait(seconds(15));
  ASSERT_TRUE(code.has_value()) << "the scheduler did not end the job\n" << ReadFile(log_);
  EXPECT_EQ(*code, 1);
  // Detected after the 3 s timeout, well before the 15 s this test allows.
  EXPECT_GE(std::chrono::steady_clock::now() - silent_from, milliseconds(2900));
  auto notice = server->WaitForShutdown(seconds(5));
  ASSERT_TRUE(notice.has_value());
  EXPECT_TRUE(notice->failed);
  EXPECT_THAT(notice->reason, HasSubstr("worker 0"));
  EXPECT_THAT(ReadFile(log_), HasSubstr("sent no heartbeat for"));
}

TEST_F(SchedulerProcessTest, SigtermEndsItCleanly) {
  ChildProcess process(::mtps::testing::BinPath("mtps-scheduler"), Args(), log_);
  ASSERT_TRUE(WaitForHttp(http_port_)) << ReadFile(log_);
  EXPECT_THAT(HttpRequest(http_port_, "GET", "/metrics").body,
              HasSubstr("# TYPE mtps_scheduler_job_phase gauge\nmtps_scheduler_job_phase 0\n"));
  process.Signal(SIGTERM);
  std::optional<int> code = process.Wait(seconds(10));
  ASSERT_TRUE(code.has_value()) << ReadFile(log_);
  // A stop before the job's end: retryable, so Kubernetes replaces the pod (exit_codes.h).
  EXPECT_EQ(*code, kExitStopped);
  EXPECT_THAT(ReadFile(log_), HasSubstr("stopping"));
}

TEST_F(SchedulerProcessTest, APortInUseIsAClearErrorAndANonzeroExit) {
  ::mtps::testing::BusyPort busy;
  ASSERT_GT(busy.port(), 0);
  port_ = busy.port();
  ChildProcess process(::mtps::testing::BinPath("mtps-scheduler"), Args(), log_);
  std::optional<int> code = process.Wait(seconds(10));
  ASSERT_TRUE(code.has_value()) << "the scheduler hangs on a port in use\n" << ReadFile(log_);
  EXPECT_EQ(*code, 1);
  EXPECT_THAT(ReadFile(log_), HasSubstr("address in use"));
  EXPECT_THAT(ReadFile(log_), HasSubstr(std::to_string(busy.port())));
}

TEST_F(SchedulerProcessTest, ABadConfigIsRefusedNamingTheFile) {
  std::string bad = kSpec;
  bad.replace(bad.find("dim: 4"), 6, "dim: -4");
  std::ofstream(config_) << bad;
  ChildProcess process(::mtps::testing::BinPath("mtps-scheduler"), Args(), log_);
  std::optional<int> code = process.Wait(seconds(10));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 2);
  EXPECT_THAT(ReadFile(log_), HasSubstr("cannot load the job spec"));
  EXPECT_THAT(ReadFile(log_), HasSubstr(config_));
  EXPECT_THAT(ReadFile(log_), HasSubstr("tables[0].dim"));
}

}  // namespace
}  // namespace mtps::scheduler
