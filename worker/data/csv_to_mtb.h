// ConvertCsvToMtb: streams a CSV file through the job spec's feature mapping into a .mtb
// file (what `mtps-datagen convert` runs), in bounded memory.
//
//   MTPS_ASSIGN_OR_RETURN(ConvertReport r, ConvertCsvToMtb("day1.csv", map,
//                         DataSpec::BadRecordPolicy::kSkip, "day1.mtb"));
//   LOG(INFO) << r.rows << " records, " << r.bad_records << " bad ones skipped";
//
// Bad records follow the policy (stop: the error names file and line, and no output file
// is left behind). Thread-safety: reentrant.
#pragma once

#include <cstdint>
#include <string>

#include "protocol/job_spec.h"
#include "base/status.h"
#include "worker/data/feature_map.h"
#include "worker/data/mtb_writer.h"

namespace mtps {

struct ConvertReport {
  int64_t rows = 0;
  int64_t bad_records = 0;
  std::string first_bad_record;
};

StatusOr<ConvertReport> ConvertCsvToMtb(const std::string& csv_path, const FeatureMap& map,
                                        DataSpec::BadRecordPolicy policy, const std::string& mtb_path,
                                        int64_t row_group_rows = MtbWriter::kDefaultRowGroupRows,
                                        char delimiter = ',');

}  // namespace mtps
