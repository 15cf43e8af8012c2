// Bad model inputs and specs are refused with a Status that names the place: NaN/Inf in
// dense features, embeddings or labels, broken CSR offsets, out-of-range rows, batch too
// large, unknown device, bad model sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "models/backend.h"
#include "models/cpu_backend.h"
#include "models/multitask_model.h"
#include "tests/models/model_test_util.h"

namespace mtps::models {
namespace {

using testing::RandomBatch;
using testing::SmallSpec;

class ModelInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto created = MultiTaskModel<float>::Create(spec_, MakeCpuBackend<float>(1));
    ASSERT_TRUE(created.ok()) << created.status();
    model_ = std::move(*created);
  }
  // Trains on the batch and returns the error message ("" when it succeeded).
  std::string TrainError() {
    Status s = model_->Train(batch_.input(), 1, &out_);
    return s.ok() ? "" : s.ToString();
  }

  JobSpec spec_ = SmallSpec(ModelSpec::Type::kMmoe);
  RandomBatch<float> batch_{spec_, 8, 21};
  std::unique_ptr<MultiTaskModel<float>> model_;
  ModelOutput out_;
};

TEST_F(ModelInputTest, CleanBatchTrains) { EXPECT_EQ(TrainError(), ""); }

TEST_F(ModelInputTest, NanDenseFeatureIsNamed) {
  batch_.dense[3 * 2 + 1] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(TrainError(), "INVALID_ARGUMENT: dense feature 'age' of record 3 is nan");
}

TEST_F(ModelInputTest, NanEmbeddingIsNamedWithTableRowAndColumn) {
  batch_.tables[1][2 * 3 + 1] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(TrainError(),
            "INVALID_ARGUMENT: embedding of table 'item' row 2 column 1 is nan (non-finite value "
            "in pulled rows)");
}

TEST_F(ModelInputTest, InfiniteLabelIsNamed) {
  batch_.labels[5 * 2 + 0] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(TrainError(), "INVALID_ARGUMENT: label of task 'ctr' of record 5 is inf");
}

TEST_F(ModelInputTest, NonFiniteParametersAreReportedNotPropagated) {
  std::vector<float> values(model_->parameters().size());
  model_->parameters().CopyValuesToHost(values.data());
  const DenseBlock* b = model_->parameters().Find("mmoe/tower1/l1/b");
  ASSERT_NE(b, nullptr);
  values[b->offset] = std::numeric_limits<float>::quiet_NaN();
  model_->parameters().CopyValuesFromHost(values.data());
  EXPECT_EQ(TrainError().rfind("FAILED_PRECONDITION: task 'second' loss is nan", 0), 0u)
      << TrainError();
}

TEST_F(ModelInputTest, BrokenCsrIsRefused) {
  batch_.offsets[2][4] = batch_.offsets[2][3] - 1;
  EXPECT_NE(TrainError().find("sparse field 'history': offsets decrease at record 3"),
            std::string::npos)
      << TrainError();
}

TEST_F(ModelInputTest, RowOutsideTheTableIsRefused) {
  batch_.rows[0][2] = 6;
  EXPECT_EQ(TrainError(),
            "INVALID_ARGUMENT: sparse field 'user': value 2 names row 6 of table 'user', which "
            "has 6 rows");
}

TEST_F(ModelInputTest, BatchAboveMaxBatchIsRefused) {
  RandomBatch<float> big(spec_, 9, 1);
  Status s = model_->Train(big.input(), 1, &out_);
  EXPECT_EQ(s.ToString(), "INVALID_ARGUMENT: batch_size 9 outside [1, 8] (the model's max batch)");
}

TEST_F(ModelInputTest, EvaluateWithoutLabelsPredictsOnly) {
  ModelInput in = batch_.input();
  in.labels = nullptr;
  ASSERT_TRUE(model_->Evaluate(in, &out_).ok());
  EXPECT_TRUE(out_.task_loss.empty());
  ASSERT_EQ(out_.predictions.size(), 2u);
  for (float p : out_.predictions[0]) EXPECT_TRUE(p > 0 && p < 1);
  EXPECT_FALSE(model_->Train(in, 1, &out_).ok());
}

TEST(ModelSpecTest, BadSizesAreNamed) {
  JobSpec spec = SmallSpec(ModelSpec::Type::kMmoe);
  spec.model.experts = 0;
  auto m = MultiTaskModel<float>::Create(spec, MakeCpuBackend<float>(1));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().ToString(), "INVALID_ARGUMENT: model.experts: must be > 0, got 0");

  spec = SmallSpec(ModelSpec::Type::kEsmm, TaskSpec::Loss::kMse);
  m = MultiTaskModel<float>::Create(spec, MakeCpuBackend<float>(1));
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("tasks[1] 'second' must use loss bce"), std::string::npos);

  spec = SmallSpec(ModelSpec::Type::kSharedBottom);
  spec.sparse_fields[1].table = "shop";
  m = MultiTaskModel<float>::Create(spec, MakeCpuBackend<float>(1));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().ToString(), "NOT_FOUND: sparse_fields[1] 'item': unknown table 'shop'");
}

TEST(BackendTest, DeviceStringsAreCheckedWithoutCrashing) {
  EXPECT_TRUE(MakeBackend<float>("cpu").ok());
  auto bad = MakeBackend<float>("tpu:0");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(MakeBackend<float>("cuda:x").ok());
  EXPECT_FALSE(MakeBackend<double>("cuda:0").ok());  // double is CPU only
  auto cuda = MakeBackend<float>("cuda:0");
  if (CudaDeviceCount() == 0) {
    ASSERT_FALSE(cuda.ok());
    EXPECT_NE(cuda.status().message().find("cuda:0"), std::string::npos) << cuda.status();
  } else {
    EXPECT_TRUE(cuda.ok()) << cuda.status();
    auto absent = MakeBackend<float>("cuda:" + std::to_string(CudaDeviceCount()));
    EXPECT_FALSE(absent.ok());
  }
}

}  // namespace
}  // namespace mtps::models
