// CPU resampling kernels: OpenMP over planes; backward passes scatter within
// their own plane, so planes run in parallel without races.
#include "kernels/cpu/resample.hpp"

#include <algorithm>
#include <vector>

namespace recon::cpu {

// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelMin = 1 << 15;

void upsample_nearest_forward(const ResampleParams& p, const float* x, float* y) {
  const int64_t in_plane = p.h * p.w, out_plane = p.out_h * p.out_w;
#pragma omp parallel for schedule(static) if (p.planes * out_plane > kParallelMin)
  for (int64_t pl = 0; pl < p.planes; ++pl) {
    const float* xp = x + pl * in_plane;
    float* yp = y + pl * out_plane;
    for (int64_t oh = 0; oh < p.out_h; ++oh) {
      const float* xr = xp + nearest_source(oh, p.h, p.out_h) * p.w;
      for (int64_t ow = 0; ow < p.out_w; ++ow) yp[oh * p.out_w + ow] = xr[nearest_source(ow, p.w, p.out_w)];
    }
  }
}

void upsample_nearest_backward(const ResampleParams& p, const float* g, float* dx) {
  const int64_t in_plane = p.h * p.w, out_plane = p.out_h * p.out_w;
#pragma omp parallel for schedule(static) if (p.planes * out_plane > kParallelMin)
  for (int64_t pl = 0; pl < p.planes; ++pl) {
    const float* gp = g + pl * out_plane;
    float* dp = dx + pl * in_plane;
    std::fill(dp, dp + in_plane, 0.f);
    for (int64_t oh = 0; oh < p.out_h; ++oh) {
      float* dr = dp + nearest_source(oh, p.h, p.out_h) * p.w;
      for (int64_t ow = 0; ow < p.out_w; ++ow) dr[nearest_source(ow, p.w, p.out_w)] += gp[oh * p.out_w + ow];
    }
  }
}

// The column taps are the same for every row: computed once per call.
static std::vector<LinearTaps> column_taps(const ResampleParams& p) {
  std::vector<LinearTaps> t((size_t)p.out_w);
  for (int64_t ow = 0; ow < p.out_w; ++ow) t[(size_t)ow] = linear_taps(ow, p.w, p.out_w);
  return t;
}

void upsample_bilinear_forward(const ResampleParams& p, const float* x, float* y) {
  const int64_t in_plane = p.h * p.w, out_plane = p.out_h * p.out_w;
  const std::vector<LinearTaps> cols = column_taps(p);
#pragma omp parallel for schedule(static) if (p.planes * out_plane > kParallelMin)
  for (int64_t pl = 0; pl < p.planes; ++pl) {
    const float* xp = x + pl * in_plane;
    float* yp = y + pl * out_plane;
    for (int64_t oh = 0; oh < p.out_h; ++oh) {
      const LinearTaps r = linear_taps(oh, p.h, p.out_h);
      const float* r0 = xp + r.i0 * p.w;
      const float* r1 = xp + r.i1 * p.w;
      for (int64_t ow = 0; ow < p.out_w; ++ow) {
        const LinearTaps& c = cols[(size_t)ow];
        yp[oh * p.out_w + ow] = r.w0 * (c.w0 * r0[c.i0] + c.w1 * r0[c.i1]) + r.w1 * (c.w0 * r1[c.i0] + c.w1 * r1[c.i1]);
      }
    }
  }
}

void upsample_bilinear_backward(const ResampleParams& p, const float* g, float* dx) {
  const int64_t in_plane = p.h * p.w, out_plane = p.out_h * p.out_w;
  const std::vector<LinearTaps> cols = column_taps(p);
#pragma omp parallel for schedule(static) if (p.planes * out_plane > kParallelMin)
  for (int64_t pl = 0; pl < p.planes; ++pl) {
    const float* gp = g + pl * out_plane;
    float* dp = dx + pl * in_plane;
    std::fill(dp, dp + in_plane, 0.f);
    for (int64_t oh = 0; oh < p.out_h; ++oh) {
      const LinearTaps r = linear_taps(oh, p.h, p.out_h);
      float* r0 = dp + r.i0 * p.w;
      float* r1 = dp + r.i1 * p.w;
      for (int64_t ow = 0; ow < p.out_w; ++ow) {
        const LinearTaps& c = cols[(size_t)ow];
        const float gv = gp[oh * p.out_w + ow];
        r0[c.i0] += r.w0 * c.w0 * gv;
        r0[c.i1] += r.w0 * c.w1 * gv;
        r1[c.i0] += r.w1 * c.w0 * gv;
        r1[c.i1] += r.w1 * c.w1 * gv;
      }
    }
  }
}

}  // namespace recon::cpu
