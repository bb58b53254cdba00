// Loss and dropout formulas shared by the CPU and CUDA backends: the row
// math of a numerically stable log-softmax (max, shifted log-sum-exp), the
// squared error, the Gaussian KL term with its derivatives, and the dropout
// keep decision drawn from the Philox stream.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common/hd.hpp"
#include "kernels/common/philox.hpp"

namespace recon {

// ---- softmax / log-softmax over one row of C logits ------------------------
// A row's log-softmax is x_j - m - log(s), m = max_j x_j, s = sum_j exp(x_j - m).
// Subtracting m keeps every exp in (0, 1], so logits of any size stay finite;
// keeping m and log(s) apart (rather than lse = m + log(s)) keeps x_j - m
// exact when |m| is large.

RECON_HD float row_max(const float* x, int64_t c) {
  float m = x[0];
  for (int64_t j = 1; j < c; ++j) m = fmaxf(m, x[j]);
  return m;
}

// One term of s = sum_j exp(x_j - m), returned in double for the sum.
RECON_HD double exp_shifted_term(float x, float m) { return (double)expf(x - m); }
// log_s from the sum of the terms (>= 0 since the max's term is 1). The math
// functions here are spelled ::log etc.: inside namespace recon an unqualified
// log would find recon::log(const Tensor&) when runtime/ops.hpp came first.
RECON_HD float log_of_sum(double s) { return (float)::log(s); }

// log(sum_j exp(x_j - m)), accumulated in double in index order (the CPU's
// row loop; a CUDA warp sums the same terms in a fixed tree).
RECON_HD float row_log_sum_exp_shifted(const float* x, int64_t c, float m) {
  double s = 0.0;
  for (int64_t j = 0; j < c; ++j) s += exp_shifted_term(x[j], m);
  return log_of_sum(s);
}

// softmax_j from the row statistics (m, log_s).
RECON_HD float softmax_from_stats(float x, float m, float log_s) { return expf((x - m) - log_s); }

// -log softmax_t = (m - x_t) + log_s; in double so that the sum is exact for huge logits.
RECON_HD double nll_from_stats(float x_t, float m, float log_s) { return ((double)m - (double)x_t) + (double)log_s; }

// d(-log softmax_t)/dx_j * g = (softmax_j - [j == t]) * g.
RECON_HD float cross_entropy_grad(float x, float m, float log_s, bool is_target, float g) {
  return (softmax_from_stats(x, m, log_s) - (is_target ? 1.f : 0.f)) * g;
}

// True when a target stored as a float is an integral class index in [0, c).
// NaN fails every comparison and so is rejected.
RECON_HD bool valid_class_index(float t, int64_t c) { return t >= 0.f && t < (float)c && t == floorf(t); }

// ---- squared error -------------------------------------------------------------
RECON_HD float squared_error(float p, float t) {
  float d = p - t;
  return d * d;
}
// d/dp of (p - t)^2 times g (the target's gradient is its negative).
RECON_HD float squared_error_grad(float p, float t, float g) { return 2.f * (p - t) * g; }

// ---- KL(N(mu, exp(logvar)) || N(0, 1)), one element ---------------------------
RECON_HD float kl_normal_term(float mu, float logvar) { return 0.5f * (mu * mu + expf(logvar) - 1.f - logvar); }
RECON_HD float kl_normal_grad_mu(float mu, float g) { return mu * g; }
RECON_HD float kl_normal_grad_logvar(float logvar, float g) { return 0.5f * (expf(logvar) - 1.f) * g; }

// ---- inverted dropout ------------------------------------------------------------
// Element `index` of a draw at (seed, offset) is kept when its uniform number
// is >= p, i.e. with probability 1 - p. Forward and backward regenerate the
// same decision, so no mask is stored.
RECON_HD bool dropout_keep(uint64_t seed, uint64_t offset, uint64_t index, float p) {
  return philox_uniform(seed, offset, index) >= p;
}
// The scale of kept elements: 1 / (1 - p); p == 1 keeps nothing (scale unused).
RECON_HD float dropout_scale(float p) { return p < 1.f ? 1.f / (1.f - p) : 0.f; }

}  // namespace recon
