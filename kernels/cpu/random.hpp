// CPU kernels that fill memory from the Philox stream (kernels/common/philox.hpp).
#pragma once
#include <cstdint>

namespace recon::cpu {

void fill_uniform(float* dst, int64_t n, uint64_t seed, uint64_t offset, float lo, float hi);
void fill_normal(float* dst, int64_t n, uint64_t seed, uint64_t offset, float mean, float stddev);
// 1 with probability p, else 0.
void fill_bernoulli(float* dst, int64_t n, uint64_t seed, uint64_t offset, float p);

}  // namespace recon::cpu
