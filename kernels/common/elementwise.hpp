// Elementwise formulas shared by the CPU and CUDA backends: the binary ops,
// the unary ops with their derivatives, 4-D broadcast indexing, and the
// offset of an element of a strided (non-contiguous) layout.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common/hd.hpp"

namespace recon {

enum class BinaryOp { Add, Sub, Mul, Div };

RECON_HD float binary_apply(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    default: return a / b;
  }
}

// Unary ops with up to two float parameters (p0, p1).
enum class UnaryOp {
  Scale,      // p0 * x
  AddScalar,  // x + p0
  Neg,
  Exp,
  Log,
  Sqrt,
  Pow,        // x^p0
  Clamp,      // min(max(x, p0), p1)
  Relu,
  LeakyRelu,  // x > 0 ? x : p0 * x
  Sigmoid,
  Tanh,
};

RECON_HD float unary_apply(UnaryOp op, float x, float p0, float p1) {
  switch (op) {
    case UnaryOp::Scale: return p0 * x;
    case UnaryOp::AddScalar: return x + p0;
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return expf(x);
    case UnaryOp::Log: return logf(x);
    case UnaryOp::Sqrt: return sqrtf(x);
    case UnaryOp::Pow: return powf(x, p0);
    case UnaryOp::Clamp: return fminf(fmaxf(x, p0), p1);
    case UnaryOp::Relu: return x > 0.f ? x : 0.f;
    case UnaryOp::LeakyRelu: return x > 0.f ? x : p0 * x;
    case UnaryOp::Sigmoid: return 1.f / (1.f + expf(-x));
    default: return tanhf(x);
  }
}

// dL/dx from dL/dy = g, the input x and the output y.
RECON_HD float unary_grad(UnaryOp op, float x, float y, float g, float p0, float p1) {
  switch (op) {
    case UnaryOp::Scale: return g * p0;
    case UnaryOp::AddScalar: return g;
    case UnaryOp::Neg: return -g;
    case UnaryOp::Exp: return g * y;
    case UnaryOp::Log: return g / x;
    case UnaryOp::Sqrt: return g * 0.5f / y;
    case UnaryOp::Pow: return g * p0 * powf(x, p0 - 1.f);
    case UnaryOp::Clamp: return (x >= p0 && x <= p1) ? g : 0.f;
    case UnaryOp::Relu: return x > 0.f ? g : 0.f;
    case UnaryOp::LeakyRelu: return x > 0.f ? g : p0 * g;
    case UnaryOp::Sigmoid: return g * y * (1.f - y);
    default: return g * (1.f - y * y);
  }
}

// Broadcast of two operands to a 4-D output: shapes are right-aligned and
// padded with 1; a broadcast dimension has stride 0.
struct Broadcast4 {
  int64_t shape[4];     // output shape
  int64_t a_stride[4];  // element strides of a in the output's index space
  int64_t b_stride[4];
};

RECON_HD void broadcast_offsets(const Broadcast4& bc, int64_t linear, int64_t& ia, int64_t& ib) {
  ia = 0;
  ib = 0;
  for (int d = 3; d >= 0; --d) {
    int64_t i = linear % bc.shape[d];
    linear /= bc.shape[d];
    ia += i * bc.a_stride[d];
    ib += i * bc.b_stride[d];
  }
}

// A strided layout of up to kMaxStridedDims dims, passed by value to kernels
// (strided copy): element strides, possibly 0 or non-monotonic.
constexpr int kMaxStridedDims = 8;
struct StridedLayout {
  int rank;
  int64_t shape[kMaxStridedDims];
  int64_t stride[kMaxStridedDims];
};

// Offset (elements) of the element at row-major position `linear` of the layout.
RECON_HD int64_t strided_offset(const StridedLayout& l, int64_t linear) {
  int64_t off = 0;
  for (int d = l.rank - 1; d >= 0; --d) {
    off += (linear % l.shape[d]) * l.stride[d];
    linear /= l.shape[d];
  }
  return off;
}

}  // namespace recon
