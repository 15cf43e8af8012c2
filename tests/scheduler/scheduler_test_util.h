// Helpers shared by the scheduler tests: a small job spec and a temporary directory.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "protocol/job_spec.h"

namespace mtps::scheduler::testing {

inline JobSpec TestSpec(uint64_t hash = 0x5eed5eed12345678ull) {
  JobSpec spec;
  spec.name = "scheduler-test";
  spec.model.type = ModelSpec::Type::kMmoe;
  spec.training.mode = TrainingSpec::Mode::kAsync;
  spec.training.epochs = 2;
  spec.tasks = {TaskSpec{.name = "ctr", .label = "click"}, TaskSpec{.name = "cvr", .label = "buy"}};
  spec.hash = hash;
  return spec;
}

// A fresh directory under the system's temporary directory, removed at destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "mtps-sched-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace mtps::scheduler::testing
