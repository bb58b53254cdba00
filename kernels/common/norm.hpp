// Batch-norm formulas shared by the CPU and CUDA backends.
#pragma once
#include <cstdint>

#include "kernels/common/hd.hpp"

namespace recon {

// y = (x - mean) * invstd * weight + bias; weight 1 and bias 0 when affine is off.
RECON_HD float batch_norm_apply(float x, float mean, float invstd, float weight, float bias) {
  return (x - mean) * invstd * weight + bias;
}

// dL/dx of batch norm. Training (statistics from the batch of m = N*H*W
// values per channel): dx = w * invstd / m * (m g - sum_g - xhat * sum_gxhat);
// eval (fixed running statistics): dx = w * invstd * g.
RECON_HD float batch_norm_grad_input(bool training, float g, float xhat, float weight, float invstd, float sum_g,
                                     float sum_gxhat, int64_t m) {
  if (!training) return g * weight * invstd;
  const float inv_m = 1.f / (float)m;
  return weight * invstd * (g - inv_m * sum_g - xhat * inv_m * sum_gxhat);
}

}  // namespace recon
