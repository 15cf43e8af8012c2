// fuzz_seeds: writes the seed corpus of every fuzz target from real inputs: a generated
// data set (.mtb and CSV), job specs, checkpoint files of the fuzz job's tables and dense
// blocks with their manifest, a chain of a whole checkpoint and two increments as a server
// writes it, and the wire requests a worker sends.
//
//   fuzz_seeds OUT_DIR     # OUT_DIR/{wire,mtb,csv,job_spec,checkpoint}/...
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "benchmarks/fuzz/fuzz_inputs.h"
#include "protocol/transport.h"
#include "ps/checkpoint.h"
#include "base/checkpoint_manifest.h"
#include "ps/dense_block.h"
#include "ps/embedding_table.h"
#include "ps/sharded_table.h"

namespace mtps::fuzz {
namespace {

namespace fs = std::filesystem;

void WriteSeed(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The data set in both formats: its files become the .mtb and CSV seeds, its spec a
// job-spec seed.
Status DataSeeds(const fs::path& out) {
  const fs::path scratch = out / "tmp-data";
  for (DataSpec::Format format : {DataSpec::Format::kMtb, DataSpec::Format::kCsv}) {
    const bool mtb = format == DataSpec::Format::kMtb;
    DatagenOptions options = SeedDataOptions(format);
    options.out_dir = (scratch / (mtb ? "mtb" : "csv")).string();
    MTPS_ASSIGN_OR_RETURN(DatagenReport report, GenerateDataset(options));
    std::vector<std::string> files = report.train_files;
    files.insert(files.end(), report.eval_files.begin(), report.eval_files.end());
    fs::create_directories(out / (mtb ? "mtb" : "csv"));
    for (const std::string& f : files) {
      fs::copy_file(f, out / (mtb ? "mtb" : "csv") / fs::path(f).filename(),
                    fs::copy_options::overwrite_existing);
    }
    WriteSeed(out / "job_spec" / (std::string("datagen-") + (mtb ? "mtb" : "csv") + ".yaml"),
              ReadAll(fs::path(options.out_dir) / "job.yaml"));
  }
  fs::remove_all(scratch);
  return Status::OK();
}

// The fuzz server's job, and variants that reach the parser's other branches.
void JobSpecSeeds(const fs::path& out) {
  WriteSeed(out / "job_spec" / "server.yaml", kServerJobYaml);
  WriteSeed(out / "job_spec" / "full.yaml", R"(
name: full
data:
  format: csv
  train: [a.csv, "dir/*.csv"]
  eval: [e.csv]
  on_bad_record: skip
  max_bad_fraction: 0.1
  reader_threads: 2
  shuffle: false
features:
  sparse:
    - {name: user, column: user_id, table: user, missing: error}
    - {name: tags, table: item, multi_valued: true, pooling: mean}
  dense:
    - {name: price, default: -1.5}
    - {name: age, column: user_age, missing: error}
tables:
  - name: user
    dim: 16
    precision: bf16
    optimizer: {type: adam, lr: 0.01, beta1: 0.8, beta2: 0.99, epsilon: 1e-6, l2: 0.001}
    init: {type: uniform, range: 0.05}
    seed: 42
    capacity_rows: 1000000
    capacity_bytes: 1073741824
    admit_min_count: 3
    ttl_steps: 10000
  - name: item
    dim: 8
    optimizer: {type: ftrl, alpha: 0.05, beta: 1.0, l1: 0.1, ftrl_l2: 0.1}
    init: {type: zeros}
model:
  type: ple
  expert_units: [32, 16]
  tower_units: [16]
  ple_levels: 2
  ple_shared_experts: 1
  ple_task_experts: 2
  dropout: 0.1
tasks:
  - {name: ctr, label: click, loss: bce, weight: 1.0}
  - {name: rating, label: stars, loss: mse, weight: 0.5}
training:
  batch_size: 256
  epochs: 2
  seed: 9
  mode: sync
  max_staleness: 2
  prefetch: 1
  task_weighting: uncertainty
  dense_optimizer: {type: adamw, lr: 0.001, weight_decay: 0.01}
  eval_batch_size: 1024
  max_gradient_abs: 1000
checkpoint: {dir: /tmp/ckpt, interval_steps: 100, keep: 3}
)");
}

// Table files of each fuzz table (rows made by pulls and moved by a push), the dense file
// and a manifest listing them.
Status CheckpointSeeds(const fs::path& out) {
  const JobSpec job = ServerJob();
  std::unique_ptr<FileSystem> posix = NewPosixFileSystem();
  const fs::path dir = out / "checkpoint";
  fs::create_directories(dir);
  CheckpointManifest manifest{.id = 3, .step = 120};
  for (const TableSpec& spec : job.tables) {
    MTPS_ASSIGN_OR_RETURN(auto table, ps::EmbeddingTable::Create(spec));
    std::vector<uint64_t> keys = {1, 2, 3, 0xFFFFFFFFFFFFFFFFull, 77};
    std::vector<float> values(keys.size() * spec.dim);
    for (int pass = 0; pass < 2; ++pass) table->Pull(keys.data(), keys.size(), values.data(), 5, true);
    std::vector<float> grads(keys.size() * spec.dim, 0.25f);
    MTPS_RETURN_IF_ERROR(table->Push(keys.data(), grads.data(), keys.size(), 6).status());
    MTPS_ASSIGN_OR_RETURN(CheckpointFileInfo info,
                          ps::SaveTableParts(*posix, ps::TableCheckpointPath(dir.string(), 0, spec.name),
                                             {table.get()}));
    manifest.files.push_back(info);
  }
  ps::DenseBlockStore dense(job.training.dense_optimizer);
  const std::vector<float> a = {0.5f, -1.0f, 2.0f}, b = {1.0f};
  MTPS_RETURN_IF_ERROR(dense.Init(0, "bottom/w", a.data(), a.size()));
  MTPS_RETURN_IF_ERROR(dense.Init(7, "tower/b", b.data(), b.size()));
  MTPS_RETURN_IF_ERROR(dense.Push(0, a.data(), a.size()));
  MTPS_ASSIGN_OR_RETURN(CheckpointFileInfo info,
                        ps::SaveDenseCheckpoint(*posix, ps::DenseCheckpointPath(dir.string(), 0), dense));
  manifest.files.push_back(info);
  return WriteCheckpointManifest(*posix, ManifestPath(dir.string()), manifest);
}

// Checkpoints 1 (whole), 2 and 3 (increments over the one before) of every fuzz table and
// the dense blocks, with their manifests, as one server writes them between pushes; packed
// as chain inputs (fuzz_inputs.h): as written, with the manifest fix-up flag, and the first
// two checkpoints only.
Status CheckpointChainSeeds(const fs::path& out) {
  const JobSpec job = ServerJob();
  std::unique_ptr<FileSystem> posix = NewPosixFileSystem();
  const fs::path scratch = out / "tmp-chain";
  MTPS_ASSIGN_OR_RETURN(auto tables, ps::ShardedTables::Create(job.tables, 2));
  ps::DenseBlockStore dense(job.training.dense_optimizer);
  const std::vector<float> block = {0.5f, -1.0f, 2.0f};
  MTPS_RETURN_IF_ERROR(dense.Init(3, "bottom/w", block.data(), block.size()));
  for (uint64_t id = 1; id <= kChainCheckpoints; ++id) {
    // Some rows change in every checkpoint, two are new in each.
    std::vector<uint64_t> keys = {1, 2, 3, 0xFFFFFFFFFFFFFFFFull, 77};
    if (id > 1) keys.resize(2);
    keys.push_back(1000 * id);
    keys.push_back(1000 * id + 1);
    for (uint32_t t = 0; t < job.tables.size(); ++t) {
      std::vector<float> values(keys.size() * job.tables[t].dim);
      for (int pass = 0; pass < 2; ++pass)  // twice: the shop table admits at the second sighting
        MTPS_RETURN_IF_ERROR(tables->Pull(t, keys.data(), keys.size(), values.data(), 10 * id, true));
      const std::vector<float> grads(values.size(), 0.25f * static_cast<float>(id));
      MTPS_RETURN_IF_ERROR(tables->Push(t, keys.data(), grads.data(), keys.size(), 10 * id).status());
    }
    MTPS_RETURN_IF_ERROR(dense.Push(3, block.data(), block.size()));
    const std::string dir = CheckpointDir(scratch.string(), id);
    MTPS_RETURN_IF_ERROR(posix->CreateDirs(dir));
    CheckpointManifest manifest{.id = id, .step = 100 * id};
    for (uint32_t t = 0; t < job.tables.size(); ++t) {
      const std::string path = ps::TableCheckpointPath(dir, 0, job.tables[t].name);
      MTPS_ASSIGN_OR_RETURN(CheckpointFileInfo info,
                            id == 1 ? ps::SaveTableCheckpoint(*posix, path, *tables, t)
                                    : ps::SaveTableIncrement(*posix, path, *tables, t, id, id - 1));
      manifest.files.push_back(info);
    }
    MTPS_ASSIGN_OR_RETURN(CheckpointFileInfo info,
                          ps::SaveDenseCheckpoint(*posix, ps::DenseCheckpointPath(dir, 0), dense));
    manifest.files.push_back(info);
    manifest.workers = {{0, 0, 64 * id, 100 * id}, {1, 0, 60 * id, 99 * id}};
    MTPS_RETURN_IF_ERROR(WriteCheckpointManifest(*posix, ManifestPath(dir), manifest));
  }
  const std::vector<std::string> names = ChainFileNames(job);
  auto pack = [&](uint8_t flags, int checkpoints) {
    std::string input = std::string(kChainMagic) + static_cast<char>(flags);
    for (size_t f = 0; f < names.size(); ++f) {
      if (std::stoi(names[f].substr(5, 10)) > checkpoints) continue;
      // names[f] is "ckpt-<10 digits>/<file>", the same as CheckpointDir's.
      AppendChainEntry(static_cast<uint8_t>(f), ReadAll(scratch / names[f]), &input);
    }
    return input;
  };
  WriteSeed(out / "checkpoint" / "chain", pack(0, kChainCheckpoints));
  WriteSeed(out / "checkpoint" / "chain-fixed", pack(kChainFixManifests, kChainCheckpoints));
  WriteSeed(out / "checkpoint" / "chain-two", pack(kChainFixManifests, 2));
  fs::remove_all(scratch);
  return Status::OK();
}

// One request as the fuzz target's framing holds it.
std::string Frames(const OutgoingMessage& message) {
  std::vector<std::string> frames;
  for (const zmq::message_t& f : message.ToFrames()) frames.emplace_back(f.data<char>(), f.size());
  std::string out;
  AppendWireMessage(frames, &out);
  return out;
}

template <typename T>
capnp::Data::Reader AsData(const std::vector<T>& v) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(v.data()), v.size() * sizeof(T));
}

// What workers send a server: pulls, async and sync pushes (a sync step's two pushes in
// one input), dense init/pull/push, stats; a request big enough for several frames; and
// the scheduler's checkpoint begin and commit.
void WireSeeds(const fs::path& out) {
  const JobSpec job = ServerJob();
  uint64_t request_id = 1;
  auto request = [&](int32_t rank = 0) {
    return NewEnvelope(EnvelopeHeader{.job_id = job.hash, .request_id = request_id++,
                                      .role = proto::Role::WORKER, .rank = rank});
  };
  const std::vector<uint64_t> keys = {1, 2, 3, 5, 8, 13};
  auto pull = [&](uint32_t table, const std::vector<uint64_t>& k) {
    auto m = request();
    auto p = m->body().initSparsePull();
    p.setTableId(table);
    p.setKeys(AsData(k));
    p.setStep(4);
    return Frames(*m);
  };
  auto push = [&](uint32_t table, const std::vector<uint64_t>& k, bool sync, int32_t rank) {
    auto m = request(rank);
    auto p = m->body().initSparsePush();
    p.setTableId(table);
    p.setKeys(AsData(k));
    std::vector<float> grads(k.size() * job.tables[table].dim, 0.125f);
    p.setGradients(AsData(grads));
    p.setStep(4);
    p.setSync(sync);
    p.setWorkerRank(rank);
    p.setNumWorkers(sync ? 2 : 0);
    return Frames(*m);
  };
  for (uint32_t t = 0; t < job.tables.size(); ++t) {
    const std::string n = std::to_string(t);
    WriteSeed(out / "wire" / ("pull-" + n), pull(t, keys));
    WriteSeed(out / "wire" / ("push-" + n), push(t, keys, false, 0));
    WriteSeed(out / "wire" / ("pull-push-" + n), pull(t, keys) + push(t, keys, false, 0));
    WriteSeed(out / "wire" / ("sync-push-" + n), push(t, keys, true, 0) + push(t, keys, true, 1));
  }
  std::vector<uint64_t> many(96);
  for (size_t i = 0; i < many.size(); ++i) many[i] = i * 7919;
  WriteSeed(out / "wire" / "push-frames", push(0, many, false, 1));  // over one segment

  auto dense_blocks = [&](auto list) {
    const std::vector<float> v = {0.5f, 1.5f, -2.0f};
    for (uint32_t i = 0; i < 2; ++i) {
      list[i].setId(i * 3);
      list[i].setName(i == 0 ? "bottom/w" : "tower/b");
      list[i].setValues(AsData(v));
    }
  };
  auto init = request();
  dense_blocks(init->body().initDenseInit().initBlocks(2));
  auto dense_pull = request();
  auto ids = dense_pull->body().initDensePull().initBlockIds(2);
  ids.set(0, 0);
  ids.set(1, 3);
  auto dense_push = request();
  auto dp = dense_push->body().initDensePush();
  dense_blocks(dp.initBlocks(2));
  dp.setStep(2);
  auto stats = request();
  stats->body().initStats();
  WriteSeed(out / "wire" / "dense", Frames(*init) + Frames(*dense_pull) + Frames(*dense_push));
  WriteSeed(out / "wire" / "stats", Frames(*stats));

  // What the scheduler sends around a checkpoint: begin (with a directory the server must
  // ignore) after some rows exist, then commit.
  auto control = [&] {
    return NewEnvelope(EnvelopeHeader{.job_id = job.hash, .request_id = request_id++,
                                      .role = proto::Role::SCHEDULER, .rank = 0});
  };
  auto begin = control();
  auto b = begin->body().initCheckpointBegin();
  b.setCheckpointId(7);
  b.setDir("/not/where/the/server/writes");
  b.setStep(4);
  auto commit = control();
  commit->body().initCheckpointCommit().setCheckpointId(7);
  WriteSeed(out / "wire" / "checkpoint", push(0, keys, false, 0) + Frames(*begin) + Frames(*commit));
}

}  // namespace
}  // namespace mtps::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path out = argv[1];
  mtps::fuzz::JobSpecSeeds(out);
  mtps::fuzz::WireSeeds(out);
  for (mtps::Status s : {mtps::fuzz::DataSeeds(out), mtps::fuzz::CheckpointSeeds(out),
                         mtps::fuzz::CheckpointChainSeeds(out)}) {
    if (!s.ok()) {
      std::fprintf(stderr, "fuzz_seeds: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  return 0;
}
