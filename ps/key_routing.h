// KeyRouting: splits one request's keys by owning server (jump hash), drops duplicates,
// and remembers each unique key's original position so answers can be scattered back.
//
//   KeyRouting routing;
//   routing.Build(keys, num_servers);                 // reuses its buffers
//   for (int s = 0; s < num_servers; ++s)
//     for (uint32_t pos : routing.positions(s)) ...   // slot j of server s <- keys[pos]
//   for (auto [pos, first] : routing.duplicates()) ...// keys[pos] == keys[first]
//
// A unique key's slot at its server is its rank among that server's unique keys in
// order of first appearance, so a server's answer rows come back in slot order.
// Not thread-safe: one routing per operation in flight.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace mtps::ps {

class KeyRouting {
 public:
  struct Duplicate {
    uint32_t position;        // where the repeated key stands in the caller's keys
    uint32_t first_position;  // where it stood first (that one is routed)
  };

  // Routes `keys` (at most 2^32 - 2 of them) over `num_servers` >= 1. With
  // `keys_unique` the caller promises no key repeats, and none is looked for.
  void Build(std::span<const uint64_t> keys, int32_t num_servers, bool keys_unique = false);

  int32_t num_servers() const { return num_servers_; }
  size_t num_keys() const { return num_keys_; }
  // True when every key is unique and goes to the one server in the caller's order, so
  // that slots [first, first + count) are the caller's keys [first, first + count): the
  // common case, routed without touching the keys.
  bool in_order() const { return in_order_; }
  size_t num_unique() const { return positions_.size(); }
  size_t unique_count(int32_t server) const {
    return offsets_[server + 1] - offsets_[server];
  }
  // Original positions of the unique keys owned by `server`, in slot order.
  std::span<const uint32_t> positions(int32_t server) const {
    return {positions_.data() + offsets_[server], unique_count(server)};
  }
  std::span<const Duplicate> duplicates() const { return duplicates_; }
  // Server and slot of the key at `position`; for a duplicate, those of its first.
  int32_t server_of(size_t position) const {
    return in_order_ ? 0 : server_of_[position];
  }
  uint32_t slot_of(size_t position) const {
    return in_order_ ? static_cast<uint32_t>(position) : slot_of_[position];
  }

 private:
  int32_t num_servers_ = 0;
  size_t num_keys_ = 0;
  bool in_order_ = false;
  size_t iota_prefix_ = 0;  // positions_[i] == i for i below this (kept across builds)
  std::vector<int32_t> server_of_;
  std::vector<uint32_t> slot_of_;
  std::vector<uint32_t> positions_;  // grouped by server, slot order within a group
  std::vector<size_t> offsets_;      // num_servers + 1 group bounds into positions_
  std::vector<Duplicate> duplicates_;
  std::vector<uint32_t> seen_;       // open addressing: position + 1 of a key, 0 = empty
};

}  // namespace mtps::ps
