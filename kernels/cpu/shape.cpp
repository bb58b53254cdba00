// CPU kernels of the shape ops: OpenMP over rows or planes.
#include "kernels/cpu/shape.hpp"

#include <algorithm>
#include <cstring>

namespace recon::cpu {

// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelMin = 1 << 15;

void copy_rows(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t rows, int64_t cols) {
  if (cols == 0) return;
#pragma omp parallel for schedule(static) if (rows * cols > kParallelMin)
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(dst + r * dst_stride, src + r * src_stride, (size_t)cols * sizeof(float));
}

void strided_scatter(const float* src, const std::vector<int64_t>& shape, const std::vector<int64_t>& strides,
                     float* dst) {
  const int rank = (int)shape.size();
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (n == 0) return;
  if (rank == 0) {
    dst[0] = src[0];
    return;
  }
  // Rows along the last dim; each row's start found from its linear index.
  const int64_t inner = shape[rank - 1], inner_stride = strides[rank - 1];
  const int64_t rows = n / inner;
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t rem = r, off = 0;
    for (int d = rank - 2; d >= 0; --d) {
      off += (rem % shape[d]) * strides[d];
      rem /= shape[d];
    }
    const float* s = src + r * inner;
    float* o = dst + off;
    for (int64_t i = 0; i < inner; ++i) o[i * inner_stride] = s[i];
  }
}

void pad2d_forward(const Pad2dParams& p, PadKind kind, const float* x, float* y) {
  const int64_t in_plane = p.h * p.w, out_plane = p.out_h * p.out_w;
#pragma omp parallel for schedule(static) if (p.planes * out_plane > kParallelMin)
  for (int64_t pl = 0; pl < p.planes; ++pl) {
    const float* xp = x + pl * in_plane;
    float* yp = y + pl * out_plane;
    for (int64_t oh = 0; oh < p.out_h; ++oh) {
      int64_t ih = oh - p.top;
      const bool row_inside = ih >= 0 && ih < p.h;
      if (kind == PadKind::Reflect) ih = reflect_index(ih, p.h);
      for (int64_t ow = 0; ow < p.out_w; ++ow) {
        int64_t iw = ow - p.left;
        float v;
        if (kind == PadKind::Reflect) {
          v = xp[ih * p.w + reflect_index(iw, p.w)];
        } else {
          v = (row_inside && iw >= 0 && iw < p.w) ? xp[ih * p.w + iw] : 0.f;
        }
        yp[oh * p.out_w + ow] = v;
      }
    }
  }
}

void pad2d_backward(const Pad2dParams& p, PadKind kind, const float* g, float* dx) {
  const int64_t in_plane = p.h * p.w, out_plane = p.out_h * p.out_w;
#pragma omp parallel for schedule(static) if (p.planes * out_plane > kParallelMin)
  for (int64_t pl = 0; pl < p.planes; ++pl) {
    const float* gp = g + pl * out_plane;
    float* dp = dx + pl * in_plane;
    if (kind == PadKind::Zero) {
      for (int64_t ih = 0; ih < p.h; ++ih)
        std::memcpy(dp + ih * p.w, gp + (ih + p.top) * p.out_w + p.left, (size_t)p.w * sizeof(float));
      continue;
    }
    std::fill(dp, dp + in_plane, 0.f);
    for (int64_t oh = 0; oh < p.out_h; ++oh) {
      const int64_t ih = reflect_index(oh - p.top, p.h);
      for (int64_t ow = 0; ow < p.out_w; ++ow) dp[ih * p.w + reflect_index(ow - p.left, p.w)] += gp[oh * p.out_w + ow];
    }
  }
}

void rot90(const float* x, float* y, int64_t planes, int64_t h, int64_t w, int k) {
  const int64_t plane = h * w;
  const int64_t out_h = (k % 2) ? w : h, out_w = (k % 2) ? h : w;
#pragma omp parallel for schedule(static) if (planes * plane > kParallelMin)
  for (int64_t pl = 0; pl < planes; ++pl) {
    const float* xp = x + pl * plane;
    float* yp = y + pl * plane;
    for (int64_t i = 0; i < out_h; ++i)
      for (int64_t j = 0; j < out_w; ++j) {
        int64_t si, sj;
        rot90_source(k, i, j, h, w, si, sj);
        yp[i * out_w + j] = xp[si * w + sj];
      }
  }
}

}  // namespace recon::cpu
