// The process_* series of Prometheus' client libraries and mtps_build_info, for /metrics.
//   ExportProcessMetrics(&registry);   // once, in a main, before serving HTTP
#pragma once

#include "protocol/metrics.h"

namespace mtps {

// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds and process_start_time_seconds, read from /proc/self at
// each scrape, and mtps_build_info{version, commit} = 1.
void ExportProcessMetrics(MetricsRegistry* registry);

}  // namespace mtps
