// StateDict storage and the name/shape match check used by every loader.
#include "nn/state_dict.hpp"

#include <sstream>

#include "runtime/error.hpp"

namespace recon::nn {

void StateDict::insert(std::string name, Tensor t) {
  RECON_CHECK(!contains(name), "StateDict: duplicate name \"" << name << "\"");
  RECON_CHECK(t.defined(), "StateDict: tensor \"" << name << "\" is undefined");
  index_.emplace(name, items_.size());
  items_.emplace_back(std::move(name), std::move(t));
}

void StateDict::set(const std::string& name, Tensor t) {
  auto it = index_.find(name);
  if (it == index_.end()) return insert(name, std::move(t));
  RECON_CHECK(t.defined(), "StateDict: tensor \"" << name << "\" is undefined");
  items_[it->second].second = std::move(t);
}

const Tensor* StateDict::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &items_[it->second].second;
}

const Tensor& StateDict::at(const std::string& name) const {
  const Tensor* t = find(name);
  RECON_CHECK(t != nullptr, "StateDict: no tensor named \"" << name << "\"");
  return *t;
}

std::vector<std::string> StateDict::names() const {
  std::vector<std::string> out;
  out.reserve(items_.size());
  for (const auto& kv : items_) out.push_back(kv.first);
  return out;
}

void check_state_dict(const std::string& what, const StateDict& expected, const StateDict& got, bool strict) {
  std::vector<std::string> missing, unexpected, wrong_shape;
  for (const auto& [name, t] : expected) {
    const Tensor* g = got.find(name);
    if (!g) {
      missing.push_back(name);
    } else if (g->shape() != t.shape()) {
      wrong_shape.push_back(name + " (expected " + shape_str(t.shape()) + ", got " + shape_str(g->shape()) + ")");
    }
  }
  if (strict)
    for (const auto& kv : got)
      if (!expected.contains(kv.first)) unexpected.push_back(kv.first);
  if (missing.empty() && unexpected.empty() && wrong_shape.empty()) return;
  std::ostringstream os;
  os << what << ": state does not match";
  auto list = [&os](const char* label, const std::vector<std::string>& names) {
    if (names.empty()) return;
    os << "; " << label << " (" << names.size() << "): ";
    for (size_t i = 0; i < names.size(); ++i) os << (i ? ", " : "") << names[i];
  };
  list("missing", missing);
  list("unexpected", unexpected);
  list("wrong shape", wrong_shape);
  RECON_FAIL(os.str());
}

}  // namespace recon::nn
