// The LibTorch twin of method 2 (RotNet, two-stage decoder, refiner, and the
// scoring views) behind a torch-free interface, so that bench/bench_train.cpp
// compiles without LibTorch. Implemented in torch_twin.cpp, which is built
// only when CMake finds Torch (RECON_TORCH_REFERENCE); bench_train then sees
// RECON_HAVE_TORCH_TWIN=1. Weights come from a safetensors file written by
// bench_train (the ReconAD state_dict, names "twostage.rotnet.*",
// "twostage.decoder.*", "refiner.*"), so both sides start identical.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kernels/common/conv.hpp"

namespace recon::reference {

// The architecture (mirrors models::RotNetConfig, TwoStageConfig and
// RefinerConfig) and the optimiser.
struct TwinConfig {
  int channels = 1, height = 28, width = 28;
  int rot_base_width = 32, rot_max_width = 256, rot_target_size = 8;
  float slope = 0.2f;
  float ssim_weight = 1.f;
  int ref_base_width = 32, ref_latent = 4;
  float beta = 0.01f;
  float lr = 1e-3f;
};

// Named float arrays: losses, outputs, per-parameter gradients ("grad.<name>").
using NamedValues = std::vector<std::pair<std::string, std::vector<float>>>;

// The composites alone, without a model (bench_kernels' reference rows, and
// the op_* rows of TorchTwin): SSIM loss, image entropy, local entropy and
// the information reduction, each written once in torch_twin.cpp; and one
// conv2d's three passes (bench_kernels' CPU conv rows).
class TorchOps {
 public:
  // cuda: run on torch's CUDA device 0 (throws when torch has none).
  explicit TorchOps(bool cuda);
  ~TorchOps();
  TorchOps(const TorchOps&) = delete;
  TorchOps& operator=(const TorchOps&) = delete;

  // Images a, b of `shape` (N, C, H, W); mu, logvar of `latent_shape`.
  void set_inputs(const std::vector<float>& a, const std::vector<float>& b, const std::vector<int64_t>& shape,
                  const std::vector<float>& mu, const std::vector<float>& logvar,
                  const std::vector<int64_t>& latent_shape);
  // Values to validate against: "ssim_loss", "ssim_loss.grad_a", "ssim_loss.grad_b", "entropy" (of a),
  // "local_entropy" (of a, k x k windows, `bins` levels), "kl", "kl.grad_mu", "kl.grad_logvar"
  // (eval mode, z = mu: the backward of kl alone).
  NamedValues values(int local_k, int local_bins);
  // Timed: 0 SSIM loss forward + backward, 1 image entropy, 2 information
  // reduction (sampled z) forward + backward of sum(z) + kl, 3 local entropy.
  void step(int which, int local_k = 9, int local_bins = 32);

  // One conv2d of geometry g (groups 1): x (n, c_in, h, w), weight (c_out, c_in, kh, kw), bias (c_out)
  // and an output gradient dy (n, c_out, ho, wo).
  void set_conv(const ConvGeometry& g, const std::vector<float>& x, const std::vector<float>& weight,
                const std::vector<float>& bias, const std::vector<float>& dy);
  // Values to validate against: "forward" (y, bias added; at::conv2d), "backward_data" (dx) and
  // "backward_weight" (dweight), both from at::convolution_backward.
  NamedValues conv_values();
  // Timed: one pass, 0 forward, 1 data gradient, 2 weight gradient (the others masked off).
  void conv_step(int pass);
  void synchronize();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class TorchTwin {
 public:
  // cuda: run on torch's CUDA device 0 (throws when torch has none).
  TorchTwin(const TwinConfig& cfg, const std::string& weights_path, bool cuda);
  ~TorchTwin();
  TorchTwin(const TorchTwin&) = delete;
  TorchTwin& operator=(const TorchTwin&) = delete;

  // Reloads every weight and buffer from the safetensors file.
  void reset();
  // The batch every call below uses: n images, n * C * H * W floats.
  void set_batch(const std::vector<float>& x, int n);

  // Validation passes (no optimiser step): the loss and every trainable
  // parameter's gradient, named as in the checkpoint with a "grad." prefix.
  NamedValues rotnet_grads();   // stage 1, BatchNorm in training mode
  NamedValues decoder_grads();  // stage 2, frozen encoder in eval mode
  NamedValues refiner_grads();  // stage 3 with z = mu (deterministic)
  // Scoring views ("hat.mse", "hat.ssim", "hat.feature", "hat.rotation",
  // "tilde.mse", "tilde.ssim", "tilde.feature", "entropy"), one per image.
  NamedValues score();
  // Composite ops alone: SSIM loss of (a, b), per-image entropy of a, and the
  // information reduction (kl, z in eval mode) of (mu, logvar).
  NamedValues ops(const std::vector<float>& a, const std::vector<float>& b, const std::vector<int64_t>& shape);

  // Timed steps: zero_grad, forward, loss, backward, Adam step (torch::optim).
  void rotnet_step();
  void decoder_step();
  void refiner_step();  // x_hat under no-grad, then the refiner with sampled z
  void score_step();
  // The composites alone, timed: set the inputs once (images a, b of
  // `shape`; mu, logvar of `latent_shape`), then op_step(0) SSIM loss forward
  // + backward, op_step(1) image entropy, op_step(2) information reduction
  // (sampled z) forward + backward of sum(z) + kl.
  void set_op_inputs(const std::vector<float>& a, const std::vector<float>& b, const std::vector<int64_t>& shape,
                     const std::vector<float>& mu, const std::vector<float>& logvar,
                     const std::vector<int64_t>& latent_shape);
  void op_step(int which);
  void synchronize();

  static std::string version();  // "LibTorch 1.13.1, N threads, ..."
  static void set_threads(int n);
  static int threads();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace recon::reference
