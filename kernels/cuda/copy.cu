// CUDA raw-memory kernels: fill, and strided gather into contiguous memory
// (Tensor::fill_ and Tensor::clone of a non-contiguous CUDA tensor). The
// strided index math is strided_offset of kernels/common/elementwise.hpp.
#include "kernels/cuda/launch.cuh"

#include <cstdint>
#include <vector>

#include "kernels/common/elementwise.hpp"
#include "kernels/cuda/copy.hpp"
#include "kernels/cuda/device_util.cuh"
#include "runtime/cuda_context.hpp"
#include "runtime/error.hpp"

namespace recon::cuda {

using detail::runtime_stream;

namespace {

using detail::grid_for;
using detail::grid_start;
using detail::grid_stride;
using detail::kBlockThreads;

// One thread: dst[i] = value for i in its grid-stride share of [0, n).
__global__ void fill_kernel(float* __restrict__ dst, int64_t n, float value) {
  for (int64_t i = grid_start(); i < n; i += grid_stride()) dst[i] = value;
}

// One thread: contiguous output element i (grid-stride over n) <- src at the
// strided offset of i; consecutive threads write consecutive addresses.
__global__ void strided_copy_kernel(StridedLayout layout, const float* __restrict__ src, float* __restrict__ dst,
                                    int64_t n) {
  for (int64_t i = grid_start(); i < n; i += grid_stride()) dst[i] = src[strided_offset(layout, i)];
}

}  // namespace

void fill(float* dst, int64_t n, float value) {
  if (n == 0) return;
  RECON_LAUNCH(fill_kernel, grid_for(n), kBlockThreads, 0, runtime_stream())
  (dst, n, value);
  check_launch("fill_kernel");
}

void strided_copy(const float* src, const std::vector<int64_t>& shape, const std::vector<int64_t>& strides,
                  float* dst) {
  RECON_CHECK(shape.size() == strides.size(), "strided_copy: " << shape.size() << " sizes but " << strides.size()
                                                                << " strides");
  RECON_CHECK((int)shape.size() <= kMaxStridedDims, "strided_copy: " << shape.size()
                                                        << "-D tensors are not supported on CUDA (at most "
                                                        << kMaxStridedDims << "-D)");
  StridedLayout layout{};
  layout.rank = (int)shape.size();
  int64_t n = 1;
  for (int d = 0; d < layout.rank; ++d) {
    layout.shape[d] = shape[d];
    layout.stride[d] = strides[d];
    n *= shape[d];
  }
  if (n == 0) return;
  RECON_LAUNCH(strided_copy_kernel, grid_for(n), kBlockThreads, 0, runtime_stream())
  (layout, src, dst, n);
  check_launch("strided_copy_kernel");
}

}  // namespace recon::cuda
