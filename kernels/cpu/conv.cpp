// CPU convolution: im2col / col2im and layout shuffles as OpenMP loops, the
// products as one matrix product per chunk of images (conv_gemm.hpp: our
// AVX-512 kernel where the CPU has it, OpenBLAS elsewhere; both thread
// themselves). With the AVX-512 kernel the forward and weight-gradient
// products read the images directly and no column matrix is stored; the data
// gradient still writes one per chunk for col2im.
//
// The loops share one thread pool with the GEMMs: the build links OpenBLAS's
// OpenMP variant (CMakeLists.txt), whose GEMMs open ordinary OpenMP regions.
// (With the pthread OpenBLAS an OpenMP loop between two GEMMs left its
// workers spinning while OpenBLAS's threads needed the cores, so these loops
// used to be serial; serial, they were about a fifth of a single-thread
// RotNet step, during which the second thread idled.)
// Every loop writes disjoint outputs, so the results do not depend on the
// thread count (nor do our kernel's products; OpenBLAS's may).
//
// A chunk of cnt images has the column matrix col (c_in kh kw, cnt ho wo):
// column b ho wo + q holds the taps of output position q of image b. The
// GEMM then sees the whole chunk as one wide matrix.
#include "kernels/cpu/conv.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/conv_gemm.hpp"
#include "kernels/cpu/hot.hpp"
#include "kernels/cpu/reduce.hpp"
#include "kernels/cpu/scratch.hpp"

namespace recon::cpu {

namespace {

// Below this many floats moved a parallel region costs more than it saves.
constexpr int64_t kParallelMin = 1 << 15;

// col (c_in kh kw, cnt ho wo) from the images x (cnt, c_in, h, w); zeros where
// a tap reads padding.
RECON_CPU_HOT void im2col(const ConvGeometry& g, const float* x, int64_t cnt, float* col) {
  const int64_t rows = conv_col_rows(g), hw_out = conv_col_cols(g), ld = cnt * hw_out;
  const int64_t plane = (int64_t)g.h * g.w, img = g.c_in * plane;
#pragma omp parallel for collapse(2) schedule(static) if (rows * ld > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < cnt; ++b) {
      const int kj = (int)(r % g.kw), ki = (int)(r / g.kw % g.kh);
      const int64_t c = r / ((int64_t)g.kw * g.kh);
      const float* src = x + b * img + c * plane;
      float* dst = col + r * ld + b * hw_out;
      int oy_lo, oy_hi, ox_lo, ox_hi;  // the outputs whose taps read inside the image
      conv_valid_range(g.h, g.ho, ki, g.stride_h, g.pad_h, g.dil_h, oy_lo, oy_hi);
      conv_valid_range(g.w, g.wo, kj, g.stride_w, g.pad_w, g.dil_w, ox_lo, ox_hi);
      std::fill(dst, dst + (int64_t)oy_lo * g.wo, 0.f);
      const int x_off = conv_in_coord(0, kj, g.stride_w, g.pad_w, g.dil_w);  // input column of output 0
      for (int oy = oy_lo; oy < oy_hi; ++oy) {
        float* d = dst + (int64_t)oy * g.wo;
        const float* s = src + (int64_t)conv_in_coord(oy, ki, g.stride_h, g.pad_h, g.dil_h) * g.w;
        std::fill(d, d + ox_lo, 0.f);
        if (g.stride_w == 1) {
          std::copy(s + ox_lo + x_off, s + ox_hi + x_off, d + ox_lo);
        } else if (g.stride_w == 2) {  // the encoders' downsampling: a constant stride vectorises (shuffles)
          for (int ox = ox_lo; ox < ox_hi; ++ox) d[ox] = s[2 * ox + x_off];
        } else {
          for (int ox = ox_lo; ox < ox_hi; ++ox) d[ox] = s[ox * g.stride_w + x_off];
        }
        std::fill(d + ox_hi, d + g.wo, 0.f);
      }
      std::fill(dst + (int64_t)oy_hi * g.wo, dst + hw_out, 0.f);
    }
  }
}

// dx (cnt, c_in, h, w) = the sum of col (c_in kh kw, cnt ho wo) scattered back
// to the input positions its taps read (padding taps dropped), one input
// plane (image, channel) at a time, tap after tap (each col row is read in
// order). A strided conv scatters with a stride, so the plane is summed in
// a buffer split by phase (row mod stride_h, column mod stride_w), where every
// tap lands in one phase at consecutive places (vector adds), and is then
// interleaved into dx. Each element sums its taps in (ki, kj) order.
RECON_CPU_HOT void col2im(const ConvGeometry& g, const float* col, int64_t cnt, float* dx) {
  const int64_t hw_out = conv_col_cols(g), ld = cnt * hw_out;
  const int64_t plane = (int64_t)g.h * g.w, img = g.c_in * plane;
  const int sh = g.stride_h, sw = g.stride_w;
  const int hp = (g.h + sh - 1) / sh, wp = (g.w + sw - 1) / sw;  // size of one phase
  const bool phased = sh > 1 || sw > 1;
  // floor(a / b) for b > 0
  const auto floor_div = [](int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); };
#pragma omp parallel if (conv_col_rows(g) * ld > kParallelMin)
  {
    std::vector<float> phases(phased ? (size_t)sh * sw * hp * wp : 0);
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < cnt; ++b) {
      for (int64_t c = 0; c < g.c_in; ++c) {
        float* dst = dx + b * img + c * plane;
        float* acc = phased ? phases.data() : dst;  // unstrided: the plane itself
        std::fill(acc, acc + (phased ? phases.size() : (size_t)plane), 0.f);
        for (int ki = 0; ki < g.kh; ++ki) {
          for (int kj = 0; kj < g.kw; ++kj) {
            const float* src = col + ((c * g.kh + ki) * g.kw + kj) * ld + b * hw_out;
            int oy_lo, oy_hi, ox_lo, ox_hi;  // the outputs whose taps read inside the image
            conv_valid_range(g.h, g.ho, ki, sh, g.pad_h, g.dil_h, oy_lo, oy_hi);
            conv_valid_range(g.w, g.wo, kj, sw, g.pad_w, g.dil_w, ox_lo, ox_hi);
            // output (oy, ox) reads input row oy sh + ry, column ox sw + rx: phase
            // (ry mod sh, rx mod sw), place (oy + floor(ry / sh), ox + floor(rx / sw))
            const int ry = conv_in_coord(0, ki, sh, g.pad_h, g.dil_h), rx = conv_in_coord(0, kj, sw, g.pad_w, g.dil_w);
            const int qy = floor_div(ry, sh), qx = floor_div(rx, sw);
            float* base = phased ? acc + ((int64_t)(ry - qy * sh) * sw + (rx - qx * sw)) * hp * wp : acc;
            const int row_len = phased ? wp : g.w;
            for (int oy = oy_lo; oy < oy_hi; ++oy) {
              const float* s = src + (int64_t)oy * g.wo;
              float* d = base + (int64_t)(oy + qy) * row_len + qx;
              for (int ox = ox_lo; ox < ox_hi; ++ox) d[ox] += s[ox];
            }
          }
        }
        if (phased) {
          for (int iy = 0; iy < g.h; ++iy) {
            const float* prow = acc + (int64_t)(iy % sh) * sw * hp * wp + (int64_t)(iy / sh) * wp;
            float* drow = dst + (int64_t)iy * g.w;
            for (int px = 0; px < sw; ++px) {
              const float* p = prow + (int64_t)px * hp * wp;
              for (int t = 0; px + sw * t < g.w; ++t) drow[px + sw * t] = p[t];
            }
          }
        }
      }
    }
  }
}

// dst (c, cnt hw) from src (cnt, c, hw).
RECON_CPU_HOT void batch_to_rows(const float* src, float* dst, int64_t cnt, int64_t c, int64_t hw) {
#pragma omp parallel for collapse(2) schedule(static) if (cnt * c * hw > kParallelMin)
  for (int64_t b = 0; b < cnt; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      std::memcpy(dst + (ch * cnt + b) * hw, src + (b * c + ch) * hw, (size_t)hw * sizeof(float));
}

// dst (cnt, c, hw) from src (c, cnt hw), plus bias (c) when given.
RECON_CPU_HOT void rows_to_batch(const float* src, const float* bias, float* dst, int64_t cnt, int64_t c, int64_t hw) {
#pragma omp parallel for collapse(2) schedule(static) if (cnt * c * hw > kParallelMin)
  for (int64_t b = 0; b < cnt; ++b) {
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* s = src + (ch * cnt + b) * hw;
      float* d = dst + (b * c + ch) * hw;
      const float add = bias ? bias[ch] : 0.f;
      for (int64_t i = 0; i < hw; ++i) d[i] = s[i] + add;
    }
  }
}

// Whether the products pack the im2col matrix straight from the images
// (our AVX-512 kernel) instead of storing it first.
bool use_fused(const ConvGeometry& g, int64_t chunk) { return conv_uses_avx512() && conv_fused_fits(g, chunk); }

}  // namespace

int64_t conv_chunk_images(const ConvGeometry& g) {
  const int64_t per_image = std::max<int64_t>(1, conv_col_rows(g) * conv_col_cols(g));
  return std::clamp<int64_t>(kConvColBudget / per_image, 1, std::max(1, g.n));
}

void conv2d_forward(const ConvGeometry& g, const float* x, const float* weight, const float* bias, float* y) {
  const int64_t rows = conv_col_rows(g), hw_out = conv_col_cols(g);
  const int64_t in_img = (int64_t)g.c_in * g.h * g.w, out_img = g.c_out * hw_out;
  const int64_t nb = conv_chunk_images(g);
  const bool fused = use_fused(g, nb);
  float* col = thread_scratch(ScratchSlot::kConvColumns, fused ? 0 : rows * nb * hw_out);
  float* tmp = thread_scratch(ScratchSlot::kConvProduct, nb > 1 ? g.c_out * nb * hw_out : 0);
  for (int64_t b0 = 0; b0 < g.n; b0 += nb) {
    const int64_t cnt = std::min<int64_t>(nb, g.n - b0), ld = cnt * hw_out;
    float* yb = y + b0 * out_img;
    float* prod = cnt == 1 ? yb : tmp;  // one image: its (c_out, ho wo) output is the product itself
    if (fused) {
      conv_forward_avx512(g, weight, x + b0 * in_img, cnt, prod);
    } else {
      im2col(g, x + b0 * in_img, cnt, col);
      conv_gemm(false, false, g.c_out, ld, rows, weight, rows, col, ld, 0.f, prod, ld);
    }
    if (cnt == 1) {
      if (bias) add_channel_bias(yb, bias, 1, g.c_out, hw_out);
    } else {
      rows_to_batch(tmp, bias, yb, cnt, g.c_out, hw_out);
    }
  }
}

void conv2d_backward_data(const ConvGeometry& g, const float* dy, const float* weight, float* dx) {
  const int64_t rows = conv_col_rows(g), hw_out = conv_col_cols(g);
  const int64_t in_img = (int64_t)g.c_in * g.h * g.w, out_img = g.c_out * hw_out;
  const int64_t nb = conv_chunk_images(g);
  const bool fused = use_fused(g, nb);  // the product reads dy in its own layout
  float* col = thread_scratch(ScratchSlot::kConvColumns, rows * nb * hw_out);
  float* tmp = thread_scratch(ScratchSlot::kConvProduct, nb > 1 && !fused ? g.c_out * nb * hw_out : 0);
  for (int64_t b0 = 0; b0 < g.n; b0 += nb) {
    const int64_t cnt = std::min<int64_t>(nb, g.n - b0), ld = cnt * hw_out;
    const float* dyc = dy + b0 * out_img;
    // dcol (rows, ld) = weight^T (rows, c_out) dy (c_out, ld)
    if (fused) {
      conv_data_grad_avx512(g, weight, dyc, cnt, col);
    } else {
      if (cnt > 1) {
        batch_to_rows(dyc, tmp, cnt, g.c_out, hw_out);
        dyc = tmp;
      }
      conv_gemm(true, false, rows, ld, g.c_out, weight, rows, dyc, ld, 0.f, col, ld);
    }
    col2im(g, col, cnt, dx + b0 * in_img);
  }
}

void conv2d_backward_weight(const ConvGeometry& g, const float* x, const float* dy, float* dweight) {
  const int64_t rows = conv_col_rows(g), hw_out = conv_col_cols(g);
  const int64_t in_img = (int64_t)g.c_in * g.h * g.w, out_img = g.c_out * hw_out;
  if (g.n == 0) {
    std::fill(dweight, dweight + g.c_out * rows, 0.f);
    return;
  }
  const int64_t nb = conv_chunk_images(g);
  // The fused packer runs 48 taps per panel: with fewer (a 1- to 5-channel
  // input) the stored col^T goes through the kernel's transposed route instead.
  const bool fused = use_fused(g, nb) && rows >= 48;
  float* col = thread_scratch(ScratchSlot::kConvColumns, fused ? 0 : rows * nb * hw_out);
  float* tmp = thread_scratch(ScratchSlot::kConvProduct, nb > 1 && !fused ? g.c_out * nb * hw_out : 0);
  for (int64_t b0 = 0; b0 < g.n; b0 += nb) {
    const int64_t cnt = std::min<int64_t>(nb, g.n - b0), ld = cnt * hw_out;
    const float* dyc = dy + b0 * out_img;
    // dweight (c_out, rows) (+)= dy (c_out, ld) col^T (ld, rows); chunks after the first accumulate
    const float beta = b0 == 0 ? 0.f : 1.f;
    if (fused) {  // reads dy in its own layout
      conv_weight_grad_avx512(g, dyc, x + b0 * in_img, cnt, beta, dweight);
    } else {
      if (cnt > 1) {
        batch_to_rows(dyc, tmp, cnt, g.c_out, hw_out);
        dyc = tmp;
      }
      im2col(g, x + b0 * in_img, cnt, col);
      conv_gemm(false, true, g.c_out, rows, ld, dyc, ld, col, ld, beta, dweight, rows);
    }
  }
}

RECON_CPU_HOT void conv2d_backward_bias(const float* dy, float* dbias, int64_t n, int64_t c, int64_t hw) {
  // Each channel summed in double over the batch and the plane, in the same order on any thread count.
#pragma omp parallel for schedule(static) if (n * c * hw > kParallelMin)
  for (int64_t ch = 0; ch < c; ++ch) {
    Sum8 s;
    for (int64_t b = 0; b < n; ++b) {
      const float* p = dy + (b * c + ch) * hw;
      s.add(hw, [p](int64_t i) { return (double)p[i]; });
    }
    dbias[ch] = (float)s.total();
  }
}

RECON_CPU_HOT void add_channel_bias(float* y, const float* bias, int64_t n, int64_t c, int64_t hw) {
#pragma omp parallel for collapse(2) schedule(static) if (n * c * hw > kParallelMin)
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t ch = 0; ch < c; ++ch) {
      float* p = y + (b * c + ch) * hw;
      const float v = bias[ch];
      for (int64_t i = 0; i < hw; ++i) p[i] += v;
    }
  }
}

}  // namespace recon::cpu
