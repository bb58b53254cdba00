// Refiner layers, forward (E_r -> information reduction -> D_r -> clamp)
// and the rate-distortion loss.
#include "models/refiner.hpp"

#include "runtime/error.hpp"

namespace recon::models {

namespace {

ConvTranspose2dOptions up2(int in_h, int in_w, int out_h, int out_w) {
  ConvTranspose2dOptions o;
  o.stride = {2, 2};
  o.padding = {1, 1};
  o.output_padding = {out_h - (2 * in_h - 1), out_w - (2 * in_w - 1)};  // output 2 s - 1 + output_padding
  return o;
}

}  // namespace

Refiner::Refiner(const RefinerConfig& cfg, Generator& gen) : cfg_(cfg), gen_(&gen) {
  RECON_CHECK(cfg.channels > 0 && cfg.height > 0 && cfg.width > 0 && cfg.base_width > 0 && cfg.latent_channels > 0,
              "Refiner: sizes must be positive (channels " << cfg.channels << ", image " << cfg.height << "x"
                                                           << cfg.width << ", base_width " << cfg.base_width
                                                           << ", latent_channels " << cfg.latent_channels << ")");
  RECON_CHECK(cfg.beta >= 0.f, "Refiner: beta must be >= 0, got " << cfg.beta);
  const int c = cfg.channels, b = cfg.base_width, k = cfg.latent_channels;
  const int h1 = (cfg.height + 1) / 2, w1 = (cfg.width + 1) / 2, h2 = (h1 + 1) / 2, w2 = (w1 + 1) / 2;
  const float s = cfg.slope;
  encoder_ = register_module("encoder", nn::make_sequential(
      std::make_shared<nn::Conv2d>(2 * c, b, 3, 1, 1, true, gen), std::make_shared<nn::LeakyReLU>(s),
      std::make_shared<nn::Conv2d>(b, 2 * b, 3, 2, 1, true, gen), std::make_shared<nn::LeakyReLU>(s),
      std::make_shared<nn::Conv2d>(2 * b, 2 * b, 3, 2, 1, true, gen), std::make_shared<nn::LeakyReLU>(s)));
  mu_head_ = register_module("mu", std::make_shared<nn::Conv2d>(2 * b, k, 3, 1, 1, true, gen));
  logvar_head_ = register_module("logvar", std::make_shared<nn::Conv2d>(2 * b, k, 3, 1, 1, true, gen));
  decoder_ = register_module("decoder", nn::make_sequential(
      std::make_shared<nn::Conv2d>(k, 2 * b, 3, 1, 1, true, gen), std::make_shared<nn::LeakyReLU>(s),
      std::make_shared<nn::ConvTranspose2d>(2 * b, b, std::array<int, 2>{3, 3}, up2(h2, w2, h1, w1), true, gen),
      std::make_shared<nn::LeakyReLU>(s),
      std::make_shared<nn::ConvTranspose2d>(b, b, std::array<int, 2>{3, 3}, up2(h1, w1, cfg.height, cfg.width),
                                            true, gen),
      std::make_shared<nn::LeakyReLU>(s), std::make_shared<nn::Conv2d>(b, c, 3, 1, 1, true, gen)));
}

void Refiner::set_beta(float beta) {
  RECON_CHECK(beta >= 0.f, "Refiner: beta must be >= 0, got " << beta);
  cfg_.beta = beta;
}

Refiner::Output Refiner::forward(const Tensor& x, const Tensor& x_hat_in, bool training) {
  auto expect = [&](const Tensor& t, const char* what) {
    RECON_CHECK(t.defined() && t.dim() == 4 && t.size(1) == cfg_.channels && t.size(2) == cfg_.height &&
                    t.size(3) == cfg_.width,
                "Refiner: expected " << what << " (N, " << cfg_.channels << ", " << cfg_.height << ", "
                                     << cfg_.width << "), got "
                                     << (t.defined() ? shape_str(t.shape()) : std::string("undefined")));
  };
  expect(x, "x");
  expect(x_hat_in, "x_hat");
  RECON_CHECK(x.size(0) == x_hat_in.size(0), "Refiner: x and x_hat batch sizes differ: "
                                                  << shape_str(x.shape()) << " and " << shape_str(x_hat_in.shape()));
  const Tensor x_hat = x_hat_in.detach();  // an input: no gradient flows back into stage 2
  Tensor h = (*encoder_)(concat({x, x_hat}, 1));
  Output out;
  out.mu = (*mu_head_)(h);
  out.logvar = (*logvar_head_)(h);
  InfoReduction ir = information_reduction(out.mu, out.logvar, training, *gen_);
  out.kl = ir.kl;
  out.r = (*decoder_)(ir.z);
  out.x_tilde = clamp(add(x_hat, out.r), 0.f, 1.f);
  return out;
}

Refiner::Loss Refiner::loss(const Tensor& x, const Tensor& x_hat, bool training) {
  Output o = forward(x, x_hat, training);
  Loss l;
  l.x_tilde = o.x_tilde;
  l.kl = o.kl;
  // Per-image sum of squared errors, batch mean: the KL's scale (header).
  l.recon = scale(mse_loss(o.x_tilde, x, Reduction::Sum), 1.f / (float)x.size(0));
  l.loss = cfg_.beta > 0.f ? add(l.recon, scale(o.kl, cfg_.beta)) : l.recon;
  return l;
}

}  // namespace recon::models
