// Fused SSIM on CUDA (Wang et al., IEEE TIP 2004; math in
// kernels/common/ssim.hpp). The forward kernel loads a 26 x 26 tile of x and
// y (16 x 16 outputs plus a halo of 5, reflect-padded) into shared memory,
// runs the separable 11-tap Gaussian along rows then columns for the five
// local statistics, and writes the SSIM map, the four partial maps (when
// gradients are needed) and the block's SSIM sum (ssim_loss). The backward
// kernel loads the products G dS/dstat over the same halo (zero outside the
// image), applies the adjoint window (the Gaussian with the reflect padding
// folded back onto the border) along rows then columns, and combines them
// into dL/dx and dL/dy. No atomics: every output is written by one thread and
// sums run in a fixed order (deterministic).
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/ssim.hpp"
#include "runtime/cuda_context.hpp"

namespace recon::cuda {

using detail::runtime_stream;

namespace {

constexpr int kHalo = kSsimTile + 2 * kSsimRadius;  // 26: tile edge with its halo
constexpr int kThreads = kSsimTile * kSsimTile;     // 256 threads per block
constexpr int kStats = 5;                           // mu_x, mu_y, e_xx, e_yy, e_xy
constexpr int kFinalizeThreads = 256;
constexpr int64_t kMaxGridZ = 65535;  // planes per launch (gridDim.z limit)


// One block: a 16 x 16 tile of outputs of one plane (blockIdx.z + plane0);
// thread (tx, ty) owns output (row0 + ty, col0 + tx). All threads load the
// halo tile and run the row pass (26 rows x 16 columns shared among them);
// each thread then runs the column pass for its own pixel. Outputs past the
// image edge are computed on clamped halo data and not written.
__global__ void ssim_forward_kernel(const float* __restrict__ x, const float* __restrict__ y, float* __restrict__ map,
                                    float* __restrict__ partials, float* __restrict__ block_sums, SsimParams p,
                                    int64_t plane0) {
  __shared__ float g[kSsimWindow];
  __shared__ float sx[kHalo][kHalo];
  __shared__ float sy[kHalo][kHalo];
  __shared__ float hs[kStats][kHalo][kSsimTile];
  __shared__ float red[kThreads];
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * kSsimTile + tx;
  const int64_t pl = plane0 + blockIdx.z;
  const int64_t plane = (int64_t)p.h * p.w, numel = p.planes * plane;
  const int row0 = blockIdx.y * kSsimTile, col0 = blockIdx.x * kSsimTile;
  const float* xp = x + pl * plane;
  const float* yp = y + pl * plane;

  if (tid < kSsimWindow) g[tid] = ssim_gauss_weight(tid);
  for (int i = tid; i < kHalo * kHalo; i += kThreads) {
    const int r = i / kHalo, c = i % kHalo;
    const int64_t src = (int64_t)ssim_halo_index(row0 - kSsimRadius + r, p.h) * p.w +
                        ssim_halo_index(col0 - kSsimRadius + c, p.w);
    sx[r][c] = xp[src];
    sy[r][c] = yp[src];
  }
  __syncthreads();

  // Row pass: horizontal window sums for every halo row of the tile's columns.
  for (int i = tid; i < kHalo * kSsimTile; i += kThreads) {
    const int r = i / kSsimTile, c = i % kSsimTile;
    float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f, s4 = 0.f;
    for (int k = 0; k < kSsimWindow; ++k) {
      const float a = sx[r][c + k], b = sy[r][c + k];
      s0 += g[k] * a;
      s1 += g[k] * b;
      s2 += g[k] * (a * a);
      s3 += g[k] * (b * b);
      s4 += g[k] * (a * b);
    }
    hs[0][r][c] = s0;
    hs[1][r][c] = s1;
    hs[2][r][c] = s2;
    hs[3][r][c] = s3;
    hs[4][r][c] = s4;
  }
  __syncthreads();

  // Column pass for this thread's pixel.
  float s[kStats] = {0.f, 0.f, 0.f, 0.f, 0.f};
  for (int k = 0; k < kSsimWindow; ++k)
    for (int q = 0; q < kStats; ++q) s[q] += g[k] * hs[q][ty + k][tx];
  const int r = row0 + ty, c = col0 + tx;
  float ssim = 0.f;  // outside the image: contributes nothing to the block sum
  if (r < p.h && c < p.w) {
    float d[kSsimPartials];
    ssim = ssim_pixel(SsimStats{s[0], s[1], s[2], s[3], s[4]}, partials ? d : nullptr);
    const int64_t i = pl * plane + (int64_t)r * p.w + c;
    if (map) map[i] = ssim;
    if (partials)
      for (int q = 0; q < kSsimPartials; ++q) partials[q * numel + i] = d[q];
  }

  if (block_sums) {  // the same for every thread of the block
    red[tid] = ssim;
    __syncthreads();
    for (int half = kThreads / 2; half > 0; half /= 2) {
      if (tid < half) red[tid] += red[tid + half];
      __syncthreads();
    }
    if (tid == 0) block_sums[(pl * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x] = red[0];
  }
}

// One block of 256 threads: thread t sums block_sums[t], [t + 256], ... in
// double; a fixed tree combines the threads; thread 0 writes 1 - mean.
__global__ void ssim_loss_finalize_kernel(const float* __restrict__ block_sums, int64_t count, int64_t numel,
                                          float* __restrict__ out) {
  __shared__ double red[kFinalizeThreads];
  const int t = threadIdx.x;
  double s = 0.0;
  for (int64_t i = t; i < count; i += kFinalizeThreads) s += (double)block_sums[i];
  red[t] = s;
  __syncthreads();
  for (int half = kFinalizeThreads / 2; half > 0; half /= 2) {
    if (t < half) red[t] += red[t + half];
    __syncthreads();
  }
  if (t == 0) out[0] = (float)(1.0 - red[0] / (double)numel);
}

// One block: a 16 x 16 tile of input gradients of one plane; thread (tx, ty)
// owns pixel (row0 + ty, col0 + tx). All threads load the products
// G dS/dstat over the halo (zero outside the image) and run the adjoint row
// pass (26 rows x 16 columns); each thread runs the adjoint column pass for
// its pixel and writes dx and/or dy there.
__global__ void ssim_backward_kernel(const float* __restrict__ x, const float* __restrict__ y,
                                     const float* __restrict__ partials, const float* __restrict__ g_map,
                                     const float* __restrict__ g_scalar, float g_scale, float* __restrict__ dx,
                                     float* __restrict__ dy, SsimParams p, int64_t plane0) {
  __shared__ float g[kSsimWindow];
  __shared__ float sp[kSsimPartials][kHalo][kHalo];
  __shared__ float hs[kSsimPartials][kHalo][kSsimTile];
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * kSsimTile + tx;
  const int64_t pl = plane0 + blockIdx.z;
  const int64_t plane = (int64_t)p.h * p.w, numel = p.planes * plane;
  const int row0 = blockIdx.y * kSsimTile, col0 = blockIdx.x * kSsimTile;

  if (tid < kSsimWindow) g[tid] = ssim_gauss_weight(tid);
  for (int i = tid; i < kHalo * kHalo; i += kThreads) {
    const int r = i / kHalo, c = i % kHalo;
    const int gr = row0 - kSsimRadius + r, gc = col0 - kSsimRadius + c;
    if (gr >= 0 && gr < p.h && gc >= 0 && gc < p.w) {
      const int64_t src = pl * plane + (int64_t)gr * p.w + gc;
      const float gi = ssim_upstream(g_map, g_scalar, g_scale, src);
      for (int q = 0; q < kSsimPartials; ++q) sp[q][r][c] = gi * partials[q * numel + src];
    } else {
      for (int q = 0; q < kSsimPartials; ++q) sp[q][r][c] = 0.f;
    }
  }
  __syncthreads();

  // Adjoint row pass: output column qc gathers columns qc - 5 .. qc + 5.
  for (int i = tid; i < kHalo * kSsimTile; i += kThreads) {
    const int r = i / kSsimTile, c = i % kSsimTile;
    const int qc = col0 + c;
    float s[kSsimPartials] = {0.f, 0.f, 0.f, 0.f};
    for (int d = -kSsimRadius; d <= kSsimRadius; ++d) {
      const int j = qc + d;
      if (j < 0 || j >= p.w) continue;
      const float t = ssim_adjoint_tap(g, j, qc, p.w);
      for (int q = 0; q < kSsimPartials; ++q) s[q] += t * sp[q][r][c + kSsimRadius + d];
    }
    for (int q = 0; q < kSsimPartials; ++q) hs[q][r][c] = s[q];
  }
  __syncthreads();

  // Adjoint column pass for this thread's pixel.
  const int qr = row0 + ty, qc = col0 + tx;
  if (qr < p.h && qc < p.w) {
    float s[kSsimPartials] = {0.f, 0.f, 0.f, 0.f};
    for (int d = -kSsimRadius; d <= kSsimRadius; ++d) {
      const int j = qr + d;
      if (j < 0 || j >= p.h) continue;
      const float t = ssim_adjoint_tap(g, j, qr, p.h);
      for (int q = 0; q < kSsimPartials; ++q) s[q] += t * hs[q][ty + kSsimRadius + d][tx];
    }
    const int64_t i = pl * plane + (int64_t)qr * p.w + qc;
    const float xv = x[i], yv = y[i];
    if (dx) dx[i] = ssim_input_grad(s[0], s[2], s[3], xv, yv);
    if (dy) dy[i] = ssim_input_grad(s[1], s[2], s[3], yv, xv);
  }
}

dim3 tile_grid(const SsimParams& p, int64_t planes) {
  return dim3((unsigned)((p.w + kSsimTile - 1) / kSsimTile), (unsigned)((p.h + kSsimTile - 1) / kSsimTile),
              (unsigned)planes);
}

}  // namespace

void ssim_forward(const SsimParams& p, const float* x, const float* y, float* map, float* partials,
                  float* block_sums) {
  for (int64_t plane0 = 0; plane0 < p.planes; plane0 += kMaxGridZ) {
    const int64_t planes = p.planes - plane0 < kMaxGridZ ? p.planes - plane0 : kMaxGridZ;
    RECON_LAUNCH(ssim_forward_kernel, tile_grid(p, planes), dim3(kSsimTile, kSsimTile), 0, runtime_stream())
    (x, y, map, partials, block_sums, p, plane0);
    check_launch("ssim_forward_kernel");
  }
}

void ssim_loss_finalize(const float* block_sums, int64_t count, int64_t numel, float* out) {
  RECON_LAUNCH(ssim_loss_finalize_kernel, dim3(1), dim3(kFinalizeThreads), 0, runtime_stream())(block_sums, count, numel, out);
  check_launch("ssim_loss_finalize_kernel");
}

void ssim_backward(const SsimParams& p, const float* x, const float* y, const float* partials, const float* g_map,
                   const float* g_scalar, float g_scale, float* dx, float* dy) {
  for (int64_t plane0 = 0; plane0 < p.planes; plane0 += kMaxGridZ) {
    const int64_t planes = p.planes - plane0 < kMaxGridZ ? p.planes - plane0 : kMaxGridZ;
    RECON_LAUNCH(ssim_backward_kernel, tile_grid(p, planes), dim3(kSsimTile, kSsimTile), 0, runtime_stream())
    (x, y, partials, g_map, g_scalar, g_scale, dx, dy, p, plane0);
    check_launch("ssim_backward_kernel");
  }
}

}  // namespace recon::cuda
