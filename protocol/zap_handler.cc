// ZapHandler: answers libzmq's authentication requests from the job's allow-list; and the
// CURVE socket options of listening and connecting sockets.
#include "protocol/zap_handler.h"

#include <string>
#include <vector>

#include <glog/logging.h>

namespace mtps {
namespace {

constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";
constexpr long kPollMs = 100;  // how soon Stop() is noticed

std::string FrameText(const zmq::message_t& frame) {
  return std::string(static_cast<const char*>(frame.data()), frame.size());
}

}  // namespace

StatusOr<std::unique_ptr<ZapHandler>> ZapHandler::Start(zmq::context_t& context,
                                                        std::shared_ptr<const JobKeys> keys,
                                                        zmq::socket_t& listener) {
  if (keys == nullptr) return InvalidArgument("a ZAP handler needs the job's keys");
  try {
    zmq::socket_t socket(context, zmq::socket_type::rep);
    socket.set(zmq::sockopt::linger, 0);
    socket.bind(kZapEndpoint);
    const std::string monitor_endpoint =
        "inproc://mtps-handshakes-" + std::to_string(reinterpret_cast<uintptr_t>(listener.handle()));
    if (zmq_socket_monitor(listener.handle(), monitor_endpoint.c_str(),
                           ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0) {
      throw zmq::error_t();
    }
    zmq::socket_t monitor(context, zmq::socket_type::pair);
    monitor.set(zmq::sockopt::linger, 0);
    monitor.connect(monitor_endpoint);
    std::unique_ptr<ZapHandler> handler(
        new ZapHandler(std::move(keys), std::move(socket), std::move(monitor)));
    handler->thread_ = std::thread([h = handler.get()] { h->Loop(); });
    return handler;
  } catch (const zmq::error_t& e) {
    return Internal(std::string("cannot start the ZAP handler: ") + e.what());
  }
}

ZapHandler::ZapHandler(std::shared_ptr<const JobKeys> keys, zmq::socket_t socket,
                       zmq::socket_t monitor)
    : keys_(std::move(keys)), socket_(std::move(socket)), monitor_(std::move(monitor)) {}

ZapHandler::~ZapHandler() { Stop(); }

void ZapHandler::Stop() {
  stopping_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
}

void ZapHandler::Loop() {
  zmq_pollitem_t items[2] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                             {monitor_.handle(), 0, ZMQ_POLLIN, 0}};
  try {
    while (!stopping_.load(std::memory_order_acquire)) {
      if (zmq_poll(items, 2, kPollMs) < 0) {
        if (zmq_errno() == EINTR) continue;
        throw zmq::error_t();
      }
      if (items[0].revents & ZMQ_POLLIN) Answer();
      if (items[1].revents & ZMQ_POLLIN) CountMonitorEvent();
    }
  } catch (const zmq::error_t& e) {
    LOG(ERROR) << "ZAP handler stops (every new connection will now fail): " << e.what();
  }
  socket_.close();
  monitor_.close();
}

void ZapHandler::CountMonitorEvent() {
  // Two frames: 6 bytes (uint16 event, uint32 value), then the endpoint.
  std::vector<zmq::message_t> parts;
  bool more = true;
  while (more) {
    zmq::message_t part;
    if (!monitor_.recv(part, zmq::recv_flags::dontwait)) break;
    more = part.more();
    parts.push_back(std::move(part));
  }
  if (parts.empty()) return;
  failed_handshakes_.fetch_add(1, std::memory_order_relaxed);
  // A prober may fail thousands of handshakes: log a sample, count them all (/metrics).
  LOG_EVERY_N(WARNING, 100) << "a connection failed its CURVE handshake (" << google::COUNTER
                            << " so far): a peer without this job's keys";
}

void ZapHandler::Answer() {
  std::vector<zmq::message_t> request;
  bool more = true;
  while (more) {
    zmq::message_t part;
    (void)socket_.recv(part, zmq::recv_flags::none);
    more = part.more();
    request.push_back(std::move(part));
  }
  // version, request id, domain, address, routing id, mechanism, credentials...
  std::string status = "400", text = "malformed ZAP request", user_id;
  if (request.size() >= 6 && FrameText(request[0]) == "1.0") {
    const std::string mechanism = FrameText(request[5]);
    const std::string address = FrameText(request[3]);
    if (mechanism != "CURVE" || request.size() != 7 || request[6].size() != 32) {
      text = "only CURVE is accepted";
    } else {
      char z85[kZ85KeyChars + 1];
      zmq_z85_encode(z85, static_cast<const uint8_t*>(request[6].data()), 32);
      if (const KeyHolder* holder = keys_->FindByPublicKey(z85)) {
        status = "200";
        text = "OK";
        user_id = holder->name;
      } else {
        text = "key not in the job's allow-list";
        LOG_EVERY_N(WARNING, 100) << "ZAP: refused CURVE key " << z85 << " from " << address
                                  << ": not one of this job's keys (" << google::COUNTER
                                  << " refused so far)";
      }
    }
  }
  (status == "200" ? admitted_ : refused_).fetch_add(1, std::memory_order_relaxed);
  const std::string request_id = request.size() > 1 ? FrameText(request[1]) : "";
  socket_.send(zmq::buffer(std::string("1.0")), zmq::send_flags::sndmore);
  socket_.send(zmq::buffer(request_id), zmq::send_flags::sndmore);
  socket_.send(zmq::buffer(status), zmq::send_flags::sndmore);
  socket_.send(zmq::buffer(text), zmq::send_flags::sndmore);
  socket_.send(zmq::buffer(user_id), zmq::send_flags::sndmore);
  socket_.send(zmq::message_t(), zmq::send_flags::none);  // metadata: none
}

void ConfigureCurveServer(zmq::socket_t& socket, const JobKeys& keys) {
  socket.set(zmq::sockopt::zap_domain, kZapDomain);
  socket.set(zmq::sockopt::curve_server, true);
  socket.set(zmq::sockopt::curve_secretkey, keys.listener().secret_key);
}

void ConfigureCurveClient(zmq::socket_t& socket, const JobKeys& keys) {
  socket.set(zmq::sockopt::curve_serverkey, keys.listener().public_key);
  socket.set(zmq::sockopt::curve_publickey, keys.own_keys().public_key);
  socket.set(zmq::sockopt::curve_secretkey, keys.own_keys().secret_key);
}

}  // namespace mtps
