// mtps-server: one parameter server process — the RPC endpoint for sparse tables and
// dense blocks, /healthz and /metrics over HTTP, clean exit on SIGTERM or SIGINT.
//
//   mtps-server --standalone --config=job.yaml --port=7000 --http_port=7100
//               --rank=0 --num_servers=2 --threads=4 --checkpoint_dir=/ckpt --restore
//
// With --port=0 / --http_port=0 it binds free ports; --port_file then receives
// "<rpc port> <http port>" once the server is serving (written atomically), which is how
// tests and launch scripts find it.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "protocol/http_server.h"
#include "protocol/job_spec.h"
#include "protocol/metrics.h"
#include "protocol/transport.h"
#include "ps/server.h"

DEFINE_int32(port, 7000, "RPC port (0 = any free port)");
DEFINE_string(host, "0.0.0.0", "address the RPC and HTTP endpoints bind to");
DEFINE_int32(http_port, 0, "HTTP port for /healthz and /metrics (0 = any free port)");
DEFINE_int32(threads, 4, "shard threads: each table's keys are split across them");
DEFINE_int32(handler_threads, 2, "threads that validate requests and fan them out");
DEFINE_bool(standalone, false,
            "serve the tables of --config without a scheduler (tests, benchmarks)");
DEFINE_string(config, "", "job spec (YAML)");
DEFINE_int32(rank, 0, "this server's rank (standalone: for key ownership checks)");
DEFINE_int32(num_servers, 1, "servers in the job (standalone: for key ownership checks)");
DEFINE_string(checkpoint_dir, "", "root directory of checkpoints (default: the job spec's)");
DEFINE_bool(restore, false, "load the newest whole checkpoint under --checkpoint_dir first");
DEFINE_string(port_file, "", "write '<rpc port> <http port>' here once serving");

namespace {

using mtps::Status;

Status WritePortFile(const std::string& path, int rpc_port, int http_port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << rpc_port << " " << http_port << "\n";
    if (!out.flush()) return mtps::Unavailable("cannot write port file " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return mtps::Unavailable("cannot rename " + tmp + " to " + path + ": " + ec.message());
  return Status::OK();
}

int Fail(const Status& status) {
  LOG(ERROR) << "mtps-server: " << status;
  std::fprintf(stderr, "mtps-server: %s\n", status.ToString().c_str());
  return 1;
}

int Run() {
  if (!FLAGS_standalone)
    return Fail(mtps::Unimplemented(
        "joining a cluster through the scheduler is not available in this build; "
        "run with --standalone --config=JOB.yaml"));
  if (FLAGS_config.empty()) return Fail(mtps::InvalidArgument("--standalone needs --config"));
  mtps::StatusOr<mtps::JobSpec> job = mtps::LoadJobSpec(FLAGS_config);
  if (!job.ok()) return Fail(job.status());

  // Signals go to the waiting main thread only: block them before any thread starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  mtps::MetricsRegistry metrics;
  mtps::ps::ServerOptions options{.rank = FLAGS_rank,
                                  .num_servers = FLAGS_num_servers,
                                  .shards = FLAGS_threads,
                                  .write_manifest = FLAGS_standalone};
  auto server = mtps::ps::Server::Create(*job, options, &metrics);
  if (!server.ok()) return Fail(server.status());

  const std::string checkpoint_root =
      FLAGS_checkpoint_dir.empty() ? job->checkpoint.dir : FLAGS_checkpoint_dir;
  if (FLAGS_restore) {
    if (checkpoint_root.empty())
      return Fail(mtps::InvalidArgument("--restore needs --checkpoint_dir or checkpoint.dir"));
    if (Status s = (*server)->Restore(checkpoint_root); !s.ok()) return Fail(s);
  }

  mtps::TransportOptions transport;
  transport.handler_threads = FLAGS_handler_threads;
  transport.job_id = job->hash;
  mtps::RpcServer rpc(transport, mtps::proto::Role::SERVER, FLAGS_rank);
  (*server)->RegisterHandlers(rpc);
  metrics.AddGaugeFunction("mtps_rpc_refused_messages",
                           "Messages the transport refused (malformed, oversized, wrong "
                           "version or job, unknown kind).",
                           {}, [&rpc] { return static_cast<double>(rpc.counters().rejected); });
  mtps::StatusOr<int> port = rpc.Bind("tcp://" + FLAGS_host + ":" + std::to_string(FLAGS_port));
  if (!port.ok()) return Fail(port.status());
  if (Status s = rpc.Start(); !s.ok()) return Fail(s);

  mtps::HttpServer http(&metrics);
  mtps::StatusOr<int> http_port = http.Start(FLAGS_host, FLAGS_http_port);
  if (!http_port.ok()) return Fail(http_port.status());

  if (!FLAGS_port_file.empty()) {
    if (Status s = WritePortFile(FLAGS_port_file, *port, *http_port); !s.ok()) return Fail(s);
  }
  LOG(INFO) << "mtps-server rank " << FLAGS_rank << "/" << FLAGS_num_servers << " serving "
            << job->tables.size() << " tables on port " << *port << ", HTTP on " << *http_port;

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  LOG(INFO) << "mtps-server: signal " << signal_number << ", shutting down";
  // Stop taking requests, answer waiting sync steps, then stop HTTP; the tables' threads
  // finish queued work when `server` goes.
  rpc.Stop();
  (*server)->CancelPendingSyncSteps(mtps::Cancelled("server shutting down"));
  http.Stop();
  server->reset();
  google::FlushLogFiles(google::INFO);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("mtps parameter server");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  return Run();
}
