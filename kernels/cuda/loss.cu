// CUDA loss kernels: MSE, softmax + cross-entropy (fused, a warp per row)
// and the Gaussian KL term, forward and backward. Formulas come from
// kernels/common/loss.hpp, as on the CPU. A forward pass is two launches:
// per-block partial sums in double, then reduce.cu's finish kernel adds
// them in a fixed tree and scales (deterministic, no atomics). The backward
// kernels read the loss gradient g[0] on the device.
#include "kernels/cuda/launch.cuh"

#include <cmath>
#include <cstdint>

#include "kernels/common/loss.hpp"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/loss.hpp"
#include "kernels/cuda/reduce.hpp"
#include "runtime/cuda_context.hpp"

namespace recon::cuda {

using detail::runtime_stream;

namespace {

using detail::grid_for;
using detail::grid_start;
using detail::grid_stride;
using detail::kBlockThreads;


// Cross-entropy rows per block: one warp each.
constexpr int kCeRowsPerBlock = 8;

struct SquaredErrorTerm {
  const float* p;
  const float* t;
  __device__ double operator()(int64_t i) const { return (double)squared_error(p[i], t[i]); }
};

struct KlNormalTerm {
  const float* mu;
  const float* logvar;
  __device__ double operator()(int64_t i) const { return (double)kl_normal_term(mu[i], logvar[i]); }
};

// One block: the double total of (p_i - t_i)^2 over its grid-stride share of
// [0, n) to partials[blockIdx.x]; one thread: a running sum of its elements.
__global__ void mse_partial_kernel(const float* __restrict__ p, const float* __restrict__ t, int64_t n,
                                   double* __restrict__ partials) {
  __shared__ double warp_sums[32];
  detail::block_partial_sum(SquaredErrorTerm{p, t}, n, partials, warp_sums);
}

// One thread: element i (grid-stride over n) of gp and/or gt.
__global__ void mse_backward_kernel(const float* __restrict__ p, const float* __restrict__ t,
                                    const float* __restrict__ g, float scale, float* __restrict__ gp,
                                    float* __restrict__ gt, int64_t n) {
  const float gs = g[0] * scale;
  for (int64_t i = grid_start(); i < n; i += grid_stride()) {
    const float d = squared_error_grad(p[i], t[i], gs);
    if (gp) gp[i] = d;
    if (gt) gt[i] = -d;
  }
}

// One block: kCeRowsPerBlock rows, one warp each (row = blockIdx.x * 8 +
// warp). Lane l visits logits l, l + 32, ... of the row: the row max by a
// shuffle tree, then the shifted exp terms summed in double by a shuffle
// tree; lane 0 writes the row's stats and its NLL (NaN for an invalid
// target) to shared memory, and thread 0 writes the block's NLL total, in
// row order, to partials[blockIdx.x].
__global__ void cross_entropy_forward_kernel(const float* __restrict__ logits, const float* __restrict__ targets,
                                             int64_t n, int64_t c, float* __restrict__ stats,
                                             double* __restrict__ partials) {
  __shared__ double row_nll[kCeRowsPerBlock];
  const int lane = threadIdx.x % warpSize, warp = threadIdx.x / warpSize;
  const int64_t row = (int64_t)blockIdx.x * kCeRowsPerBlock + warp;
  double nll = 0.0;
  if (row < n) {  // whole warps take this branch together: the shuffles see every lane
    const float* x = logits + row * c;
    float m = -INFINITY;
    for (int64_t j = lane; j < c; j += warpSize) m = fmaxf(m, x[j]);
    m = detail::warp_max_all(m);
    double s = 0.0;
    for (int64_t j = lane; j < c; j += warpSize) s += exp_shifted_term(x[j], m);
    s = detail::warp_sum(s);
    if (lane == 0) {
      const float log_s = log_of_sum(s);
      stats[2 * row] = m;
      stats[2 * row + 1] = log_s;
      const float t = targets[row];
      nll = valid_class_index(t, c) ? nll_from_stats(x[(int64_t)t], m, log_s) : (double)NAN;
    }
  }
  if (lane == 0) row_nll[warp] = nll;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0.0;
    for (int w = 0; w < kCeRowsPerBlock; ++w) total += row_nll[w];
    partials[blockIdx.x] = total;
  }
}

// One thread: element k = i * c + j of gx (grid-stride over n * c), from
// row i's saved stats and target.
__global__ void cross_entropy_backward_kernel(const float* __restrict__ logits, const float* __restrict__ targets,
                                              const float* __restrict__ stats, const float* __restrict__ g,
                                              float scale, float* __restrict__ gx, int64_t n, int64_t c) {
  const float gs = g[0] * scale;
  for (int64_t k = grid_start(); k < n * c; k += grid_stride()) {
    const int64_t i = k / c, j = k % c;
    const float t = targets[i];
    gx[k] = valid_class_index(t, c)
                ? cross_entropy_grad(logits[k], stats[2 * i], stats[2 * i + 1], j == (int64_t)t, gs)
                : NAN;
  }
}

// One block: the double total of the KL terms over its grid-stride share of
// [0, n) to partials[blockIdx.x]; one thread: a running sum of its elements.
__global__ void kl_normal_partial_kernel(const float* __restrict__ mu, const float* __restrict__ logvar, int64_t n,
                                         double* __restrict__ partials) {
  __shared__ double warp_sums[32];
  detail::block_partial_sum(KlNormalTerm{mu, logvar}, n, partials, warp_sums);
}

// One thread: element i (grid-stride over n) of gmu and/or glv.
__global__ void kl_normal_backward_kernel(const float* __restrict__ mu, const float* __restrict__ logvar,
                                          const float* __restrict__ g, float scale, float* __restrict__ gmu,
                                          float* __restrict__ glv, int64_t n) {
  const float gs = g[0] * scale;
  for (int64_t i = grid_start(); i < n; i += grid_stride()) {
    if (gmu) gmu[i] = kl_normal_grad_mu(mu[i], gs);
    if (glv) glv[i] = kl_normal_grad_logvar(logvar[i], gs);
  }
}

}  // namespace

void mse_forward(const float* p, const float* t, int64_t n, double scale, float* out) {
  const int blocks = partial_sum_blocks(n);
  DeviceWorkspace partials((size_t)blocks * sizeof(double));
  RECON_LAUNCH(mse_partial_kernel, blocks, kPartialSumThreads, 0, runtime_stream())(p, t, n, partials.as<double>());
  check_launch("mse_partial_kernel");
  finish_partial_sums(partials.as<double>(), blocks, scale, out);
}

void mse_backward(const float* p, const float* t, const float* g, float scale, float* gp, float* gt, int64_t n) {
  if (n == 0 || (!gp && !gt)) return;
  RECON_LAUNCH(mse_backward_kernel, grid_for(n), kBlockThreads, 0, runtime_stream())(p, t, g, scale, gp, gt, n);
  check_launch("mse_backward_kernel");
}

void cross_entropy_forward(const float* logits, const float* targets, int64_t n, int64_t c, double scale,
                           float* stats, float* out) {
  const int64_t blocks = (n + kCeRowsPerBlock - 1) / kCeRowsPerBlock;
  DeviceWorkspace partials((size_t)blocks * sizeof(double));
  RECON_LAUNCH(cross_entropy_forward_kernel, (unsigned)blocks, kCeRowsPerBlock * 32, 0, runtime_stream())
  (logits, targets, n, c, stats, partials.as<double>());
  check_launch("cross_entropy_forward_kernel");
  finish_partial_sums(partials.as<double>(), (int)blocks, scale, out);
}

void cross_entropy_backward(const float* logits, const float* targets, const float* stats, const float* g,
                            float scale, float* gx, int64_t n, int64_t c) {
  if (n * c == 0) return;
  RECON_LAUNCH(cross_entropy_backward_kernel, grid_for(n * c), kBlockThreads, 0, runtime_stream())
  (logits, targets, stats, g, scale, gx, n, c);
  check_launch("cross_entropy_backward_kernel");
}

void kl_normal_forward(const float* mu, const float* logvar, int64_t n, double scale, float* out) {
  const int blocks = partial_sum_blocks(n);
  DeviceWorkspace partials((size_t)blocks * sizeof(double));
  RECON_LAUNCH(kl_normal_partial_kernel, blocks, kPartialSumThreads, 0, runtime_stream())
  (mu, logvar, n, partials.as<double>());
  check_launch("kl_normal_partial_kernel");
  finish_partial_sums(partials.as<double>(), blocks, scale, out);
}

void kl_normal_backward(const float* mu, const float* logvar, const float* g, float scale, float* gmu, float* glv,
                        int64_t n) {
  if (n == 0 || (!gmu && !glv)) return;
  RECON_LAUNCH(kl_normal_backward_kernel, grid_for(n), kBlockThreads, 0, runtime_stream())
  (mu, logvar, g, scale, gmu, glv, n);
  check_launch("kl_normal_backward_kernel");
}

}  // namespace recon::cuda
