// CUDA batch-norm launchers over (N, C, HW) data: per-channel statistics
// (with invstd and the running-statistics update fused), the normalisation,
// and the backward reduce and input-gradient passes. Plain C++: included by
// runtime/ops_norm.cpp in every build; the kernels are in norm.cu.
#pragma once
#include "kernels/common/norm.hpp"

namespace recon::cuda {

// Training statistics of x (N, C, HW): mean (C) and invstd (C) = 1 / sqrt(var + eps)
// with the biased variance; when running_mean / running_var (C) are not null
// they are updated in place with the unbiased variance and `momentum`.
void batch_norm_stats(const BatchNormParams& p, const float* x, float momentum, float* mean, float* invstd,
                      float* running_mean, float* running_var);
// Eval: invstd (C) from the running variance (C).
void batch_norm_invstd(const BatchNormParams& p, const float* var, float* invstd);
// y (N, C, HW) = batch norm of x; weight, bias (C) may be null (affine off).
void batch_norm_forward(const BatchNormParams& p, const float* x, const float* mean, const float* invstd,
                        const float* weight, const float* bias, float* y);
// Per channel: sum_g = sum g (dbias), sum_gxhat = sum g * (x - mean) * invstd (dweight).
void batch_norm_backward_reduce(const BatchNormParams& p, const float* g, const float* x, const float* mean,
                                const float* invstd, float* sum_g, float* sum_gxhat);
// dx (N, C, HW); weight may be null; sum_g / sum_gxhat are read only in training.
void batch_norm_backward_input(const BatchNormParams& p, bool training, const float* g, const float* x,
                               const float* mean, const float* invstd, const float* weight, const float* sum_g,
                               const float* sum_gxhat, float* dx);

}  // namespace recon::cuda
