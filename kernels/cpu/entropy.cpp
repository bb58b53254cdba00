// CPU entropy kernels. image_entropy: one histogram per image (OpenMP over
// images). local_entropy: the gray levels of each image are binned once, then
// each row slides its k x k window histogram along the columns (one column
// leaves, one enters), O(k + bins) per pixel.
#include "kernels/cpu/entropy.hpp"

#include <vector>

#include "kernels/common/shape.hpp"

namespace recon::cpu {

void image_entropy(const float* x, int64_t n, int64_t per_image, float* out) {
#pragma omp parallel for schedule(static) if (n * per_image > (1 << 15))
  for (int64_t img = 0; img < n; ++img) {
    int64_t hist[kEntropyBins] = {};
    const float* xi = x + img * per_image;
    for (int64_t i = 0; i < per_image; ++i) ++hist[intensity_bin(xi[i], kEntropyBins)];
    double s = 0.0;
    for (int b = 0; b < kEntropyBins; ++b) s += entropy_term(hist[b], per_image);
    out[img] = (float)s;
  }
}

void local_entropy(const LocalEntropyParams& p, const float* x, float* out) {
  const int h = p.h, w = p.w, r = p.k / 2;
  const int64_t plane = (int64_t)h * w, total = (int64_t)p.k * p.k;
  // Gray levels of every image, binned.
  std::vector<int> level(p.n * plane);
#pragma omp parallel for schedule(static) if (p.n * plane * p.c > (1 << 15))
  for (int64_t i = 0; i < p.n * plane; ++i) {
    const int64_t img = i / plane, pix = i % plane;
    level[i] = intensity_bin(gray_value(x + img * p.c * plane, plane, p.c, pix), p.bins);
  }
#pragma omp parallel for schedule(static) if (p.n * plane * p.k > (1 << 15))
  for (int64_t row = 0; row < p.n * h; ++row) {
    const int64_t img = row / h;
    const int i = (int)(row % h);
    const int* lv = level.data() + img * plane;
    std::vector<int64_t> hist(p.bins, 0);
    // The window rows (reflected) are the same for the whole output row.
    std::vector<int> rows(p.k);
    for (int d = -r; d <= r; ++d) rows[d + r] = (int)reflect_index(i + d, h);
    auto add_column = [&](int col, int64_t delta) {
      for (int rr : rows) hist[lv[(int64_t)rr * w + col]] += delta;
    };
    for (int d = -r; d <= r; ++d) add_column((int)reflect_index(d, w), 1);
    for (int j = 0; j < w; ++j) {
      if (j > 0) {
        add_column((int)reflect_index(j - 1 - r, w), -1);
        add_column((int)reflect_index(j + r, w), 1);
      }
      double s = 0.0;
      for (int b = 0; b < p.bins; ++b) s += entropy_term(hist[b], total);
      out[img * plane + (int64_t)i * w + j] = (float)s;
    }
  }
}

}  // namespace recon::cpu
