// CPU reductions and broadcast copy.
#include "kernels/cpu/reduce.hpp"

#include <vector>

namespace recon::cpu {

void sum_axis(const float* x, float* out, int64_t outer, int64_t r_len, int64_t inner) {
#pragma omp parallel for collapse(2) schedule(static) if (outer * inner * r_len > (1 << 15))
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const float* p = x + o * r_len * inner + i;
      double acc = 0.0;
      for (int64_t r = 0; r < r_len; ++r) acc += p[r * inner];
      out[o * inner + i] = (float)acc;
    }
}

double sum_all(const float* x, int64_t n) {
  constexpr int64_t kChunk = 4096;  // fixed chunking: the same order on every machine
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial((size_t)chunks);
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t c = 0; c < chunks; ++c) {
    double acc = 0.0;
    const int64_t end = (c + 1) * kChunk < n ? (c + 1) * kChunk : n;
    for (int64_t i = c * kChunk; i < end; ++i) acc += x[i];
    partial[(size_t)c] = acc;
  }
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

void broadcast_copy(const Broadcast4& bc, const float* x, float* out) {
  const int64_t n = bc.shape[0] * bc.shape[1] * bc.shape[2] * bc.shape[3];
#pragma omp parallel for schedule(static) if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) {
    int64_t ia, ib;
    broadcast_offsets(bc, i, ia, ib);
    out[i] = x[ia];
  }
}

}  // namespace recon::cpu
