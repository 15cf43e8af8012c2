// Real mtps-server processes on loopback (found via MTPS_BIN_DIR): two standalone servers
// serve a client, answer /healthz and /metrics, exit 0 on SIGTERM, restore a checkpoint
// with --restore, and refuse (exit nonzero, naming the file) one of another table spec.
// Every wait is bounded; every started process is killed at the end of its test.
#include <signal.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ps/client.h"
#include "tests/common/child_process.h"
#include "tests/common/wait_for.h"
#include "tests/protocol/http_test_client.h"
#include "tests/ps/ps_net_test_util.h"

namespace mtps::ps {
namespace {

using namespace std::chrono_literals;
using testing::InitialRow;
using testing::kUserDim;
using testing::kUserLr;
using testing::kUserTable;
using testing::SomeKeys;
using testing::TestJob;

// One mtps-server child process on free ports, found through its --port_file; killed
// (SIGKILL) if still running when destroyed.
class ServerProcess {
 public:
  ServerProcess(const std::string& dir, const std::string& name, std::vector<std::string> args)
      : port_file_(FreshPath(dir + "/" + name + ".ports")),
        process_(mtps::testing::BinPath("mtps-server"), WithPorts(std::move(args), port_file_),
                 dir + "/" + name + ".log") {}

  // Waits (bounded) for the port file; false if the process exited or time ran out.
  bool WaitServing(std::chrono::milliseconds limit = 10s) {
    bool exited = false;
    const bool serving = mtps::testing::WaitFor(
        [&] {
          std::ifstream in(port_file_);
          if (in >> rpc_port_ >> http_port_) return true;
          exited = !process_.running();
          return exited;
        },
        limit);
    return serving && !exited;
  }
  // Waits (bounded) for the process to end.
  bool Exited(std::chrono::milliseconds limit) { return process_.Wait(limit).has_value(); }
  void Signal(int sig) { process_.Signal(sig); }
  int exit_code() { return process_.Wait(0ms).value_or(-1); }
  std::string endpoint() const { return "tcp://127.0.0.1:" + std::to_string(rpc_port_); }
  int http_port() const { return http_port_; }
  std::string log() const { return process_.Log(); }

 private:
  static std::string FreshPath(const std::string& path) {
    std::filesystem::remove(path);
    return path;
  }
  static std::vector<std::string> WithPorts(std::vector<std::string> args, const std::string& port_file) {
    for (const char* flag : {"--port=0", "--http_port=0", "--host=127.0.0.1"}) args.push_back(flag);
    args.push_back("--port_file=" + port_file);
    return args;
  }

  std::string port_file_;
  mtps::testing::ChildProcess process_;
  int rpc_port_ = 0, http_port_ = 0;
};

class ServerProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/ps_process_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    config_ = WriteJob("job.yaml", testing::kTestJob);
    StatusOr<JobSpec> spec = LoadJobSpec(config_);
    ASSERT_TRUE(spec.ok()) << spec.status();
    job_id_ = spec->hash;  // a server refuses messages without its job id
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string WriteJob(const std::string& name, const std::string& yaml) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << yaml;
    return path;
  }

  std::string dir_, config_;
  uint64_t job_id_ = 0;
};

TEST_F(ServerProcessTest, TwoServersServeAClientAndExitCleanlyOnSigterm) {
  ServerProcess s0(dir_, "s0", {"--standalone", "--config=" + config_, "--rank=0",
                                "--num_servers=2", "--threads=2"});
  ServerProcess s1(dir_, "s1", {"--standalone", "--config=" + config_, "--rank=1",
                                "--num_servers=2", "--threads=2"});
  ASSERT_TRUE(s0.WaitServing()) << s0.log();
  ASSERT_TRUE(s1.WaitServing()) << s1.log();

  const JobSpec job = TestJob();
  auto client = Client::Connect({s0.endpoint(), s1.endpoint()}, {.transport = {.job_id = job_id_}, .timeout = 5000ms});
  ASSERT_TRUE(client.ok()) << client.status();
  const auto keys = SomeKeys(400, 9);
  std::vector<float> rows(keys.size() * kUserDim);
  ASSERT_TRUE((*client)->Pull(kUserTable, keys, kUserDim, rows.data()).ok());
  for (size_t i = 0; i < keys.size(); ++i)
    ASSERT_EQ(rows[i * kUserDim], InitialRow(job.tables[kUserTable], keys[i])[0]) << i;
  const std::vector<float> grads(keys.size() * kUserDim, 1.0f);
  StatusOr<PushResult> pushed = (*client)->Push(kUserTable, keys, kUserDim, grads.data());
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_EQ(pushed->applied, keys.size());
  ASSERT_TRUE((*client)->Pull(kUserTable, keys, kUserDim, rows.data()).ok());
  for (size_t i = 0; i < keys.size(); ++i)
    ASSERT_FLOAT_EQ(rows[i * kUserDim], InitialRow(job.tables[kUserTable], keys[i])[0] - kUserLr);

  // A bad request to a real process: refused, and it keeps serving.
  std::vector<float> bad = grads;
  bad[0] = std::numeric_limits<float>::infinity();
  ClientOptions unchecked{.transport = {.job_id = job_id_}, .timeout = 5000ms, .check_finite = false};
  auto raw_client = Client::Connect({s0.endpoint(), s1.endpoint()}, unchecked);
  ASSERT_TRUE(raw_client.ok());
  StatusOr<PushResult> refused = (*raw_client)->Push(kUserTable, keys, kUserDim, bad.data());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument) << refused.status();
  EXPECT_TRUE((*client)->Pull(kUserTable, keys, kUserDim, rows.data()).ok());

  // HTTP: health and Prometheus metrics reflecting what was served.
  const mtps::testing::HttpReply health = mtps::testing::HttpRequest(s0.http_port(), "GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok\n");
  for (ServerProcess* s : {&s0, &s1}) {
    const mtps::testing::HttpReply metrics = mtps::testing::HttpRequest(s->http_port(), "GET", "/metrics");
    ASSERT_EQ(metrics.status, 200);
    EXPECT_NE(metrics.body.find("mtps_ps_requests_total{kind=\"sparse_pull\"} 3"),
              std::string::npos)
        << metrics.body;
    EXPECT_NE(metrics.body.find("mtps_ps_table_rows{table=\"user\"}"), std::string::npos);
    EXPECT_NE(metrics.body.find("mtps_ps_request_seconds_count{kind=\"sparse_push\"} 2"),
              std::string::npos)
        << metrics.body;
  }
  const mtps::testing::HttpReply m0 = mtps::testing::HttpRequest(s0.http_port(), "GET", "/metrics");
  const mtps::testing::HttpReply m1 = mtps::testing::HttpRequest(s1.http_port(), "GET", "/metrics");
  const bool one_refused =
      (m0.body.find("mtps_ps_rejected_requests_total{kind=\"sparse_push\"} 1") !=
       std::string::npos) ||
      (m1.body.find("mtps_ps_rejected_requests_total{kind=\"sparse_push\"} 1") !=
       std::string::npos);
  EXPECT_TRUE(one_refused) << m0.body << m1.body;

  s0.Signal(SIGTERM);
  s1.Signal(SIGINT);
  ASSERT_TRUE(s0.Exited(10s)) << "no exit within 10 s of SIGTERM";
  ASSERT_TRUE(s1.Exited(10s)) << "no exit within 10 s of SIGINT";
  EXPECT_EQ(s0.exit_code(), 0) << s0.log();
  EXPECT_EQ(s1.exit_code(), 0) << s1.log();
}

// Begins and commits checkpoint `id` in `dir` on the server at `endpoint`.
void Checkpoint(const std::string& endpoint, uint64_t id, const std::string& dir, uint64_t job_id) {
  auto raw = RpcClient::Connect(endpoint, proto::Role::SCHEDULER, -1, {.job_id = job_id});
  ASSERT_TRUE(raw.ok()) << raw.status();
  StatusOr<IncomingMessage> begun = testing::CallRaw(**raw, [&](proto::Envelope::Body::Builder b) {
    b.initCheckpointBegin().setCheckpointId(id);
    b.getCheckpointBegin().setDir(dir);
  });
  ASSERT_TRUE(begun.ok()) << begun.status();
  StatusOr<IncomingMessage> committed = testing::CallRaw(
      **raw, [&](proto::Envelope::Body::Builder b) { b.initCheckpointCommit().setCheckpointId(id); });
  ASSERT_TRUE(committed.ok()) << committed.status();
}

TEST_F(ServerProcessTest, RestoreLoadsTheCheckpointAndRefusesAnotherTableSpec) {
  const std::string root = dir_ + "/ckpt";
  const auto keys = SomeKeys(100, 11);
  std::vector<float> before(keys.size() * kUserDim);
  {
    ServerProcess s(dir_, "writer", {"--standalone", "--config=" + config_,
                                     "--checkpoint_dir=" + root});
    ASSERT_TRUE(s.WaitServing()) << s.log();
    auto client = Client::Connect({s.endpoint()}, {.transport = {.job_id = job_id_}, .timeout = 5000ms});
    ASSERT_TRUE(client.ok());
    const std::vector<float> grads(keys.size() * kUserDim, 0.25f);
    ASSERT_TRUE((*client)->Push(kUserTable, keys, kUserDim, grads.data()).ok());
    ASSERT_TRUE((*client)->Pull(kUserTable, keys, kUserDim, before.data()).ok());
    Checkpoint(s.endpoint(), 1, root + "/ckpt-1", job_id_);
    s.Signal(SIGTERM);
    ASSERT_TRUE(s.Exited(10s));
    EXPECT_EQ(s.exit_code(), 0) << s.log();
  }
  {
    ServerProcess s(dir_, "restored", {"--standalone", "--config=" + config_,
                                       "--checkpoint_dir=" + root, "--restore"});
    ASSERT_TRUE(s.WaitServing()) << s.log();
    auto client = Client::Connect({s.endpoint()}, {.transport = {.job_id = job_id_}, .timeout = 5000ms});
    ASSERT_TRUE(client.ok());
    std::vector<float> after(keys.size() * kUserDim);
    ASSERT_TRUE((*client)->Pull(kUserTable, keys, kUserDim, after.data(), {.count_as_sighting = false}).ok());
    EXPECT_EQ(after, before) << "restored rows differ";
    s.Signal(SIGTERM);
    ASSERT_TRUE(s.Exited(10s));
    EXPECT_EQ(s.exit_code(), 0) << s.log();
  }
  {
    std::string yaml = testing::kTestJob;
    yaml.replace(yaml.find("dim: 8"), 6, "dim: 32");
    ServerProcess s(dir_, "other_spec", {"--standalone", "--config=" + WriteJob("other.yaml", yaml),
                                         "--checkpoint_dir=" + root, "--restore"});
    EXPECT_FALSE(s.WaitServing()) << "served a checkpoint of another table spec";
    ASSERT_TRUE(s.Exited(10s));
    EXPECT_NE(s.exit_code(), 0);
    const std::string log = s.log();
    EXPECT_NE(log.find("FAILED_PRECONDITION"), std::string::npos) << log;
    EXPECT_NE(log.find("table-user"), std::string::npos) << log;
  }
}

TEST_F(ServerProcessTest, APortInUseIsAClearErrorAndANonzeroExit) {
  mtps::testing::BusyPort busy;
  ASSERT_GT(busy.port(), 0);
  mtps::testing::ChildProcess process(
      mtps::testing::BinPath("mtps-server"),
      {"--standalone", "--config=" + config_, "--host=127.0.0.1",
       "--port=" + std::to_string(busy.port()), "--http_port=0"},
      dir_ + "/busy.log");
  std::optional<int> code = process.Wait(10s);
  ASSERT_TRUE(code.has_value()) << "the server hangs on a port in use\n" << process.Log();
  EXPECT_EQ(*code, 1);
  EXPECT_NE(process.Log().find("address in use"), std::string::npos) << process.Log();
}

TEST_F(ServerProcessTest, RestoreWithNoCheckpointStartsEmptyAndSaysSo) {
  ServerProcess s(dir_, "fresh", {"--standalone", "--config=" + config_,
                                  "--checkpoint_dir=" + dir_ + "/no-such-volume", "--restore"});
  ASSERT_TRUE(s.WaitServing()) << s.log();
  EXPECT_NE(s.log().find("starting with empty tables (first launch)"), std::string::npos) << s.log();
  s.Signal(SIGTERM);
  ASSERT_TRUE(s.Exited(10s));
  EXPECT_EQ(s.exit_code(), 0) << s.log();
}

TEST_F(ServerProcessTest, BadFlagsAndConfigsStopItWithAMessage) {
  ServerProcess no_config(dir_, "no_config", {"--standalone"});
  ASSERT_TRUE(no_config.Exited(10s));
  EXPECT_NE(no_config.exit_code(), 0);
  EXPECT_NE(no_config.log().find("--config"), std::string::npos) << no_config.log();

  ServerProcess bad_rank(dir_, "bad_rank",
                         {"--standalone", "--config=" + config_, "--rank=2", "--num_servers=2"});
  ASSERT_TRUE(bad_rank.Exited(10s));
  EXPECT_NE(bad_rank.exit_code(), 0);
  EXPECT_NE(bad_rank.log().find("rank 2 is outside [0, 2)"), std::string::npos)
      << bad_rank.log();

  ServerProcess bad_yaml(dir_, "bad_yaml",
                         {"--standalone", "--config=" + WriteJob("bad.yaml", "tables: [")});
  ASSERT_TRUE(bad_yaml.Exited(10s));
  EXPECT_NE(bad_yaml.exit_code(), 0);
  EXPECT_NE(bad_yaml.log().find("bad.yaml"), std::string::npos) << bad_yaml.log();
}

}  // namespace
}  // namespace mtps::ps
