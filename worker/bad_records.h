// BadRecordTally: the records a worker read and the bad ones it skipped (on_bad_record:
// skip), and the check that fails a run whose data was all bad or too bad to trust.
//
//   BadRecordTally tally;
//   tally.Add(source->counts());                       // after each epoch
//   MTPS_RETURN_IF_ERROR(CheckBadRecords(spec.data, tally, "worker 1"));
#pragma once

#include <cstdint>
#include <string>

#include "protocol/job_spec.h"
#include "base/status.h"
#include "worker/batch_source.h"

namespace mtps {

struct BadRecordTally {
  uint64_t records = 0;      // good records read
  uint64_t bad_records = 0;  // skipped
  std::string first_bad_record;

  void Add(const SourceCounts& counts);
};

// Logs (stderr) how many records were skipped whenever some were, and fails with
// DATA_LOSS, naming the counts and the first bad record, when every record read was bad
// or more than spec.max_bad_fraction of them. `who` names the reader in the message.
Status CheckBadRecords(const DataSpec& spec, const BadRecordTally& tally, const std::string& who);

}  // namespace mtps
