// Tests of BatchPipeline: CSV and .mtb give the same batches, sharding reads every record
// exactly once, shuffling is seeded, resumption continues exactly, dedup is right, and
// bad input stops the pipeline with a named error or is skipped and counted.
#include "worker/data/batch_pipeline.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "data_test_util.h"
#include "worker/data/csv_reader.h"
#include "worker/data/csv_to_mtb.h"
#include "worker/data/mtb_writer.h"
#include "worker/data/datagen.h"
#include "worker/data/input_files.h"

namespace mtps {
namespace {

using testing_data::Drain;
using testing_data::ReadFile;
using testing_data::Record;
using testing_data::ScratchDir;
using testing_data::WriteFile;
using ::testing::HasSubstr;

// A small generated data set in both formats (same seed, so the same records).
class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DatagenOptions o;
    o.rows = 3000;
    o.eval_fraction = 0.1;
    o.train_files = 3;
    o.row_group_rows = 128;
    o.world.users = 300;
    o.world.items = 500;
    o.world.categories = 20;
    o.world.shops = 50;
    o.world.seed = 11;
    o.out_dir = dir_.File("mtb");
    ASSERT_TRUE(GenerateDataset(o).ok());
    o.format = DataSpec::Format::kCsv;
    o.out_dir = dir_.File("csv");
    ASSERT_TRUE(GenerateDataset(o).ok());
    StatusOr<JobSpec> spec = LoadJobSpec(dir_.File("mtb/job.yaml"));
    ASSERT_TRUE(spec.ok()) << spec.status();
    spec_ = *spec;
    map_ = *FeatureMap::Create(spec_);
    mtb_files_ = *ExpandInputFiles({dir_.File("mtb/train-*.mtb")}, DataSpec::Format::kMtb);
    csv_files_ = *ExpandInputFiles({dir_.File("csv/train-*.csv")}, DataSpec::Format::kCsv);
    ASSERT_EQ(mtb_files_.size(), 3u);
    ASSERT_EQ(csv_files_.size(), 3u);
  }

  PipelineOptions Options(DataSpec::Format format, int rank = 0, int workers = 1) const {
    PipelineOptions o;
    o.format = format;
    o.batch_size = 100;
    o.shuffle = false;
    o.worker_rank = rank;
    o.num_workers = workers;
    o.csv_chunk_records = 128;  // the .mtb files' row groups: both formats have the same units
    return o;
  }
  std::vector<Record> ReadAll(const std::vector<std::string>& files, const PipelineOptions& o,
                              std::vector<int>* sizes = nullptr) {
    auto p = BatchPipeline::Create(map_, files, o);
    EXPECT_TRUE(p.ok()) << p.status();
    if (!p.ok()) return {};
    return Drain(p->get(), sizes);
  }

  // The unit (row group) of each record position in file order.
  std::vector<int> UnitOfPosition() const {
    std::vector<int> unit_at;
    auto index = InputIndex::Build(map_, mtb_files_, {});
    EXPECT_TRUE(index.ok()) << index.status();
    if (!index.ok()) return unit_at;
    EXPECT_EQ((*index)->units().size(), 24u);
    for (size_t u = 0; u < (*index)->units().size(); ++u) {
      unit_at.insert(unit_at.end(), (*index)->units()[u].records, static_cast<int>(u));
    }
    return unit_at;
  }

  ScratchDir dir_;
  JobSpec spec_;
  FeatureMap map_;
  std::vector<std::string> mtb_files_, csv_files_;
};

TEST_F(PipelineTest, CsvThroughMtbGivesTheSameBatchesAsCsv) {
  // Convert the CSV files with the converter, then compare three readings.
  std::vector<std::string> converted;
  for (size_t i = 0; i < csv_files_.size(); ++i) {
    converted.push_back(dir_.File("conv-" + std::to_string(i) + ".mtb"));
    StatusOr<ConvertReport> r = ConvertCsvToMtb(csv_files_[i], map_, DataSpec::BadRecordPolicy::kStop, converted.back(), 200);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->bad_records, 0);
  }
  std::vector<int> csv_sizes, conv_sizes, gen_sizes;
  const std::vector<Record> from_csv = ReadAll(csv_files_, Options(DataSpec::Format::kCsv), &csv_sizes);
  const std::vector<Record> from_converted = ReadAll(converted, Options(DataSpec::Format::kMtb), &conv_sizes);
  const std::vector<Record> from_generated_mtb = ReadAll(mtb_files_, Options(DataSpec::Format::kMtb), &gen_sizes);
  ASSERT_EQ(from_csv.size(), 2700u);
  EXPECT_TRUE(from_csv == from_converted);
  EXPECT_TRUE(from_csv == from_generated_mtb);
  EXPECT_EQ(csv_sizes, conv_sizes);
  EXPECT_EQ(csv_sizes, gen_sizes);
  EXPECT_EQ(csv_sizes.size(), 27u);
}

TEST_F(PipelineTest, BatchesCarryUniqueKeysAndTheInverseIndex) {
  auto p = *BatchPipeline::Create(map_, mtb_files_, Options(DataSpec::Format::kMtb));
  int batches = 0;
  while (Batch* b = *p->Next()) {
    ++batches;
    ASSERT_EQ(b->tables.size(), spec_.tables.size());
    ASSERT_EQ(static_cast<int>(b->labels.size()), b->size * b->num_tasks);
    ASSERT_EQ(static_cast<int>(b->dense.size()), b->size * b->num_dense);
    std::vector<std::set<uint64_t>> used(b->tables.size());
    for (int f = 0; f < map_.num_sparse(); ++f) {
      const Batch::Field& field = b->fields[f];
      const auto& unique = b->tables[map_.sparse(f).table_index].unique_keys;
      ASSERT_EQ(static_cast<int>(field.offsets.size()), b->size + 1);
      ASSERT_EQ(field.unique_index.size(), field.keys.size());
      for (size_t i = 0; i < field.keys.size(); ++i) {
        ASSERT_EQ(unique[field.unique_index[i]], field.keys[i]);
        used[map_.sparse(f).table_index].insert(field.keys[i]);
      }
    }
    for (size_t t = 0; t < b->tables.size(); ++t) {
      const auto& unique = b->tables[t].unique_keys;
      EXPECT_EQ(std::set<uint64_t>(unique.begin(), unique.end()).size(), unique.size());  // distinct
      EXPECT_EQ(used[t].size(), unique.size());  // and every one used
    }
    // item_id and recent_items share the item table: their keys dedup together.
    const int item_table = spec_.TableIndex("item");
    EXPECT_LT(b->tables[item_table].unique_keys.size(), b->fields[1].keys.size() + b->fields[5].keys.size());
    p->Release(b);
  }
  EXPECT_EQ(batches, 27);
}

// Every record of the epoch is read by exactly one of W workers.
void ExpectExactlyOnce(const std::vector<Record>& all, const std::vector<std::vector<Record>>& shards) {
  std::vector<Record> merged;
  for (const auto& s : shards) merged.insert(merged.end(), s.begin(), s.end());
  std::vector<Record> expected = all;
  std::sort(merged.begin(), merged.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(merged.size(), expected.size());
  EXPECT_TRUE(merged == expected);
}

TEST_F(PipelineTest, ShardingOverOneToFourWorkersReadsEveryRecordOnce) {
  for (DataSpec::Format format : {DataSpec::Format::kMtb, DataSpec::Format::kCsv}) {
    const auto& files = format == DataSpec::Format::kMtb ? mtb_files_ : csv_files_;
    const std::vector<Record> all = ReadAll(files, Options(format));
    for (int w = 1; w <= 4; ++w) {  // CSV with 4 workers and 3 files splits by record index
      SCOPED_TRACE("format " + std::to_string(static_cast<int>(format)) + ", workers " + std::to_string(w));
      std::vector<std::vector<Record>> shards;
      for (int r = 0; r < w; ++r) {
        PipelineOptions o = Options(format, r, w);
        o.shuffle = true;
        o.epochs = 2;
        std::vector<Record> two_epochs = ReadAll(files, o);
        // Both epochs hold the same records.
        std::vector<Record> first(two_epochs.begin(), two_epochs.begin() + two_epochs.size() / 2);
        std::vector<Record> second(two_epochs.begin() + two_epochs.size() / 2, two_epochs.end());
        std::sort(first.begin(), first.end());
        std::sort(second.begin(), second.end());
        EXPECT_TRUE(first == second);
        shards.push_back(first);
        if (w > 1) {
          EXPECT_LT(first.size(), all.size());
        }
      }
      ExpectExactlyOnce(all, shards);
    }
  }
}

TEST_F(PipelineTest, ShuffleIsSeededAndDiffersByEpoch) {
  PipelineOptions o = Options(DataSpec::Format::kMtb);
  o.shuffle = true;
  o.epochs = 2;
  o.seed = 5;
  const std::vector<Record> a = ReadAll(mtb_files_, o);
  const std::vector<Record> b = ReadAll(mtb_files_, o);
  EXPECT_TRUE(a == b);
  const std::vector<Record> epoch0(a.begin(), a.begin() + 2700), epoch1(a.begin() + 2700, a.end());
  EXPECT_FALSE(epoch0 == epoch1);
  o.seed = 6;
  const std::vector<Record> c = ReadAll(mtb_files_, o);
  EXPECT_FALSE(a == c);
  const std::vector<Record> plain = ReadAll(mtb_files_, Options(DataSpec::Format::kMtb));
  EXPECT_FALSE(epoch0 == plain);  // records inside row groups moved too
}

// Where each record sits in file order: its unit (row group or chunk) and its index.
struct Origin {
  int unit = 0;
  size_t position = 0;
};

TEST_F(PipelineTest, EveryEpochIsAFullReshuffleAcrossUnits) {
  const std::vector<Record> plain = ReadAll(mtb_files_, Options(DataSpec::Format::kMtb));
  const std::vector<int> unit_at = UnitOfPosition();
  ASSERT_EQ(unit_at.size(), plain.size());
  std::map<Record, Origin> origin;  // unit -1: the tiny world made this record twice
  for (size_t i = 0; i < plain.size(); ++i) {
    auto [it, added] = origin.emplace(plain[i], Origin{unit_at[i], i});
    if (!added) it->second.unit = -1;
  }
  for (DataSpec::Format format : {DataSpec::Format::kMtb, DataSpec::Format::kCsv}) {
    SCOPED_TRACE(format == DataSpec::Format::kMtb ? "mtb" : "csv");
    PipelineOptions o = Options(format);
    o.shuffle = true;
    o.epochs = 2;
    const std::vector<Record> got = ReadAll(format == DataSpec::Format::kMtb ? mtb_files_ : csv_files_, o);
    ASSERT_EQ(got.size(), 2 * plain.size());
    for (int epoch = 0; epoch < 2; ++epoch) {
      // The first batch of an epoch draws from most of the 24 units (a window-local
      // shuffle would take it from one), and neighbours in file order end up far apart.
      std::set<int> units;
      for (size_t i = 0; i < 100; ++i) units.insert(origin.at(got[epoch * plain.size() + i]).unit);
      units.erase(-1);
      EXPECT_GE(units.size(), 15u);
      size_t near = 0;
      for (size_t i = 1; i < plain.size(); ++i) {
        const size_t a = origin.at(got[epoch * plain.size() + i - 1]).position;
        const size_t b = origin.at(got[epoch * plain.size() + i]).position;
        if ((a > b ? a - b : b - a) < 128) ++near;
      }
      EXPECT_LT(near, plain.size() / 5);
    }
    // The two epochs' orders differ.
    EXPECT_FALSE(std::equal(got.begin(), got.begin() + plain.size(), got.begin() + plain.size()));
  }
}

TEST_F(PipelineTest, CsvAndMtbWithTheSameUnitsShuffleAlike) {
  PipelineOptions o = Options(DataSpec::Format::kMtb);
  o.shuffle = true;
  o.seed = 9;
  const std::vector<Record> mtb = ReadAll(mtb_files_, o);
  o.format = DataSpec::Format::kCsv;
  const std::vector<Record> csv = ReadAll(csv_files_, o);
  EXPECT_TRUE(mtb == csv);  // chunks of 128 records are the row groups of 128
}

TEST_F(PipelineTest, AShuffleWindowBoundsWhatIsMixed) {
  const std::vector<Record> plain = ReadAll(mtb_files_, Options(DataSpec::Format::kMtb));
  const std::vector<int> unit_at = UnitOfPosition();
  std::map<Record, int> unit_of;  // -1: the tiny world made this record twice
  for (size_t i = 0; i < plain.size(); ++i) {
    auto [it, added] = unit_of.emplace(plain[i], unit_at[i]);
    if (!added) it->second = -1;
  }
  PipelineOptions o = Options(DataSpec::Format::kMtb);
  o.shuffle = true;
  o.shuffle_window_rows = 256;  // two row groups at a time
  const std::vector<Record> got = ReadAll(mtb_files_, o);
  ASSERT_EQ(got.size(), plain.size());
  std::set<int> units;
  for (size_t i = 0; i < 100; ++i) {
    if (unit_of.at(got[i]) >= 0) units.insert(unit_of.at(got[i]));
  }
  EXPECT_LE(units.size(), 2u);

  std::vector<Record> sorted_got = got, sorted_plain = plain;
  std::sort(sorted_got.begin(), sorted_got.end());
  std::sort(sorted_plain.begin(), sorted_plain.end());
  EXPECT_TRUE(sorted_got == sorted_plain);
}

TEST_F(PipelineTest, ResumingFromAPositionContinuesExactly) {
  for (DataSpec::Format format : {DataSpec::Format::kMtb, DataSpec::Format::kCsv}) {
    const auto& files = format == DataSpec::Format::kMtb ? mtb_files_ : csv_files_;
    PipelineOptions o = Options(format);
    o.shuffle = true;
    o.epochs = 2;
    o.batch_size = 70;  // batches straddle row groups and windows
    const std::vector<Record> full = ReadAll(files, o);
    // Consume 45 batches (39 of epoch 0, whose last is partial, and 6 of epoch 1), then
    // resume in a new pipeline.
    auto p = *BatchPipeline::Create(map_, files, o);
    size_t consumed = 0;
    for (int i = 0; i < 45; ++i) {
      Batch* b = *p->Next();
      consumed += b->size;
      p->Release(b);
    }
    const PipelinePosition pos = p->position();
    EXPECT_EQ(pos.epoch, 1u);
    EXPECT_EQ(pos.records, consumed - 2700);
    EXPECT_EQ(consumed, 2700u + 6 * 70);
    p.reset();
    o.start = pos;
    const std::vector<Record> rest = ReadAll(files, o);
    ASSERT_EQ(rest.size(), full.size() - consumed);
    EXPECT_TRUE(std::equal(rest.begin(), rest.end(), full.begin() + consumed));
  }
}

TEST_F(PipelineTest, CorruptRowGroupStopsThePipelineNamingIt) {
  std::string bytes = ReadFile(mtb_files_[1]);
  const uint64_t at = (*MtbReader::Open(mtb_files_[1]))->row_group_offset(2) + kMtbRowGroupHeaderBytes + 5;
  bytes[at] ^= 0x40;
  WriteFile(mtb_files_[1], bytes);
  auto p = *BatchPipeline::Create(map_, mtb_files_, Options(DataSpec::Format::kMtb));
  Status error;
  int batches = 0;
  while (true) {
    StatusOr<Batch*> b = p->Next();
    if (!b.ok()) {
      error = b.status();
      break;
    }
    if (*b == nullptr) break;
    ++batches;
    p->Release(*b);
  }
  EXPECT_EQ(error.code(), StatusCode::kDataLoss);
  EXPECT_THAT(error.message(), HasSubstr(mtb_files_[1] + ": row group 2 of"));
  EXPECT_GT(batches, 0);
  EXPECT_FALSE(p->Next().ok());  // the error stays
}

TEST_F(PipelineTest, TruncatedFileOrMissingColumnIsRefusedBeforeTraining) {
  JobSpec extra = spec_;
  extra.dense_fields.push_back({.name = "discount"});
  FeatureMap map = *FeatureMap::Create(extra);
  StatusOr<std::unique_ptr<BatchPipeline>> p = BatchPipeline::Create(map, mtb_files_, Options(DataSpec::Format::kMtb));
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("'discount', which the file lacks"));
  p = BatchPipeline::Create(map, csv_files_, Options(DataSpec::Format::kCsv));
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr(csv_files_[0] + ": the job spec's dense field 'discount' needs column 'discount'"));

  const std::string bytes = ReadFile(mtb_files_[2]);
  WriteFile(mtb_files_[2], bytes.substr(0, bytes.size() / 2));
  p = BatchPipeline::Create(map_, mtb_files_, Options(DataSpec::Format::kMtb));
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr(mtb_files_[2] + ": truncated"));
}

TEST_F(PipelineTest, BadCsvRecordsAreSkippedAndCountedOrStopTheJob) {
  std::string text = ReadFile(csv_files_[0]);
  // Break data lines 3 and 10 (1-based file lines): a bad float and a missing column.
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) lines.push_back(text.substr(start, nl - start));
  const size_t third = lines[2].find(',', lines[2].find(',') + 1) + 1;  // the position column
  lines[2] = lines[2].substr(0, third) + "12.x" + lines[2].substr(lines[2].find(',', third));
  lines[9] = lines[9].substr(0, lines[9].rfind(','));
  std::string broken;
  for (const std::string& l : lines) broken += l + "\n";
  WriteFile(csv_files_[0], broken);

  PipelineOptions o = Options(DataSpec::Format::kCsv);
  o.on_bad_record = DataSpec::BadRecordPolicy::kSkip;
  auto p = *BatchPipeline::Create(map_, csv_files_, o);
  const std::vector<Record> got = Drain(p.get());
  EXPECT_EQ(got.size(), 2698u);
  EXPECT_EQ(p->stats().bad_records, 2u);
  EXPECT_THAT(p->stats().first_bad_record, HasSubstr(csv_files_[0] + ":3: "));

  o.on_bad_record = DataSpec::BadRecordPolicy::kStop;
  p = *BatchPipeline::Create(map_, csv_files_, o);
  Status error;
  while (true) {
    StatusOr<Batch*> b = p->Next();
    if (!b.ok()) {
      error = b.status();
      break;
    }
    ASSERT_NE(*b, nullptr) << "the stop policy must end the stream with the error";
    p->Release(*b);
  }
  EXPECT_THAT(error.message(), HasSubstr(csv_files_[0] + ":3: "));
}

TEST_F(PipelineTest, ABceLabelOtherThanZeroOrOneInAnMtbFileIsABadRecord) {
  // Records of the first CSV file, record 130 (row group 1, record 2) with click = 2.
  auto reader = *CsvReader::Open(csv_files_[0], map_, DataSpec::BadRecordPolicy::kStop);
  ColumnBlock block(map_.num_tasks(), map_.num_dense(), map_.num_sparse());
  ASSERT_TRUE(reader->Read(1 << 20, &block).ok());
  block.labels[130 * map_.num_tasks()] = 2.0f;
  const std::string path = dir_.File("bad-label.mtb");
  auto writer = *MtbWriter::Create(path, MtbSchema::Of(map_), 128);
  ASSERT_TRUE(writer->Append(ColumnView::Of(block)).ok());
  ASSERT_TRUE(writer->Close().ok());

  PipelineOptions o = Options(DataSpec::Format::kMtb);
  o.shuffle = true;
  auto stop = *BatchPipeline::Create(map_, {path}, o);
  Status error;
  while (true) {
    StatusOr<Batch*> b = stop->Next();
    if (!b.ok()) {
      error = b.status();
      break;
    }
    ASSERT_NE(*b, nullptr) << "the stop policy must end the stream with the error";
    stop->Release(*b);
  }
  EXPECT_THAT(error.message(), HasSubstr(path + ": row group 1, record 2: label 'click' of bce task 'ctr' must be 0 or 1, got 2"));

  for (bool shuffle : {true, false}) {
    o.shuffle = shuffle;
    o.on_bad_record = DataSpec::BadRecordPolicy::kSkip;
    auto skip = *BatchPipeline::Create(map_, {path}, o);
    const std::vector<Record> got = Drain(skip.get());
    EXPECT_EQ(got.size(), static_cast<size_t>(block.rows - 1));
    EXPECT_EQ(skip->stats().bad_records, 1u);
    EXPECT_THAT(skip->stats().first_bad_record, HasSubstr("row group 1, record 2"));
    for (const Record& r : got) EXPECT_NE(r.labels[0], 2.0f);
  }
}

TEST_F(PipelineTest, RefusesBadOptions) {
  PipelineOptions o = Options(DataSpec::Format::kMtb, 4, 4);
  EXPECT_THAT(BatchPipeline::Create(map_, mtb_files_, o).status().message(), HasSubstr("rank 4 is not in [0, 4)"));
  o = Options(DataSpec::Format::kMtb);
  o.batch_size = 0;
  EXPECT_FALSE(BatchPipeline::Create(map_, mtb_files_, o).ok());
  EXPECT_FALSE(BatchPipeline::Create(map_, {}, Options(DataSpec::Format::kMtb)).ok());
  EXPECT_EQ(ExpandInputFiles({dir_.File("nothing-*.mtb")}, DataSpec::Format::kMtb).status().code(),
            StatusCode::kNotFound);
}

TEST_F(PipelineTest, OptionsFromTheSpec) {
  const PipelineOptions t = PipelineOptions::ForTraining(spec_, 1, 3);
  EXPECT_EQ(t.batch_size, spec_.training.batch_size);
  EXPECT_EQ(t.epochs, spec_.training.epochs);
  EXPECT_TRUE(t.shuffle);
  EXPECT_EQ(t.worker_rank, 1);
  EXPECT_EQ(t.num_workers, 3);
  const PipelineOptions e = PipelineOptions::ForEval(spec_, 0, 1);
  EXPECT_EQ(e.batch_size, spec_.training.eval_batch_size);
  EXPECT_EQ(e.epochs, 1);
  EXPECT_FALSE(e.shuffle);
}

}  // namespace
}  // namespace mtps
