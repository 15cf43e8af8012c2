// The values a parameter store's callers pass: pull and push options and dense block
// views. Free of ZeroMQ and Cap'n Proto, so code that only trains (LocalTrainer) needs neither.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace mtps::ps {

struct PullOptions {
  uint64_t step = 0;
  bool count_as_sighting = true;  // eval pulls pass false: they do not count for admission
  // The caller promises that no key repeats (a batch's unique keys): the client skips
  // finding repeats. A repeated key is then pulled twice, which is harmless.
  bool keys_unique = false;
};

struct PushOptions {
  uint64_t step = 0;
  // The caller promises that no key repeats (a batch's unique keys): the client skips
  // summing repeats. A repeated key would then be updated twice by its server.
  bool keys_unique = false;
  bool sync = false;           // the servers apply once all num_workers pushes of `step` are in
  int32_t worker_rank = -1;
  uint32_t num_workers = 1;
  // Dense async pushes: the gradients are the sum of this many steps, applied by the
  // servers as that many optimizer steps of their mean (training.dense_sync_every).
  uint32_t dense_steps = 1;
  // Sync: which send of this worker's part of `step` this is (0 the first; a resend after
  // a lost answer counts up, and the servers keep only the latest attempt's part).
  uint32_t attempt = 0;
};

// A dense block to create (values = initial values) or to push (values = gradients).
struct DenseBlockIn {
  uint32_t id;
  std::string_view name;  // used by DenseInit only
  std::span<const float> values;
};
// Where a pulled dense block goes; its size must equal the block's.
struct DenseBlockOut {
  uint32_t id;
  std::span<float> values;
};

}  // namespace mtps::ps
