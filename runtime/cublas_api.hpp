// The cuBLAS API as the library sees it: the real <cublas_v2.h> in the CUDA
// build, the SIMT build's host-backed twin (kernels/simt/simt_cublas.hpp)
// under RECON_CUDA=SIM; the same pattern as runtime/cuda_api.hpp. Also
// RECON_CUBLAS_CHECK(expr): throws a recon::Error naming the expression, the
// cuBLAS status and file:line when expr does not return CUBLAS_STATUS_SUCCESS.
// Include only where CUDA exists (RECON_WITH_CUDA).
#pragma once
#if !defined(RECON_WITH_CUDA)
#error "runtime/cublas_api.hpp needs a CUDA build (RECON_CUDA=ON or SIM)"
#endif

#include "runtime/cuda_api.hpp"
#if defined(RECON_SIMT)
#include "kernels/simt/simt_cublas.hpp"
#else
#include <cublas_v2.h>
#endif

namespace recon::detail {
// Formats and throws the error of a failed cuBLAS call (runtime/cuda_context.cpp).
[[noreturn]] void cublas_fail(const char* file, int line, const char* expr, int status, const char* what);
}  // namespace recon::detail

#define RECON_CUBLAS_CHECK(expr)                                                          \
  do {                                                                                    \
    cublasStatus_t recon_cublas_status_ = (expr);                                         \
    if (recon_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                    \
      ::recon::detail::cublas_fail(__FILE__, __LINE__, #expr, (int)recon_cublas_status_,  \
                                   cublasGetStatusString(recon_cublas_status_));          \
  } while (0)
