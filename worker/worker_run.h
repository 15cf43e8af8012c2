// The two ways mtps-worker runs a job: RunWorker joins a cluster (register with the
// scheduler, train this worker's shard against the parameter servers, report progress,
// evaluate, leave on shutdown); RunLocal trains the whole job in process (LocalTrainer).
//
//   WorkerRunOptions options{.scheduler = "tcp://10.0.0.1:7000", .device = "cuda:0"};
//   Status s = RunWorker(spec, options);     // blocks until the job ends
#pragma once

#include <string>

#include "protocol/job_spec.h"
#include "base/status.h"

namespace mtps {

struct WorkerRunOptions {
  std::string scheduler;     // tcp://host:port
  std::string device = "cpu";
  int cpu_threads = 1;
  int http_port = 0;
  std::string host = "127.0.0.1";            // interface the endpoints bind to
  std::string advertise_host = "127.0.0.1";  // how the scheduler reaches this worker
  std::string run_dir;       // RunLocal: where summary.json goes (empty: not written)
  int log_every = 50;        // steps between progress lines / reports
  int rank = -1;             // the rank to ask for (a restarted worker); -1 = any free
};

Status RunWorker(const JobSpec& spec, const WorkerRunOptions& options);
Status RunLocal(const JobSpec& spec, const WorkerRunOptions& options);

}  // namespace mtps
