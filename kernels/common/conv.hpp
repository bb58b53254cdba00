// Convolution geometry and index math shared by the CPU and CUDA backends:
// output sizes, the input coordinate a kernel tap reads, and the im2col
// mapping (column-matrix element -> input element). conv_transpose2d is
// described by the geometry of the conv2d whose data gradient it is.
#pragma once
#include <cstdint>

#include "kernels/common/hd.hpp"

namespace recon {

// One 2-D convolution in conv2d terms: input (n, c_in, h, w), weight
// (c_out, c_in, kh, kw), output (n, c_out, ho, wo). For conv_transpose2d the
// roles swap: its input is this conv's output and its output this conv's
// input (weight (Cin_t, Cout_t, kh, kw) = (c_out, c_in, kh, kw) here).
// ho and wo are stored, not recomputed: a transposed conv with
// output_padding >= stride (allowed when < dilation) has no unique inverse.
struct ConvGeometry {
  int n = 0;
  int c_in = 0, h = 0, w = 0;
  int c_out = 0, ho = 0, wo = 0;
  int kh = 0, kw = 0;
  int stride_h = 1, stride_w = 1;
  int pad_h = 0, pad_w = 0;
  int dil_h = 1, dil_w = 1;
};

// Extent of a dilated kernel: d (k - 1) + 1.
RECON_HD int conv_kernel_extent(int k, int dil) { return dil * (k - 1) + 1; }

// conv2d output size: (in + 2p - d (k - 1) - 1) / s + 1. The caller ensures
// the dilated kernel fits in the padded input (the numerator is >= 0).
RECON_HD int conv_out_size(int in, int k, int stride, int pad, int dil) {
  return (in + 2 * pad - conv_kernel_extent(k, dil)) / stride + 1;
}

// conv_transpose2d output size: (in - 1) s - 2p + d (k - 1) + output_padding + 1.
RECON_HD int conv_transpose_out_size(int in, int k, int stride, int pad, int out_pad, int dil) {
  return (in - 1) * stride - 2 * pad + conv_kernel_extent(k, dil) + out_pad;
}

// Completes a conv2d geometry whose input, kernel and window are set: ho, wo.
RECON_HD void conv2d_set_output(ConvGeometry& g) {
  g.ho = conv_out_size(g.h, g.kh, g.stride_h, g.pad_h, g.dil_h);
  g.wo = conv_out_size(g.w, g.kw, g.stride_w, g.pad_w, g.dil_w);
}

// Completes the conv2d-view geometry of a conv_transpose2d whose input is set
// as (n, c_out, ho, wo), its weight (Cin_t, Cout_t) as (c_out, c_in) and its
// window: h, w = the transposed output size.
RECON_HD void conv_transpose2d_set_output(ConvGeometry& g, int out_pad_h, int out_pad_w) {
  g.h = conv_transpose_out_size(g.ho, g.kh, g.stride_h, g.pad_h, out_pad_h, g.dil_h);
  g.w = conv_transpose_out_size(g.wo, g.kw, g.stride_w, g.pad_w, out_pad_w, g.dil_w);
}

// Input coordinate read by output position `o` through kernel tap `k`
// (may fall in the padding: < 0 or >= the input size).
RECON_HD int conv_in_coord(int o, int k, int stride, int pad, int dil) { return o * stride - pad + k * dil; }

// The output positions [lo, hi) whose tap `k` reads inside an input of size
// `in` (the others read padding): o s - p + k d in [0, in).
RECON_HD void conv_valid_range(int in, int out, int k, int stride, int pad, int dil, int& lo, int& hi) {
  const int off = k * dil - pad;  // input coordinate read by output 0
  lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
  hi = in - 1 - off < 0 ? 0 : (in - 1 - off) / stride + 1;
  hi = hi < out ? hi : out;
  lo = lo < hi ? lo : hi;
}

// The output position o whose tap `k` reads input coordinate `i`
// (o s - p + k d = i), if there is one in [0, out): the data gradient's gather.
RECON_HD bool conv_out_coord(int i, int k, int stride, int pad, int dil, int out, int& o) {
  const int num = i + pad - k * dil;
  if (num < 0 || num % stride != 0) return false;
  o = num / stride;
  return o < out;
}

// Input coordinates split by phase (coordinate mod stride): the data gradient
// of a strided conv as `stride` dense problems. Phase `phase` holds the
// coordinates phase, phase + s, ... below `in`: ceil((in - phase) / s) of them.
RECON_HD int conv_phase_size(int in, int phase, int stride) {
  return phase < in ? (in - phase + stride - 1) / stride : 0;
}

// The taps of a kernel of size k that reach input coordinates of phase
// `phase` from some output position, (phase + p - tap d) divisible by s:
// first, first + step, ... (count of them; count 0 when none). step is
// s / gcd(s, d): the taps solving tap d = phase + p (mod s) are that far apart.
RECON_HD void conv_phase_taps(int phase, int k, int stride, int pad, int dil, int& first, int& step, int& count) {
  first = 0;
  while (first < k && (phase + pad - first * dil) % stride != 0) ++first;
  int a = stride, b = dil;  // gcd(stride, dil)
  while (b != 0) {
    const int t = a % b;
    a = b;
    b = t;
  }
  step = stride / a;
  count = first < k ? (k - 1 - first) / step + 1 : 0;
}

// Rows of the column matrix: one per (input channel, tap), c_in kh kw.
RECON_HD int64_t conv_col_rows(const ConvGeometry& g) { return (int64_t)g.c_in * g.kh * g.kw; }
// Columns per image: one per output position, ho wo.
RECON_HD int64_t conv_col_cols(const ConvGeometry& g) { return (int64_t)g.ho * g.wo; }

// The im2col mapping of one image: row r = (c kh + ki) kw + kj, column
// q = oy wo + ox. Returns the offset of the input element (c, y, x) in its
// (c_in, h, w) image, or -1 where the tap reads zero padding.
RECON_HD int64_t im2col_source(const ConvGeometry& g, int64_t r, int64_t q) {
  const int kj = (int)(r % g.kw);
  const int ki = (int)(r / g.kw % g.kh);
  const int c = (int)(r / ((int64_t)g.kw * g.kh));
  const int ox = (int)(q % g.wo);
  const int oy = (int)(q / g.wo);
  const int y = conv_in_coord(oy, ki, g.stride_h, g.pad_h, g.dil_h);
  const int x = conv_in_coord(ox, kj, g.stride_w, g.pad_w, g.dil_w);
  if (y < 0 || y >= g.h || x < 0 || x >= g.w) return -1;
  return ((int64_t)c * g.h + y) * g.w + x;
}

}  // namespace recon
