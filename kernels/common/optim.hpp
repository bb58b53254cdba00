// Optimizer updates for one parameter element, shared by the CPU loop in
// nn/optim.cpp and a fused CUDA kernel: the formulas live here once.
// Host code computes the per-step scalars (bias corrections) and passes them in.
#pragma once
#include <cmath>

#include "kernels/common/hd.hpp"

namespace recon {

// Stochastic gradient descent with momentum (Polyak 1964; Nesterov 1983 in the
// form of Sutskever et al. 2013), PyTorch's torch.optim.SGD semantics:
//   g   <- g + wd * p                       (L2 weight decay)
//   buf <- g                                (first step)
//   buf <- mu * buf + (1 - dampening) * g   (later steps)
//   d   <- nesterov ? g + mu * buf : buf    (d = g when mu = 0)
//   p   <- p - lr * d
RECON_HD void sgd_update(float& p, float g, float& buf, float lr, float momentum, float dampening, float weight_decay,
                         bool nesterov, bool first_step) {
  g += weight_decay * p;
  float d = g;
  if (momentum != 0.f) {
    buf = first_step ? g : momentum * buf + (1.f - dampening) * g;
    d = nesterov ? g + momentum * buf : buf;
  }
  p -= lr * d;
}

// Adam (Kingma & Ba 2015, "Adam: A Method for Stochastic Optimization",
// Algorithm 1) and AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay
// Regularization", Algorithm 2), at step t = 1, 2, ...:
//   decoupled (AdamW): p <- p * (1 - lr * wd)   else (Adam, L2): g <- g + wd * p
//   m <- b1 * m + (1 - b1) * g
//   v <- b2 * v + (1 - b2) * g^2
//   p <- p - lr * (m / bc1) / (sqrt(v / bc2) + eps),   bc1 = 1 - b1^t, bc2 = 1 - b2^t
// (eps outside the square root, as in the paper and in PyTorch.)
RECON_HD void adam_update(float& p, float g, float& m, float& v, float lr, float beta1, float beta2, float eps,
                          float weight_decay, bool decoupled, float bias_correction1, float bias_correction2) {
  if (decoupled) {
    p *= 1.f - lr * weight_decay;
  } else {
    g += weight_decay * p;
  }
  m = beta1 * m + (1.f - beta1) * g;
  v = beta2 * v + (1.f - beta2) * g * g;
  const float m_hat = m / bias_correction1;
  const float v_hat = v / bias_correction2;
  p -= lr * m_hat / (sqrtf(v_hat) + eps);
}

}  // namespace recon
