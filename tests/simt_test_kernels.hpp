// Host launchers of the kernels in simt_test_kernels.cu, the kernels that
// test the SIMT emulator (and, on a real GPU, the same kernels under nvcc).
// Pointers are device pointers; each launcher returns cudaGetLastError().
#pragma once
#include "runtime/cuda_api.hpp"

namespace recon::simt_test {

// Per-block sums of x (n values), shared-memory tree reduction; block_sums
// has `blocks` entries. threads: a power of 2 up to 1024.
cudaError_t block_sum_shared(const float* x, float* block_sums, int n, int blocks, int threads);
// The same reduction over dynamic shared memory of threads * 4 + extra_bytes bytes.
cudaError_t block_sum_dynamic(const float* x, float* block_sums, int n, int blocks, int threads,
                              int extra_bytes = 0);
// Lets block_sum_dynamic use up to `bytes` of dynamic shared memory.
cudaError_t allow_dynamic_shared(int bytes);
// Per-block sums through warp shuffles (down, then xor across warp sums).
cudaError_t warp_sum_shuffle(const float* x, float* block_sums, int n, int blocks, int threads);
// out (cols, rows) = transpose of in (rows, cols), 32x32 tiles in shared memory.
cudaError_t transpose_tiled(const float* in, float* out, int rows, int cols);
// bins[v] += 1 and weight_bins[v] += weights[i] for v = values[i] in [0, nbins);
// max_value = max(values), max_weight = max(weights) (atomicCAS on float bits).
cudaError_t histogram_atomic(const int* values, const float* weights, int n, unsigned* bins, float* weight_bins,
                             int nbins, int* max_value, float* max_weight, int blocks, int threads);
// Per warp: inclusive scan of x (shfl_up), lane 0's x broadcast (shfl), x
// in reverse lane order (shared memory + __syncwarp), ballot/any/all of
// x > 0; per block: __syncthreads_count(x > 0).
cudaError_t warp_scan_votes(const int* x, int* scan, int* broadcast, int* reversed, unsigned* ballot, int* any,
                            int* all, int* block_count, int n, int threads);
// out[i] = encoded (blockIdx, threadIdx) of the thread that owns element i of
// a 3-D grid of 3-D blocks, elements in (block linear, thread linear) order.
cudaError_t index_map(int* out, dim3 grid, dim3 block);
// y = fmaf(a, b, c) + rsqrtf(b) + __expf(-a) + __fdividef(a, b) via float4
// loads and __ldg; n a multiple of 4.
cudaError_t vector_math(const float* a, const float* b, const float* c, float* y, int n);
// One block: y[t] = x[t] + x[t - 1] (y[0] = x[0]) through shared memory, WITHOUT
// the __syncthreads between the writes and the reads.
cudaError_t neighbour_sum_missing_barrier(const float* x, float* y, int threads);
// Block 0 spins until block 1 raises a flag (at most `spins` polls);
// seen = 1 if it saw it: needs two blocks running at the same time.
cudaError_t handshake(int* flag, int* seen, long long spins);

// Kernels with bugs that the emulator reports (never run on a GPU):
// block 2 of 3 reaches __syncthreads with only half its threads.
cudaError_t divergent_barrier(float* y, int threads);
// half the block waits at one __syncthreads, half at another.
cudaError_t barrier_two_sites(float* y, int threads);
// lane 5 waits at __syncthreads while its warp shuffles with a full mask.
cudaError_t shuffle_missing_lane(float* y);
// lane 0 shuffles with a mask that leaves it out.
cudaError_t shuffle_mask_without_self(float* y);

}  // namespace recon::simt_test
