// CPU GEMM through OpenBLAS, and the linear layer's kernels built on it. The
// small loops around the GEMMs (a bias row per sample, one sum per output)
// are serial: too short to pay for a parallel region.
#include "kernels/cpu/gemm.hpp"

#include <cblas.h>

#include <climits>

#include "runtime/error.hpp"

namespace recon::cpu {

std::string blas_config() {
  return std::string(openblas_get_config()) + " (core " + openblas_get_corename() + ", " +
         std::to_string(openblas_get_num_threads()) + " threads)";
}

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty sum: BLAS would reject the zero leading dimension
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.f ? 0.f : beta * c[i * ldc + j];
    return;
  }
  // cblas takes 32-bit sizes (blasint) in the Debian build.
  RECON_CHECK(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX && ldc <= INT_MAX,
              "gemm: sizes (" << m << ", " << n << ", " << k << ") exceed the 32-bit BLAS interface");
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)m,
              (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

void linear_forward(const float* x, const float* weight, const float* bias, float* y, int64_t m, int64_t in,
                    int64_t out) {
  if (bias) {
    // Every row starts as the bias; the GEMM accumulates onto it (beta = 1).
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < out; ++j) y[i * out + j] = bias[j];
  }
  gemm(false, true, m, out, in, 1.f, x, in, weight, in, bias ? 1.f : 0.f, y, out);
}

void linear_backward_data(const float* dy, const float* weight, float* dx, int64_t m, int64_t in, int64_t out) {
  gemm(false, false, m, in, out, 1.f, dy, out, weight, in, 0.f, dx, in);
}

void linear_backward_weight(const float* dy, const float* x, float* dweight, int64_t m, int64_t in, int64_t out) {
  gemm(true, false, out, in, m, 1.f, dy, out, x, in, 0.f, dweight, in);
}

void linear_backward_bias(const float* dy, float* dbias, int64_t m, int64_t out) {
  // Each output column summed in double (batch sums of many rows).
  for (int64_t j = 0; j < out; ++j) {
    double s = 0;
    for (int64_t i = 0; i < m; ++i) s += dy[i * out + j];
    dbias[j] = (float)s;
  }
}

}  // namespace recon::cpu
