// CRC32C: SSE4.2's crc32 instruction, 8 bytes at a time, when the CPU has it; otherwise
// a byte-wise table of the reflected Castagnoli polynomial 0x82F63B78.
#include "base/crc32c.h"

#include <array>
#include <cstring>

#include <nmmintrin.h>

namespace mtps {
namespace {

constexpr std::array<uint32_t, 256> MakeTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kTable = MakeTable();

[[gnu::target("sse4.2")]] uint32_t ExtendHardware(uint32_t crc, const uint8_t* p, size_t size) {
  uint64_t c = ~crc;
  while (size >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = _mm_crc32_u64(c, word);
    p += 8;
    size -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (size-- > 0) c32 = _mm_crc32_u8(c32, *p++);
  return ~c32;
}

}  // namespace

uint32_t Crc32cExtendPortable(uint32_t crc, const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  for (size_t i = 0; i < size; ++i) c = kTable[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return ~c;
}

uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t size) {
  static const bool kHardware = __builtin_cpu_supports("sse4.2");
  if (kHardware) return ExtendHardware(crc, static_cast<const uint8_t*>(data), size);
  return Crc32cExtendPortable(crc, data, size);
}

}  // namespace mtps
