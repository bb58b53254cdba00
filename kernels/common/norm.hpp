// Batch-norm formulas shared by the CPU and CUDA backends.
#pragma once
#include <math.h>

#include <cstdint>

#include "kernels/common/hd.hpp"

namespace recon {

// Shape of one batch norm: x is (n, c, hw), contiguous.
struct BatchNormParams {
  int64_t n, c, hw;
  float eps;
};

// invstd = 1 / sqrt(var + eps), computed in double.
RECON_HD float batch_norm_invstd(float var, float eps) { return (float)(1.0 / sqrt((double)var + (double)eps)); }

// running = (1 - momentum) running + momentum * batch, with the unbiased
// variance var * m / (m - 1) of the m = N * HW values of a channel.
RECON_HD void batch_norm_update_running(float mean, float var, int64_t m, float momentum, float& running_mean,
                                        float& running_var) {
  const double md = (double)m;
  const double unbiased = (double)var * md / (md - 1.0);
  running_mean = (float)((1.0 - momentum) * running_mean + momentum * (double)mean);
  running_var = (float)((1.0 - momentum) * running_var + momentum * unbiased);
}

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
