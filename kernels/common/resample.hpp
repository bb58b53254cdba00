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

// The outputs [lo, hi) whose nearest source is input i:
// floor(o * in / out) == i  <=>  ceil(i * out / in) <= o < ceil((i + 1) * out / in).
RECON_HD void nearest_covering_outputs(int64_t i, int64_t in, int64_t out, int64_t& lo, int64_t& hi) {
  lo = (i * out + in - 1) / in;
  hi = ((i + 1) * out + in - 1) / in;
}

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

// A range [lo, hi) of outputs holding every output with a tap on input i
// (a superset: a gather checks each candidate with linear_taps). Exactly,
// i0 in {i - 1, i}, i.e. (2i - 1) out - in <= 2 in o < (2i + 3) out - in; the
// range is widened by 1 + out / in outputs on each side for the float
// rounding of linear_taps' source position.
RECON_HD void linear_covering_outputs(int64_t i, int64_t in, int64_t out, int64_t& lo, int64_t& hi) {
  const int64_t margin = 1 + out / in;
  lo = ((2 * i - 1) * out - in) / (2 * in) - margin;
  hi = ((2 * i + 3) * out - in) / (2 * in) + 1 + margin;
  if (lo < 0) lo = 0;
  if (hi > out) hi = out;
}

}  // namespace recon
