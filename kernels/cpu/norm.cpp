// CPU batch-norm kernels: OpenMP over channels for the reductions (each
// channel summed in a fixed order in double, eight interleaved partial sums:
// kernels/cpu/reduce.hpp Sum8; results do not depend on the thread count)
// and over (n, c) rows for the elementwise passes.
#include "kernels/cpu/norm.hpp"

#include "kernels/common/norm.hpp"
#include "kernels/cpu/hot.hpp"
#include "kernels/cpu/reduce.hpp"

namespace recon::cpu {

// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelMin = 1 << 15;

RECON_CPU_HOT void batch_norm_stats(const BatchNormParams& p, const float* x, float* mean, float* var) {
  const int64_t m = p.n * p.hw;
#pragma omp parallel for schedule(static) if (m * p.c > kParallelMin)
  for (int64_t c = 0; c < p.c; ++c) {
    Sum8 s;
    for (int64_t n = 0; n < p.n; ++n) {
      const float* row = x + (n * p.c + c) * p.hw;
      s.add(p.hw, [row](int64_t i) { return (double)row[i]; });
    }
    const double mu = s.total() / (double)m;
    Sum8 sq;  // two-pass: no cancellation for data far from 0
    for (int64_t n = 0; n < p.n; ++n) {
      const float* row = x + (n * p.c + c) * p.hw;
      sq.add(p.hw, [row, mu](int64_t i) { return (row[i] - mu) * (row[i] - mu); });
    }
    mean[c] = (float)mu;
    var[c] = (float)(sq.total() / (double)m);
  }
}

void batch_norm_invstd(const BatchNormParams& p, const float* var, float* invstd) {
  for (int64_t c = 0; c < p.c; ++c) invstd[c] = recon::batch_norm_invstd(var[c], p.eps);
}

void batch_norm_update_running(const BatchNormParams& p, const float* mean, const float* var, float momentum,
                               float* running_mean, float* running_var) {
  for (int64_t c = 0; c < p.c; ++c)
    recon::batch_norm_update_running(mean[c], var[c], p.n * p.hw, momentum, running_mean[c], running_var[c]);
}

RECON_CPU_HOT void batch_norm_forward(const BatchNormParams& p, const float* x, const float* mean, const float* invstd,
                        const float* weight, const float* bias, float* y) {
  const int64_t rows = p.n * p.c;
#pragma omp parallel for schedule(static) if (rows * p.hw > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r % p.c;
    const float mu = mean[c], is = invstd[c], w = weight ? weight[c] : 1.f, b = bias ? bias[c] : 0.f;
    const float* xr = x + r * p.hw;
    float* yr = y + r * p.hw;
    for (int64_t i = 0; i < p.hw; ++i) yr[i] = batch_norm_apply(xr[i], mu, is, w, b);
  }
}

RECON_CPU_HOT void batch_norm_backward_reduce(const BatchNormParams& p, const float* g, const float* x, const float* mean,
                                const float* invstd, float* sum_g, float* sum_gxhat) {
#pragma omp parallel for schedule(static) if (p.n * p.hw * p.c > kParallelMin)
  for (int64_t c = 0; c < p.c; ++c) {
    Sum8 sg, sgx;
    const double mu = mean[c];
    for (int64_t n = 0; n < p.n; ++n) {
      const float* gr = g + (n * p.c + c) * p.hw;
      const float* xr = x + (n * p.c + c) * p.hw;
      sg.add(p.hw, [gr](int64_t i) { return (double)gr[i]; });
      sgx.add(p.hw, [gr, xr, mu](int64_t i) { return (double)gr[i] * ((double)xr[i] - mu); });
    }
    sum_g[c] = (float)sg.total();
    sum_gxhat[c] = (float)(sgx.total() * (double)invstd[c]);
  }
}

RECON_CPU_HOT void batch_norm_backward_input(const BatchNormParams& p, bool training, const float* g, const float* x,
                               const float* mean, const float* invstd, const float* weight, const float* sum_g,
                               const float* sum_gxhat, float* dx) {
  const int64_t rows = p.n * p.c, m = p.n * p.hw;
#pragma omp parallel for schedule(static) if (rows * p.hw > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r % p.c;
    const float mu = mean[c], is = invstd[c], w = weight ? weight[c] : 1.f;
    const float sg = training ? sum_g[c] : 0.f, sgx = training ? sum_gxhat[c] : 0.f;
    const float* gr = g + r * p.hw;
    const float* xr = x + r * p.hw;
    float* dr = dx + r * p.hw;
    for (int64_t i = 0; i < p.hw; ++i)
      dr[i] = batch_norm_grad_input(training, gr[i], (xr[i] - mu) * is, w, is, sg, sgx, m);
  }
}

}  // namespace recon::cpu
