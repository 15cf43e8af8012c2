// CRC32C (Castagnoli), the checksum of checkpoint blocks: hardware SSE4.2 where the CPU
// has it, a table-driven software path elsewhere; both give identical values.
//
//   uint32_t crc = Crc32c(data, size);
//   crc = Crc32cExtend(crc, more, more_size);   // == Crc32c of the concatenation
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mtps {

uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t size);
inline uint32_t Crc32c(const void* data, size_t size) { return Crc32cExtend(0, data, size); }

// The portable path alone, so a test can check that both paths agree.
uint32_t Crc32cExtendPortable(uint32_t crc, const void* data, size_t size);

}  // namespace mtps
