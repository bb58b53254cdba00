// CPU reductions. Sums accumulate in double in a fixed order, so a result
// does not depend on the number of threads (bitwise-deterministic).
#pragma once
#include <cstdint>

#include "kernels/common/elementwise.hpp"

namespace recon::cpu {

// A sum in double over eight interleaved partial sums: element i goes to
// lane i % 8, and the lanes are combined pairwise, ((0 + 1) + (2 + 3)) +
// ((4 + 5) + (6 + 7)). Independent add chains run faster than one (an add's
// latency bounds a single chain), and eight of them are one 512-bit vector
// (two 256-bit ones) per step; the order is still fixed, so the result does
// not depend on the thread count. Feed rows with add(): the lane of an
// element is its index within the row.
struct Sum8 {
  double lane[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
  // Adds f(i) for i in [0, n) (f returns double).
  template <class F>
  void add(int64_t n, F f) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      double v[8];
      for (int l = 0; l < 8; ++l) v[l] = f(i + l);
      for (int l = 0; l < 8; ++l) lane[l] += v[l];
    }
    for (; i < n; ++i) lane[i & 7] += f(i);
  }
  double total() const {
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  }
};

// out[o * inner + i] = sum_r x[(o * r_len + r) * inner + i]
void sum_axis(const float* x, float* out, int64_t outer, int64_t r_len, int64_t inner);
// The sum of n elements, in fixed chunks.
double sum_all(const float* x, int64_t n);
// out (bc.shape, 4-D) <- x broadcast; bc.a_stride holds x's strides.
void broadcast_copy(const Broadcast4& bc, const float* x, float* out);

}  // namespace recon::cpu
