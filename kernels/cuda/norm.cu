// CUDA batch-norm kernels. The per-channel reductions run one block per
// channel, each thread accumulating a fixed strided share in double and the
// block combining the shares with a fixed-order shared-memory tree: results
// are deterministic (no atomics) and close to the CPU's double sums. The
// elementwise passes run one thread per element (grid-stride).
#include "kernels/cuda/launch.cuh"

#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/norm.hpp"
#include "runtime/cuda_context.hpp"

namespace recon::cuda {

using detail::runtime_stream;

namespace {

constexpr int kReduceThreads = 256;  // threads of a per-channel reduction block (a power of 2)


// Sums a and b over the block (blockDim.x == kReduceThreads) with a fixed-order
// tree in shared memory sa, sb; every thread gets the totals. Every thread of
// the block must call it (it holds barriers).
__device__ void block_sum2(double& a, double& b, double* sa, double* sb) {
  const int t = threadIdx.x;
  sa[t] = a;
  sb[t] = b;
  __syncthreads();
  for (int half = kReduceThreads / 2; half > 0; half /= 2) {
    if (t < half) {
      sa[t] += sa[t + half];
      sb[t] += sb[t + half];
    }
    __syncthreads();
  }
  a = sa[0];
  b = sb[0];
  __syncthreads();  // sa, sb may be reused by the caller's next reduction
}

// One block per channel c (gridDim.x = C); thread t visits the channel's
// m = N * HW values t, t + blockDim.x, ... (index i -> x[(i / hw * C + c) * hw + i % hw]).
// Pass 1 sums for the mean, pass 2 sums (x - mean)^2 (two-pass, as the CPU);
// thread 0 writes mean, invstd and, when given, updates the running statistics.
__global__ void batch_norm_stats_kernel(const float* __restrict__ x, BatchNormParams p, float momentum,
                                        float* __restrict__ mean, float* __restrict__ invstd,
                                        float* __restrict__ running_mean, float* __restrict__ running_var) {
  __shared__ double sa[kReduceThreads];
  __shared__ double sb[kReduceThreads];
  const int64_t c = blockIdx.x, m = p.n * p.hw;
  double s = 0.0, unused = 0.0;  // the statistics reduce one sum at a time: block_sum2's second slot idles
  for (int64_t i = threadIdx.x; i < m; i += kReduceThreads) s += x[((i / p.hw) * p.c + c) * p.hw + i % p.hw];
  block_sum2(s, unused, sa, sb);
  const double mu = s / (double)m;
  double sq = 0.0;
  for (int64_t i = threadIdx.x; i < m; i += kReduceThreads) {
    const double d = x[((i / p.hw) * p.c + c) * p.hw + i % p.hw] - mu;
    sq += d * d;
  }
  block_sum2(sq, unused, sa, sb);
  if (threadIdx.x == 0) {
    const float var = (float)(sq / (double)m);
    mean[c] = (float)mu;
    invstd[c] = recon::batch_norm_invstd(var, p.eps);
    if (running_mean) batch_norm_update_running((float)mu, var, m, momentum, running_mean[c], running_var[c]);
  }
}

// One thread per channel (grid-stride): invstd[c] from var[c].
__global__ void batch_norm_invstd_kernel(const float* __restrict__ var, BatchNormParams p, float* __restrict__ invstd) {
  for (int64_t c = detail::grid_start(); c < p.c; c += detail::grid_stride())
    invstd[c] = recon::batch_norm_invstd(var[c], p.eps);
}

// One thread per element of x (N, C, HW), grid-stride; channel = (i / hw) % C.
__global__ void batch_norm_forward_kernel(const float* __restrict__ x, BatchNormParams p,
                                          const float* __restrict__ mean, const float* __restrict__ invstd,
                                          const float* __restrict__ weight, const float* __restrict__ bias,
                                          float* __restrict__ y) {
  const int64_t total = p.n * p.c * p.hw;
  for (int64_t i = detail::grid_start(); i < total; i += detail::grid_stride()) {
    const int64_t c = (i / p.hw) % p.c;
    y[i] = batch_norm_apply(x[i], mean[c], invstd[c], weight ? weight[c] : 1.f, bias ? bias[c] : 0.f);
  }
}

// One block per channel c, threads strided over its N * HW values as in
// batch_norm_stats_kernel: sums g and g * (x - mean) in double; thread 0
// writes sum_g[c] and sum_gxhat[c] = invstd[c] * sum g (x - mean).
__global__ void batch_norm_backward_reduce_kernel(const float* __restrict__ g, const float* __restrict__ x,
                                                  BatchNormParams p, const float* __restrict__ mean,
                                                  const float* __restrict__ invstd, float* __restrict__ sum_g,
                                                  float* __restrict__ sum_gxhat) {
  __shared__ double sa[kReduceThreads];
  __shared__ double sb[kReduceThreads];
  const int64_t c = blockIdx.x, m = p.n * p.hw;
  const double mu = mean[c];
  double sg = 0.0, sgx = 0.0;
  for (int64_t i = threadIdx.x; i < m; i += kReduceThreads) {
    const int64_t idx = ((i / p.hw) * p.c + c) * p.hw + i % p.hw;
    sg += g[idx];
    sgx += (double)g[idx] * ((double)x[idx] - mu);
  }
  block_sum2(sg, sgx, sa, sb);
  if (threadIdx.x == 0) {
    sum_g[c] = (float)sg;
    sum_gxhat[c] = (float)(sgx * (double)invstd[c]);
  }
}

// One thread per element of dx (N, C, HW), grid-stride; channel = (i / hw) % C.
__global__ void batch_norm_backward_input_kernel(const float* __restrict__ g, const float* __restrict__ x,
                                                 BatchNormParams p, bool training, const float* __restrict__ mean,
                                                 const float* __restrict__ invstd, const float* __restrict__ weight,
                                                 const float* __restrict__ sum_g, const float* __restrict__ sum_gxhat,
                                                 float* __restrict__ dx) {
  const int64_t total = p.n * p.c * p.hw, m = p.n * p.hw;
  for (int64_t i = detail::grid_start(); i < total; i += detail::grid_stride()) {
    const int64_t c = (i / p.hw) % p.c;
    const float mu = mean[c], is = invstd[c];
    const float sg = training ? sum_g[c] : 0.f, sgx = training ? sum_gxhat[c] : 0.f;
    dx[i] = batch_norm_grad_input(training, g[i], (x[i] - mu) * is, weight ? weight[c] : 1.f, is, sg, sgx, m);
  }
}

}  // namespace

void batch_norm_stats(const BatchNormParams& p, const float* x, float momentum, float* mean, float* invstd,
                      float* running_mean, float* running_var) {
  if (p.c == 0) return;
  RECON_LAUNCH(batch_norm_stats_kernel, (unsigned)p.c, kReduceThreads, 0, runtime_stream())
  (x, p, momentum, mean, invstd, running_mean, running_var);
  check_launch("batch_norm_stats_kernel");
}

void batch_norm_invstd(const BatchNormParams& p, const float* var, float* invstd) {
  if (p.c == 0) return;
  RECON_LAUNCH(batch_norm_invstd_kernel, detail::grid_for(p.c), detail::kBlockThreads, 0, runtime_stream())(var, p, invstd);
  check_launch("batch_norm_invstd_kernel");
}

void batch_norm_forward(const BatchNormParams& p, const float* x, const float* mean, const float* invstd,
                        const float* weight, const float* bias, float* y) {
  const int64_t total = p.n * p.c * p.hw;
  if (total == 0) return;
  RECON_LAUNCH(batch_norm_forward_kernel, detail::grid_for(total), detail::kBlockThreads, 0, runtime_stream())
  (x, p, mean, invstd, weight, bias, y);
  check_launch("batch_norm_forward_kernel");
}

void batch_norm_backward_reduce(const BatchNormParams& p, const float* g, const float* x, const float* mean,
                                const float* invstd, float* sum_g, float* sum_gxhat) {
  if (p.c == 0) return;
  RECON_LAUNCH(batch_norm_backward_reduce_kernel, (unsigned)p.c, kReduceThreads, 0, runtime_stream())
  (g, x, p, mean, invstd, sum_g, sum_gxhat);
  check_launch("batch_norm_backward_reduce_kernel");
}

void batch_norm_backward_input(const BatchNormParams& p, bool training, const float* g, const float* x,
                               const float* mean, const float* invstd, const float* weight, const float* sum_g,
                               const float* sum_gxhat, float* dx) {
  const int64_t total = p.n * p.c * p.hw;
  if (total == 0) return;
  RECON_LAUNCH(batch_norm_backward_input_kernel, detail::grid_for(total), detail::kBlockThreads, 0, runtime_stream())
  (g, x, p, training, mean, invstd, weight, sum_g, sum_gxhat, dx);
  check_launch("batch_norm_backward_input_kernel");
}

}  // namespace recon::cuda
