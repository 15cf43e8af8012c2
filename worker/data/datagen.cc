// GenerateDataset: plans train/eval files over row ranges, generates them on threads in
// either format, computes the eval split's oracle metrics and writes oracle.json and
// job.yaml beside the data.
#include "worker/data/datagen.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "base/atomic_file.h"
#include "models/metrics.h"
#include "worker/data/mtb_writer.h"

namespace mtps {
namespace {

// Field order of the generated spec (GeneratedJobYaml); the encoder relies on it.
enum SparseField {
  kUser, kItem, kCategory, kShop, kPriceBucket, kRecentItems, kNumSparse,
  kHistItems = kNumSparse, kHistCategories
};
enum DenseField { kPosition, kPrice, kUserActivity, kNumDense };
constexpr const char* kSparseNames[] = {"user_id", "item_id", "category", "shop", "price_bucket", "recent_items"};
constexpr const char* kDenseNames[] = {"position", "price", "user_activity"};
constexpr int64_t kChunkRows = 4096;

void AppendNumber(uint64_t v, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}
// Shortest text that reads back as the same float, so CSV and .mtb carry equal values.
void AppendFloat(float v, std::string* out) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}
uint64_t IdKey(const FeatureMap& map, int field, uint64_t id) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, id);
  return map.Key(field, std::string_view(buf, r.ptr - buf));
}

std::string FileName(const std::string& dir, const char* split, int index, DataSpec::Format format) {
  char name[64];
  std::snprintf(name, sizeof name, "%s-%05d.%s", split, index, format == DataSpec::Format::kMtb ? "mtb" : "csv");
  return (std::filesystem::path(dir) / name).string();
}

struct FileJob {
  std::string path;
  int64_t begin = 0, end = 0;
  bool eval = false;
};

struct FileStats {
  int64_t rows = 0, clicks = 0, purchases = 0;
  // Eval only: the truth and labels, for the oracle.
  std::vector<float> p_click, p_purchase, click, purchase;
  double rating_squared_error = 0, rating_mean_sum = 0;
};

Status GenerateFile(const EcommerceWorld& world, const ImpressionEncoder& encoder, const FeatureMap& map,
                    const DatagenOptions& options, const FileJob& job, FileStats* stats) {
  Impression imp;
  auto observe = [&](const Impression& i) {
    ++stats->rows;
    stats->clicks += i.click;
    stats->purchases += i.purchase;
    if (job.eval) {
      stats->p_click.push_back(static_cast<float>(i.p_click));
      stats->p_purchase.push_back(static_cast<float>(i.p_click * i.p_buy));
      stats->click.push_back(i.click ? 1.0f : 0.0f);
      stats->purchase.push_back(i.purchase ? 1.0f : 0.0f);
      const double e = static_cast<double>(i.rating) - i.rating_mean;
      stats->rating_squared_error += e * e;
    }
  };
  if (options.format == DataSpec::Format::kMtb) {
    MTPS_ASSIGN_OR_RETURN(std::unique_ptr<MtbWriter> writer,
                          MtbWriter::Create(job.path, MtbSchema::Of(map), options.row_group_rows,
                                            options.env));
    ColumnBlock block(map.num_tasks(), map.num_dense(), map.num_sparse());
    ColumnView view;
    for (int64_t r = job.begin; r < job.end;) {
      block.Clear();
      const int64_t stop = std::min(job.end, r + kChunkRows);
      for (; r < stop; ++r) {
        world.Sample(static_cast<uint64_t>(r), &imp);
        encoder.Append(imp, &block);
        observe(imp);
      }
      ColumnView::Assign(block, &view);
      MTPS_RETURN_IF_ERROR(writer->Append(view));
    }
    return writer->Close();
  }
  MTPS_ASSIGN_OR_RETURN(AtomicFileWriter file, AtomicFileWriter::Open(*options.env.fs, job.path));
  std::string text = encoder.CsvHeader();
  for (int64_t r = job.begin; r < job.end; ++r) {
    world.Sample(static_cast<uint64_t>(r), &imp);
    encoder.AppendCsv(imp, &text);
    observe(imp);
    if (text.size() > (1 << 20) || r + 1 == job.end) {
      MTPS_RETURN_IF_ERROR(file.Append(text.data(), text.size()));
      text.clear();
    }
  }
  MTPS_RETURN_IF_ERROR(file.Append(text.data(), text.size()));
  return file.Commit();
}

// The oracle's metrics come from models/metrics, the same code that scores the models.
double Auc(const std::vector<float>& p, const std::vector<float>& y) {
  StatusOr<double> auc = models::ExactAuc(p, y);
  return auc.ok() ? *auc : std::nan("");  // one class only: undefined, written as null
}
double LogLoss(const std::vector<float>& p, const std::vector<float>& y) {
  StatusOr<double> loss = models::LogLoss(p, y);
  return loss.ok() ? *loss : std::nan("");
}

std::string Json(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6f", v);
  return buf;
}

std::string OracleJson(const DatagenOptions& o, const DatagenReport& r) {
  const WorldOptions& w = o.world;
  std::ostringstream s;
  s << "{\n"
    << "  \"generator\": \"mtps-datagen\",\n"
    << "  \"seed\": " << w.seed << ",\n"
    << "  \"rows\": {\"train\": " << r.train_rows << ", \"eval\": " << r.eval_rows << "},\n"
    << "  \"world\": {\"users\": " << w.users << ", \"items\": " << w.items << ", \"categories\": " << w.categories
    << ", \"shops\": " << w.shops << ", \"price_buckets\": " << w.price_buckets << "},\n"
    << "  \"funnel\": {\"target_ctr\": " << Json(w.ctr) << ", \"target_conversion\": " << Json(w.conversion)
    << ", \"train_ctr\": " << Json(r.train_ctr) << ", \"train_conversion\": " << Json(r.train_conversion)
    << ", \"eval_ctr\": " << Json(r.eval_ctr) << ", \"eval_conversion\": " << Json(r.eval_conversion)
    << ",\n             \"note\": \"conversion = P(purchase | click); a purchase never happens without a click\"},\n"
    << "  \"metric_note\": \"oracle_* = the metric of the TRUE probabilities (expected values) on the eval split: the "
       "best any model can do on it\",\n"
    << "  \"tasks\": {\n"
    << "    \"ctr\": {\"label\": \"click\", \"loss\": \"bce\", \"positive_rate\": " << Json(r.ctr.positive_rate)
    << ", \"oracle_auc\": " << Json(r.ctr.oracle_auc) << ", \"oracle_logloss\": " << Json(r.ctr.oracle_logloss)
    << "},\n"
    << "    \"cvr\": {\"label\": \"purchase\", \"loss\": \"bce\", \"positive_rate\": " << Json(r.cvr.positive_rate)
    << ", \"oracle_auc\": " << Json(r.cvr.oracle_auc) << ", \"oracle_logloss\": " << Json(r.cvr.oracle_logloss)
    << ",\n            \"definition\": \"CTCVR: purchase = click AND buy, predicted over all impressions; true "
       "probability p(click) * p(buy | click)\"}";
  if (o.rating) {
    s << ",\n    \"rating\": {\"label\": \"rating\", \"loss\": \"mse\", \"oracle_mse\": " << Json(r.rating.oracle_mse)
      << "}";
  }
  s << "\n  }\n}\n";
  return s.str();
}

}  // namespace

std::string GeneratedJobYaml(const DatagenOptions& o) {
  const std::string dir = std::filesystem::absolute(o.out_dir).lexically_normal().string();
  const char* ext = o.format == DataSpec::Format::kMtb ? "mtb" : "csv";
  std::ostringstream y;
  y << "# Job spec written by mtps-datagen for the data set in " << dir << ".\n"
    << "# Tasks: ctr (label click) and cvr (label purchase = click AND buy, predicted over all\n"
    << "# impressions, i.e. CTCVR). oracle.json holds the best achievable AUC of each task.\n"
    << "name: datagen-" << o.world.seed << "\n"
    << "data:\n"
    << "  format: " << ext << "\n"
    << "  train: [\"" << dir << "/train-*." << ext << "\"]\n"
    << "  eval: [\"" << dir << "/eval-*." << ext << "\"]\n"
    << "  oracle: \"" << dir << "/oracle.json\"\n"
    << "  on_bad_record: stop\n"
    << "  shuffle: true\n"
    << "features:\n"
    << "  sparse:\n"
    << "    - {name: user_id, table: user}\n"
    << "    - {name: item_id, table: item}\n"
    << "    - {name: category, table: category}\n"
    << "    - {name: shop, table: shop}\n"
    << "    - {name: price_bucket, table: price}\n"
    << "    - {name: recent_items, table: item, multi_valued: true, pooling: mean}\n";
  if (o.world.history_length > 0) {
    // The session's items, most recent last, hashed as item_id: one row per item for both.
    y << "    - {name: hist_items, table: item, key_field: item_id, multi_valued: true, pooling: sequence,"
      << " max_length: " << o.world.history_length << "}\n";
    // Their categories, aligned with hist_items and hashed as category: DIN's cate_id
    // sequence, compared with the shown item's category through the same rows.
    y << "    - {name: hist_cats, table: category, key_field: category, multi_valued: true,"
      << " pooling: sequence, max_length: " << o.world.history_length << "}\n";
  }
  y << "  dense:\n"
    << "    - {name: position}\n"
    << "    - {name: price}\n"
    << "    - {name: user_activity}\n"
    << "tables:\n";
  for (const char* t : {"user", "item", "category", "shop", "price"}) {
    y << "  - {name: " << t << ", dim: 16, optimizer: {type: adagrad, lr: 0.2}, init: {type: normal, stddev: 0.01}}\n";
  }
  y << "model: {type: mmoe, experts: 4, expert_units: [64], tower_units: [32]";
  // The best configuration measured on the sequence world (benchmarks/sequence_encoders.sh,
  // seeds 7 and 8): DIN over [item ⊕ category] per history item with recency positions and
  // softmax weights (the click reads the most recent item of the target's category: a
  // softmax can pick it, raw weights sum every match), a wider scorer, and the dot
  // interaction, which hands the trunk <history encoding, target> and the other products an
  // MLP learns poorly.
  if (o.world.history_length > 0) {
    y << ",\n        interaction: {kind: dot},\n"
      << "        sequence: {field: hist_items, target: item_id, encoder: din, din_positions: true,\n"
      << "                   weights_softmax: true, attention_hidden: [64],\n"
      << "                   side: [{field: hist_cats, target: category}]}";
  }
  y << "}\n"
    << "tasks:\n"
    << "  - {name: ctr, label: click, loss: bce, weight: 1.0}\n"
    << "  - {name: cvr, label: purchase, loss: bce, weight: 1.0}   # CTCVR: click AND buy\n";
  if (o.rating) y << "  - {name: rating, label: rating, loss: mse, weight: 0.2}\n";
  y << "training:\n"
    << "  batch_size: 512\n"
    << "  epochs: 8\n"
    << "  # After each epoch the eval split is scored; the run stops once the mean AUC has not\n"
    << "  # risen by 0.0005 for two epochs, and keeps and reports its best epoch.\n"
    << "  early_stopping: {metric: auc, task: mean, patience: 2, min_delta: 0.0005}\n"
    << "  seed: " << o.world.seed << "\n"
    << "  mode: async\n"
    << "  dense_optimizer: {type: adam, lr: 0.001}\n"
    << "  eval_batch_size: 4096\n";
  return y.str();
}

std::string ImpressionEncoder::CsvHeader() const {
  std::string h = "click,purchase";
  if (rating_) h += ",rating";
  for (const char* d : kDenseNames) h += std::string(",") + d;
  for (const char* s : kSparseNames) h += std::string(",") + s;
  if (sequence_) h += ",hist_items,hist_cats";
  return h + "\n";
}

void ImpressionEncoder::AppendCsv(const Impression& imp, std::string* out) const {
  out->push_back(imp.click ? '1' : '0');
  out->append(imp.purchase ? ",1," : ",0,");
  if (rating_) {
    AppendFloat(imp.rating, out);
    out->push_back(',');
  }
  AppendNumber(imp.position, out);
  out->push_back(',');
  AppendFloat(imp.price, out);
  out->push_back(',');
  AppendFloat(imp.user_activity, out);
  for (uint32_t id : {imp.user, imp.item, imp.category, imp.shop, imp.price_bucket}) {
    out->push_back(',');
    AppendNumber(id, out);
  }
  out->push_back(',');
  for (int i = 0; i < imp.num_recent; ++i) {
    if (i > 0) out->push_back('|');
    AppendNumber(imp.recent[i], out);
  }
  if (sequence_) {
    out->push_back(',');
    for (size_t i = 0; i < imp.history.size(); ++i) {
      if (i > 0) out->push_back('|');
      AppendNumber(imp.history[i], out);
    }
    out->push_back(',');
    for (size_t i = 0; i < imp.history_categories.size(); ++i) {
      if (i > 0) out->push_back('|');
      AppendNumber(imp.history_categories[i], out);
    }
  }
  out->push_back('\n');
}

void ImpressionEncoder::Append(const Impression& imp, ColumnBlock* block) const {
  block->labels.push_back(imp.click ? 1.0f : 0.0f);
  block->labels.push_back(imp.purchase ? 1.0f : 0.0f);
  if (rating_) block->labels.push_back(imp.rating);
  block->dense.push_back(static_cast<float>(imp.position));
  block->dense.push_back(imp.price);
  block->dense.push_back(imp.user_activity);
  const uint32_t ids[] = {imp.user, imp.item, imp.category, imp.shop, imp.price_bucket};
  for (int f = 0; f < kRecentItems; ++f) {
    ColumnBlock::Sparse& s = block->sparse[f];
    s.keys.push_back(IdKey(map_, f, ids[f]));
    s.offsets.push_back(static_cast<uint32_t>(s.keys.size()));
  }
  ColumnBlock::Sparse& recent = block->sparse[kRecentItems];
  if (imp.num_recent == 0) recent.keys.push_back(map_.sparse(kRecentItems).missing_key);
  for (int i = 0; i < imp.num_recent; ++i) recent.keys.push_back(IdKey(map_, kRecentItems, imp.recent[i]));
  recent.offsets.push_back(static_cast<uint32_t>(recent.keys.size()));
  if (sequence_) {
    ColumnBlock::Sparse& hist = block->sparse[kHistItems];
    for (uint32_t id : imp.history) hist.keys.push_back(IdKey(map_, kHistItems, id));
    hist.offsets.push_back(static_cast<uint32_t>(hist.keys.size()));
    ColumnBlock::Sparse& cats = block->sparse[kHistCategories];
    for (uint32_t id : imp.history_categories) cats.keys.push_back(IdKey(map_, kHistCategories, id));
    cats.offsets.push_back(static_cast<uint32_t>(cats.keys.size()));
  }
  ++block->rows;
}

StatusOr<DatagenReport> GenerateDataset(const DatagenOptions& o) {
  const WorldOptions& w = o.world;
  if (o.out_dir.empty()) return InvalidArgument("datagen: --out is required");
  if (o.rows <= 0) return InvalidArgument("datagen: rows must be > 0, got " + std::to_string(o.rows));
  if (!(o.eval_fraction >= 0 && o.eval_fraction < 1)) {
    return InvalidArgument("datagen: eval_fraction must be in [0, 1), got " + std::to_string(o.eval_fraction));
  }
  if (o.train_files <= 0 || o.threads <= 0 || o.row_group_rows <= 0) {
    return InvalidArgument("datagen: train_files, threads and row_group_rows must be > 0");
  }
  if (w.users <= 0 || w.items <= 0 || w.categories <= 0 || w.shops <= 0 || w.price_buckets <= 0 ||
      w.positions <= 0 || w.factor_dim <= 0 || w.max_recent < 0 || w.max_recent > 255) {
    return InvalidArgument("datagen: users, items, categories, shops, price_buckets, positions and factor_dim "
                           "must be > 0, max_recent in [0, 255]");
  }
  if (w.history_length < 0 || w.history_length > 1000) {
    return InvalidArgument("datagen: history_length must be in [0, 1000], got " + std::to_string(w.history_length));
  }
  if (!(w.ctr > 0 && w.ctr < 1) || !(w.conversion > 0 && w.conversion < 1)) {
    return InvalidArgument("datagen: ctr and conversion must be in (0, 1), got " + std::to_string(w.ctr) + " and " +
                           std::to_string(w.conversion));
  }
  std::error_code ec;
  std::filesystem::create_directories(o.out_dir, ec);
  if (ec) return NotFound(o.out_dir + ": cannot create directory: " + ec.message());

  const std::string yaml = GeneratedJobYaml(o);
  MTPS_ASSIGN_OR_RETURN(JobSpec spec, ParseJobSpec(yaml, "generated job.yaml"));
  MTPS_ASSIGN_OR_RETURN(FeatureMap map, FeatureMap::Create(spec));
  for (int f = 0; f < kNumSparse; ++f) {
    if (map.sparse(f).name != kSparseNames[f]) return Internal("generated spec: sparse field order changed");
  }
  const EcommerceWorld world(w);
  const ImpressionEncoder encoder(map, o.rating, w.history_length > 0);

  DatagenReport report;
  report.eval_rows = std::llround(static_cast<double>(o.rows) * o.eval_fraction);
  report.train_rows = o.rows - report.eval_rows;
  // The eval file collects the truth for the oracle; it goes first so it never trails alone.
  std::vector<FileJob> jobs;
  if (report.eval_rows > 0) {
    jobs.push_back({FileName(o.out_dir, "eval", 0, o.format), report.train_rows, o.rows, true});
    report.eval_files.push_back(jobs.back().path);
  }
  for (int f = 0; f < o.train_files; ++f) {
    jobs.push_back({FileName(o.out_dir, "train", f, o.format), report.train_rows * f / o.train_files,
                    report.train_rows * (f + 1) / o.train_files, false});
    report.train_files.push_back(jobs.back().path);
  }
  std::vector<FileStats> stats(jobs.size());
  std::vector<Status> status(jobs.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t j; (j = next.fetch_add(1)) < jobs.size();) {
      status[j] = GenerateFile(world, encoder, map, o, jobs[j], &stats[j]);
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < std::min<int>(o.threads, static_cast<int>(jobs.size())); ++t) threads.emplace_back(work);
  for (std::thread& t : threads) t.join();
  for (const Status& s : status) MTPS_RETURN_IF_ERROR(s);

  int64_t clicks = 0, purchases = 0;
  for (size_t j = 0; j < jobs.size(); ++j) {
    if (jobs[j].eval) continue;
    clicks += stats[j].clicks;
    purchases += stats[j].purchases;
  }
  report.train_ctr = report.train_rows > 0 ? static_cast<double>(clicks) / report.train_rows : 0;
  report.train_conversion = clicks > 0 ? static_cast<double>(purchases) / clicks : 0;
  report.ctr = {"ctr", "click"};
  report.cvr = {"cvr", "purchase"};
  report.rating = {"rating", "rating"};
  if (report.eval_rows > 0) {
    const FileStats& e = stats.front();
    report.eval_ctr = static_cast<double>(e.clicks) / e.rows;
    report.eval_conversion = e.clicks > 0 ? static_cast<double>(e.purchases) / e.clicks : 0;
    report.ctr.positive_rate = report.eval_ctr;
    report.ctr.oracle_auc = Auc(e.p_click, e.click);
    report.ctr.oracle_logloss = LogLoss(e.p_click, e.click);
    report.cvr.positive_rate = static_cast<double>(e.purchases) / e.rows;
    report.cvr.oracle_auc = Auc(e.p_purchase, e.purchase);
    report.cvr.oracle_logloss = LogLoss(e.p_purchase, e.purchase);
    report.rating.oracle_mse = e.rating_squared_error / e.rows;
  }
  MTPS_RETURN_IF_ERROR(
      WriteFileAtomically(*o.env.fs, (std::filesystem::path(o.out_dir) / "job.yaml").string(), yaml));
  MTPS_RETURN_IF_ERROR(WriteFileAtomically(
      *o.env.fs, (std::filesystem::path(o.out_dir) / "oracle.json").string(), OracleJson(o, report)));
  return report;
}

}  // namespace mtps
