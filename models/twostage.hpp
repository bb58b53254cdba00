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
// The decoder has a real bottleneck (DESIGN.md, method 1: "a latent far
// smaller than the image, e.g. 32-128 numbers for 28x28"). The frozen
// features are many more numbers than the image (64x7x7 = 3136 for 28x28
// at RotNet width 16, four times the 784 pixels), so a decoder fed them
// directly can learn to copy and reconstructs anomalies too. The decoder
// therefore first squeezes them to a code of `code` numbers (flatten, a
// trainable Linear, no activation), expands the code back to the feature
// shape (Linear, LeakyReLU, reshape), and only then decodes: for each
// stride-2 stage, from the deepest, a transposed conv 3x3 stride 2 padding
// 1 with the output_padding that restores the stage's input size exactly
// (odd sizes such as 7 -> 14 -> 28 or 25 -> 13 -> 7 included), BatchNorm
// and LeakyReLU; then a transposed conv 3x3 stride 1 padding 1 to the image
// channels and a sigmoid. This is the bottleneck of method 1's ConvAE
// (flatten -> Linear to 32 -> Linear -> LeakyReLU -> transposed convs), so
// the two methods differ in their encoders, not in how much may pass.
// code = 0 disables the squeeze (features straight into the transposed
// convs: no bottleneck; kept for comparison). The decoder holds Linear
// layers and transposed convolutions only, never a Conv2d.
// Objective: MSE + ssim_weight * (1 - SSIM) (the SSIM term needs H, W >= 6).
// twostage_step_outputs (end of this file) is the training objective of each
// of method 2's three stages, for the app and for the CUDA-graph tests.
#pragma once
#include <memory>
#include <vector>

#include "models/refiner.hpp"
#include "models/rotnet.hpp"
#include "nn/layers.hpp"
#include "nn/module.hpp"

namespace recon::models {

struct TwoStageConfig {
  float ssim_weight = 1.f;  // lambda of MSE + lambda (1 - SSIM)
  float slope = 0.2f;       // decoder LeakyReLU slope
  int code = 32;            // decoder bottleneck: numbers per image (0: none, features decoded directly)
};

// D: frozen features -> code (N, code) -> reconstruction. Children "squeeze"
// and "expand" (Linear; absent when code == 0), then "0", "1", ... (one
// Sequential per transposed conv, the names the decoder had before it had a
// bottleneck, so with code == 0 its checkpoint names are unchanged).
class TwoStageDecoder : public nn::Module {
 public:
  TwoStageDecoder(const RotNet& rotnet, const TwoStageConfig& cfg, Generator& gen);
  // (N, Cf, hf, wf) -> (N, code); the features themselves when code == 0.
  Tensor code(const Tensor& features);
  // The code -> (N, C, H, W) in [0, 1].
  Tensor decode_code(const Tensor& code);
  Tensor forward(const Tensor& features) override { return decode_code(code(features)); }
  std::string type_name() const override { return "TwoStageDecoder"; }

 private:
  int code_;
  float slope_;
  int64_t feat_c_, feat_h_, feat_w_;
  Tensor decode_features(const Tensor& f);  // the transposed convolutions
  std::shared_ptr<nn::Linear> squeeze_, expand_;
  std::vector<std::shared_ptr<nn::Sequential>> stages_;
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
  // The bottleneck code of x: (N, config().code) (the features when code == 0).
  Tensor code(const Tensor& x) { return decoder_->code(encode(x)); }
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
  std::shared_ptr<TwoStageDecoder> decoder_;
};

// The training objective of method 2's stage 1, 2 or 3 on a batch x
// (N, C, H, W), in device ops only, so that the same function runs eagerly
// and inside a step captured into a CUDA graph (runtime/cuda_graph.hpp; wrap
// it in nn::training_step). Returns one-element tensors, the loss first:
//   stage 1: {cross-entropy of the RotNet (ae.rotnet()) on the rotations of x}
//   stage 2: {ae.loss(x): MSE + ssim_weight (1 - SSIM)} (the decoder)
//   stage 3: {recon + beta kl, recon (per-image SSE), kl (nats per image)} of
//            the refiner on (x, x_hat = ae(x) without a tape), z sampled
// The caller sets the modules' modes (the trained part in training mode).
// rot_labels: stage 1's rotation_labels(N, x.device()), made once beforehand
// (they are built on the host); ignored by stages 2 and 3.
// logits: when not null, stage 1 also hands out its (4N, 4) logits for a host
// accuracy (eager steps only: a captured step refuses tensors that outlive it).
std::vector<Tensor> twostage_step_outputs(TwoStageAE& ae, Refiner& refiner, int stage, const Tensor& x,
                                          const Tensor& rot_labels, Tensor* logits = nullptr);

}  // namespace recon::models
