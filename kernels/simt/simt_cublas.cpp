// The SIMT build's cuBLAS (see simt_cublas.hpp): handle bookkeeping and SGEMM
// as plain loops over column-major matrices, accumulating in double.
#include "kernels/simt/simt_cublas.hpp"

#include <bit>
#include <cstdint>
#include <new>

struct cublasContext {
  cudaStream_t stream = nullptr;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

namespace {

// Rounds x to TF32 (the sign, 8 exponent bits and the top 10 mantissa bits
// of a float), to nearest with ties to even; Inf and NaN pass unchanged.
float round_tf32(float x) {
  uint32_t bits = std::bit_cast<uint32_t>(x);
  if ((bits & 0x7f800000u) == 0x7f800000u) return x;
  constexpr uint32_t kDropped = 13;  // 23 mantissa bits - 10 kept
  const uint32_t lsb = (bits >> kDropped) & 1u;
  bits += (1u << (kDropped - 1)) - 1u + lsb;
  bits &= ~((1u << kDropped) - 1u);
  return std::bit_cast<float>(bits);
}

// Element (r, c) of op(M), M column-major with leading dimension ld.
inline float op_at(const float* M, int ld, bool trans, int64_t r, int64_t c) {
  return trans ? M[c + r * (int64_t)ld] : M[r + c * (int64_t)ld];
}

bool transposes(cublasOperation_t op) { return op == CUBLAS_OP_T || op == CUBLAS_OP_C; }
bool valid_op(cublasOperation_t op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C; }

// cuBLAS's argument checks for SGEMM.
cublasStatus_t check_gemm_args(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                               int n, int k, const float* alpha, int lda, int ldb, const float* beta, int ldc) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!valid_op(transa) || !valid_op(transb)) return CUBLAS_STATUS_INVALID_VALUE;
  if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
  const int a_rows = transposes(transa) ? k : m;  // rows of A as stored
  const int b_rows = transposes(transb) ? n : k;
  auto at_least_one = [](int v) { return v > 1 ? v : 1; };
  if (lda < at_least_one(a_rows) || ldb < at_least_one(b_rows) || ldc < at_least_one(m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;
  return CUBLAS_STATUS_SUCCESS;
}

void gemm_one(const cublasContext& ctx, bool ta, bool tb, int m, int n, int k, float alpha, const float* A, int lda,
              const float* B, int ldb, float beta, float* C, int ldc) {
  const bool tf32 = ctx.math == CUBLAS_TF32_TENSOR_OP_MATH;
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t i = 0; i < m; ++i) {
      double acc = 0.0;
      if (alpha != 0.f) {
        for (int64_t p = 0; p < k; ++p) {
          float a = op_at(A, lda, ta, i, p), b = op_at(B, ldb, tb, p, j);
          if (tf32) {
            a = round_tf32(a);
            b = round_tf32(b);
          }
          acc += (double)a * (double)b;
        }
      }
      float& c = C[i + j * (int64_t)ldc];
      // beta == 0: C is written, never read (it may hold NaNs).
      c = beta == 0.f ? (float)((double)alpha * acc) : (float)((double)alpha * acc + (double)beta * c);
    }
  }
}

}  // namespace

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
  *handle = new (std::nothrow) cublasContext();
  return *handle ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t* stream) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!stream) return CUBLAS_STATUS_INVALID_VALUE;
  *stream = handle->stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode != CUBLAS_DEFAULT_MATH && mode != CUBLAS_TENSOR_OP_MATH && mode != CUBLAS_PEDANTIC_MATH &&
      mode != CUBLAS_TF32_TENSOR_OP_MATH)
    return CUBLAS_STATUS_INVALID_VALUE;
  handle->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = handle->math;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void* workspace, size_t workspace_bytes) {
  if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (workspace_bytes > 0 && !workspace) return CUBLAS_STATUS_INVALID_VALUE;
  handle->workspace = workspace;
  handle->workspace_bytes = workspace_bytes;
  return CUBLAS_STATUS_SUCCESS;
}

const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "license error";
  }
  return "unknown error";
}

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                           int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                           const float* beta, float* C, int ldc) {
  return cublasSgemmStridedBatched(handle, transa, transb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                         int m, int n, int k, const float* alpha, const float* A, int lda,
                                         long long strideA, const float* B, int ldb, long long strideB,
                                         const float* beta, float* C, int ldc, long long strideC, int batch_count) {
  cublasStatus_t s = check_gemm_args(handle, transa, transb, m, n, k, alpha, lda, ldb, beta, ldc);
  if (s != CUBLAS_STATUS_SUCCESS) return s;
  if (batch_count < 0) return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0 || batch_count == 0) return CUBLAS_STATUS_SUCCESS;
  // Everything by value: a recorded GEMM must not read the caller's
  // arguments (alpha and beta included) when the graph replays it.
  const cublasContext ctx = *handle;
  const bool ta = transposes(transa), tb = transposes(transb);
  const float a = *alpha, b = *beta;
  auto run = [=] {
    for (int i = 0; i < batch_count; ++i)
      gemm_one(ctx, ta, tb, m, n, k, a, A + i * strideA, lda, B + i * strideB, ldb, b, C + i * strideC, ldc);
    return cudaSuccess;
  };
  cudaError_t error = cudaSuccess;
  switch (recon::simt::stream_ordering(handle->stream, &error)) {
    case recon::simt::Ordering::kRun: run(); return CUBLAS_STATUS_SUCCESS;
    case recon::simt::Ordering::kRecord: recon::simt::capture_work(handle->stream, run); return CUBLAS_STATUS_SUCCESS;
    case recon::simt::Ordering::kFail: break;
  }
  return CUBLAS_STATUS_EXECUTION_FAILED;
}
