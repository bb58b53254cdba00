// CPU batch-norm kernels over (N, C, HW) data: per-channel statistics, the
// normalisation, the running-statistics update and the backward pieces
// (formulas in kernels/common/norm.hpp).
#pragma once
#include <cstdint>

#include "kernels/common/norm.hpp"  // BatchNormParams

namespace recon::cpu {

// Per channel: mean and biased variance of x (N, C, HW), accumulated in double.
void batch_norm_stats(const BatchNormParams& p, const float* x, float* mean, float* var);
// invstd[c] = 1 / sqrt(var[c] + eps).
void batch_norm_invstd(const BatchNormParams& p, const float* var, float* invstd);
// running = (1 - momentum) running + momentum * batch, with the unbiased
// variance var * m / (m - 1), m = N * HW.
void batch_norm_update_running(const BatchNormParams& p, const float* mean, const float* var, float momentum,
                               float* running_mean, float* running_var);
// y (N, C, HW) = batch norm of x; weight, bias (C) may be null (affine off).
void batch_norm_forward(const BatchNormParams& p, const float* x, const float* mean, const float* invstd,
                        const float* weight, const float* bias, float* y);
// Per channel: sum_g = sum g, sum_gxhat = sum g * (x - mean) * invstd. These
// are dbias and dweight, and the training-mode input gradient needs them too.
void batch_norm_backward_reduce(const BatchNormParams& p, const float* g, const float* x, const float* mean,
                                const float* invstd, float* sum_g, float* sum_gxhat);
// dx (N, C, HW); weight may be null; sum_g / sum_gxhat are read only in training.
void batch_norm_backward_input(const BatchNormParams& p, bool training, const float* g, const float* x,
                               const float* mean, const float* invstd, const float* weight, const float* sum_g,
                               const float* sum_gxhat, float* dx);

}  // namespace recon::cpu
