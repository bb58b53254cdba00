// Module: the base of every layer and model, as in PyTorch's nn.Module. A
// module owns named parameters (trainable leaves), named buffers (state such
// as BatchNorm's running statistics) and named child modules; names nest with
// dots ("encoder.0.weight"). Modes (train/eval), freezing and device moves
// apply recursively. Parameters and buffers are updated in place (their
// TensorImpl keeps its identity), so the handles a layer holds stay valid
// after to(device) or load_state_dict.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nn/state_dict.hpp"
#include "runtime/device.hpp"
#include "runtime/tensor.hpp"

namespace recon::nn {

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The computation; the default throws (containers with other signatures
  // need not override it).
  virtual Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }
  // Short type name for printing ("Conv2d").
  virtual std::string type_name() const { return "Module"; }

  // ---- parameters, buffers, children (recursive, registration order: own
  // parameters, own buffers, then each child's, as PyTorch's state_dict) -----
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<Tensor> parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const { return children_; }
  int64_t num_parameters() const;  // total element count

  // Parameters and buffers by name (handles to the live tensors).
  StateDict state_dict() const;
  // Copies values in place after checking names and shapes (check_state_dict).
  void load_state_dict(const StateDict& state, bool strict = true);

  // ---- modes -----------------------------------------------------------------
  // Sets the mode of this module and every child; a model may override it to
  // pin a part (e.g. a frozen encoder that stays in eval).
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void freeze();    // requires_grad = false on every parameter, recursively
  void unfreeze();  // requires_grad = true on every parameter, recursively
  void zero_grad();  // drops every parameter's gradient
  // Moves every parameter (with its gradient) and buffer to `device`.
  void to(Device device);

  // An indented tree of the module ("(0): Conv2d(1, 8, kernel=3, ...)").
  std::string str() const;
  virtual std::string extra_repr() const { return ""; }

 protected:
  // Registers a parameter (marked requires_grad) / buffer / child and returns
  // the handle. Names are unique within a module and contain no dot.
  Tensor register_parameter(const std::string& name, Tensor t);
  Tensor register_buffer(const std::string& name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }
  void add_child(const std::string& name, std::shared_ptr<Module> m);

 private:
  void check_new_name(const std::string& name) const;
  void collect(const std::string& prefix, bool params, std::vector<std::pair<std::string, Tensor>>& out) const;
  void str_into(std::string& out, int level) const;

  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

using ModulePtr = std::shared_ptr<Module>;

// Runs children in order. Children are named "0", "1", ... unless named.
class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<ModulePtr> modules);
  Sequential& push_back(ModulePtr m);
  Sequential& push_back(const std::string& name, ModulePtr m);
  size_t size() const { return named_children().size(); }
  Module& operator[](size_t i) const;
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Sequential"; }
};

// make_sequential(std::make_shared<Conv2d>(1, 8, 3), std::make_shared<ReLU>(), ...)
template <class... Ms>
std::shared_ptr<Sequential> make_sequential(std::shared_ptr<Ms>... modules) {
  auto s = std::make_shared<Sequential>();
  (s->push_back(std::move(modules)), ...);
  return s;
}

}  // namespace recon::nn
