// CUDA pooling launchers over planes of (H, W): max and average 2-D pooling
// and global average pooling, forward and backward. Plain C++: included by
// runtime/ops_pool.cpp in every build; the kernels are in pool.cu.
#pragma once
#include <cstdint>

#include "kernels/common/pool.hpp"

namespace recon::cuda {

// y (planes, Ho, Wo) = max over each window of x (planes, H, W).
void max_pool2d_forward(const Pool2dParams& p, const float* x, float* y);
// dx (planes, H, W) = sum of g over the windows whose argmax (recomputed from x) is that element.
void max_pool2d_backward(const Pool2dParams& p, const float* x, const float* g, float* dx);
// y (planes, Ho, Wo) = window sum / (kh * kw), padding counted as zeros.
void avg_pool2d_forward(const Pool2dParams& p, const float* x, float* y);
// dx (planes, H, W) = sum over the windows holding each element of g / (kh * kw).
void avg_pool2d_backward(const Pool2dParams& p, const float* g, float* dx);
// y (planes) = mean of each plane of x (planes, hw), accumulated in double.
void global_avg_pool_forward(const float* x, float* y, int64_t planes, int64_t hw);
// dx (planes, hw) = g[plane] / hw.
void global_avg_pool_backward(const float* g, float* dx, int64_t planes, int64_t hw);

}  // namespace recon::cuda
