// Test helper shared by the app suites: a tiny MNIST-format IDX split of two
// easy classes, written to a folder, so an app can train on it in seconds.
#pragma once
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/idx.hpp"
#include "runtime/generator.hpp"
#include "runtime/tensor.hpp"

namespace recon_test {

constexpr int kIdxSide = 28;

// Writes <dir>/<prefix>-{images-idx3,labels-idx1}-ubyte with n 28x28 images
// alternating class 0 (a ramp of a random offset and slope, values 40-130)
// and class 1 (uniform noise 0-255); returns the pixels.
inline std::vector<uint8_t> write_idx_split(const std::filesystem::path& dir, const std::string& prefix, int n,
                                            uint64_t seed) {
  recon::Generator gen(seed);
  const std::vector<float> u =
      recon::Tensor::uniform({(int64_t)n * (kIdxSide * kIdxSide + 2)}, gen).to_vector();
  std::vector<uint8_t> pixels, labels;
  size_t k = 0;
  for (int i = 0; i < n; ++i) {
    const int label = i % 2;
    labels.push_back((uint8_t)label);
    const float offset = 40.f + 40.f * u[k++], slope = 1.5f * u[k++];
    for (int y = 0; y < kIdxSide; ++y)
      for (int x = 0; x < kIdxSide; ++x) {
        const float v = label == 0 ? offset + slope * (float)y : 255.f * u[k];
        ++k;
        pixels.push_back((uint8_t)std::min(255.f, v));
      }
  }
  recon::data::write_idx(dir / (prefix + "-images-idx3-ubyte"), {n, kIdxSide, kIdxSide}, pixels, false);
  recon::data::write_idx(dir / (prefix + "-labels-idx1-ubyte"), {n}, labels, false);
  return pixels;
}

}  // namespace recon_test
