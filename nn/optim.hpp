// Optimizers (SGD with momentum/Nesterov/weight decay, Adam, AdamW) and
// gradient clipping by global norm. The per-element math lives in
// kernels/common/optim.hpp; step() loops over the CPU parameters on the CPU
// and updates all CUDA parameters in one fused kernel launch (a multi-tensor
// apply, kernels/cuda/optim.hpp). The state (step count and per-parameter
// buffers, on each parameter's device) is a StateDict of named tensors, saved
// in checkpoints:
//   "step"                        0-d, the number of steps taken (exact to 2^24)
//   "<param name>.momentum_buffer"  SGD with momentum
//   "<param name>.exp_avg", "<param name>.exp_avg_sq"   Adam/AdamW
//
// Inside a captured CUDA graph (runtime/cuda_graph.hpp) step() records the
// fused kernel with its scalars in a replay slot: each launch of the graph
// increments the step count and refreshes the learning rate and the bias
// corrections on the host, so set_lr() between launches takes effect.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "kernels/cuda/optim.hpp"
#include "nn/state_dict.hpp"
#include "runtime/cuda_graph.hpp"
#include "runtime/tensor.hpp"

namespace recon::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// Names unnamed parameters "0", "1", ...
NamedTensors name_parameters(const std::vector<Tensor>& params);

class Optimizer {
 public:
  Optimizer(NamedTensors params, float lr);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that requires grad and has a gradient
  // (others are skipped, as in PyTorch); increments step_count (inside a
  // graph capture: at each launch of the graph instead).
  void step();
  // set_to_none (PyTorch's default): drops every parameter's gradient.
  // Otherwise zeroes the existing gradients in place (their storage stays:
  // what a step captured into a CUDA graph needs; throws there with
  // set_to_none). The results are the same up to the sign of zero.
  void zero_grad(bool set_to_none = true);

  float lr() const { return lr_; }
  void set_lr(float lr);
  int64_t step_count() const { return step_; }
  const NamedTensors& params() const { return params_; }
  virtual std::string type_name() const = 0;

  // The state as named tensors (handles to the live buffers) and its restore
  // (values copied in place after the names and shapes are checked).
  StateDict state_dict() const;
  void load_state_dict(const StateDict& state);

 protected:
  // Updates parameter i (CPU) given its gradient; step_ is already the new
  // step number (1 on the first step).
  virtual void update(size_t i, float* p, const float* g, int64_t n) = 0;
  // The scalars of the current step for the fused CUDA kernel (the same
  // values update() uses); state buffer 0 and 1 map to OptimTensor's state0/1.
  virtual cuda::OptimStep fused_step() const = 0;
  // Declares a per-parameter state buffer `suffix` (zeros, the parameter's
  // shape); returns its index for state(i, k).
  size_t add_state(const std::string& suffix);
  float* state(size_t param, size_t k) const { return state_[k][param].data(); }

  float lr_;
  int64_t step_ = 0;

 private:
  // One fused launch over the CUDA parameters in `table` (all on `device`);
  // the scalars from `device_step` when not null (a graph's replay slot).
  void step_cuda(std::vector<cuda::OptimTensor>& table, Device device, const cuda::OptimStep* device_step);

  NamedTensors params_;
  std::vector<std::string> state_names_;
  std::vector<std::vector<Tensor>> state_;  // [kind][param]
  // The fused kernel's table on the device, and the entries last uploaded to
  // it: a step whose table is unchanged (same gradient buffers) skips the copy.
  Tensor device_table_;
  std::vector<cuda::OptimTensor> uploaded_table_;
};

struct SGDOptions {
  float lr = 0.01f;
  float momentum = 0.f;
  float dampening = 0.f;
  float weight_decay = 0.f;  // L2, added to the gradient
  bool nesterov = false;     // needs momentum > 0 and dampening = 0
};

class SGD : public Optimizer {
 public:
  SGD(NamedTensors params, const SGDOptions& opt = {});
  SGD(const std::vector<Tensor>& params, const SGDOptions& opt = {}) : SGD(name_parameters(params), opt) {}
  std::string type_name() const override { return "SGD"; }
  const SGDOptions& options() const { return opt_; }

 protected:
  void update(size_t i, float* p, const float* g, int64_t n) override;
  cuda::OptimStep fused_step() const override;

 private:
  SGDOptions opt_;
  size_t buf_ = 0;
};

struct AdamOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.f;  // Adam: L2 added to the gradient; AdamW: decoupled
};

class Adam : public Optimizer {
 public:
  Adam(NamedTensors params, const AdamOptions& opt = {});
  Adam(const std::vector<Tensor>& params, const AdamOptions& opt = {}) : Adam(name_parameters(params), opt) {}
  std::string type_name() const override { return decoupled_ ? "AdamW" : "Adam"; }
  const AdamOptions& options() const { return opt_; }

 protected:
  Adam(NamedTensors params, const AdamOptions& opt, bool decoupled);
  void update(size_t i, float* p, const float* g, int64_t n) override;
  cuda::OptimStep fused_step() const override;

 private:
  // 1 - beta1^t and 1 - beta2^t of the current step, computed once in double.
  std::pair<float, float> bias_corrections() const;

  AdamOptions opt_;
  bool decoupled_;
  size_t m_ = 0, v_ = 0;
};

// AdamW: Adam with decoupled weight decay (default 0.01, as PyTorch).
class AdamW : public Adam {
 public:
  static AdamOptions defaults() {
    AdamOptions o;
    o.weight_decay = 0.01f;
    return o;
  }
  AdamW(NamedTensors params, const AdamOptions& opt = defaults()) : Adam(std::move(params), opt, true) {}
  AdamW(const std::vector<Tensor>& params, const AdamOptions& opt = defaults())
      : Adam(name_parameters(params), opt, true) {}
};

// The closure of one training step for CudaGraphStep (runtime/cuda_graph.hpp):
// opt.zero_grad(false); outs = loss_fn(inputs); outs[0].backward();
// opt.step(); returns outs (the loss first, then any other one-element
// tensors to read back). The same closure runs eagerly and in a graph:
//   CudaGraphStep step(nn::training_step(opt, [&](const std::vector<Tensor>& in) {
//     return std::vector<Tensor>{mse_loss(model(in[0]), in[0])};
//   }), {.enabled = use_graphs});
//   for (...) { opt.set_lr(...); int64_t id = step.run({batch}); ... step.outputs(id - 1) ... }
// opt and whatever loss_fn captures must outlive the step.
using LossFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& inputs)>;
CudaGraphStep::StepFn training_step(Optimizer& opt, LossFn loss_fn);

// Scales the gradients of `params` so that their global L2 norm is at most
// max_norm (by max_norm / (norm + 1e-6), as PyTorch); returns the norm before
// clipping. Parameters without a gradient are ignored.
float clip_grad_norm(const std::vector<Tensor>& params, float max_norm);

}  // namespace recon::nn
