// CPU inverted dropout: element i's keep decision depends only on
// (seed, offset + i), so the parallel loop matches a serial one and the
// backward pass regenerates the forward's mask.
#include "kernels/cpu/dropout.hpp"

#include "kernels/common/loss.hpp"

namespace recon::cpu {

// Philox costs ~10 rounds per element: parallel from a few thousand elements.
constexpr int64_t kDropoutParallelMin = 4096;

void dropout_forward(const float* x, float* y, int64_t n, float p, uint64_t seed, uint64_t offset) {
  const float s = dropout_scale(p);
#pragma omp parallel for schedule(static) if (n > kDropoutParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = dropout_keep(seed, offset, (uint64_t)i, p) ? x[i] * s : 0.f;
}

void dropout_backward(const float* g, float* gx, int64_t n, float p, uint64_t seed, uint64_t offset) {
  const float s = dropout_scale(p);
#pragma omp parallel for schedule(static) if (n > kDropoutParallelMin)
  for (int64_t i = 0; i < n; ++i) gx[i] = dropout_keep(seed, offset, (uint64_t)i, p) ? g[i] * s : 0.f;
}

}  // namespace recon::cpu
