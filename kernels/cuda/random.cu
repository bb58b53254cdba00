// CUDA kernels over the Philox stream: uniform, normal and Bernoulli fills,
// and inverted dropout. Element i uses counter offset + i and the formulas of
// kernels/common/philox.hpp and kernels/common/loss.hpp, exactly as the CPU
// loops do, so both devices draw the same numbers and the same masks.
#include "kernels/cuda/launch.cuh"

#include <cstdint>

#include "kernels/common/loss.hpp"
#include "kernels/common/philox.hpp"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/random.hpp"
#include "runtime/cuda_context.hpp"

namespace recon::cuda {

using detail::runtime_stream;

namespace {

using detail::grid_for;
using detail::grid_start;
using detail::grid_stride;
using detail::kBlockThreads;


// One thread: dst[i] for i in its grid-stride share of [0, n), from counter offset + i.
__global__ void fill_uniform_kernel(float* __restrict__ dst, int64_t n, uint64_t seed, uint64_t offset, float lo,
                                    float hi) {
  for (int64_t i = grid_start(); i < n; i += grid_stride())
    dst[i] = lo + (hi - lo) * philox_uniform(seed, offset, (uint64_t)i);
}

// One thread: dst[i] for i in its grid-stride share of [0, n), from counter offset + i.
__global__ void fill_normal_kernel(float* __restrict__ dst, int64_t n, uint64_t seed, uint64_t offset, float mean,
                                   float stddev) {
  for (int64_t i = grid_start(); i < n; i += grid_stride())
    dst[i] = mean + stddev * philox_normal(seed, offset, (uint64_t)i);
}

// One thread: dst[i] for i in its grid-stride share of [0, n), from counter offset + i.
__global__ void fill_bernoulli_kernel(float* __restrict__ dst, int64_t n, uint64_t seed, uint64_t offset, float p) {
  for (int64_t i = grid_start(); i < n; i += grid_stride())
    dst[i] = philox_uniform(seed, offset, (uint64_t)i) < p ? 1.f : 0.f;
}

// One thread: y[i] for i in its grid-stride share of [0, n): x[i] scaled by
// 1 / (1 - p) when element i's Philox draw (key, first + i) keeps it, else 0.
__global__ void dropout_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t n, float p,
                               PhiloxArgs rng) {
  const float s = dropout_scale(p);
  const uint64_t seed = rng.key(), offset = rng.first();
  for (int64_t i = grid_start(); i < n; i += grid_stride())
    y[i] = dropout_keep(seed, offset, (uint64_t)i, p) ? x[i] * s : 0.f;
}

}  // namespace

void fill_uniform(float* dst, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi) {
  if (n == 0) return;
  RECON_LAUNCH(fill_uniform_kernel, grid_for(n), kBlockThreads, 0, runtime_stream())(dst, n, seed, offset, lo, hi);
  check_launch("fill_uniform_kernel");
}

void fill_normal(float* dst, int64_t n, uint64_t seed, uint64_t offset, float mean, float stddev) {
  if (n == 0) return;
  RECON_LAUNCH(fill_normal_kernel, grid_for(n), kBlockThreads, 0, runtime_stream())(dst, n, seed, offset, mean, stddev);
  check_launch("fill_normal_kernel");
}

void fill_bernoulli(float* dst, int64_t n, uint64_t seed, uint64_t offset, float p) {
  if (n == 0) return;
  RECON_LAUNCH(fill_bernoulli_kernel, grid_for(n), kBlockThreads, 0, runtime_stream())(dst, n, seed, offset, p);
  check_launch("fill_bernoulli_kernel");
}

void dropout(const float* x, float* y, int64_t n, float p, PhiloxArgs rng) {
  if (n == 0) return;
  RECON_LAUNCH(dropout_kernel, grid_for(n), kBlockThreads, 0, runtime_stream())(x, y, n, p, rng);
  check_launch("dropout_kernel");
}

}  // namespace recon::cuda
