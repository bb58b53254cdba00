// ConvAE: the convolutional autoencoder of method 1 (DESIGN.md). Two
// stride-2 convolutions and a linear layer squeeze an image into a small
// latent vector (a real bottleneck: 32 numbers for a 28x28 image by
// default, so the network cannot simply copy its input); a mirror decoder
// with transposed convolutions and a sigmoid brings it back to [0, 1].
#pragma once
#include <memory>

#include "nn/layers.hpp"
#include "nn/module.hpp"

namespace recon::models {

struct ConvAEConfig {
  int channels = 1;    // image channels
  int height = 28;     // input size; must be divisible by 4
  int width = 28;
  int width1 = 32;     // channels after the first convolution (the second has twice as many)
  int latent = 32;     // bottleneck size
};

class ConvAE : public nn::Module {
 public:
  explicit ConvAE(const ConvAEConfig& cfg, Generator& gen = default_generator());
  // The last convolutional feature map of the encoder, before the flatten
  // and the linear layer: (N, C, H, W) -> (N, 2 width1, H/4, W/4). Method 1's
  // feature view pools it globally (models/multiview).
  Tensor features(const Tensor& x);
  Tensor encode(const Tensor& x);  // (N, C, H, W) -> (N, latent)
  Tensor decode(const Tensor& z);  // (N, latent) -> (N, C, H, W) in [0, 1]
  Tensor forward(const Tensor& x) override { return decode(encode(x)); }
  std::string type_name() const override { return "ConvAE"; }
  const ConvAEConfig& config() const { return cfg_; }

 private:
  ConvAEConfig cfg_;
  std::shared_ptr<nn::Sequential> encoder_, decoder_;
  std::shared_ptr<nn::Linear> to_latent_, from_latent_;
};

}  // namespace recon::models
