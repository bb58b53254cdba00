// CPU SSIM kernels: two separable passes (along rows, then along columns)
// over all planes, OpenMP over (plane, row). The order of every sum (tap 0 to
// 10) is the CUDA kernels' order, so the two backends agree to rounding.
#include "kernels/cpu/ssim.hpp"

#include <array>
#include <vector>

namespace recon::cpu {

namespace {

// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelMin = 1 << 12;

using Taps = std::array<float, kSsimWindow>;

Taps gauss_taps() {
  Taps g;
  for (int k = 0; k < kSsimWindow; ++k) g[k] = ssim_gauss_weight(k);
  return g;
}

// adj[q][d + 5] = the adjoint weight of index q + d onto q (0 where q + d is
// outside [0, n)).
std::vector<Taps> adjoint_taps(const Taps& g, int n) {
  std::vector<Taps> adj(n);
  for (int q = 0; q < n; ++q)
    for (int d = -kSsimRadius; d <= kSsimRadius; ++d) {
      const int j = q + d;
      adj[q][d + kSsimRadius] = (j >= 0 && j < n) ? ssim_adjoint_tap(g.data(), j, q, n) : 0.f;
    }
  return adj;
}

}  // namespace

void ssim_forward(const SsimParams& p, const float* x, const float* y, float* map, float* partials) {
  const int h = p.h, w = p.w;
  const int64_t plane = (int64_t)h * w, numel = p.planes * plane, rows = p.planes * h;
  const Taps g = gauss_taps();
  // Row pass: the five horizontal window sums of every row, (5, planes, h, w).
  std::vector<float> hs(5 * (size_t)numel);
#pragma omp parallel for schedule(static) if (numel * kSsimWindow > kParallelMin)
  for (int64_t pr = 0; pr < rows; ++pr) {
    const float* xr = x + pr * w;
    const float* yr = y + pr * w;
    for (int c = 0; c < w; ++c) {
      float s[5] = {0.f, 0.f, 0.f, 0.f, 0.f};
      for (int k = 0; k < kSsimWindow; ++k) {
        const int cc = (int)reflect_index(c + k - kSsimRadius, w);
        const float a = xr[cc], b = yr[cc];
        s[0] += g[k] * a;
        s[1] += g[k] * b;
        s[2] += g[k] * (a * a);
        s[3] += g[k] * (b * b);
        s[4] += g[k] * (a * b);
      }
      for (int q = 0; q < 5; ++q) hs[q * numel + pr * w + c] = s[q];
    }
  }
  // Column pass: the window means, then SSIM and its partials per pixel.
#pragma omp parallel for schedule(static) if (numel * kSsimWindow > kParallelMin)
  for (int64_t pr = 0; pr < rows; ++pr) {
    const int64_t pl = pr / h;
    const int r = (int)(pr % h);
    for (int c = 0; c < w; ++c) {
      float s[5] = {0.f, 0.f, 0.f, 0.f, 0.f};
      for (int k = 0; k < kSsimWindow; ++k) {
        const int64_t src = pl * plane + reflect_index(r + k - kSsimRadius, h) * w + c;
        for (int q = 0; q < 5; ++q) s[q] += g[k] * hs[q * numel + src];
      }
      const int64_t i = pr * w + c;
      float d[kSsimPartials];
      const float ssim = ssim_pixel(SsimStats{s[0], s[1], s[2], s[3], s[4]}, partials ? d : nullptr);
      if (map) map[i] = ssim;
      if (partials)
        for (int q = 0; q < kSsimPartials; ++q) partials[q * numel + i] = d[q];
    }
  }
}

void ssim_loss_from_map(const SsimParams& p, const float* map, float* out) {
  const int64_t plane = (int64_t)p.h * p.w;
  std::vector<double> plane_sums(p.planes);
#pragma omp parallel for schedule(static) if (p.planes * plane > kParallelMin)
  for (int64_t pl = 0; pl < p.planes; ++pl) {
    double s = 0.0;
    for (int64_t i = 0; i < plane; ++i) s += map[pl * plane + i];
    plane_sums[pl] = s;
  }
  double total = 0.0;
  for (double s : plane_sums) total += s;
  out[0] = (float)(1.0 - total / (double)(p.planes * plane));
}

void ssim_backward(const SsimParams& p, const float* x, const float* y, const float* partials, const float* g_map,
                   const float* g_scalar, float g_scale, float* dx, float* dy) {
  const int h = p.h, w = p.w;
  const int64_t plane = (int64_t)h * w, numel = p.planes * plane, rows = p.planes * h;
  const Taps g = gauss_taps();
  const std::vector<Taps> adj_w = adjoint_taps(g, w), adj_h = adjoint_taps(g, h);
  // Row pass: the adjoint along rows of the four products G dS/dstat, (4, planes, h, w).
  std::vector<float> hs(kSsimPartials * (size_t)numel);
#pragma omp parallel for schedule(static) if (numel * kSsimWindow > kParallelMin)
  for (int64_t pr = 0; pr < rows; ++pr) {
    for (int c = 0; c < w; ++c) {
      float s[kSsimPartials] = {0.f, 0.f, 0.f, 0.f};
      for (int d = -kSsimRadius; d <= kSsimRadius; ++d) {
        const int j = c + d;
        if (j < 0 || j >= w) continue;
        const int64_t i = pr * w + j;
        const float gi = ssim_upstream(g_map, g_scalar, g_scale, i);
        const float t = adj_w[c][d + kSsimRadius];
        for (int q = 0; q < kSsimPartials; ++q) s[q] += t * (gi * partials[q * numel + i]);
      }
      for (int q = 0; q < kSsimPartials; ++q) hs[q * numel + pr * w + c] = s[q];
    }
  }
  // Column pass, then the input gradients.
#pragma omp parallel for schedule(static) if (numel * kSsimWindow > kParallelMin)
  for (int64_t pr = 0; pr < rows; ++pr) {
    const int64_t pl = pr / h;
    const int r = (int)(pr % h);
    for (int c = 0; c < w; ++c) {
      float s[kSsimPartials] = {0.f, 0.f, 0.f, 0.f};
      for (int d = -kSsimRadius; d <= kSsimRadius; ++d) {
        const int j = r + d;
        if (j < 0 || j >= h) continue;
        const float t = adj_h[r][d + kSsimRadius];
        const int64_t src = pl * plane + (int64_t)j * w + c;
        for (int q = 0; q < kSsimPartials; ++q) s[q] += t * hs[q * numel + src];
      }
      const int64_t i = pr * w + c;
      if (dx) dx[i] = ssim_input_grad(s[0], s[2], s[3], x[i], y[i]);
      if (dy) dy[i] = ssim_input_grad(s[1], s[2], s[3], y[i], x[i]);
    }
  }
}

}  // namespace recon::cpu
