// Index math of the shape ops shared by the CPU and CUDA backends: reflect
// padding and the rot90 source map.
#pragma once
#include <cstdint>

#include "kernels/common/hd.hpp"

namespace recon {

// Reflect padding (the edge is not repeated): -1 -> 1, n -> n - 2. Valid for
// i in [-(n - 1), 2n - 2], i.e. a pad smaller than n.
RECON_HD int64_t reflect_index(int64_t i, int64_t n) {
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

// The output positions o in [0, out) (o = pad_before + i') whose reflected
// source reflect_index(i', n) is input i, in ascending order: i' = -i (i > 0),
// i, and 2(n - 1) - i (i < n - 1). Writes them to o[] and returns how many.
RECON_HD int reflect_covering_outputs(int64_t i, int64_t n, int64_t pad_before, int64_t out, int64_t o[3]) {
  int count = 0;
  const int64_t cand[3] = {i > 0 ? -i : -1 - pad_before, i, i < n - 1 ? 2 * (n - 1) - i : out};
  for (int k = 0; k < 3; ++k) {
    const int64_t pos = cand[k] + pad_before;
    if (pos >= 0 && pos < out) o[count++] = pos;
  }
  return count;
}

// How a 2-D pad fills the border.
enum class PadKind { Zero, Reflect };

// 2-D padding of `planes` = N * C planes of (H, W) into (H + top + bottom, W + left + right).
struct Pad2dParams {
  int64_t planes, h, w, out_h, out_w;
  int64_t left, top;
};

// rot90 of an (H, W) plane by k in {0, 1, 2, 3} counter-clockwise quarter
// turns (torch.rot90): the output is (W, H) for odd k. Gives the source
// (row, col) of output (i, j).
RECON_HD void rot90_source(int k, int64_t i, int64_t j, int64_t h, int64_t w, int64_t& si, int64_t& sj) {
  switch (k) {
    case 1: si = j; sj = w - 1 - i; break;          // out (W, H)
    case 2: si = h - 1 - i; sj = w - 1 - j; break;  // out (H, W)
    case 3: si = h - 1 - j; sj = i; break;          // out (W, H)
    default: si = i; sj = j; break;
  }
}

// k reduced to {0, 1, 2, 3} for any integer k.
RECON_HD int rot90_turns(int k) { return ((k % 4) + 4) % 4; }

}  // namespace recon
