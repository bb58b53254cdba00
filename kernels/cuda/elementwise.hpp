// Launchers of the CUDA elementwise kernels (kernels/cuda/elementwise.cu):
// binary ops (same shape, or 4-D broadcast), unary ops and their backward
// passes, a += b, and broadcast copy. Raw device pointers, the runtime
// stream, formulas from kernels/common/elementwise.hpp. Plain C++: included
// by runtime/ops_*.cpp in every build.
#pragma once
#include <cstdint>

#include "kernels/common/elementwise.hpp"

namespace recon::cuda {

// out[i] = a[i] op b[i] for n elements (same shape). float4 loads and stores
// when a, b and out are 16-byte aligned (scalar tail for n % 4), scalar otherwise.
void binary_same(BinaryOp op, const float* a, const float* b, float* out, int64_t n);
// out (bc.shape) = a op b with broadcasting (a, b contiguous in their own shapes).
void binary_broadcast(BinaryOp op, const Broadcast4& bc, const float* a, const float* b, float* out);
// y[i] = f(x[i]) for n elements.
void unary(UnaryOp op, const float* x, float* y, int64_t n, float p0, float p1);
// gx[i] = f'(x[i], y[i]) * gy[i]; x or y may be null where the op does not need it.
void unary_backward(UnaryOp op, const float* x, const float* y, const float* gy, float* gx, int64_t n, float p0,
                    float p1);
// a[i] += b[i] for n elements.
void add_inplace(float* a, const float* b, int64_t n);
// out (bc.shape, 4-D) <- x broadcast; bc.a_stride holds x's strides (b_stride unused).
void broadcast_copy(const Broadcast4& bc, const float* x, float* out);

}  // namespace recon::cuda
