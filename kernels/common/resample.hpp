// Resampling index math shared by the CPU and CUDA backends: nearest and
// bilinear (align_corners = false) source positions, as PyTorch computes them.
#pragma once
#include <cstdint>

#include "kernels/common/hd.hpp"

namespace recon {

// One resize of `planes` = N * C planes of (H, W) into (Ho, Wo).
struct ResampleParams {
  int64_t planes, h, w, out_h, out_w;
};

// PyTorch 'nearest': src = floor(dst * in / out), in exact integer arithmetic.
RECON_HD int64_t nearest_source(int64_t dst, int64_t in, int64_t out) { return dst * in / out; }

// The two source taps of one output coordinate and their weights.
struct LinearTaps {
  int64_t i0, i1;
  float w0, w1;
};

// Bilinear, align_corners = false: src = (dst + 0.5) * in / out - 0.5, a
// negative src clamped to 0; the upper tap stops at the last element.
RECON_HD LinearTaps linear_taps(int64_t dst, int64_t in, int64_t out) {
  const float scale = (float)in / (float)out;
  float src = scale * ((float)dst + 0.5f) - 0.5f;
  if (src < 0.f) src = 0.f;
  LinearTaps t;
  t.i0 = (int64_t)src;
  t.i1 = t.i0 < in - 1 ? t.i0 + 1 : t.i0;
  t.w1 = src - (float)t.i0;
  t.w0 = 1.f - t.w1;
  return t;
}

}  // namespace recon
