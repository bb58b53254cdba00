// CPU elementwise kernels (formulas in kernels/common/elementwise.hpp).
#pragma once
#include <cstdint>

#include "kernels/common/elementwise.hpp"

namespace recon::cpu {

// out[i] = a[i] op b[i] for n elements (same shape).
void binary_same(BinaryOp op, const float* a, const float* b, float* out, int64_t n);
// out = a op b with broadcasting (operands contiguous in their own shapes).
void binary_broadcast(BinaryOp op, const Broadcast4& bc, const float* a, const float* b, float* out);
void unary(UnaryOp op, const float* x, float* y, int64_t n, float p0, float p1);
void unary_backward(UnaryOp op, const float* x, const float* y, const float* gy, float* gx, int64_t n, float p0,
                    float p1);
void add_inplace(float* a, const float* b, int64_t n);  // a += b

}  // namespace recon::cpu
