// The parameter-server wire path across processes, beside raw ZeroMQ moving the same
// bytes: one program, four roles, driven by benchmarks/ps_wire_bench.sh.
//
//   ps_wire_bench --role=mtps --config=job.yaml --servers=tcp://127.0.0.1:7100,... --dim=16 --op=push
//   ps_wire_bench --role=sink --port_file=F       # a raw ZeroMQ ROUTER (the floor)
//   ps_wire_bench --role=raw --servers=tcp://127.0.0.1:7200,... --dim=16 --op=push
//
// `mtps` is a worker's ps::Client against real mtps-server processes (the server applies
// the table's optimizer on every push). `raw` sends each sink exactly the bytes the mtps
// client sends that server (keys; keys + gradient rows) and gets back exactly the bytes
// it would get (rows; a small ack), one DEALER per sink, all sinks at once, as ps::Client
// does. A run prints one line: role op dim servers keys/s MB/s (payload bytes, both ways),
// then the operations timed and the CPU seconds the client process used for them.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>

#include <gflags/gflags.h>
#include <glog/logging.h>
#include <zmq.hpp>

#include "protocol/job_spec.h"
#include "ps/client.h"
#include "ps/heap_tuning.h"
#include "ps/initializer.h"
#include "ps/jump_hash.h"

DEFINE_string(role, "mtps", "mtps | raw | sink");
DEFINE_string(servers, "", "comma-separated endpoints (mtps servers, or raw sinks)");
DEFINE_string(op, "push", "pull | push");
DEFINE_int32(dim, 16, "row width (must match the servers' table)");
DEFINE_int32(keys, 100000, "keys per operation");
DEFINE_double(seconds, 3, "measure for about this long");
DEFINE_string(port_file, "", "sink: write the bound port here");
DEFINE_string(config, "", "mtps: the servers' job spec (its hash is the job id requests carry)");
DEFINE_int64(push_part_bytes, -1, "mtps: ClientOptions::push_part_bytes (-1: the default)");
DEFINE_int64(pull_part_bytes, -1, "mtps: ClientOptions::pull_part_bytes (-1: the default)");

namespace mtps {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> Split(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

std::vector<uint64_t> Keys(size_t n) {
  std::vector<uint64_t> keys(n);
  for (size_t i = 0; i < n; ++i) keys[i] = Mix64(i + 1);
  return keys;
}

size_t PayloadBytes(size_t keys, int dim) { return keys * (sizeof(uint64_t) + dim * sizeof(float)); }

// CPU seconds this process (every thread, ZeroMQ's included) has used so far.
double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec * 1e-6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

struct Measured {
  size_t ops = 0;
  double seconds = 0;
  double cpu_seconds = 0;  // this process's, over the timed operations
};

// One line: role op dim servers keys/s MB/s ops client-CPU-seconds.
void Report(const char* role, size_t servers, const Measured& m) {
  const double keys_per_s = static_cast<double>(m.ops) * FLAGS_keys / m.seconds;
  std::printf("%s %s %d %zu %.0f %.1f %zu %.4f\n", role, FLAGS_op.c_str(), FLAGS_dim, servers,
              keys_per_s, keys_per_s * (sizeof(uint64_t) + FLAGS_dim * sizeof(float)) / 1e6, m.ops,
              m.cpu_seconds);
}

// Runs `op` until FLAGS_seconds have passed (after one untimed warm-up).
template <typename Op>
Measured Measure(Op op) {
  op();
  Measured m;
  const auto start = Clock::now();
  const double cpu_start = ProcessCpuSeconds();
  do {
    op();
    ++m.ops;
    m.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  } while (m.seconds < FLAGS_seconds);
  m.cpu_seconds = ProcessCpuSeconds() - cpu_start;
  return m;
}

int RunMtps() {
  const std::vector<std::string> servers = Split(FLAGS_servers);
  StatusOr<JobSpec> job = LoadJobSpec(FLAGS_config);
  CHECK(job.ok()) << job.status();
  ps::ClientOptions options;
  options.transport.job_id = job->hash;
  if (FLAGS_push_part_bytes >= 0) options.push_part_bytes = static_cast<size_t>(FLAGS_push_part_bytes);
  if (FLAGS_pull_part_bytes >= 0) options.pull_part_bytes = static_cast<size_t>(FLAGS_pull_part_bytes);
  auto client = ps::Client::Connect(servers, options);
  CHECK(client.ok()) << client.status();
  const std::vector<uint64_t> keys = Keys(FLAGS_keys);
  std::vector<float> rows(keys.size() * FLAGS_dim);
  const std::vector<float> grads(keys.size() * FLAGS_dim, 1e-3f);
  // Rows exist before timing: this measures serving, not admission.
  Status warm = (*client)->Pull(0, keys, FLAGS_dim, rows.data(), {.keys_unique = true});
  CHECK(warm.ok()) << warm;
  const bool pull = FLAGS_op == "pull";
  const Measured measured = Measure([&] {
    if (pull) {
      Status s = (*client)->Pull(0, keys, FLAGS_dim, rows.data(), {.keys_unique = true});
      CHECK(s.ok()) << s;
    } else {
      auto r = (*client)->Push(0, keys, FLAGS_dim, grads.data(), {.keys_unique = true});
      CHECK(r.ok()) << r.status();
    }
  });
  Report("mtps", servers.size(), measured);
  return 0;
}

// The sink answers each request with as many bytes as its first 8 bytes ask for, until
// it is killed.
int RunSink() {
  zmq::context_t context(1);
  zmq::socket_t router(context, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind("tcp://127.0.0.1:0");
  const std::string endpoint = router.get(zmq::sockopt::last_endpoint);
  std::vector<char> reply(size_t{64} << 20, 3);
  {
    std::ofstream out(FLAGS_port_file);
    out << endpoint.substr(endpoint.rfind(':') + 1) << "\n";
  }
  for (;;) {
    zmq::message_t identity, body;
    if (!router.recv(identity)) continue;
    (void)router.recv(body);
    uint64_t reply_bytes = 0;
    std::memcpy(&reply_bytes, body.data(), sizeof(reply_bytes));
    router.send(identity, zmq::send_flags::sndmore);
    router.send(zmq::message_t(reply.data(), std::min<size_t>(reply_bytes, reply.size()), nullptr,
                               nullptr),
                zmq::send_flags::none);
  }
}

int RunRaw() {
  const std::vector<std::string> sinks = Split(FLAGS_servers);
  zmq::context_t context(1);
  std::vector<zmq::socket_t> dealers;
  for (const std::string& endpoint : sinks) {
    dealers.emplace_back(context, zmq::socket_type::dealer);
    dealers.back().set(zmq::sockopt::linger, 0);
    dealers.back().connect(endpoint);
  }
  // The keys each sink would own, as the mtps client splits them.
  std::vector<size_t> share(sinks.size(), 0);
  for (uint64_t key : Keys(FLAGS_keys)) ++share[ps::JumpConsistentHash(key, sinks.size())];
  const bool pull = FLAGS_op == "pull";
  std::vector<std::vector<char>> requests(sinks.size());
  for (size_t s = 0; s < sinks.size(); ++s) {
    const size_t request_bytes =
        pull ? share[s] * sizeof(uint64_t) : PayloadBytes(share[s], FLAGS_dim);
    const uint64_t reply_bytes = pull ? share[s] * FLAGS_dim * sizeof(float) : 64;
    requests[s].assign(std::max(request_bytes, sizeof(uint64_t)), 1);
    std::memcpy(requests[s].data(), &reply_bytes, sizeof(reply_bytes));
  }
  const Measured measured = Measure([&] {
    for (size_t s = 0; s < sinks.size(); ++s)
      dealers[s].send(zmq::message_t(requests[s].data(), requests[s].size(), nullptr, nullptr),
                      zmq::send_flags::none);
    for (auto& dealer : dealers) {
      zmq::message_t in;
      (void)dealer.recv(in);
    }
  });
  Report("raw", sinks.size(), measured);
  return 0;
}

}  // namespace
}  // namespace mtps

int main(int argc, char** argv) {
  mtps::KeepLargeBuffersInTheHeap();
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  if (FLAGS_role == "sink") return mtps::RunSink();
  if (FLAGS_role == "raw") return mtps::RunRaw();
  if (FLAGS_role == "mtps") return mtps::RunMtps();
  std::fprintf(stderr, "unknown --role=%s (mtps | raw | sink)\n", FLAGS_role.c_str());
  return 2;
}
