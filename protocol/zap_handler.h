// The ZAP handler (ZeroMQ RFC 27) of one ZeroMQ context: it admits a CURVE peer only when
// its public key is in the job's allow-list, and names it (the ZAP User-Id) after it.
//
//   ZapHandler zap(context, keys);     // before any socket of `context` binds
//   ... a received frame's zmq_msg_gets(frame, "User-Id") is the peer's key holder name
//   zap.Stop();                        // before the context is closed
//
// libzmq asks the handler at inproc://zeromq.zap.01 of the socket's context for every
// CURVE handshake of a socket that has a ZAP domain; without a handler libzmq would admit
// every key, so RpcServer starts one per context before it binds.
//
// Thread-safety: constructed and stopped by the owner; refused() from any thread.
#pragma once

#include <atomic>
#include <memory>
#include <thread>

#include <zmq.hpp>

#include "protocol/curve_keys.h"
#include "base/status.h"

namespace mtps {

// The ZAP domain of every mtps listening socket.
inline constexpr char kZapDomain[] = "mtps";

class ZapHandler {
 public:
  // Binds the handler's socket in `context` and starts its thread. `keys` must not be null.
  // `listener` (a socket of `context`, not yet bound) is watched for failed handshakes of
  // any kind, e.g. a peer without CURVE, which never reaches the ZAP handler.
  static StatusOr<std::unique_ptr<ZapHandler>> Start(zmq::context_t& context,
                                                     std::shared_ptr<const JobKeys> keys,
                                                     zmq::socket_t& listener);
  ~ZapHandler();  // Stop()s
  void Stop();

  uint64_t admitted() const { return admitted_.load(std::memory_order_relaxed); }
  // Keys the ZAP handler refused (not in the job's allow-list).
  uint64_t refused_keys() const { return refused_.load(std::memory_order_relaxed); }
  // Connections of the listener whose handshake failed for any reason: an unknown key, a
  // peer without CURVE or with the wrong server key, garbage.
  uint64_t failed_handshakes() const { return failed_handshakes_.load(std::memory_order_relaxed); }

 private:
  ZapHandler(std::shared_ptr<const JobKeys> keys, zmq::socket_t socket, zmq::socket_t monitor);
  void Loop();
  void Answer();
  void CountMonitorEvent();

  const std::shared_ptr<const JobKeys> keys_;
  zmq::socket_t socket_;   // REP, owned by the thread once started
  zmq::socket_t monitor_;  // PAIR: the listener's handshake failures
  std::atomic<uint64_t> failed_handshakes_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> admitted_{0};
  std::atomic<uint64_t> refused_{0};
  std::thread thread_;
};

// Sets the CURVE options of a listening socket (the job's listener key, ZAP domain) or of
// a connecting one (this node's key; the job's listener key as the server key).
void ConfigureCurveServer(zmq::socket_t& socket, const JobKeys& keys);
void ConfigureCurveClient(zmq::socket_t& socket, const JobKeys& keys);

}  // namespace mtps
