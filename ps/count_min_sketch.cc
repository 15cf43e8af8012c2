// CountMinSketch: four hashed rows of counters with conservative update and periodic
// halving, sized once at construction (no allocation afterwards).
#include "ps/count_min_sketch.h"

#include <algorithm>
#include <limits>

#include "ps/key_hash.h"

namespace mtps::ps {
namespace {

// Four 16-bit row indexes are not enough for wide sketches, so each row gets its own mix.
constexpr uint64_t kRowSalts[CountMinSketch::kDepth] = {
    0xa4093822299f31d0ULL, 0x082efa98ec4e6c89ULL, 0x452821e638d01377ULL, 0xbe5466cf34e90c6cULL};

size_t RoundedWidth(size_t width) {
  size_t w = 64;
  while (w < width) w <<= 1;
  return w;
}

}  // namespace

size_t CountMinSketch::BytesFor(size_t width) {
  return PageBuffer::RoundUpToPages(kDepth * RoundedWidth(width) * sizeof(uint32_t));
}

CountMinSketch::CountMinSketch(size_t width) {
  const size_t w = RoundedWidth(width);
  mask_ = w - 1;
  buffer_ = PageBuffer(kDepth * w * sizeof(uint32_t));  // zero pages: all counts 0
  counters_ = buffer_.as<uint32_t>();
  age_every_ = 8 * static_cast<uint64_t>(w);
}

uint32_t CountMinSketch::Increment(uint64_t key) {
  uint32_t* cells[kDepth];
  uint32_t least = std::numeric_limits<uint32_t>::max();
  for (int r = 0; r < kDepth; ++r) {
    cells[r] = &counters_[r * (mask_ + 1) + (MixKey(key, kRowSalts[r]) & mask_)];
    least = std::min(least, *cells[r]);
  }
  if (least != std::numeric_limits<uint32_t>::max()) ++least;
  // Conservative update: raise only the counters below the new estimate.
  for (int r = 0; r < kDepth; ++r) *cells[r] = std::max(*cells[r], least);
  if (++increments_ >= age_every_) Age();
  return least;
}

uint32_t CountMinSketch::Estimate(uint64_t key) const {
  uint32_t least = std::numeric_limits<uint32_t>::max();
  for (int r = 0; r < kDepth; ++r) {
    least = std::min(least, counters_[r * (mask_ + 1) + (MixKey(key, kRowSalts[r]) & mask_)]);
  }
  return least;
}

void CountMinSketch::Age() {
  const size_t n = kDepth * (mask_ + 1);
  for (size_t i = 0; i < n; ++i) counters_[i] >>= 1;
  increments_ = 0;
}

}  // namespace mtps::ps
