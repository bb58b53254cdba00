// ConvAE layers and forward passes.
#include "models/conv_ae.hpp"

#include "runtime/error.hpp"

namespace recon::models {

// LeakyReLU slope used throughout (as in DCGAN-style autoencoders).
constexpr float kSlope = 0.2f;

ConvAE::ConvAE(const ConvAEConfig& cfg, Generator& gen) : cfg_(cfg) {
  RECON_CHECK(cfg.height % 4 == 0 && cfg.width % 4 == 0 && cfg.height > 0 && cfg.width > 0,
              "ConvAE: image size " << cfg.height << "x" << cfg.width << " must be a positive multiple of 4");
  RECON_CHECK(cfg.latent > 0 && cfg.width1 > 0 && cfg.channels > 0, "ConvAE: sizes must be positive");
  const int64_t c1 = cfg.width1, c2 = 2 * cfg.width1;
  const int64_t flat = c2 * (cfg.height / 4) * (cfg.width / 4);
  encoder_ = register_module("encoder", std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      std::make_shared<nn::Conv2d>(cfg.channels, c1, 3, 2, 1, true, gen),
      std::make_shared<nn::LeakyReLU>(kSlope),
      std::make_shared<nn::Conv2d>(c1, c2, 3, 2, 1, true, gen),
      std::make_shared<nn::LeakyReLU>(kSlope),
      std::make_shared<nn::Flatten>(1)}));
  to_latent_ = register_module("to_latent", std::make_shared<nn::Linear>(flat, cfg.latent, true, gen));
  from_latent_ = register_module("from_latent", std::make_shared<nn::Linear>(cfg.latent, flat, true, gen));
  decoder_ = register_module("decoder", std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      std::make_shared<nn::ConvTranspose2d>(c2, c1, 3, 2, 1, 1, true, gen),
      std::make_shared<nn::LeakyReLU>(kSlope),
      std::make_shared<nn::ConvTranspose2d>(c1, cfg.channels, 3, 2, 1, 1, true, gen),
      std::make_shared<nn::Sigmoid>()}));
}

Tensor ConvAE::features(const Tensor& x) {
  RECON_CHECK(x.dim() == 4 && x.size(1) == cfg_.channels && x.size(2) == cfg_.height && x.size(3) == cfg_.width,
              "ConvAE: expected input (N, " << cfg_.channels << ", " << cfg_.height << ", " << cfg_.width
                                            << "), got " << shape_str(x.shape()));
  // Every encoder layer but the trailing Flatten.
  Tensor h = x;
  for (size_t i = 0; i + 1 < encoder_->size(); ++i) h = (*encoder_)[i](h);
  return h;
}

Tensor ConvAE::encode(const Tensor& x) { return (*to_latent_)(flatten(features(x), 1)); }

Tensor ConvAE::decode(const Tensor& z) {
  Tensor h = leaky_relu((*from_latent_)(z), kSlope);
  h = reshape(h, {z.size(0), 2 * (int64_t)cfg_.width1, cfg_.height / 4, cfg_.width / 4});
  return (*decoder_)(h);
}

}  // namespace recon::models
