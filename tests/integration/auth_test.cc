// A CURVE-authenticated cluster of real processes (scheduler, server, worker) refuses
// strangers: a peer without keys, with another job's keys, or with a forged identity (a
// job key claiming another role) cannot register, pull, push or give an order; a worker
// key cannot give orders; a rank held by a live node cannot be taken. Every attempt is
// refused and counted on /metrics, and the job then runs to a successful end.
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "protocol/curve_keys.h"
#include "protocol/job_spec.h"
#include "protocol/transport.h"
#include "tests/common/child_process.h"
#include "tests/common/wait_for.h"
#include "tests/protocol/http_test_client.h"
#include "worker/data/datagen.h"

namespace mtps {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using mtps::testing::BinPath;
using mtps::testing::ChildProcess;
using mtps::testing::FreePort;
using Kind = proto::Envelope::Body;

// The value of the first sample of `name` (with `labels`, if given) on a /metrics page.
double MetricValue(const std::string& page, const std::string& series) {
  const size_t at = page.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(page.substr(at + series.size() + 2));
}

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("auth_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "logs");
    DatagenOptions data;
    data.out_dir = (dir_ / "data").string();
    data.rows = 60000;
    data.train_files = 2;
    data.row_group_rows = 1024;
    data.world.users = 200;
    data.world.items = 100;
    ASSERT_TRUE(GenerateDataset(data).ok());
    spec_path_ = (dir_ / "data" / "job.yaml").string();
    StatusOr<JobSpec> spec = LoadJobSpec(spec_path_);
    ASSERT_TRUE(spec.ok()) << spec.status();
    job_id_ = spec->hash;
    // This job: 2 server keys (one spare, to try to take rank 0), 1 worker, 1 tool key.
    ASSERT_TRUE(WriteJobKeys((dir_ / "keys").string(), 2, 1, 1).ok());
    ASSERT_TRUE(WriteJobKeys((dir_ / "other").string(), 1, 1, 0).ok());
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }

  std::shared_ptr<const JobKeys> Keys(const std::string& set, const std::string& name) {
    StatusOr<std::shared_ptr<const JobKeys>> keys = JobKeys::Load((dir_ / set).string(), name);
    EXPECT_TRUE(keys.ok()) << keys.status();
    return keys.ok() ? *keys : nullptr;
  }

  // A call from the test process as `keys` (null: no CURVE), claiming `role`; answered
  // within `timeout` or kDeadlineExceeded.
  std::future<Status> CallAsync(const std::string& endpoint, std::shared_ptr<const JobKeys> keys,
                                proto::Role role, const std::function<void(Kind::Builder)>& fill,
                                std::chrono::milliseconds timeout) {
    TransportOptions options;
    options.keys = std::move(keys);
    options.job_id = job_id_;  // a prober that knows the job id: only the keys may stop it
    auto client = RpcClient::Connect(endpoint, role, 0, options);
    if (!client.ok()) {
      std::promise<Status> failed;
      failed.set_value(client.status());
      return failed.get_future();
    }
    std::shared_ptr<RpcClient> shared(std::move(*client));
    auto request = shared->NewRequest();
    fill(request->body());
    auto reply = std::make_shared<std::future<StatusOr<IncomingMessage>>>(
        shared->Call(std::move(request), {timeout, 1}));
    return std::async(std::launch::async, [shared, reply]() -> Status {
      StatusOr<IncomingMessage> r = reply->get();
      return r.ok() ? ReplyStatus(*r) : r.status();
    });
  }
  Status Call(const std::string& endpoint, std::shared_ptr<const JobKeys> keys, proto::Role role,
              const std::function<void(Kind::Builder)>& fill) {
    return CallAsync(endpoint, std::move(keys), role, fill, 700ms).get();
  }

  std::string Metrics(int port) { return testing::HttpRequest(port, "GET", "/metrics").body; }

  std::string AllLogs() {
    std::string logs;
    for (auto* p : {scheduler_.get(), server_.get(), worker_.get()}) {
      if (p != nullptr) logs += "--- " + p->log_path() + "\n" + p->LogTail(25);
    }
    return logs;
  }

  fs::path dir_;
  std::string spec_path_;
  uint64_t job_id_ = 0;
  std::unique_ptr<ChildProcess> scheduler_, server_, worker_;
};

TEST_F(AuthTest, StrangersAreRefusedAndCountedAndTheJobRunsToItsEnd) {
  const std::string keys = (dir_ / "keys").string();
  const int sched_port = FreePort(), sched_http = FreePort();
  const int server_port = FreePort(), server_http = FreePort();
  const std::string scheduler = "tcp://127.0.0.1:" + std::to_string(sched_port);
  const std::string server = "tcp://127.0.0.1:" + std::to_string(server_port);
  scheduler_ = std::make_unique<ChildProcess>(
      BinPath("mtps-scheduler"),
      std::vector<std::string>{"--config", spec_path_, "--host", "127.0.0.1", "--port",
                               std::to_string(sched_port), "--http_port", std::to_string(sched_http),
                               "--num_servers", "1", "--num_workers", "1", "--run_dir",
                               (dir_ / "run").string(), "--register_timeout", "120",
                               "--recover_timeout", "30", "--keys_dir", keys, "--logtostderr"},
      (dir_ / "logs" / "scheduler.log").string());
  server_ = std::make_unique<ChildProcess>(
      BinPath("mtps-server"),
      std::vector<std::string>{"--config", spec_path_, "--scheduler", scheduler, "--host",
                               "127.0.0.1", "--port", std::to_string(server_port), "--http_port",
                               std::to_string(server_http), "--threads", "2", "--rank", "0",
                               "--checkpoint_dir", (dir_ / "ckpt").string(), "--keys_dir", keys,
                               "--logtostderr"},
      (dir_ / "logs" / "server.log").string());
  // Bounded wait until the server has registered (the scheduler's log says so).
  ASSERT_TRUE(mtps::testing::WaitFor(
      [&] { return scheduler_->Log().find("server 0 registered") != std::string::npos; }, 30s))
      << AllLogs();

  auto register_as = [job_id = job_id_](proto::Role role) {
    return [role, job_id](Kind::Builder b) {
      auto reg = b.initRegister();
      reg.setRole(role);
      reg.setAddress("tcp://127.0.0.1:1");
      reg.setRequestedRank(0);
      reg.setSpecHash(job_id);
    };
  };
  auto pull = [](Kind::Builder b) {
    auto p = b.initSparsePull();
    p.setTableId(0);
    p.initKeys(8);
  };
  auto push = [](Kind::Builder b) {
    auto p = b.initSparsePush();
    p.setTableId(0);
    p.initKeys(8);
    p.initGradients(4 * 8);
  };
  auto shutdown = [](Kind::Builder b) { b.initShutdown().setReason("stranger says stop"); };
  auto checkpoint = [](Kind::Builder b) { b.initCheckpointBegin().setCheckpointId(7); };
  auto done = [](Kind::Builder b) { b.initProgress().setPhase("done"); };
  using R = proto::Role;

  // No keys, and another job's keys (its worker and even its scheduler): the handshake
  // fails, so no request of theirs is ever read. They see only silence.
  int strangers = 0;
  for (std::shared_ptr<const JobKeys> k :
       {std::shared_ptr<const JobKeys>(), Keys("other", "worker-0"), Keys("other", "scheduler")}) {
    const R role = k && k->self().role == R::SCHEDULER ? R::SCHEDULER : R::WORKER;
    EXPECT_EQ(Call(scheduler, k, R::WORKER, register_as(R::WORKER)).code(), StatusCode::kDeadlineExceeded);
    EXPECT_EQ(Call(scheduler, k, R::WORKER, done).code(), StatusCode::kDeadlineExceeded);
    EXPECT_EQ(Call(server, k, R::WORKER, pull).code(), StatusCode::kDeadlineExceeded);
    EXPECT_EQ(Call(server, k, R::WORKER, push).code(), StatusCode::kDeadlineExceeded);
    EXPECT_EQ(Call(server, k, role, shutdown).code(), StatusCode::kDeadlineExceeded);
    strangers += 2;  // at least one failed handshake per socket and stranger
  }

  // Forged identities: a job key (the tool's) claiming to be a worker or the scheduler.
  // The server serves nothing until the cluster is formed: these wait in its socket and
  // are answered once the worker has joined (below).
  auto tool = Keys("keys", "client-0");
  auto worker_key = Keys("keys", "worker-0");
  const auto denied = StatusCode::kPermissionDenied;
  std::vector<std::future<Status>> at_server;
  at_server.push_back(CallAsync(server, tool, R::WORKER, pull, 60s));
  at_server.push_back(CallAsync(server, tool, R::CLIENT, push, 60s));
  at_server.push_back(CallAsync(server, tool, R::SCHEDULER, shutdown, 60s));
  // The job's own worker key gives no orders: no shutdown, no checkpoint.
  at_server.push_back(CallAsync(server, worker_key, R::WORKER, shutdown, 60s));
  at_server.push_back(CallAsync(server, worker_key, R::WORKER, checkpoint, 60s));
  EXPECT_EQ(Call(scheduler, tool, R::WORKER, register_as(R::WORKER)).code(), denied);
  // Nor a "done" for a rank it never registered.
  EXPECT_EQ(Call(scheduler, worker_key, R::WORKER, done).code(), denied);
  // A worker key may not register as a server; the spare server key may not take rank 0
  // from the live server that holds it.
  EXPECT_EQ(Call(scheduler, worker_key, R::WORKER, register_as(R::SERVER)).code(), denied);
  Status taken = Call(scheduler, Keys("keys", "server-1"), R::SERVER, register_as(R::SERVER));
  EXPECT_FALSE(taken.ok());
  EXPECT_NE(taken.message().find("held by"), std::string::npos) << taken;
  // No refusal tells the job id (the spec hash).
  EXPECT_EQ(taken.message().find(std::to_string(job_id_)), std::string::npos) << taken;

  // The job goes on unharmed: the real worker joins with its key; the server then serves,
  // refusing what waited for it.
  worker_ = std::make_unique<ChildProcess>(
      BinPath("mtps-worker"),
      std::vector<std::string>{"--config", spec_path_, "--scheduler", scheduler, "--http_port",
                               "0", "--rank", "0", "--keys_dir", keys, "--logtostderr"},
      (dir_ / "logs" / "worker.log").string());
  for (auto& refusal : at_server) {
    Status s = refusal.get();
    EXPECT_EQ(s.code(), denied) << s << "\n" << AllLogs();
  }
  // The job runs now (the server serves only then). With recovery on, a registration for a
  // held rank replaces its holder (a restart) — but only when it comes from the holder's
  // own key: the spare server key is refused and the live server keeps its rank.
  Status replaced = Call(scheduler, Keys("keys", "server-1"), R::SERVER, register_as(R::SERVER));
  EXPECT_EQ(replaced.code(), denied) << replaced << "\n" << AllLogs();
  EXPECT_NE(replaced.message().find("held by another key"), std::string::npos) << replaced;

  // Each attempt is counted on /metrics.
  const std::string server_metrics = Metrics(server_http);
  const std::string sched_metrics = Metrics(sched_http);
  EXPECT_GE(MetricValue(server_metrics, "mtps_auth_refused_handshakes{socket=\"rpc\"}"), 3)
      << server_metrics;
  EXPECT_EQ(MetricValue(server_metrics, "mtps_auth_refused_requests{socket=\"rpc\"}"), 5)
      << server_metrics;
  EXPECT_GE(MetricValue(sched_metrics, "mtps_auth_refused_handshakes{socket=\"rpc\"}"), 3)
      << sched_metrics;
  EXPECT_EQ(MetricValue(sched_metrics, "mtps_auth_refused_requests{socket=\"rpc\"}"), 2)
      << sched_metrics;
  EXPECT_EQ(MetricValue(server_metrics, "mtps_auth_secure{socket=\"rpc\"}"), 1) << server_metrics;

  // ... and training runs to its end.
  std::optional<int> code = scheduler_->Wait(180s);
  ASSERT_TRUE(code.has_value()) << "the job did not finish\n" << AllLogs();
  EXPECT_EQ(*code, 0) << AllLogs();
  EXPECT_EQ(worker_->Wait(30s), std::optional<int>(0)) << AllLogs();
  EXPECT_EQ(server_->Wait(30s), std::optional<int>(0)) << AllLogs();
  EXPECT_NE(scheduler_->Log().find("CURVE on"), std::string::npos);
  EXPECT_EQ(scheduler_->Log().find("INSECURE"), std::string::npos);
}

TEST_F(AuthTest, WithoutKeysEveryProcessSaysItIsInsecure) {
  ChildProcess scheduler(BinPath("mtps-scheduler"),
                         {"--config", spec_path_, "--host", "127.0.0.1", "--port", "0",
                          "--num_servers", "1", "--num_workers", "1", "--register_timeout", "1",
                          "--insecure", "--logtostderr"},
                         (dir_ / "logs" / "insecure.log").string());
  ASSERT_TRUE(scheduler.Wait(30s).has_value()) << scheduler.LogTail();
  EXPECT_NE(scheduler.Log().find("INSECURE"), std::string::npos) << scheduler.LogTail();
  // Contradictory flags are refused.
  ChildProcess both(BinPath("mtps-scheduler"),
                    {"--config", spec_path_, "--insecure", "--keys_dir", (dir_ / "keys").string()},
                    (dir_ / "logs" / "both.log").string());
  EXPECT_EQ(both.Wait(30s), std::optional<int>(2)) << both.LogTail();
}

}  // namespace
}  // namespace mtps
