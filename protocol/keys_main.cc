// mtps-keys: writes a fresh set of CURVE keys for one job (see protocol/curve_keys.h):
// the allow-list job.pub, the listener key and one key per node.
//
//   mtps-keys --out run/keys --servers 2 --workers 2        # scheduler, server-0..1, worker-0..1
//   kubectl create secret generic job-keys --from-file=run/keys
#include <cstdio>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "protocol/curve_keys.h"
#include "protocol/program_flags.h"

DEFINE_string(out, "", "directory to write the keys to (created; an existing job.pub is never overwritten)");
DEFINE_int32(servers, 1, "server keys to make (server-0 ...)");
DEFINE_int32(workers, 1, "worker keys to make (worker-0 ...)");
DEFINE_int32(clients, 0, "tool keys to make (client-0 ...): stats and echo only");

int main(int argc, char** argv) {
  mtps::ParseProgramFlags(&argc, &argv, "mtps-keys --out DIR --servers N --workers M [--clients K]");
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  if (FLAGS_out.empty()) {
    std::fprintf(stderr, "mtps-keys: --out is required\n");
    return 2;
  }
  mtps::Status s = mtps::WriteJobKeys(FLAGS_out, FLAGS_servers, FLAGS_workers, FLAGS_clients);
  if (!s.ok()) {
    std::fprintf(stderr, "mtps-keys: %s\n", s.ToString().c_str());
    return s.code() == mtps::StatusCode::kAlreadyExists ? 3 : 1;
  }
  std::printf("mtps-keys: wrote the keys of 1 scheduler, %d servers, %d workers and %d clients to %s\n",
              FLAGS_servers, FLAGS_workers, FLAGS_clients, FLAGS_out.c_str());
  return 0;
}
