// CPU GEMM (OpenBLAS cblas_sgemm, row-major) and the small kernels around it
// that matmul and linear need: bias rows and the bias gradient. Never call
// gemm from inside an OpenMP parallel region: OpenBLAS runs its own threads.
#pragma once
#include <cstdint>
#include <string>

namespace recon::cpu {

// The BLAS build, the core it picked and its thread count, e.g.
// "OpenBLAS 0.3.21 DYNAMIC_ARCH ... (core SkylakeX, 2 threads)", for benchmark
// reports: a CPU misdetected under virtualisation falls back to a slow core
// (OPENBLAS_CORETYPE overrides it).
std::string blas_config();

// C (m, n) = alpha op(A) op(B) + beta C, all row-major with leading
// dimensions lda, ldb, ldc; op(A) (m, k) is A^T when trans_a, op(B) (k, n)
// likewise. k == 0 gives C = beta C.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// y (m, out) = x (m, in) weight^T (in, out) + bias (out); bias may be null.
void linear_forward(const float* x, const float* weight, const float* bias, float* y, int64_t m, int64_t in,
                    int64_t out);
// dx (m, in) = dy (m, out) weight (out, in).
void linear_backward_data(const float* dy, const float* weight, float* dx, int64_t m, int64_t in, int64_t out);
// dweight (out, in) = dy^T (out, m) x (m, in).
void linear_backward_weight(const float* dy, const float* x, float* dweight, int64_t m, int64_t in, int64_t out);
// dbias (out) = column sums of dy (m, out).
void linear_backward_bias(const float* dy, float* dbias, int64_t m, int64_t out);

}  // namespace recon::cpu
