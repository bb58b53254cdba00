// CPU reductions. Sums accumulate in double in a fixed order, so a result
// does not depend on the number of threads (bitwise-deterministic).
#pragma once
#include <cstdint>

#include "kernels/common/elementwise.hpp"

namespace recon::cpu {

// out[o * inner + i] = sum_r x[(o * r_len + r) * inner + i]
void sum_axis(const float* x, float* out, int64_t outer, int64_t r_len, int64_t inner);
// The sum of n elements, in fixed chunks.
double sum_all(const float* x, int64_t n);
// out (bc.shape, 4-D) <- x broadcast; bc.a_stride holds x's strides.
void broadcast_copy(const Broadcast4& bc, const float* x, float* out);

}  // namespace recon::cpu
