// Module bookkeeping: registration, recursive traversal, state_dict, modes,
// device moves in place, and Sequential.
#include "nn/module.hpp"

#include "runtime/autograd.hpp"
#include "runtime/error.hpp"

namespace recon::nn {

Tensor Module::forward(const Tensor&) {
  RECON_FAIL(type_name() << "::forward(Tensor) is not defined for this module");
}

void Module::check_new_name(const std::string& name) const {
  RECON_CHECK(!name.empty() && name.find('.') == std::string::npos,
              type_name() << ": name \"" << name << "\" must be non-empty and contain no '.'");
  auto taken = [&name](const auto& list) {
    for (const auto& kv : list)
      if (kv.first == name) return true;
    return false;
  };
  RECON_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_),
              type_name() << ": name \"" << name << "\" is already registered");
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  check_new_name(name);
  RECON_CHECK(t.defined() && t.is_leaf(), type_name() << ": parameter \"" << name << "\" must be a defined leaf tensor");
  t.set_requires_grad(true);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  check_new_name(name);
  RECON_CHECK(t.defined(), type_name() << ": buffer \"" << name << "\" is undefined");
  buffers_.emplace_back(name, t);
  return t;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  check_new_name(name);
  RECON_CHECK(m != nullptr, type_name() << ": child \"" << name << "\" is null");
  RECON_CHECK(m.get() != this, type_name() << ": a module cannot be its own child");
  children_.emplace_back(name, std::move(m));
}

void Module::collect(const std::string& prefix, bool params,
                     std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [name, t] : params ? params_ : buffers_) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", params, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", true, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& kv : named_parameters()) out.push_back(kv.second);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", false, out);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& kv : named_parameters()) n += kv.second.numel();
  return n;
}

StateDict Module::state_dict() const {
  // PyTorch's order: a module's own parameters, then its own buffers, then
  // each child's state in turn.
  StateDict out;
  struct Walk {
    static void run(const Module& m, const std::string& prefix, StateDict& out) {
      for (const auto& [name, t] : m.params_) out.insert(prefix + name, t);
      for (const auto& [name, t] : m.buffers_) out.insert(prefix + name, t);
      for (const auto& [name, child] : m.children_) run(*child, prefix + name + ".", out);
    }
  };
  Walk::run(*this, "", out);
  return out;
}

void Module::load_state_dict(const StateDict& state, bool strict) {
  StateDict mine = state_dict();
  check_state_dict(type_name() + "::load_state_dict", mine, state, strict);
  NoGradGuard no_grad;
  for (const auto& [name, t] : mine) {
    Tensor dst = t;
    dst.copy_(state.at(name));
  }
}

void Module::train(bool on) {
  training_ = on;
  for (auto& kv : children_) kv.second->train(on);
}

void Module::freeze() {
  for (auto& kv : named_parameters()) kv.second.set_requires_grad(false);
}

void Module::unfreeze() {
  for (auto& kv : named_parameters()) kv.second.set_requires_grad(true);
}

void Module::zero_grad() {
  for (auto& kv : named_parameters()) kv.second.zero_grad();
}

// Moves the data behind `t`'s handle: every handle sharing this TensorImpl
// (the layer's member, optimizers) sees the new device.
static void move_in_place(const Tensor& t, Device device) {
  if (t.device() == device) return;
  Tensor moved = t.detach().to(device);
  TensorImpl* impl = t.impl();
  impl->storage = moved.impl()->storage;
  impl->strides = moved.impl()->strides;
  impl->offset = moved.impl()->offset;
  if (impl->grad.defined()) impl->grad = impl->grad.detach().to(device);
}

void Module::to(Device device) {
  NoGradGuard no_grad;
  for (auto& kv : params_) move_in_place(kv.second, device);
  for (auto& kv : buffers_) move_in_place(kv.second, device);
  for (auto& kv : children_) kv.second->to(device);
}

void Module::str_into(std::string& out, int level) const {
  out += type_name() + "(" + extra_repr();
  if (!children_.empty()) {
    out += "\n";
    for (const auto& [name, child] : children_) {
      out.append((size_t)(2 * (level + 1)), ' ');
      out += "(" + name + "): ";
      child->str_into(out, level + 1);
      out += "\n";
    }
    out.append((size_t)(2 * level), ' ');
  }
  out += ")";
}

std::string Module::str() const {
  std::string out;
  str_into(out, 0);
  return out;
}

// ---- Sequential --------------------------------------------------------------------------

Sequential::Sequential(std::initializer_list<ModulePtr> modules) {
  for (const auto& m : modules) push_back(m);
}

Sequential& Sequential::push_back(ModulePtr m) { return push_back(std::to_string(size()), std::move(m)); }

Sequential& Sequential::push_back(const std::string& name, ModulePtr m) {
  add_child(name, std::move(m));
  return *this;
}

Module& Sequential::operator[](size_t i) const {
  RECON_CHECK(i < size(), "Sequential: index " << i << " out of range for " << size() << " modules");
  return *named_children()[i].second;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (const auto& kv : named_children()) h = kv.second->forward(h);
  return h;
}

}  // namespace recon::nn
