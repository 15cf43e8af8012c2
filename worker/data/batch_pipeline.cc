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
    : map_(map), files_(std::move(files)), options_(options), assembler_(std::make_unique<BatchAssembler>(map)) {}

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
  if (options.queue_depth <= 0 || options.csv_window_rows <= 0) {
    return InvalidArgument("queue_depth and csv_window_rows must be > 0");
  }
  if (files.empty()) return InvalidArgument("no input files");
  std::unique_ptr<BatchPipeline> p(new BatchPipeline(map, std::move(files), options));
  MTPS_RETURN_IF_ERROR(p->OpenFiles());
  p->pool_.resize(options.queue_depth + kBatchesHeldByConsumer);
  for (Batch& b : p->pool_) p->free_.push_back(&b);
  p->position_ = options.start;
  p->thread_ = std::thread([raw = p.get()] { raw->Run(); });
  return p;
}

Status BatchPipeline::OpenFiles() {
  const int w = options_.num_workers, rank = options_.worker_rank;
  if (options_.format == DataSpec::Format::kMtb) {
    int64_t u = 0;
    for (size_t f = 0; f < files_.size(); ++f) {
      MTPS_ASSIGN_OR_RETURN(std::unique_ptr<MtbReader> reader, MtbReader::Open(files_[f]));
      MTPS_ASSIGN_OR_RETURN(MtbBinding binding, reader->Bind(map_));
      for (int g = 0; g < reader->num_row_groups(); ++g, ++u) {
        if (u % w == rank) units_.push_back({static_cast<int>(f), g, reader->row_group_rows(g)});
      }
      mtb_.push_back(std::move(reader));
      bindings_.push_back(std::move(binding));
    }
    return Status::OK();
  }
  csv_stride_ = static_cast<int>(files_.size()) < w;
  for (size_t f = 0; f < files_.size(); ++f) {
    // Opening reads and checks the header.
    MTPS_ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> reader, CsvReader::Open(files_[f], map_, options_.on_bad_record));
    if (csv_stride_ || static_cast<int>(f % w) == rank) units_.push_back({static_cast<int>(f), -1, -1});
  }
  return Status::OK();
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
  ColumnView view;
  ColumnBlock block(map_.num_tasks(), map_.num_dense(), map_.num_sparse());
  for (const Unit& unit : EpochUnits(epoch)) {
    const uint64_t unit_seed = Mix64(options_.seed ^ Mix64((uint64_t{epoch} << 40) ^
                                                           (uint64_t(unit.file) << 20) ^ uint64_t(unit.row_group + 1)));
    if (unit.row_group >= 0) {
      const uint64_t rows = static_cast<uint64_t>(unit.rows);
      if (skip >= rows) {
        skip -= rows;
        continue;
      }
      const MtbReader& reader = *mtb_[unit.file];
      MTPS_RETURN_IF_ERROR(reader.ReadRowGroup(unit.row_group, bindings_[unit.file], &view));
      {
        std::lock_guard<std::mutex> lock(mu_);
        stats_.bytes_read += reader.row_group_bytes(unit.row_group);
      }
      if (options_.shuffle) {
        order_.resize(rows);
        for (uint32_t i = 0; i < rows; ++i) order_[i] = i;
        SplitMix64(unit_seed).Shuffle(order_.data(), rows);
        MTPS_RETURN_IF_ERROR(Emit(view, order_.data() + skip, static_cast<int64_t>(rows - skip)));
      } else {
        MTPS_RETURN_IF_ERROR(EmitRange(view, static_cast<int64_t>(skip), static_cast<int64_t>(rows)));
      }
      skip = 0;
      continue;
    }
    MTPS_ASSIGN_OR_RETURN(std::unique_ptr<CsvReader> reader,
                          CsvReader::Open(files_[unit.file], map_, options_.on_bad_record));
    SplitMix64 rng(unit_seed);
    uint64_t record_index = 0;  // good records of this file so far
    const uint64_t w = options_.num_workers, rank = options_.worker_rank;
    Status status;
    while (true) {
      block.Clear();
      StatusOr<int64_t> n = reader->Read(options_.csv_window_rows, &block);
      if (!n.ok()) {
        status = n.status();
        break;
      }
      if (*n == 0) break;
      order_.clear();
      for (int64_t i = 0; i < *n; ++i) {
        if (!csv_stride_ || (record_index + i + unit.file) % w == rank) order_.push_back(static_cast<uint32_t>(i));
      }
      record_index += *n;
      if (options_.shuffle) rng.Shuffle(order_.data(), order_.size());
      const uint64_t drop = std::min<uint64_t>(skip, order_.size());
      skip -= drop;
      ColumnView::Assign(block, &view);
      status = Emit(view, order_.data() + drop, static_cast<int64_t>(order_.size() - drop));
      if (!status.ok()) break;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.bytes_read += reader->bytes_read();
      if (reader->bad_records() > 0 && stats_.bad_records == 0) stats_.first_bad_record = reader->first_bad_record();
      stats_.bad_records += reader->bad_records();
    }
    MTPS_RETURN_IF_ERROR(status);
  }
  return FlushPartial();
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
