// Helpers shared by the scheduler tests: a small job spec and a temporary directory.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "protocol/job_spec.h"

#include "tests/common/test_files.h"

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

// A fresh directory for the running test, removed at destruction.
using TempDir = ::mtps::testing::ScratchDir;
using ::mtps::testing::ReadFile;

}  // namespace mtps::scheduler::testing
