// CUDA reductions: sum of everything (two passes: per-block partial sums,
// then one block adds them) and sum over one axis (a warp or a block per
// contiguous row, or a thread per output when the reduced axis is strided).
// Accumulation is in double throughout, like the CPU backend's, and in a
// fixed tree whose shape depends only on the sizes: no atomics, so results
// are bitwise reproducible, and within rounding of the float result of the
// CPU (bitwise equal for the thread-per-output kernel, whose order is the CPU's).
#include "kernels/cuda/launch.cuh"

#include <cstdint>

#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/reduce.hpp"
#include "runtime/cuda_context.hpp"

namespace recon::cuda {

using detail::runtime_stream;

namespace {

using detail::grid_for;
using detail::grid_start;
using detail::grid_stride;
using detail::kBlockThreads;


// Pass 1 blocks at most (a power of two so pass 2's threads split them evenly).
constexpr int kMaxPartials = 1024;
// Elements each pass-1 thread adds at least, before the grid is capped.
constexpr int64_t kPartialWorkPerThread = 4;
// Rows at least this long get a whole block of kRowBlockThreads; shorter
// rows get a warp each, kRowsPerBlock rows per block.
constexpr int64_t kLongRow = 1024;
constexpr int kRowBlockThreads = 256;
constexpr int kRowsPerBlock = 8;
// Rows shorter than this are summed by the thread-per-output kernel (a warp
// per row would leave most lanes idle).
constexpr int64_t kShortRow = 32;

struct LoadTerm {
  const float* x;
  __device__ double operator()(int64_t i) const { return (double)x[i]; }
};

// One block: the double total of x over its grid-stride share of [0, n) to
// partials[blockIdx.x]; one thread: a running sum of its elements.
__global__ void sum_partial_kernel(const float* __restrict__ x, int64_t n, double* __restrict__ partials) {
  __shared__ double warp_sums[32];
  detail::block_partial_sum(LoadTerm{x}, n, partials, warp_sums);
}

// One block (kPartialSumThreads threads): thread t adds partials t, t + T, ...;
// the block's total times scale goes to out[0] as a float.
__global__ void sum_finish_kernel(const double* __restrict__ partials, int count, double scale,
                                  float* __restrict__ out) {
  __shared__ double warp_sums[32];
  double acc = 0.0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partials[i];
  const double total = detail::block_sum(acc, warp_sums);
  if (threadIdx.x == 0) out[0] = (float)(total * scale);
}

// One block: blockDim.y contiguous rows of length r_len (row = blockIdx.x *
// blockDim.y + threadIdx.y), each summed by its blockDim.x threads (a
// multiple of 32): thread x adds elements x, x + blockDim.x, ... in double,
// the row's warps combine by shuffles, then thread x = 0 adds its row's warp
// totals in warp order and writes out[row].
__global__ void sum_rows_kernel(const float* __restrict__ x, float* __restrict__ out, int64_t rows, int64_t r_len) {
  __shared__ double warp_sums[32];
  const int64_t row = (int64_t)blockIdx.x * blockDim.y + threadIdx.y;
  double acc = 0.0;
  if (row < rows) {
    const float* p = x + row * r_len;
    for (int64_t j = threadIdx.x; j < r_len; j += blockDim.x) acc += p[j];
  }
  acc = detail::warp_sum(acc);
  const int warps_per_row = blockDim.x / warpSize;
  if (threadIdx.x % warpSize == 0) warp_sums[(threadIdx.y * blockDim.x + threadIdx.x) / warpSize] = acc;
  __syncthreads();
  if (threadIdx.x == 0 && row < rows) {
    double total = 0.0;
    for (int w = 0; w < warps_per_row; ++w) total += warp_sums[threadIdx.y * warps_per_row + w];
    out[row] = (float)total;
  }
}

// One thread: output (o, i) for k = o * inner + i in its grid-stride share of
// [0, outer * inner), adding x[(o * r_len + r) * inner + i] over r in order
// in double (the CPU's loop); neighbouring threads read neighbouring i.
__global__ void sum_axis_kernel(const float* __restrict__ x, float* __restrict__ out, int64_t outer, int64_t r_len,
                                int64_t inner) {
  const int64_t n = outer * inner;
  for (int64_t k = grid_start(); k < n; k += grid_stride()) {
    const int64_t o = k / inner, i = k % inner;
    const float* p = x + o * r_len * inner + i;
    double acc = 0.0;
    for (int64_t r = 0; r < r_len; ++r) acc += p[r * inner];
    out[k] = (float)acc;
  }
}

}  // namespace

int partial_sum_blocks(int64_t n) {
  const int64_t per_block = (int64_t)kPartialSumThreads * kPartialWorkPerThread;
  const int64_t b = (n + per_block - 1) / per_block;
  return (int)(b < 1 ? 1 : (b < kMaxPartials ? b : kMaxPartials));
}

void finish_partial_sums(const double* partials, int count, double scale, float* out) {
  RECON_LAUNCH(sum_finish_kernel, 1, kPartialSumThreads, 0, runtime_stream())(partials, count, scale, out);
  check_launch("sum_finish_kernel");
}

void sum_all(const float* x, int64_t n, double scale, float* out) {
  const int blocks = partial_sum_blocks(n);
  DeviceWorkspace partials((size_t)blocks * sizeof(double));
  RECON_LAUNCH(sum_partial_kernel, blocks, kPartialSumThreads, 0, runtime_stream())(x, n, partials.as<double>());
  check_launch("sum_partial_kernel");
  finish_partial_sums(partials.as<double>(), blocks, scale, out);
}

void sum_axis(const float* x, float* out, int64_t outer, int64_t r_len, int64_t inner) {
  const int64_t outputs = outer * inner;
  if (outputs == 0) return;
  if (inner == 1 && r_len >= kShortRow) {
    const dim3 block = r_len >= kLongRow ? dim3(kRowBlockThreads, 1) : dim3(32, kRowsPerBlock);
    const int64_t blocks = (outer + block.y - 1) / block.y;
    RECON_LAUNCH(sum_rows_kernel, (unsigned)blocks, block, 0, runtime_stream())(x, out, outer, r_len);
    check_launch("sum_rows_kernel");
  } else {
    RECON_LAUNCH(sum_axis_kernel, grid_for(outputs), kBlockThreads, 0, runtime_stream())(x, out, outer, r_len, inner);
    check_launch("sum_axis_kernel");
  }
}

}  // namespace recon::cuda
