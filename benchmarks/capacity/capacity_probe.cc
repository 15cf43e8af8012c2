// mtps-capacity-probe: one point of the capacity sweep on a running standalone server —
// loads each table's distinct keys (evicting where capped), measures the server's
// resident growth against the plan, then times pulls and pushes.
//
//   mtps-server --standalone --config job.yaml --threads 2 --port_file ports &
//   mtps-capacity-probe --config job.yaml --server tcp://127.0.0.1:PORT --server_pid PID
//       --shards 2 --keys user=80000,item=30000
//
// Prints one JSON object: per table the keys loaded, predicted and measured bytes (the
// planner's ServerTableBytes and the growth of the server's RssAnon), pull and push
// keys/s; then the totals (measured: the growth over loading all tables). Keys are
// random 64-bit values (seeded), loaded in batches with admission sightings; the timed
// pulls do not count as sightings.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gflags/gflags.h>

#include "protocol/job_spec.h"
#include "ps/client.h"
#include "ps/memory_plan.h"

DEFINE_string(config, "", "job spec (YAML) the server runs");
DEFINE_string(server, "", "the server's endpoint tcp://host:port");
DEFINE_int32(server_pid, 0, "the server's process id (same machine), to read its RssAnon");
DEFINE_int32(shards, 4, "the server's --threads");
DEFINE_string(keys, "", "distinct keys to load per table: table=N,...");
DEFINE_int32(batch, 4096, "keys per request");
DEFINE_int64(timed_keys, 200000, "keys pulled and pushed in the timed phase, per table");
DEFINE_uint64(seed, 1, "seed of the keys");

namespace {

using Clock = std::chrono::steady_clock;

uint64_t RssAnon(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("RssAnon:", 0) == 0) {
      uint64_t kib = 0;
      std::istringstream(line.substr(8)) >> kib;
      return kib * 1024;
    }
  }
  return 0;
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "mtps-capacity-probe: %s\n", what.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  auto job = mtps::LoadJobSpec(FLAGS_config);
  if (!job.ok()) return Fail(job.status().ToString());
  if (FLAGS_server_pid <= 0 || RssAnon(FLAGS_server_pid) == 0) {
    return Fail("--server_pid must name a running server on this machine");
  }
  std::map<std::string, uint64_t> keys_of;
  std::istringstream list(FLAGS_keys);
  for (std::string item; std::getline(list, item, ',');) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos) return Fail("--keys: expected table=N, got '" + item + "'");
    keys_of[item.substr(0, eq)] = std::stoull(item.substr(eq + 1));
  }
  auto client = mtps::ps::Client::Connect(
      {FLAGS_server}, {.transport = {.job_id = job->hash}, .timeout = std::chrono::seconds(60)});
  if (!client.ok()) return Fail(client.status().ToString());

  const size_t batch = static_cast<size_t>(FLAGS_batch);
  std::vector<uint64_t> keys(batch);
  std::vector<float> rows, grads;
  std::mt19937_64 rng(FLAGS_seed);
  // Warm-up: the server's message buffers at their largest on every handler and shard
  // thread, no rows made (pulls that are not sightings).
  for (int round = 0; round < 4; ++round) {
    for (size_t t = 0; t < job->tables.size(); ++t) {
      rows.resize(batch * job->tables[t].dim);
      for (uint64_t& k : keys) k = rng();
      auto s = (*client)->Pull(t, keys, job->tables[t].dim, rows.data(),
                               {.step = 1, .count_as_sighting = false});
      if (!s.ok()) return Fail(s.ToString());
    }
  }

  // Load every table; the total growth is the measured figure (per-table growths also
  // carry whatever the allocator did meanwhile, so they are noisier).
  const size_t num_tables = job->tables.size();
  std::vector<std::vector<uint64_t>> loaded(num_tables);
  std::vector<double> predicted(num_tables), measured(num_tables);
  std::vector<uint64_t> server_cap(num_tables);
  const uint64_t before_all = RssAnon(FLAGS_server_pid);
  for (size_t t = 0; t < num_tables; ++t) {
    const mtps::TableSpec& spec = job->tables[t];
    const uint64_t distinct = keys_of.count(spec.name) ? keys_of[spec.name] : 0;
    rows.resize(batch * spec.dim);
    loaded[t].reserve(distinct);
    const uint64_t before = RssAnon(FLAGS_server_pid);
    for (uint64_t done = 0; done < distinct; done += batch) {
      const size_t n = std::min<uint64_t>(batch, distinct - done);
      for (size_t i = 0; i < n; ++i) loaded[t].push_back(keys[i] = rng());
      auto s = (*client)->Pull(t, std::span(keys.data(), n), spec.dim, rows.data(),
                               {.step = 2, .count_as_sighting = true});
      if (!s.ok()) return Fail(s.ToString());
    }
    measured[t] = static_cast<double>(RssAnon(FLAGS_server_pid)) - static_cast<double>(before);
    const mtps::ps::PlanInput input{.tables = {{spec.name, static_cast<int64_t>(distinct)}},
                                    .servers = 1, .shards = FLAGS_shards};
    auto plan = mtps::ps::PlanMemory(*job, input);
    if (!plan.ok()) return Fail(plan.status().ToString());
    predicted[t] = static_cast<double>(plan->tables[t].bytes_per_server -
                                       mtps::ps::ServerTableBytes(spec, 0, FLAGS_shards));
    server_cap[t] = plan->tables[t].server_row_capacity;
  }
  const double measured_total =
      static_cast<double>(RssAnon(FLAGS_server_pid)) - static_cast<double>(before_all);
  double predicted_total = 0;
  for (double p : predicted) predicted_total += p;

  // Timed phase: pulls and pushes of the most recently loaded keys (present even in a
  // capped table).
  std::string tables_json;
  for (size_t t = 0; t < num_tables; ++t) {
    const int dim = job->tables[t].dim;
    rows.resize(batch * dim);
    grads.resize(batch * dim);
    const size_t pool = std::max<size_t>(1, std::min<size_t>(loaded[t].size(), 1 << 20));
    std::normal_distribution<float> normal(0.0f, 0.01f);
    for (float& g : grads) g = normal(rng);
    double pull_seconds = 0, push_seconds = 0;
    uint64_t timed = 0;
    for (uint64_t step = 3; timed < static_cast<uint64_t>(FLAGS_timed_keys); ++step) {
      for (size_t i = 0; i < batch; ++i) {
        keys[i] = loaded[t].empty() ? rng() : loaded[t][loaded[t].size() - 1 - rng() % pool];
      }
      auto t0 = Clock::now();
      auto s = (*client)->Pull(t, keys, dim, rows.data(), {.step = step, .count_as_sighting = false});
      auto t1 = Clock::now();
      auto r = (*client)->Push(t, keys, dim, grads.data(), {.step = step});
      auto t2 = Clock::now();
      if (!s.ok()) return Fail(s.ToString());
      if (!r.ok()) return Fail(r.status().ToString());
      pull_seconds += std::chrono::duration<double>(t1 - t0).count();
      push_seconds += std::chrono::duration<double>(t2 - t1).count();
      timed += batch;
    }
    char buf[512];
    std::snprintf(buf, sizeof(buf),
                  "%s{\"name\": \"%s\", \"loaded\": %zu, \"server_row_capacity\": %llu, "
                  "\"predicted_bytes\": %.0f, \"measured_bytes\": %.0f, "
                  "\"pull_keys_per_sec\": %.0f, \"push_keys_per_sec\": %.0f}",
                  t == 0 ? "" : ", ", job->tables[t].name.c_str(), loaded[t].size(),
                  static_cast<unsigned long long>(server_cap[t]), predicted[t], measured[t],
                  timed / pull_seconds, timed / push_seconds);
    tables_json += buf;
  }
  std::printf("{\"tables\": [%s], \"predicted_bytes\": %.0f, \"measured_bytes\": %.0f}\n",
              tables_json.c_str(), predicted_total, measured_total);
  return 0;
}
