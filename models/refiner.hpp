// Refiner: stage 3 of method 2 (DESIGN.md). An encoder E_r sees the image
// and its stage-2 reconstruction side by side, concat(x, x_hat) with 2C
// channels; two conv heads give mu and logvar of a SPATIAL latent
// (N, latent_channels, ceil(H/4), ceil(W/4)); the information-reduction op
// (runtime/ops.hpp information_reduction: z = mu + sigma eps in training,
// z = mu in eval, kl in nats per image) passes z to a decoder D_r that
// outputs a correction r; the refined image is x_tilde = clamp(x_hat + r, 0, 1).
//
// Loss scale (read this before choosing beta): loss = recon + beta * kl with
//   recon = sum over the pixels of an image of (x_tilde - x)^2, averaged over
//           the batch (a per-image SUM of squared errors, NOT a per-pixel mean),
//   kl    = KL(N(mu, sigma^2) || N(0, I)) summed over the latent of an image,
//           averaged over the batch (nats per image).
// Both terms are per-image sums, so beta is in "nats per unit of summed
// squared error" and does not silently change with the image or latent size.
// (A PyTorch twin that used a per-pixel mean, ~0.05, against a KL summed
// over 256 latent values collapsed to KL ~ 0.02 nats per image: the
// bottleneck passed nothing.) beta = 0 lets everything through; larger beta
// passes less information (lower rate).
//
// E_r: conv 3x3 (2C -> b), conv 3x3 stride 2 (b -> 2b), conv 3x3 stride 2
// (2b -> 2b), each with LeakyReLU; heads conv 3x3 (2b -> k) for mu and for
// logvar. D_r: conv 3x3 (k -> 2b), two transposed convs 3x3 stride 2 back to
// (H, W) (2b -> b -> b; output_padding restores odd sizes), each with
// LeakyReLU, and a conv 3x3 (b -> C) with no activation (r may be negative).
// No BatchNorm: the refiner sees small batches and its output is a residual.
// x_hat is treated as an input that needs no gradient (detached): nothing
// flows back into stage 2.
#pragma once
#include <memory>

#include "nn/layers.hpp"
#include "nn/module.hpp"

namespace recon::models {

struct RefinerConfig {
  int channels = 1;         // image channels C
  int height = 28;          // image size (any positive size)
  int width = 28;
  int base_width = 32;      // b
  int latent_channels = 4;  // k, the bottleneck width: channels of the spatial latent
  float beta = 1.f;         // KL weight (see the header comment for its units)
  float slope = 0.2f;       // LeakyReLU slope
};

class Refiner : public nn::Module {
 public:
  // `gen` draws the initial weights and, in training, the bottleneck noise
  // (it must outlive the refiner).
  explicit Refiner(const RefinerConfig& cfg, Generator& gen = default_generator());

  struct Output {
    Tensor x_tilde;     // (N, C, H, W) = clamp(x_hat + r, 0, 1)
    Tensor r;           // (N, C, H, W) the correction
    Tensor kl;          // 0-d, nats per image
    Tensor mu, logvar;  // (N, k, ceil(H/4), ceil(W/4))
  };
  // training: z sampled (noise from the generator); otherwise z = mu.
  Output forward(const Tensor& x, const Tensor& x_hat, bool training);
  Output forward(const Tensor& x, const Tensor& x_hat) { return forward(x, x_hat, is_training()); }
  std::string type_name() const override { return "Refiner"; }

  struct Loss {
    Tensor loss;   // 0-d: recon + beta kl
    Tensor recon;  // 0-d: per-image sum of squared errors, batch mean
    Tensor kl;     // 0-d: nats per image
    Tensor x_tilde;
  };
  Loss loss(const Tensor& x, const Tensor& x_hat, bool training = true);
  // The rate: the KL in nats per image of an output.
  static float rate(const Output& out) { return out.kl.item(); }

  const RefinerConfig& config() const { return cfg_; }
  void set_beta(float beta);

 private:
  RefinerConfig cfg_;
  Generator* gen_;
  std::shared_ptr<nn::Sequential> encoder_, decoder_;
  std::shared_ptr<nn::Conv2d> mu_head_, logvar_head_;
};

}  // namespace recon::models
