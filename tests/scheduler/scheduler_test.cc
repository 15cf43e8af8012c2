// Tests of the Scheduler with in-process SchedulerClients over loopback ZeroMQ: ranks and
// views, spec-hash refusal, failure detection, barriers, registration timeout, and a whole
// job from progress reports to summary.json, final checkpoint and shutdown.
#include "scheduler/scheduler.h"

#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

// property_tree's JSON parser includes the deprecated <boost/bind.hpp>; this keeps its
// build-time notice quiet without changing behaviour.
#define BOOST_BIND_GLOBAL_PLACEHOLDERS
#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "base/checkpoint_manifest.h"
#include "protocol/scheduler_client.h"
#include "tests/common/wait_for.h"
#include "tests/scheduler/scheduler_test_util.h"

namespace mtps::scheduler {
namespace {

using ::mtps::scheduler::testing::TempDir;
using ::mtps::scheduler::testing::TestSpec;
using ::testing::HasSubstr;
using ::testing::Not;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Kind = proto::Envelope::Body;

class SchedulerTest : public ::testing::Test {
 protected:
  // Starts a scheduler for `servers` + `workers` and runs it on a thread.
  void StartScheduler(int servers, int workers, const Clock* clock = nullptr,
                      std::function<void(SchedulerOptions&)> adjust = {}) {
    SchedulerOptions options;
    options.spec = TestSpec();
    options.num_servers = servers;
    options.num_workers = workers;
    options.endpoint = "tcp://127.0.0.1:0";
    options.run_dir = run_dir_.path() + "/run";
    options.heartbeat_timeout = seconds(5);
    options.register_timeout = seconds(10);
    options.barrier_timeout = seconds(10);
    options.shutdown_timeout = milliseconds(300);  // clients of a test may be gone already
    options.tick = milliseconds(10);
    if (adjust) adjust(options);
    spec_ = options.spec;
    scheduler_ = std::make_unique<Scheduler>(options, clock ? clock : &steady_, fs_.get(), &metrics_);
    StatusOr<int> port = scheduler_->Start();
    ASSERT_TRUE(port.ok()) << port.status();
    endpoint_ = "tcp://127.0.0.1:" + std::to_string(*port);
    result_ = std::async(std::launch::async, [this] { return scheduler_->Run(); });
  }

  std::unique_ptr<SchedulerClient> NewClient(proto::Role role, uint64_t hash = 0,
                                             const std::string& address = "") {
    SchedulerClientOptions o;
    o.scheduler = endpoint_;
    o.role = role;
    o.address = address;
    o.spec_hash = hash ? hash : spec_.hash;
    o.heartbeat_interval = milliseconds(50);
    o.register_timeout = seconds(10);
    o.scheduler_timeout = seconds(5);
    auto client = SchedulerClient::Create(o);
    EXPECT_TRUE(client.ok()) << client.status();
    return std::move(*client);
  }

  // Returns once every client but `except` has settled two more heartbeats: the second was
  // sent after this call, so the scheduler has seen it at its clock's time of now.
  static void NextHeartbeats(std::vector<std::unique_ptr<SchedulerClient>>& clients,
                             const SchedulerClient* except = nullptr) {
    for (auto& c : clients) {
      if (c.get() == except) continue;
      ASSERT_TRUE(c->WaitForHeartbeats(c->heartbeats() + 2, seconds(10)));
    }
  }

  // Registers every client at once (registration blocks until all are in).
  std::vector<StatusOr<ClusterInfo>> RegisterAll(std::vector<std::unique_ptr<SchedulerClient>>& clients) {
    std::vector<std::future<StatusOr<ClusterInfo>>> pending;
    for (auto& c : clients) {
      pending.push_back(std::async(std::launch::async, [&c] { return c->Register(); }));
    }
    std::vector<StatusOr<ClusterInfo>> infos;
    for (auto& p : pending) infos.push_back(p.get());
    return infos;
  }

  Status JobResult(seconds limit = seconds(10)) {
    if (result_.wait_for(limit) != std::future_status::ready) return DeadlineExceeded("Run() hangs");
    return result_.get();
  }

  void TearDown() override {
    if (scheduler_ && result_.valid()) {
      scheduler_->RequestStop("test over");
      result_.wait_for(seconds(10));
    }
  }

  TempDir run_dir_;
  SteadyClock steady_;
  std::unique_ptr<FileSystem> fs_ = NewPosixFileSystem();
  MetricsRegistry metrics_;
  JobSpec spec_;
  std::unique_ptr<Scheduler> scheduler_;
  std::string endpoint_;
  std::future<Status> result_;
};

TEST_F(SchedulerTest, RegistrationGivesDistinctRanksAndTheSameView) {
  StartScheduler(2, 3);
  std::vector<std::unique_ptr<SchedulerClient>> clients;
  for (int i = 0; i < 2; ++i) clients.push_back(NewClient(proto::Role::SERVER));
  for (int i = 0; i < 3; ++i) clients.push_back(NewClient(proto::Role::WORKER));
  std::vector<StatusOr<ClusterInfo>> infos = RegisterAll(clients);
  std::set<int> server_ranks, worker_ranks;
  for (size_t i = 0; i < infos.size(); ++i) {
    ASSERT_TRUE(infos[i].ok()) << infos[i].status();
    (i < 2 ? server_ranks : worker_ranks).insert(infos[i]->rank);
    EXPECT_EQ(clients[i]->rank(), infos[i]->rank);
    EXPECT_EQ(infos[i]->spec_hash, spec_.hash);
    EXPECT_EQ(infos[i]->view_epoch, 5u);
    ASSERT_EQ(infos[i]->servers.size(), 2u);
    ASSERT_EQ(infos[i]->workers.size(), 3u);
    for (size_t n = 0; n < infos[i]->servers.size(); ++n) {
      EXPECT_EQ(infos[i]->servers[n].address, infos[0]->servers[n].address);
    }
    for (size_t n = 0; n < infos[i]->workers.size(); ++n) {
      EXPECT_EQ(infos[i]->workers[n].address, infos[0]->workers[n].address);
    }
    // Each node is listed at its own rank, with its own address.
    const auto& listed = i < 2 ? infos[i]->servers : infos[i]->workers;
    EXPECT_EQ(listed[infos[i]->rank].address, clients[i]->address());
    EXPECT_EQ(listed[infos[i]->rank].rank, infos[i]->rank);
  }
  EXPECT_EQ(server_ranks, (std::set<int>{0, 1}));
  EXPECT_EQ(worker_ranks, (std::set<int>{0, 1, 2}));
  EXPECT_THAT(metrics_.Render(), HasSubstr("mtps_scheduler_registered_nodes{role=\"worker\"} 3\n"));

  // SIGTERM's path: everyone is told, the scheduler returns CANCELLED.
  scheduler_->RequestStop("operator");
  EXPECT_EQ(JobResult().code(), StatusCode::kCancelled);
  for (auto& c : clients) {
    auto notice = c->WaitForShutdown(seconds(5));
    ASSERT_TRUE(notice.has_value());
    EXPECT_THAT(notice->reason, HasSubstr("operator"));
    // A stopped scheduler (a drain, a preemption) is no reason to fail the job for good.
    EXPECT_TRUE(notice->failed && notice->retryable);
  }
}

TEST_F(SchedulerTest, ANodeWithAnotherSpecIsRefusedWithItsHashButNotTheSchedulers) {
  StartScheduler(1, 1);
  auto stranger = NewClient(proto::Role::WORKER, /*hash=*/0x00000000deadbeefull);
  StatusOr<ClusterInfo> refused = stranger->Register();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("0x00000000deadbeef"));
  // The scheduler's hash is the job id every message must carry: never told.
  EXPECT_THAT(refused.status().message(), Not(HasSubstr("0x5eed5eed12345678")));
  // The refusal took no rank: the right nodes still form the cluster.
  std::vector<std::unique_ptr<SchedulerClient>> clients;
  clients.push_back(NewClient(proto::Role::SERVER));
  clients.push_back(NewClient(proto::Role::WORKER));
  for (auto& info : RegisterAll(clients)) EXPECT_TRUE(info.ok()) << info.status();
  EXPECT_THAT(metrics_.Render(), HasSubstr("mtps_scheduler_refused_requests_total 1\n"));
}

TEST_F(SchedulerTest, ASilentNodeIsDetectedAndTheOthersAreShutDown) {
  ManualClock clock;
  StartScheduler(1, 2, &clock);
  std::vector<std::unique_ptr<SchedulerClient>> clients;
  clients.push_back(NewClient(proto::Role::SERVER));
  clients.push_back(NewClient(proto::Role::WORKER));
  clients.push_back(NewClient(proto::Role::WORKER));
  std::vector<StatusOr<ClusterInfo>> infos = RegisterAll(clients);
  for (auto& info : infos) ASSERT_TRUE(info.ok()) << info.status();
  SchedulerClient* silent = infos[1]->rank == 1 ? clients[1].get() : clients[2].get();
  silent->Stop();  // no more heartbeats: as if the process hung or died

  // The timeout is 5 s of the scheduler's clock. Live nodes beat every 50 ms of real time.
  clock.Advance(seconds(3));
  NextHeartbeats(clients, silent);
  EXPECT_EQ(result_.wait_for(milliseconds(0)), std::future_status::timeout) << "3 s is not dead";
  clock.Advance(seconds(3));  // the silent worker: 6 s; the others: about 3 s
  Status result = JobResult();
  EXPECT_EQ(result.code(), StatusCode::kUnavailable);
  EXPECT_THAT(result.message(), HasSubstr("worker 1 (" + silent->address() + ")"));
  EXPECT_THAT(result.message(), HasSubstr("sent no heartbeat for 6.0 s (heartbeat timeout 5.0 s)"));
  for (auto& c : clients) {
    if (c.get() == silent) continue;
    auto notice = c->WaitForShutdown(seconds(5));
    ASSERT_TRUE(notice.has_value());
    EXPECT_TRUE(notice->failed);
    EXPECT_THAT(notice->reason, HasSubstr("worker 1"));
  }
  EXPECT_FALSE(silent->shutdown_notice().has_value()) << "a dead node is not sent anything";
  EXPECT_FALSE(scheduler_->health().ok());
  EXPECT_THAT(metrics_.Render(), HasSubstr("mtps_scheduler_dead_nodes_total 1\n"));
}

TEST_F(SchedulerTest, BarriersReleaseEveryoneAtOnceAndTimeOutCleanly) {
  StartScheduler(1, 2, nullptr, [](SchedulerOptions& o) { o.barrier_timeout = milliseconds(400); });
  std::vector<std::unique_ptr<SchedulerClient>> clients;
  clients.push_back(NewClient(proto::Role::SERVER));
  clients.push_back(NewClient(proto::Role::WORKER));
  clients.push_back(NewClient(proto::Role::WORKER));
  for (auto& info : RegisterAll(clients)) ASSERT_TRUE(info.ok()) << info.status();

  auto first = std::async(std::launch::async, [&] { return clients[0]->Barrier("start"); });
  auto second = std::async(std::launch::async, [&] { return clients[1]->Barrier("start"); });
  EXPECT_EQ(first.wait_for(milliseconds(200)), std::future_status::timeout);
  EXPECT_EQ(second.wait_for(milliseconds(0)), std::future_status::timeout);
  EXPECT_TRUE(clients[2]->Barrier("start").ok());
  ASSERT_EQ(first.wait_for(seconds(2)), std::future_status::ready);
  ASSERT_EQ(second.wait_for(seconds(2)), std::future_status::ready);
  EXPECT_TRUE(first.get().ok());
  EXPECT_TRUE(second.get().ok());

  // Two of the workers only, by count.
  auto w0 = std::async(std::launch::async, [&] { return clients[1]->Barrier("workers", 2); });
  EXPECT_TRUE(clients[2]->Barrier("workers", 2).ok());
  EXPECT_TRUE(w0.get().ok());

  // Nobody else comes: the barrier times out with the scheduler's reason.
  auto start = std::chrono::steady_clock::now();
  Status lonely = clients[1]->Barrier("epoch-1");
  EXPECT_EQ(lonely.code(), StatusCode::kDeadlineExceeded);
  EXPECT_THAT(lonely.message(), HasSubstr("barrier 'epoch-1' timed out"));
  EXPECT_THAT(lonely.message(), HasSubstr("1 of 3 nodes arrived (worker"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(3));
  EXPECT_EQ(clients[1]->Barrier("too-many", 9).code(), StatusCode::kInvalidArgument);
}

TEST_F(SchedulerTest, AShutdownNoticeEndsABarrierWaitAtOnce) {
  StartScheduler(1, 2);  // barriers wait up to 10 s
  std::vector<std::unique_ptr<SchedulerClient>> clients;
  clients.push_back(NewClient(proto::Role::SERVER));
  clients.push_back(NewClient(proto::Role::WORKER));
  clients.push_back(NewClient(proto::Role::WORKER));
  for (auto& info : RegisterAll(clients)) ASSERT_TRUE(info.ok()) << info.status();
  auto waiting = std::async(std::launch::async, [&] { return clients[1]->Barrier("epoch-0", 2); });
  EXPECT_EQ(waiting.wait_for(milliseconds(100)), std::future_status::timeout);
  // The node is told the job ended (as after the scheduler's loss): the barrier is given up.
  auto operator_client =
      RpcClient::Connect(clients[1]->address(), proto::Role::CLIENT, -1, {.job_id = spec_.hash});
  ASSERT_TRUE(operator_client.ok());
  auto request = (*operator_client)->NewRequest();
  request->body().initShutdown().setReason("the scheduler is gone");
  const auto sent = std::chrono::steady_clock::now();
  ASSERT_TRUE((*operator_client)->Call(std::move(request), {.timeout = seconds(2)}).get().ok());
  ASSERT_EQ(waiting.wait_for(seconds(2)), std::future_status::ready);
  Status abandoned = waiting.get();
  EXPECT_LT(std::chrono::steady_clock::now() - sent, seconds(1));
  EXPECT_EQ(abandoned.code(), StatusCode::kCancelled) << abandoned;
  EXPECT_THAT(abandoned.message(), HasSubstr("the scheduler is gone"));
}

TEST_F(SchedulerTest, HeartbeatsAreCheckedWhileACheckpointWaitsAndTheSilentServerIsNamed) {
  TempDir checkpoints;
  StartScheduler(1, 1, nullptr, [&](SchedulerOptions& o) {
    o.spec.checkpoint.dir = checkpoints.path();
    o.spec.checkpoint.interval_steps = 1;
    o.spec.training.mode = TrainingSpec::Mode::kSync;  // no cut: the servers are asked at once
    o.heartbeat_timeout = milliseconds(500);
    o.checkpoint_timeout = seconds(60);  // far longer than this test may take
  });
  // A server that never answers checkpointBegin, as one stopped with SIGSTOP.
  RpcServer rpc(TransportOptions{}, proto::Role::SERVER);
  const int port = *rpc.Bind("tcp://127.0.0.1:0");
  auto server = NewClient(proto::Role::SERVER, 0, "tcp://127.0.0.1:" + std::to_string(port));
  server->InstallHandlers(rpc);
  std::vector<Responder> held;
  std::mutex held_mutex;
  std::atomic<bool> begun{false};
  rpc.Handle(Kind::CHECKPOINT_BEGIN, [&](IncomingMessage&, Responder r) {
    std::lock_guard<std::mutex> lock(held_mutex);
    held.push_back(std::move(r));
    begun = true;
  });
  ASSERT_TRUE(rpc.Start().ok());
  auto worker = NewClient(proto::Role::WORKER);
  auto server_info = std::async(std::launch::async, [&] { return server->Register(); });
  ASSERT_TRUE(worker->Register().ok());
  ASSERT_TRUE(server_info.get().ok());
  ASSERT_TRUE(worker->ReportProgress({.phase = "train", .step = 5, .samples = 10}).ok());
  mtps::testing::WaitFor([&] { return begun.load(); }, seconds(5), milliseconds(5));
  ASSERT_TRUE(begun) << "no checkpoint began";
  const auto silent_from = std::chrono::steady_clock::now();
  server->Stop();  // and now it is silent too

  Status result = JobResult(seconds(10));
  EXPECT_LT(std::chrono::steady_clock::now() - silent_from, seconds(5)) << "waited on the checkpoint";
  EXPECT_EQ(result.code(), StatusCode::kUnavailable) << result;
  EXPECT_THAT(result.message(), HasSubstr("server 0 ("));
  EXPECT_THAT(result.message(), Not(HasSubstr("worker 0")));
  rpc.Stop();
}

TEST_F(SchedulerTest, RegistrationTimesOutNamingTheMissingNodes) {
  StartScheduler(1, 2, nullptr, [](SchedulerOptions& o) { o.register_timeout = milliseconds(300); });
  auto server = NewClient(proto::Role::SERVER);
  StatusOr<ClusterInfo> info = server->Register();
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_THAT(info.status().message(), HasSubstr("1 of 1 servers and 0 of 2 workers registered"));
  EXPECT_THAT(info.status().message(), HasSubstr("missing worker 0, worker 1"));
  EXPECT_EQ(JobResult().code(), StatusCode::kDeadlineExceeded);
}

// A server as the real one is wired: the scheduler client's handlers on the node's own
// RpcServer, next to checkpoint handlers that write a file.
class CheckpointingServer {
 public:
  explicit CheckpointingServer(SchedulerTest* test, std::function<std::unique_ptr<SchedulerClient>(const std::string&)> make)
      : rpc_(TransportOptions{}, proto::Role::SERVER) {
    const int port = *rpc_.Bind("tcp://127.0.0.1:0");
    client_ = make("tcp://127.0.0.1:" + std::to_string(port));
    client_->InstallHandlers(rpc_);
    rpc_.Handle(Kind::CHECKPOINT_BEGIN, [this](IncomingMessage& m, Responder r) {
      auto begin = m.envelope().getBody().getCheckpointBegin();
      const std::string path = std::string(begin.getDir()) + "/server-0.ckpt";
      std::ofstream(path) << "model";
      auto reply = r.NewReply();
      auto ack = reply->body().initCheckpointAck();
      ack.setCheckpointId(begin.getCheckpointId());
      ack.setServerRank(0);
      auto file = ack.initFiles(1)[0];
      file.setPath(path);
      file.setBytes(5);
      r.Send(std::move(reply));
    });
    rpc_.Handle(Kind::CHECKPOINT_COMMIT, [](IncomingMessage&, Responder r) { r.SendAck(); });
    EXPECT_TRUE(rpc_.Start().ok());
    (void)test;
  }
  SchedulerClient& client() { return *client_; }

 private:
  RpcServer rpc_;
  std::unique_ptr<SchedulerClient> client_;
};

TEST_F(SchedulerTest, AWholeJobEndsWithSummaryFinalCheckpointAndShutdown) {
  TempDir checkpoints;
  const std::string oracle = run_dir_.path() + "/oracle.json";
  std::ofstream(oracle) << R"({"tasks": {"ctr": {"auc": 0.8125}, "cvr": {"auc": 0.875}}})";
  StartScheduler(1, 2, nullptr, [&](SchedulerOptions& o) {
    o.spec.checkpoint.dir = checkpoints.path();
    o.spec.data.oracle = oracle;
  });
  CheckpointingServer server(this, [&](const std::string& address) {
    return NewClient(proto::Role::SERVER, 0, address);
  });
  std::vector<std::unique_ptr<SchedulerClient>> workers;
  workers.push_back(NewClient(proto::Role::WORKER));
  workers.push_back(NewClient(proto::Role::WORKER));
  auto server_info = std::async(std::launch::async, [&] { return server.client().Register(); });
  for (auto& info : RegisterAll(workers)) ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_TRUE(server_info.get().ok());

  for (int w = 0; w < 2; ++w) {
    ProgressReport train{.phase = "train", .epoch = 1, .step = 50, .samples = 5000u * (w + 1),
                         .samples_per_sec = 1000, .train_seconds = 5.0 * (w + 1),
                         .tasks = {{.name = "ctr", .loss = 0.5}, {.name = "cvr", .loss = 0.1}}};
    ASSERT_TRUE(workers[w]->ReportProgress(train).ok());
  }
  EXPECT_THAT(metrics_.Render(), HasSubstr("mtps_job_samples 15000\n"));
  EXPECT_THAT(metrics_.Render(), HasSubstr("mtps_job_train_loss{task=\"ctr\"} 0.5\n"));
  EXPECT_EQ(result_.wait_for(milliseconds(100)), std::future_status::timeout);
  for (int w = 0; w < 2; ++w) {
    ProgressReport done{.phase = "done", .epoch = 2, .step = 100, .samples = 10000u * (w + 1),
                        .train_seconds = 8.0 * (w + 1),
                        .tasks = {{.name = "ctr", .auc = 0.70 + 0.1 * w, .logloss = 0.4},
                                  {.name = "cvr", .auc = 0.60, .logloss = 0.2 + 0.1 * w}}};
    ASSERT_TRUE(workers[w]->ReportProgress(done).ok());
  }
  Status result = JobResult();
  ASSERT_TRUE(result.ok()) << result;

  // summary.json
  boost::property_tree::ptree summary;
  boost::property_tree::read_json(SummaryPath(run_dir_.path() + "/run"), summary);
  EXPECT_EQ(summary.get<std::string>("model"), "mmoe");
  EXPECT_EQ(summary.get<std::string>("mode"), "async");
  EXPECT_EQ(summary.get<int>("servers"), 1);
  EXPECT_EQ(summary.get<int>("workers"), 2);
  EXPECT_EQ(summary.get<int>("epochs"), 2);
  EXPECT_EQ(summary.get<uint64_t>("samples"), 30000u);
  EXPECT_DOUBLE_EQ(summary.get<double>("train_seconds"), 16.0);
  EXPECT_DOUBLE_EQ(summary.get<double>("samples_per_sec"), 30000.0 / 16.0);
  EXPECT_NEAR(summary.get<double>("tasks.ctr.auc"), 0.75, 1e-12);
  EXPECT_NEAR(summary.get<double>("tasks.ctr.logloss"), 0.4, 1e-12);
  EXPECT_DOUBLE_EQ(summary.get<double>("tasks.ctr.oracle_auc"), 0.8125);
  EXPECT_NEAR(summary.get<double>("tasks.cvr.logloss"), 0.25, 1e-12);
  EXPECT_DOUBLE_EQ(summary.get<double>("tasks.cvr.oracle_auc"), 0.875);

  // The final checkpoint is whole.
  StatusOr<CheckpointManifest> manifest =
      ReadCheckpointManifest(ManifestPath(CheckpointDir(checkpoints.path(), 1)));
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->step, 100u);
  ASSERT_EQ(manifest->files.size(), 1u);

  // Everyone was told the job finished, not failed.
  for (SchedulerClient* c : {&server.client(), workers[0].get(), workers[1].get()}) {
    auto notice = c->WaitForShutdown(seconds(5));
    ASSERT_TRUE(notice.has_value());
    EXPECT_FALSE(notice->failed);
    EXPECT_EQ(notice->reason, "the job finished");
  }
  EXPECT_TRUE(scheduler_->health().ok());
  EXPECT_THAT(metrics_.Render(), HasSubstr("mtps_scheduler_checkpoints_total{result=\"ok\"} 1\n"));
}

TEST_F(SchedulerTest, AWorkerThatIsDoneMayLeaveWithoutFailingTheJob) {
  ManualClock clock;
  StartScheduler(1, 2, &clock);
  std::vector<std::unique_ptr<SchedulerClient>> clients;
  clients.push_back(NewClient(proto::Role::SERVER));
  clients.push_back(NewClient(proto::Role::WORKER));
  clients.push_back(NewClient(proto::Role::WORKER));
  std::vector<StatusOr<ClusterInfo>> infos = RegisterAll(clients);
  for (auto& info : infos) ASSERT_TRUE(info.ok()) << info.status();
  SchedulerClient* early = clients[1].get();
  SchedulerClient* late = clients[2].get();
  ASSERT_TRUE(early->ReportProgress({.phase = "done", .samples = 10, .train_seconds = 1}).ok());
  early->Stop();  // gone
  for (int i = 0; i < 4; ++i) {  // 12 s of scheduler time; the others keep beating
    clock.Advance(seconds(3));
    NextHeartbeats(clients, early);
  }
  EXPECT_EQ(result_.wait_for(milliseconds(0)), std::future_status::timeout)
      << "a finished worker's silence failed the job: " << result_.get();
  ASSERT_TRUE(late->ReportProgress({.phase = "done", .samples = 10, .train_seconds = 1}).ok());
  Status result = JobResult();
  EXPECT_TRUE(result.ok()) << result;
  auto notice = late->WaitForShutdown(seconds(5));
  ASSERT_TRUE(notice.has_value());
  EXPECT_FALSE(notice->failed);
}

TEST_F(SchedulerTest, BadProgressIsRefusedAndChangesNothing) {
  StartScheduler(1, 1);
  std::vector<std::unique_ptr<SchedulerClient>> clients;
  clients.push_back(NewClient(proto::Role::SERVER));
  clients.push_back(NewClient(proto::Role::WORKER));
  for (auto& info : RegisterAll(clients)) ASSERT_TRUE(info.ok()) << info.status();
  Status s = clients[1]->ReportProgress({.phase = "train", .tasks = {{.name = "ctrr"}}});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("unknown task 'ctrr'"));
  s = clients[0]->ReportProgress({.phase = "train"});
  EXPECT_THAT(s.message(), HasSubstr("only workers report progress"));
  EXPECT_EQ(scheduler_->progress().Current().reporting, 0);
  EXPECT_EQ(result_.wait_for(milliseconds(0)), std::future_status::timeout);
}

// The workers' epoch-end and evaluation reports become summary.json's per-epoch history,
// and a line per epoch and the run's last line on the progress view (a pipe: plain lines).
TEST_F(SchedulerTest, EpochReportsBecomeTheSummaryHistoryAndProgressLines) {
  int view[2];
  ASSERT_EQ(pipe(view), 0);
  StartScheduler(1, 2, nullptr, [&](SchedulerOptions& o) { o.progress_fd = view[1]; });
  std::vector<std::unique_ptr<SchedulerClient>> nodes;
  nodes.push_back(NewClient(proto::Role::SERVER));
  nodes.push_back(NewClient(proto::Role::WORKER));
  nodes.push_back(NewClient(proto::Role::WORKER));
  for (auto& info : RegisterAll(nodes)) ASSERT_TRUE(info.ok()) << info.status();
  std::vector<SchedulerClient*> workers;
  for (auto& node : nodes) {
    if (node->rank() >= 0 && node.get() != nodes[0].get()) workers.push_back(node.get());
  }
  ASSERT_EQ(workers.size(), 2u);
  std::sort(workers.begin(), workers.end(), [](auto* a, auto* b) { return a->rank() < b->rank(); });
  uint64_t samples[2] = {0, 0};
  for (uint32_t epoch = 0; epoch < 2; ++epoch) {
    for (int w = 0; w < 2; ++w) {
      samples[w] += 1000u * (w + 1);
      ProgressReport end{.phase = "train", .epoch = epoch, .step = 10 * (epoch + 1), .samples = samples[w],
                         .train_seconds = 2.0 * (epoch + 1),
                         .tasks = {{.name = "ctr", .loss = 0.5 - 0.1 * epoch + 0.1 * w},
                                   {.name = "cvr", .loss = 0.2}},
                         .epoch_end = true, .epoch_samples = 1000u * (w + 1), .epoch_seconds = 1.5 + w,
                         .epoch_records = 3000};
      ASSERT_TRUE(workers[w]->ReportProgress(end).ok());
    }
    ProgressReport eval{.phase = "eval", .epoch = epoch, .step = 10 * (epoch + 1), .samples = samples[0],
                        .tasks = {{.name = "ctr", .loss = 0.4, .auc = 0.7 + 0.01 * epoch, .logloss = 0.41},
                                  {.name = "cvr", .loss = 0.1, .auc = 0.8, .logloss = 0.09}}};
    ASSERT_TRUE(workers[0]->ReportProgress(eval).ok());
  }
  for (int w = 0; w < 2; ++w) {
    ASSERT_TRUE(workers[w]->ReportProgress({.phase = "done", .epoch = 1, .step = 20, .samples = samples[w],
                                            .train_seconds = 4}).ok());
  }
  Status result = JobResult();
  ASSERT_TRUE(result.ok()) << result;

  boost::property_tree::ptree summary;
  boost::property_tree::read_json(SummaryPath(run_dir_.path() + "/run"), summary);
  std::vector<boost::property_tree::ptree> history;
  for (const auto& [key, epoch] : summary.get_child("history")) history.push_back(epoch);
  ASSERT_EQ(history.size(), 2u) << "one entry per epoch";
  for (int e = 0; e < 2; ++e) {
    EXPECT_EQ(history[e].get<int>("epoch"), e);
    EXPECT_EQ(history[e].get<uint64_t>("samples"), 3000u);
    EXPECT_DOUBLE_EQ(history[e].get<double>("seconds"), 2.5);
    EXPECT_NEAR(history[e].get<double>("tasks.ctr.train_loss"), 0.55 - 0.1 * e, 1e-12);
    EXPECT_DOUBLE_EQ(history[e].get<double>("tasks.cvr.train_loss"), 0.2);
    EXPECT_DOUBLE_EQ(history[e].get<double>("tasks.ctr.auc"), 0.7 + 0.01 * e);
    EXPECT_DOUBLE_EQ(history[e].get<double>("tasks.cvr.logloss"), 0.09);
  }

  close(view[1]);
  fcntl(view[0], F_SETFL, O_NONBLOCK);
  std::string shown;
  char buf[4096];
  for (ssize_t n; (n = read(view[0], buf, sizeof(buf))) > 0;) shown.append(buf, static_cast<size_t>(n));
  close(view[0]);
  EXPECT_THAT(shown, HasSubstr("epoch 0: 3,000 samples in 2.5 s | ctr loss 0.5500 auc 0.7000 | cvr loss 0.2000 auc 0.8000\n"));
  EXPECT_THAT(shown, HasSubstr("epoch 1: 3,000 samples in 2.5 s | ctr loss 0.4500 auc 0.7100"));
  EXPECT_THAT(shown, HasSubstr("done: 2 epochs (best 1), 6,000 samples in 4.0 s, 1,500 samples/s | ctr auc 0.7100"));
  EXPECT_THAT(shown, Not(HasSubstr(" 0 samples/s")));
}

}  // namespace
}  // namespace mtps::scheduler
