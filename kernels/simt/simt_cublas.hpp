// The cuBLAS API of the SIMT build (RECON_CUDA=SIM): exactly the calls the
// library makes (handles, stream binding, math mode, SGEMM and strided
// batched SGEMM, status strings), with cuBLAS's types, values and argument
// checks. Included by runtime/cublas_api.hpp in place of <cublas_v2.h>.
//
// Like the rest of the emulator it runs synchronously on the host (device
// memory is host memory); on a capturing stream a GEMM is recorded (its
// arguments copied, alpha and beta read at the call as in host pointer mode)
// and runs when the graph is launched. The GEMMs are straightforward loops that
// accumulate in double, so their results are the exact products rounded
// once; CUBLAS_TF32_TENSOR_OP_MATH rounds the inputs to TF32 (10 explicit
// mantissa bits, to nearest) first, as tensor cores read them. As in cuBLAS,
// C is not read when beta == 0 (new device memory holds NaNs in the emulator).
#pragma once
#include "kernels/simt/simt_runtime.hpp"

// ---- types and constants (the values are cuBLAS's) ---------------------------
typedef enum {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_ARCH_MISMATCH = 8,
  CUBLAS_STATUS_MAPPING_ERROR = 11,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_INTERNAL_ERROR = 14,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
  CUBLAS_STATUS_LICENSE_ERROR = 16,
} cublasStatus_t;

typedef enum {
  CUBLAS_OP_N = 0,
  CUBLAS_OP_T = 1,
  CUBLAS_OP_C = 2,  // conjugate transpose: the transpose for real matrices
} cublasOperation_t;

typedef enum {
  CUBLAS_DEFAULT_MATH = 0,
  CUBLAS_TENSOR_OP_MATH = 1,  // deprecated in cuBLAS; treated as CUBLAS_DEFAULT_MATH for SGEMM
  CUBLAS_PEDANTIC_MATH = 2,
  CUBLAS_TF32_TENSOR_OP_MATH = 3,
} cublasMath_t;

struct cublasContext;
typedef cublasContext* cublasHandle_t;

// ---- handles ------------------------------------------------------------------------
cublasStatus_t cublasCreate(cublasHandle_t* handle);
cublasStatus_t cublasDestroy(cublasHandle_t handle);
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream);
cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t* stream);
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode);
cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t* mode);
// The workspace cuBLAS may use instead of allocating its own (device memory;
// the emulated GEMMs need none, but the call is checked and remembered).
cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void* workspace, size_t workspace_bytes);
const char* cublasGetStatusString(cublasStatus_t status);
const char* cublasGetStatusName(cublasStatus_t status);

// ---- GEMM (column-major, host pointer mode) ------------------------------------------
// C (m, n) = alpha op(A) op(B) + beta C, op(A) (m, k), op(B) (k, n).
cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                           int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                           const float* beta, float* C, int ldc);
// batch_count GEMMs; matrix i of A starts at A + i * strideA (B and C likewise).
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                         int m, int n, int k, const float* alpha, const float* A, int lda,
                                         long long strideA, const float* B, int ldb, long long strideB,
                                         const float* beta, float* C, int ldc, long long strideC, int batch_count);
