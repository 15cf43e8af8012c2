// KeyRouting: one pass that finds each key's owner and slot and spots duplicates with a
// small open-addressing set of positions; a second pass groups positions by server.
#include "ps/key_routing.h"

#include <algorithm>
#include <bit>
#include <cassert>

#include "ps/jump_hash.h"

namespace mtps::ps {

void KeyRouting::Build(std::span<const uint64_t> keys, int32_t num_servers, bool keys_unique) {
  assert(num_servers >= 1);
  assert(keys.size() < UINT32_MAX);
  const size_t n = keys.size();
  num_servers_ = num_servers;
  num_keys_ = n;
  duplicates_.clear();
  offsets_.assign(static_cast<size_t>(num_servers) + 1, 0);

  in_order_ = keys_unique && num_servers == 1;
  if (in_order_) {
    // Positions are the identity; a pooled routing fills them once for its largest batch.
    if (positions_.size() < n) positions_.resize(n);
    for (size_t i = iota_prefix_; i < n; ++i) positions_[i] = static_cast<uint32_t>(i);
    iota_prefix_ = std::max(iota_prefix_, n);
    offsets_[1] = n;
    return;
  }
  iota_prefix_ = 0;
  server_of_.resize(n);
  slot_of_.resize(n);

  if (keys_unique) {
    for (size_t i = 0; i < n; ++i) {
      const int32_t server = num_servers == 1 ? 0 : JumpConsistentHash(keys[i], num_servers);
      server_of_[i] = server;
      slot_of_[i] = static_cast<uint32_t>(offsets_[server + 1]++);
    }
    for (int32_t s = 0; s < num_servers; ++s) offsets_[s + 1] += offsets_[s];
    positions_.resize(n);
    for (size_t i = 0; i < n; ++i)
      positions_[offsets_[server_of_[i]] + slot_of_[i]] = static_cast<uint32_t>(i);
    return;
  }

  // Load factor <= 1/2 keeps probes short; entries are 4 bytes so 100k keys fit in 1 MB.
  const size_t capacity = std::bit_ceil(std::max<size_t>(2 * n, 16));
  const int shift = 64 - std::countr_zero(capacity);
  const size_t mask = capacity - 1;
  seen_.assign(capacity, 0);

  for (size_t i = 0; i < n; ++i) {
    const uint64_t key = keys[i];
    // Fibonacci hashing: the top bits of key * 2^64/phi spread structured keys too.
    size_t h = static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> shift);
    for (;; h = (h + 1) & mask) {
      const uint32_t entry = seen_[h];
      if (entry == 0) {
        seen_[h] = static_cast<uint32_t>(i + 1);
        const int32_t server = num_servers == 1 ? 0 : JumpConsistentHash(key, num_servers);
        server_of_[i] = server;
        slot_of_[i] = static_cast<uint32_t>(offsets_[server + 1]++);
        break;
      }
      const uint32_t first = entry - 1;
      if (keys[first] == key) {
        server_of_[i] = server_of_[first];
        slot_of_[i] = slot_of_[first];
        duplicates_.push_back({static_cast<uint32_t>(i), first});
        break;
      }
    }
  }

  for (int32_t s = 0; s < num_servers; ++s) offsets_[s + 1] += offsets_[s];
  positions_.resize(offsets_[num_servers]);
  auto next_duplicate = duplicates_.begin();
  for (size_t i = 0; i < n; ++i) {
    if (next_duplicate != duplicates_.end() && next_duplicate->position == i) {
      ++next_duplicate;
      continue;
    }
    positions_[offsets_[server_of_[i]] + slot_of_[i]] = static_cast<uint32_t>(i);
  }
}

}  // namespace mtps::ps
