// MemoryPlan arithmetic over RowLayout, and its text and JSON renderings.
#include "ps/memory_plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "ps/row_index.h"

namespace mtps::ps {
namespace {

constexpr int kMaxServersConsidered = 1 << 16;

struct ServerRows {
  double mean = 0;
  double max = 0;
};

// Rows one of `servers` servers holds for `distinct` keys under jump hashing, capped.
ServerRows RowsPerServer(uint64_t distinct, int servers, uint64_t server_cap) {
  const double n = static_cast<double>(distinct);
  const double p = 1.0 / servers;
  ServerRows rows;
  rows.mean = n * p;
  rows.max = std::min(n, rows.mean + kBalanceSigmas * std::sqrt(n * p * (1.0 - p)));
  if (server_cap > 0) {
    rows.mean = std::min(rows.mean, static_cast<double>(server_cap));
    rows.max = std::min(rows.max, static_cast<double>(server_cap));
  }
  return rows;
}

uint64_t ShardRows(const TableSpec& spec, double server_rows, int shards) {
  const uint64_t cap = ShardRowCapacity(spec, static_cast<uint32_t>(shards));
  const double per_shard = std::max(0.0, server_rows) / shards;
  return std::min<uint64_t>(cap, static_cast<uint64_t>(std::llround(per_shard)));
}

std::string Mib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MiB", bytes / (1 << 20));
  return buf;
}

std::string Fixed(double v, int digits = 1) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

}  // namespace

uint64_t ServerTableBytes(const TableSpec& spec, double server_rows, int shards) {
  const RowLayout layout = RowLayoutFor(spec);
  const uint64_t rows = ShardRows(spec, server_rows, shards);
  const uint64_t sketch =
      AdmissionSketchBytes(spec, ShardRowLimit(spec, static_cast<uint32_t>(shards)));
  const uint64_t per_shard = ResidentSlabBytes(layout, rows) + RowIndex::BytesFor(rows) + sketch;
  return per_shard * static_cast<uint64_t>(shards);
}

StatusOr<MemoryPlan> PlanMemory(const JobSpec& job, const PlanInput& input) {
  if (input.servers < 1) {
    return InvalidArgument("servers must be >= 1, got " + std::to_string(input.servers));
  }
  if (input.shards < 1 || input.shards > 256) {
    return InvalidArgument("shards must be in [1, 256], got " + std::to_string(input.shards));
  }
  if (!(input.headroom >= 0 && input.headroom < 1)) {
    return InvalidArgument("headroom must be in [0, 1), got " + Fixed(input.headroom, 3));
  }
  std::map<std::string, const TableKeys*> keys_of;
  for (const TableKeys& t : input.tables) {
    if (job.FindTable(t.table) == nullptr) {
      std::string known;
      for (const TableSpec& s : job.tables) known += (known.empty() ? "" : ", ") + s.name;
      return InvalidArgument("unknown table '" + t.table + "' (the job spec has: " + known + ")");
    }
    if (t.distinct_keys < 0) {
      return InvalidArgument("table '" + t.table + "': distinct keys must be >= 0, got " +
                             std::to_string(t.distinct_keys));
    }
    if (!keys_of.emplace(t.table, &t).second) {
      return InvalidArgument("table '" + t.table + "' given twice");
    }
  }

  MemoryPlan plan;
  plan.servers = input.servers;
  plan.shards = input.shards;
  plan.server_base_bytes = input.server_base_bytes;
  plan.budget_bytes = input.budget_bytes;
  plan.headroom = input.headroom;
  const uint64_t batch = static_cast<uint64_t>(job.training.batch_size);
  for (const TableSpec& spec : job.tables) {
    TablePlan t;
    t.name = spec.name;
    t.dim = spec.dim;
    t.precision = spec.precision;
    t.optimizer = spec.optimizer.type;
    t.layout = RowLayoutFor(spec);
    const uint64_t shard_cap = ShardRowCapacity(spec, static_cast<uint32_t>(input.shards));
    if (shard_cap == 0) {
      return InvalidArgument("table '" + spec.name + "': capacity_bytes " +
                             std::to_string(spec.capacity_bytes) + " over " +
                             std::to_string(input.shards) + " shard(s) holds no row of " +
                             std::to_string(t.layout.slot_bytes) + " bytes");
    }
    if (spec.capacity_rows > 0 || spec.capacity_bytes > 0) {
      t.server_row_capacity = shard_cap * static_cast<uint64_t>(input.shards);
    }
    auto it = keys_of.find(spec.name);
    t.distinct_keys = it == keys_of.end() ? 0 : static_cast<uint64_t>(it->second->distinct_keys);
    const ServerRows rows = RowsPerServer(t.distinct_keys, input.servers, t.server_row_capacity);
    t.rows_per_server = rows.mean;
    t.rows_per_server_max = rows.max;
    t.bytes_per_server = ServerTableBytes(spec, rows.mean, input.shards);
    t.bytes_per_server_max = ServerTableBytes(spec, rows.max, input.shards);

    // The row's parts at the mean: fixed by the layout, then the shared structures.
    t.per_row.weights = static_cast<double>(t.layout.weight_bytes);
    t.per_row.state = sizeof(float) * static_cast<double>(t.layout.state_floats);
    t.per_row.metadata = static_cast<double>(RowLayout::kMetaBytes + t.layout.padding_bytes());
    const uint64_t shard_rows = ShardRows(spec, rows.mean, input.shards);
    if (shard_rows > 0) {
      const double r = static_cast<double>(shard_rows);
      t.per_row.index = static_cast<double>(RowIndex::BytesFor(shard_rows)) / r;
      t.per_row.slab = static_cast<double>(ResidentSlabBytes(t.layout, shard_rows)) / r -
                       static_cast<double>(t.layout.slot_bytes);
      t.per_row.sketch = static_cast<double>(AdmissionSketchBytes(
                             spec, ShardRowLimit(spec, static_cast<uint32_t>(input.shards)))) / r;
    }

    double keys_per_record = 0;
    for (const SparseFieldSpec& f : job.sparse_fields) keys_per_record += f.table == spec.name;
    if (it != keys_of.end() && it->second->keys_per_record >= 0) {
      keys_per_record = it->second->keys_per_record;
    }
    const uint64_t keys = static_cast<uint64_t>(std::ceil(keys_per_record * batch));
    const uint64_t unique = std::min(keys, std::max<uint64_t>(t.distinct_keys, keys > 0));
    // Per key: the key and its index into the unique keys; per unique key: the key, the
    // pulled row and the gradient row in fp32.
    t.worker_bytes_per_batch = keys * (8 + 4) + unique * (8 + 2 * sizeof(float) * spec.dim);
    plan.tables.push_back(t);
    plan.bytes_per_server += t.bytes_per_server;
    plan.bytes_per_server_max += t.bytes_per_server_max;
    plan.worker_bytes_per_batch += t.worker_bytes_per_batch;
  }
  plan.bytes_per_server += plan.server_base_bytes;
  plan.bytes_per_server_max += plan.server_base_bytes;
  plan.worker_bytes_per_batch +=
      batch * (sizeof(float) * (job.tasks.size() + job.dense_fields.size()) +
               sizeof(int32_t) * job.sparse_fields.size());
  plan.worker_bytes_in_flight =
      plan.worker_bytes_per_batch * static_cast<uint64_t>(job.training.prefetch + 1);

  if (input.budget_bytes > 0) {
    const double usable = static_cast<double>(input.budget_bytes) * (1.0 - input.headroom);
    plan.servers_needed = -1;
    for (int s = 1; s <= kMaxServersConsidered; ++s) {
      double need = static_cast<double>(plan.server_base_bytes);
      for (size_t i = 0; i < job.tables.size(); ++i) {
        const TablePlan& t = plan.tables[i];
        const ServerRows rows = RowsPerServer(t.distinct_keys, s, t.server_row_capacity);
        need += static_cast<double>(ServerTableBytes(job.tables[i], rows.max, input.shards));
      }
      if (need <= usable) {
        plan.servers_needed = s;
        break;
      }
    }
  }
  return plan;
}

std::string PlanText(const MemoryPlan& plan) {
  std::string out;
  out += "servers " + std::to_string(plan.servers) + ", " + std::to_string(plan.shards) +
         " shard threads each\n\n";
  out += "table      dim  prec  optimizer  keys          rows/server  bytes/row: weights state"
         " meta index slab sketch = total   per server (mean / +3sd)\n";
  for (const TablePlan& t : plan.tables) {
    char line[512];
    std::snprintf(line, sizeof(line),
                  "%-10s %4d  %-4s  %-9s  %-12llu  %-11.0f  %9.1f %5.1f %4.1f %5.1f %4.1f %6.2f"
                  " = %5.1f   %s / %s%s\n",
                  t.name.c_str(), t.dim, PrecisionName(t.precision),
                  OptimizerTypeName(t.optimizer), static_cast<unsigned long long>(t.distinct_keys),
                  t.rows_per_server, t.per_row.weights, t.per_row.state, t.per_row.metadata,
                  t.per_row.index, t.per_row.slab, t.per_row.sketch, t.per_row.total(),
                  Mib(static_cast<double>(t.bytes_per_server)).c_str(),
                  Mib(static_cast<double>(t.bytes_per_server_max)).c_str(),
                  t.server_row_capacity > 0
                      ? ("  (capped at " + std::to_string(t.server_row_capacity) + " rows)").c_str()
                      : "");
    out += line;
  }
  out += "\nper server: " + Mib(static_cast<double>(plan.bytes_per_server)) + " mean, " +
         Mib(static_cast<double>(plan.bytes_per_server_max)) + " with jump-hash imbalance (+" +
         Fixed(kBalanceSigmas, 0) + " sd), incl. " +
         Mib(static_cast<double>(plan.server_base_bytes)) + " process base\n";
  if (plan.budget_bytes > 0) {
    out += "budget " + Mib(static_cast<double>(plan.budget_bytes)) + " per server, " +
           Fixed(plan.headroom * 100, 0) + "% headroom: ";
    out += plan.servers_needed > 0
               ? std::to_string(plan.servers_needed) + " server(s) needed\n"
               : "no number of servers fits (a capped table or the base alone exceeds it)\n";
  }
  out += "worker: " + Mib(static_cast<double>(plan.worker_bytes_per_batch)) +
         " per batch (upper bound), " + Mib(static_cast<double>(plan.worker_bytes_in_flight)) +
         " with the prefetched batches\n";
  return out;
}

std::string PlanJson(const MemoryPlan& plan) {
  auto num = [](double v) { return Fixed(v, 3); };
  auto u64 = [](uint64_t v) { return std::to_string(v); };
  std::string out = "{\n";
  out += "  \"servers\": " + std::to_string(plan.servers) + ",\n";
  out += "  \"shards\": " + std::to_string(plan.shards) + ",\n";
  out += "  \"tables\": [";
  for (size_t i = 0; i < plan.tables.size(); ++i) {
    const TablePlan& t = plan.tables[i];
    out += i == 0 ? "\n" : ",\n";
    out += "    {\"name\": \"" + t.name + "\", \"dim\": " + std::to_string(t.dim) +
           ", \"precision\": \"" + PrecisionName(t.precision) + "\", \"optimizer\": \"" +
           OptimizerTypeName(t.optimizer) + "\", \"distinct_keys\": " + u64(t.distinct_keys) +
           ", \"server_row_capacity\": " + u64(t.server_row_capacity) +
           ", \"slot_bytes\": " + u64(t.layout.slot_bytes) +
           ", \"rows_per_server\": " + num(t.rows_per_server) +
           ", \"rows_per_server_max\": " + num(t.rows_per_server_max) +
           ", \"bytes_per_row\": {\"weights\": " + num(t.per_row.weights) +
           ", \"optimizer_state\": " + num(t.per_row.state) +
           ", \"metadata\": " + num(t.per_row.metadata) + ", \"index\": " + num(t.per_row.index) +
           ", \"slab\": " + num(t.per_row.slab) + ", \"sketch\": " + num(t.per_row.sketch) +
           ", \"total\": " + num(t.per_row.total()) + "}" +
           ", \"bytes_per_server\": " + u64(t.bytes_per_server) +
           ", \"bytes_per_server_max\": " + u64(t.bytes_per_server_max) +
           ", \"worker_bytes_per_batch\": " + u64(t.worker_bytes_per_batch) + "}";
  }
  out += "\n  ],\n";
  out += "  \"server_base_bytes\": " + u64(plan.server_base_bytes) + ",\n";
  out += "  \"bytes_per_server\": " + u64(plan.bytes_per_server) + ",\n";
  out += "  \"bytes_per_server_max\": " + u64(plan.bytes_per_server_max) + ",\n";
  out += "  \"budget_bytes\": " + u64(plan.budget_bytes) + ",\n";
  out += "  \"headroom\": " + num(plan.headroom) + ",\n";
  out += "  \"servers_needed\": " + std::to_string(plan.servers_needed) + ",\n";
  out += "  \"worker_bytes_per_batch\": " + u64(plan.worker_bytes_per_batch) + ",\n";
  out += "  \"worker_bytes_in_flight\": " + u64(plan.worker_bytes_in_flight) + "\n";
  out += "}\n";
  return out;
}

}  // namespace mtps::ps
