// CPU pooling kernels: OpenMP over planes. Backward passes scatter within
// their own plane only, so planes run in parallel without races.
#include "kernels/cpu/pool.hpp"

#include <algorithm>

namespace recon::cpu {

// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelMin = 1 << 15;

void max_pool2d_forward(const Pool2dParams& p, const float* x, float* y) {
  const int64_t in_plane = p.h * p.w, out_plane = p.out_h * p.out_w;
#pragma omp parallel for schedule(static) if (p.planes * out_plane * p.kernel_h * p.kernel_w > kParallelMin)
  for (int64_t pl = 0; pl < p.planes; ++pl) {
    const float* xp = x + pl * in_plane;
    float* yp = y + pl * out_plane;
    for (int64_t oh = 0; oh < p.out_h; ++oh)
      for (int64_t ow = 0; ow < p.out_w; ++ow) yp[oh * p.out_w + ow] = xp[max_pool_argmax(xp, p, oh, ow)];
  }
}

void max_pool2d_backward(const Pool2dParams& p, const float* x, const float* g, float* dx) {
  const int64_t in_plane = p.h * p.w, out_plane = p.out_h * p.out_w;
#pragma omp parallel for schedule(static) if (p.planes * out_plane * p.kernel_h * p.kernel_w > kParallelMin)
  for (int64_t pl = 0; pl < p.planes; ++pl) {
    const float* xp = x + pl * in_plane;
    const float* gp = g + pl * out_plane;
    float* dp = dx + pl * in_plane;
    std::fill(dp, dp + in_plane, 0.f);
    for (int64_t oh = 0; oh < p.out_h; ++oh)
      for (int64_t ow = 0; ow < p.out_w; ++ow) dp[max_pool_argmax(xp, p, oh, ow)] += gp[oh * p.out_w + ow];
  }
}

void avg_pool2d_forward(const Pool2dParams& p, const float* x, float* y) {
  const int64_t in_plane = p.h * p.w, out_plane = p.out_h * p.out_w;
  const float inv = 1.f / avg_pool_divisor(p);
#pragma omp parallel for schedule(static) if (p.planes * out_plane * p.kernel_h * p.kernel_w > kParallelMin)
  for (int64_t pl = 0; pl < p.planes; ++pl) {
    const float* xp = x + pl * in_plane;
    float* yp = y + pl * out_plane;
    for (int64_t oh = 0; oh < p.out_h; ++oh)
      for (int64_t ow = 0; ow < p.out_w; ++ow) {
        PoolWindow win = pool_window(p, oh, ow);
        float s = 0.f;
        for (int64_t h = win.h0; h < win.h1; ++h)
          for (int64_t w = win.w0; w < win.w1; ++w) s += xp[h * p.w + w];
        yp[oh * p.out_w + ow] = s * inv;
      }
  }
}

void avg_pool2d_backward(const Pool2dParams& p, const float* g, float* dx) {
  const int64_t in_plane = p.h * p.w, out_plane = p.out_h * p.out_w;
  const float inv = 1.f / avg_pool_divisor(p);
#pragma omp parallel for schedule(static) if (p.planes * out_plane * p.kernel_h * p.kernel_w > kParallelMin)
  for (int64_t pl = 0; pl < p.planes; ++pl) {
    const float* gp = g + pl * out_plane;
    float* dp = dx + pl * in_plane;
    std::fill(dp, dp + in_plane, 0.f);
    for (int64_t oh = 0; oh < p.out_h; ++oh)
      for (int64_t ow = 0; ow < p.out_w; ++ow) {
        PoolWindow win = pool_window(p, oh, ow);
        const float gv = gp[oh * p.out_w + ow] * inv;
        for (int64_t h = win.h0; h < win.h1; ++h)
          for (int64_t w = win.w0; w < win.w1; ++w) dp[h * p.w + w] += gv;
      }
  }
}

void global_avg_pool_forward(const float* x, float* y, int64_t planes, int64_t hw) {
#pragma omp parallel for schedule(static) if (planes * hw > kParallelMin)
  for (int64_t pl = 0; pl < planes; ++pl) {
    const float* xp = x + pl * hw;
    double s = 0.0;
    for (int64_t i = 0; i < hw; ++i) s += xp[i];
    y[pl] = (float)(s / (double)hw);
  }
}

void global_avg_pool_backward(const float* g, float* dx, int64_t planes, int64_t hw) {
  const float inv = 1.f / (float)hw;
#pragma omp parallel for schedule(static) if (planes * hw > kParallelMin)
  for (int64_t pl = 0; pl < planes; ++pl) {
    const float gv = g[pl] * inv;
    std::fill(dx + pl * hw, dx + (pl + 1) * hw, gv);
  }
}

}  // namespace recon::cpu
