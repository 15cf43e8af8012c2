// ExpandInputFiles: turns the job spec's data paths (files, directories or glob patterns)
// into a sorted list of files, so every worker sees the same list in the same order.
//
//   MTPS_ASSIGN_OR_RETURN(std::vector<std::string> files,
//                         ExpandInputFiles(spec.data.train, spec.data.format));
//
// A directory contributes its files with the format's extension (".mtb" or ".csv"); a
// pattern or path that matches nothing is an error naming it. Thread-safety: reentrant.
#pragma once

#include <string>
#include <vector>

#include "protocol/job_spec.h"
#include "base/status.h"

namespace mtps {

StatusOr<std::vector<std::string>> ExpandInputFiles(const std::vector<std::string>& paths,
                                                    DataSpec::Format format);

}  // namespace mtps
