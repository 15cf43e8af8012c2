// BatchPipeline: sharding of units over workers, the per-epoch shuffled reading order, the
// reader thread that fills pooled batches, and the consumer's side of the bounded queue.
#include "worker/data/batch_pipeline.h"

#include <algorithm>

#include "worker/data/csv_reader.h"
#include "worker/data/random.h"

namespace mtps {
namespace {

constexpr int kBatchesHeldByConsumer = 4;

}  // namespace

PipelineOptions PipelineOptions::ForTraining(const JobSpec& spec, int rank, int num_workers) {
  PipelineOptions o;
  o.format = spec.data.format;
  o.on_bad_record = spec.data.on_bad_record;
  o.batch_size = spec.training.batch_size;
  o.epochs = spec.training.epochs;
  o.shuffle = spec.data.shuffle;
  o.shuffle_window_rows = spec.data.shuffle_window_rows;
  o.csv_delimiter = spec.data.csv_delimiter;
  o.seed = spec.training.seed;
  o.worker_rank = rank;
  o.num_workers = num_workers;
  o.queue_depth = std::max(2, spec.training.prefetch + 2);
  return o;
}

PipelineOptions PipelineOptions::ForEval(const JobSpec& spec, int rank, int num_workers) {
  PipelineOptions o = ForTraining(spec, rank, num_workers);
  o.batch_size = spec.training.eval_batch_size;
  o.epochs = 1;
  o.shuffle = false;
  return o;
}

BatchPipeline::BatchPipeline(const FeatureMap& map, std::vector<std::string> files, const PipelineOptions& options)
    : map_(map),
      files_(std::move(files)),
      options_(options),
      assembler_(std::make_unique<BatchAssembler>(map)),
      window_(map.num_tasks(), map.num_dense(), map.num_sparse()) {}

BatchPipeline::~BatchPipeline() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

StatusOr<std::unique_ptr<BatchPipeline>> BatchPipeline::Create(const FeatureMap& map, std::vector<std::string> files,
                                                               const PipelineOptions& options) {
  if (options.batch_size <= 0) return InvalidArgument("batch_size must be > 0, got " + std::to_string(options.batch_size));
  if (options.epochs <= 0) return InvalidArgument("epochs must be > 0, got " + std::to_string(options.epochs));
  if (options.num_workers <= 0 || options.worker_rank < 0 || options.worker_rank >= options.num_workers) {
    return InvalidArgument("worker rank " + std::to_string(options.worker_rank) + " is not in [0, " +
                           std::to_string(options.num_workers) + ")");
  }
  if (options.queue_depth <= 0 || options.shuffle_window_rows <= 0) {
    return InvalidArgument("queue_depth and shuffle_window_rows must be > 0");
  }
  if (files.empty()) return InvalidArgument("no input files");
  std::unique_ptr<BatchPipeline> p(new BatchPipeline(map, std::move(files), options));
  p->index_ = options.index;
  if (p->index_ == nullptr) {
    MTPS_ASSIGN_OR_RETURN(p->index_, InputIndex::Build(map, p->files_,
                                                       {.format = options.format,
                                                        .csv_delimiter = options.csv_delimiter,
                                                        .csv_chunk_records = options.csv_chunk_records}));
  }
  if (p->index_->files() != p->files_ || p->index_->options().format != options.format) {
    return InvalidArgument("the input index was built for other files or another format");
  }
  const std::vector<Unit>& all = p->index_->units();
  for (size_t u = 0; u < all.size(); ++u) {
    if (static_cast<int>(u % options.num_workers) == options.worker_rank) p->units_.push_back(all[u]);
  }
  p->csv_.resize(p->files_.size());
  p->pool_.resize(options.queue_depth + kBatchesHeldByConsumer);
  for (Batch& b : p->pool_) p->free_.push_back(&b);
  p->position_ = options.start;
  p->thread_ = std::thread([raw = p.get()] { raw->Run(); });
  return p;
}

std::vector<BatchPipeline::Unit> BatchPipeline::EpochUnits(uint32_t epoch) const {
  std::vector<Unit> units = units_;
  if (options_.shuffle) {
    SplitMix64 rng(Mix64(options_.seed) ^ Mix64(0x5EED0000ULL + epoch));
    rng.Shuffle(units.data(), units.size());
  }
  return units;
}

void BatchPipeline::Run() {
  Status status;
  for (uint32_t epoch = options_.start.epoch; epoch < static_cast<uint32_t>(options_.epochs); ++epoch) {
    status = ReadEpoch(epoch, epoch == options_.start.epoch ? options_.start.records : 0);
    if (!status.ok()) break;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  error_ = status;
  ready_.push_back(nullptr);
  cv_.notify_all();
}

Status BatchPipeline::ReadEpoch(uint32_t epoch, uint64_t skip) {
  reader_epoch_ = epoch;
  reader_records_ = skip;
  const std::vector<Unit> units = EpochUnits(epoch);
  ColumnView view;
  if (!options_.shuffle) {
    for (const Unit& unit : units) {
      if (unit.row_group >= 0) {
        MTPS_RETURN_IF_ERROR(MapRowGroup(unit, &view, &order_));
      } else {
        window_.Clear();
        MTPS_RETURN_IF_ERROR(LoadUnit(unit, &window_));
        ColumnView::Assign(window_, &view);
        order_.resize(static_cast<size_t>(window_.rows));
        for (size_t i = 0; i < order_.size(); ++i) order_[i] = static_cast<uint32_t>(i);
      }
      MTPS_RETURN_IF_ERROR(EmitAfter(view, order_, &skip));
    }
    return FlushPartial();
  }
  // Windows: consecutive units of the permuted list, as many as fit shuffle_window_rows
  // (at least one), their records permuted together.
  uint64_t window_index = 0;
  for (size_t next = 0; next < units.size(); ++window_index) {
    window_.Clear();
    int64_t planned = 0;
    do {
      planned += units[next].records;
      MTPS_RETURN_IF_ERROR(LoadUnit(units[next], &window_));
      ++next;
    } while (next < units.size() && planned + units[next].records <= options_.shuffle_window_rows);
    order_.resize(static_cast<size_t>(window_.rows));
    for (size_t i = 0; i < order_.size(); ++i) order_[i] = static_cast<uint32_t>(i);
    SplitMix64(Mix64(options_.seed ^ Mix64((uint64_t{epoch} << 32) ^ window_index ^ 0x3C6EF372FE94F82BULL)))
        .Shuffle(order_.data(), order_.size());
    ColumnView::Assign(window_, &view);
    MTPS_RETURN_IF_ERROR(EmitAfter(view, order_, &skip));
  }
  return FlushPartial();
}

Status BatchPipeline::EmitAfter(const ColumnView& view, const std::vector<uint32_t>& rows, uint64_t* skip) {
  const uint64_t drop = std::min<uint64_t>(*skip, rows.size());
  *skip -= drop;
  // In file order with no bad record, rows are 0..n-1: whole columns copy as blocks.
  if (!options_.shuffle && rows.size() == static_cast<size_t>(view.rows)) {
    return EmitRange(view, static_cast<int64_t>(drop), view.rows);
  }
  return Emit(view, rows.data() + drop, static_cast<int64_t>(rows.size() - drop));
}

void BatchPipeline::CountBad(uint64_t bad, const std::string& first) {
  if (bad == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (stats_.bad_records == 0) stats_.first_bad_record = first;
  stats_.bad_records += bad;
}

Status BatchPipeline::MapRowGroup(const Unit& unit, ColumnView* view, std::vector<uint32_t>* rows) {
  const MtbReader& reader = index_->mtb(unit.file);
  MTPS_RETURN_IF_ERROR(reader.ReadRowGroup(unit.row_group, index_->binding(unit.file), view));
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.bytes_read += reader.row_group_bytes(unit.row_group);
  }
  rows->clear();
  uint64_t bad = 0;
  std::string first;
  for (int64_t r = 0; r < view->rows; ++r) {
    bool good = true;
    for (int t = 0; t < map_.num_tasks() && good; ++t) {
      if (!map_.label(t).binary) continue;
      const float v = view->labels.base[r * view->labels.stride + view->labels.column[t]];
      if (v == 0.0f || v == 1.0f) continue;
      good = false;
      const std::string message = reader.path() + ": row group " + std::to_string(unit.row_group) + ", record " +
                                  std::to_string(r) + ": " + BinaryLabelError(map_.label(t), v);
      if (options_.on_bad_record == DataSpec::BadRecordPolicy::kStop) return InvalidArgument(message);
      if (bad == 0) first = message;
    }
    if (good) {
      rows->push_back(static_cast<uint32_t>(r));
    } else {
      ++bad;
    }
  }
  CountBad(bad, first);
  return Status::OK();
}

Status BatchPipeline::LoadUnit(const Unit& unit, ColumnBlock* block) {
  if (unit.row_group >= 0) {
    ColumnView view;
    std::vector<uint32_t> rows;
    MTPS_RETURN_IF_ERROR(MapRowGroup(unit, &view, &rows));
    // Runs of good records copy as blocks.
    for (size_t i = 0; i < rows.size();) {
      size_t j = i + 1;
      while (j < rows.size() && rows[j] == rows[j - 1] + 1) ++j;
      AppendRows(view, rows[i], rows[j - 1] + 1, block);
      i = j;
    }
    return Status::OK();
  }
  std::unique_ptr<CsvReader>& reader = csv_[unit.file];
  if (reader == nullptr) {
    MTPS_ASSIGN_OR_RETURN(reader, CsvReader::Open(files_[unit.file], map_, options_.on_bad_record,
                                                  options_.csv_delimiter));
  }
  const int64_t bad_before = reader->bad_records();
  const int64_t bytes_before = reader->bytes_read();
  MTPS_RETURN_IF_ERROR(reader->Seek(unit.offset, unit.line));
  StatusOr<int64_t> n = reader->Read(unit.records, block, unit.records);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.bytes_read += static_cast<uint64_t>(reader->bytes_read() - bytes_before);
  }
  const int64_t bad = reader->bad_records() - bad_before;
  // The reader keeps its first bad record only; later chunks report theirs by count.
  CountBad(static_cast<uint64_t>(bad), reader->first_bad_record());
  return n.status();
}

Status BatchPipeline::EmitRange(const ColumnView& view, int64_t begin, int64_t end) {
  return EmitImpl(view, nullptr, begin, end);
}

Status BatchPipeline::Emit(const ColumnView& view, const uint32_t* rows, int64_t n) {
  return EmitImpl(view, rows, 0, n);
}

// Fills batches from rows[begin..end) (or the record range [begin, end) when `rows` is null).
Status BatchPipeline::EmitImpl(const ColumnView& view, const uint32_t* rows, int64_t begin, int64_t end) {
  const int64_t batch_size = options_.batch_size;
  int64_t i = begin;
  while (i < end) {
    if (current_ == nullptr) {
      current_ = AcquireFree();
      if (current_ == nullptr) return Cancelled("pipeline stopped");
      assembler_->Begin(current_);
      current_->epoch = reader_epoch_;
      current_->first_record = reader_records_;
    }
    const int64_t take = std::min(end - i, batch_size - current_->size);
    if (rows == nullptr) {
      assembler_->AppendRange(view, i, i + take, current_);
    } else {
      assembler_->AppendRows(view, rows + i, take, current_);
    }
    i += take;
    reader_records_ += static_cast<uint64_t>(take);
    if (current_->size == batch_size) {
      assembler_->Finish(current_);
      PushReady(current_);
      current_ = nullptr;
    }
  }
  return Status::OK();
}

Status BatchPipeline::FlushPartial() {
  if (current_ != nullptr && current_->size > 0) {
    assembler_->Finish(current_);
    PushReady(current_);
    current_ = nullptr;
  }
  return Status::OK();
}

Batch* BatchPipeline::AcquireFree() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return stopping_ || !free_.empty(); });
  if (stopping_) return nullptr;
  Batch* b = free_.front();
  free_.pop_front();
  return b;
}

void BatchPipeline::PushReady(Batch* batch) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ready_.push_back(batch);
    stats_.batches += 1;
    stats_.records += static_cast<uint64_t>(batch->size);
  }
  cv_.notify_all();
}

StatusOr<Batch*> BatchPipeline::Next() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !ready_.empty(); });
  Batch* b = ready_.front();
  if (b == nullptr) {  // the end marker stays, so every later call sees the end too
    if (!error_.ok()) return error_;
    return static_cast<Batch*>(nullptr);
  }
  ready_.pop_front();
  position_.epoch = b->epoch;
  position_.records = b->first_record + static_cast<uint64_t>(b->size);
  return b;
}

void BatchPipeline::Release(Batch* batch) {
  if (batch == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(batch);
  }
  cv_.notify_all();
}

PipelinePosition BatchPipeline::position() const {
  std::lock_guard<std::mutex> lock(mu_);
  return position_;
}

PipelineStats BatchPipeline::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace mtps
