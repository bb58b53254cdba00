// Launchers of the CUDA loss kernels (kernels/cuda/loss.cu): fused forward
// passes that write a 0-d loss, and their backward passes, with the same
// arguments as the CPU kernels of kernels/cpu/loss.hpp. All pointers are
// device pointers, `g` included (the loss's one-element gradient, read by
// the kernels: nothing is copied to the host). Sums are in double in a fixed
// order (deterministic). Plain C++: included by runtime/ops_loss.cpp.
#pragma once
#include <cstdint>

namespace recon::cuda {

// out[0] = scale * sum_i (p_i - t_i)^2 over n elements.
void mse_forward(const float* p, const float* t, int64_t n, double scale, float* out);
// gp = 2 (p - t) g scale, gt = -gp; either may be null (not needed).
void mse_backward(const float* p, const float* t, const float* g, float scale, float* gp, float* gt, int64_t n);

// logits (n, c), targets (n). Writes out[0] = scale * sum_i -log
// softmax(logits_i)[t_i] and stats (n, 2) = (max, log sum exp(x - max)) per
// row. A target that is not a class index in [0, c) cannot be reported
// without a synchronisation: its row's loss is NaN, so the loss is NaN.
void cross_entropy_forward(const float* logits, const float* targets, int64_t n, int64_t c, double scale,
                           float* stats, float* out);
// gx (n, c) = (softmax - onehot(t)) g scale from the saved stats (NaN on a
// row whose target is invalid).
void cross_entropy_backward(const float* logits, const float* targets, const float* stats, const float* g,
                            float scale, float* gx, int64_t n, int64_t c);

// out[0] = scale * 0.5 sum_i (mu_i^2 + exp(lv_i) - 1 - lv_i) over n elements.
void kl_normal_forward(const float* mu, const float* logvar, int64_t n, double scale, float* out);
// gmu = mu g scale, glv = 0.5 (exp(lv) - 1) g scale; either may be null.
void kl_normal_backward(const float* mu, const float* logvar, const float* g, float scale, float* gmu, float* glv,
                        int64_t n);

}  // namespace recon::cuda
