// Conversions between the fp32 weights that travel in pulls and pushes and the fp32,
// fp16 or bf16 weights a table stores (TableSpec::precision).
//
//   StoreWeights(Precision::kBf16, row, dim, slot_weights);   // round to nearest even
//   LoadWeights(Precision::kBf16, slot_weights, dim, row);    // exact widening
//
// Rounding is to nearest, ties to even. fp16 saturates at +-65504 instead of turning a
// large weight into an infinity that would poison every later update of the row; bf16
// has fp32's range and saturates only at fp32's largest finite value. Inputs are finite
// (gradients are validated before any row changes). Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>

#include "protocol/job_spec.h"

namespace mtps::ps {

// Bytes of one stored weight: 4, or 2 for fp16 and bf16.
size_t PrecisionBytes(Precision precision);

uint16_t FloatToHalf(float value);
float HalfToFloat(uint16_t bits);
uint16_t FloatToBf16(float value);
float Bf16ToFloat(uint16_t bits);

// dst holds n weights of `precision` (n * PrecisionBytes bytes, any alignment).
void StoreWeights(Precision precision, const float* src, size_t n, void* dst);
void LoadWeights(Precision precision, const void* src, size_t n, float* dst);
// Rounds n fp32 values to the nearest values `precision` can hold, in place.
void RoundToPrecision(Precision precision, float* values, size_t n);

}  // namespace mtps::ps
