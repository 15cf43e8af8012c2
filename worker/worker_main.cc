// mtps-worker: trains its shard of the job's data against the parameter servers of a
// cluster formed by mtps-scheduler, or, with --local, the whole job in this process.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <cstdio>

#include "protocol/job_spec.h"
#include "protocol/node_security.h"
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

int main(int argc, char** argv) {
  gflags::SetUsageMessage("mtps-worker --config job.yaml (--scheduler tcp://host:port | --local)");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  google::InstallFailureSignalHandler();
  // Batches and messages of many MB are reused, not returned to the OS and faulted in anew.
  mtps::KeepLargeBuffersInTheHeap();

  if (FLAGS_config.empty()) {
    std::fprintf(stderr, "mtps-worker: --config is required\n");
    return 2;
  }
  mtps::StatusOr<mtps::JobSpec> spec = mtps::LoadJobSpec(FLAGS_config);
  if (!spec.ok()) {
    LOG(ERROR) << spec.status();
    return 2;
  }
  if (!FLAGS_local) {
    // Before any socket exists: every socket of the process takes its keys from here.
    mtps::Status s = mtps::SetUpNodeSecurity(
        "worker", FLAGS_rank >= 0 ? "worker-" + std::to_string(FLAGS_rank) : "");
    if (!s.ok()) {
      LOG(ERROR) << s;
      return 2;
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
    return 1;
  }
  return 0;
}
