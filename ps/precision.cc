// fp16 through the F16C instructions where the CPU has them (8 weights per instruction),
// else through the compiler's _Float16; bf16 by bit arithmetic (it is fp32's top half).
#include "ps/precision.h"

#include <algorithm>
#include <bit>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace mtps::ps {
namespace {

constexpr float kHalfMax = 65504.0f;

#if defined(__x86_64__)
bool HasF16c() {
  static const bool has = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
  return has;
}

__attribute__((target("avx,f16c"))) size_t StoreHalfF16c(const float* src, size_t n,
                                                         uint16_t* dst) {
  const __m256 hi = _mm256_set1_ps(kHalfMax), lo = _mm256_set1_ps(-kHalfMax);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_loadu_ps(src + i), lo), hi);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  return i;
}

__attribute__((target("avx,f16c"))) size_t LoadHalfF16c(const uint16_t* src, size_t n,
                                                        float* dst) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
  }
  return i;
}
#endif

}  // namespace

size_t PrecisionBytes(Precision precision) {
  return precision == Precision::kFp32 ? sizeof(float) : sizeof(uint16_t);
}

uint16_t FloatToHalf(float value) {
  const _Float16 h = static_cast<_Float16>(std::clamp(value, -kHalfMax, kHalfMax));
  return std::bit_cast<uint16_t>(h);
}

float HalfToFloat(uint16_t bits) { return static_cast<float>(std::bit_cast<_Float16>(bits)); }

uint16_t FloatToBf16(float value) {
  uint32_t u = std::bit_cast<uint32_t>(value);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // NaN
  // Rounding up from the largest finite values would reach infinity: saturate instead.
  if ((u & 0x7fffffffu) >= 0x7f7f8000u && (u & 0x7fffffffu) < 0x7f800000u) {
    return static_cast<uint16_t>(u >> 16);  // truncates to the largest finite value
  }
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float Bf16ToFloat(uint16_t bits) { return std::bit_cast<float>(uint32_t{bits} << 16); }

void StoreWeights(Precision precision, const float* src, size_t n, void* dst) {
  if (precision == Precision::kFp32) {
    std::memcpy(dst, src, n * sizeof(float));
    return;
  }
  // Slots are 2-byte aligned at least (16 bytes of metadata, then the weights).
  auto* out = static_cast<uint16_t*>(dst);
  size_t i = 0;
  if (precision == Precision::kFp16) {
#if defined(__x86_64__)
    if (HasF16c()) i = StoreHalfF16c(src, n, out);
#endif
    for (; i < n; ++i) out[i] = FloatToHalf(src[i]);
  } else {
    for (; i < n; ++i) out[i] = FloatToBf16(src[i]);
  }
}

void LoadWeights(Precision precision, const void* src, size_t n, float* dst) {
  if (precision == Precision::kFp32) {
    std::memcpy(dst, src, n * sizeof(float));
    return;
  }
  const auto* in = static_cast<const uint16_t*>(src);
  size_t i = 0;
  if (precision == Precision::kFp16) {
#if defined(__x86_64__)
    if (HasF16c()) i = LoadHalfF16c(in, n, dst);
#endif
    for (; i < n; ++i) dst[i] = HalfToFloat(in[i]);
  } else {
    for (; i < n; ++i) dst[i] = Bf16ToFloat(in[i]);
  }
}

void RoundToPrecision(Precision precision, float* values, size_t n) {
  if (precision == Precision::kFp32) return;
  constexpr size_t kBlock = 256;
  uint16_t stored[kBlock];
  for (size_t at = 0; at < n; at += kBlock) {
    const size_t m = std::min(kBlock, n - at);
    StoreWeights(precision, values + at, m, stored);
    LoadWeights(precision, stored, m, values + at);
  }
}

}  // namespace mtps::ps
