// GEMM through cuBLAS (row-major operands mapped onto column-major SGEMM: see
// gemm.hpp) and the linear layer's two small kernels: bias broadcast into the
// output rows before the GEMM accumulates onto them, and the bias gradient as
// a deterministic column sum.
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/device_util.cuh"

#include <climits>

#include "kernels/cuda/gemm.hpp"
#include "runtime/cublas_api.hpp"
#include "runtime/cuda_context.hpp"
#include "runtime/error.hpp"

namespace recon::cuda {

using detail::runtime_stream;

namespace {

constexpr int kFillThreads = 256;     // threads per block of the bias broadcast
constexpr unsigned kMaxFillBlocks = 4096;  // grid-stride beyond this (2^20 threads in flight)
constexpr int kColumnTile = 32;       // columns per block of the column sum: one warp reads 32 adjacent floats
constexpr int kRowLanes = 8;          // rows summed in parallel per column (blockDim.y)


// Thread mapping: a 1-D grid-stride loop, one thread per element of y
// (m, out) per iteration; y[r, j] = bias[j].
__global__ void bias_rows_kernel(const float* __restrict__ bias, float* __restrict__ y, int64_t m, int64_t out) {
  const int64_t total = m * out;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x)
    y[i] = bias[i % out];
}

// Thread mapping: block (kColumnTile, kRowLanes) owns columns
// [blockIdx.x * 32, +32) of dy (m, out); thread (x, y) sums column
// blockIdx.x * 32 + x over rows y, y + 8, y + 16, ... in double (a warp reads
// 32 adjacent floats of one row), then thread (x, 0) adds the 8 partial sums
// in lane order. The order is fixed by the shape alone: deterministic.
__global__ void column_sum_kernel(const float* __restrict__ dy, float* __restrict__ dbias, int64_t m, int64_t out) {
  __shared__ double partial[kRowLanes][kColumnTile];
  const int64_t col = (int64_t)blockIdx.x * kColumnTile + threadIdx.x;
  double acc = 0.0;
  if (col < out)
    for (int64_t r = threadIdx.y; r < m; r += kRowLanes) acc += (double)dy[r * out + col];
  partial[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && col < out) {
    double s = 0.0;
    for (int lane = 0; lane < kRowLanes; ++lane) s += partial[lane][threadIdx.x];
    dbias[col] = (float)s;
  }
}

int to_int(int64_t v, const char* what) {
  RECON_CHECK(v >= 0 && v <= INT_MAX, "cuda::gemm: " << what << " = " << v << " exceeds cuBLAS's 32-bit interface");
  return (int)v;
}

cublasOperation_t op(bool trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    // An empty sum: C = beta C. Only the cases the ops produce (linear over
    // zero input features: beta 1 keeps the bias rows; matmul: beta 0).
    RECON_CHECK(beta == 0.f || beta == 1.f, "cuda::gemm: k == 0 needs beta 0 or 1, got " << beta);
    if (beta == 0.f)
      for (int64_t i = 0; i < m; ++i) memset_zero(c + i * ldc, (size_t)n * sizeof(float));
    return;
  }
  auto handle = static_cast<cublasHandle_t>(cublas_handle());
  // Column-major: C^T (n, m) = op(B)^T (n, k) op(A)^T (k, m); see gemm.hpp.
  RECON_CUBLAS_CHECK(cublasSgemm(handle, op(trans_b), op(trans_a), to_int(n, "n"), to_int(m, "m"), to_int(k, "k"),
                                 &alpha, b, to_int(ldb, "ldb"), a, to_int(lda, "lda"), &beta, c,
                                 to_int(ldc, "ldc")));
}

void gemm_strided_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                          int64_t lda, int64_t stride_a, const float* b, int64_t ldb, int64_t stride_b, float beta,
                          float* c, int64_t ldc, int64_t stride_c, int64_t batch) {
  if (m == 0 || n == 0 || batch == 0) return;
  RECON_CHECK(k > 0, "cuda::gemm_strided_batched: k must be > 0, got " << k);
  auto handle = static_cast<cublasHandle_t>(cublas_handle());
  RECON_CUBLAS_CHECK(cublasSgemmStridedBatched(handle, op(trans_b), op(trans_a), to_int(n, "n"), to_int(m, "m"),
                                               to_int(k, "k"), &alpha, b, to_int(ldb, "ldb"), stride_b, a,
                                               to_int(lda, "lda"), stride_a, &beta, c, to_int(ldc, "ldc"), stride_c,
                                               to_int(batch, "batch")));
}

void linear_forward(const float* x, const float* weight, const float* bias, float* y, int64_t m, int64_t in,
                    int64_t out) {
  if (m == 0 || out == 0) return;
  if (bias) {
    // Every row starts as the bias; the GEMM accumulates onto it (beta = 1).
    const int64_t blocks = (m * out + kFillThreads - 1) / kFillThreads;
    const unsigned grid = (unsigned)(blocks < (int64_t)kMaxFillBlocks ? blocks : kMaxFillBlocks);
    RECON_LAUNCH(bias_rows_kernel, grid, kFillThreads, 0, runtime_stream())(bias, y, m, out);
    check_launch("bias_rows_kernel");
  }
  // y (m, out) = x (m, in) weight^T; weight is stored (out, in).
  gemm(false, true, m, out, in, 1.f, x, in, weight, in, bias ? 1.f : 0.f, y, out);
}

void linear_backward_data(const float* dy, const float* weight, float* dx, int64_t m, int64_t in, int64_t out) {
  gemm(false, false, m, in, out, 1.f, dy, out, weight, in, 0.f, dx, in);
}

void linear_backward_weight(const float* dy, const float* x, float* dweight, int64_t m, int64_t in, int64_t out) {
  gemm(true, false, out, in, m, 1.f, dy, out, x, in, 0.f, dweight, in);
}

void linear_backward_bias(const float* dy, float* dbias, int64_t m, int64_t out) {
  if (out == 0) return;
  const int64_t blocks = (out + kColumnTile - 1) / kColumnTile;
  RECON_CHECK(blocks <= INT_MAX, "linear_backward_bias: " << out << " columns are too many for one grid");
  RECON_LAUNCH(column_sum_kernel, dim3((unsigned)blocks), dim3(kColumnTile, kRowLanes), 0, runtime_stream())(
      dy, dbias, m, out);
  check_launch("column_sum_kernel");
}

}  // namespace recon::cuda
