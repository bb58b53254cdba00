// Optimizer bookkeeping (state buffers, state_dict) and the CPU loops that
// apply the per-element updates of kernels/common/optim.hpp.
#include "nn/optim.hpp"

#include <cmath>

#include "kernels/common/optim.hpp"
#include "runtime/autograd.hpp"
#include "runtime/error.hpp"
#include "runtime/ops.hpp"

namespace recon::nn {

NamedTensors name_parameters(const std::vector<Tensor>& params) {
  NamedTensors out;
  for (size_t i = 0; i < params.size(); ++i) out.emplace_back(std::to_string(i), params[i]);
  return out;
}

// ---- Optimizer -------------------------------------------------------------------------------

Optimizer::Optimizer(NamedTensors params, float lr) : lr_(lr), params_(std::move(params)) {
  RECON_CHECK(std::isfinite(lr) && lr >= 0.f, "Optimizer: learning rate " << lr << " must be finite and >= 0");
  StateDict names;  // rejects duplicate names
  for (const auto& [name, p] : params_) {
    RECON_CHECK(p.defined() && p.is_leaf(), "Optimizer: parameter \"" << name << "\" must be a defined leaf tensor");
    RECON_CHECK(p.is_contiguous(), "Optimizer: parameter \"" << name << "\" must be contiguous");
    RECON_CHECK(name != "step", "Optimizer: \"step\" is reserved and cannot name a parameter");
    names.insert(name, p);
  }
}

void Optimizer::set_lr(float lr) {
  RECON_CHECK(std::isfinite(lr) && lr >= 0.f, type_name() << ": learning rate " << lr << " must be finite and >= 0");
  lr_ = lr;
}

size_t Optimizer::add_state(const std::string& suffix) {
  std::vector<Tensor> bufs;
  for (const auto& kv : params_) bufs.push_back(Tensor::zeros(kv.second.shape(), kv.second.device()));
  state_names_.push_back(suffix);
  state_.push_back(std::move(bufs));
  return state_.size() - 1;
}

void Optimizer::step() {
  ++step_;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    if (!p.requires_grad()) continue;
    Tensor g = p.grad();
    if (!g.defined()) continue;
    RECON_CHECK(p.device().is_cpu() && g.device().is_cpu(), type_name() << "::step: not implemented on CUDA");
    g = g.contiguous();
    for (const auto& kind : state_)
      RECON_CHECK(kind[i].device() == p.device(), type_name() << "::step: state of \"" << name << "\" is on "
                                                               << kind[i].device().str() << ", the parameter on "
                                                               << p.device().str());
    update(i, p.data(), g.data(), p.numel());
  }
}

void Optimizer::zero_grad() {
  for (auto& kv : params_) kv.second.zero_grad();
}

StateDict Optimizer::state_dict() const {
  StateDict out;
  // Exact for step counts up to 2^24, far beyond this project's runs.
  out.insert("step", Tensor::scalar((float)step_));
  for (size_t k = 0; k < state_.size(); ++k)
    for (size_t i = 0; i < params_.size(); ++i) out.insert(params_[i].first + "." + state_names_[k], state_[k][i]);
  return out;
}

void Optimizer::load_state_dict(const StateDict& state) {
  StateDict mine = state_dict();
  check_state_dict(type_name() + "::load_state_dict", mine, state, true);
  float step = state.at("step").item();
  RECON_CHECK(step >= 0.f && step == std::floor(step), type_name() << "::load_state_dict: step " << step
                                                                   << " is not a non-negative integer");
  step_ = (int64_t)step;
  NoGradGuard no_grad;
  for (size_t k = 0; k < state_.size(); ++k)
    for (size_t i = 0; i < params_.size(); ++i)
      state_[k][i].copy_(state.at(params_[i].first + "." + state_names_[k]));
}

// ---- SGD ---------------------------------------------------------------------------------------

SGD::SGD(NamedTensors params, const SGDOptions& opt) : Optimizer(std::move(params), opt.lr), opt_(opt) {
  RECON_CHECK(opt.momentum >= 0.f, "SGD: momentum " << opt.momentum << " must be >= 0");
  RECON_CHECK(opt.weight_decay >= 0.f, "SGD: weight_decay " << opt.weight_decay << " must be >= 0");
  RECON_CHECK(!opt.nesterov || (opt.momentum > 0.f && opt.dampening == 0.f),
              "SGD: Nesterov momentum needs momentum > 0 and dampening = 0");
  if (opt.momentum != 0.f) buf_ = add_state("momentum_buffer");
}

void SGD::update(size_t i, float* p, const float* g, int64_t n) {
  float* buf = opt_.momentum != 0.f ? state(i, buf_) : nullptr;
  const bool first = step_ == 1;
  float unused = 0.f;
  for (int64_t j = 0; j < n; ++j)
    sgd_update(p[j], g[j], buf ? buf[j] : unused, lr_, opt_.momentum, opt_.dampening, opt_.weight_decay,
               opt_.nesterov, first);
}

// ---- Adam / AdamW ------------------------------------------------------------------------------

Adam::Adam(NamedTensors params, const AdamOptions& opt) : Adam(std::move(params), opt, false) {}

Adam::Adam(NamedTensors params, const AdamOptions& opt, bool decoupled)
    : Optimizer(std::move(params), opt.lr), opt_(opt), decoupled_(decoupled) {
  RECON_CHECK(opt.beta1 >= 0.f && opt.beta1 < 1.f, type_name() << ": beta1 " << opt.beta1 << " must be in [0, 1)");
  RECON_CHECK(opt.beta2 >= 0.f && opt.beta2 < 1.f, type_name() << ": beta2 " << opt.beta2 << " must be in [0, 1)");
  RECON_CHECK(opt.eps >= 0.f, type_name() << ": eps " << opt.eps << " must be >= 0");
  RECON_CHECK(opt.weight_decay >= 0.f, type_name() << ": weight_decay " << opt.weight_decay << " must be >= 0");
  m_ = add_state("exp_avg");
  v_ = add_state("exp_avg_sq");
}

void Adam::update(size_t i, float* p, const float* g, int64_t n) {
  // Bias corrections of step t, computed once in double.
  const float bc1 = (float)(1.0 - std::pow((double)opt_.beta1, (double)step_));
  const float bc2 = (float)(1.0 - std::pow((double)opt_.beta2, (double)step_));
  float* m = state(i, m_);
  float* v = state(i, v_);
  for (int64_t j = 0; j < n; ++j)
    adam_update(p[j], g[j], m[j], v[j], lr_, opt_.beta1, opt_.beta2, opt_.eps, opt_.weight_decay, decoupled_, bc1,
                bc2);
}

// ---- clipping -------------------------------------------------------------------------------------

float clip_grad_norm(const std::vector<Tensor>& params, float max_norm) {
  RECON_CHECK(max_norm > 0.f, "clip_grad_norm: max_norm " << max_norm << " must be > 0");
  NoGradGuard no_grad;
  double sq = 0;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (g.device().is_cpu()) {
      Tensor c = g.contiguous();
      const float* d = c.data();
      for (int64_t j = 0; j < c.numel(); ++j) sq += (double)d[j] * d[j];
    } else {
      sq += (double)sum(mul(g, g)).item();
    }
  }
  const double norm = std::sqrt(sq);
  // PyTorch's epsilon keeps the scale finite when the norm is zero.
  const double coef = (double)max_norm / (norm + 1e-6);
  if (coef < 1.0) {
    for (const Tensor& p : params) {
      Tensor g = p.grad();
      if (!g.defined()) continue;
      Tensor pm = p;
      pm.set_grad(scale(g, (float)coef));
    }
  }
  return (float)norm;
}

}  // namespace recon::nn
