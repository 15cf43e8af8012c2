// Generating, writing and loading a job's CURVE keys (see curve_keys.h for the layout),
// and the process-wide keys that main() installs.
#include "protocol/curve_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include <zmq.h>

#include "base/atomic_file.h"
#include "base/env.h"

namespace mtps {
namespace {

constexpr char kAllowList[] = "job.pub";
constexpr char kListenerName[] = "listener";
constexpr char kKeySuffix[] = ".key";

bool IsZ85Key(std::string_view key) {
  if (key.size() != kZ85KeyChars) return false;
  uint8_t bytes[32];
  return zmq_z85_decode(bytes, std::string(key).c_str()) != nullptr;
}

bool IsName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  }
  return name != "." && name != ".." && name != kListenerName;
}

// A line's words; a line whose first word starts with '#' is a comment ('#' is also a Z85
// digit, so it cannot start a comment elsewhere).
std::vector<std::string> Words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  if (!words.empty() && words[0][0] == '#') words.clear();
  return words;
}

StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read key file " + path + ": " + std::strerror(errno));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// "public <z85>\nsecret <z85>\n": one key pair, secret included.
StatusOr<CurveKeyPair> ReadKeyPair(const std::string& path) {
  MTPS_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  CurveKeyPair pair;
  std::istringstream lines(text);
  int line_no = 0;
  for (std::string line; std::getline(lines, line);) {
    ++line_no;
    std::vector<std::string> w = Words(line);
    if (w.empty()) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    if (w.size() != 2 || (w[0] != "public" && w[0] != "secret")) {
      return InvalidArgument(where + ": expected 'public <key>' or 'secret <key>'");
    }
    if (!IsZ85Key(w[1])) return InvalidArgument(where + ": not a 40-character Z85 CURVE key");
    (w[0] == "public" ? pair.public_key : pair.secret_key) = w[1];
  }
  if (pair.public_key.empty() || pair.secret_key.empty()) {
    return InvalidArgument(path + ": needs both a 'public' and a 'secret' line");
  }
  // The public key must belong to the secret one: a mix-up would only show as failed
  // handshakes later.
  char derived[kZ85KeyChars + 1];
  if (zmq_curve_public(derived, pair.secret_key.c_str()) != 0 || pair.public_key != derived) {
    return InvalidArgument(path + ": the public key does not belong to the secret key");
  }
  return pair;
}

// Owner-only from creation on, and whole or absent. A key file of a directory without
// job.pub may be replaced: such a directory is unfinished and no node uses it yet.
Status WriteSecretFile(const std::string& path, const std::string& text) {
  return WriteFileAtomically(*DefaultFileSystem(), path, text, FileAccess::kOwnerOnly);
}

std::string KeyPairText(const std::string& what, const CurveKeyPair& pair) {
  return "# mtps CURVE key of " + what + ": keep it secret\npublic " + pair.public_key +
         "\nsecret " + pair.secret_key + "\n";
}

std::mutex process_keys_mutex;
std::shared_ptr<const JobKeys>& ProcessKeysSlot() {
  static auto* slot = new std::shared_ptr<const JobKeys>();
  return *slot;
}

}  // namespace

bool CurveSupported() { return zmq_has("curve") != 0; }

StatusOr<CurveKeyPair> GenerateCurveKeyPair() {
  char pub[kZ85KeyChars + 1], sec[kZ85KeyChars + 1];
  if (zmq_curve_keypair(pub, sec) != 0) {
    return Unimplemented(std::string("cannot make a CURVE key pair: ") + zmq_strerror(zmq_errno()) +
                         " (libzmq built without CURVE?)");
  }
  return CurveKeyPair{pub, sec};
}

StatusOr<proto::Role> ParseRole(std::string_view name) {
  if (name == "scheduler") return proto::Role::SCHEDULER;
  if (name == "server") return proto::Role::SERVER;
  if (name == "worker") return proto::Role::WORKER;
  if (name == "client") return proto::Role::CLIENT;
  return InvalidArgument("unknown role '" + std::string(name) +
                         "' (scheduler, server, worker or client)");
}

StatusOr<std::shared_ptr<const JobKeys>> JobKeys::Make(std::vector<KeyHolder> holders,
                                                       CurveKeyPair listener,
                                                       const std::string& self_name,
                                                       CurveKeyPair self) {
  std::shared_ptr<JobKeys> keys(new JobKeys());
  int schedulers = 0;
  for (size_t i = 0; i < holders.size(); ++i) {
    const KeyHolder& h = holders[i];
    if (!IsName(h.name)) return InvalidArgument("bad key holder name '" + h.name + "'");
    if (!IsZ85Key(h.public_key)) {
      return InvalidArgument("the key of '" + h.name + "' is not a 40-character Z85 CURVE key");
    }
    if (!keys->by_name_.emplace(h.name, i).second) {
      return InvalidArgument("the allow-list names '" + h.name + "' twice");
    }
    if (!keys->by_key_.emplace(h.public_key, i).second || h.public_key == listener.public_key) {
      return InvalidArgument("the key of '" + h.name + "' appears twice in the allow-list");
    }
    if (h.role == proto::Role::SCHEDULER) ++schedulers;
  }
  if (schedulers != 1) {
    return InvalidArgument("the allow-list must hold exactly one scheduler key, it holds " +
                           std::to_string(schedulers));
  }
  if (!IsZ85Key(listener.public_key) || !IsZ85Key(listener.secret_key)) {
    return InvalidArgument("the job's listener key is not a Z85 CURVE key pair");
  }
  auto self_it = keys->by_name_.find(self_name);
  if (self_it == keys->by_name_.end()) {
    return NotFound("'" + self_name + "' is not in the job's allow-list");
  }
  if (holders[self_it->second].public_key != self.public_key) {
    return InvalidArgument("the key of '" + self_name +
                           "' is not the one the job's allow-list holds for it");
  }
  keys->holders_ = std::move(holders);
  keys->self_ = keys->holders_[self_it->second];
  keys->own_ = std::move(self);
  keys->listener_ = std::move(listener);
  return std::shared_ptr<const JobKeys>(std::move(keys));
}

StatusOr<std::shared_ptr<const JobKeys>> JobKeys::Load(const std::string& dir,
                                                       const std::string& self_name) {
  if (!IsName(self_name)) {
    return InvalidArgument("bad key name '" + self_name + "' (letters, digits, - _ .)");
  }
  const std::string allow_path = dir + "/" + kAllowList;
  MTPS_ASSIGN_OR_RETURN(std::string text, ReadFile(allow_path));
  std::vector<KeyHolder> holders;
  std::string listener_public;
  std::istringstream lines(text);
  int line_no = 0;
  for (std::string line; std::getline(lines, line);) {
    ++line_no;
    std::vector<std::string> w = Words(line);
    if (w.empty()) continue;
    const std::string where = allow_path + ":" + std::to_string(line_no);
    if (w.size() == 2 && w[0] == kListenerName) {
      listener_public = w[1];
      continue;
    }
    if (w.size() != 3) {
      return InvalidArgument(where + ": expected '<role> <name> <public key>'");
    }
    StatusOr<proto::Role> role = ParseRole(w[0]);
    if (!role.ok()) return role.status().WithContext(where);
    holders.push_back({w[1], *role, w[2]});
  }
  MTPS_ASSIGN_OR_RETURN(CurveKeyPair listener, ReadKeyPair(dir + "/" + kListenerName + kKeySuffix));
  if (listener.public_key != listener_public) {
    return InvalidArgument(allow_path + ": its listener key is not the one in listener.key");
  }
  MTPS_ASSIGN_OR_RETURN(CurveKeyPair self, ReadKeyPair(dir + "/" + self_name + kKeySuffix));
  StatusOr<std::shared_ptr<const JobKeys>> keys =
      Make(std::move(holders), std::move(listener), self_name, std::move(self));
  if (!keys.ok()) return keys.status().WithContext(dir);
  return keys;
}

const KeyHolder* JobKeys::FindByPublicKey(std::string_view z85) const {
  auto it = by_key_.find(std::string(z85));
  return it == by_key_.end() ? nullptr : &holders_[it->second];
}

const KeyHolder* JobKeys::FindByName(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &holders_[it->second];
}

Status WriteJobKeys(const std::string& dir, int servers, int workers, int clients) {
  if (servers < 0 || workers < 0 || clients < 0 || servers + workers + clients > 100000) {
    return InvalidArgument("key counts must be in [0, 100000]");
  }
  if (!CurveSupported()) return Unimplemented("this libzmq was built without CURVE");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Unavailable("cannot create " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  if (std::filesystem::exists(dir + "/" + kAllowList)) {
    return AlreadyExists(dir + "/" + kAllowList + " exists: a job's keys are never overwritten");
  }
  std::vector<std::pair<std::string, std::string>> nodes = {{"scheduler", "scheduler"}};
  for (int i = 0; i < servers; ++i) nodes.push_back({"server", "server-" + std::to_string(i)});
  for (int i = 0; i < workers; ++i) nodes.push_back({"worker", "worker-" + std::to_string(i)});
  for (int i = 0; i < clients; ++i) nodes.push_back({"client", "client-" + std::to_string(i)});

  MTPS_ASSIGN_OR_RETURN(CurveKeyPair listener, GenerateCurveKeyPair());
  MTPS_RETURN_IF_ERROR(WriteSecretFile(dir + "/" + kListenerName + kKeySuffix,
                                       KeyPairText("the job's listening sockets", listener)));
  std::string allow =
      "# mtps job allow-list: the only public keys this job's sockets accept.\n"
      "# <role> <name> <public key>; 'listener' is the key every node serves with.\n"
      "listener " + listener.public_key + "\n";
  for (const auto& [role, name] : nodes) {
    MTPS_ASSIGN_OR_RETURN(CurveKeyPair pair, GenerateCurveKeyPair());
    MTPS_RETURN_IF_ERROR(WriteSecretFile(dir + "/" + name + kKeySuffix, KeyPairText(name, pair)));
    allow += role + " " + name + " " + pair.public_key + "\n";
  }
  // Written last: a directory with job.pub is complete.
  return WriteFileAtomically(*DefaultFileSystem(), dir + "/" + kAllowList, allow);
}

void SetProcessJobKeys(std::shared_ptr<const JobKeys> keys) {
  std::lock_guard<std::mutex> lock(process_keys_mutex);
  ProcessKeysSlot() = std::move(keys);
}

std::shared_ptr<const JobKeys> ProcessJobKeys() {
  std::lock_guard<std::mutex> lock(process_keys_mutex);
  return ProcessKeysSlot();
}

}  // namespace mtps
