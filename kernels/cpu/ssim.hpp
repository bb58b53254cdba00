// CPU SSIM kernels (formulas in kernels/common/ssim.hpp): the separable
// Gaussian forward that writes the SSIM map and, when gradients are needed,
// the four per-pixel partial maps; the 1 - mean reduction of ssim_loss; and
// the backward that filters the partials with the adjoint window. OpenMP over
// (plane, row); sums in a fixed order, so results do not depend on threads.
#pragma once
#include <cstdint>

#include "kernels/common/ssim.hpp"

namespace recon::cpu {

// x, y, map (planes, h, w); partials (4, planes, h, w) or null (no gradient).
void ssim_forward(const SsimParams& p, const float* x, const float* y, float* map, float* partials);
// out[0] = 1 - mean(map) over numel elements (summed in double per plane).
void ssim_loss_from_map(const SsimParams& p, const float* map, float* out);
// dx, dy (planes, h, w), either may be null (not needed), from the saved
// partials and the upstream gradient G = (g_map ? g_map[i] : g_scalar[0]) * g_scale.
void ssim_backward(const SsimParams& p, const float* x, const float* y, const float* partials, const float* g_map,
                   const float* g_scalar, float g_scale, float* dx, float* dy);

}  // namespace recon::cpu
