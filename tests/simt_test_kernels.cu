// Kernels that test the SIMT emulator: shared-memory, dynamic-shared and
// warp-shuffle reductions, a tiled transpose, atomics, scans and votes,
// 3-D indexing, vector loads and math intrinsics, two blocks that must run
// at the same time, and kernels with the bugs the emulator must catch.
// Compiled by nvcc in the CUDA build and as C++ in the SIM build, unchanged.
#include "kernels/cuda/launch.cuh"
#include "tests/simt_test_kernels.hpp"

namespace recon::simt_test {

namespace {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kTile = 32;  // transpose tile edge; the tile row is padded by 1 against bank conflicts

// One block: sums its grid-stride share of x; thread 0 writes the block's sum.
// Shared-memory tree reduction; blockDim.x is a power of 2 up to 1024.
__global__ void block_sum_shared_kernel(const float* __restrict__ x, float* __restrict__ block_sums, int n) {
  __shared__ float partial[1024];
  const int t = threadIdx.x;
  float s = 0.f;
  for (int i = blockIdx.x * blockDim.x + t; i < n; i += gridDim.x * blockDim.x) s += x[i];
  partial[t] = s;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (t < half) partial[t] += partial[t + half];
    __syncthreads();
  }
  if (t == 0) block_sums[blockIdx.x] = partial[0];
}

// block_sum_shared_kernel over dynamic shared memory (blockDim.x floats).
__global__ void block_sum_dynamic_kernel(const float* __restrict__ x, float* __restrict__ block_sums, int n) {
  RECON_DYNAMIC_SHARED(float, partial);
  const int t = threadIdx.x;
  float s = 0.f;
  for (int i = blockIdx.x * blockDim.x + t; i < n; i += gridDim.x * blockDim.x) s += x[i];
  partial[t] = s;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (t < half) partial[t] += partial[t + half];
    __syncthreads();
  }
  if (t == 0) block_sums[blockIdx.x] = partial[0];
}

// One block: like block_sum_shared_kernel, but each warp reduces with
// __shfl_down_sync, lane 0 of each warp stores the warp's sum, and warp 0
// combines the (up to 32) warp sums with __shfl_xor_sync. blockDim.x is a
// multiple of 32.
__global__ void warp_sum_shuffle_kernel(const float* __restrict__ x, float* __restrict__ block_sums, int n) {
  __shared__ float warp_sums[32];
  const int t = threadIdx.x, lane = t % warpSize, warp = t / warpSize;
  float s = 0.f;
  for (int i = blockIdx.x * blockDim.x + t; i < n; i += gridDim.x * blockDim.x) s += x[i];
  for (int offset = warpSize / 2; offset > 0; offset /= 2) s += __shfl_down_sync(kFullMask, s, offset);
  if (lane == 0) warp_sums[warp] = s;
  __syncthreads();
  if (warp == 0) {
    const int warps = blockDim.x / warpSize;
    float w = lane < warps ? warp_sums[lane] : 0.f;
    for (int mask = warpSize / 2; mask > 0; mask /= 2) w += __shfl_xor_sync(kFullMask, w, mask);
    if (lane == 0) block_sums[blockIdx.x] = w;
  }
}

// One block: a 32x32 tile of in (rows, cols); thread (x, y) moves column x,
// rows y, y + 8, ... of the tile. The tile goes through shared memory so that
// both the read of in and the write of out (cols, rows) walk along rows.
__global__ void transpose_tiled_kernel(const float* __restrict__ in, float* __restrict__ out, int rows, int cols) {
  __shared__ float tile[kTile][kTile + 1];
  int col = blockIdx.x * kTile + threadIdx.x;
  int row = blockIdx.y * kTile + threadIdx.y;
  for (int r = 0; r < kTile; r += blockDim.y)
    if (row + r < rows && col < cols) tile[threadIdx.y + r][threadIdx.x] = in[(row + r) * cols + col];
  __syncthreads();
  col = blockIdx.y * kTile + threadIdx.x;  // now a column of out = a row of in
  row = blockIdx.x * kTile + threadIdx.y;
  for (int r = 0; r < kTile; r += blockDim.y)
    if (row + r < cols && col < rows) out[(row + r) * rows + col] = tile[threadIdx.x][threadIdx.y + r];
}

// Float max through atomicCAS on the bits (CUDA has no float atomicMax).
__device__ float atomic_max_float(float* address, float value) {
  int* bits = reinterpret_cast<int*>(address);
  int old = *bits;
  while (__int_as_float(old) < value) {
    const int assumed = old;
    old = atomicCAS(bits, assumed, __float_as_int(value));
    if (old == assumed) break;
  }
  return __int_as_float(old);
}

// One thread per value (grid-stride): counts and weights go to a block-local
// histogram in shared memory (shared atomics), which is then added to the
// global one (global atomics); maxima through atomicMax and atomicCAS.
__global__ void histogram_atomic_kernel(const int* __restrict__ values, const float* __restrict__ weights, int n,
                                        unsigned* bins, float* weight_bins, int nbins, int* max_value,
                                        float* max_weight) {
  __shared__ unsigned local_bins[256];
  __shared__ float local_weights[256];
  for (int b = threadIdx.x; b < nbins; b += blockDim.x) {
    local_bins[b] = 0;
    local_weights[b] = 0.f;
  }
  __syncthreads();
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const int v = values[i];
    atomicAdd(&local_bins[v], 1u);
    atomicAdd(&local_weights[v], weights[i]);
    atomicMax(max_value, v);
    atomic_max_float(max_weight, weights[i]);
  }
  __syncthreads();
  for (int b = threadIdx.x; b < nbins; b += blockDim.x) {
    if (local_bins[b]) atomicAdd(&bins[b], local_bins[b]);
    if (local_weights[b] != 0.f) atomicAdd(&weight_bins[b], local_weights[b]);
  }
}

// One thread per element; blockDim.x is a multiple of 32, at most 1024. Per
// warp: the inclusive scan of x (Kogge-Stone over __shfl_up_sync), lane 0's x
// to every lane, x in reverse lane order (through shared memory and
// __syncwarp), and the votes on x > 0. Per block: how many x > 0.
__global__ void warp_scan_votes_kernel(const int* __restrict__ x, int* scan, int* broadcast, int* reversed,
                                       unsigned* ballot, int* any, int* all, int* block_count) {
  __shared__ int mirror[1024];
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  const int lane = threadIdx.x % warpSize, warp = i / warpSize;
  const int v = x[i];
  int s = v;
  for (int offset = 1; offset < warpSize; offset *= 2) {
    const int up = __shfl_up_sync(kFullMask, s, offset);
    if (lane >= offset) s += up;
  }
  scan[i] = s;
  broadcast[i] = __shfl_sync(kFullMask, v, 0);
  mirror[threadIdx.x] = v;
  __syncwarp();
  reversed[i] = mirror[threadIdx.x - lane + (warpSize - 1 - lane)];
  const unsigned b = __ballot_sync(kFullMask, v > 0);
  const int a = __any_sync(kFullMask, v > 0);
  const int l = __all_sync(kFullMask, v > 0);
  if (lane == 0) {
    ballot[warp] = b;
    any[warp] = a;
    all[warp] = l;
  }
  const int count = __syncthreads_count(v > 0);
  if (threadIdx.x == 0) block_count[blockIdx.x] = count;
}

// One thread per element of a 3-D grid of 3-D blocks (every extent < 10):
// writes its block and thread coordinates as decimal digits.
__global__ void index_map_kernel(int* out) {
  const int block_linear = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const int threads = blockDim.x * blockDim.y * blockDim.z;
  const int thread_linear = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  out[block_linear * threads + thread_linear] =
      blockIdx.x + 10 * blockIdx.y + 100 * blockIdx.z + 1000 * (threadIdx.x + 10 * threadIdx.y + 100 * threadIdx.z);
}

__device__ __forceinline__ float math_mix(float a, float b, float c) {
  return fmaf(a, b, c) + rsqrtf(b) + __expf(-a) + __fdividef(a, b);
}

// One thread per float4 of the inputs.
__global__ void vector_math_kernel(const float4* __restrict__ a, const float4* __restrict__ b,
                                   const float4* __restrict__ c, float4* __restrict__ y, int n4) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n4) return;
  const float4 va = __ldg(a + i), vb = __ldg(b + i), vc = __ldg(c + i);
  y[i] = make_float4(math_mix(va.x, vb.x, vc.x), math_mix(va.y, vb.y, vc.y), math_mix(va.z, vb.z, vc.z),
                     math_mix(va.w, vb.w, vc.w));
}

// One block, one thread per element. Deliberately wrong: the reads of
// neighbours' values are not separated from their writes by a barrier.
__global__ void neighbour_sum_missing_barrier_kernel(const float* __restrict__ x, float* __restrict__ y) {
  __shared__ float buf[1024];
  const int t = threadIdx.x;
  buf[t] = x[t];
  y[t] = buf[t] + (t > 0 ? buf[t - 1] : 0.f);  // BUG: a __syncthreads() belongs before this line
}

// Two blocks of one thread: block 1 raises the flag, block 0 polls for it.
__global__ void handshake_kernel(int* flag, int* seen, long long spins) {
  if (blockIdx.x == 1) {
    atomicExch(flag, 1);
    return;
  }
  for (long long i = 0; i < spins && atomicAdd(flag, 0) == 0; ++i) {
  }
  *seen = atomicAdd(flag, 0);
}

// Deliberately wrong: in block 2, half the threads leave before the barrier.
__global__ void divergent_barrier_kernel(float* y) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (blockIdx.x == 2 && threadIdx.x >= blockDim.x / 2) return;
  y[i] = 1.f;
  __syncthreads();
  y[i] += 1.f;
}

// Deliberately wrong: the two halves of the block wait at different barriers.
__global__ void barrier_two_sites_kernel(float* y) {
  const int t = threadIdx.x;
  if (t < blockDim.x / 2) {
    y[t] = 1.f;
    __syncthreads();
  } else {
    y[t] = 2.f;
    __syncthreads();
  }
}

// Deliberately wrong: lane 5 is named in the mask but never shuffles.
__global__ void shuffle_missing_lane_kernel(float* y) {
  float v = (float)threadIdx.x;
  if (threadIdx.x == 5) {
    __syncthreads();
  } else {
    v = __shfl_sync(kFullMask, v, 0);
  }
  y[threadIdx.x] = v;
}

// Deliberately wrong: lane 0 shuffles with a mask that leaves it out.
__global__ void shuffle_mask_without_self_kernel(float* y) {
  const unsigned mask = threadIdx.x == 0 ? 0xfffffffeu : kFullMask;
  y[threadIdx.x] = __shfl_sync(mask, (float)threadIdx.x, 1);
}

}  // namespace

cudaError_t block_sum_shared(const float* x, float* block_sums, int n, int blocks, int threads) {
  RECON_LAUNCH(block_sum_shared_kernel, blocks, threads, 0, nullptr)(x, block_sums, n);
  return cudaGetLastError();
}

cudaError_t block_sum_dynamic(const float* x, float* block_sums, int n, int blocks, int threads, int extra_bytes) {
  const size_t bytes = threads * sizeof(float) + extra_bytes;
  RECON_LAUNCH(block_sum_dynamic_kernel, blocks, threads, bytes, nullptr)(x, block_sums, n);
  return cudaGetLastError();
}

cudaError_t allow_dynamic_shared(int bytes) {
  return cudaFuncSetAttribute(block_sum_dynamic_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
}

cudaError_t warp_sum_shuffle(const float* x, float* block_sums, int n, int blocks, int threads) {
  RECON_LAUNCH(warp_sum_shuffle_kernel, blocks, threads, 0, nullptr)(x, block_sums, n);
  return cudaGetLastError();
}

cudaError_t transpose_tiled(const float* in, float* out, int rows, int cols) {
  const dim3 grid((cols + kTile - 1) / kTile, (rows + kTile - 1) / kTile);
  RECON_LAUNCH(transpose_tiled_kernel, grid, dim3(kTile, 8), 0, nullptr)(in, out, rows, cols);
  return cudaGetLastError();
}

cudaError_t histogram_atomic(const int* values, const float* weights, int n, unsigned* bins, float* weight_bins,
                             int nbins, int* max_value, float* max_weight, int blocks, int threads) {
  RECON_LAUNCH(histogram_atomic_kernel, blocks, threads, 0, nullptr)
  (values, weights, n, bins, weight_bins, nbins, max_value, max_weight);
  return cudaGetLastError();
}

cudaError_t warp_scan_votes(const int* x, int* scan, int* broadcast, int* reversed, unsigned* ballot, int* any,
                            int* all, int* block_count, int n, int threads) {
  RECON_LAUNCH(warp_scan_votes_kernel, n / threads, threads, 0, nullptr)(x, scan, broadcast, reversed, ballot, any,
                                                                         all, block_count);
  return cudaGetLastError();
}

cudaError_t index_map(int* out, dim3 grid, dim3 block) {
  RECON_LAUNCH(index_map_kernel, grid, block, 0, nullptr)(out);
  return cudaGetLastError();
}

cudaError_t vector_math(const float* a, const float* b, const float* c, float* y, int n) {
  const int n4 = n / 4, threads = 64;
  RECON_LAUNCH(vector_math_kernel, (n4 + threads - 1) / threads, threads, 0, nullptr)
  (reinterpret_cast<const float4*>(a), reinterpret_cast<const float4*>(b), reinterpret_cast<const float4*>(c),
   reinterpret_cast<float4*>(y), n4);
  return cudaGetLastError();
}

cudaError_t neighbour_sum_missing_barrier(const float* x, float* y, int threads) {
  RECON_LAUNCH(neighbour_sum_missing_barrier_kernel, 1, threads, 0, nullptr)(x, y);
  return cudaGetLastError();
}

cudaError_t handshake(int* flag, int* seen, long long spins) {
  RECON_LAUNCH(handshake_kernel, 2, 1, 0, nullptr)(flag, seen, spins);
  return cudaGetLastError();
}

cudaError_t divergent_barrier(float* y, int threads) {
  RECON_LAUNCH(divergent_barrier_kernel, 3, threads, 0, nullptr)(y);
  return cudaGetLastError();
}

cudaError_t barrier_two_sites(float* y, int threads) {
  RECON_LAUNCH(barrier_two_sites_kernel, 1, threads, 0, nullptr)(y);
  return cudaGetLastError();
}

cudaError_t shuffle_missing_lane(float* y) {
  RECON_LAUNCH(shuffle_missing_lane_kernel, 1, 32, 0, nullptr)(y);
  return cudaGetLastError();
}

cudaError_t shuffle_mask_without_self(float* y) {
  RECON_LAUNCH(shuffle_mask_without_self_kernel, 1, 32, 0, nullptr)(y);
  return cudaGetLastError();
}

}  // namespace recon::simt_test
