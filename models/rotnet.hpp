// RotNet: stage 1 of method 2 (DESIGN.md). A convolutional encoder E and a
// rotation head (global average pool -> linear, 4 classes) that learns which
// of the rotations 0, 90, 180, 270 degrees was applied to a normal image
// (Gidaris et al. 2018). The trained encoder is the frozen feature extractor
// of the two-stage autoencoder (models/twostage.hpp); the head gives a
// fourth anomaly view, the rotation score (Golan & El-Yaniv, "Deep Anomaly
// Detection Using Geometric Transformations", NeurIPS 2018).
//
// Encoder rule (so that 28x28 gray and 128-256 px RGB both work): a stem
// conv 3x3 stride 1 (channels -> base_width), then stride-2 stages (conv 3x3
// stride 2 padding 1, which maps a size s to ceil(s / 2)) added while the
// larger spatial side is above target_size (default 8). Stage i has
// min(base_width * 2^i, max_width) channels. Every conv is followed by
// BatchNorm and LeakyReLU(slope).
//   28x28:   28 -> 14 -> 7       2 stages, channels 32, 64, 128 -> (128, 7, 7)
//   128x128: 128 -> 64 -> 32 -> 16 -> 8   4 stages, 32, 64, 128, 256, 256
//   256x256: 5 stages to 8x8, channels capped at 256
#pragma once
#include <memory>
#include <utility>
#include <vector>

#include "data/transforms.hpp"
#include "nn/layers.hpp"
#include "nn/module.hpp"

namespace recon::models {

struct RotNetConfig {
  int channels = 1;     // image channels
  int height = 28;      // input size (any positive size; rotation batches need square images)
  int width = 28;
  int base_width = 32;  // channels of the stem
  int max_width = 256;  // channel cap of the stages
  int target_size = 8;  // stride-2 stages until max(H, W) <= target_size
  float slope = 0.2f;   // LeakyReLU slope
};

// Spatial size (h, w) of a feature map.
struct SpatialSize {
  int h, w;
};

class RotNet : public nn::Module {
 public:
  explicit RotNet(const RotNetConfig& cfg, Generator& gen = default_generator());
  // E(x): (N, C, H, W) -> (N, feature_channels(), feature_size().h, .w).
  Tensor features(const Tensor& x);
  // The head: (N, Cf, h, w) -> global average pool -> linear -> (N, 4) logits.
  Tensor head(const Tensor& features);
  Tensor forward(const Tensor& x) override { return head(features(x)); }
  std::string type_name() const override { return "RotNet"; }

  const RotNetConfig& config() const { return cfg_; }
  int num_stages() const { return (int)stage_channels_.size() - 1; }
  // Channels after the stem (index 0) and after each stride-2 stage (1..S).
  const std::vector<int>& stage_channels() const { return stage_channels_; }
  // Spatial sizes after the stem (index 0, the input size) and each stage.
  const std::vector<SpatialSize>& stage_sizes() const { return stage_sizes_; }
  int feature_channels() const { return stage_channels_.back(); }
  SpatialSize feature_size() const { return stage_sizes_.back(); }
  nn::Sequential& encoder() { return *encoder_; }

 private:
  RotNetConfig cfg_;
  std::vector<int> stage_channels_;
  std::vector<SpatialSize> stage_sizes_;
  std::shared_ptr<nn::Sequential> encoder_;  // "encoder.0" stem, "encoder.i" stage i
  std::shared_ptr<nn::Linear> fc_;           // "fc"
};

// The rotation batch on x's device (recon::rot90, differentiable): images
// (4N, C, S, S) where row 4i + k is image i turned k quarter turns
// counter-clockwise, labels (4N) = k as floats; the layout of
// data::make_rotation_batch, which does the same on the CPU for loaders.
// x must be square (N, C, S, S). rotation_images and rotation_labels are its
// two halves: the images use device ops only (they may run inside a step
// captured into a CUDA graph, runtime/cuda_graph.hpp), while the labels are
// built on the host, so a captured step takes them made once beforehand.
data::RotationBatch rotation_batch(const Tensor& x);
Tensor rotation_images(const Tensor& x);           // (N, C, S, S) -> (4N, C, S, S)
Tensor rotation_labels(int64_t n, Device device);  // (4n): 0, 1, 2, 3, 0, 1, ...

// One RotNet training objective: the mean cross-entropy over the rotation
// batch of x, with the logits (4N, 4) and labels (4N) for an accuracy.
struct RotationLoss {
  Tensor loss, logits, labels;
};
RotationLoss rotation_loss(RotNet& net, const Tensor& x);
// The same with labels = rotation_labels(N, x.device()) made by the caller
// (device ops only: the objective of a captured step).
RotationLoss rotation_loss(RotNet& net, const Tensor& x, const Tensor& labels);
// Fraction of rows of logits (M, 4) whose argmax equals the label.
float rotation_accuracy(const Tensor& logits, const Tensor& labels);

// The rotation score of each image (Golan & El-Yaniv 2018): the mean over
// k = 0..3 of the cross-entropy -log p(k | rot90(x_i, k)), in nats; higher
// means the network cannot tell the rotations of x_i apart, i.e. x_i looks
// unlike the normal training images. Runs the net in eval mode without a
// tape (its mode is restored). x (N, C, S, S) on any device -> (N) on the CPU.
Tensor rotation_scores(RotNet& net, const Tensor& x);

}  // namespace recon::models
