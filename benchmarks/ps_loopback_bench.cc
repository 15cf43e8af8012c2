// Benchmark (b) of issue 3: one parameter server and one ps::Client over tcp loopback,
// pull and push of 100k keys per request at dim 16 and 64, beside raw ZeroMQ moving the
// same bytes in the same message pattern, measured in the same program.
//
//   build/bin/ps_loopback_bench --benchmark_min_time=2s --benchmark_repetitions=5
//
// Bytes counted per operation are the payload a parameter server cannot avoid: a pull
// sends n keys (8 B each) and receives n rows (dim x 4 B); a push sends n keys and n
// gradient rows and receives a small reply. The raw ZeroMQ twin sends and receives
// exactly those byte counts between a DEALER and a ROUTER on loopback, with buffers
// prepared once and handed to ZeroMQ without copies: the floor for our transport.
// After the runs the program prints ps / raw ZeroMQ per (operation, dim).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <ctime>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>
#include <zmq_addon.hpp>
#include <glog/logging.h>

#include "protocol/job_spec.h"
#include "protocol/transport.h"
#include "ps/client.h"
#include "ps/heap_tuning.h"
#include "ps/initializer.h"
#include "ps/server.h"

namespace mtps {
namespace {

constexpr size_t kKeys = 100000;
constexpr int kShards = 4;

enum class Op { kPull = 0, kPush = 1, kPullPush = 2 };
const char* OpName(Op op) {
  switch (op) {
    case Op::kPull: return "pull";
    case Op::kPush: return "push";
    case Op::kPullPush: return "pull+push";
  }
  return "?";
}

// Payload bytes one operation moves (both directions).
size_t PayloadBytes(Op op, int dim) {
  const size_t keys = kKeys * sizeof(uint64_t);
  const size_t rows = kKeys * dim * sizeof(float);
  switch (op) {
    case Op::kPull: return keys + rows;
    case Op::kPush: return keys + rows;
    case Op::kPullPush: return 2 * (keys + rows);
  }
  return 0;
}

// MB/s of every run (repetition) per (raw?, op, dim); compared after all runs.
std::mutex results_mutex;
struct Runs {
  int64_t iterations = 0;
  std::vector<double> mb_per_s;      // per wall second
  std::vector<double> mb_per_cpu_s;  // per second of process CPU
};
std::map<std::tuple<bool, int, int>, Runs> results;

using Clock = std::chrono::steady_clock;

// Seconds of CPU used by the whole process (client, server and ZeroMQ threads alike).
double ProcessCpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Wall and process-CPU time of one benchmark run.
struct Timer {
  Clock::time_point wall = Clock::now();
  double cpu = ProcessCpuSeconds();
};

void Record(benchmark::State& state, bool raw, Op op, int dim, const Timer& timer) {
  const double wall_s = std::chrono::duration<double>(Clock::now() - timer.wall).count();
  const double cpu_s = ProcessCpuSeconds() - timer.cpu;
  const size_t bytes = PayloadBytes(op, dim);
  {
    // Only the runs at the final iteration count count: the shorter ones before them are
    // Google Benchmark sizing the run.
    std::lock_guard<std::mutex> lock(results_mutex);
    Runs& runs = results[{raw, static_cast<int>(op), dim}];
    const int64_t iterations = static_cast<int64_t>(state.iterations());
    if (iterations > runs.iterations) {
      runs.iterations = iterations;
      runs.mb_per_s.clear();
      runs.mb_per_cpu_s.clear();
    }
    if (iterations == runs.iterations) {
      runs.mb_per_s.push_back(static_cast<double>(iterations * bytes) / 1e6 / wall_s);
      runs.mb_per_cpu_s.push_back(static_cast<double>(iterations * bytes) / 1e6 / cpu_s);
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["keys/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * kKeys * (op == Op::kPullPush ? 2 : 1)),
      benchmark::Counter::kIsRate);
  state.counters["MB/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * bytes) / 1e6, benchmark::Counter::kIsRate);
}

// ---- mtps: one server, one client ----

std::string JobYaml(int dim) {
  return "name: bench\n"
         "data: {format: mtb, train: [unused.mtb]}\n"
         "features:\n  sparse:\n    - {name: f, table: t}\n"
         "tables:\n  - name: t\n    dim: " + std::to_string(dim) + "\n"
         "    optimizer: {type: sgd, lr: 0.001}\n"
         "model: {type: mmoe}\n"
         "tasks:\n  - {name: ctr, label: click, loss: bce}\n";
}

struct PsSetup {
  std::unique_ptr<ps::Server> server;
  std::unique_ptr<RpcServer> rpc;
  std::unique_ptr<ps::Client> client;
  std::vector<uint64_t> keys;
  std::vector<float> rows, grads;

  explicit PsSetup(int dim) {
    StatusOr<JobSpec> job = ParseJobSpec(JobYaml(dim));
    CHECK(job.ok()) << job.status();
    auto created = ps::Server::Create(*job, {.rank = 0, .num_servers = 1, .shards = kShards},
                                      nullptr);
    CHECK(created.ok()) << created.status();
    server = std::move(created).value();
    rpc = std::make_unique<RpcServer>(TransportOptions{.handler_threads = 2});
    server->RegisterHandlers(*rpc);
    StatusOr<int> port = rpc->Bind("tcp://127.0.0.1:0");
    CHECK(port.ok()) << port.status();
    CHECK(rpc->Start().ok());
    auto connected = ps::Client::Connect({"tcp://127.0.0.1:" + std::to_string(*port)});
    CHECK(connected.ok()) << connected.status();
    client = std::move(connected).value();
    keys.resize(kKeys);
    for (size_t i = 0; i < kKeys; ++i) keys[i] = Mix64(i);
    rows.resize(kKeys * dim);
    grads.assign(kKeys * dim, 1e-3f);
    // The rows exist before timing starts: the benchmark measures serving, not admission.
    Status warm = client->Pull(0, keys, dim, rows.data());
    CHECK(warm.ok()) << warm;
  }
  ~PsSetup() {
    client.reset();
    rpc->Stop();
  }
};

// One server and client per dim for the whole program: Google Benchmark calls a
// benchmark several times while it sizes the iteration count, and the set-up (100k new
// rows) must not be measured or repeated.
std::map<int, std::unique_ptr<PsSetup>> setups;  // cleared at the end of main()

PsSetup& SetupFor(int dim) {
  auto& setup = setups[dim];
  if (!setup) setup = std::make_unique<PsSetup>(dim);
  return *setup;
}

void BM_Ps(benchmark::State& state, Op op) {
  const int dim = static_cast<int>(state.range(0));
  PsSetup& ps = SetupFor(dim);
  const Timer timer;
  for (auto _ : state) {
    if (op != Op::kPush) {
      Status s = ps.client->Pull(0, ps.keys, dim, ps.rows.data(), {.keys_unique = true});
      if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    }
    if (op != Op::kPull) {
      StatusOr<ps::PushResult> r =
          ps.client->Push(0, ps.keys, dim, ps.grads.data(), {.keys_unique = true});
      if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
    }
  }
  Record(state, /*raw=*/false, op, dim, timer);
}

// ---- raw ZeroMQ: the same byte counts, DEALER <-> ROUTER, zero-copy buffers ----

class RawZmqPeer {
 public:
  // The ROUTER answers each request with a reply of `reply_bytes`.
  RawZmqPeer() : router_(context_, zmq::socket_type::router), dealer_(context_, zmq::socket_type::dealer) {
    router_.set(zmq::sockopt::linger, 0);
    dealer_.set(zmq::sockopt::linger, 0);
    router_.bind("tcp://127.0.0.1:0");
    dealer_.connect(router_.get(zmq::sockopt::last_endpoint));
    server_ = std::thread([this] { Serve(); });
  }
  ~RawZmqPeer() {
    dealer_.send(zmq::buffer("stop", 4), zmq::send_flags::none);
    server_.join();
  }

  // One round trip: `request` bytes out, `reply` bytes back (sizes set per call).
  void RoundTrip(const std::vector<char>& request, size_t reply_bytes) {
    reply_bytes_.store(reply_bytes, std::memory_order_relaxed);
    zmq::message_t out(const_cast<char*>(request.data()), request.size(), nullptr, nullptr);
    dealer_.send(out, zmq::send_flags::none);
    zmq::message_t in;
    (void)dealer_.recv(in, zmq::recv_flags::none);
    benchmark::DoNotOptimize(in.data());
  }

 private:
  void Serve() {
    for (;;) {
      std::vector<zmq::message_t> frames;
      if (!zmq::recv_multipart(router_, std::back_inserter(frames))) continue;
      if (frames.size() == 2 && frames[1].size() == 4 &&
          std::memcmp(frames[1].data(), "stop", 4) == 0)
        return;
      const size_t n = reply_bytes_.load(std::memory_order_relaxed);
      router_.send(frames[0], zmq::send_flags::sndmore);
      zmq::message_t body(reply_.data(), n, nullptr, nullptr);
      router_.send(body, zmq::send_flags::none);
    }
  }

  zmq::context_t context_{1};
  zmq::socket_t router_, dealer_;
  std::atomic<size_t> reply_bytes_{0};
  std::vector<char> reply_ = std::vector<char>(kKeys * 64 * sizeof(float), 3);  // largest reply
  std::thread server_;
};

void BM_RawZmq(benchmark::State& state, Op op) {
  const int dim = static_cast<int>(state.range(0));
  const size_t keys = kKeys * sizeof(uint64_t);
  const size_t rows = kKeys * dim * sizeof(float);
  RawZmqPeer peer;
  const std::vector<char> pull_request(keys, 1), push_request(keys + rows, 2);
  constexpr size_t kSmallReply = 64;
  const Timer timer;
  for (auto _ : state) {
    if (op != Op::kPush) peer.RoundTrip(pull_request, rows);
    if (op != Op::kPull) peer.RoundTrip(push_request, kSmallReply);
  }
  Record(state, /*raw=*/true, op, dim, timer);
}

#define MTPS_LOOPBACK_BENCH(fn, op)                                          \
  BENCHMARK_CAPTURE(fn, op, op)->ArgName("dim")->Arg(16)->Arg(64)           \
      ->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime()

MTPS_LOOPBACK_BENCH(BM_RawZmq, Op::kPull);
MTPS_LOOPBACK_BENCH(BM_Ps, Op::kPull);
MTPS_LOOPBACK_BENCH(BM_RawZmq, Op::kPush);
MTPS_LOOPBACK_BENCH(BM_Ps, Op::kPush);
MTPS_LOOPBACK_BENCH(BM_RawZmq, Op::kPullPush);
MTPS_LOOPBACK_BENCH(BM_Ps, Op::kPullPush);

}  // namespace

// Median MB/s of mtps against raw ZeroMQ per (operation, dim), with the runs' spread.
void PrintRatios() {
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::printf("\nmtps vs raw ZeroMQ, same bytes, tcp loopback (median of runs; min..max)\n");
  for (const auto& [key, ps] : results) {
    const auto [raw, op, dim] = key;
    if (raw) continue;
    auto it = results.find({true, op, dim});
    if (it == results.end() || ps.mb_per_s.empty() || it->second.mb_per_s.empty()) continue;
    const std::vector<double>& ps_runs = ps.mb_per_s;
    const std::vector<double>& raw_runs = it->second.mb_per_s;
    const auto [ps_min, ps_max] = std::minmax_element(ps_runs.begin(), ps_runs.end());
    const auto [raw_min, raw_max] = std::minmax_element(raw_runs.begin(), raw_runs.end());
    const double ps_mb = median(ps_runs), raw_mb = median(raw_runs);
    const double ps_cpu = median(ps.mb_per_cpu_s), raw_cpu = median(it->second.mb_per_cpu_s);
    std::printf("%-9s dim %-3d  mtps %7.0f MB/s (%.0f..%.0f)  raw %7.0f MB/s (%.0f..%.0f)  "
                "ratio %5.1f%%  keys/s %.2fM  | per CPU second: mtps %.0f raw %.0f MB, "
                "ratio %5.1f%%\n",
                OpName(static_cast<Op>(op)), dim, ps_mb, *ps_min, *ps_max, raw_mb, *raw_min,
                *raw_max, 100.0 * ps_mb / raw_mb,
                ps_mb * 1e6 / PayloadBytes(static_cast<Op>(op), dim) * kKeys *
                    (op == static_cast<int>(Op::kPullPush) ? 2 : 1) / 1e6,
                ps_cpu, raw_cpu, 100.0 * ps_cpu / raw_cpu);
  }
}

}  // namespace mtps

int main(int argc, char** argv) {
  mtps::KeepLargeBuffersInTheHeap();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  mtps::setups.clear();
  mtps::PrintRatios();
  return 0;
}
