// Launchers of the fused SSIM kernels (kernels/cuda/ssim.cu); raw device
// pointers, runtime stream, no synchronisation. Plain C++: included by
// runtime/ops_ssim.cpp in every build.
#pragma once
#include <cstdint>

#include "kernels/common/ssim.hpp"

namespace recon::cuda {

// x, y, map (planes, h, w); map may be null (ssim_loss without gradients);
// partials (4, planes, h, w) or null; block_sums (ssim_tile_count(p)) or
// null: each block's sum of its SSIM values, for ssim_loss_finalize.
void ssim_forward(const SsimParams& p, const float* x, const float* y, float* map, float* partials,
                  float* block_sums);
// out[0] = 1 - sum(block_sums[0..count)) / numel, summed in a fixed order.
void ssim_loss_finalize(const float* block_sums, int64_t count, int64_t numel, float* out);
// dx, dy (planes, h, w), either may be null, from the saved partials and the
// upstream gradient (g_map ? g_map[i] : g_scalar[0]) * g_scale.
void ssim_backward(const SsimParams& p, const float* x, const float* y, const float* partials, const float* g_map,
                   const float* g_scalar, float g_scale, float* dx, float* dy);

}  // namespace recon::cuda
