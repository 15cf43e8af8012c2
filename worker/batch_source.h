// BatchSource: what a trainer reads batches from — the data pipeline of one epoch, or an
// in-memory list in tests.
//
//   while (true) {
//     MTPS_ASSIGN_OR_RETURN(Batch* batch, source->Next());
//     if (batch == nullptr) break;       // end of the epoch
//     ...
//     source->Release(batch);            // the batch buffer goes back to the pool
//   }
//
// A batch stays valid until it is released; several may be held at once (prefetch).
// Used by one thread.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "worker/batch.h"

namespace mtps {

// What a source has read so far: records put into batches, and bad records skipped
// (data.on_bad_record: skip).
struct SourceCounts {
  uint64_t records = 0;
  uint64_t bad_records = 0;
  std::string first_bad_record;
};

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual StatusOr<Batch*> Next() = 0;
  virtual void Release(Batch* batch) = 0;
  // Sources that do not read files (tests) count nothing.
  virtual SourceCounts counts() const { return {}; }
};

}  // namespace mtps
