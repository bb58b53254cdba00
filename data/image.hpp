// Image: one decoded picture as planar float (C, H, W) in [0, 1], the form
// every reader produces and every transform consumes, plus its conversions
// to and from a (C, H, W) Tensor. Masks are Images with one channel whose
// pixels are 0 (normal) or 1 (anomalous).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "runtime/tensor.hpp"

namespace recon::data {

struct Image {
  int channels = 0;
  int height = 0;
  int width = 0;
  std::vector<float> pixels;  // (C, H, W) planar, row-major

  Image() = default;
  Image(int c, int h, int w, float fill = 0.f);

  bool empty() const { return pixels.empty(); }
  size_t numel() const { return (size_t)channels * height * width; }
  size_t plane() const { return (size_t)height * width; }
  float& at(int c, int y, int x) { return pixels[((size_t)c * height + y) * width + x]; }
  float at(int c, int y, int x) const { return pixels[((size_t)c * height + y) * width + x]; }
  float* row(int c, int y) { return pixels.data() + ((size_t)c * height + y) * width; }
  const float* row(int c, int y) const { return pixels.data() + ((size_t)c * height + y) * width; }
  bool same_size(const Image& o) const { return height == o.height && width == o.width; }
  std::string shape_str() const;  // "(3, 128, 128)"
};

// (C, H, W) float32 on the CPU.
Tensor image_to_tensor(const Image& img);
// From a (C, H, W) or (H, W) tensor on any device (copied to the host).
Image image_from_tensor(const Tensor& t);

}  // namespace recon::data
