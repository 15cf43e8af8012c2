// The command-line side of CURVE for every mtps binary: --keys_dir, --key_name and
// --insecure, the process's keys installed from them, and the /metrics that count refusals.
//
//   int main(...) {
//     ...ParseCommandLineFlags...
//     Status s = SetUpNodeSecurity("server", /*default_key_name=*/"");
//     if (!s.ok()) { LOG(ERROR) << s; return 2; }
//     ... RpcServer rpc(...);   // its TransportOptions now carry the job's keys
//     ExportAuthMetrics(&registry, rpc, "rpc");
//
// A process needs one of the two: without --keys_dir and without --insecure it refuses
// to start (FAILED_PRECONDITION, naming both flags). --insecure runs plain ZeroMQ, no
// identity, anyone who reaches a port may send anything, and the log says so.
// --keys_dir together with --insecure is refused as contradictory.
#pragma once

#include <string>

#include "protocol/metrics.h"
#include "base/status.h"
#include "protocol/transport.h"

namespace mtps {

// Loads the keys (--keys_dir, as --key_name or else `default_key_name`), checks that libzmq
// can do CURVE, and installs them for every socket of the process (SetProcessJobKeys).
// `role` ("server", ...) must be the role of the key in the allow-list.
Status SetUpNodeSecurity(const std::string& role, const std::string& default_key_name);

// Whether SetUpNodeSecurity installed keys.
bool NodeIsSecure();

// mtps_auth_refused_handshakes{socket=...}: connections whose key was not the job's;
// mtps_auth_refused_requests{socket=...}: requests their sender's key may not send;
// and, once per registry, mtps_auth_secure (1 with CURVE, 0 insecure).
void ExportAuthMetrics(MetricsRegistry* registry, const RpcServer& rpc, const std::string& socket);

}  // namespace mtps
