// Random fills: element i depends only on (seed, offset + i), so the
// parallel loop gives the same numbers as a serial one.
#include "kernels/cpu/random.hpp"

#include "kernels/common/philox.hpp"

namespace recon::cpu {

void fill_uniform(float* dst, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi) {
#pragma omp parallel for schedule(static) if (n > 4096)
  for (int64_t i = 0; i < n; ++i) dst[i] = lo + (hi - lo) * philox_uniform(seed, offset, (uint64_t)i);
}

void fill_normal(float* dst, int64_t n, uint64_t seed, uint64_t offset, float mean, float stddev) {
#pragma omp parallel for schedule(static) if (n > 4096)
  for (int64_t i = 0; i < n; ++i) dst[i] = mean + stddev * philox_normal(seed, offset, (uint64_t)i);
}

void fill_bernoulli(float* dst, int64_t n, uint64_t seed, uint64_t offset, float p) {
#pragma omp parallel for schedule(static) if (n > 4096)
  for (int64_t i = 0; i < n; ++i) dst[i] = philox_uniform(seed, offset, (uint64_t)i) < p ? 1.f : 0.f;
}

}  // namespace recon::cpu
