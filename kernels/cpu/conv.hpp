// CPU convolution kernels: im2col / col2im around OpenBLAS GEMM.
// The batch is processed in chunks of images whose column matrix fits in
// kConvColBudget floats; each chunk is one GEMM. conv_transpose2d runs these
// same kernels with its conv2d-view geometry (see kernels/common/conv.hpp):
// its forward is conv2d_backward_data, its data gradient conv2d_forward, its
// weight gradient conv2d_backward_weight with the roles of x and dy swapped.
#pragma once
#include <cstdint>

#include "kernels/common/conv.hpp"

namespace recon::cpu {

// Column-matrix budget per chunk, in floats (32 MiB): large enough that every
// layer of the 28x28 model but the last (32 -> 1 channels at 28x28, two
// chunks) takes the whole batch of 64 in one GEMM, small enough that 128x128
// images do not allocate gigabytes.
constexpr int64_t kConvColBudget = int64_t(1) << 23;

// How many images one chunk holds (at least 1).
int64_t conv_chunk_images(const ConvGeometry& g);

// y (n, c_out, ho, wo) = conv(x (n, c_in, h, w), weight (c_out, c_in, kh, kw)) + bias (c_out);
// bias may be null.
void conv2d_forward(const ConvGeometry& g, const float* x, const float* weight, const float* bias, float* y);
// dx (n, c_in, h, w) from dy (n, c_out, ho, wo) and weight (c_out, c_in, kh, kw).
void conv2d_backward_data(const ConvGeometry& g, const float* dy, const float* weight, float* dx);
// dweight (c_out, c_in, kh, kw) from x (n, c_in, h, w) and dy (n, c_out, ho, wo).
void conv2d_backward_weight(const ConvGeometry& g, const float* x, const float* dy, float* dweight);
// dbias (c) = sums of dy (n, c, hw) over n and hw.
void conv2d_backward_bias(const float* dy, float* dbias, int64_t n, int64_t c, int64_t hw);
// y (n, c, hw) += bias (c), per channel.
void add_channel_bias(float* y, const float* bias, int64_t n, int64_t c, int64_t hw);

}  // namespace recon::cpu
