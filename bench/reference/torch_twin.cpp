// LibTorch twin of method 2 (see torch_twin.hpp): the RotNet encoder and
// head, the two-stage decoder, the refiner, SSIM, image entropy and the
// information reduction written with LibTorch's functional ops (at::conv2d,
// at::batch_norm, ...) over named weight tensors loaded from ReconAD's
// safetensors checkpoint through ReconAD's own reader (LibTorch 1.13 has no
// safetensors reader), and torch::optim::Adam for the steps.
#include "bench/reference/torch_twin.hpp"

#include <torch/torch.h>

#include <array>
#include <cmath>
#include <map>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include "nn/safetensors.hpp"

namespace recon::reference {

namespace {

constexpr int kSsimRadius = 5;
constexpr double kSsimSigma = 1.5, kC1 = 0.01 * 0.01, kC2 = 0.03 * 0.03;

std::vector<float> to_floats(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

// The SSIM map (Wang et al. 2004; runtime/ops.hpp): reflect pad 5, separable
// 11-tap Gaussian (sigma 1.5) over the five moments in one grouped conv.
torch::Tensor ssim_map(const torch::Tensor& x, const torch::Tensor& y) {
  const int64_t c = x.size(1);
  torch::Tensor d = torch::arange(-kSsimRadius, kSsimRadius + 1, x.options().dtype(torch::kDouble));
  torch::Tensor g = torch::exp(-d * d / (2 * kSsimSigma * kSsimSigma));
  g = (g / g.sum()).to(x.scalar_type());
  const int64_t groups = 5 * c;
  torch::Tensor gh = g.view({1, 1, 1, 2 * kSsimRadius + 1}).expand({groups, 1, 1, 2 * kSsimRadius + 1}).contiguous();
  torch::Tensor gv = g.view({1, 1, 2 * kSsimRadius + 1, 1}).expand({groups, 1, 2 * kSsimRadius + 1, 1}).contiguous();
  torch::Tensor s = torch::cat({x, y, x * x, y * y, x * y}, 1);
  s = torch::reflection_pad2d(s, {kSsimRadius, kSsimRadius, kSsimRadius, kSsimRadius});
  const std::vector<int64_t> one{1, 1}, zero{0, 0};
  const c10::optional<torch::Tensor> no_bias;
  s = at::conv2d(at::conv2d(s, gh, no_bias, one, at::IntArrayRef(zero), one, groups), gv, no_bias, one,
                 at::IntArrayRef(zero), one, groups);
  std::vector<torch::Tensor> m = s.split(c, 1);
  const torch::Tensor mx2 = m[0] * m[0], my2 = m[1] * m[1], mxy = m[0] * m[1];
  return ((2 * mxy + kC1) * (2 * (m[4] - mxy) + kC2)) / ((mx2 + my2 + kC1) * (m[2] - mx2 + m[3] - my2 + kC2));
}

torch::Tensor ssim_loss(const torch::Tensor& x, const torch::Tensor& y) { return 1 - ssim_map(x, y).mean(); }

// Entropy in bits of each image's 256-bin histogram (bins min(floor(256 v), 255), clamped at 0).
torch::Tensor image_entropy(const torch::Tensor& x) {
  const int64_t n = x.size(0);
  torch::Tensor bins = torch::clamp(torch::floor(x.reshape({n, -1}) * 256), 0, 255).to(torch::kLong);
  torch::Tensor hist = torch::zeros({n, 256}, x.options()).scatter_add_(1, bins, torch::ones_like(bins, x.options()));
  torch::Tensor p = hist / (double)bins.size(1);
  return -torch::where(p > 0, p * torch::log2(p), torch::zeros_like(p)).sum(1);
}

// Entropy in bits of the k x k window around each pixel (reflect padding) of
// the gray image (channel mean), `bins` levels: one-hot planes of the bins,
// box-filtered by avg_pool2d into the window's shares p, then -sum p log2 p.
torch::Tensor local_entropy(const torch::Tensor& x, int k, int bins) {
  const torch::Tensor gray = x.mean(1, /*keepdim=*/true);
  const torch::Tensor b = torch::clamp(torch::floor(gray * bins), 0, bins - 1).to(torch::kLong);
  torch::Tensor onehot = torch::zeros({x.size(0), bins, x.size(2), x.size(3)}, x.options()).scatter_(1, b, 1.0);
  const int r = k / 2;
  onehot = torch::reflection_pad2d(onehot, {r, r, r, r});
  const torch::Tensor p = torch::avg_pool2d(onehot, {k, k}, {1, 1});
  return -torch::where(p > 0, p * torch::log2(p), torch::zeros_like(p)).sum(1, /*keepdim=*/true);
}

// z = mu + exp(logvar / 2) eps (training) or mu; kl in nats per image.
std::pair<torch::Tensor, torch::Tensor> information_reduction(const torch::Tensor& mu, const torch::Tensor& logvar,
                                                              bool training) {
  torch::Tensor z = training ? mu + torch::exp(0.5 * logvar) * torch::randn_like(mu) : mu;
  torch::Tensor kl = 0.5 * (mu * mu + torch::exp(logvar) - 1 - logvar).sum() / (double)mu.size(0);
  return {z, kl};
}

// The rotation batch: row 4i + k is image i turned k quarter turns counter-clockwise.
std::pair<torch::Tensor, torch::Tensor> rotation_batch(const torch::Tensor& x) {
  const int64_t n = x.size(0), per = x.size(1) * x.size(2) * x.size(3);
  std::vector<torch::Tensor> turns;
  for (int k = 0; k < 4; ++k) turns.push_back(torch::rot90(x, k, {2, 3}).reshape({n, 1, per}));
  torch::Tensor images = torch::cat(turns, 1).reshape({4 * n, x.size(1), x.size(2), x.size(3)});
  torch::Tensor labels = torch::arange(4 * n, x.options().dtype(torch::kLong)).remainder(4);
  return {images, labels};
}

}  // namespace

struct TorchOps::Impl {
  torch::Device device{torch::kCPU};
  torch::Tensor a, b, mu, logvar;
  torch::Tensor conv_x, conv_w, conv_b, conv_dy;        // set_conv's tensors
  std::vector<int64_t> conv_stride, conv_pad, conv_dil;  // (h, w) pairs

  torch::Tensor conv_forward() const {
    return at::conv2d(conv_x, conv_w, conv_b, conv_stride, conv_pad, conv_dil);
  }
  // The gradients of the conv2d (at::convolution_backward, the op behind its autograd) that `mask`
  // selects: {dx, dweight, dbias}.
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> conv_backward(std::array<bool, 3> mask) const {
    return at::convolution_backward(conv_dy, conv_x, conv_w, c10::nullopt, conv_stride, conv_pad, conv_dil,
                                    /*transposed=*/false, /*output_padding=*/{0, 0}, /*groups=*/1, mask);
  }
};

TorchOps::TorchOps(bool cuda) : impl_(new Impl) {
  if (cuda) {
    if (!torch::cuda::is_available()) throw std::runtime_error("torch ops: this LibTorch has no CUDA device");
    impl_->device = torch::Device(torch::kCUDA, 0);
  }
}

TorchOps::~TorchOps() = default;

void TorchOps::set_inputs(const std::vector<float>& a, const std::vector<float>& b, const std::vector<int64_t>& shape,
                          const std::vector<float>& mu, const std::vector<float>& logvar,
                          const std::vector<int64_t>& latent_shape) {
  auto make = [&](const std::vector<float>& v, const std::vector<int64_t>& sh) {
    std::vector<float> c = v;
    return torch::from_blob(c.data(), sh, torch::kFloat).clone().to(impl_->device).requires_grad_(true);
  };
  impl_->a = make(a, shape);
  impl_->b = make(b, shape);
  impl_->mu = make(mu, latent_shape);
  impl_->logvar = make(logvar, latent_shape);
}

NamedValues TorchOps::values(int local_k, int local_bins) {
  Impl& m = *impl_;
  torch::Tensor l = ssim_loss(m.a, m.b);
  std::vector<torch::Tensor> g = torch::autograd::grad({l}, {m.a, m.b});
  auto [z, kl] = information_reduction(m.mu, m.logvar, false);
  std::vector<torch::Tensor> gk = torch::autograd::grad({kl}, {m.mu, m.logvar});
  torch::NoGradGuard ng;
  return {{"ssim_loss", to_floats(l)},
          {"ssim_loss.grad_a", to_floats(g[0])},
          {"ssim_loss.grad_b", to_floats(g[1])},
          {"entropy", to_floats(image_entropy(m.a))},
          {"local_entropy", to_floats(local_entropy(m.a, local_k, local_bins))},
          {"kl", to_floats(kl)},
          {"kl.grad_mu", to_floats(gk[0])},
          {"kl.grad_logvar", to_floats(gk[1])}};
}

void TorchOps::step(int which, int local_k, int local_bins) {
  Impl& m = *impl_;
  if (which == 0) {
    m.a.mutable_grad() = torch::Tensor();
    m.b.mutable_grad() = torch::Tensor();
    ssim_loss(m.a, m.b).backward();
  } else if (which == 1) {
    torch::NoGradGuard ng;
    image_entropy(m.a);
  } else if (which == 2) {
    m.mu.mutable_grad() = torch::Tensor();
    m.logvar.mutable_grad() = torch::Tensor();
    auto [z, kl] = information_reduction(m.mu, m.logvar, true);
    (z.sum() + kl).backward();
  } else {
    torch::NoGradGuard ng;
    local_entropy(m.a, local_k, local_bins);
  }
}

void TorchOps::set_conv(const ConvGeometry& g, const std::vector<float>& x, const std::vector<float>& weight,
                        const std::vector<float>& bias, const std::vector<float>& dy) {
  auto make = [&](const std::vector<float>& v, const std::vector<int64_t>& shape) {
    std::vector<float> c = v;
    return torch::from_blob(c.data(), shape, torch::kFloat).clone().to(impl_->device);
  };
  Impl& m = *impl_;
  m.conv_x = make(x, {g.n, g.c_in, g.h, g.w});
  m.conv_w = make(weight, {g.c_out, g.c_in, g.kh, g.kw});
  m.conv_b = make(bias, {g.c_out});
  m.conv_dy = make(dy, {g.n, g.c_out, g.ho, g.wo});
  m.conv_stride = {g.stride_h, g.stride_w};
  m.conv_pad = {g.pad_h, g.pad_w};
  m.conv_dil = {g.dil_h, g.dil_w};
}

NamedValues TorchOps::conv_values() {
  torch::NoGradGuard ng;
  const Impl& m = *impl_;
  const auto grads = m.conv_backward({true, true, false});
  return {{"forward", to_floats(m.conv_forward())},
          {"backward_data", to_floats(std::get<0>(grads))},
          {"backward_weight", to_floats(std::get<1>(grads))}};
}

void TorchOps::conv_step(int pass) {
  torch::NoGradGuard ng;
  const Impl& m = *impl_;
  if (pass == 0) m.conv_forward();
  else m.conv_backward({pass == 1, pass == 2, false});
}

void TorchOps::synchronize() {
  if (impl_->device.is_cuda()) torch::cuda::synchronize();
}

struct TorchTwin::Impl {
  TwinConfig cfg;
  std::string path;
  torch::Device device{torch::kCPU};
  std::map<std::string, torch::Tensor> w;  // every weight and buffer by checkpoint name
  std::vector<int> ch;                     // RotNet stage channels (stem first)
  std::vector<std::pair<int, int>> sz;     // RotNet stage sizes
  torch::Tensor x;
  std::unique_ptr<TorchOps> ops;  // the op_* rows
  std::unique_ptr<torch::optim::Adam> opt_rot, opt_dec, opt_ref;

  const torch::Tensor& at(const std::string& name) const {
    auto it = w.find(name);
    if (it == w.end()) throw std::runtime_error("torch twin: the checkpoint has no tensor " + name);
    return it->second;
  }
  std::vector<torch::Tensor> with_prefix(const std::string& prefix, std::vector<std::string>* names = nullptr) const {
    std::vector<torch::Tensor> out;
    for (auto& [k, t] : w)
      if (k.rfind(prefix, 0) == 0 && t.is_floating_point() && k.find("running_") == std::string::npos) {
        out.push_back(t);
        if (names) names->push_back(k);
      }
    return out;
  }

  torch::Tensor conv(const std::string& p, const torch::Tensor& h, int stride) const {
    return at::conv2d(h, at(p + ".weight"), at(p + ".bias"), stride, 1);
  }
  torch::Tensor conv_t(const std::string& p, const torch::Tensor& h, int stride, std::pair<int, int> out_pad) const {
    return at::conv_transpose2d(h, at(p + ".weight"), at(p + ".bias"), stride, 1, {out_pad.first, out_pad.second});
  }
  torch::Tensor bn(const std::string& p, const torch::Tensor& h, bool training) const {
    return at::batch_norm(h, at(p + ".weight"), at(p + ".bias"), at(p + ".running_mean"), at(p + ".running_var"),
                          training, 0.1, 1e-5, false);
  }
  torch::Tensor act(const torch::Tensor& h) const { return torch::leaky_relu(h, cfg.slope); }

  // RotNet encoder E and head.
  torch::Tensor features(torch::Tensor h, bool training) const {
    for (size_t i = 0; i < ch.size(); ++i) {
      const std::string p = "twostage.rotnet.encoder." + std::to_string(i);
      h = act(bn(p + ".1", conv(p + ".0", h, i == 0 ? 1 : 2), training));
    }
    return h;
  }
  torch::Tensor head(const torch::Tensor& f) const {
    return torch::linear(f.mean({2, 3}), at("twostage.rotnet.fc.weight"), at("twostage.rotnet.fc.bias"));
  }
  // Stage-2 decoder; with "twostage.decoder.squeeze.*" present, the bottleneck first:
  // flatten -> Linear to the code -> Linear -> LeakyReLU -> reshape (models/twostage.hpp).
  torch::Tensor decode(torch::Tensor h, bool training) const {
    if (w.count("twostage.decoder.squeeze.weight")) {
      const std::vector<int64_t> shape = h.sizes().vec();
      torch::Tensor z = torch::linear(h.flatten(1), at("twostage.decoder.squeeze.weight"),
                                      at("twostage.decoder.squeeze.bias"));
      h = act(torch::linear(z, at("twostage.decoder.expand.weight"), at("twostage.decoder.expand.bias")))
              .reshape(shape);
    }
    const int s = (int)ch.size() - 1;
    for (int i = s, j = 0; i >= 1; --i, ++j) {
      const std::string p = "twostage.decoder." + std::to_string(j);
      const std::pair<int, int> op{sz[i - 1].first - (2 * sz[i].first - 1), sz[i - 1].second - (2 * sz[i].second - 1)};
      h = act(bn(p + ".1", conv_t(p + ".0", h, 2, op), training));
    }
    return torch::sigmoid(conv_t("twostage.decoder." + std::to_string(s) + ".0", h, 1, {0, 0}));
  }
  torch::Tensor x_hat_of(const torch::Tensor& in, bool decoder_training) const {
    torch::Tensor f;
    {
      torch::NoGradGuard ng;
      f = features(in, false);
    }
    return decode(f, decoder_training);
  }
  // Refiner: x_tilde, kl.
  std::pair<torch::Tensor, torch::Tensor> refine(const torch::Tensor& in, const torch::Tensor& x_hat,
                                                 bool training) const {
    const int h1 = (cfg.height + 1) / 2, w1 = (cfg.width + 1) / 2, h2 = (h1 + 1) / 2, w2 = (w1 + 1) / 2;
    torch::Tensor xh = x_hat.detach();
    torch::Tensor h = act(conv("refiner.encoder.0", torch::cat({in, xh}, 1), 1));
    h = act(conv("refiner.encoder.2", h, 2));
    h = act(conv("refiner.encoder.4", h, 2));
    auto [z, kl] = information_reduction(conv("refiner.mu", h, 1), conv("refiner.logvar", h, 1), training);
    torch::Tensor r = act(conv("refiner.decoder.0", z, 1));
    r = act(conv_t("refiner.decoder.2", r, 2, {h1 - (2 * h2 - 1), w1 - (2 * w2 - 1)}));
    r = act(conv_t("refiner.decoder.4", r, 2, {cfg.height - (2 * h1 - 1), cfg.width - (2 * w1 - 1)}));
    r = conv("refiner.decoder.6", r, 1);
    return {torch::clamp(xh + r, 0, 1), kl};
  }

  torch::Tensor rotnet_loss() const {
    auto [images, labels] = rotation_batch(x);
    return torch::cross_entropy_loss(head(features(images, true)), labels);
  }
  torch::Tensor decoder_loss() const {
    torch::Tensor xh = x_hat_of(x, true);
    torch::Tensor l = torch::mse_loss(xh, x);
    return cfg.ssim_weight > 0 ? l + cfg.ssim_weight * ssim_loss(xh, x) : l;
  }
  torch::Tensor refiner_loss(bool training) const {
    torch::Tensor xh;
    {
      torch::NoGradGuard ng;
      xh = x_hat_of(x, false);
    }
    auto [xt, kl] = refine(x, xh, training);
    torch::Tensor recon = (xt - x).pow(2).sum() / (double)x.size(0);
    return cfg.beta > 0 ? recon + cfg.beta * kl : recon;
  }

  NamedValues grads(const std::string& prefix, const torch::Tensor& loss) {
    std::vector<std::string> names;
    std::vector<torch::Tensor> ps = with_prefix(prefix, &names);
    std::vector<torch::Tensor> gs = torch::autograd::grad({loss}, ps);
    NamedValues out{{"loss", to_floats(loss)}};
    for (size_t i = 0; i < ps.size(); ++i) out.push_back({"grad." + names[i], to_floats(gs[i])});
    return out;
  }

  // 1 - cos of the globally pooled encoder features, norms floored at 1e-12.
  torch::Tensor feature_error(const torch::Tensor& a, const torch::Tensor& b) const {
    torch::Tensor fa = features(a, false).mean({2, 3}), fb = features(b, false).mean({2, 3});
    torch::Tensor na = fa.norm(2, 1).clamp_min(1e-12), nb = fb.norm(2, 1).clamp_min(1e-12);
    return 1 - (fa * fb).sum(1) / (na * nb);
  }
  NamedValues score_values() const {
    torch::NoGradGuard ng;
    torch::Tensor xh = x_hat_of(x, false);
    torch::Tensor xt = refine(x, xh, false).first;
    auto [images, labels] = rotation_batch(x);
    torch::Tensor nll = -torch::log_softmax(head(features(images, false)), 1).gather(1, labels.unsqueeze(1));
    NamedValues out;
    for (auto& [tag, r] : {std::pair<std::string, torch::Tensor>{"hat", xh}, {"tilde", xt}}) {
      out.push_back({tag + ".mse", to_floats((x - r).pow(2).mean({1, 2, 3}))});
      out.push_back({tag + ".ssim", to_floats(1 - ssim_map(x, r).mean({1, 2, 3}))});
      out.push_back({tag + ".feature", to_floats(feature_error(x, r))});
      if (tag == "hat") out.push_back({"hat.rotation", to_floats(nll.view({x.size(0), 4}).mean(1))});
    }
    out.push_back({"entropy", to_floats(image_entropy(x))});
    return out;
  }

  void load() {
    recon::nn::SafetensorsContents c = recon::nn::load_safetensors(path);
    w.clear();
    for (auto& [name, t] : c.tensors) {
      std::vector<float> v = t.to_vector();
      std::vector<int64_t> shape(t.shape().begin(), t.shape().end());
      torch::Tensor tt = torch::from_blob(v.data(), shape, torch::kFloat).clone().to(device);
      w[name] = tt;
    }
    for (auto& [name, t] : w)
      if (name.find("running_") == std::string::npos) t.requires_grad_(true);
    ch.clear();
    sz.clear();
    int h = cfg.height, wd = cfg.width;
    for (int i = 0;; ++i) {
      auto it = w.find("twostage.rotnet.encoder." + std::to_string(i) + ".0.weight");
      if (it == w.end()) break;
      if (i > 0) h = (h + 1) / 2, wd = (wd + 1) / 2;
      ch.push_back((int)it->second.size(0));
      sz.push_back({h, wd});
    }
    if (ch.empty()) throw std::runtime_error("torch twin: no RotNet encoder in " + path);
    auto adam = [&](const std::string& prefix) {
      return std::make_unique<torch::optim::Adam>(with_prefix(prefix), torch::optim::AdamOptions(cfg.lr));
    };
    opt_rot = adam("twostage.rotnet.");
    opt_dec = adam("twostage.decoder.");
    opt_ref = adam("refiner.");
  }

  void step(torch::optim::Adam& opt, const torch::Tensor& loss) {
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
};

TorchTwin::TorchTwin(const TwinConfig& cfg, const std::string& weights_path, bool cuda) : impl_(new Impl) {
  impl_->cfg = cfg;
  impl_->path = weights_path;
  if (cuda) {
    if (!torch::cuda::is_available()) throw std::runtime_error("torch twin: this LibTorch has no CUDA device");
    impl_->device = torch::Device(torch::kCUDA, 0);
  }
  impl_->load();
}

TorchTwin::~TorchTwin() = default;

void TorchTwin::reset() { impl_->load(); }

void TorchTwin::set_batch(const std::vector<float>& x, int n) {
  std::vector<float> copy = x;
  impl_->x = torch::from_blob(copy.data(), {n, impl_->cfg.channels, impl_->cfg.height, impl_->cfg.width}, torch::kFloat)
                 .clone()
                 .to(impl_->device);
}

NamedValues TorchTwin::rotnet_grads() { return impl_->grads("twostage.rotnet.", impl_->rotnet_loss()); }
NamedValues TorchTwin::decoder_grads() { return impl_->grads("twostage.decoder.", impl_->decoder_loss()); }
NamedValues TorchTwin::refiner_grads() { return impl_->grads("refiner.", impl_->refiner_loss(false)); }
NamedValues TorchTwin::score() { return impl_->score_values(); }

NamedValues TorchTwin::ops(const std::vector<float>& a, const std::vector<float>& b, const std::vector<int64_t>& shape) {
  std::vector<float> ca = a, cb = b;
  torch::Tensor ta = torch::from_blob(ca.data(), shape, torch::kFloat).clone().to(impl_->device).requires_grad_(true);
  torch::Tensor tb = torch::from_blob(cb.data(), shape, torch::kFloat).clone().to(impl_->device).requires_grad_(true);
  torch::Tensor l = ssim_loss(ta, tb);
  std::vector<torch::Tensor> g = torch::autograd::grad({l}, {ta, tb});
  torch::Tensor lv = tb - 0.5;  // a logvar in [-0.5, 0.5]
  auto [z, kl] = information_reduction(ta, lv, false);
  std::vector<torch::Tensor> gk = torch::autograd::grad({kl}, {ta, tb});
  return {{"ssim_loss", to_floats(l)},    {"ssim_loss.grad_a", to_floats(g[0])}, {"ssim_loss.grad_b", to_floats(g[1])},
          {"entropy", to_floats(image_entropy(ta.detach()))},
          {"kl", to_floats(kl)},          {"kl.grad_mu", to_floats(gk[0])},     {"kl.grad_logvar", to_floats(gk[1])}};
}

void TorchTwin::rotnet_step() { impl_->step(*impl_->opt_rot, impl_->rotnet_loss()); }
void TorchTwin::decoder_step() { impl_->step(*impl_->opt_dec, impl_->decoder_loss()); }
void TorchTwin::refiner_step() { impl_->step(*impl_->opt_ref, impl_->refiner_loss(true)); }
void TorchTwin::score_step() { impl_->score_values(); }

void TorchTwin::set_op_inputs(const std::vector<float>& a, const std::vector<float>& b,
                              const std::vector<int64_t>& shape, const std::vector<float>& mu,
                              const std::vector<float>& logvar, const std::vector<int64_t>& latent_shape) {
  if (!impl_->ops) impl_->ops = std::make_unique<TorchOps>(impl_->device.is_cuda());
  impl_->ops->set_inputs(a, b, shape, mu, logvar, latent_shape);
}

void TorchTwin::op_step(int which) {
  if (!impl_->ops) throw std::runtime_error("torch twin: op_step before set_op_inputs");
  impl_->ops->step(which);
}

void TorchTwin::synchronize() {
  if (impl_->device.is_cuda()) torch::cuda::synchronize();
}

std::string TorchTwin::version() {
  std::ostringstream os;
  // Which convolution path the CPU conv2d takes: oneDNN (MKLDNN) JIT kernels, or im2col + BLAS.
  const bool onednn = at::hasMKLDNN() && at::globalContext().userEnabledMkldnn();
  os << "LibTorch " << TORCH_VERSION << ", " << at::get_num_threads() << " intra-op threads, oneDNN "
     << (onednn ? "on" : "off");
  return os.str();
}

void TorchTwin::set_threads(int n) { torch::set_num_threads(n); }
int TorchTwin::threads() { return at::get_num_threads(); }

}  // namespace recon::reference
