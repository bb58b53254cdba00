// CUDA resampling kernels. Forward: one thread per output. Backward: one
// thread per input pixel gathering from the outputs that use it, in the CPU's
// row-major output order: deterministic, no atomics.
#include "kernels/cuda/launch.cuh"

#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/resample.hpp"
#include "runtime/cuda_context.hpp"

namespace recon::cuda {

using detail::runtime_stream;

namespace {


// One thread per output (plane, oh, ow) of y (planes, Ho, Wo), grid-stride.
__global__ void upsample_nearest_forward_kernel(const float* __restrict__ x, ResampleParams p, float* __restrict__ y) {
  const int64_t out_plane = p.out_h * p.out_w, total = p.planes * out_plane;
  for (int64_t i = detail::grid_start(); i < total; i += detail::grid_stride()) {
    const int64_t pl = i / out_plane, r = i % out_plane;
    const int64_t ih = nearest_source(r / p.out_w, p.h, p.out_h), iw = nearest_source(r % p.out_w, p.w, p.out_w);
    y[i] = x[(pl * p.h + ih) * p.w + iw];
  }
}

// One thread per input (plane, ih, iw) of dx (planes, H, W), grid-stride:
// sums g over the block of outputs whose nearest source it is.
__global__ void upsample_nearest_backward_kernel(const float* __restrict__ g, ResampleParams p,
                                                 float* __restrict__ dx) {
  const int64_t in_plane = p.h * p.w, total = p.planes * in_plane;
  for (int64_t i = detail::grid_start(); i < total; i += detail::grid_stride()) {
    const int64_t pl = i / in_plane, r = i % in_plane;
    const float* gp = g + pl * p.out_h * p.out_w;
    int64_t oh0, oh1, ow0, ow1;
    nearest_covering_outputs(r / p.w, p.h, p.out_h, oh0, oh1);
    nearest_covering_outputs(r % p.w, p.w, p.out_w, ow0, ow1);
    float s = 0.f;
    for (int64_t oh = oh0; oh < oh1; ++oh)
      for (int64_t ow = ow0; ow < ow1; ++ow) s += gp[oh * p.out_w + ow];
    dx[i] = s;
  }
}

// One thread per output (plane, oh, ow) of y (planes, Ho, Wo), grid-stride:
// the four taps weighted as the CPU writes it.
__global__ void upsample_bilinear_forward_kernel(const float* __restrict__ x, ResampleParams p, float* __restrict__ y) {
  const int64_t out_plane = p.out_h * p.out_w, total = p.planes * out_plane;
  for (int64_t i = detail::grid_start(); i < total; i += detail::grid_stride()) {
    const int64_t pl = i / out_plane, o = i % out_plane;
    const LinearTaps r = linear_taps(o / p.out_w, p.h, p.out_h), c = linear_taps(o % p.out_w, p.w, p.out_w);
    const float* r0 = x + (pl * p.h + r.i0) * p.w;
    const float* r1 = x + (pl * p.h + r.i1) * p.w;
    y[i] = r.w0 * (c.w0 * r0[c.i0] + c.w1 * r0[c.i1]) + r.w1 * (c.w0 * r1[c.i0] + c.w1 * r1[c.i1]);
  }
}

// One thread per input (plane, ih, iw) of dx (planes, H, W), grid-stride:
// visits the candidate outputs (linear_covering_outputs) in row-major order
// and adds tap weight * g for every tap of theirs on (ih, iw), in the CPU's
// tap order (r0 c0, r0 c1, r1 c0, r1 c1).
__global__ void upsample_bilinear_backward_kernel(const float* __restrict__ g, ResampleParams p,
                                                  float* __restrict__ dx) {
  const int64_t in_plane = p.h * p.w, total = p.planes * in_plane;
  for (int64_t i = detail::grid_start(); i < total; i += detail::grid_stride()) {
    const int64_t pl = i / in_plane, ih = (i % in_plane) / p.w, iw = i % p.w;
    const float* gp = g + pl * p.out_h * p.out_w;
    int64_t oh0, oh1, ow0, ow1;
    linear_covering_outputs(ih, p.h, p.out_h, oh0, oh1);
    linear_covering_outputs(iw, p.w, p.out_w, ow0, ow1);
    float s = 0.f;
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      const LinearTaps r = linear_taps(oh, p.h, p.out_h);
      if (r.i0 != ih && r.i1 != ih) continue;
      for (int64_t ow = ow0; ow < ow1; ++ow) {
        const LinearTaps c = linear_taps(ow, p.w, p.out_w);
        if (c.i0 != iw && c.i1 != iw) continue;
        const float gv = gp[oh * p.out_w + ow];
        if (r.i0 == ih && c.i0 == iw) s += r.w0 * c.w0 * gv;
        if (r.i0 == ih && c.i1 == iw) s += r.w0 * c.w1 * gv;
        if (r.i1 == ih && c.i0 == iw) s += r.w1 * c.w0 * gv;
        if (r.i1 == ih && c.i1 == iw) s += r.w1 * c.w1 * gv;
      }
    }
    dx[i] = s;
  }
}

}  // namespace

void upsample_nearest_forward(const ResampleParams& p, const float* x, float* y) {
  const int64_t total = p.planes * p.out_h * p.out_w;
  if (total == 0) return;
  RECON_LAUNCH(upsample_nearest_forward_kernel, detail::grid_for(total), detail::kBlockThreads, 0, runtime_stream())(x, p, y);
  check_launch("upsample_nearest_forward_kernel");
}

void upsample_nearest_backward(const ResampleParams& p, const float* g, float* dx) {
  const int64_t total = p.planes * p.h * p.w;
  if (total == 0) return;
  RECON_LAUNCH(upsample_nearest_backward_kernel, detail::grid_for(total), detail::kBlockThreads, 0, runtime_stream())(g, p, dx);
  check_launch("upsample_nearest_backward_kernel");
}

void upsample_bilinear_forward(const ResampleParams& p, const float* x, float* y) {
  const int64_t total = p.planes * p.out_h * p.out_w;
  if (total == 0) return;
  RECON_LAUNCH(upsample_bilinear_forward_kernel, detail::grid_for(total), detail::kBlockThreads, 0, runtime_stream())(x, p, y);
  check_launch("upsample_bilinear_forward_kernel");
}

void upsample_bilinear_backward(const ResampleParams& p, const float* g, float* dx) {
  const int64_t total = p.planes * p.h * p.w;
  if (total == 0) return;
  RECON_LAUNCH(upsample_bilinear_backward_kernel, detail::grid_for(total), detail::kBlockThreads, 0, runtime_stream())
  (g, p, dx);
  check_launch("upsample_bilinear_backward_kernel");
}

}  // namespace recon::cuda
