// CPU loops of the interaction and sequence ops of Backend<T> (pairwise dots, FM, layer
// norm, packed-sequence gather/scatter, positions, DIN features, weighted sums, attention).
//
//   CpuSelfAttention(args);   // what CpuBackend<T>::SelfAttention runs
//
// Header-only templates, included by cpu_backend.cc alone (compiled at -O3 there). Semantics
// are documented on the Backend methods of the same names in models/backend.h.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "models/backend.h"
#include "models/kernel_math.h"

namespace mtps::models::cpu {

constexpr double kLayerNormEpsilon = 1e-5;

inline int SequenceLength(const SequenceShape& s, int r) { return s.offsets[r + 1] - s.offsets[r]; }

template <typename T>
void Multiply(int rows, int cols, const T* a, int lda, const T* b, int ldb, T* c, int ldc,
              bool accumulate) {
  for (int r = 0; r < rows; ++r) {
    const T* __restrict ar = a + static_cast<size_t>(r) * lda;
    const T* __restrict br = b + static_cast<size_t>(r) * ldb;
    T* __restrict cr = c + static_cast<size_t>(r) * ldc;
    if (accumulate) {
      for (int k = 0; k < cols; ++k) cr[k] += ar[k] * br[k];
    } else {
      for (int k = 0; k < cols; ++k) cr[k] = ar[k] * br[k];
    }
  }
}

template <typename T>
void LayerNorm(int rows, int cols, const T* x, int ldx, const T* gamma, const T* beta, T* y,
               int ldy, T* xhat, T* rstd) {
  for (int r = 0; r < rows; ++r) {
    const T* xr = x + static_cast<size_t>(r) * ldx;
    T* hr = xhat + static_cast<size_t>(r) * cols;
    T mean = 0, var = 0;
    for (int c = 0; c < cols; ++c) mean += xr[c];
    mean /= T(cols);
    for (int c = 0; c < cols; ++c) var += (xr[c] - mean) * (xr[c] - mean);
    var /= T(cols);
    const T inv = T(1) / std::sqrt(var + T(kLayerNormEpsilon));
    rstd[r] = inv;
    for (int c = 0; c < cols; ++c) hr[c] = (xr[c] - mean) * inv;
    T* yr = y + static_cast<size_t>(r) * ldy;
    for (int c = 0; c < cols; ++c) yr[c] = gamma[c] * hr[c] + beta[c];
  }
}

template <typename T>
void LayerNormBackward(int rows, int cols, const T* xhat, const T* rstd, const T* gamma,
                       const T* dy, int lddy, T* dx, int lddx, T* dgamma, T* dbeta) {
  std::fill(dgamma, dgamma + cols, T(0));
  std::fill(dbeta, dbeta + cols, T(0));
  for (int r = 0; r < rows; ++r) {
    const T* hr = xhat + static_cast<size_t>(r) * cols;
    const T* dyr = dy + static_cast<size_t>(r) * lddy;
    T m1 = 0, m2 = 0;
    for (int c = 0; c < cols; ++c) {
      const T g = dyr[c] * gamma[c];
      m1 += g;
      m2 += g * hr[c];
      dgamma[c] += dyr[c] * hr[c];
      dbeta[c] += dyr[c];
    }
    m1 /= T(cols);
    m2 /= T(cols);
    T* dxr = dx + static_cast<size_t>(r) * lddx;
    for (int c = 0; c < cols; ++c) dxr[c] = rstd[r] * (dyr[c] * gamma[c] - m1 - hr[c] * m2);
  }
}

template <typename T>
void PairwiseDot(int rows, int fields, int dim, const T* x, int ldx, T* out, int ldo) {
  for (int r = 0; r < rows; ++r) {
    const T* xr = x + static_cast<size_t>(r) * ldx;
    T* o = out + static_cast<size_t>(r) * ldo;
    int k = 0;
    for (int i = 0; i < fields; ++i) {
      for (int j = i + 1; j < fields; ++j) {
        const T* __restrict a = xr + i * dim;
        const T* __restrict b = xr + j * dim;
        T dot = 0;
        for (int c = 0; c < dim; ++c) dot += a[c] * b[c];
        o[k++] = dot;
      }
    }
  }
}

template <typename T>
void PairwiseDotBackward(int rows, int fields, int dim, const T* x, int ldx, const T* dout,
                         int lddo, T* dx, int lddx) {
  for (int r = 0; r < rows; ++r) {
    const T* xr = x + static_cast<size_t>(r) * ldx;
    const T* d = dout + static_cast<size_t>(r) * lddo;
    T* dxr = dx + static_cast<size_t>(r) * lddx;
    int k = 0;
    for (int i = 0; i < fields; ++i) {
      for (int j = i + 1; j < fields; ++j, ++k) {
        const T g = d[k];
        for (int c = 0; c < dim; ++c) {
          dxr[i * dim + c] += g * xr[j * dim + c];
          dxr[j * dim + c] += g * xr[i * dim + c];
        }
      }
    }
  }
}

template <typename T>
void FmInteraction(int rows, int fields, int dim, const T* x, int ldx, T* out, int ldo) {
  for (int r = 0; r < rows; ++r) {
    const T* xr = x + static_cast<size_t>(r) * ldx;
    T* o = out + static_cast<size_t>(r) * ldo;
    for (int c = 0; c < dim; ++c) {
      T sum = 0, squares = 0;
      for (int f = 0; f < fields; ++f) {
        const T v = xr[f * dim + c];
        sum += v;
        squares += v * v;
      }
      o[c] = T(0.5) * (sum * sum - squares);
    }
  }
}

template <typename T>
void FmInteractionBackward(int rows, int fields, int dim, const T* x, int ldx, const T* dout,
                           int lddo, T* dx, int lddx) {
  for (int r = 0; r < rows; ++r) {
    const T* xr = x + static_cast<size_t>(r) * ldx;
    const T* d = dout + static_cast<size_t>(r) * lddo;
    T* dxr = dx + static_cast<size_t>(r) * lddx;
    for (int c = 0; c < dim; ++c) {
      T sum = 0;
      for (int f = 0; f < fields; ++f) sum += xr[f * dim + c];
      for (int f = 0; f < fields; ++f) dxr[f * dim + c] += d[c] * (sum - xr[f * dim + c]);
    }
  }
}

template <typename T>
void GatherSequence(const SequenceShape& s, const int32_t* rows, const T* table, T* out) {
  for (int i = 0; i < s.items; ++i) {
    const T* row = table + static_cast<size_t>(rows[i]) * s.dim;
    std::copy(row, row + s.dim, out + static_cast<size_t>(i) * s.dim);
  }
}

template <typename T>
void ScatterSequence(const SequenceShape& s, const int32_t* rows, const T* dout, T* table_grad) {
  for (int i = 0; i < s.items; ++i) {
    T* __restrict g = table_grad + static_cast<size_t>(rows[i]) * s.dim;
    const T* __restrict d = dout + static_cast<size_t>(i) * s.dim;
    for (int c = 0; c < s.dim; ++c) g[c] += d[c];
  }
}

// The position row of item j of a record of `len` items: 0 is the most recent.
inline int RecencyPosition(int len, int j) { return len - 1 - j; }

template <typename T>
void AddPositions(const SequenceShape& s, const T* positions, T* x) {
  for (int r = 0; r < s.batch; ++r) {
    const int len = SequenceLength(s, r);
    for (int j = 0; j < len; ++j) {
      T* __restrict xj = x + static_cast<size_t>(s.offsets[r] + j) * s.dim;
      const T* __restrict p = positions + static_cast<size_t>(RecencyPosition(len, j)) * s.dim;
      for (int c = 0; c < s.dim; ++c) xj[c] += p[c];
    }
  }
}

template <typename T>
void AddPositionsBackward(const SequenceShape& s, const T* dx, T* dpositions) {
  for (int r = 0; r < s.batch; ++r) {
    const int len = SequenceLength(s, r);
    for (int j = 0; j < len; ++j) {
      const T* __restrict d = dx + static_cast<size_t>(s.offsets[r] + j) * s.dim;
      T* __restrict p = dpositions + static_cast<size_t>(RecencyPosition(len, j)) * s.dim;
      for (int c = 0; c < s.dim; ++c) p[c] += d[c];
    }
  }
}

template <typename T>
void AttentionFeatures(const SequenceShape& s, const T* x, const T* target, int ldt,
                       T* features) {
  const int d = s.dim;
  for (int r = 0; r < s.batch; ++r) {
    const T* __restrict t = target + static_cast<size_t>(r) * ldt;
    const int len = SequenceLength(s, r);
    for (int j = 0; j < len; ++j) {
      const size_t row = static_cast<size_t>(s.offsets[r] + j);
      const T* __restrict h = x + row * d;
      T* __restrict f = features + row * 4 * d;
      for (int c = 0; c < d; ++c) {
        f[c] = h[c];
        f[d + c] = t[c];
        f[2 * d + c] = h[c] - t[c];
        f[3 * d + c] = h[c] * t[c];
      }
    }
  }
}

template <typename T>
void AttentionFeaturesBackward(const SequenceShape& s, const T* x, const T* target, int ldt,
                               const T* dfeatures, T* dx, T* dtarget, int lddt) {
  const int d = s.dim;
  for (int r = 0; r < s.batch; ++r) {
    const int len = SequenceLength(s, r);
    const T* __restrict t = target + static_cast<size_t>(r) * ldt;
    T* __restrict dt = dtarget + static_cast<size_t>(r) * lddt;
    for (int j = 0; j < len; ++j) {
      const size_t row = static_cast<size_t>(s.offsets[r] + j);
      const T* __restrict h = x + row * d;
      const T* __restrict f = dfeatures + row * 4 * d;
      T* __restrict dh = dx + row * d;
      for (int c = 0; c < d; ++c) {
        dh[c] += f[c] + f[2 * d + c] + f[3 * d + c] * t[c];
        dt[c] += f[d + c] - f[2 * d + c] + f[3 * d + c] * h[c];
      }
    }
  }
}

template <typename T>
void SequenceWeightedSum(const SequenceShape& s, const T* weights, const T* x, T* out, int ldo) {
  for (int r = 0; r < s.batch; ++r) {
    const int len = SequenceLength(s, r);
    T* __restrict o = out + static_cast<size_t>(r) * ldo;
    std::fill(o, o + s.dim, T(0));
    for (int j = 0; j < len; ++j) {
      const size_t row = static_cast<size_t>(s.offsets[r] + j);
      const T w = weights != nullptr ? weights[row] : T(1) / T(len);
      const T* __restrict h = x + row * s.dim;
      for (int c = 0; c < s.dim; ++c) o[c] += w * h[c];
    }
  }
}

template <typename T>
void SequenceWeightedSumBackward(const SequenceShape& s, const T* weights, const T* x,
                                 const T* dout, int lddo, T* dweights, T* dx) {
  for (int r = 0; r < s.batch; ++r) {
    const int len = SequenceLength(s, r);
    const T* __restrict d = dout + static_cast<size_t>(r) * lddo;
    for (int j = 0; j < len; ++j) {
      const size_t row = static_cast<size_t>(s.offsets[r] + j);
      const T w = weights != nullptr ? weights[row] : T(1) / T(len);
      const T* __restrict h = x + row * s.dim;
      T* __restrict dh = dx + row * s.dim;
      T dot = 0;
      for (int c = 0; c < s.dim; ++c) {
        dot += d[c] * h[c];
        dh[c] += w * d[c];
      }
      if (dweights != nullptr) dweights[row] = dot;
    }
  }
}

template <typename T>
void SequenceSoftmax(const SequenceShape& s, T* scores) {
  for (int r = 0; r < s.batch; ++r) {
    T* w = scores + s.offsets[r];
    const int len = SequenceLength(s, r);
    if (len == 0) continue;
    const T m = *std::max_element(w, w + len);
    T sum = 0;
    for (int j = 0; j < len; ++j) {
      w[j] = Exp(w[j] - m);
      sum += w[j];
    }
    for (int j = 0; j < len; ++j) w[j] /= sum;
  }
}

template <typename T>
void SequenceSoftmaxBackward(const SequenceShape& s, const T* w, T* dw) {
  for (int r = 0; r < s.batch; ++r) {
    const int begin = s.offsets[r], len = SequenceLength(s, r);
    T dot = 0;
    for (int j = 0; j < len; ++j) dot += w[begin + j] * dw[begin + j];
    for (int j = 0; j < len; ++j) dw[begin + j] = w[begin + j] * (dw[begin + j] - dot);
  }
}

template <typename T>
void SelfAttention(const AttentionArgs<T>& a) {
  const SequenceShape& s = a.shape;
  const int d = s.dim, L = s.max_len, dh = d / a.heads, ld = 3 * d;
  const T scale = T(1) / std::sqrt(T(dh));
  for (int r = 0; r < s.batch; ++r) {
    const int len = SequenceLength(s, r);
    const T* base = a.qkv + static_cast<size_t>(s.offsets[r]) * ld;
    for (int h = 0; h < a.heads; ++h) {
      T* probs = a.probs + (static_cast<size_t>(r) * a.heads + h) * L * L;
      for (int i = 0; i < len; ++i) {
        T* o = a.out + static_cast<size_t>(s.offsets[r] + i) * d + h * dh;
        std::fill(o, o + dh, T(0));
        const T* q = base + static_cast<size_t>(i) * ld + h * dh;
        T* p = probs + static_cast<size_t>(i) * L;
        T m = -INFINITY;
        for (int j = 0; j < len; ++j) {
          const T* k = base + static_cast<size_t>(j) * ld + d + h * dh;
          T dot = 0;
          for (int c = 0; c < dh; ++c) dot += q[c] * k[c];
          p[j] = dot * scale;
          m = std::max(m, p[j]);
        }
        T sum = 0;
        for (int j = 0; j < len; ++j) {
          p[j] = Exp(p[j] - m);
          sum += p[j];
        }
        const T inv = T(1) / sum;
        for (int j = 0; j < len; ++j) {
          p[j] *= inv;
          const T* v = base + static_cast<size_t>(j) * ld + 2 * d + h * dh;
          for (int c = 0; c < dh; ++c) o[c] += p[j] * v[c];
        }
      }
    }
  }
}

template <typename T>
void SelfAttentionBackward(const AttentionArgs<T>& a, const T* dout, T* dqkv) {
  const SequenceShape& s = a.shape;
  const int d = s.dim, L = s.max_len, dh = d / a.heads, ld = 3 * d;
  const T scale = T(1) / std::sqrt(T(dh));
  std::fill(dqkv, dqkv + static_cast<size_t>(s.items) * ld, T(0));
  std::vector<T> ds(L);
  for (int r = 0; r < s.batch; ++r) {
    const int len = SequenceLength(s, r);
    const T* base = a.qkv + static_cast<size_t>(s.offsets[r]) * ld;
    T* dbase = dqkv + static_cast<size_t>(s.offsets[r]) * ld;
    for (int h = 0; h < a.heads; ++h) {
      const T* probs = a.probs + (static_cast<size_t>(r) * a.heads + h) * L * L;
      for (int i = 0; i < len; ++i) {
        const T* p = probs + static_cast<size_t>(i) * L;
        const T* dout_i = dout + static_cast<size_t>(s.offsets[r] + i) * d + h * dh;
        const T* q = base + static_cast<size_t>(i) * ld + h * dh;
        T* dq = dbase + static_cast<size_t>(i) * ld + h * dh;
        T weighted = 0;
        for (int j = 0; j < len; ++j) {
          const T* v = base + static_cast<size_t>(j) * ld + 2 * d + h * dh;
          T* dv = dbase + static_cast<size_t>(j) * ld + 2 * d + h * dh;
          T dp = 0;
          for (int c = 0; c < dh; ++c) {
            dp += dout_i[c] * v[c];
            dv[c] += p[j] * dout_i[c];
          }
          ds[j] = dp;
          weighted += p[j] * dp;
        }
        for (int j = 0; j < len; ++j) {
          const T g = p[j] * (ds[j] - weighted) * scale;
          const T* k = base + static_cast<size_t>(j) * ld + d + h * dh;
          T* dk = dbase + static_cast<size_t>(j) * ld + d + h * dh;
          for (int c = 0; c < dh; ++c) {
            dq[c] += g * k[c];
            dk[c] += g * q[c];
          }
        }
      }
    }
  }
}

}  // namespace mtps::models::cpu
