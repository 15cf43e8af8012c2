// MemoryPlan: what a job's sparse tables will cost on the servers and the workers, from
// the job spec and the distinct keys expected per table: bytes per row by part, bytes
// per server for S servers, servers needed under a per-server budget. mtps-plan prints it.
//
//   PlanInput input{.servers = 4, .shards = 4, .budget_bytes = 64ull << 30};
//   input.tables.push_back({.table = "user", .distinct_keys = 50'000'000});
//   StatusOr<MemoryPlan> plan = PlanMemory(job, input);
//   std::cout << PlanText(*plan);          // or PlanJson(*plan)
//
// Server bytes come from RowLayout (row_layout.h), the code EmbeddingTable allocates
// with: each of a server's `shards` threads holds its own part of every table (slab
// chunks filled slot by slot, a RowIndex grown step by step, an admission sketch), so
// the plan adds those per shard. It predicts resident memory (what the process grows
// by): the last slab chunk counts only its touched pages. Keys go to servers by jump
// hash, which balances only in expectation: a server holds Binomial(N, 1/S) keys, so
// the per-server figure that sizes a job is the mean plus kBalanceSigmas standard
// deviations. capacity_rows / capacity_bytes bound the rows of each server (the servers
// split neither further). Worker bytes are an upper bound per batch (no duplicate keys
// removed): keys, pulled rows and gradients in fp32, labels and dense features, times
// the batches in flight (training.prefetch + 1).
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "protocol/job_spec.h"
#include "base/status.h"
#include "ps/row_layout.h"

namespace mtps::ps {

inline constexpr double kBalanceSigmas = 3.0;

struct TableKeys {
  std::string table;
  int64_t distinct_keys = -1;       // required, >= 0
  double keys_per_record = -1;      // < 0: one per sparse field of the table
};

struct PlanInput {
  std::vector<TableKeys> tables;    // tables of the spec left out hold no rows
  int servers = 1;
  int shards = 4;                   // mtps-server --threads
  uint64_t budget_bytes = 0;        // per server; 0 = no servers-needed answer
  double headroom = 0.2;            // fraction of the budget kept free
  uint64_t server_base_bytes = 0;   // RSS of an idle server (code, threads, buffers)
};

// One row's bytes by part, at the planned number of rows (index and slab overhead vary
// with it).
struct RowCost {
  double weights = 0;
  double state = 0;
  double metadata = 0;   // key, last step, frequency, update count, alignment padding
  double index = 0;      // RowIndex entries at its load
  double slab = 0;       // chunk page rounding and untouched-page slack, per row
  double sketch = 0;     // admission sketch, per row
  double total() const { return weights + state + metadata + index + slab + sketch; }
};

struct TablePlan {
  std::string name;
  int dim = 0;
  Precision precision = Precision::kFp32;
  OptimizerSpec::Type optimizer = OptimizerSpec::Type::kAdagrad;
  RowLayout layout;
  uint64_t distinct_keys = 0;
  uint64_t server_row_capacity = 0;  // 0 = unbounded
  double rows_per_server = 0;        // mean, after the cap
  double rows_per_server_max = 0;    // mean + kBalanceSigmas sd, after the cap
  RowCost per_row;
  uint64_t bytes_per_server = 0;     // at the mean
  uint64_t bytes_per_server_max = 0; // at the max
  uint64_t worker_bytes_per_batch = 0;
};

struct MemoryPlan {
  int servers = 1;
  int shards = 4;
  std::vector<TablePlan> tables;
  uint64_t server_base_bytes = 0;
  uint64_t bytes_per_server = 0;      // base + tables at the mean
  uint64_t bytes_per_server_max = 0;  // base + tables at the max
  uint64_t budget_bytes = 0;
  double headroom = 0;
  int servers_needed = 0;             // 0: no budget given; -1: no count fits
  uint64_t worker_bytes_per_batch = 0;   // all tables + labels + dense
  uint64_t worker_bytes_in_flight = 0;   // times (prefetch + 1)
};

// The resident bytes one server's part of `spec` takes holding `server_rows` rows split
// over `shards` shard threads (the cap applied).
uint64_t ServerTableBytes(const TableSpec& spec, double server_rows, int shards);

// INVALID_ARGUMENT for an unknown table, negative keys, servers/shards < 1, or a
// headroom outside [0, 1); NOT_FOUND never (data files are mtps-plan's business).
StatusOr<MemoryPlan> PlanMemory(const JobSpec& job, const PlanInput& input);

std::string PlanText(const MemoryPlan& plan);
std::string PlanJson(const MemoryPlan& plan);

}  // namespace mtps::ps
