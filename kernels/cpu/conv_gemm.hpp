// The CPU convolution's matrix products. The three conv passes each reduce
// to one product per chunk of images (see conv.cpp); on a CPU with AVX-512
// they run through our own register-blocked kernel (conv_gemm_avx512.cpp),
// elsewhere through OpenBLAS (gemm.hpp). Linear layers and matmul always use
// OpenBLAS.
//
// Why a kernel of our own: the conv products are most of a training step,
// and a BLAS that does not recognise the CPU falls back to a generic kernel
// (Debian's OpenBLAS 0.3.21 runs its SSE3 "Prescott" SGEMM on the AVX-512
// Xeons of our CI machines, at a quarter of their speed).
#pragma once
#include <cstdint>
#include <string>

#include "kernels/common/conv.hpp"

namespace recon::cpu {

// Which kernel multiplies inside conv2d / conv_transpose2d on the CPU.
enum class ConvProduct {
  kAuto,    // our AVX-512 kernel when the CPU has AVX-512F, else OpenBLAS
  kBlas,    // always OpenBLAS
  kAvx512,  // always ours (an error on a CPU without AVX-512F)
};

// The choice for this process: kAuto unless RECON_CPU_CONV=blas|avx512|auto
// says otherwise (read once) or set_conv_product changed it.
ConvProduct conv_product();
// Changes the choice (tests run the conv suites under both kernels). Throws
// for kAvx512 on a CPU without AVX-512F.
void set_conv_product(ConvProduct p);
// Whether this CPU can run the AVX-512 kernel.
bool cpu_has_avx512();
// Whether conv products run through the AVX-512 kernel now (kAuto resolved).
bool conv_uses_avx512();
// "avx512 (ours)" or "OpenBLAS", after resolving kAuto: for benchmark reports.
std::string conv_product_name();

// C (m, n) = op(A) op(B) + beta C, row-major with leading dimensions, like
// gemm(); dispatches on conv_product(). Never call it from inside an OpenMP
// parallel region: both kernels open their own.
void conv_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// The AVX-512 kernel itself (conv_gemm_avx512.cpp, its functions built for AVX-512):
// call only when cpu_has_avx512(). Each element of C is summed over k in the
// same order whatever the thread count, so results do not depend on it.
void sgemm_avx512(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                  const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// The same kernel with the im2col matrix of a chunk of cnt images packed
// straight from the images (never stored); element offsets within the chunk
// must fit in 32 bits (conv_fused_fits). conv.cpp calls these when
// conv_uses_avx512().
// y (c_out, cnt ho wo) = weight (c_out, c_in kh kw) col, col the im2col matrix of x (cnt, c_in, h, w).
void conv_forward_avx512(const ConvGeometry& g, const float* weight, const float* x, int64_t cnt, float* y);
// dy is the chunk's (cnt, c_out, ho, wo) gradient, read in place as the
// (c_out, cnt ho wo) matrix of the products (no copy into that layout).
// dweight (c_out, c_in kh kw) = dy col^T + beta dweight.
void conv_weight_grad_avx512(const ConvGeometry& g, const float* dy, const float* x, int64_t cnt, float beta,
                             float* dweight);
// col (c_in kh kw, cnt ho wo) = weight^T dy, for col2im.
void conv_data_grad_avx512(const ConvGeometry& g, const float* weight, const float* dy, int64_t cnt, float* col);
// Whether a chunk of cnt images (and its output gradient) can be addressed with 32-bit offsets.
inline bool conv_fused_fits(const ConvGeometry& g, int64_t cnt) {
  const int64_t limit = (int64_t(1) << 31) - 1;
  return cnt * g.c_in * g.h * g.w < limit && cnt * g.c_out * g.ho * g.wo < limit;
}

}  // namespace recon::cpu
