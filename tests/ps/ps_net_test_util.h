// Helpers for the networked parameter-server tests: a small job spec, a cluster of
// in-process servers on free loopback ports, raw requests, and expected initial rows.
#pragma once

#include <chrono>
#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "protocol/job_spec.h"
#include "protocol/metrics.h"
#include "protocol/transport.h"
#include "ps/initializer.h"
#include "ps/jump_hash.h"
#include "ps/server.h"

namespace mtps::ps::testing {

// Table 0 "user": dim 8, SGD lr 0.5 (so a push moves a row by exactly -0.5 * gradient);
// table 1 "item": dim 4, Adagrad. Dense blocks: SGD lr 0.25.
inline const char kTestJob[] = R"(
name: ps-net-test
data: {format: mtb, train: [unused.mtb]}
features:
  sparse:
    - {name: user_id, table: user}
    - {name: item_id, table: item}
tables:
  - name: user
    dim: 8
    optimizer: {type: sgd, lr: 0.5}
  - name: item
    dim: 4
    optimizer: {type: adagrad, lr: 0.1}
model: {type: mmoe}
tasks:
  - {name: ctr, label: click, loss: bce}
training:
  dense_optimizer: {type: sgd, lr: 0.25}
)";
constexpr uint32_t kUserTable = 0;
constexpr int kUserDim = 8;
constexpr float kUserLr = 0.5f;
constexpr uint32_t kItemTable = 1;
constexpr int kItemDim = 4;
constexpr float kDenseLr = 0.25f;

inline JobSpec TestJob(const std::string& yaml = kTestJob) {
  StatusOr<JobSpec> job = ParseJobSpec(yaml, "test job");
  EXPECT_TRUE(job.ok()) << job.status();
  return job.ok() ? *job : JobSpec{};
}

// The value a key's row has before any push: a pure function of (table seed, key).
inline std::vector<float> InitialRow(const TableSpec& spec, uint64_t key) {
  std::vector<float> row(spec.dim);
  RowInitializer(spec.initializer, spec.seed).Fill(key, row.data(), spec.dim);
  return row;
}

// `count` distinct keys of which every server owns some (spread by jump hash).
inline std::vector<uint64_t> SomeKeys(size_t count, uint64_t salt = 1) {
  std::vector<uint64_t> keys(count);
  for (size_t i = 0; i < count; ++i) keys[i] = Mix64(salt * 1000003 + i);
  return keys;
}

// One in-process server: its tables and handlers on an RpcServer bound to a free port.
struct InProcessServer {
  MetricsRegistry metrics;
  std::unique_ptr<Server> server;
  std::unique_ptr<RpcServer> rpc;
  std::string endpoint;
};

// `num_servers` servers of `job`, ranks 0.., each on its own free loopback port.
class InProcessCluster {
 public:
  // `options` gives everything but rank and num_servers.
  explicit InProcessCluster(const JobSpec& job, int num_servers, int shards = 2,
                            ServerOptions options = {}) {
    for (int rank = 0; rank < num_servers; ++rank) {
      auto s = std::make_unique<InProcessServer>();
      options.rank = rank;
      options.num_servers = num_servers;
      options.shards = shards;
      auto server = Server::Create(job, options, &s->metrics);
      EXPECT_TRUE(server.ok()) << server.status();
      if (!server.ok()) return;
      s->server = std::move(server).value();
      s->rpc = std::make_unique<RpcServer>(TransportOptions{}, proto::Role::SERVER, rank);
      s->server->RegisterHandlers(*s->rpc);
      StatusOr<int> port = s->rpc->Bind("tcp://127.0.0.1:0");
      EXPECT_TRUE(port.ok()) << port.status();
      EXPECT_TRUE(s->rpc->Start().ok());
      s->endpoint = "tcp://127.0.0.1:" + std::to_string(port.ok() ? *port : 0);
      servers_.push_back(std::move(s));
    }
  }
  ~InProcessCluster() {
    // Stop the sockets before the tables the handlers use go away.
    for (auto& s : servers_) s->rpc->Stop();
  }

  std::vector<std::string> endpoints() const {
    std::vector<std::string> out;
    for (const auto& s : servers_) out.push_back(s->endpoint);
    return out;
  }
  InProcessServer& at(int rank) { return *servers_[rank]; }
  int size() const { return static_cast<int>(servers_.size()); }

 private:
  std::vector<std::unique_ptr<InProcessServer>> servers_;
};

// Sends a request built by `fill` over a raw RpcClient and waits (bounded) for the reply.
template <typename Fill>
StatusOr<IncomingMessage> CallRaw(RpcClient& client, Fill fill) {
  auto request = client.NewRequest();
  fill(request->body());
  auto future = client.Call(std::move(request), CallOptions{std::chrono::milliseconds(5000), 1});
  if (future.wait_for(std::chrono::seconds(10)) != std::future_status::ready)
    return DeadlineExceeded("test: no reply within 10 s");
  StatusOr<IncomingMessage> reply = future.get();
  if (!reply.ok()) return reply.status();
  if (Status s = ReplyStatus(*reply); !s.ok()) return s;
  return reply;
}

template <typename T>
capnp::Data::Reader AsData(const std::vector<T>& values) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(values.data()),
                             values.size() * sizeof(T));
}

}  // namespace mtps::ps::testing
