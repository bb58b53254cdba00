// CUDA launchers of the shape ops: block copies for concat and its gradient
// split, a strided scatter for slice's gradient, 2-D padding and rot90.
// Plain C++: included by runtime/ops_shape.cpp in every build; the kernels
// are in shape.cu.
#pragma once
#include <cstdint>

#include "kernels/common/elementwise.hpp"  // StridedLayout
#include "kernels/common/shape.hpp"

namespace recon::cuda {

// dst[r * dst_stride + i] = src[r * src_stride + i] for r < rows, i < cols.
void copy_rows(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t rows, int64_t cols);
// dst laid out as `layout` <- src (contiguous, numel of layout.shape);
// destinations must not overlap.
void strided_scatter(const float* src, const StridedLayout& layout, float* dst);
// y (planes, Ho, Wo) <- x (planes, H, W) padded by (left, top, ...).
void pad2d_forward(const Pad2dParams& p, PadKind kind, const float* x, float* y);
// dx (planes, H, W) <- g (planes, Ho, Wo): the crop, plus reflected borders gathered back.
void pad2d_backward(const Pad2dParams& p, PadKind kind, const float* g, float* dx);
// y (planes, Ho, Wo) = x (planes, h, w) turned k in {0, 1, 2, 3} quarter
// turns counter-clockwise; (Ho, Wo) = (w, h) for odd k.
void rot90(const float* x, float* y, int64_t planes, int64_t h, int64_t w, int k);

}  // namespace recon::cuda
