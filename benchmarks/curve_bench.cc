// What CURVE costs: one parameter server and one ps::Client over tcp loopback, pull and
// push of 100k keys per request at dim 16 and 64, without and with CURVE side by side; and
// raw ZeroMQ (DEALER <-> ROUTER, the same bytes) without and with CURVE, which shows how
// much of the cost is libzmq's encryption itself.
//
//   build/bin/curve_bench --seconds 2 --repetitions 5
//
// keys/s is the median over repetitions (min..max in brackets); "CPU us/MB" is the
// process CPU (client, server and ZeroMQ threads together) per MB of payload.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gflags/gflags.h>
#include <glog/logging.h>
#include <zmq.hpp>

#include "protocol/curve_keys.h"
#include "protocol/job_spec.h"
#include "protocol/transport.h"
#include "protocol/zap_handler.h"
#include "ps/client.h"
#include "ps/heap_tuning.h"
#include "ps/initializer.h"
#include "ps/server.h"

DEFINE_double(seconds, 2, "seconds per repetition");
DEFINE_int32(repetitions, 5, "repetitions per point (the median is reported)");
DEFINE_int32(keys, 100000, "keys per request");
DEFINE_int64(part_bytes, 0,
             "mtps: split pulls and pushes into requests of about this many bytes "
             "(ClientOptions max_request_bytes and push_part_bytes; 0: the defaults)");

namespace mtps {
namespace {

using Clock = std::chrono::steady_clock;

double ProcessCpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

std::string JobYaml(int dim) {
  return "name: bench\n"
         "data: {format: mtb, train: [unused.mtb]}\n"
         "features:\n  sparse:\n    - {name: f, table: t}\n"
         "tables:\n  - name: t\n    dim: " + std::to_string(dim) + "\n"
         "    optimizer: {type: sgd, lr: 0.001}\n"
         "model: {type: mmoe}\n"
         "tasks:\n  - {name: ctr, label: click, loss: bce}\n";
}

// A scheduler, a server and a worker key in one allow-list; each node's view of it.
struct BenchKeys {
  std::shared_ptr<const JobKeys> server, worker;
  BenchKeys() {
    CurveKeyPair listener = *GenerateCurveKeyPair();
    std::map<std::string, CurveKeyPair> pairs;
    std::vector<KeyHolder> holders;
    for (auto [name, role] : {std::pair{"scheduler", proto::Role::SCHEDULER},
                              {"server-0", proto::Role::SERVER}, {"worker-0", proto::Role::WORKER}}) {
      pairs[name] = *GenerateCurveKeyPair();
      holders.push_back({name, role, pairs[name].public_key});
    }
    server = *JobKeys::Make(holders, listener, "server-0", pairs["server-0"]);
    worker = *JobKeys::Make(holders, listener, "worker-0", pairs["worker-0"]);
  }
};

struct Result {
  std::vector<double> keys_per_s;
  std::vector<double> cpu_us_per_mb;
};

// Runs `op` for --seconds, --repetitions times.
template <typename Op>
Result Measure(size_t keys_per_op, size_t bytes_per_op, Op op) {
  Result r;
  op();  // warm
  for (int rep = 0; rep < FLAGS_repetitions; ++rep) {
    const auto start = Clock::now();
    const double cpu0 = ProcessCpuSeconds();
    int64_t n = 0;
    while (Clock::now() - start < std::chrono::duration<double>(FLAGS_seconds)) {
      op();
      ++n;
    }
    const double wall = std::chrono::duration<double>(Clock::now() - start).count();
    const double cpu = ProcessCpuSeconds() - cpu0;
    r.keys_per_s.push_back(static_cast<double>(n * keys_per_op) / wall);
    r.cpu_us_per_mb.push_back(cpu * 1e6 / (static_cast<double>(n * bytes_per_op) / 1e6));
  }
  return r;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// One server and one client, with or without CURVE.
void RunPs(int dim, bool secure, const BenchKeys& keys, Result* pull, Result* push) {
  StatusOr<JobSpec> job = ParseJobSpec(JobYaml(dim));
  CHECK(job.ok()) << job.status();
  auto server = ps::Server::Create(*job, {.rank = 0, .num_servers = 1, .shards = 4}, nullptr);
  CHECK(server.ok()) << server.status();
  TransportOptions server_transport;
  server_transport.handler_threads = 2;
  server_transport.keys = secure ? keys.server : nullptr;
  RpcServer rpc(server_transport);
  (*server)->RegisterHandlers(rpc);
  StatusOr<int> port = rpc.Bind("tcp://127.0.0.1:0");
  CHECK(port.ok()) << port.status();
  CHECK(rpc.Start().ok());
  ps::ClientOptions client_options;
  client_options.transport.keys = secure ? keys.worker : nullptr;
  if (FLAGS_part_bytes > 0) {
    client_options.max_request_bytes = static_cast<size_t>(FLAGS_part_bytes);
    client_options.push_part_bytes = static_cast<size_t>(FLAGS_part_bytes);
  }
  auto client = ps::Client::Connect({"tcp://127.0.0.1:" + std::to_string(*port)}, client_options);
  CHECK(client.ok()) << client.status();
  const size_t n = static_cast<size_t>(FLAGS_keys);
  std::vector<uint64_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = Mix64(i);
  std::vector<float> rows(n * dim), grads(n * dim, 1e-3f);
  const size_t bytes = n * 8 + n * dim * 4;
  *pull = Measure(n, bytes, [&] {
    Status s = (*client)->Pull(0, ids, dim, rows.data());
    CHECK(s.ok()) << s;
  });
  *push = Measure(n, bytes, [&] {
    StatusOr<ps::PushResult> s = (*client)->Push(0, ids, dim, grads.data());
    CHECK(s.ok()) << s.status();
  });
  client->reset();
  rpc.Stop();
}

// Raw ZeroMQ moving a pull's bytes (n keys out, n rows back), with or without CURVE, each
// message as one frame or as frames of at most `chunk` bytes (CURVE encrypts per frame).
Result RunRaw(int dim, bool secure, const BenchKeys& keys, size_t chunk = 0) {
  zmq::context_t context(1);
  zmq::socket_t router(context, zmq::socket_type::router);
  std::unique_ptr<ZapHandler> zap;
  if (secure) {
    ConfigureCurveServer(router, *keys.server);
    zap = std::move(ZapHandler::Start(context, keys.server, router).value());
  }
  router.bind("tcp://127.0.0.1:0");
  const std::string endpoint = router.get(zmq::sockopt::last_endpoint);
  const size_t n = static_cast<size_t>(FLAGS_keys);
  std::vector<char> reply(n * dim * 4, 3), request(n * 8, 1);
  std::thread serve([&] {
    for (;;) {
      zmq::message_t id, body;
      (void)router.recv(id);
      (void)router.recv(body);
      if (body.size() == 4) break;  // "stop"
      while (body.more()) (void)router.recv(body);
      router.send(id, zmq::send_flags::sndmore);
      const size_t step = chunk == 0 ? reply.size() : chunk;
      for (size_t at = 0; at < reply.size(); at += step) {
        const size_t len = std::min(step, reply.size() - at);
        router.send(zmq::message_t(reply.data() + at, len, nullptr, nullptr),
                    at + len < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
      }
    }
  });
  zmq::socket_t dealer(context, zmq::socket_type::dealer);
  if (secure) ConfigureCurveClient(dealer, *keys.worker);
  dealer.connect(endpoint);
  Result r = Measure(n, request.size() + reply.size(), [&] {
    const size_t step = chunk == 0 ? request.size() : chunk;
    for (size_t at = 0; at < request.size(); at += step) {
      const size_t len = std::min(step, request.size() - at);
      dealer.send(zmq::message_t(request.data() + at, len, nullptr, nullptr),
                  at + len < request.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
    zmq::message_t in;
    do {
      (void)dealer.recv(in);
    } while (in.more());
  });
  dealer.send(zmq::buffer("stop", 4), zmq::send_flags::none);
  serve.join();
  dealer.close();
  router.close();
  if (zap) zap->Stop();
  return r;
}

void Print(const char* what, int dim, const Result& plain, const Result& curve) {
  auto range = [](const std::vector<double>& v) {
    auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    char buf[64];
    std::snprintf(buf, sizeof(buf), "(%.2f..%.2f)", *lo / 1e6, *hi / 1e6);
    return std::string(buf);
  };
  std::printf("%-10s dim %-3d  plain %6.2fM keys/s %-14s CURVE %6.2fM keys/s %-14s  CURVE/plain %5.1f%%"
              "   CPU us/MB plain %6.0f CURVE %6.0f\n",
              what, dim, Median(plain.keys_per_s) / 1e6, range(plain.keys_per_s).c_str(),
              Median(curve.keys_per_s) / 1e6, range(curve.keys_per_s).c_str(),
              100.0 * Median(curve.keys_per_s) / Median(plain.keys_per_s),
              Median(plain.cpu_us_per_mb), Median(curve.cpu_us_per_mb));
}

}  // namespace
}  // namespace mtps

int main(int argc, char** argv) {
  mtps::KeepLargeBuffersInTheHeap();
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  CHECK(mtps::CurveSupported()) << "libzmq without CURVE";
  mtps::BenchKeys keys;
  std::printf("%d keys per request, %d x %.1f s per point; tcp loopback, one process\n",
              FLAGS_keys, FLAGS_repetitions, FLAGS_seconds);
  for (int dim : {16, 64}) {
    mtps::Result pull[2], push[2];
    for (int secure = 0; secure < 2; ++secure) mtps::RunPs(dim, secure, keys, &pull[secure], &push[secure]);
    mtps::Result raw[2] = {mtps::RunRaw(dim, false, keys), mtps::RunRaw(dim, true, keys)};
    mtps::Print("pull", dim, pull[0], pull[1]);
    mtps::Print("push", dim, push[0], push[1]);
    mtps::Print("raw zmq", dim, raw[0], raw[1]);
    mtps::Result chunked[2] = {mtps::RunRaw(dim, false, keys, 256 << 10),
                               mtps::RunRaw(dim, true, keys, 256 << 10)};
    mtps::Print("raw 256K", dim, chunked[0], chunked[1]);
  }
  return 0;
}
