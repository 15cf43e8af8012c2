// Command-line handling every mtps binary shares: --help lists the program's own flags (not
// the hundred of glog and gflags), --version names the release and git commit, ports are checked.
//
//   int main(int argc, char** argv) {
//     mtps::ParseProgramFlags(&argc, &argv, "mtps-server --config job.yaml ...");
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace mtps {

// Answers --help, -h, --helpshort and --version itself (printing to stdout, exit 0), then
// parses the rest with gflags (an unknown flag still ends the program with its message).
// `usage` is the first line of --help.
void ParseProgramFlags(int* argc, char*** argv, const char* usage);

// "mtps-worker 0.3.0 (git 1a2b3c4d5e6f)": the program, the release, the commit built from.
std::string VersionLine(std::string_view program);
const char* ReleaseVersion();  // "0.3.0"
const char* BuildCommit();     // 12 hex digits, or "unknown" outside a git checkout

// A TCP port flag: 1..65535, or 0 where the program documents it as "any free port".
Status CheckPortFlag(std::string_view flag, int port);

}  // namespace mtps
