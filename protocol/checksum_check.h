// StoredChecksumMatches: the one comparison of a stored checksum with a computed one, for
// every reader of checksummed files (.mtb, checkpoints).
//
//   if (!StoredChecksumMatches(stored_crc, Crc32c(data, size))) return DataLoss("...");
//
// Fuzz builds (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, the macro that libFuzzer projects
// share; benchmarks/fuzz/) accept any stored value: a fuzzer cannot forge checksums, and
// without this it would never reach the parsing behind them. Never defined elsewhere.
#pragma once

#include <cstdint>

namespace mtps {

constexpr bool StoredChecksumMatches(uint64_t stored, uint64_t computed) {
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
  (void)stored;
  (void)computed;
  return true;
#else
  return stored == computed;
#endif
}

}  // namespace mtps
