// CUDA kernels of the shape ops: one thread per destination element, each
// computing its source from the shared index math (kernels/common/shape.hpp).
// Reflect padding's backward is a gather: each input element sums the (at
// most 3 x 3) output positions that reflect onto it, in the CPU's order.
#include "kernels/cuda/launch.cuh"

#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/shape.hpp"
#include "runtime/cuda_context.hpp"
#include "runtime/error.hpp"

namespace recon::cuda {

using detail::runtime_stream;

namespace {


// One thread per element (r, c) of the rows x cols block, grid-stride.
__global__ void copy_rows_kernel(const float* __restrict__ src, int64_t src_stride, float* __restrict__ dst,
                                 int64_t dst_stride, int64_t rows, int64_t cols) {
  const int64_t total = rows * cols;
  for (int64_t i = detail::grid_start(); i < total; i += detail::grid_stride()) {
    const int64_t r = i / cols, c = i % cols;
    dst[r * dst_stride + c] = src[r * src_stride + c];
  }
}

// One thread per element of the contiguous src, grid-stride: written to its
// strided position in dst.
__global__ void strided_scatter_kernel(const float* __restrict__ src, StridedLayout layout, int64_t total,
                                       float* __restrict__ dst) {
  for (int64_t i = detail::grid_start(); i < total; i += detail::grid_stride()) dst[strided_offset(layout, i)] = src[i];
}

// One thread per output (plane, oh, ow) of y (planes, Ho, Wo), grid-stride:
// the reflected source, or the source or zero.
__global__ void pad2d_forward_kernel(const float* __restrict__ x, Pad2dParams p, PadKind kind, float* __restrict__ y) {
  const int64_t out_plane = p.out_h * p.out_w, total = p.planes * out_plane;
  for (int64_t i = detail::grid_start(); i < total; i += detail::grid_stride()) {
    const int64_t pl = i / out_plane, r = i % out_plane;
    int64_t ih = r / p.out_w - p.top, iw = r % p.out_w - p.left;
    const float* xp = x + pl * p.h * p.w;
    if (kind == PadKind::Reflect) {
      y[i] = xp[reflect_index(ih, p.h) * p.w + reflect_index(iw, p.w)];
    } else {
      y[i] = (ih >= 0 && ih < p.h && iw >= 0 && iw < p.w) ? xp[ih * p.w + iw] : 0.f;
    }
  }
}

// One thread per input (plane, ih, iw) of dx (planes, H, W), grid-stride.
// Zero: the cropped g. Reflect: the sum of g over the output positions that
// reflect onto (ih, iw), rows then columns ascending (the CPU's order).
__global__ void pad2d_backward_kernel(const float* __restrict__ g, Pad2dParams p, PadKind kind,
                                      float* __restrict__ dx) {
  const int64_t in_plane = p.h * p.w, total = p.planes * in_plane;
  for (int64_t i = detail::grid_start(); i < total; i += detail::grid_stride()) {
    const int64_t pl = i / in_plane, ih = (i % in_plane) / p.w, iw = i % p.w;
    const float* gp = g + pl * p.out_h * p.out_w;
    if (kind == PadKind::Zero) {
      dx[i] = gp[(ih + p.top) * p.out_w + iw + p.left];
    } else {
      int64_t rows[3], cols[3];
      const int nr = reflect_covering_outputs(ih, p.h, p.top, p.out_h, rows);
      const int nc = reflect_covering_outputs(iw, p.w, p.left, p.out_w, cols);
      float s = 0.f;
      for (int a = 0; a < nr; ++a)
        for (int b = 0; b < nc; ++b) s += gp[rows[a] * p.out_w + cols[b]];
      dx[i] = s;
    }
  }
}

// One thread per output (plane, i, j) of y (planes, Ho, Wo), grid-stride:
// copies its rot90 source.
__global__ void rot90_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t planes, int64_t h, int64_t w,
                             int k) {
  const int64_t plane = h * w, total = planes * plane;
  const int64_t out_w = (k % 2) ? h : w;
  for (int64_t idx = detail::grid_start(); idx < total; idx += detail::grid_stride()) {
    const int64_t pl = idx / plane, r = idx % plane;
    int64_t si, sj;
    rot90_source(k, r / out_w, r % out_w, h, w, si, sj);
    y[idx] = x[pl * plane + si * w + sj];
  }
}

}  // namespace

void copy_rows(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t rows, int64_t cols) {
  const int64_t total = rows * cols;
  if (total == 0) return;
  RECON_LAUNCH(copy_rows_kernel, detail::grid_for(total), detail::kBlockThreads, 0, runtime_stream())
  (src, src_stride, dst, dst_stride, rows, cols);
  check_launch("copy_rows_kernel");
}

void strided_scatter(const float* src, const StridedLayout& layout, float* dst) {
  RECON_CHECK(layout.rank >= 0 && layout.rank <= kMaxStridedDims,
              "strided_scatter: rank " << layout.rank << " is above the CUDA kernel's " << kMaxStridedDims);
  int64_t total = 1;
  for (int d = 0; d < layout.rank; ++d) total *= layout.shape[d];
  if (total == 0) return;
  RECON_LAUNCH(strided_scatter_kernel, detail::grid_for(total), detail::kBlockThreads, 0, runtime_stream())
  (src, layout, total, dst);
  check_launch("strided_scatter_kernel");
}

void pad2d_forward(const Pad2dParams& p, PadKind kind, const float* x, float* y) {
  const int64_t total = p.planes * p.out_h * p.out_w;
  if (total == 0) return;
  RECON_LAUNCH(pad2d_forward_kernel, detail::grid_for(total), detail::kBlockThreads, 0, runtime_stream())(x, p, kind, y);
  check_launch("pad2d_forward_kernel");
}

void pad2d_backward(const Pad2dParams& p, PadKind kind, const float* g, float* dx) {
  const int64_t total = p.planes * p.h * p.w;
  if (total == 0) return;
  RECON_LAUNCH(pad2d_backward_kernel, detail::grid_for(total), detail::kBlockThreads, 0, runtime_stream())(g, p, kind, dx);
  check_launch("pad2d_backward_kernel");
}

void rot90(const float* x, float* y, int64_t planes, int64_t h, int64_t w, int k) {
  const int64_t total = planes * h * w;
  if (total == 0) return;
  RECON_LAUNCH(rot90_kernel, detail::grid_for(total), detail::kBlockThreads, 0, runtime_stream())(x, y, planes, h, w, k);
  check_launch("rot90_kernel");
}

}  // namespace recon::cuda
