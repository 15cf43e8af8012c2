// HyperLogLog registers: the leading-zero count of the hash bits after the register index,
// plus one; the estimate is the bias-corrected harmonic mean of 2^-register.
#include "ps/hyperloglog.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <string>

#include "ps/key_hash.h"

namespace mtps::ps {
namespace {

constexpr uint64_t kHllSalt = 0x3c6ef372fe94f82bULL;

double Alpha(size_t m) {
  switch (m) {
    case 16: return 0.673;
    case 32: return 0.697;
    case 64: return 0.709;
    default: return 0.7213 / (1.0 + 1.079 / static_cast<double>(m));
  }
}

}  // namespace

HyperLogLog::HyperLogLog(int precision)
    : precision_(std::clamp(precision, 4, 18)), registers_(size_t{1} << precision_, 0) {}

void HyperLogLog::Add(uint64_t key) {
  const uint64_t h = MixKey(key, kHllSalt);
  const size_t index = static_cast<size_t>(h >> (64 - precision_));
  // The remaining 64 - p bits, with a stop bit so an all-zero tail still ends.
  const uint64_t rest = (h << precision_) | (uint64_t{1} << (precision_ - 1));
  const uint8_t rank = static_cast<uint8_t>(std::countl_zero(rest) + 1);
  if (rank > registers_[index]) registers_[index] = rank;
}

double HyperLogLog::Estimate() const {
  const size_t m = registers_.size();
  double sum = 0;
  size_t zeros = 0;
  for (uint8_t r : registers_) {
    sum += std::ldexp(1.0, -static_cast<int>(r));
    if (r == 0) ++zeros;
  }
  const double md = static_cast<double>(m);
  const double raw = Alpha(m) * md * md / sum;
  if (raw <= 2.5 * md && zeros > 0) return md * std::log(md / static_cast<double>(zeros));
  return raw;
}

Status HyperLogLog::Merge(const HyperLogLog& other) {
  if (other.precision_ != precision_) {
    return FailedPrecondition("cannot merge HyperLogLog of precision " +
                              std::to_string(other.precision_) + " into one of precision " +
                              std::to_string(precision_));
  }
  for (size_t i = 0; i < registers_.size(); ++i) {
    registers_[i] = std::max(registers_[i], other.registers_[i]);
  }
  return Status::OK();
}

double HyperLogLog::RelativeError() const {
  return 1.04 / std::sqrt(static_cast<double>(registers_.size()));
}

}  // namespace mtps::ps
