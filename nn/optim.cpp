// Optimizer bookkeeping (state buffers, state_dict), the CPU loops that
// apply the per-element updates of kernels/common/optim.hpp, and the fused
// CUDA step (one launch for all CUDA parameters, kernels/cuda/optim.hpp).
#include "nn/optim.hpp"

#include <cmath>
#include <cstring>
#include <tuple>

#include "kernels/common/optim.hpp"
#include "runtime/autograd.hpp"
#include "runtime/cuda_context.hpp"
#include "runtime/cuda_graph.hpp"
#include "runtime/error.hpp"
#include "runtime/op_utils.hpp"
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
  // In a capture nothing runs now: each launch of the graph counts the step
  // and fills the scalars (replay slot) instead.
  const bool in_graph = cuda::capturing();
  if (!in_graph) ++step_;
  std::vector<cuda::OptimTensor> table;  // the CUDA parameters, for one fused launch
  std::vector<Tensor> table_grads;       // keeps contiguous copies of gradients alive until the launch
  Device cuda_device = Device::cuda();
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    if (!p.requires_grad()) continue;
    Tensor g = p.grad();
    if (!g.defined()) continue;
    RECON_CHECK(g.device() == p.device(), type_name() << "::step: the gradient of \"" << name << "\" is on "
                                                      << g.device().str() << ", the parameter on "
                                                      << p.device().str());
    RECON_CHECK(g.shape() == p.shape(), type_name() << "::step: the gradient of \"" << name << "\" has shape "
                                                    << shape_str(g.shape()) << ", the parameter "
                                                    << shape_str(p.shape()));
    g = g.contiguous();
    for (const auto& kind : state_)
      RECON_CHECK(kind[i].device() == p.device(), type_name() << "::step: state of \"" << name << "\" is on "
                                                               << kind[i].device().str() << ", the parameter on "
                                                               << p.device().str());
    if (p.device().is_cpu()) {
      RECON_CHECK(!in_graph, type_name() << "::step: parameter \"" << name << "\" is on the CPU; a step captured "
                                         << "into a CUDA graph can update CUDA parameters only");
      update(i, p.data(), g.data(), p.numel());
    } else if (p.numel() > 0) {
      if (table.empty()) cuda_device = p.device();
      RECON_CHECK(p.device() == cuda_device, type_name() << "::step: parameters on " << cuda_device.str() << " and "
                                                         << p.device().str() << " (one CUDA device per optimizer)");
      table.push_back({p.data(), g.data(), state_.size() > 0 ? state_[0][i].data() : nullptr,
                       state_.size() > 1 ? state_[1][i].data() : nullptr, p.numel(), 0});
      table_grads.push_back(g);
    }
  }
  if (table.empty()) return;
  const cuda::OptimStep* device_step = nullptr;
  if (in_graph) {
    device_step = static_cast<const cuda::OptimStep*>(
        cuda::replay_slot(sizeof(cuda::OptimStep), [this](void* host) {
          ++step_;
          *static_cast<cuda::OptimStep*>(host) = fused_step();
        }));
  }
  step_cuda(table, cuda_device, device_step);
}

void Optimizer::step_cuda(std::vector<cuda::OptimTensor>& table, Device device, const cuda::OptimStep* device_step) {
  [[maybe_unused]] const int64_t chunks = cuda::plan_chunks(table);  // unused without CUDA
  const size_t bytes = table.size() * sizeof(cuda::OptimTensor);
  const bool same = table.size() == uploaded_table_.size() && device_table_.defined() &&
                    std::memcmp(table.data(), uploaded_table_.data(), bytes) == 0;
  // A capture can neither allocate the table (it would live in the graph)
  // nor copy it from pageable memory: the eager warm-up step uploads it.
  RECON_CHECK(same || !device_step,
              type_name() << "::step in a captured CUDA graph: the parameters or their gradient buffers changed "
                          << "since the last eager step (gradients dropped by zero_grad() and re-created?); use "
                          << "zero_grad(false) and run an eager warm-up step before the capture");
  if (!same) {
    // Device memory as a float tensor, 256-byte aligned like every CUDA storage.
    const int64_t floats = (int64_t)((bytes + sizeof(float) - 1) / sizeof(float));
    if (!device_table_.defined() || device_table_.numel() < floats || device_table_.device() != device)
      device_table_ = Tensor::empty({floats}, device);
    uploaded_table_ = table;
  }
  [[maybe_unused]] auto* device_table = reinterpret_cast<cuda::OptimTensor*>(device_table_.data());
  RECON_CUDA_ONLY("Optimizer::step",
                  cuda::multi_tensor_step(table, chunks, device_table, !same, fused_step(), device_step));
}

void Optimizer::zero_grad(bool set_to_none) {
  RECON_CHECK(!(set_to_none && cuda::capturing()),
              type_name() << "::zero_grad(): dropping the gradients inside a step captured into a CUDA graph would "
                          << "re-create them inside the graph, where they cannot outlive it; use zero_grad(false)");
  NoGradGuard no_grad;
  for (auto& kv : params_) {
    if (set_to_none) {
      kv.second.zero_grad();
    } else if (Tensor g = kv.second.grad(); g.defined()) {
      g.fill_(0.f);
    }
  }
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

cuda::OptimStep SGD::fused_step() const {
  cuda::OptimStep s;
  s.kind = cuda::OptimKind::kSGD;
  s.lr = lr_;
  s.weight_decay = opt_.weight_decay;
  s.momentum = opt_.momentum;
  s.dampening = opt_.dampening;
  s.nesterov = opt_.nesterov;
  s.first_step = step_ == 1;
  return s;
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

std::pair<float, float> Adam::bias_corrections() const {
  return {(float)(1.0 - std::pow((double)opt_.beta1, (double)step_)),
          (float)(1.0 - std::pow((double)opt_.beta2, (double)step_))};
}

cuda::OptimStep Adam::fused_step() const {
  cuda::OptimStep s;
  s.kind = cuda::OptimKind::kAdam;
  s.lr = lr_;
  s.weight_decay = opt_.weight_decay;
  s.decoupled = decoupled_;
  s.beta1 = opt_.beta1;
  s.beta2 = opt_.beta2;
  s.eps = opt_.eps;
  std::tie(s.bias_correction1, s.bias_correction2) = bias_corrections();
  return s;
}

void Adam::update(size_t i, float* p, const float* g, int64_t n) {
  const auto [bc1, bc2] = bias_corrections();
  float* m = state(i, m_);
  float* v = state(i, v_);
  for (int64_t j = 0; j < n; ++j)
    adam_update(p[j], g[j], m[j], v[j], lr_, opt_.beta1, opt_.beta2, opt_.eps, opt_.weight_decay, decoupled_, bc1,
                bc2);
}

// ---- one training step ----------------------------------------------------------------------------

CudaGraphStep::StepFn training_step(Optimizer& opt, LossFn loss_fn) {
  RECON_CHECK(loss_fn, "training_step: the loss function is empty");
  return [&opt, loss_fn = std::move(loss_fn)](const std::vector<Tensor>& inputs) {
    opt.zero_grad(false);  // in place: a captured step keeps its gradient buffers
    std::vector<Tensor> outs = loss_fn(inputs);
    RECON_CHECK(!outs.empty() && outs[0].defined(), "training_step: the loss function returned no loss");
    outs[0].backward();
    opt.step();
    return outs;
  };
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
