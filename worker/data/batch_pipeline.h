// BatchPipeline: a background reader thread that turns this worker's share of the input
// files into ready Batches (labels, dense, per-field CSR keys, per-table unique keys with
// the inverse index), epoch after epoch, through a bounded queue of pooled Batches.
//
//   PipelineOptions opt = PipelineOptions::ForTraining(spec, rank, num_workers);
//   MTPS_ASSIGN_OR_RETURN(auto pipeline, BatchPipeline::Create(map, files, opt));
//   while (true) {
//     MTPS_ASSIGN_OR_RETURN(Batch* batch, pipeline->Next());   // blocks
//     if (batch == nullptr) break;                              // every epoch done
//     Train(*batch);
//     pipeline->Release(batch);                                 // back to the pool
//   }
//   PipelinePosition where = pipeline->position();   // resume: opt.start = where
//
// Sharding: the input's units (InputIndex: .mtb row groups, CSV chunks of 4096 records)
// are dealt to workers by index mod W, so each record is read by exactly one worker per
// epoch. Shuffling, a pure function of (seed, epoch): this worker's units are permuted,
// then taken in windows of up to shuffle_window_rows records, and each window's records
// are permuted together. A share that fits one window (every worker's share of a few
// million records, by default) is a uniform permutation, new every epoch; a larger one
// mixes as many randomly chosen units per window as fit, with memory bounded by the
// window. Without shuffling (evaluation), units are read in file order.
// Create() indexes every file first (or takes the index it is given), so a spec column a
// file lacks, a corrupt header or a truncated .mtb file is refused before training starts.
// A bce label other than 0 or 1 is a bad record (CSV: file:line; .mtb: file, row group and
// record), skipped and counted or stopping the pipeline as on_bad_record says.
// Thread-safety: Next(), Release(), position() and stats() may be called from one
// consumer thread (or several, each with its own batches); the reader is internal.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "protocol/job_spec.h"
#include "base/status.h"
#include "worker/batch.h"
#include "worker/data/batch_assembler.h"
#include "worker/data/column_block.h"
#include "worker/data/feature_map.h"
#include "worker/data/input_index.h"
#include "worker/data/mtb_reader.h"

namespace mtps {

class CsvReader;

// Where a worker's stream stands: records of `epoch` already handed out. Resuming from a
// position yields exactly the records an uninterrupted run would have yielded after it.
struct PipelinePosition {
  uint32_t epoch = 0;
  uint64_t records = 0;
};

struct PipelineOptions {
  DataSpec::Format format = DataSpec::Format::kMtb;
  DataSpec::BadRecordPolicy on_bad_record = DataSpec::BadRecordPolicy::kStop;
  int batch_size = 1024;
  int epochs = 1;
  bool shuffle = true;
  uint64_t seed = 1;
  int worker_rank = 0;
  int num_workers = 1;
  int queue_depth = 4;           // ready batches the reader may run ahead
  int64_t shuffle_window_rows = int64_t{1} << 20;  // records permuted together
  char csv_delimiter = ',';
  int64_t csv_chunk_records = 4096;  // when Create() builds the index
  std::shared_ptr<const InputIndex> index;  // of the files given to Create(); null: built there
  PipelinePosition start;

  // Training input of worker `rank` of `num_workers`, from the spec's data and training.
  static PipelineOptions ForTraining(const JobSpec& spec, int rank, int num_workers);
  // Evaluation input: one pass, no shuffling, the eval batch size.
  static PipelineOptions ForEval(const JobSpec& spec, int rank, int num_workers);
};

struct PipelineStats {
  uint64_t records = 0;       // records put into batches
  uint64_t batches = 0;
  uint64_t bad_records = 0;   // records skipped under on_bad_record: skip
  uint64_t bytes_read = 0;    // input bytes read (CSV) or row-group bytes mapped (.mtb)
  std::string first_bad_record;
};

class BatchPipeline {
 public:
  static StatusOr<std::unique_ptr<BatchPipeline>> Create(const FeatureMap& map, std::vector<std::string> files,
                                                         const PipelineOptions& options);
  ~BatchPipeline();  // stops and joins the reader
  BatchPipeline(const BatchPipeline&) = delete;
  BatchPipeline& operator=(const BatchPipeline&) = delete;

  // The next ready batch; nullptr after the last epoch; an error (naming file and line or
  // row group) when reading failed, after which the pipeline yields nothing more.
  StatusOr<Batch*> Next();
  // Returns a batch from Next() to the pool.
  void Release(Batch* batch);

  // Records handed out by Next() so far.
  PipelinePosition position() const;
  PipelineStats stats() const;

  // This worker's units (row groups or CSV chunks) for the epoch, in reading order; exposed
  // so tests can check sharding and shuffling.
  using Unit = InputUnit;
  std::vector<Unit> EpochUnits(uint32_t epoch) const;

 private:
  BatchPipeline(const FeatureMap& map, std::vector<std::string> files, const PipelineOptions& options);
  void Run();
  Status ReadEpoch(uint32_t epoch, uint64_t skip);
  // Appends the unit's good records to `block` (CSV chunks, and .mtb row groups when
  // shuffling), counting and skipping bad ones.
  Status LoadUnit(const Unit& unit, ColumnBlock* block);
  // Points `view` at a .mtb row group; `rows` gets its good records, in order.
  Status MapRowGroup(const Unit& unit, ColumnView* view, std::vector<uint32_t>* rows);
  // Emits rows[skip..] of `view`, taking the skipped ones off `*skip`.
  Status EmitAfter(const ColumnView& view, const std::vector<uint32_t>& rows, uint64_t* skip);
  void CountBad(uint64_t bad, const std::string& first);
  // Hands records rows[0..n) of `view`, or its records [begin, end), to batches.
  Status Emit(const ColumnView& view, const uint32_t* rows, int64_t n);
  Status EmitRange(const ColumnView& view, int64_t begin, int64_t end);
  Status EmitImpl(const ColumnView& view, const uint32_t* rows, int64_t begin, int64_t end);
  Batch* AcquireFree();
  void PushReady(Batch* batch);
  Status FlushPartial();

  const FeatureMap& map_;
  const std::vector<std::string> files_;
  const PipelineOptions options_;
  std::shared_ptr<const InputIndex> index_;
  std::vector<Unit> units_;  // this worker's units, file order
  std::vector<std::unique_ptr<CsvReader>> csv_;  // per file, opened on first use

  std::unique_ptr<BatchAssembler> assembler_;
  std::vector<Batch> pool_;
  Batch* current_ = nullptr;  // being filled by the reader
  uint32_t reader_epoch_ = 0;
  uint64_t reader_records_ = 0;
  std::vector<uint32_t> order_;  // reusable window permutation
  ColumnBlock window_;           // the records of a shuffle window or a CSV chunk

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Batch*> free_;     // GUARDED_BY(mu_)
  std::deque<Batch*> ready_;    // GUARDED_BY(mu_); nullptr marks the end of the stream
  Status error_;                // GUARDED_BY(mu_)
  bool stopping_ = false;       // GUARDED_BY(mu_)
  PipelinePosition position_;   // GUARDED_BY(mu_)
  PipelineStats stats_;         // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace mtps
