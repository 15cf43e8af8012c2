// mtps-scheduler: forms the cluster of servers and workers and runs the job to its end.
// Exit status (protocol/exit_codes.h): 0 when the job finished, 143 when SIGTERM/SIGINT
// stopped it (retryable), 1 when it failed in a way a restart may cure, 2-4 when not.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <thread>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "protocol/exit_codes.h"
#include "protocol/http_server.h"
#include "protocol/job_spec.h"
#include "protocol/metrics.h"
#include "protocol/node_security.h"
#include "protocol/process_metrics.h"
#include "protocol/program_flags.h"
#include "scheduler/scheduler.h"

DEFINE_string(config, "", "job spec YAML file (required)");
DEFINE_string(host, "0.0.0.0", "interface to listen on");
DEFINE_int32(port, 7000, "RPC port that servers and workers register with (0 = any)");
DEFINE_int32(http_port, 0, "port of /healthz and /metrics (0 = any free port)");
DEFINE_int32(num_servers, 1, "parameter servers the job waits for");
DEFINE_int32(num_workers, 1, "workers the job waits for");
DEFINE_double(heartbeat_timeout, 10, "seconds of silence after which a node is dead");
DEFINE_double(register_timeout, 300, "seconds to wait for every node to register");
DEFINE_double(barrier_timeout, 1800, "seconds a barrier may wait for its last node");
DEFINE_double(checkpoint_timeout, 900, "seconds the servers have to write a checkpoint");
DEFINE_double(progress_interval, 10, "seconds between progress log lines");
DEFINE_int32(progress_fd, -1,
             "an open file descriptor where a person watches the job (launch/local.sh passes its "
             "stdout): a live progress line when it is a terminal, plain lines otherwise; "
             "-1 = none (the log has the progress lines either way)");
DEFINE_double(recover_timeout, 0,
              "seconds a lost server's or worker's rank waits for a replacement (the same rank "
              "registering again) before the job fails; 0 = a lost node fails the job at once");
DEFINE_string(run_dir, "", "directory for summary.json (empty = none)");
DEFINE_bool(restore, false,
            "a restarted scheduler: go on with the running job journaled under the spec's "
            "checkpoint.dir (same --port); without a journal, or one of a finished job, start anew");

namespace {

std::chrono::milliseconds Millis(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

bool ValidFlags() {
  bool ok = true;
  auto require = [&](bool cond, const std::string& why) {
    if (!cond) LOG(ERROR) << why;
    ok = ok && cond;
  };
  require(!FLAGS_config.empty(), "--config is required");
  require(FLAGS_num_servers > 0, "--num_servers must be > 0, got " + std::to_string(FLAGS_num_servers));
  require(FLAGS_num_workers > 0, "--num_workers must be > 0, got " + std::to_string(FLAGS_num_workers));
  for (auto [name, port] : {std::pair{"port", FLAGS_port}, {"http_port", FLAGS_http_port}}) {
    const mtps::Status s = mtps::CheckPortFlag(name, port);
    require(s.ok(), s.message());
  }
  require(FLAGS_progress_fd == -1 || (FLAGS_progress_fd >= 0 && fcntl(FLAGS_progress_fd, F_GETFD) != -1),
          "--progress_fd " + std::to_string(FLAGS_progress_fd) + " is not an open file descriptor");
  require(FLAGS_recover_timeout >= 0,
          "--recover_timeout must be >= 0 seconds, got " + std::to_string(FLAGS_recover_timeout));
  for (auto [name, value] : {std::pair{"heartbeat_timeout", FLAGS_heartbeat_timeout},
                             {"register_timeout", FLAGS_register_timeout},
                             {"barrier_timeout", FLAGS_barrier_timeout},
                             {"checkpoint_timeout", FLAGS_checkpoint_timeout},
                             {"progress_interval", FLAGS_progress_interval}}) {
    require(value > 0, std::string("--") + name + " must be > 0 seconds, got " + std::to_string(value));
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  mtps::ParseProgramFlags(&argc, &argv,
                          "mtps-scheduler --config job.yaml --num_servers S --num_workers W");
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  if (!ValidFlags()) return 2;

  mtps::StatusOr<mtps::JobSpec> spec = mtps::LoadJobSpec(FLAGS_config);
  if (!spec.ok()) {
    LOG(ERROR) << "cannot load the job spec: " << spec.status();
    return 2;
  }
  // Before any socket exists: every socket of the process takes its keys from here.
  if (mtps::Status s = mtps::SetUpNodeSecurity("scheduler", "scheduler"); !s.ok()) {
    LOG(ERROR) << s;
    return 2;
  }

  // Signals go to one thread that turns them into a clean stop; every other thread
  // (created below) inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  mtps::MetricsRegistry registry;
  mtps::ExportProcessMetrics(&registry);
  mtps::SteadyClock clock;
  std::unique_ptr<mtps::FileSystem> fs = mtps::NewPosixFileSystem();
  mtps::scheduler::SchedulerOptions options;
  options.spec = *spec;
  options.num_servers = FLAGS_num_servers;
  options.num_workers = FLAGS_num_workers;
  options.endpoint = "tcp://" + FLAGS_host + ":" + std::to_string(FLAGS_port);
  options.run_dir = FLAGS_run_dir;
  options.heartbeat_timeout = Millis(FLAGS_heartbeat_timeout);
  options.register_timeout = Millis(FLAGS_register_timeout);
  options.barrier_timeout = Millis(FLAGS_barrier_timeout);
  options.checkpoint_timeout = Millis(FLAGS_checkpoint_timeout);
  options.progress_interval = Millis(FLAGS_progress_interval);
  options.recover_timeout = Millis(FLAGS_recover_timeout);
  options.restore = FLAGS_restore;
  options.progress_fd = FLAGS_progress_fd;
  // A reader of the progress view that goes away must not end the scheduler.
  if (FLAGS_progress_fd >= 0) signal(SIGPIPE, SIG_IGN);
  mtps::scheduler::Scheduler scheduler(options, &clock, fs.get(), &registry);

  mtps::HttpServer http(&registry);
  mtps::ExportHttpMetrics(&registry, http);
  http.SetHealthCheck([&scheduler] { return scheduler.health(); });
  mtps::StatusOr<int> http_port = http.Start(FLAGS_host, FLAGS_http_port);
  if (!http_port.ok()) {
    LOG(ERROR) << http_port.status();
    return 1;
  }
  mtps::StatusOr<int> port = scheduler.Start();
  if (!port.ok()) {
    LOG(ERROR) << "cannot start the scheduler: " << port.status();
    return 1;
  }
  LOG(INFO) << "mtps-scheduler listening on " << FLAGS_host << ":" << *port << ", http on port "
            << *http_port;

  std::atomic<bool> finished{false};
  std::thread signal_thread([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    if (finished) return;  // the wake-up sent below
    LOG(INFO) << "mtps-scheduler: " << strsignal(signal) << ", stopping";
    scheduler.RequestStop(std::string("signal ") + strsignal(signal));
  });

  mtps::Status result = scheduler.Run();
  finished = true;
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  http.Stop();
  if (result.ok()) return mtps::kExitOk;
  if (result.code() == mtps::StatusCode::kCancelled) {
    LOG(INFO) << "mtps-scheduler stopped: " << result;
  } else {
    LOG(ERROR) << "mtps-scheduler: the job failed: " << result;
  }
  return mtps::ExitCodeFor(result);
}
