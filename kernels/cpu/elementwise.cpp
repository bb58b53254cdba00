// CPU elementwise kernels: OpenMP loops over the shared formulas.
#include "kernels/cpu/elementwise.hpp"

namespace recon::cpu {

// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelMin = 1 << 15;

void binary_same(BinaryOp op, const float* a, const float* b, float* out, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) out[i] = binary_apply(op, a[i], b[i]);
}

void binary_broadcast(BinaryOp op, const Broadcast4& bc, const float* a, const float* b, float* out) {
  const int64_t n = bc.shape[0] * bc.shape[1] * bc.shape[2] * bc.shape[3];
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    int64_t ia, ib;
    broadcast_offsets(bc, i, ia, ib);
    out[i] = binary_apply(op, a[ia], b[ib]);
  }
}

void unary(UnaryOp op, const float* x, float* y, int64_t n, float p0, float p1) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = unary_apply(op, x[i], p0, p1);
}

void unary_backward(UnaryOp op, const float* x, const float* y, const float* gy, float* gx, int64_t n, float p0,
                    float p1) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) gx[i] = unary_grad(op, x ? x[i] : 0.f, y ? y[i] : 0.f, gy[i], p0, p1);
}

void add_inplace(float* a, const float* b, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) a[i] += b[i];
}

}  // namespace recon::cpu
