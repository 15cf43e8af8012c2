// Files for tests: a fresh scratch directory per test, removed afterwards, and whole-file
// reads and writes. Shared by every test suite so that none keeps a twin of its own.
//
//   mtps::testing::ScratchDir dir;                 // /tmp/mtps_<suite>_<test>_<pid>
//   mtps::testing::WriteFile(dir.File("job.yaml"), yaml);
//   std::string log = mtps::testing::ReadFile(dir.File("run.log"));
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace mtps::testing {

// A fresh directory named after the running test, removed when the object goes.
class ScratchDir {
 public:
  ScratchDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "mtps_" + std::string(info ? info->test_suite_name() : "test") + "_" +
                       (info ? info->name() : "") + "_" + std::to_string(::getpid());
    for (char& c : name) {
      if (c == '/') c = '_';  // parameterised tests have '/' in their names
    }
    path_ = std::filesystem::temp_directory_path() / name;
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  std::string File(const std::string& name) const { return (path_ / name).string(); }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

inline void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace mtps::testing
