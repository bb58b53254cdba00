// Histogram-entropy math shared by the CPU and CUDA backends: how an
// intensity falls into one of `bins` levels, the Shannon term -p log2 p of a
// bin, and the gray value of a multi-channel pixel (method 1's difficulty
// measures `entropy` and `local-entropy`).
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common/hd.hpp"

namespace recon {

constexpr int kEntropyBins = 256;          // image_entropy: 256 intensity levels
constexpr int kLocalEntropyMaxBins = 256;  // local_entropy: bins in [1, 256]
constexpr int kLocalEntropyMaxK = 63;      // local_entropy: odd k in [1, 63] (counts fit 16 bits)

// The bin of an intensity v in [0, 1]: min(floor(bins v), bins - 1). Values
// below 0 (and NaN) go to bin 0, values at or above 1 to the last bin.
// bins v is computed in float on both backends (exact for powers of two).
RECON_HD int intensity_bin(float v, int bins) {
  const float s = v * (float)bins;
  if (!(s > 0.f)) return 0;
  if (s >= (float)bins) return bins - 1;
  return (int)s;  // truncation = floor for s > 0
}

// One bin's share of the Shannon entropy in bits: -p log2 p with p =
// count / total (0 for an empty bin). Summed over bins in bin order.
RECON_HD double entropy_term(int64_t count, int64_t total) {
  if (count <= 0) return 0.0;
  const double p = (double)count / (double)total;
  return -p * log2(p);
}

// The gray value of pixel i of an image of `c` channel planes of `plane`
// elements each: the mean of its channels, summed in channel order.
RECON_HD float gray_value(const float* image, int64_t plane, int c, int64_t i) {
  float s = 0.f;
  for (int ch = 0; ch < c; ++ch) s += image[ch * plane + i];
  return s / (float)c;
}

// local_entropy on n images of (c, h, w): k x k windows (k odd, reflect
// padding by k / 2 < h, w), `bins` levels.
struct LocalEntropyParams {
  int64_t n;
  int c, h, w, k, bins;
};

}  // namespace recon
