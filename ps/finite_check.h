// FirstNonFinite: where the first NaN or infinity of a float buffer is, in one fast pass;
// every gradient and initial value a server receives goes through it before use.
//
//   size_t bad = FirstNonFinite(grads, n);
//   if (bad != n) return InvalidArgument("non-finite gradient at " + std::to_string(bad));
//
// Thread-safety: a pure function.
#pragma once

#include <cstddef>

namespace mtps::ps {

// The index of the first non-finite value, or n when all are finite.
size_t FirstNonFinite(const float* values, size_t n);

}  // namespace mtps::ps
