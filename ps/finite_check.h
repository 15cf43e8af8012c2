// FirstOutOfRange / FirstNonFinite: where the first value of a float buffer that is NaN,
// infinite or beyond a magnitude is, in one fast pass; every gradient and initial value a
// server receives goes through it before use.
//
//   size_t bad = FirstOutOfRange(grads, n, 1e6f);
//   if (bad != n) return InvalidArgument("gradient out of range at " + std::to_string(bad));
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>

namespace mtps::ps {

// The index of the first value v with !(|v| <= limit) — NaN, or beyond `limit` (an infinite
// `limit` counts as the largest float, so infinities are always out of range) — or n when
// every value is in range.
size_t FirstOutOfRange(const float* values, size_t n, float limit);

// The index of the first non-finite value, or n when all are finite.
size_t FirstNonFinite(const float* values, size_t n);

}  // namespace mtps::ps
