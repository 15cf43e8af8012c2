// mtps-server: one parameter server process — the RPC endpoint for sparse tables and
// dense blocks, /healthz and /metrics over HTTP, clean exit on SIGTERM or SIGINT.
//
//   mtps-server --config=job.yaml --scheduler=tcp://sched:7000 --port=7000   # in a cluster
//   mtps-server --standalone --config=job.yaml --port=7000 --http_port=7100
//               --rank=0 --num_servers=2 --threads=4 --checkpoint_dir=/ckpt --restore
//
// In a cluster the server registers with the scheduler, which assigns its rank (a
// restarted server asks for its old one with --rank) and ends it with a shutdown message;
// a shutdown that says the job failed makes the server exit 1.
//
// With --port=0 / --http_port=0 it binds free ports; --port_file then receives
// "<rpc port> <http port>" once the server is serving (written atomically), which is how
// tests and launch scripts find it.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "base/atomic_file.h"
#include "base/env.h"
#include "protocol/exit_codes.h"
#include "protocol/http_server.h"
#include "protocol/job_spec.h"
#include "protocol/metrics.h"
#include "protocol/node_security.h"
#include "protocol/process_metrics.h"
#include "protocol/program_flags.h"
#include "protocol/transport.h"
#include "ps/heap_tuning.h"
#include "ps/server.h"
#include "protocol/scheduler_client.h"

DEFINE_int32(port, 7000, "RPC port (0 = any free port)");
DEFINE_string(host, "0.0.0.0", "address the RPC and HTTP endpoints bind to");
DEFINE_int32(http_port, 0, "HTTP port for /healthz and /metrics (0 = any free port)");
DEFINE_int32(threads, 4, "shard threads: each table's keys are split across them");
DEFINE_int32(handler_threads, 2, "threads that validate requests and fan them out");
DEFINE_bool(standalone, false,
            "serve the tables of --config without a scheduler (tests, benchmarks)");
DEFINE_string(config, "", "job spec (YAML)");
DEFINE_int32(rank, -1, "this server's rank: standalone, for key ownership checks (default 0); "
             "in a cluster, the rank a restarted server asks the scheduler for");
DEFINE_string(scheduler, "", "scheduler endpoint tcp://host:port (unless --standalone)");
DEFINE_string(advertise_host, "",
              "host name or address that workers reach this server at (default: --host, or "
              "this machine's name when --host is 0.0.0.0)");
DEFINE_int32(num_servers, 1, "servers in the job (standalone: for key ownership checks)");
DEFINE_string(checkpoint_dir, "", "root directory of checkpoints (default: the job spec's)");
DEFINE_bool(restore, false, "load the newest whole checkpoint under --checkpoint_dir first");
DEFINE_uint64(memory_budget_bytes, 0,
              "bytes all embedding tables of this server may hold together; past it no new "
              "row is created (0 = no limit; tables' own capacity_rows/bytes still apply)");
DEFINE_string(port_file, "", "write '<rpc port> <http port>' here once serving");

namespace {

using mtps::Status;

Status WritePortFile(const std::string& path, int rpc_port, int http_port) {
  return mtps::WriteFileAtomically(
             *mtps::DefaultFileSystem(), path,
             std::to_string(rpc_port) + " " + std::to_string(http_port) + "\n")
      .WithContext("port file");
}

int Fail(const Status& status) {
  LOG(ERROR) << "mtps-server: " << status;
  return mtps::ExitCodeFor(status);
}

// The exit status the scheduler's shutdown notice asks for, read after SIGUSR1.
std::atomic<int> notice_exit_code{mtps::kExitOk};

std::string AdvertisedHost() {
  if (!FLAGS_advertise_host.empty()) return FLAGS_advertise_host;
  if (FLAGS_host != "0.0.0.0") return FLAGS_host;
  char name[256] = {};
  return ::gethostname(name, sizeof(name) - 1) == 0 ? std::string(name) : "127.0.0.1";
}

int Run() {
  if (FLAGS_config.empty()) return Fail(mtps::InvalidArgument("--config is required"));
  for (auto [name, port] : {std::pair{"port", FLAGS_port}, {"http_port", FLAGS_http_port}}) {
    if (Status s = mtps::CheckPortFlag(name, port); !s.ok()) return Fail(s);
  }
  if (!FLAGS_standalone && FLAGS_scheduler.empty()) {
    return Fail(mtps::InvalidArgument(
        "--scheduler tcp://host:port is required to join a cluster (or run --standalone)"));
  }
  mtps::StatusOr<mtps::JobSpec> job = mtps::LoadJobSpec(FLAGS_config);
  if (!job.ok()) return Fail(job.status());

  // Signals go to the waiting main thread only: block them before any thread starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGUSR1);  // the scheduler ended the job (notice_exit_code)
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // Before any socket exists: every socket of the process takes its keys from here.
  if (Status s = mtps::SetUpNodeSecurity(
          "server", FLAGS_rank >= 0 ? "server-" + std::to_string(FLAGS_rank) : "");
      !s.ok()) {
    LOG(ERROR) << "mtps-server: " << s;
    return mtps::kExitBadConfig;  // a fix of the command line, not a retry, helps
  }
  mtps::MetricsRegistry metrics;
  mtps::ExportProcessMetrics(&metrics);
  mtps::TransportOptions transport;
  transport.handler_threads = FLAGS_handler_threads;
  transport.job_id = job->hash;
  // Workers declared lost and replaced are refused (their generation is older than the one
  // the cluster view publishes for their rank).
  auto fence = std::make_shared<mtps::GenerationFence>();
  if (!FLAGS_standalone) transport.fence = fence;
  mtps::RpcServer rpc(transport, mtps::proto::Role::SERVER, FLAGS_rank);
  mtps::ExportAuthMetrics(&metrics, rpc, "rpc");
  mtps::StatusOr<int> port = rpc.Bind("tcp://" + FLAGS_host + ":" + std::to_string(FLAGS_port));
  if (!port.ok()) return Fail(port.status());
  mtps::HttpServer http(&metrics);
  mtps::ExportHttpMetrics(&metrics, http);
  mtps::StatusOr<int> http_port = http.Start(FLAGS_host, FLAGS_http_port);
  if (!http_port.ok()) return Fail(http_port.status());

  // In a cluster the scheduler decides the rank and the number of servers; requests from
  // workers that arrive before rpc.Start() wait in the bound socket.
  int rank = FLAGS_rank < 0 ? 0 : FLAGS_rank;
  int num_servers = FLAGS_num_servers;
  int num_workers = 0;  // standalone: not known
  std::unique_ptr<mtps::scheduler::SchedulerClient> control;
  if (!FLAGS_standalone) {
    const std::string host = AdvertisedHost();
    mtps::scheduler::SchedulerClientOptions control_options;
    control_options.scheduler = FLAGS_scheduler;
    control_options.role = mtps::proto::Role::SERVER;
    control_options.address = "tcp://" + host + ":" + std::to_string(*port);
    control_options.http_address = host + ":" + std::to_string(*http_port);
    control_options.spec_hash = job->hash;
    control_options.requested_rank = FLAGS_rank;
    auto created = mtps::scheduler::SchedulerClient::Create(control_options);
    if (!created.ok()) return Fail(created.status());
    control = std::move(created).value();
    control->InstallHandlers(rpc);
    mtps::StatusOr<mtps::scheduler::ClusterInfo> cluster = control->Register();
    if (!cluster.ok()) return Fail(cluster.status().WithContext("registering with " + FLAGS_scheduler));
    rank = cluster->rank;
    num_servers = static_cast<int>(cluster->servers.size());
    num_workers = static_cast<int>(cluster->workers.size());
    rpc.set_rank(rank);
    auto publish = [fence](const mtps::scheduler::ClusterInfo& view) {
      for (const mtps::scheduler::NodeAddress& worker : view.workers) {
        fence->Publish(mtps::proto::Role::WORKER, worker.rank, worker.generation);
      }
    };
    publish(*cluster);
    control->OnViewChange([publish](const mtps::scheduler::ClusterInfo& view) {
      publish(view);
      std::string generations;
      for (const mtps::scheduler::NodeAddress& w : view.workers) {
        generations += " " + std::to_string(w.rank) + ":" + std::to_string(w.generation);
      }
      LOG(INFO) << "mtps-server: cluster view " << view.view_epoch
                << "; workers' generations (older ones are fenced):" << generations;
    });
    control->OnShutdown([](const mtps::scheduler::ShutdownNotice& notice) {
      LOG(INFO) << "mtps-server: the scheduler ends the job: " << notice.reason;
      notice_exit_code = mtps::ExitCodeFor(notice.Outcome());
      ::kill(::getpid(), SIGUSR1);
    });
  }

  const std::string checkpoint_root =
      FLAGS_checkpoint_dir.empty() ? job->checkpoint.dir : FLAGS_checkpoint_dir;
  mtps::ps::ServerOptions options{.rank = rank,
                                  .num_servers = num_servers,
                                  .shards = FLAGS_threads,
                                  .write_manifest = FLAGS_standalone,
                                  .num_workers = num_workers};
  options.checkpoint_root = checkpoint_root;
  options.memory_budget_bytes = FLAGS_memory_budget_bytes;
  auto server = mtps::ps::Server::Create(*job, options, &metrics);
  if (!server.ok()) return Fail(server.status());

  if (FLAGS_restore) {
    if (checkpoint_root.empty())
      return Fail(mtps::InvalidArgument("--restore needs --checkpoint_dir or checkpoint.dir"));
    mtps::CheckpointManifest restored;
    Status s = (*server)->Restore(checkpoint_root, &restored);
    if (s.code() == mtps::StatusCode::kNotFound) {
      // A first launch (or a fresh volume): nothing to restore is not an error.
      LOG(WARNING) << "mtps-server: --restore found no whole checkpoint under " << checkpoint_root
                   << "; starting with empty tables (first launch)";
    } else if (!s.ok()) {
      return Fail(s);
    }
  }

  (*server)->RegisterHandlers(rpc);
  metrics.AddGaugeFunction("mtps_ps_fenced_requests",
                           "Requests refused because their worker was declared lost and replaced "
                           "(an older generation than the cluster view's).",
                           {}, [fence] { return static_cast<double>(fence->refused()); });
  metrics.AddGaugeFunction("mtps_rpc_refused_messages",
                           "Messages the transport refused (malformed, oversized, wrong "
                           "version or job, unknown kind).",
                           {}, [&rpc] { return static_cast<double>(rpc.counters().rejected); });
  if (Status s = rpc.Start(); !s.ok()) return Fail(s);

  if (!FLAGS_port_file.empty()) {
    if (Status s = WritePortFile(FLAGS_port_file, *port, *http_port); !s.ok()) return Fail(s);
  }
  LOG(INFO) << "mtps-server rank " << rank << "/" << num_servers << " serving "
            << job->tables.size() << " tables on port " << *port << ", HTTP on " << *http_port;

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  LOG(INFO) << "mtps-server: signal " << signal_number << ", shutting down";
  // Answer waiting sync steps while replies can still leave (workers blocked in a step
  // learn at once that it will never complete), stop taking requests, then stop HTTP; the
  // tables' threads finish queued work when `server` goes.
  (*server)->CancelPendingSyncSteps(mtps::Cancelled("server shutting down"));
  if (control) control->Stop();
  rpc.Stop();
  http.Stop();
  server->reset();
  google::FlushLogFiles(google::INFO);
  if (signal_number == SIGUSR1) return notice_exit_code.load();
  // In a cluster only the scheduler ends the job: SIGTERM or SIGINT from outside (a drain,
  // a preemption) is a clean stop before the end, with a retryable status so that the pod
  // is replaced. A standalone server has no other way to end.
  return FLAGS_standalone ? mtps::kExitOk : mtps::kExitStopped;
}

}  // namespace

int main(int argc, char** argv) {
  mtps::KeepLargeBuffersInTheHeap();
  mtps::ParseProgramFlags(&argc, &argv,
                          "mtps-server --config job.yaml (--scheduler tcp://host:port | --standalone)");
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  return Run();
}
