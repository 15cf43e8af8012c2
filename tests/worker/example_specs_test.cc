// The example job specs in launch/examples/: each parses, and each trains an epoch on a
// small generated data set of its world (the paths point at the test's own data).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "worker/data/datagen.h"
#include "worker/local_trainer.h"

#include "tests/common/test_files.h"

namespace mtps {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> Examples() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(fs::path(MTPS_SOURCE_DIR) / "launch" / "examples")) {
    if (e.path().extension() == ".yaml") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  for (size_t at; (at = text.find(from)) != std::string::npos;) text.replace(at, from.size(), to);
  return text;
}

TEST(ExampleSpecsTest, EveryExampleParsesAndTrainsAnEpochOnGeneratedData) {
  const std::vector<fs::path> examples = Examples();
  ASSERT_GE(examples.size(), 7u);
  testing::ScratchDir dir;
  for (bool sequence : {false, true}) {
    DatagenOptions o;
    o.out_dir = dir.File(sequence ? "shop-seq" : "shop");
    o.rows = 4000;
    o.train_files = 2;
    o.row_group_rows = 512;
    o.threads = 1;
    o.world.users = 300;
    o.world.items = 400;
    o.world.categories = 20;
    o.world.shops = 40;
    o.world.history_length = sequence ? 20 : 0;
    StatusOr<DatagenReport> r = GenerateDataset(o);
    ASSERT_TRUE(r.ok()) << r.status();
  }
  for (const fs::path& path : examples) {
    SCOPED_TRACE(path.filename().string());
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    ASSERT_TRUE(ParseJobSpec(text.str(), path.string()).ok()) << ParseJobSpec(text.str(), path.string()).status();
    // The test's data instead of data/shop and data/shop-seq.
    std::string local = Replace(text.str(), "\"data/shop-seq/", "\"" + dir.File("shop-seq") + "/");
    local = Replace(local, "\"data/shop/", "\"" + dir.File("shop") + "/");
    StatusOr<JobSpec> spec = ParseJobSpec(local, path.string());
    ASSERT_TRUE(spec.ok()) << spec.status();
    spec->training.epochs = 1;
    auto trainer = LocalTrainer::Create(*spec, {});
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    StatusOr<EvalResult> eval = (*trainer)->Run();
    ASSERT_TRUE(eval.ok()) << eval.status();
    ASSERT_EQ(eval->tasks.size(), 2u);
    EXPECT_EQ(eval->samples, 400u);  // the whole eval split was scored
    EXPECT_TRUE(std::isfinite(eval->tasks[0].auc) && std::isfinite(eval->tasks[1].auc));
  }
}

}  // namespace
}  // namespace mtps
