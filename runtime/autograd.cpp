// The backward engine: topological ordering of the reachable nodes,
// gradient accumulation, and release of saved buffers.
#include "runtime/autograd.hpp"

#include <unordered_map>

#include "runtime/error.hpp"
#include "runtime/ops.hpp"

namespace recon {

static thread_local bool t_grad_mode = true;

bool grad_mode_enabled() { return t_grad_mode; }
NoGradGuard::NoGradGuard() : previous_(t_grad_mode) { t_grad_mode = false; }
NoGradGuard::~NoGradGuard() { t_grad_mode = previous_; }

namespace autograd {

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!t_grad_mode) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!t_grad_mode) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record_multi(const char* name, const std::vector<Tensor*>& outputs, const std::vector<Tensor>& inputs,
                  MultiBackwardFn backward) {
  auto node = std::make_shared<Node>();
  node->name = name;
  node->num_outputs = (int)outputs.size();
  node->backward = std::move(backward);
  node->inputs.reserve(inputs.size());
  for (const Tensor& in : inputs) {
    Edge e;
    if (in.defined() && in.requires_grad()) {
      if (in.grad_fn()) {
        e.node = in.grad_fn();
        e.output_nr = in.impl()->output_nr;
      } else {
        e.leaf = in.impl_ptr();
      }
    }
    node->inputs.push_back(e);
    node->input_shapes.push_back(in.defined() ? in.shape() : Shape{});
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    TensorImpl* out = outputs[i]->impl();
    out->grad_fn = node;
    out->output_nr = (int)i;
    out->requires_grad = true;
  }
}

void record(const char* name, Tensor& output, const std::vector<Tensor>& inputs, BackwardFn backward) {
  record_multi(name, {&output}, inputs,
               [fn = std::move(backward)](const std::vector<Tensor>& g, const std::vector<bool>& needs) {
                 return fn(g[0], needs);
               });
}

// Adds g into a leaf's .grad. The first gradient is copied: a backward may
// hand the same tensor to several inputs.
static void accumulate_leaf(TensorImpl* leaf, const Tensor& g) {
  if (!leaf->grad.defined()) {
    leaf->grad = g.clone();
  } else {
    add_(leaf->grad, g);
  }
}

void run_backward(const Tensor& root, const Tensor& grad_in, bool retain_graph) {
  RECON_CHECK(root.defined(), "backward: called on an undefined tensor");
  RECON_CHECK(root.requires_grad(),
              "backward: the tensor " << shape_str(root.shape())
                                      << " does not require grad and has no grad_fn");
  Tensor grad = grad_in;
  if (!grad.defined()) {
    RECON_CHECK(root.numel() == 1, "backward: a gradient can be created implicitly only for a one-element "
                                   "output; got shape "
                                       << shape_str(root.shape()) << ", pass grad explicitly");
    grad = Tensor::ones(root.shape(), root.device());
  }
  RECON_CHECK(grad.shape() == root.shape(), "backward: grad has shape " << shape_str(grad.shape())
                                                                         << " but the output has shape "
                                                                         << shape_str(root.shape()));
  NoGradGuard no_grad;
  if (!root.grad_fn()) {  // a leaf
    accumulate_leaf(root.impl(), grad);
    return;
  }

  // Count, for every reachable node, how many reachable nodes feed it a gradient.
  std::unordered_map<Node*, int> pending;
  std::vector<Node*> stack{root.grad_fn().get()};
  pending[root.grad_fn().get()] = 0;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->inputs) {
      if (!e.node) continue;
      auto [it, inserted] = pending.try_emplace(e.node.get(), 0);
      ++it->second;
      if (inserted) stack.push_back(e.node.get());
    }
  }

  // Pending output gradients per node (one slot per output; undefined = zero).
  std::unordered_map<Node*, std::vector<Tensor>> grads;
  Node* root_node = root.grad_fn().get();
  grads[root_node].resize(root_node->num_outputs);
  grads[root_node][root.impl()->output_nr] = grad;
  std::vector<Node*> ready{root_node};
  while (!ready.empty()) {
    Node* n = ready.back();
    ready.pop_back();
    std::vector<Tensor> g = std::move(grads[n]);
    grads.erase(n);
    RECON_CHECK(!n->released, "backward: trying to backward through the graph a second time: the saved "
                              "buffers of "
                                  << n->name
                                  << " were freed by the first backward; pass retain_graph=true to it");
    std::vector<bool> needs(n->inputs.size());
    for (size_t i = 0; i < n->inputs.size(); ++i) needs[i] = n->inputs[i].active();
    std::vector<Tensor> in_grads = n->backward(g, needs);
    RECON_CHECK(in_grads.size() == n->inputs.size(),
                n->name << " backward returned " << in_grads.size() << " gradients for " << n->inputs.size()
                        << " inputs");
    if (!retain_graph) {
      n->backward = nullptr;  // frees the saved tensors
      n->released = true;
    }
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      const Edge& e = n->inputs[i];
      if (!e.active()) continue;
      const Tensor& gi = in_grads[i];
      RECON_CHECK(gi.defined(), n->name << " backward gave no gradient for input " << i);
      RECON_CHECK(gi.shape() == n->input_shapes[i], n->name << " backward gave a gradient of shape "
                                                            << shape_str(gi.shape()) << " for input " << i
                                                            << " of shape " << shape_str(n->input_shapes[i]));
      if (e.leaf) {
        accumulate_leaf(e.leaf.get(), gi);
        continue;
      }
      Node* next = e.node.get();
      std::vector<Tensor>& slots = grads[next];
      slots.resize(next->num_outputs);
      Tensor& slot = slots[e.output_nr];
      slot = slot.defined() ? add(slot, gi) : gi;
      if (--pending[next] == 0) ready.push_back(next);
    }
  }
}

}  // namespace autograd
}  // namespace recon
