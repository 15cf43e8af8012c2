// Scalar math shared by the CPU loops and the CUDA kernels, so both backends compute the
// same numbers: numerically stable losses from logits, and dropout's counter-based hash.
//
//   T loss, pred, grad;
//   BceFromLogit(z, y, &loss, &pred, &grad);   // never log(0), whatever z
#pragma once

#include <cmath>
#include <cstdint>

#include "base/hash.h"

#ifdef __CUDACC__
#define MTPS_HOST_DEVICE __host__ __device__
#else
#define MTPS_HOST_DEVICE
#endif

namespace mtps::models {

MTPS_HOST_DEVICE inline float Exp(float x) { return expf(x); }
MTPS_HOST_DEVICE inline double Exp(double x) { return exp(x); }
MTPS_HOST_DEVICE inline float Log(float x) { return logf(x); }
MTPS_HOST_DEVICE inline double Log(double x) { return log(x); }
MTPS_HOST_DEVICE inline float Log1p(float x) { return log1pf(x); }
MTPS_HOST_DEVICE inline double Log1p(double x) { return log1p(x); }

template <typename T>
MTPS_HOST_DEVICE inline T Sigmoid(T z) {
  if (z >= T(0)) return T(1) / (T(1) + Exp(-z));
  T e = Exp(z);
  return e / (T(1) + e);
}

// log(1 + exp(x)) without overflow.
template <typename T>
MTPS_HOST_DEVICE inline T Softplus(T x) {
  return x > T(0) ? x + Log1p(Exp(-x)) : Log1p(Exp(x));
}

// Binary cross-entropy of p = sigmoid(z) against y in [0, 1]:
// loss = softplus(z) - y * z, dloss/dz = p - y.
template <typename T>
MTPS_HOST_DEVICE inline void BceFromLogit(T z, T y, T* loss, T* pred, T* grad) {
  T p = Sigmoid(z);
  *loss = Softplus(z) - y * z;
  *pred = p;
  *grad = p - y;
}

// Cross-entropy of p = sigmoid(a) * sigmoid(b) (ESMM's pCTCVR) against y, stable for any
// a, b: log p = -softplus(-a) - softplus(-b) and
// log(1 - p) = logsumexp(-a, -b, -a-b) - softplus(-a) - softplus(-b).
template <typename T>
MTPS_HOST_DEVICE inline void ProductBceFromLogits(T a, T b, T y, T* loss, T* pred, T* grad_a,
                                                  T* grad_b) {
  T u = -a, v = -b, w = -a - b;
  T m = u > v ? u : v;
  m = m > w ? m : w;
  T eu = Exp(u - m), ev = Exp(v - m), ew = Exp(w - m);
  T sum = eu + ev + ew;
  T lse = m + Log(sum);
  *loss = Softplus(u) + Softplus(v) - (T(1) - y) * lse;
  *pred = Sigmoid(a) * Sigmoid(b);
  *grad_a = -Sigmoid(u) + (T(1) - y) * (eu + ew) / sum;
  *grad_b = -Sigmoid(v) + (T(1) - y) * (ev + ew) / sum;
}

// Uniform in [0, 1) from (seed, index), 24 bits: identical on host and device.
MTPS_HOST_DEVICE inline float HashUniform(uint64_t seed, uint64_t index) {
  return static_cast<float>(Mix64(seed ^ Mix64(index)) >> 40) * (1.0f / 16777216.0f);
}

}  // namespace mtps::models
