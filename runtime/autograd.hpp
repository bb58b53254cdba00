// The autograd engine (DESIGN.md, decision 4): a dynamic tape. An op whose
// inputs need gradients records a Node holding edges to its inputs and a
// backward function; Tensor::backward() runs the reachable nodes in
// topological order and accumulates into leaves. Saved tensors are detached
// copies of handles (no reference cycles), dropped after a backward unless
// retain_graph is set.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/tensor.hpp"

namespace recon {

// One input of a node: either another node (a non-leaf input) or a leaf that
// requires grad, or nothing (an input that needs no gradient).
struct Edge {
  std::shared_ptr<Node> node;
  int output_nr = 0;  // which output of `node` the input is
  std::shared_ptr<TensorImpl> leaf;
  bool active() const { return node || leaf; }
};

// Gets the gradient of the node's output and says, per input, whether its
// gradient is needed; returns one gradient per input (undefined where not
// needed). It runs with grad mode off.
using BackwardFn =
    std::function<std::vector<Tensor>(const Tensor& grad_out, const std::vector<bool>& needs_grad)>;

// The backward of an op with several outputs: one gradient per output,
// undefined for an output that no path to the loss used (read it as zero).
using MultiBackwardFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& grad_outs,
                                                          const std::vector<bool>& needs_grad)>;

struct Node {
  std::string name;
  std::vector<Edge> inputs;
  std::vector<Shape> input_shapes;  // to check the gradients a backward returns
  int num_outputs = 1;
  MultiBackwardFn backward;
  bool released = false;
};

// Grad mode (thread-local, on by default).
bool grad_mode_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

namespace autograd {

// True when grad mode is on and any input requires grad.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);
bool any_requires_grad(const std::vector<Tensor>& inputs);

// Makes `output` the result of a node named `name` over `inputs`. Call only
// when any_requires_grad(inputs); undefined inputs are allowed (no edge).
void record(const char* name, Tensor& output, const std::vector<Tensor>& inputs, BackwardFn backward);
// The same for an op with several outputs computed by one fused backward
// (e.g. a sample and its KL term): `outputs` become outputs 0, 1, ... of one node.
void record_multi(const char* name, const std::vector<Tensor*>& outputs, const std::vector<Tensor>& inputs,
                  MultiBackwardFn backward);

// Runs backward from `root` with gradient `grad` (see Tensor::backward).
void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph);

}  // namespace autograd
}  // namespace recon
