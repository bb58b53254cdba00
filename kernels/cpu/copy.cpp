// Strided copy and fill on the CPU.
#include "kernels/cpu/copy.hpp"

#include <algorithm>

namespace recon::cpu {

void strided_copy(const float* src, const std::vector<int64_t>& shape, const std::vector<int64_t>& strides,
                  float* dst) {
  const int rank = (int)shape.size();
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (rank == 0) {
    if (n) dst[0] = src[0];
    return;
  }
  // Rows along the last dim; each row's start found from its linear index.
  const int64_t inner = shape[rank - 1], inner_stride = strides[rank - 1];
  const int64_t rows = inner ? n / inner : 0;
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    int64_t rem = r, off = 0;
    for (int d = rank - 2; d >= 0; --d) {
      off += (rem % shape[d]) * strides[d];
      rem /= shape[d];
    }
    const float* s = src + off;
    float* o = dst + r * inner;
    for (int64_t i = 0; i < inner; ++i) o[i] = s[i * inner_stride];
  }
}

void fill(float* dst, int64_t n, float value) { std::fill(dst, dst + n, value); }

}  // namespace recon::cpu
