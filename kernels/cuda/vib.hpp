// Launchers of the CUDA information-reduction kernels (kernels/cuda/vib.cu),
// with the arguments of the CPU twin (kernels/cpu/vib.hpp). All pointers are
// device pointers, dkl included (the KL's one-element gradient, read on the
// device). The KL sum is deterministic: per-block partials in double, then a
// fixed-tree second pass. The noise's Philox key and first counter come as
// PhiloxArgs (runtime/generator.hpp): values, or device memory inside a
// captured CUDA graph. Plain C++: included by runtime/ops_vib.cpp.
#pragma once
#include <cstdint>

#include "runtime/generator.hpp"

namespace recon::cuda {

// z_i = sampled ? mu_i + exp(lv_i / 2) eps_i : mu_i, eps_i from (key,
// first + i) of rng; kl[0] = scale * sum_i kl_normal_term(mu_i, lv_i).
void vib_forward(const float* mu, const float* logvar, float* z, float* kl, int64_t n, bool sampled, PhiloxArgs rng,
                 double scale);
// dmu, dlv (either may be null) from dz (null: read as 0) and dkl (null:
// read as 0; else dkl[0] * scale per KL term).
void vib_backward(const float* mu, const float* logvar, const float* dz, const float* dkl, float* dmu, float* dlv,
                  int64_t n, bool sampled, PhiloxArgs rng, float scale);

}  // namespace recon::cuda
