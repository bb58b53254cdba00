// TwoStageAE: the frozen RotNet encoder, the decoder with its bottleneck
// (TwoStageDecoder), the stage-2 objective, and the step objective of all
// three stages of method 2.
#include "models/twostage.hpp"

#include <string>

#include "runtime/autograd.hpp"
#include "runtime/error.hpp"
#include "runtime/ops.hpp"

namespace recon::models {

TwoStageDecoder::TwoStageDecoder(const RotNet& rotnet, const TwoStageConfig& cfg, Generator& gen)
    : code_(cfg.code),
      slope_(cfg.slope),
      feat_c_(rotnet.feature_channels()),
      feat_h_(rotnet.feature_size().h),
      feat_w_(rotnet.feature_size().w) {
  RECON_CHECK(cfg.code >= 0, "TwoStageDecoder: code must be >= 0 (0: no bottleneck), got " << cfg.code);
  const int64_t flat = feat_c_ * feat_h_ * feat_w_;
  if (code_ > 0) {
    squeeze_ = register_module("squeeze", std::make_shared<nn::Linear>(flat, code_, true, gen));
    expand_ = register_module("expand", std::make_shared<nn::Linear>(code_, flat, true, gen));
  }
  const std::vector<int>& ch = rotnet.stage_channels();
  const std::vector<SpatialSize>& sz = rotnet.stage_sizes();
  for (int i = rotnet.num_stages(); i >= 1; --i) {
    ConvTranspose2dOptions opt;
    opt.stride = {2, 2};
    opt.padding = {1, 1};
    // Output 2 s - 1 + output_padding must equal the stage's input size.
    opt.output_padding = {sz[i - 1].h - (2 * sz[i].h - 1), sz[i - 1].w - (2 * sz[i].w - 1)};
    stages_.push_back(nn::make_sequential(
        std::make_shared<nn::ConvTranspose2d>(ch[i], ch[i - 1], std::array<int, 2>{3, 3}, opt, true, gen),
        std::make_shared<nn::BatchNorm2d>(ch[i - 1]), std::make_shared<nn::LeakyReLU>(cfg.slope)));
  }
  stages_.push_back(nn::make_sequential(
      std::make_shared<nn::ConvTranspose2d>(ch[0], rotnet.config().channels, 3, 1, 1, 0, true, gen),
      std::make_shared<nn::Sigmoid>()));
  for (size_t i = 0; i < stages_.size(); ++i) register_module(std::to_string(i), stages_[i]);
}

Tensor TwoStageDecoder::code(const Tensor& f) {
  if (code_ == 0) return f;
  return (*squeeze_)(flatten(f, 1));  // linear: no activation on the code, as in ConvAE
}

Tensor TwoStageDecoder::decode_code(const Tensor& z) {
  if (code_ == 0) return decode_features(z);
  RECON_CHECK(z.defined() && z.dim() == 2 && z.size(1) == code_,
              "TwoStageDecoder: expected a code (N, " << code_ << "), got "
                                                     << (z.defined() ? shape_str(z.shape()) : std::string("undefined")));
  Tensor h = leaky_relu((*expand_)(z), slope_);
  return decode_features(reshape(h, {z.size(0), feat_c_, feat_h_, feat_w_}));
}

Tensor TwoStageDecoder::decode_features(const Tensor& f) {
  Tensor h = f;
  for (const auto& stage : stages_) h = (*stage)(h);
  return h;
}

TwoStageAE::TwoStageAE(std::shared_ptr<RotNet> rotnet, const TwoStageConfig& cfg, Generator& gen)
    : cfg_(cfg), rotnet_(std::move(rotnet)) {
  RECON_CHECK(rotnet_ != nullptr, "TwoStageAE: needs a RotNet");
  RECON_CHECK(cfg.ssim_weight >= 0.f, "TwoStageAE: ssim_weight must be >= 0, got " << cfg.ssim_weight);
  register_module("rotnet", rotnet_);
  rotnet_->freeze();
  rotnet_->eval();
  decoder_ = register_module("decoder", std::make_shared<TwoStageDecoder>(*rotnet_, cfg, gen));
}

void TwoStageAE::train(bool on) {
  nn::Module::train(on);
  rotnet_->train(false);  // BatchNorm of the frozen encoder: running statistics, never updated
}

Tensor TwoStageAE::encode(const Tensor& x) {
  NoGradGuard ng;
  return rotnet_->features(x);
}

Tensor TwoStageAE::decode(const Tensor& f) {
  RECON_CHECK(f.defined() && f.dim() == 4 && f.size(1) == rotnet_->feature_channels() &&
                  f.size(2) == rotnet_->feature_size().h && f.size(3) == rotnet_->feature_size().w,
              "TwoStageAE: expected features (N, " << rotnet_->feature_channels() << ", "
                                                   << rotnet_->feature_size().h << ", " << rotnet_->feature_size().w
                                                   << "), got "
                                                   << (f.defined() ? shape_str(f.shape()) : std::string("undefined")));
  return (*decoder_)(f);
}

TwoStageAE::Loss TwoStageAE::loss(const Tensor& x) {
  const RotNetConfig& rc = rotnet_->config();
  RECON_CHECK(x.defined() && x.dim() == 4 && x.size(1) == rc.channels && x.size(2) == rc.height &&
                  x.size(3) == rc.width,
              "TwoStageAE::loss: expected images (N, " << rc.channels << ", " << rc.height << ", " << rc.width
                                                        << "), got "
                                                        << (x.defined() ? shape_str(x.shape()) : std::string("undefined")));
  Loss l;
  l.x_hat = forward(x);
  l.loss = mse_loss(l.x_hat, x);
  if (cfg_.ssim_weight > 0.f) l.loss = add(l.loss, scale(ssim_loss(l.x_hat, x), cfg_.ssim_weight));
  return l;
}

std::vector<Tensor> twostage_step_outputs(TwoStageAE& ae, Refiner& refiner, int stage, const Tensor& x,
                                          const Tensor& rot_labels, Tensor* logits) {
  RECON_CHECK(stage >= 1 && stage <= 3, "twostage_step_outputs: stage must be 1, 2 or 3, got " << stage);
  if (stage == 1) {
    RotationLoss l = rotation_loss(ae.rotnet(), x, rot_labels);
    if (logits) *logits = l.logits;
    return {l.loss};
  }
  if (stage == 2) return {ae.loss(x).loss};
  Tensor x_hat;
  {
    NoGradGuard ng;
    x_hat = ae.forward(x);
  }
  Refiner::Loss l = refiner.loss(x, x_hat, true);
  return {l.loss, l.recon, l.kl};
}

}  // namespace recon::models
