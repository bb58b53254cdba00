// CPU inverted-dropout kernels: the keep mask is regenerated from the
// Philox stream at (seed, offset) in both passes (kernels/common/loss.hpp).
#pragma once
#include <cstdint>

namespace recon::cpu {

// y_i = keep_i ? x_i / (1 - p) : 0 for n elements.
void dropout_forward(const float* x, float* y, int64_t n, float p, uint64_t seed, uint64_t offset);
// gx_i = keep_i ? g_i / (1 - p) : 0, with the forward's (seed, offset).
void dropout_backward(const float* g, float* gx, int64_t n, float p, uint64_t seed, uint64_t offset);

}  // namespace recon::cpu
