// mtps-plan: sizes a job's parameter servers before it runs — bytes per row by part,
// bytes per server for --servers, servers needed under --budget_gib, worker bytes per batch.
//
//   mtps-plan --config job.yaml --keys user=50000000,item=2000000 --servers 8
//   mtps-plan --config job.yaml --count_keys --budget_gib 64 --json
//
// --count_keys reads the spec's training files once and counts each table's distinct
// keys with a HyperLogLog (about 0.8% standard error) and its keys per record; --keys
// given as well overrides the counts of the tables it names. Exit status: 0 with a plan,
// 2 for bad input (unknown table, negative or malformed counts, missing data files).
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <gflags/gflags.h>

#include "protocol/job_spec.h"
#include "protocol/program_flags.h"
#include "ps/hyperloglog.h"
#include "ps/memory_plan.h"
#include "worker/training_data.h"

DEFINE_string(config, "", "job spec (YAML)");
DEFINE_string(keys, "", "distinct keys per table: table=N,table=N (N may end in k, m or g)");
DEFINE_bool(count_keys, false, "count distinct keys per table in the training files (one pass)");
DEFINE_string(data, "", "training files to count instead of the spec's data.train (comma list)");
DEFINE_int64(max_records, 0, "count at most this many records (0 = all)");
DEFINE_int32(servers, 1, "parameter servers");
DEFINE_int32(threads, 4, "shard threads per server (mtps-server --threads)");
DEFINE_double(budget_gib, 0, "memory budget per server in GiB (0 = do not size the job)");
DEFINE_double(headroom, 0.2, "fraction of the budget kept free");
DEFINE_double(server_base_mib, 24,
              "resident memory of an idle mtps-server (code, threads, message buffers)");
DEFINE_bool(json, false, "print JSON instead of text");

namespace {

using mtps::Status;
using mtps::StatusOr;

int Fail(const Status& status) {
  std::fprintf(stderr, "mtps-plan: %s\n", status.ToString().c_str());
  return 2;
}

// "12", "3.5m", "2g" -> count; negative or malformed values are refused.
StatusOr<int64_t> ParseCount(const std::string& table, const std::string& text) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  double scale = 1;
  const std::string suffix = end ? std::string(end) : "";
  if (suffix == "k" || suffix == "K") scale = 1e3;
  else if (suffix == "m" || suffix == "M") scale = 1e6;
  else if (suffix == "g" || suffix == "G") scale = 1e9;
  else if (!suffix.empty() || end == text.c_str()) {
    return mtps::InvalidArgument("--keys " + table + "=" + text + ": not a number");
  }
  if (value < 0) {
    return mtps::InvalidArgument("table '" + table + "': distinct keys must be >= 0, got " + text);
  }
  return static_cast<int64_t>(value * scale + 0.5);
}

Status ParseKeysFlag(std::map<std::string, mtps::ps::TableKeys>* out) {
  std::string rest = FLAGS_keys;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string item = rest.substr(0, comma);
    rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return mtps::InvalidArgument("--keys: expected table=N, got '" + item + "'");
    }
    const std::string table = item.substr(0, eq);
    MTPS_ASSIGN_OR_RETURN(int64_t count, ParseCount(table, item.substr(eq + 1)));
    (*out)[table].table = table;
    (*out)[table].distinct_keys = count;
  }
  return Status::OK();
}

// One pass over the training files: distinct keys (HyperLogLog) and keys per record.
Status CountKeys(mtps::JobSpec job, std::map<std::string, mtps::ps::TableKeys>* out) {
  if (!FLAGS_data.empty()) {
    job.data.train.clear();
    std::string rest = FLAGS_data;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      job.data.train.push_back(rest.substr(0, comma));
      rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
    }
  }
  job.data.eval.clear();
  job.data.shuffle = false;
  MTPS_ASSIGN_OR_RETURN(auto data, mtps::TrainingData::Open(job));
  MTPS_ASSIGN_OR_RETURN(auto source, data->TrainEpoch(0, 0, 1));
  std::vector<mtps::ps::HyperLogLog> sketches(job.tables.size());
  std::vector<uint64_t> keys(job.tables.size(), 0);
  std::vector<int> table_of_field;
  for (const mtps::SparseFieldSpec& f : job.sparse_fields) {
    table_of_field.push_back(job.TableIndex(f.table));
  }
  uint64_t records = 0;
  for (;;) {
    MTPS_ASSIGN_OR_RETURN(mtps::Batch* batch, source->Next());
    if (batch == nullptr) break;
    for (size_t t = 0; t < batch->tables.size() && t < sketches.size(); ++t) {
      sketches[t].AddMany(batch->tables[t].unique_keys.data(), batch->tables[t].unique_keys.size());
    }
    for (size_t f = 0; f < batch->fields.size() && f < table_of_field.size(); ++f) {
      if (table_of_field[f] >= 0) keys[table_of_field[f]] += batch->fields[f].keys.size();
    }
    records += static_cast<uint64_t>(batch->size);
    source->Release(batch);
    if (FLAGS_max_records > 0 && records >= static_cast<uint64_t>(FLAGS_max_records)) break;
  }
  if (records == 0) return mtps::FailedPrecondition("the training files hold no record");
  for (size_t t = 0; t < job.tables.size(); ++t) {
    mtps::ps::TableKeys& k = (*out)[job.tables[t].name];
    k.table = job.tables[t].name;
    k.distinct_keys = static_cast<int64_t>(sketches[t].Estimate() + 0.5);
    k.keys_per_record = static_cast<double>(keys[t]) / static_cast<double>(records);
  }
  std::fprintf(stderr, "mtps-plan: counted %llu records (distinct keys +-%.1f%%)\n",
               static_cast<unsigned long long>(records), 100 * sketches[0].RelativeError());
  return Status::OK();
}

}  // namespace

int main(int argc, char** argv) {
  mtps::ParseProgramFlags(&argc, &argv,
                          "mtps-plan --config job.yaml (--keys table=N,... | --count_keys) "
                          "[--servers N] [--budget_gib G] [--json]");
  if (FLAGS_config.empty()) return Fail(mtps::InvalidArgument("--config is required"));
  StatusOr<mtps::JobSpec> job = mtps::LoadJobSpec(FLAGS_config);
  if (!job.ok()) return Fail(job.status());

  std::map<std::string, mtps::ps::TableKeys> keys;
  if (FLAGS_count_keys) {
    if (Status s = CountKeys(*job, &keys); !s.ok()) return Fail(s.WithContext("counting keys"));
  }
  std::map<std::string, mtps::ps::TableKeys> given;
  if (Status s = ParseKeysFlag(&given); !s.ok()) return Fail(s);
  for (auto& [name, k] : given) {
    const double per_record = keys.count(name) ? keys[name].keys_per_record : -1;
    keys[name] = k;
    keys[name].keys_per_record = per_record;
  }
  for (const mtps::TableSpec& t : job->tables) {
    if (!keys.count(t.name)) {
      return Fail(mtps::InvalidArgument("no distinct key count for table '" + t.name +
                                        "': give --keys " + t.name + "=N or --count_keys"));
    }
  }

  mtps::ps::PlanInput input;
  for (auto& [name, k] : keys) input.tables.push_back(k);
  input.servers = FLAGS_servers;
  input.shards = FLAGS_threads;
  if (FLAGS_budget_gib < 0) return Fail(mtps::InvalidArgument("--budget_gib must be >= 0"));
  input.budget_bytes = static_cast<uint64_t>(FLAGS_budget_gib * (1ull << 30));
  input.headroom = FLAGS_headroom;
  input.server_base_bytes = static_cast<uint64_t>(FLAGS_server_base_mib * (1 << 20));
  StatusOr<mtps::ps::MemoryPlan> plan = mtps::ps::PlanMemory(*job, input);
  if (!plan.ok()) return Fail(plan.status());
  const std::string text = FLAGS_json ? mtps::ps::PlanJson(*plan) : mtps::ps::PlanText(*plan);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}
