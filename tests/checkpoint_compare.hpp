// Test helper shared by the app suites: two checkpoints hold the same model
// tensors, bitwise (resume and fault tests compare runs this way).
#pragma once
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <vector>

#include "nn/checkpoint.hpp"

namespace recon_test {

inline void require_same_tensors(const std::filesystem::path& a, const std::filesystem::path& b) {
  const recon::nn::Checkpoint ca = recon::nn::read_checkpoint(a.string());
  const recon::nn::Checkpoint cb = recon::nn::read_checkpoint(b.string());
  REQUIRE(ca.model.size() > 0);
  REQUIRE(ca.model.size() == cb.model.size());
  for (const auto& [name, t] : ca.model) {
    const recon::Tensor* u = cb.model.find(name);
    REQUIRE_MESSAGE(u != nullptr, name);
    const std::vector<float> x = t.to_vector(), y = u->to_vector();
    REQUIRE(x.size() == y.size());
    CHECK_MESSAGE(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0, "tensor " << name << " differs");
  }
}

}  // namespace recon_test
