// CUDA GEMM for matmul, linear (and the convolutions' im2col products): cuBLAS
// SGEMM on the runtime stream, with the row-major <-> column-major identity
// done here once, plus the two small kernels around the linear layer (bias
// rows, bias gradient). Plain C++ (raw device pointers), so runtime/ops_*.cpp
// include it in every build; defined in kernels/cuda/gemm.cu.
//
// Row-major vs cuBLAS's column-major. A row-major (r, c) matrix with leading
// dimension ld is, read column-major, its transpose: a (c, r) matrix with the
// same ld. So the row-major product C = op(A) op(B) (m, n) is the column-major
// product C^T = op(B)^T op(A)^T (n, m):
//   cublasSgemm(opB, opA, n, m, k, alpha, B, ldb, A, lda, beta, C, ldc)
// where opB is CUBLAS_OP_T exactly when trans_b (and opA when trans_a): the
// operands swap places, the transposition flags and leading dimensions stay.
// No data moves.
#pragma once
#include <cstdint>

namespace recon::cuda {

// C (m, n) = alpha op(A) op(B) + beta C, all row-major, device pointers, as
// cpu::gemm: op(A) (m, k) is A^T when trans_a (A stored (k, m)), op(B) (k, n)
// likewise. k == 0 gives C = beta C (beta 0 or 1). Sizes and leading
// dimensions must fit cuBLAS's 32-bit ints. Math mode: cuda::tf32_enabled().
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// `batch` independent GEMMs as above; product i reads A + i stride_a,
// B + i stride_b and writes C + i stride_c (strides in elements; a stride of 0
// shares one operand across the batch). k > 0.
void gemm_strided_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                          int64_t lda, int64_t stride_a, const float* b, int64_t ldb, int64_t stride_b, float beta,
                          float* c, int64_t ldc, int64_t stride_c, int64_t batch);

// y (m, out) = x (m, in) weight^T (in, out) + bias (out); bias may be null.
void linear_forward(const float* x, const float* weight, const float* bias, float* y, int64_t m, int64_t in,
                    int64_t out);
// dx (m, in) = dy (m, out) weight (out, in).
void linear_backward_data(const float* dy, const float* weight, float* dx, int64_t m, int64_t in, int64_t out);
// dweight (out, in) = dy^T (out, m) x (m, in).
void linear_backward_weight(const float* dy, const float* x, float* dweight, int64_t m, int64_t in, int64_t out);
// dbias (out) = column sums of dy (m, out), each summed in double in a fixed
// order (deterministic, no atomics).
void linear_backward_bias(const float* dy, float* dbias, int64_t m, int64_t out);

}  // namespace recon::cuda
