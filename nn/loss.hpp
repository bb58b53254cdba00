// Loss modules: thin wrappers over the fused loss ops of runtime/ops.hpp that
// remember their reduction (as torch.nn.MSELoss and friends), and the SSIM loss.
#pragma once
#include "runtime/ops.hpp"

namespace recon::nn {

// mean((pred - target)^2), or the sum. pred and target of the same shape.
class MSELoss {
 public:
  explicit MSELoss(Reduction r = Reduction::Mean) : r_(r) {}
  Tensor operator()(const Tensor& pred, const Tensor& target) const { return mse_loss(pred, target, r_); }

 private:
  Reduction r_;
};

// logits (N, C), targets (N) class indices stored as floats.
class CrossEntropyLoss {
 public:
  explicit CrossEntropyLoss(Reduction r = Reduction::Mean) : r_(r) {}
  Tensor operator()(const Tensor& logits, const Tensor& targets) const { return cross_entropy(logits, targets, r_); }

 private:
  Reduction r_;
};

// KL(N(mu, exp(logvar)) || N(0, I)): the sum, or the sum over the batch size
// (Mean), the VIB term of the refiner.
class KLNormalLoss {
 public:
  explicit KLNormalLoss(Reduction r = Reduction::Sum) : r_(r) {}
  Tensor operator()(const Tensor& mu, const Tensor& logvar) const { return kl_normal(mu, logvar, r_); }

 private:
  Reduction r_;
};

// 1 - mean(SSIM map) between pred and target (N, C, H, W), values in [0, 1],
// H and W >= 6 (see ssim_map in runtime/ops.hpp): method 1's local view.
class SSIMLoss {
 public:
  Tensor operator()(const Tensor& pred, const Tensor& target) const { return ssim_loss(pred, target); }
};

}  // namespace recon::nn
