// Finite-difference helpers shared by the layer gradient tests: random vectors, a fixed
// random projection that reduces a layer's output to a scalar, the central-difference
// comparison, and a fixture that checks every dense block of a DenseParameters.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "models/cpu_backend.h"
#include "models/dense_parameters.h"

namespace mtps::models::testing {

constexpr double kEps = 1e-6;

inline std::vector<double> RandomVector(size_t n, std::mt19937_64& rng, double scale = 0.7) {
  std::normal_distribution<double> normal(0.0, scale);
  std::vector<double> v(n);
  for (double& x : v) x = normal(rng);
  return v;
}

inline double Dot(const double* a, const std::vector<double>& r, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += a[i] * r[i];
  return s;
}

// Compares analytic[i] with the central difference of f() over (*vars)[i] for all i.
inline void ExpectGradient(std::vector<double>* vars, const std::vector<double>& analytic,
                           const std::function<double()>& f, const std::string& what,
                           const std::function<void()>& sync = [] {}) {
  ASSERT_EQ(vars->size(), analytic.size()) << what;
  for (size_t i = 0; i < vars->size(); ++i) {
    const double saved = (*vars)[i];
    (*vars)[i] = saved + kEps;
    sync();
    const double up = f();
    (*vars)[i] = saved - kEps;
    sync();
    const double down = f();
    (*vars)[i] = saved;
    sync();
    const double numeric = (up - down) / (2 * kEps);
    EXPECT_NEAR(analytic[i], numeric, 1e-8 + 1e-6 * std::abs(numeric)) << what << "[" << i << "]";
  }
}

class GradientTest : public ::testing::Test {
 protected:
  std::unique_ptr<Backend<double>> backend_ = MakeCpuBackend<double>(1);
  DenseParameters<double> params_{backend_.get()};
  std::mt19937_64 rng_{42};

  // Finalizes params_ and moves every value (biases start at 0) off ReLU kinks: an
  // all-zero input row would otherwise sit exactly on one, where differences are one-sided.
  void FinalizeParams() {
    params_.Finalize(1);
    std::vector<double> v(params_.size());
    params_.CopyValuesToHost(v.data());
    std::normal_distribution<double> noise(0.0, 0.2);
    for (double& x : v) x += noise(rng_);
    params_.CopyValuesFromHost(v.data());
  }

  // Checks the dense parameter gradients of params_ against f(); every block must get some,
  // except `exact_zero`, a block whose true gradient is 0 (it is still checked against f).
  void ExpectParamGradients(const std::function<double()>& f, const std::string& exact_zero = "") {
    std::vector<double> values(params_.size()), grads(params_.size());
    params_.CopyValuesToHost(values.data());
    params_.CopyGradsToHost(grads.data());
    for (const DenseBlock& b : params_.blocks()) {
      std::vector<double> block(values.begin() + b.offset, values.begin() + b.offset + b.size);
      std::vector<double> g(grads.begin() + b.offset, grads.begin() + b.offset + b.size);
      double max_abs = 0;
      for (double v : g) max_abs = std::max(max_abs, std::abs(v));
      if (b.name != exact_zero) {
        EXPECT_GT(max_abs, 0.0) << "no gradient reaches " << b.name;
      }
      ExpectGradient(&block, g, f, b.name, [&] {
        ASSERT_TRUE(params_.SetBlockValues(b.name, block.data(), block.size()).ok());
      });
    }
  }
};

}  // namespace mtps::models::testing
