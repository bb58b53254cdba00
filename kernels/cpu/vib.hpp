// CPU kernels of the information-reduction op (runtime/ops_vib.cpp): the
// fused forward (sample + KL sum) and the fused backward, with the noise
// regenerated from the Philox stream at (seed, offset). Formulas:
// kernels/common/vib.hpp.
#pragma once
#include <cstdint>

namespace recon::cpu {

// z_i = sampled ? mu_i + exp(lv_i / 2) eps_i : mu_i, eps_i from (seed,
// offset + i); kl[0] = scale * sum_i kl_normal_term(mu_i, lv_i), summed in
// double in a fixed chunk order.
void vib_forward(const float* mu, const float* logvar, float* z, float* kl, int64_t n, bool sampled, uint64_t seed,
                 uint64_t offset, double scale);
// dmu, dlv (either may be null: not needed) from dz (null: z unused, read
// as 0) and dkl (null: kl unused; else its one element, times scale).
void vib_backward(const float* mu, const float* logvar, const float* dz, const float* dkl, float* dmu, float* dlv,
                  int64_t n, bool sampled, uint64_t seed, uint64_t offset, float scale);

}  // namespace recon::cpu
