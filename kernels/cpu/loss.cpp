// CPU loss kernels: OpenMP loops over the shared formulas, with sums in
// double over fixed chunks combined in order (deterministic results).
#include "kernels/cpu/loss.hpp"

#include <vector>

#include "kernels/common/loss.hpp"

namespace recon::cpu {

namespace {

// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelMin = 1 << 15;
// Elements per partial sum: fixed, so the summation order is the same on
// every machine and for every thread count.
constexpr int64_t kChunk = 4096;

// sum_{i < n} term(i) in double, chunked and combined in chunk order.
template <class Term>
double chunked_sum(int64_t n, const Term& term) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial((size_t)chunks);
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t k = 0; k < chunks; ++k) {
    const int64_t end = (k + 1) * kChunk < n ? (k + 1) * kChunk : n;
    double acc = 0.0;
    for (int64_t i = k * kChunk; i < end; ++i) acc += (double)term(i);
    partial[(size_t)k] = acc;
  }
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

}  // namespace

// One term per element; parallel over chunks.
void mse_forward(const float* p, const float* t, int64_t n, double scale, float* out) {
  double total = chunked_sum(n, [&](int64_t i) { return squared_error(p[i], t[i]); });
  out[0] = (float)(total * scale);
}

// One thread per element range.
void mse_backward(const float* p, const float* t, const float* g, float scale, float* gp, float* gt, int64_t n) {
  const float gs = g[0] * scale;
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float d = squared_error_grad(p[i], t[i], gs);
    if (gp) gp[i] = d;
    if (gt) gt[i] = -d;
  }
}

int64_t cross_entropy_invalid_target(const float* targets, int64_t n, int64_t c) {
  for (int64_t i = 0; i < n; ++i)
    if (!valid_class_index(targets[i], c)) return i;
  return -1;
}

// One row per iteration (parallel over rows): max, shifted log-sum-exp, NLL.
void cross_entropy_forward(const float* logits, const float* targets, int64_t n, int64_t c, double scale,
                           float* stats, float* out) {
  double total = chunked_sum(n, [&](int64_t i) {
    const float* x = logits + i * c;
    const float m = row_max(x, c);
    const float log_s = row_log_sum_exp_shifted(x, c, m);
    stats[2 * i] = m;
    stats[2 * i + 1] = log_s;
    return nll_from_stats(x[(int64_t)targets[i]], m, log_s);
  });
  out[0] = (float)(total * scale);
}

// One row per iteration (parallel over rows).
void cross_entropy_backward(const float* logits, const float* targets, const float* stats, const float* g,
                            float scale, float* gx, int64_t n, int64_t c) {
  const float gs = g[0] * scale;
#pragma omp parallel for schedule(static) if (n * c > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float* x = logits + i * c;
    float* o = gx + i * c;
    const int64_t t = (int64_t)targets[i];
    for (int64_t j = 0; j < c; ++j) o[j] = cross_entropy_grad(x[j], stats[2 * i], stats[2 * i + 1], j == t, gs);
  }
}

void kl_normal_forward(const float* mu, const float* logvar, int64_t n, double scale, float* out) {
  double total = chunked_sum(n, [&](int64_t i) { return kl_normal_term(mu[i], logvar[i]); });
  out[0] = (float)(total * scale);
}

void kl_normal_backward(const float* mu, const float* logvar, const float* g, float scale, float* gmu, float* glv,
                        int64_t n) {
  const float gs = g[0] * scale;
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    if (gmu) gmu[i] = kl_normal_grad_mu(mu[i], gs);
    if (glv) glv[i] = kl_normal_grad_logvar(logvar[i], gs);
  }
}

}  // namespace recon::cpu
