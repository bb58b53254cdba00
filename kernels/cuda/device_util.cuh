// Helpers shared by the kernel sources: the runtime stream, grid sizing for grid-stride
// loops, and deterministic sums in double (a fixed shuffle tree inside a
// warp, then the warps' totals in warp order), so that a reduction's result
// depends only on the launch shape, which is a function of the problem size
// alone, never of the device or the thread schedule.
#pragma once
#include <cstdint>

#include "kernels/cuda/launch.cuh"
#include "runtime/cuda_context.hpp"

namespace recon::cuda::detail {

// The runtime stream every launch is ordered on (runtime/cuda_context.hpp).
inline cudaStream_t runtime_stream() { return static_cast<cudaStream_t>(stream_handle()); }

constexpr unsigned kFullMask = 0xffffffffu;
// Threads per block of the one-thread-per-element kernels: a multiple of
// the warp size that keeps 8 blocks resident per SM.
constexpr int kBlockThreads = 256;
// Grid-stride kernels launch at most this many blocks (2^20 threads, about
// 4 waves of an H100/H200 at full occupancy); larger sizes loop.
constexpr int64_t kMaxBlocks = 4096;

// Blocks for `work` items at `threads` per block, at least 1, capped at kMaxBlocks.
inline unsigned grid_for(int64_t work, int threads = kBlockThreads) {
  int64_t b = (work + threads - 1) / threads;
  if (b < 1) b = 1;
  return (unsigned)(b < kMaxBlocks ? b : kMaxBlocks);
}

// The first index and the stride of a 1-D grid-stride loop.
__device__ __forceinline__ int64_t grid_start() { return (int64_t)blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t grid_stride() { return (int64_t)gridDim.x * blockDim.x; }

// Sum of v over the 32 lanes of a full warp, valid in lane 0 (fixed tree).
__device__ __forceinline__ double warp_sum(double v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(kFullMask, v, offset);
  return v;
}

// Max of v over the 32 lanes of a full warp, valid in every lane.
__device__ __forceinline__ float warp_max_all(float v) {
  for (int mask = 16; mask > 0; mask /= 2) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, mask));
  return v;
}

// Sum of v over a 1-D block (blockDim.x a multiple of 32, at most 1024),
// valid in thread 0. `warp_sums` is shared memory for 32 doubles. Every
// thread of the block must call it (it holds two barriers); afterwards
// warp_sums may be reused.
__device__ __forceinline__ double block_sum(double v, double* warp_sums) {
  const int lane = threadIdx.x % warpSize, warp = threadIdx.x / warpSize;
  v = warp_sum(v);
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  double total = 0.0;
  if (threadIdx.x == 0)
    for (int w = 0; w < (int)blockDim.x / warpSize; ++w) total += warp_sums[w];
  __syncthreads();
  return total;
}

// Pass 1 of a two-pass sum: this block's total of term(i) over its
// grid-stride share of [0, n), accumulated in double, to partials[blockIdx.x].
template <class Term>
__device__ __forceinline__ void block_partial_sum(const Term& term, int64_t n, double* partials,
                                                  double* warp_sums) {
  double acc = 0.0;
  for (int64_t i = grid_start(); i < n; i += grid_stride()) acc += term(i);
  const double total = block_sum(acc, warp_sums);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

}  // namespace recon::cuda::detail
