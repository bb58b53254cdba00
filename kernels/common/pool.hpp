// Pooling index math shared by the CPU and CUDA backends: output sizes, the
// parameters of a 2-D pooling window, and the clipped window of one output.
#pragma once
#include <cstdint>

#include "kernels/common/hd.hpp"

namespace recon {

// Output length of a pooling window sliding over `in` (floor mode, as PyTorch
// with ceil_mode = false).
RECON_HD int64_t pool_out_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad) {
  return (in + 2 * pad - kernel) / stride + 1;
}

// One 2-D pooling over `planes` = N * C planes of (H, W) into (Ho, Wo).
struct Pool2dParams {
  int64_t planes, h, w, out_h, out_w;
  int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
};

// The window of output (oh, ow) clipped to the input: rows [h0, h1), cols [w0, w1).
struct PoolWindow {
  int64_t h0, h1, w0, w1;
};

RECON_HD PoolWindow pool_window(const Pool2dParams& p, int64_t oh, int64_t ow) {
  PoolWindow win;
  int64_t hs = oh * p.stride_h - p.pad_h, ws = ow * p.stride_w - p.pad_w;
  win.h0 = hs < 0 ? 0 : hs;
  win.w0 = ws < 0 ? 0 : ws;
  win.h1 = hs + p.kernel_h < p.h ? hs + p.kernel_h : p.h;
  win.w1 = ws + p.kernel_w < p.w ? ws + p.kernel_w : p.w;
  return win;
}

// The outputs [lo, hi) along one dim whose window (before clipping) covers
// input index i: the windows a backward gather visits for input i.
RECON_HD void pool_covering_outputs(int64_t i, int64_t kernel, int64_t stride, int64_t pad, int64_t out,
                                    int64_t& lo, int64_t& hi) {
  const int64_t first_start = i + pad - kernel + 1;  // the lowest window start (padded coords) reaching i
  lo = first_start <= 0 ? 0 : (first_start + stride - 1) / stride;
  hi = (i + pad) / stride + 1;
  if (hi > out) hi = out;
}

// Average pooling divides by the full window, padding included (PyTorch's
// count_include_pad = true; in floor mode a window never runs past the padding).
RECON_HD float avg_pool_divisor(const Pool2dParams& p) { return (float)(p.kernel_h * p.kernel_w); }

// The input offset (within one plane) of a window's maximum: the first maximum
// in row-major order, a NaN wins (it propagates, as in PyTorch); padding is
// -inf and never wins over a valid element (the window always holds one).
RECON_HD int64_t max_pool_argmax(const float* plane, const Pool2dParams& p, int64_t oh, int64_t ow) {
  PoolWindow win = pool_window(p, oh, ow);
  int64_t best = win.h0 * p.w + win.w0;
  float best_v = plane[best];
  for (int64_t h = win.h0; h < win.h1; ++h)
    for (int64_t w = win.w0; w < win.w1; ++w) {
      float v = plane[h * p.w + w];
      if (v > best_v || (v != v && best_v == best_v)) {
        best_v = v;
        best = h * p.w + w;
      }
    }
  return best;
}

}  // namespace recon
