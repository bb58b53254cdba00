// Errors are exceptions (DESIGN.md, decision 5). RECON_CHECK reports the
// failed condition, a message built with operator<<, and file:line;
// RECON_CUDA_CHECK adds the CUDA expression and cudaGetErrorString.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace recon {

// Every error the library raises is a recon::Error.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
[[noreturn]] void fail(const char* file, int line, const char* cond, const std::string& msg);
}  // namespace detail

}  // namespace recon

// RECON_CHECK(x.dim() == 4, "conv2d: input must be (N, C, H, W), got " << shape_str(x.shape()))
#define RECON_CHECK(cond, msg)                                                  \
  do {                                                                          \
    if (!(cond)) {                                                              \
      std::ostringstream recon_check_os_;                                       \
      recon_check_os_ << msg;                                                   \
      ::recon::detail::fail(__FILE__, __LINE__, #cond, recon_check_os_.str());  \
    }                                                                           \
  } while (0)

// Unconditional failure with the same format.
#define RECON_FAIL(msg) RECON_CHECK(false, msg)

#if defined(RECON_WITH_CUDA)
#include "runtime/cuda_api.hpp"
namespace recon::detail {
[[noreturn]] void cuda_fail(const char* file, int line, const char* expr, int code, const char* what);
}
#define RECON_CUDA_CHECK(expr)                                                     \
  do {                                                                             \
    cudaError_t recon_cuda_err_ = (expr);                                          \
    if (recon_cuda_err_ != cudaSuccess)                                            \
      ::recon::detail::cuda_fail(__FILE__, __LINE__, #expr, (int)recon_cuda_err_,  \
                                 cudaGetErrorString(recon_cuda_err_));             \
  } while (0)
#endif
