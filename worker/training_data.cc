// TrainingData: file lists, pipelines per epoch and the steps of a synchronous epoch.
#include "worker/training_data.h"

#include <algorithm>
#include <limits>

#include "worker/data/input_files.h"

namespace mtps {
namespace {

// A BatchPipeline seen as a BatchSource, optionally cut after `max_batches` batches.
class PipelineSource : public BatchSource {
 public:
  PipelineSource(std::unique_ptr<BatchPipeline> pipeline, int64_t max_batches)
      : pipeline_(std::move(pipeline)), max_batches_(max_batches) {}

  StatusOr<Batch*> Next() override {
    if (max_batches_ > 0 && handed_out_ >= max_batches_) return static_cast<Batch*>(nullptr);
    StatusOr<Batch*> batch = pipeline_->Next();
    if (batch.ok() && *batch != nullptr) ++handed_out_;
    return batch;
  }
  void Release(Batch* batch) override { pipeline_->Release(batch); }
  SourceCounts counts() const override {
    const PipelineStats stats = pipeline_->stats();
    return {stats.records, stats.bad_records, stats.first_bad_record};
  }

 private:
  std::unique_ptr<BatchPipeline> pipeline_;
  int64_t max_batches_;
  int64_t handed_out_ = 0;
};

}  // namespace

StatusOr<std::unique_ptr<TrainingData>> TrainingData::Open(const JobSpec& spec) {
  std::unique_ptr<TrainingData> data(new TrainingData(spec));
  MTPS_ASSIGN_OR_RETURN(data->map_, FeatureMap::Create(spec));
  if (spec.data.train.empty()) return InvalidArgument("data.train: no training input given");
  MTPS_ASSIGN_OR_RETURN(data->train_files_, ExpandInputFiles(spec.data.train, spec.data.format));
  if (!spec.data.eval.empty()) {
    MTPS_ASSIGN_OR_RETURN(data->eval_files_, ExpandInputFiles(spec.data.eval, spec.data.format));
  }
  // Indexed once: every epoch's pipeline deals and shuffles the same units.
  const InputIndexOptions index_options{.format = spec.data.format, .csv_delimiter = spec.data.csv_delimiter};
  MTPS_ASSIGN_OR_RETURN(data->train_index_, InputIndex::Build(data->map_, data->train_files_, index_options));
  if (!data->eval_files_.empty()) {
    MTPS_ASSIGN_OR_RETURN(data->eval_index_, InputIndex::Build(data->map_, data->eval_files_, index_options));
  }
  return data;
}

StatusOr<std::unique_ptr<BatchSource>> TrainingData::TrainEpoch(int epoch, int rank,
                                                                 int num_workers,
                                                                 int64_t max_batches,
                                                                 uint64_t skip_records) const {
  PipelineOptions options = PipelineOptions::ForTraining(spec_, rank, num_workers);
  options.start = {static_cast<uint32_t>(epoch), skip_records};
  options.epochs = epoch + 1;  // this epoch only
  options.index = train_index_;
  MTPS_ASSIGN_OR_RETURN(auto pipeline, BatchPipeline::Create(map_, train_files_, options));
  return std::unique_ptr<BatchSource>(new PipelineSource(std::move(pipeline), max_batches));
}

StatusOr<std::unique_ptr<BatchSource>> TrainingData::Eval(int rank, int num_workers) const {
  if (eval_files_.empty()) return FailedPrecondition("data.eval: the job has no evaluation input");
  PipelineOptions options = PipelineOptions::ForEval(spec_, rank, num_workers);
  options.index = eval_index_;
  MTPS_ASSIGN_OR_RETURN(auto pipeline, BatchPipeline::Create(map_, eval_files_, options));
  return std::unique_ptr<BatchSource>(new PipelineSource(std::move(pipeline), 0));
}

uint64_t TrainingData::train_records() const {
  uint64_t records = 0;
  for (const InputUnit& unit : train_index_->units()) records += static_cast<uint64_t>(unit.records);
  return records;
}

StatusOr<int64_t> TrainingData::SyncStepsPerEpoch(int num_workers) const {
  if (spec_.data.format != DataSpec::Format::kMtb) {
    return FailedPrecondition(
        "synchronous training with several workers needs .mtb input, whose row counts every "
        "worker can read up front; convert CSV with mtps-datagen convert");
  }
  const int64_t batch_size = spec_.training.batch_size;
  int64_t fewest = std::numeric_limits<int64_t>::max();
  for (int rank = 0; rank < num_workers; ++rank) {
    PipelineOptions options = PipelineOptions::ForTraining(spec_, rank, num_workers);
    options.epochs = 1;
    options.index = train_index_;
    MTPS_ASSIGN_OR_RETURN(auto pipeline, BatchPipeline::Create(map_, train_files_, options));
    int64_t rows = 0;
    for (const BatchPipeline::Unit& unit : pipeline->EpochUnits(0)) rows += unit.records;
    fewest = std::min(fewest, (rows + batch_size - 1) / batch_size);
  }
  if (fewest <= 0) {
    return FailedPrecondition("a worker's shard of the training data is empty (" +
                              std::to_string(num_workers) + " workers, " +
                              std::to_string(train_files_.size()) + " files)");
  }
  return fewest;
}

}  // namespace mtps
