// --keys_dir / --key_name / --insecure for every mtps binary, and the refusal counters on
// /metrics.
#include "protocol/node_security.h"

#include <atomic>

#include <gflags/gflags.h>
#include <glog/logging.h>

DEFINE_string(keys_dir, "",
              "directory of the job's CURVE keys (mtps-keys writes one; Kubernetes mounts it "
              "from a Secret): every ZeroMQ socket is then authenticated and encrypted");
DEFINE_string(key_name, "",
              "this node's key in --keys_dir (<key_name>.key), e.g. server-0, worker-3 "
              "(default: 'scheduler' for the scheduler; servers and workers must say)");
DEFINE_bool(insecure, false,
            "run without CURVE: no authentication, no encryption (logged as insecure)");

namespace mtps {
namespace {
std::atomic<bool> secure{false};
}  // namespace

Status SetUpNodeSecurity(const std::string& role, const std::string& default_key_name) {
  if (FLAGS_insecure && !FLAGS_keys_dir.empty()) {
    return InvalidArgument("--insecure and --keys_dir contradict each other: choose one");
  }
  if (FLAGS_insecure) {
    LOG(WARNING) << "INSECURE: this " << role << " runs without CURVE (--insecure): its ZeroMQ "
                    "traffic is neither authenticated nor encrypted, and anyone who reaches its "
                    "ports may send it any request";
    return Status::OK();
  }
  // Authenticated by default: running open takes a decision, not a forgotten flag.
  if (FLAGS_keys_dir.empty()) {
    return FailedPrecondition("this " + role +
                              " has no keys: pass --keys_dir DIR (the job's keys, made by "
                              "mtps-keys; launch/local.sh makes them per run) or --insecure "
                              "to run without authentication");
  }
  if (!CurveSupported()) {
    return Unimplemented("--keys_dir: this libzmq was built without CURVE (zmq_has(\"curve\") "
                         "is false); install a libzmq5 built with libsodium");
  }
  const std::string name = FLAGS_key_name.empty() ? default_key_name : FLAGS_key_name;
  if (name.empty()) {
    return InvalidArgument("--keys_dir needs --key_name: which key in " + FLAGS_keys_dir +
                           " is this " + role + "'s (e.g. " + role + "-0)");
  }
  StatusOr<std::shared_ptr<const JobKeys>> keys = JobKeys::Load(FLAGS_keys_dir, name);
  if (!keys.ok()) return keys.status().WithContext("--keys_dir");
  MTPS_ASSIGN_OR_RETURN(proto::Role expected, ParseRole(role));
  if ((*keys)->self().role != expected) {
    return InvalidArgument("key '" + name + "' is a " + RoleName((*keys)->self().role) +
                           " key in the job's allow-list, but this process is a " + role);
  }
  LOG(INFO) << "CURVE on: this " << role << " is '" << name << "' of a job of "
            << (*keys)->holders().size() << " keys (" << FLAGS_keys_dir << "/job.pub)";
  SetProcessJobKeys(std::move(*keys));
  secure.store(true);
  return Status::OK();
}

bool NodeIsSecure() { return secure.load(); }

void ExportAuthMetrics(MetricsRegistry* registry, const RpcServer& rpc, const std::string& socket) {
  if (registry == nullptr) return;
  const MetricLabels labels = {{"socket", socket}};
  registry->AddGaugeFunction("mtps_auth_refused_handshakes",
                             "Connections refused at the CURVE handshake: a key not of this job.",
                             labels, [&rpc] { return static_cast<double>(rpc.counters().handshakes_refused); });
  registry->AddGaugeFunction("mtps_auth_refused_requests",
                             "Requests refused because their sender's key may not send them.",
                             labels, [&rpc] { return static_cast<double>(rpc.counters().unauthorized); });
  registry->AddGaugeFunction("mtps_auth_secure", "1 when this process's sockets use CURVE.", labels,
                             [] { return NodeIsSecure() ? 1.0 : 0.0; });
}

}  // namespace mtps
