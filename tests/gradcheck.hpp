// Test helpers: central finite-difference gradient checks and comparisons
// against naive references accumulated in double.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "runtime/ops.hpp"

namespace recon::test {

// Random input of `shape` from a fixed seed (values in [lo, hi)).
inline Tensor rand_tensor(const Shape& shape, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  Generator g(seed);
  return Tensor::uniform(shape, g, lo, hi);
}

// Largest |a - b| / (atol + rtol |b|) over the elements; <= 1 means close.
inline double closeness(const std::vector<float>& a, const std::vector<double>& b, double atol, double rtol) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double diff = std::fabs((double)a[i] - b[i]);
    double e = diff == 0 ? 0 : diff / (atol + rtol * std::fabs(b[i]));  // zero tolerances: exact match
    if (std::isnan(e)) return INFINITY;  // a NaN on either side is a failure
    if (e > worst) worst = e;
  }
  return worst;
}

inline void check_close(const Tensor& got, const std::vector<double>& want, double atol = 1e-5, double rtol = 1e-4,
                        const std::string& what = "") {
  INFO(what);
  REQUIRE(got.numel() == (int64_t)want.size());
  CHECK(closeness(got.to_vector(), want, atol, rtol) <= 1.0);
}

struct GradcheckOptions {
  double eps = 1e-2;   // finite-difference step (float32 forward: smaller steps drown in rounding)
  double atol = 5e-3;  // absolute tolerance on each gradient element
  double rtol = 1e-2;  // relative tolerance
  // Skip an element if moving it by +-eps crosses a kink of the function
  // (the caller says where kinks are, e.g. x near 0 for relu).
  std::function<bool(const std::vector<Tensor>&, size_t input, int64_t index)> skip;
};

// Checks the analytic gradients of `f` (any output; reduced as sum(out * w)
// with fixed random weights w) against central differences for every input
// that requires grad. Inputs are perturbed in place on the CPU.
inline void gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> inputs,
                      const GradcheckOptions& opt = {}) {
  for (auto& t : inputs)
    if (t.defined()) t = t.clone().set_requires_grad(t.requires_grad());
  Tensor out = f(inputs);
  Tensor w = rand_tensor(out.shape(), 987654321, 0.5f, 1.5f);
  auto objective = [&](const std::vector<Tensor>& in) -> double {
    NoGradGuard ng;
    std::vector<float> o = f(in).to_vector(), wv = w.to_vector();
    double s = 0;
    for (size_t i = 0; i < o.size(); ++i) s += (double)o[i] * wv[i];
    return s;
  };
  for (auto& t : inputs)
    if (t.defined() && t.requires_grad()) t.zero_grad();
  sum(mul(out, w)).backward();
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor& t = inputs[k];
    if (!t.defined() || !t.requires_grad()) continue;
    REQUIRE_MESSAGE(t.grad().defined(), "input " << k << " received no gradient");
    std::vector<float> analytic = t.grad().to_vector();
    float* p = t.data();
    int fails = 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (opt.skip && opt.skip(inputs, k, i)) continue;
      const float orig = p[i];
      p[i] = orig + (float)opt.eps;
      double up = objective(inputs);
      p[i] = orig - (float)opt.eps;
      double down = objective(inputs);
      p[i] = orig;
      double numeric = (up - down) / (2 * opt.eps);
      double err = std::fabs(numeric - analytic[i]);
      if (!(err <= opt.atol + opt.rtol * std::fabs(numeric)) && fails++ < 5) {
        FAIL_CHECK("gradient of input " << k << " at " << i << ": analytic " << analytic[i] << ", numeric "
                                        << numeric);
      }
    }
    CHECK_MESSAGE(fails == 0, fails << " gradient elements of input " << k << " disagree");
  }
}

// Skip rule for ops with a kink at 0 (relu, leaky_relu, clamp bounds, max):
// elements of input 0 within eps of `at`.
inline std::function<bool(const std::vector<Tensor>&, size_t, int64_t)> skip_near(float at, double eps) {
  return [at, eps](const std::vector<Tensor>& in, size_t k, int64_t i) {
    return k == 0 && std::fabs(in[0].data()[i] - at) < 2 * eps;
  };
}

}  // namespace recon::test
