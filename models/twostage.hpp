// TwoStageAE: stage 2 of method 2 (DESIGN.md). The encoder of a trained
// RotNet, frozen, and a decoder that learns to reconstruct x from E(x).
//
// Frozen means: every RotNet parameter has requires_grad = false; its
// BatchNorm layers stay in eval mode (running statistics used, never
// updated) even when the model is set to train, because train() is
// overridden to pin the RotNet in eval; and the forward through it runs
// under NoGradGuard, so no tape is recorded and no weight- or
// input-gradient kernel runs for it (DESIGN.md decision 4). Passing all of
// model.parameters() to an optimizer is therefore harmless: the frozen ones
// never get a gradient and are skipped.
//
// The decoder mirrors the encoder's stages: for each stride-2 stage, from
// the deepest, a transposed conv 3x3 stride 2 padding 1 with the
// output_padding that restores the stage's input size exactly (odd sizes
// such as 7 -> 14 -> 28 or 25 -> 13 -> 7 included), BatchNorm and
// LeakyReLU; then a transposed conv 3x3 stride 1 padding 1 to the image
// channels and a sigmoid. It holds transposed convolutions only.
// Objective: MSE + ssim_weight * (1 - SSIM) (the SSIM term needs H, W >= 6).
#pragma once
#include <memory>
#include <vector>

#include "models/rotnet.hpp"
#include "nn/layers.hpp"
#include "nn/module.hpp"

namespace recon::models {

struct TwoStageConfig {
  float ssim_weight = 1.f;  // lambda of MSE + lambda (1 - SSIM)
  float slope = 0.2f;       // decoder LeakyReLU slope
};

class TwoStageAE : public nn::Module {
 public:
  // Takes a trained RotNet (child "rotnet"; its head comes along for the
  // rotation score) and freezes it; the decoder is child "decoder".
  TwoStageAE(std::shared_ptr<RotNet> rotnet, const TwoStageConfig& cfg = {}, Generator& gen = default_generator());
  // Sets the decoder's mode; the RotNet stays in eval.
  void train(bool on = true) override;
  // E(x) under NoGradGuard: a plain forward, no tape, requires no grad.
  Tensor encode(const Tensor& x);
  Tensor decode(const Tensor& features);  // -> (N, C, H, W) in [0, 1]
  Tensor forward(const Tensor& x) override { return decode(encode(x)); }
  std::string type_name() const override { return "TwoStageAE"; }

  struct Loss {
    Tensor loss;   // 0-d: mse + ssim_weight * (1 - ssim)
    Tensor x_hat;  // the reconstruction
  };
  Loss loss(const Tensor& x);

  RotNet& rotnet() { return *rotnet_; }
  std::vector<Tensor> decoder_parameters() const { return decoder_->parameters(); }
  const TwoStageConfig& config() const { return cfg_; }

 private:
  TwoStageConfig cfg_;
  std::shared_ptr<RotNet> rotnet_;
  std::shared_ptr<nn::Sequential> decoder_;
};

}  // namespace recon::models
