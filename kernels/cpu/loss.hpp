// CPU loss kernels (formulas in kernels/common/loss.hpp): fused forward
// passes that write the reduced loss, and their backward passes. Sums
// accumulate in double in fixed chunks, so a loss does not depend on the
// number of threads (bitwise-deterministic). `g` points at the one-element
// gradient of the loss and `scale` is the reduction's factor (1 or 1/count).
#pragma once
#include <cstdint>

namespace recon::cpu {

// out[0] = scale * sum_i (p_i - t_i)^2 over n elements.
void mse_forward(const float* p, const float* t, int64_t n, double scale, float* out);
// gp = 2 (p - t) g scale, gt = -gp; either may be null (not needed).
void mse_backward(const float* p, const float* t, const float* g, float scale, float* gp, float* gt, int64_t n);

// The first row whose target is not an integral class index in [0, c), or -1.
int64_t cross_entropy_invalid_target(const float* targets, int64_t n, int64_t c);
// logits (n, c), targets (n) valid class indices. Writes out[0] = scale *
// sum_i -log softmax(logits_i)[t_i] and, per row, stats (n, 2) = (max,
// log sum exp(x - max)) for the backward pass.
void cross_entropy_forward(const float* logits, const float* targets, int64_t n, int64_t c, double scale,
                           float* stats, float* out);
// gx (n, c) = (softmax - onehot(t)) g scale, from the saved stats.
void cross_entropy_backward(const float* logits, const float* targets, const float* stats, const float* g,
                            float scale, float* gx, int64_t n, int64_t c);

// out[0] = scale * 0.5 sum_i (mu_i^2 + exp(lv_i) - 1 - lv_i) over n elements.
void kl_normal_forward(const float* mu, const float* logvar, int64_t n, double scale, float* out);
// gmu = mu g scale, glv = 0.5 (exp(lv) - 1) g scale; either may be null.
void kl_normal_backward(const float* mu, const float* logvar, const float* g, float scale, float* gmu, float* glv,
                        int64_t n);

}  // namespace recon::cpu
