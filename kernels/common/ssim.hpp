// SSIM math shared by the CPU and CUDA backends (Wang, Bovik, Sheikh and
// Simoncelli, "Image quality assessment: from error visibility to structural
// similarity", IEEE Trans. Image Processing 13(4), 2004): the 11-tap Gaussian
// window (sigma 1.5), the per-pixel SSIM term from the five local statistics
// and its partial derivatives, and the weights of the adjoint of "reflect-pad
// by 5, then filter" used by the backward pass.
//
// Definition (per channel plane, values in [0, 1], L = 1): with w the 11x11
// Gaussian window applied to the reflect-padded plane (same-size output),
//   mu_x = w*x, mu_y = w*y, e_xx = w*x^2, e_yy = w*y^2, e_xy = w*(xy),
//   s_xx = e_xx - mu_x^2, s_yy = e_yy - mu_y^2, s_xy = e_xy - mu_x mu_y,
//   A1 = 2 mu_x mu_y + C1, A2 = 2 s_xy + C2,
//   B1 = mu_x^2 + mu_y^2 + C1, B2 = s_xx + s_yy + C2,
//   SSIM = A1 A2 / (B1 B2).
//
// Gradient. For an upstream gradient map G, the per-pixel products G dS/dstat
// are filtered by the adjoint window W^T (the same Gaussian, with the reflect
// padding folded back onto the border pixels):
//   dL/dx = W^T(G dS/dmu_x) + 2 x W^T(G dS/de_xx) + y W^T(G dS/de_xy)
//   dL/dy = W^T(G dS/dmu_y) + 2 y W^T(G dS/de_yy) + x W^T(G dS/de_xy)
// dS/de_xx = dS/de_yy = -SSIM / B2, so four partial maps suffice.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common/hd.hpp"
#include "kernels/common/shape.hpp"

namespace recon {

constexpr int kSsimRadius = 5;                    // half-width of the 11x11 window
constexpr int kSsimWindow = 2 * kSsimRadius + 1;  // 11 taps
constexpr double kSsimSigma = 1.5;                // Gaussian sigma, in pixels
constexpr float kSsimC1 = 0.01f * 0.01f;          // (K1 L)^2, K1 = 0.01, L = 1
constexpr float kSsimC2 = 0.03f * 0.03f;          // (K2 L)^2, K2 = 0.03
// The smallest H and W: reflect padding by kSsimRadius needs pad < size (as
// torch.nn.functional.pad(mode="reflect")). Smaller images are rejected.
constexpr int kSsimMinSize = kSsimRadius + 1;
constexpr int kSsimTile = 16;  // CUDA: output tile edge of one block (16 x 16 threads)
constexpr int kSsimPartials = 4;  // dS/dmu_x, dS/dmu_y, dS/de_xx (= dS/de_yy), dS/de_xy

// N * C planes of (H, W), contiguous.
struct SsimParams {
  int64_t planes;
  int h, w;
};

// Tap k in [0, 11) of the normalised 1-D Gaussian (the 2-D window is the
// outer product). Computed in double, so both backends get the same floats.
RECON_HD float ssim_gauss_weight(int k) {
  const double s2 = 2.0 * kSsimSigma * kSsimSigma;
  double total = 0.0;
  for (int i = 0; i < kSsimWindow; ++i) {
    const double d = (double)(i - kSsimRadius);
    total += exp(-d * d / s2);
  }
  const double d = (double)(k - kSsimRadius);
  return (float)(exp(-d * d / s2) / total);
}

// A halo index of a tile: the reflected index of i in [0, n), clamped so that
// rows/columns far outside the image (only read by outputs past the edge of
// the image, which are never written) stay in bounds.
RECON_HD int ssim_halo_index(int i, int n) {
  int r = (int)reflect_index(i, n);
  return r < 0 ? 0 : (r >= n ? n - 1 : r);
}

// The 1-D weight with which a value at index j (of a length-n axis) feeds
// output index q in the adjoint of "reflect-pad by 5, then filter with g":
// the forward reads padded position t = j' + k - 5 for output j', and padded
// t maps to r(t); the adjoint sums g over every padded position t with
// r(t) = q that lies within the window of j: t = q always, t = -q when
// 1 <= q <= 5 (mirror above the first row), t = 2(n-1) - q when
// n-6 <= q <= n-2 (mirror past the last row). Needs |j - q| <= 5, n >= 6.
RECON_HD float ssim_adjoint_tap(const float* g, int j, int q, int n) {
  float wgt = g[q - j + kSsimRadius];
  if (q >= 1 && q <= kSsimRadius) {
    const int k = -q - j + kSsimRadius;
    if (k >= 0 && k < kSsimWindow) wgt += g[k];
  }
  if (q >= n - 1 - kSsimRadius && q <= n - 2) {
    const int k = 2 * (n - 1) - q - j + kSsimRadius;
    if (k >= 0 && k < kSsimWindow) wgt += g[k];
  }
  return wgt;
}

// The five window means around one pixel.
struct SsimStats {
  float mx, my, exx, eyy, exy;
};

// SSIM of one pixel from its window statistics; when `d` is not null, also
// writes the partials d[0] = dS/dmu_x, d[1] = dS/dmu_y, d[2] = dS/de_xx
// (= dS/de_yy), d[3] = dS/de_xy (raw moments held fixed in each).
//   dS/dmu_x = 2 mu_y (A2 - A1) / (B1 B2) + 2 mu_x S (1/B2 - 1/B1)
//   dS/dmu_y = 2 mu_x (A2 - A1) / (B1 B2) + 2 mu_y S (1/B2 - 1/B1)
//   dS/de_xx = -S / B2,  dS/de_xy = 2 A1 / (B1 B2)
RECON_HD float ssim_pixel(const SsimStats& s, float* d) {
  const float sxx = s.exx - s.mx * s.mx;
  const float syy = s.eyy - s.my * s.my;
  const float sxy = s.exy - s.mx * s.my;
  const float a1 = 2.f * s.mx * s.my + kSsimC1;
  const float a2 = 2.f * sxy + kSsimC2;
  const float b1 = s.mx * s.mx + s.my * s.my + kSsimC1;
  const float b2 = sxx + syy + kSsimC2;
  const float inv_b = 1.f / (b1 * b2);
  const float ssim = a1 * a2 * inv_b;
  if (d) {
    const float cross = (a2 - a1) * inv_b;
    const float diff = ssim * (1.f / b2 - 1.f / b1);
    d[0] = 2.f * (s.my * cross + s.mx * diff);
    d[1] = 2.f * (s.mx * cross + s.my * diff);
    d[2] = -ssim / b2;
    d[3] = 2.f * a1 * inv_b;
  }
  return ssim;
}

// The upstream gradient of SSIM at element i: a map (ssim_map) or one value
// on the device (ssim_loss), times `scale` (1, or -1/numel for the loss).
RECON_HD float ssim_upstream(const float* g_map, const float* g_scalar, float scale, int64_t i) {
  return (g_map ? g_map[i] : g_scalar[0]) * scale;
}

// dL/d(self) at one pixel from the adjoint-filtered products: w_mu =
// W^T(G dS/dmu_self), w_sq = W^T(G dS/de_selfself), w_xy = W^T(G dS/de_xy).
RECON_HD float ssim_input_grad(float w_mu, float w_sq, float w_xy, float self, float other) {
  return w_mu + 2.f * self * w_sq + other * w_xy;
}

// Number of CUDA blocks (16 x 16 output tiles) of the forward kernel: the
// size of the per-block partial sums that ssim_loss reduces.
RECON_HD int64_t ssim_tile_count(const SsimParams& p) {
  return p.planes * (int64_t)((p.h + kSsimTile - 1) / kSsimTile) * (int64_t)((p.w + kSsimTile - 1) / kSsimTile);
}

}  // namespace recon
