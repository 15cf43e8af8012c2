// The bad-record tally and the check that turns all-bad (or mostly bad) input into a
// failed run instead of a model trained on nothing.
#include "worker/bad_records.h"

#include <glog/logging.h>

#include <cstdio>

namespace mtps {

void BadRecordTally::Add(const SourceCounts& counts) {
  if (counts.bad_records > 0 && bad_records == 0) first_bad_record = counts.first_bad_record;
  records += counts.records;
  bad_records += counts.bad_records;
}

Status CheckBadRecords(const DataSpec& spec, const BadRecordTally& tally, const std::string& who) {
  if (tally.bad_records == 0) return Status::OK();
  const uint64_t read = tally.records + tally.bad_records;
  const double fraction = static_cast<double>(tally.bad_records) / static_cast<double>(read);
  char text[160];
  std::snprintf(text, sizeof(text), "%s skipped %llu bad records of %llu read (%.2f%%)",
                who.c_str(), static_cast<unsigned long long>(tally.bad_records),
                static_cast<unsigned long long>(read), 100.0 * fraction);
  LOG(WARNING) << text << "; first: " << tally.first_bad_record;
  if (tally.records == 0) {
    return DataLoss(std::string(text) + ": every record was bad, nothing to train on; first: " +
                    tally.first_bad_record);
  }
  if (fraction > spec.max_bad_fraction) {
    return DataLoss(std::string(text) + ", more than data.max_bad_fraction " +
                    std::to_string(spec.max_bad_fraction) + "; first: " + tally.first_bad_record);
  }
  return Status::OK();
}

}  // namespace mtps
