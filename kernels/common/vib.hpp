// The variational information bottleneck (method 2's information reduction,
// runtime/ops.hpp information_reduction), one element at a time, shared by
// the CPU loop and the CUDA kernels: the noise eps_i drawn from the Philox
// stream at (seed, offset) (the same number on every device, regenerated in
// the backward pass rather than stored), the reparameterised sample
// z = mu + exp(logvar / 2) eps, and the fused gradient of (z, kl). The KL
// term and its derivatives are kernels/common/loss.hpp's (kl_normal_*).
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common/hd.hpp"
#include "kernels/common/loss.hpp"
#include "kernels/common/philox.hpp"

namespace recon {

// eps_i ~ N(0, 1): element `index` of the draw reserved at (seed, offset)
// (the same numbers as Tensor::normal from that generator state).
RECON_HD float vib_eps(uint64_t seed, uint64_t offset, uint64_t index) { return philox_normal(seed, offset, index); }

// sigma = exp(logvar / 2).
RECON_HD float vib_sigma(float logvar) { return expf(0.5f * logvar); }

// z = mu + sigma eps.
RECON_HD float vib_sample(float mu, float logvar, float eps) { return mu + vib_sigma(logvar) * eps; }

// The fused backward of one element. dz: the gradient of z_i (0 when z was
// not used); gkl: the gradient of one KL term, i.e. dkl / N for kl = sum / N
// (0 when kl was not used); eps: the forward's noise (ignored when !sampled,
// the eval-mode z = mu).
//   dmu     = dz + gkl mu
//   dlogvar = dz 0.5 sigma eps + gkl 0.5 (exp(logvar) - 1)
struct VibGrad {
  float dmu, dlogvar;
};
RECON_HD VibGrad vib_grad_term(float mu, float logvar, float dz, float gkl, float eps, bool sampled) {
  VibGrad g;
  g.dmu = dz + kl_normal_grad_mu(mu, gkl);
  const float from_z = sampled ? dz * 0.5f * vib_sigma(logvar) * eps : 0.f;
  g.dlogvar = from_z + kl_normal_grad_logvar(logvar, gkl);
  return g;
}

}  // namespace recon
