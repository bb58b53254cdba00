// CPU resampling kernels: nearest and bilinear (align_corners = false)
// resizing of planes of (H, W), forward and backward (source positions in
// kernels/common/resample.hpp).
#pragma once
#include <cstdint>

#include "kernels/common/resample.hpp"

namespace recon::cpu {

// y (planes, Ho, Wo) <- x (planes, H, W)
void upsample_nearest_forward(const ResampleParams& p, const float* x, float* y);
// dx (planes, H, W) <- g (planes, Ho, Wo): each output's gradient added to its source.
void upsample_nearest_backward(const ResampleParams& p, const float* g, float* dx);
void upsample_bilinear_forward(const ResampleParams& p, const float* x, float* y);
void upsample_bilinear_backward(const ResampleParams& p, const float* g, float* dx);

}  // namespace recon::cpu
