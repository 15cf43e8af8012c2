// A job's CURVE keys: each node's own key pair, the job's listener key pair and the
// allow-list of every node's public key (the keys directory that mtps-keys writes).
//
//   StatusOr<std::shared_ptr<const JobKeys>> keys = JobKeys::Load("/etc/mtps/keys", "worker-3");
//   const KeyHolder* who = (*keys)->FindByName("scheduler");   // who may give orders
//
// Layout of a keys directory (all text, one item per line; a line starting with '#' is a
// comment):
//   job.pub        the allow-list: "listener <z85>" once, then "<role> <name> <z85>" per node
//   listener.key   "public <z85>" and "secret <z85>": the key every listening socket of the
//                  job serves with (all nodes hold it; it proves membership of the job)
//   <name>.key     "public <z85>" and "secret <z85>": one node's own key, its identity
// Z85 keys are 40 characters (32 bytes). Secret files are written mode 0600.
//
// Thread-safety: a loaded JobKeys is immutable; any thread may read it.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "protocol/mtps.capnp.h"
#include "base/status.h"

namespace mtps {

inline constexpr size_t kZ85KeyChars = 40;

struct CurveKeyPair {
  std::string public_key;  // Z85
  std::string secret_key;  // Z85
};

// One node of the job as the allow-list names it.
struct KeyHolder {
  std::string name;        // "scheduler", "server-0", "worker-3", "client-0"
  proto::Role role = proto::Role::UNKNOWN;
  std::string public_key;  // Z85
};

// Whether this libzmq can do CURVE (built with libsodium or its own tweetnacl).
bool CurveSupported();
StatusOr<CurveKeyPair> GenerateCurveKeyPair();
// "scheduler" -> SCHEDULER, ...; kInvalidArgument for anything else.
StatusOr<proto::Role> ParseRole(std::string_view name);

class JobKeys {
 public:
  // Reads job.pub, listener.key and `<self_name>.key` under `dir`; the own key must be in
  // the allow-list under `self_name` with the same public key.
  static StatusOr<std::shared_ptr<const JobKeys>> Load(const std::string& dir,
                                                       const std::string& self_name);
  // Builds keys in memory (tests, mtps-keys): `holders` is the allow-list.
  static StatusOr<std::shared_ptr<const JobKeys>> Make(std::vector<KeyHolder> holders,
                                                       CurveKeyPair listener,
                                                       const std::string& self_name,
                                                       CurveKeyPair self);

  const KeyHolder& self() const { return self_; }
  const CurveKeyPair& own_keys() const { return own_; }
  const CurveKeyPair& listener() const { return listener_; }
  const std::vector<KeyHolder>& holders() const { return holders_; }
  // Null when the key or name is not the job's.
  const KeyHolder* FindByPublicKey(std::string_view z85) const;
  const KeyHolder* FindByName(std::string_view name) const;

 private:
  JobKeys() = default;
  KeyHolder self_;
  CurveKeyPair own_;
  CurveKeyPair listener_;
  std::vector<KeyHolder> holders_;
  std::unordered_map<std::string, size_t> by_key_;
  std::unordered_map<std::string, size_t> by_name_;
};

// Writes a fresh keys directory for a job: the scheduler, `servers` servers, `workers`
// workers and `clients` tool keys (role client: stats and echo only). Refuses to
// overwrite an existing job.pub.
Status WriteJobKeys(const std::string& dir, int servers, int workers, int clients);

// The keys every socket of this process uses unless its TransportOptions say otherwise:
// set once by main() from --keys_dir before any socket exists; null = insecure. One
// process-wide value on purpose: a socket made on a path that forgot to pass the keys
// would otherwise silently listen unauthenticated.
void SetProcessJobKeys(std::shared_ptr<const JobKeys> keys);
std::shared_ptr<const JobKeys> ProcessJobKeys();

}  // namespace mtps
