// mtps-worker: trains its shard of the job's data against the parameter servers of a
// cluster formed by mtps-scheduler, or, with --local, the whole job in this process.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <signal.h>
#include <unistd.h>

#include <cstdio>

#include "models/backend.h"
#include "models/blas_core.h"
#include "protocol/exit_codes.h"
#include "protocol/job_spec.h"
#include "protocol/node_security.h"
#include "protocol/program_flags.h"
#include "ps/heap_tuning.h"
#include "worker/local_trainer.h"
#include "worker/worker_run.h"

DEFINE_string(config, "", "job spec (YAML)");
DEFINE_string(scheduler, "", "scheduler endpoint, tcp://host:port");
DEFINE_string(device, "cpu", "compute device: cpu or cuda:N");
DEFINE_int32(cpu_threads, 1, "OpenBLAS threads of the CPU backend");
DEFINE_int32(http_port, 0, "port of /healthz and /metrics (0: any free port)");
DEFINE_string(host, "127.0.0.1", "interface the HTTP and control endpoints bind to");
DEFINE_string(advertise_host, "", "name or address the scheduler reaches this worker at "
              "(default: --host)");
DEFINE_bool(local, false, "train the whole job in this process, with no cluster");
DEFINE_string(run_dir, "", "--local: directory for summary.json");
DEFINE_int32(log_every, 50, "steps between progress lines");
DEFINE_int32(rank, -1, "the rank a restarted worker asks the scheduler for (default: any free)");

namespace {

// SIGTERM (a drain, a preemption) is a clean, retryable stop, not a crash: one line and
// kExitStopped instead of glog's failure report with a stack trace. The scheduler treats
// the worker as lost and a replacement resumes from the last checkpoint's data position.
void StopOnSigterm(int) {
  static const char kLine[] = "mtps-worker: SIGTERM, stopping (retryable exit 143)\n";
  [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, kLine, sizeof(kLine) - 1);
  ::_exit(mtps::kExitStopped);
}

}  // namespace

int main(int argc, char** argv) {
  FLAGS_logtostderr = true;  // the default (kubectl logs, local.sh's log files); a flag may override
  mtps::ParseProgramFlags(&argc, &argv,
                          "mtps-worker --config job.yaml (--scheduler tcp://host:port | --local)");
  google::InitGoogleLogging(argv[0]);
  google::InstallFailureSignalHandler();
  struct sigaction stop = {};
  stop.sa_handler = StopOnSigterm;
  sigaction(SIGTERM, &stop, nullptr);
  // Batches and messages of many MB are reused, not returned to the OS and faulted in anew.
  mtps::KeepLargeBuffersInTheHeap();

  if (FLAGS_config.empty()) {
    std::fprintf(stderr, "mtps-worker: --config is required\n");
    return mtps::kExitBadConfig;
  }
  if (mtps::Status s = mtps::CheckPortFlag("http_port", FLAGS_http_port); !s.ok()) {
    LOG(ERROR) << s;
    return mtps::kExitBadConfig;
  }
  // The device is tried before the worker joins a cluster: a missing GPU ends this process
  // at once instead of after the cluster formed around it. A CPU backend made here, before
  // any thread starts, also picks OpenBLAS's kernels (models/blas_core.h: it sets the
  // environment).
  if (auto backend = mtps::models::MakeBackend<float>(FLAGS_device, 1); !backend.ok()) {
    LOG(ERROR) << "mtps-worker: --device " << FLAGS_device << ": " << backend.status();
    return mtps::kExitBadConfig;
  }
  if (FLAGS_device == "cpu") LOG(INFO) << "CPU BLAS kernels: OpenBLAS " << mtps::models::BlasCoreName();
  mtps::StatusOr<mtps::JobSpec> spec = mtps::LoadJobSpec(FLAGS_config);
  if (!spec.ok()) {
    LOG(ERROR) << spec.status();
    return mtps::kExitBadConfig;
  }
  if (!FLAGS_local) {
    // Before any socket exists: every socket of the process takes its keys from here.
    mtps::Status s = mtps::SetUpNodeSecurity(
        "worker", FLAGS_rank >= 0 ? "worker-" + std::to_string(FLAGS_rank) : "");
    if (!s.ok()) {
      LOG(ERROR) << s;
      return mtps::kExitBadConfig;
    }
  }
  mtps::WorkerRunOptions options;
  options.scheduler = FLAGS_scheduler;
  options.device = FLAGS_device;
  options.cpu_threads = FLAGS_cpu_threads;
  options.http_port = FLAGS_http_port;
  options.host = FLAGS_host;
  options.advertise_host = FLAGS_advertise_host.empty() ? FLAGS_host : FLAGS_advertise_host;
  options.run_dir = FLAGS_run_dir;
  options.log_every = FLAGS_log_every;
  options.rank = FLAGS_rank;
  mtps::Status status = FLAGS_local ? mtps::RunLocal(*spec, options)
                                    : mtps::RunWorker(*spec, options);
  if (!status.ok()) {
    LOG(ERROR) << "mtps-worker failed: " << status;
    return mtps::ExitCodeFor(status);
  }
  return mtps::kExitOk;
}
