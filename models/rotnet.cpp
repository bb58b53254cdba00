// RotNet layers, the rotation batch, its loss and the rotation score.
#include "models/rotnet.hpp"

#include <algorithm>
#include <cmath>

#include "kernels/common/loss.hpp"

#include "runtime/autograd.hpp"
#include "runtime/error.hpp"

namespace recon::models {

namespace {

// conv 3x3 (stride s, padding 1) -> BatchNorm -> LeakyReLU.
std::shared_ptr<nn::Sequential> conv_bn_act(int in, int out, int stride, float slope, Generator& gen) {
  return nn::make_sequential(std::make_shared<nn::Conv2d>(in, out, 3, stride, 1, true, gen),
                             std::make_shared<nn::BatchNorm2d>(out), std::make_shared<nn::LeakyReLU>(slope));
}

}  // namespace

RotNet::RotNet(const RotNetConfig& cfg, Generator& gen) : cfg_(cfg) {
  RECON_CHECK(cfg.channels > 0 && cfg.height > 0 && cfg.width > 0 && cfg.base_width > 0 && cfg.max_width > 0 &&
                  cfg.target_size > 0,
              "RotNet: sizes must be positive (channels " << cfg.channels << ", image " << cfg.height << "x"
                                                          << cfg.width << ", base_width " << cfg.base_width
                                                          << ", max_width " << cfg.max_width << ", target_size "
                                                          << cfg.target_size << ")");
  encoder_ = register_module("encoder", std::make_shared<nn::Sequential>());
  int c = std::min(cfg.base_width, cfg.max_width);
  SpatialSize s{cfg.height, cfg.width};
  encoder_->push_back(conv_bn_act(cfg.channels, c, 1, cfg.slope, gen));
  stage_channels_.push_back(c);
  stage_sizes_.push_back(s);
  while (std::max(s.h, s.w) > cfg.target_size) {
    const int next = std::min(2 * c, cfg.max_width);
    encoder_->push_back(conv_bn_act(c, next, 2, cfg.slope, gen));
    c = next;
    s = SpatialSize{(s.h + 1) / 2, (s.w + 1) / 2};  // conv 3x3, stride 2, padding 1
    stage_channels_.push_back(c);
    stage_sizes_.push_back(s);
  }
  fc_ = register_module("fc", std::make_shared<nn::Linear>(c, 4, true, gen));
}

Tensor RotNet::features(const Tensor& x) {
  RECON_CHECK(x.defined() && x.dim() == 4 && x.size(1) == cfg_.channels,
              "RotNet: expected input (N, " << cfg_.channels << ", H, W), got "
                                            << (x.defined() ? shape_str(x.shape()) : std::string("undefined")));
  return (*encoder_)(x);
}

Tensor RotNet::head(const Tensor& f) { return (*fc_)(global_avg_pool(f)); }

Tensor rotation_images(const Tensor& x) {
  RECON_CHECK(x.defined() && x.dim() == 4 && x.size(2) == x.size(3),
              "rotation_images: expected square (N, C, S, S) images, got "
                  << (x.defined() ? shape_str(x.shape()) : std::string("an undefined tensor")));
  const int64_t n = x.size(0), per = x.size(1) * x.size(2) * x.size(3);
  // (N, 1, C S S) per rotation, concatenated along dim 1 -> (N, 4, C S S) -> (4N, C, S, S).
  std::vector<Tensor> turns;
  for (int k = 0; k < 4; ++k) turns.push_back(reshape(rot90(x, k), {n, 1, per}));
  return reshape(concat(turns, 1), {4 * n, x.size(1), x.size(2), x.size(3)});
}

Tensor rotation_labels(int64_t n, Device device) {
  RECON_CHECK(n >= 0, "rotation_labels: n must be >= 0, got " << n);
  std::vector<float> labels((size_t)(4 * n));
  for (int64_t i = 0; i < 4 * n; ++i) labels[(size_t)i] = (float)(i % 4);
  return Tensor::from_vector(labels, {4 * n}).to(device);
}

data::RotationBatch rotation_batch(const Tensor& x) {
  data::RotationBatch b;
  b.images = rotation_images(x);
  b.labels = rotation_labels(x.size(0), x.device());
  return b;
}

RotationLoss rotation_loss(RotNet& net, const Tensor& x, const Tensor& labels) {
  RECON_CHECK(x.defined() && labels.defined() && labels.dim() == 1 && x.dim() >= 1 && labels.size(0) == 4 * x.size(0),
              "rotation_loss: expected labels (4N) = rotation_labels(N) for images (N, C, S, S), got "
                  << (labels.defined() ? shape_str(labels.shape()) : std::string("undefined labels")) << " for "
                  << (x.defined() ? shape_str(x.shape()) : std::string("undefined images")));
  RotationLoss r;
  r.logits = net(rotation_images(x));
  r.labels = labels;
  r.loss = cross_entropy(r.logits, r.labels);
  return r;
}

RotationLoss rotation_loss(RotNet& net, const Tensor& x) {
  RECON_CHECK(x.defined() && x.dim() == 4, "rotation_loss: expected images (N, C, S, S), got "
                                               << (x.defined() ? shape_str(x.shape()) : std::string("undefined")));
  return rotation_loss(net, x, rotation_labels(x.size(0), x.device()));
}

float rotation_accuracy(const Tensor& logits, const Tensor& labels) {
  RECON_CHECK(logits.dim() == 2 && labels.dim() == 1 && labels.size(0) == logits.size(0),
              "rotation_accuracy: expected logits (M, C) and labels (M), got " << shape_str(logits.shape())
                                                                                << " and "
                                                                                << shape_str(labels.shape()));
  const std::vector<float> l = logits.to_vector(), t = labels.to_vector();
  const int64_t m = logits.size(0), c = logits.size(1);
  if (m == 0) return 0.f;
  int64_t right = 0;
  for (int64_t i = 0; i < m; ++i) {
    const float* row = l.data() + i * c;
    right += (int64_t)(std::max_element(row, row + c) - row) == (int64_t)t[(size_t)i];
  }
  return (float)right / (float)m;
}

Tensor rotation_scores(RotNet& net, const Tensor& x) {
  const bool was_training = net.is_training();
  net.eval();
  Tensor logits;
  {
    NoGradGuard ng;
    logits = net(rotation_images(x));
  }
  net.train(was_training);
  const int64_t n = x.size(0);
  const std::vector<float> l = logits.to_vector();
  std::vector<float> scores((size_t)n);
  for (int64_t i = 0; i < n; ++i) {
    double total = 0.0;
    for (int k = 0; k < 4; ++k) {
      const float* row = l.data() + (4 * i + k) * 4;  // stable -log softmax(row)[k] (kernels/common/loss.hpp)
      const float m = row_max(row, 4);
      total += nll_from_stats(row[k], m, row_log_sum_exp_shifted(row, 4, m));
    }
    scores[(size_t)i] = (float)(total / 4.0);
  }
  return Tensor::from_vector(scores, {n});
}

}  // namespace recon::models
