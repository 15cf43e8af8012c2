// process_* from /proc/self (Linux), as the Prometheus client libraries name them, and the
// build-info series; what dashboards expect from every scraped process.
#include "protocol/process_metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "protocol/program_flags.h"

namespace mtps {
namespace {

// Fields of /proc/self/stat after the command name (which may hold spaces): index 0 is
// field 3 (state), so field N is at N - 3.
std::vector<std::string> StatFields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  std::vector<std::string> fields;
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return fields;
  std::istringstream rest(line.substr(close + 2));
  for (std::string f; rest >> f;) fields.push_back(f);
  return fields;
}

double StatField(int n) {
  std::vector<std::string> f = StatFields();
  return n - 3 < static_cast<int>(f.size()) ? std::stod(f[n - 3]) : 0.0;
}

double BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  for (std::string key; in >> key;) {
    if (key == "btime") {
      double t = 0;
      in >> t;
      return t;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

}  // namespace

void ExportProcessMetrics(MetricsRegistry* registry) {
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  // Fields of proc(5): 14 utime, 15 stime, 22 starttime (ticks since boot), 23 vsize, 24 rss.
  registry->AddCounterFunction("process_cpu_seconds_total", "User and system CPU time spent in seconds.",
                               {}, [ticks] { return (StatField(14) + StatField(15)) / ticks; });
  registry->AddGaugeFunction("process_resident_memory_bytes", "Resident memory size in bytes.", {},
                             [page] { return StatField(24) * page; });
  registry->AddGaugeFunction("process_virtual_memory_bytes", "Virtual memory size in bytes.", {},
                             [] { return StatField(23); });
  const double start = BootTimeSeconds() + StatField(22) / ticks;
  registry->AddGaugeFunction("process_start_time_seconds",
                             "Start time of the process since unix epoch in seconds.", {},
                             [start] { return start; });
  registry->AddGaugeFunction("process_open_fds", "Number of open file descriptors.", {}, [] {
    std::error_code ec;
    double n = 0;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      ++n;
    }
    return n;
  });
  registry->AddGaugeFunction("process_max_fds", "Maximum number of open file descriptors.", {}, [] {
    rlimit limit{};
    return ::getrlimit(RLIMIT_NOFILE, &limit) == 0 ? static_cast<double>(limit.rlim_cur) : 0.0;
  });
  registry->AddGauge("mtps_build_info", "The mtps release and git commit of this binary (always 1).",
                     {{"version", ReleaseVersion()}, {"commit", BuildCommit()}})
      ->Set(1);
}

}  // namespace mtps
