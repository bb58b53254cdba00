// CUDA resampling launchers: nearest and bilinear (align_corners = false)
// resizing of planes of (H, W), forward and backward. Plain C++: included by
// runtime/ops_pool.cpp in every build; the kernels are in resample.cu.
#pragma once
#include "kernels/common/resample.hpp"

namespace recon::cuda {

// y (planes, Ho, Wo) <- x (planes, H, W)
void upsample_nearest_forward(const ResampleParams& p, const float* x, float* y);
// dx (planes, H, W) <- g (planes, Ho, Wo): each input sums the outputs it is the source of.
void upsample_nearest_backward(const ResampleParams& p, const float* g, float* dx);
void upsample_bilinear_forward(const ResampleParams& p, const float* x, float* y);
// dx (planes, H, W) <- g (planes, Ho, Wo): each input sums tap weight * g over the outputs that use it.
void upsample_bilinear_backward(const ResampleParams& p, const float* g, float* dx);

}  // namespace recon::cuda
