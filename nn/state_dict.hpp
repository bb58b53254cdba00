// StateDict: an ordered map from names ("encoder.0.weight") to tensors, the
// currency of modules, optimizers and checkpoints. Insertion order is kept
// (it is the order a module registers its parameters, as in PyTorch); names
// are unique. Also the check that a loaded state matches an expected one,
// naming every tensor that is missing, unexpected or of the wrong shape.
#pragma once
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "runtime/tensor.hpp"

namespace recon::nn {

class StateDict {
 public:
  using Item = std::pair<std::string, Tensor>;

  // Adds a new name; throws if it is already present.
  void insert(std::string name, Tensor t);
  // Adds or replaces.
  void set(const std::string& name, Tensor t);
  const Tensor* find(const std::string& name) const;  // nullptr if absent
  const Tensor& at(const std::string& name) const;    // throws naming the key
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  std::vector<std::string> names() const;

  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }
  const std::vector<Item>& items() const { return items_; }

 private:
  std::vector<Item> items_;
  std::unordered_map<std::string, size_t> index_;
};

// Throws recon::Error when `got` does not match `expected` (names and shapes):
// the message starts with `what` and lists every missing name, every
// unexpected name (only when strict) and every shape mismatch with both shapes.
void check_state_dict(const std::string& what, const StateDict& expected, const StateDict& got, bool strict = true);

}  // namespace recon::nn
