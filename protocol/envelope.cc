// Envelope helpers: building a message with its header, Error replies <-> Status, and the
// names of body kinds and roles that log lines and error messages use.
#include <string>

#include <capnp/schema.h>

#include "protocol/transport.h"

namespace mtps {

std::unique_ptr<OutgoingMessage> NewEnvelope(const EnvelopeHeader& header) {
  auto message = std::make_unique<OutgoingMessage>();
  proto::Envelope::Builder envelope = message->envelope();
  envelope.setVersion(header.version);
  envelope.setJobId(header.job_id);
  envelope.setRequestId(header.request_id);
  proto::NodeId::Builder sender = envelope.initSender();
  sender.setRole(header.role);
  sender.setRank(header.rank);
  return message;
}

void SetError(proto::Envelope::Body::Builder body, const Status& status) {
  proto::Error::Builder error = body.initError();
  error.setCode(static_cast<proto::ErrorCode>(status.code()));
  error.setMessage(status.message());
}

Status StatusFromError(proto::Error::Reader error) {
  const auto code = static_cast<int>(error.getCode());
  std::string message = error.getMessage();
  if (code <= 0 || code > static_cast<int>(StatusCode::kPermissionDenied)) {
    // An OK "error" or a code from a newer peer: still a failure, never silently OK.
    return Internal("error reply with unknown code " + std::to_string(code) + ": " + message);
  }
  return Status(static_cast<StatusCode>(code), std::move(message));
}

Status ReplyStatus(const IncomingMessage& reply) {
  proto::Envelope::Body::Reader body = reply.envelope().getBody();
  if (body.which() != proto::Envelope::Body::ERROR) return Status::OK();
  return StatusFromError(body.getError());
}

std::string RoleName(proto::Role role) {
  switch (role) {
    case proto::Role::UNKNOWN: return "unknown";
    case proto::Role::SCHEDULER: return "scheduler";
    case proto::Role::SERVER: return "server";
    case proto::Role::WORKER: return "worker";
    case proto::Role::CLIENT: return "client";
  }
  return "role(" + std::to_string(static_cast<int>(role)) + ")";
}

std::string BodyKindName(proto::Envelope::Body::Which kind) {
  capnp::StructSchema body = capnp::Schema::from<proto::Envelope::Body>();
  KJ_IF_MAYBE(field, body.getFieldByDiscriminant(static_cast<uint16_t>(kind))) {
    return field->getProto().getName();
  }
  return "unknown kind " + std::to_string(static_cast<int>(kind));
}

}  // namespace mtps
