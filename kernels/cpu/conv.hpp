// CPU convolution kernels: im2col / col2im around a matrix product
// (conv_gemm.hpp: our AVX-512 kernel, which packs the im2col matrix straight
// from the images in the forward and weight-gradient passes, or OpenBLAS).
// The batch is processed in chunks of images whose column matrix fits in
// kConvColBudget floats; each chunk is one product. conv_transpose2d runs these
// same kernels with its conv2d-view geometry (see kernels/common/conv.hpp):
// its forward is conv2d_backward_data, its data gradient conv2d_forward, its
// weight gradient conv2d_backward_weight with the roles of x and dy swapped.
#pragma once
#include <cstdint>

#include "kernels/common/conv.hpp"

namespace recon::cpu {

// Column-matrix budget per chunk, in floats (4 MiB): small enough that a
// chunk's column matrix stays in the caches between the product that writes
// it and col2im that reads it (the data gradient; 32 MiB chunks made the
// RotNet step ~10 % slower), large enough that each product still has
// hundreds of columns per thread.
constexpr int64_t kConvColBudget = int64_t(1) << 20;

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
