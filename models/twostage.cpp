// TwoStageAE: the frozen RotNet encoder, the mirrored decoder and the
// stage-2 objective.
#include "models/twostage.hpp"

#include "runtime/autograd.hpp"
#include "runtime/error.hpp"

namespace recon::models {

TwoStageAE::TwoStageAE(std::shared_ptr<RotNet> rotnet, const TwoStageConfig& cfg, Generator& gen)
    : cfg_(cfg), rotnet_(std::move(rotnet)) {
  RECON_CHECK(rotnet_ != nullptr, "TwoStageAE: needs a RotNet");
  RECON_CHECK(cfg.ssim_weight >= 0.f, "TwoStageAE: ssim_weight must be >= 0, got " << cfg.ssim_weight);
  register_module("rotnet", rotnet_);
  rotnet_->freeze();
  rotnet_->eval();
  const std::vector<int>& ch = rotnet_->stage_channels();
  const std::vector<SpatialSize>& sz = rotnet_->stage_sizes();
  decoder_ = register_module("decoder", std::make_shared<nn::Sequential>());
  for (int i = rotnet_->num_stages(); i >= 1; --i) {
    ConvTranspose2dOptions opt;
    opt.stride = {2, 2};
    opt.padding = {1, 1};
    // Output 2 s - 1 + output_padding must equal the stage's input size.
    opt.output_padding = {sz[i - 1].h - (2 * sz[i].h - 1), sz[i - 1].w - (2 * sz[i].w - 1)};
    decoder_->push_back(nn::make_sequential(
        std::make_shared<nn::ConvTranspose2d>(ch[i], ch[i - 1], std::array<int, 2>{3, 3}, opt, true, gen),
        std::make_shared<nn::BatchNorm2d>(ch[i - 1]), std::make_shared<nn::LeakyReLU>(cfg.slope)));
  }
  decoder_->push_back(nn::make_sequential(
      std::make_shared<nn::ConvTranspose2d>(ch[0], rotnet_->config().channels, 3, 1, 1, 0, true, gen),
      std::make_shared<nn::Sigmoid>()));
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

}  // namespace recon::models
