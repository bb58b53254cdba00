// CPU elementwise kernels: OpenMP loops over the shared formulas. Each loop
// is compiled once per op (the op becomes a template constant), so the
// switch in kernels/common/elementwise.hpp folds away and the loop
// vectorises; every element still gets the same formula, so the results are
// those of a per-element switch.
//
// Conditional float arithmetic (LeakyReLU's x > 0 ? x : p0 x) becomes a
// vector blend only when the compiler may assume that float operations do
// not trap; the values are the same either way (only the exception flags,
// which nothing reads, could differ). Before the includes: the formulas in
// kernels/common/elementwise.hpp are inlined into these loops.
#pragma GCC optimize("no-trapping-math")

#include "kernels/cpu/elementwise.hpp"

#include <type_traits>

#include "kernels/cpu/hot.hpp"

namespace recon::cpu {

namespace {

// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelMin = 1 << 15;

template <BinaryOp Op>
using BinaryConst = std::integral_constant<BinaryOp, Op>;
template <UnaryOp Op>
using UnaryConst = std::integral_constant<UnaryOp, Op>;

// body(BinaryConst<op>{}): one instantiation of the loop per op.
template <class Body>
void dispatch_binary(BinaryOp op, Body&& body) {
  switch (op) {
    case BinaryOp::Add: return body(BinaryConst<BinaryOp::Add>{});
    case BinaryOp::Sub: return body(BinaryConst<BinaryOp::Sub>{});
    case BinaryOp::Mul: return body(BinaryConst<BinaryOp::Mul>{});
    case BinaryOp::Div: return body(BinaryConst<BinaryOp::Div>{});
  }
}

// body(UnaryConst<op>{}): one instantiation of the loop per op.
template <class Body>
void dispatch_unary(UnaryOp op, Body&& body) {
  switch (op) {
    case UnaryOp::Scale: return body(UnaryConst<UnaryOp::Scale>{});
    case UnaryOp::AddScalar: return body(UnaryConst<UnaryOp::AddScalar>{});
    case UnaryOp::Neg: return body(UnaryConst<UnaryOp::Neg>{});
    case UnaryOp::Exp: return body(UnaryConst<UnaryOp::Exp>{});
    case UnaryOp::Log: return body(UnaryConst<UnaryOp::Log>{});
    case UnaryOp::Sqrt: return body(UnaryConst<UnaryOp::Sqrt>{});
    case UnaryOp::Pow: return body(UnaryConst<UnaryOp::Pow>{});
    case UnaryOp::Clamp: return body(UnaryConst<UnaryOp::Clamp>{});
    case UnaryOp::Relu: return body(UnaryConst<UnaryOp::Relu>{});
    case UnaryOp::LeakyRelu: return body(UnaryConst<UnaryOp::LeakyRelu>{});
    case UnaryOp::Sigmoid: return body(UnaryConst<UnaryOp::Sigmoid>{});
    case UnaryOp::Tanh: return body(UnaryConst<UnaryOp::Tanh>{});
  }
}

// The loops, one instantiation per op. Arguments by value: a loop over a
// lambda's by-reference captures re-reads the pointers and parameters after
// every store (they might alias the output) and does not vectorise.
template <BinaryOp Op>
RECON_CPU_HOT void binary_same_loop(const float* a, const float* b, float* out, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) out[i] = binary_apply(Op, a[i], b[i]);
}

template <BinaryOp Op>
RECON_CPU_HOT void binary_broadcast_loop(const Broadcast4 bc, const float* a, const float* b, float* out, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    int64_t ia, ib;
    broadcast_offsets(bc, i, ia, ib);
    out[i] = binary_apply(Op, a[ia], b[ib]);
  }
}

template <UnaryOp Op>
RECON_CPU_HOT void unary_loop(const float* x, float* y, int64_t n, float p0, float p1) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = unary_apply(Op, x[i], p0, p1);
}

// x or y may be null (read as 0): HasX / HasY are template constants too, so
// that no vector load ever reads through a null pointer.
template <UnaryOp Op, bool HasX, bool HasY>
RECON_CPU_HOT void unary_backward_loop(const float* x, const float* y, const float* gy, float* gx, int64_t n, float p0, float p1) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float xi = HasX ? x[i] : 0.f, yi = HasY ? y[i] : 0.f;
    gx[i] = unary_grad(Op, xi, yi, gy[i], p0, p1);
  }
}

}  // namespace

void binary_same(BinaryOp op, const float* a, const float* b, float* out, int64_t n) {
  dispatch_binary(op, [=](auto k) { binary_same_loop<decltype(k)::value>(a, b, out, n); });
}

void binary_broadcast(BinaryOp op, const Broadcast4& bc, const float* a, const float* b, float* out) {
  const int64_t n = bc.shape[0] * bc.shape[1] * bc.shape[2] * bc.shape[3];
  dispatch_binary(op, [&](auto k) { binary_broadcast_loop<decltype(k)::value>(bc, a, b, out, n); });
}

void unary(UnaryOp op, const float* x, float* y, int64_t n, float p0, float p1) {
  dispatch_unary(op, [=](auto k) { unary_loop<decltype(k)::value>(x, y, n, p0, p1); });
}

void unary_backward(UnaryOp op, const float* x, const float* y, const float* gy, float* gx, int64_t n, float p0,
                    float p1) {
  dispatch_unary(op, [=](auto k) {
    constexpr UnaryOp o = decltype(k)::value;
    if (x && y) unary_backward_loop<o, true, true>(x, y, gy, gx, n, p0, p1);
    else if (x) unary_backward_loop<o, true, false>(x, y, gy, gx, n, p0, p1);
    else if (y) unary_backward_loop<o, false, true>(x, y, gy, gx, n, p0, p1);
    else unary_backward_loop<o, false, false>(x, y, gy, gx, n, p0, p1);
  });
}

RECON_CPU_HOT void add_inplace(float* a, const float* b, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) a[i] += b[i];
}

}  // namespace recon::cpu
