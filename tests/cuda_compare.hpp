// CUDA-vs-CPU comparison helpers (DESIGN.md, Tests): run an op on the CPU
// and on the CUDA device (a real GPU or the SIMT emulator), then compare by
// normalised MSE under a per-op threshold, with NaN/Inf checks and guard
// bytes around every device allocation. Cases that need CUDA are decorated
// with `* recon::test::needs_cuda()`: doctest reports them as skipped on a
// machine without CUDA, never as passed.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "runtime/cuda_context.hpp"
#include "runtime/ops.hpp"

namespace recon::test {

inline auto needs_cuda() { return doctest::skip(!cuda_available()); }

// sum((got - ref)^2) / max(sum(ref^2), tiny), accumulated in double.
inline double nmse(const std::vector<float>& got, const std::vector<float>& ref) {
  REQUIRE(got.size() == ref.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double d = (double)got[i] - ref[i];
    num += d * d;
    den += (double)ref[i] * ref[i];
  }
  return num / (den > 1e-30 ? den : 1e-30);
}

inline bool all_finite(const std::vector<float>& v) {
  for (float x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

// Checks a CUDA result against the CPU reference: same shape, on the CUDA
// device, finite where the reference is, normalised MSE <= threshold, and
// the guard bytes of its allocation intact.
inline void check_matches(const Tensor& cuda_out, const Tensor& cpu_ref, double threshold, const std::string& what) {
  INFO(what);
  REQUIRE(cuda_out.defined());
  REQUIRE(cpu_ref.defined());
  CHECK(cuda_out.device().is_cuda());
  REQUIRE(cuda_out.shape() == cpu_ref.shape());
#if defined(RECON_WITH_CUDA)
  if (cuda_out.numel() > 0) CHECK_NOTHROW(cuda::check_guards(cuda_out.impl()->storage->data()));
#endif
  std::vector<float> got = cuda_out.to_vector(), ref = cpu_ref.to_vector();
  CHECK_MESSAGE(all_finite(got) == all_finite(ref), "NaN/Inf in one result but not the other");
  const double e = nmse(got, ref);
  CHECK_MESSAGE(e <= threshold, "normalised MSE " << e << " above " << threshold);
}

// Turns guard bytes on for the scope (allocations made inside are guarded).
struct GuardScope {
  GuardScope() {
#if defined(RECON_WITH_CUDA)
    cuda::set_guard_checks(true);
#endif
  }
  ~GuardScope() {
#if defined(RECON_WITH_CUDA)
    cuda::set_guard_checks(false);
#endif
  }
};

}  // namespace recon::test
