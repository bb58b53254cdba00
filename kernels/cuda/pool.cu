// CUDA pooling kernels. Forward: one thread per output. Backward: one thread
// per input element, gathering from the output windows that cover it (in the
// CPU's row-major window order), so no atomics and the sums are deterministic.
// Global average pooling: one warp per plane, lanes summing in double and a
// fixed shuffle tree combining them.
#include "kernels/cuda/launch.cuh"

#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/pool.hpp"
#include "runtime/cuda_context.hpp"

namespace recon::cuda {

using detail::runtime_stream;

namespace {


// One thread per output (plane, oh, ow) of y (planes, Ho, Wo), grid-stride:
// the window's first maximum (NaN wins), as the CPU.
__global__ void max_pool2d_forward_kernel(const float* __restrict__ x, Pool2dParams p, float* __restrict__ y) {
  const int64_t out_plane = p.out_h * p.out_w, total = p.planes * out_plane;
  for (int64_t i = detail::grid_start(); i < total; i += detail::grid_stride()) {
    const int64_t pl = i / out_plane, r = i % out_plane;
    const float* xp = x + pl * p.h * p.w;
    y[i] = xp[max_pool_argmax(xp, p, r / p.out_w, r % p.out_w)];
  }
}

// One thread per input (plane, ih, iw) of dx (planes, H, W), grid-stride: adds
// g of every covering window (row-major order) whose argmax is this element.
__global__ void max_pool2d_backward_kernel(const float* __restrict__ x, const float* __restrict__ g, Pool2dParams p,
                                           float* __restrict__ dx) {
  const int64_t in_plane = p.h * p.w, total = p.planes * in_plane;
  for (int64_t i = detail::grid_start(); i < total; i += detail::grid_stride()) {
    const int64_t pl = i / in_plane, r = i % in_plane;
    const float* xp = x + pl * in_plane;
    const float* gp = g + pl * p.out_h * p.out_w;
    int64_t oh0, oh1, ow0, ow1;
    pool_covering_outputs(r / p.w, p.kernel_h, p.stride_h, p.pad_h, p.out_h, oh0, oh1);
    pool_covering_outputs(r % p.w, p.kernel_w, p.stride_w, p.pad_w, p.out_w, ow0, ow1);
    float s = 0.f;
    for (int64_t oh = oh0; oh < oh1; ++oh)
      for (int64_t ow = ow0; ow < ow1; ++ow)
        if (max_pool_argmax(xp, p, oh, ow) == r) s += gp[oh * p.out_w + ow];
    dx[i] = s;
  }
}

// One thread per output (plane, oh, ow) of y (planes, Ho, Wo), grid-stride:
// the clipped window's sum over the full window size.
__global__ void avg_pool2d_forward_kernel(const float* __restrict__ x, Pool2dParams p, float* __restrict__ y) {
  const int64_t out_plane = p.out_h * p.out_w, total = p.planes * out_plane;
  const float inv = 1.f / avg_pool_divisor(p);
  for (int64_t i = detail::grid_start(); i < total; i += detail::grid_stride()) {
    const int64_t pl = i / out_plane, r = i % out_plane;
    const float* xp = x + pl * p.h * p.w;
    const PoolWindow win = pool_window(p, r / p.out_w, r % p.out_w);
    float s = 0.f;
    for (int64_t h = win.h0; h < win.h1; ++h)
      for (int64_t w = win.w0; w < win.w1; ++w) s += xp[h * p.w + w];
    y[i] = s * inv;
  }
}

// One thread per input (plane, ih, iw) of dx (planes, H, W), grid-stride:
// sums g / (kh * kw) over the covering windows in row-major order.
__global__ void avg_pool2d_backward_kernel(const float* __restrict__ g, Pool2dParams p, float* __restrict__ dx) {
  const int64_t in_plane = p.h * p.w, total = p.planes * in_plane;
  const float inv = 1.f / avg_pool_divisor(p);
  for (int64_t i = detail::grid_start(); i < total; i += detail::grid_stride()) {
    const int64_t pl = i / in_plane, r = i % in_plane;
    const float* gp = g + pl * p.out_h * p.out_w;
    int64_t oh0, oh1, ow0, ow1;
    pool_covering_outputs(r / p.w, p.kernel_h, p.stride_h, p.pad_h, p.out_h, oh0, oh1);
    pool_covering_outputs(r % p.w, p.kernel_w, p.stride_w, p.pad_w, p.out_w, ow0, ow1);
    float s = 0.f;
    for (int64_t oh = oh0; oh < oh1; ++oh)
      for (int64_t ow = ow0; ow < ow1; ++ow) s += gp[oh * p.out_w + ow] * inv;
    dx[i] = s;
  }
}

// One warp per plane (kBlockThreads / 32 planes per block, warps grid-stride over
// planes): lane l sums elements l, l + 32, ... in double, a fixed xor-shuffle
// tree combines the lanes, lane 0 writes the mean. No barrier: a warp whose
// plane is out of range skips the whole body.
__global__ void global_avg_pool_forward_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t planes,
                                               int64_t hw) {
  const int lane = threadIdx.x % warpSize;
  const int64_t warps = (int64_t)gridDim.x * (blockDim.x / warpSize);
  for (int64_t pl = detail::grid_start() / warpSize; pl < planes; pl += warps) {
    const float* xp = x + pl * hw;
    double s = 0.0;
    for (int64_t i = lane; i < hw; i += warpSize) s += xp[i];
    for (int mask = warpSize / 2; mask > 0; mask /= 2) s += __shfl_xor_sync(detail::kFullMask, s, mask);
    if (lane == 0) y[pl] = (float)(s / (double)hw);
  }
}

// One thread per element of dx (planes, hw), grid-stride: g[plane] / hw.
__global__ void global_avg_pool_backward_kernel(const float* __restrict__ g, float* __restrict__ dx, int64_t planes,
                                                int64_t hw) {
  const int64_t total = planes * hw;
  const float inv = 1.f / (float)hw;
  for (int64_t i = detail::grid_start(); i < total; i += detail::grid_stride()) dx[i] = g[i / hw] * inv;
}

}  // namespace

void max_pool2d_forward(const Pool2dParams& p, const float* x, float* y) {
  const int64_t total = p.planes * p.out_h * p.out_w;
  if (total == 0) return;
  RECON_LAUNCH(max_pool2d_forward_kernel, detail::grid_for(total), detail::kBlockThreads, 0, runtime_stream())(x, p, y);
  check_launch("max_pool2d_forward_kernel");
}

void max_pool2d_backward(const Pool2dParams& p, const float* x, const float* g, float* dx) {
  const int64_t total = p.planes * p.h * p.w;
  if (total == 0) return;
  RECON_LAUNCH(max_pool2d_backward_kernel, detail::grid_for(total), detail::kBlockThreads, 0, runtime_stream())(x, g, p, dx);
  check_launch("max_pool2d_backward_kernel");
}

void avg_pool2d_forward(const Pool2dParams& p, const float* x, float* y) {
  const int64_t total = p.planes * p.out_h * p.out_w;
  if (total == 0) return;
  RECON_LAUNCH(avg_pool2d_forward_kernel, detail::grid_for(total), detail::kBlockThreads, 0, runtime_stream())(x, p, y);
  check_launch("avg_pool2d_forward_kernel");
}

void avg_pool2d_backward(const Pool2dParams& p, const float* g, float* dx) {
  const int64_t total = p.planes * p.h * p.w;
  if (total == 0) return;
  RECON_LAUNCH(avg_pool2d_backward_kernel, detail::grid_for(total), detail::kBlockThreads, 0, runtime_stream())(g, p, dx);
  check_launch("avg_pool2d_backward_kernel");
}

void global_avg_pool_forward(const float* x, float* y, int64_t planes, int64_t hw) {
  if (planes == 0) return;
  const int warp_threads = 32;  // one warp per plane
  RECON_LAUNCH(global_avg_pool_forward_kernel, detail::grid_for(planes * warp_threads), detail::kBlockThreads, 0,
               runtime_stream())
  (x, y, planes, hw);
  check_launch("global_avg_pool_forward_kernel");
}

void global_avg_pool_backward(const float* g, float* dx, int64_t planes, int64_t hw) {
  const int64_t total = planes * hw;
  if (total == 0) return;
  RECON_LAUNCH(global_avg_pool_backward_kernel, detail::grid_for(total), detail::kBlockThreads, 0, runtime_stream())
  (g, dx, planes, hw);
  check_launch("global_avg_pool_backward_kernel");
}

}  // namespace recon::cuda
