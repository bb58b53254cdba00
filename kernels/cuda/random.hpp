// Launchers of the CUDA Philox kernels (kernels/cuda/random.cu): random fills
// and inverted dropout. Element i of a draw at (seed, offset) is the same
// number as on the CPU (kernels/common/philox.hpp), so a seed reproduces a
// tensor or a dropout mask on either device. Plain C++: included by
// runtime/tensor.cpp and runtime/ops_dropout.cpp in every build.
#pragma once
#include <cstdint>

#include "runtime/generator.hpp"

namespace recon::cuda {

// dst[i] = lo + (hi - lo) U_i, U_i uniform in [0, 1).
void fill_uniform(float* dst, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi);
// dst[i] = mean + stddev Z_i, Z_i standard normal (Box-Muller).
void fill_normal(float* dst, int64_t n, uint64_t seed, uint64_t offset, float mean, float stddev);
// dst[i] = 1 with probability p, else 0.
void fill_bernoulli(float* dst, int64_t n, uint64_t seed, uint64_t offset, float p);
// y_i = keep_i ? x_i / (1 - p) : 0, keep_i from (key, first + i) of rng
// (kernel arguments, or device memory inside a captured CUDA graph); the
// backward pass is the same call on the gradient with the forward's rng.
void dropout(const float* x, float* y, int64_t n, float p, PhiloxArgs rng);

}  // namespace recon::cuda
