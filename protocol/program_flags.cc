// --help with the program's own flags, --version with the git commit, and port checks.
// The commit comes from generated/mtps_git_commit.h, rewritten by every build (git_commit.cmake).
#include "protocol/program_flags.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <gflags/gflags.h>

#include "generated/mtps_git_commit.h"

namespace mtps {
namespace {

constexpr const char* kVersion = "0.3.0";
// Flags defined in these folders are the program's own (its main's, and shared ones such as
// --keys_dir); everything else (glog's logging.cc, gflags.cc, ...) is left to --helpfull.
constexpr const char* kOwnFolders[] = {"base/", "protocol/", "ps/", "scheduler/", "models/", "worker/"};

bool OwnFlag(std::string file) {
  while (file.rfind("./", 0) == 0 || file.rfind("../", 0) == 0) file.erase(0, file.find('/') + 1);
  for (const char* folder : kOwnFolders) {
    if (file.rfind(folder, 0) == 0 || file.find(std::string("/") + folder) != std::string::npos) {
      return file.find("/src/") == std::string::npos;
    }
  }
  return false;
}

std::string ProgramName(const char* argv0) {
  const char* slash = std::strrchr(argv0, '/');
  return slash ? slash + 1 : argv0;
}

void PrintHelp(const std::string& program, const char* usage) {
  std::printf("%s\n\nusage: %s\n\nflags:\n", VersionLine(program).c_str(), usage);
  std::vector<gflags::CommandLineFlagInfo> flags;
  gflags::GetAllFlags(&flags);
  for (const gflags::CommandLineFlagInfo& f : flags) {
    if (!OwnFlag(f.filename)) continue;
    std::string line = "  --" + f.name + " (" + f.description + ")";
    line += f.type == "string" ? " default: \"" + f.default_value + "\"" : " default: " + f.default_value;
    std::printf("%s\n", line.c_str());
  }
  std::printf("\nThe flags of glog (logging) and gflags: --helpfull.\n");
}

}  // namespace

const char* ReleaseVersion() { return kVersion; }
const char* BuildCommit() { return MTPS_GIT_COMMIT; }

std::string VersionLine(std::string_view program) {
  return std::string(program) + " " + kVersion + " (git " + MTPS_GIT_COMMIT + ")";
}

void ParseProgramFlags(int* argc, char*** argv, const char* usage) {
  const std::string program = ProgramName((*argv)[0]);
  gflags::SetUsageMessage(usage);
  gflags::SetVersionString(std::string(kVersion) + " (git " + MTPS_GIT_COMMIT + ")");
  for (int i = 1; i < *argc; ++i) {
    const std::string arg = (*argv)[i];
    if (arg == "--") break;
    if (arg == "--help" || arg == "-help" || arg == "-h" || arg == "--helpshort" || arg == "-helpshort") {
      PrintHelp(program, usage);
      std::exit(0);
    }
    if (arg == "--version" || arg == "-version") {
      std::printf("%s\n", VersionLine(program).c_str());
      std::exit(0);
    }
  }
  gflags::ParseCommandLineFlags(argc, argv, true);
}

Status CheckPortFlag(std::string_view flag, int port) {
  if (port >= 0 && port <= 65535) return Status::OK();
  return InvalidArgument("--" + std::string(flag) + " must be a TCP port in [1, 65535] (or 0 for any free port), got " +
                         std::to_string(port));
}

}  // namespace mtps
