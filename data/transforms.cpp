// Image transforms on planar float images, their Sample-level wrappers, and
// the RotNet rotation batch.
#include "data/transforms.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/error.hpp"

namespace recon::data {

// ITU-R BT.601 luma weights (the same as image_io's decoder).
static constexpr float kLumaR = 0.299f, kLumaG = 0.587f, kLumaB = 0.114f;

namespace {

// One output coordinate as a weighted sum of input coordinates.
struct Tap {
  int index;
  float weight;
};
using Taps = std::vector<std::vector<Tap>>;  // per output coordinate

Taps axis_taps(int in, int out, ResizeMode mode) {
  Taps taps(out);
  const double scale = (double)in / out;
  for (int o = 0; o < out; ++o) {
    switch (mode) {
      case ResizeMode::Nearest:
        taps[o] = {{std::min((int)std::floor(o * scale), in - 1), 1.f}};
        break;
      case ResizeMode::Bilinear: {
        double src = std::max((o + 0.5) * scale - 0.5, 0.0);
        int i0 = std::min((int)src, in - 1);
        int i1 = std::min(i0 + 1, in - 1);
        float l = (float)(src - i0);
        taps[o] = {{i0, 1.f - l}, {i1, l}};
        break;
      }
      case ResizeMode::Area: {
        // Input interval [o * scale, (o + 1) * scale), each input pixel
        // weighted by its overlap.
        double a = o * scale, b = (o + 1) * scale;
        for (int i = (int)std::floor(a); i < in && i < b; ++i) {
          double w = std::min<double>(b, i + 1) - std::max<double>(a, i);
          if (w > 0) taps[o].push_back({i, (float)(w / scale)});
        }
        break;
      }
    }
  }
  return taps;
}

}  // namespace

Image resize(const Image& img, int height, int width, ResizeMode mode) {
  RECON_CHECK(!img.empty(), "resize: empty image");
  RECON_CHECK(height > 0 && width > 0, "resize: bad size " << height << "x" << width);
  if (height == img.height && width == img.width) return img;
  Taps ty = axis_taps(img.height, height, mode), tx = axis_taps(img.width, width, mode);
  // Separable: rows first into (C, H, width), then columns.
  Image tmp(img.channels, img.height, width);
  for (int c = 0; c < img.channels; ++c)
    for (int y = 0; y < img.height; ++y)
      for (int x = 0; x < width; ++x) {
        float acc = 0;
        for (const Tap& t : tx[x]) acc += t.weight * img.at(c, y, t.index);
        tmp.at(c, y, x) = acc;
      }
  Image out(img.channels, height, width);
  for (int c = 0; c < img.channels; ++c)
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) {
        float acc = 0;
        for (const Tap& t : ty[y]) acc += t.weight * tmp.at(c, t.index, x);
        out.at(c, y, x) = acc;
      }
  return out;
}

Image crop(const Image& img, int top, int left, int height, int width) {
  RECON_CHECK(height > 0 && width > 0 && top >= 0 && left >= 0 && top + height <= img.height &&
                  left + width <= img.width,
              "crop: window " << height << "x" << width << " at (" << top << ", " << left << ") is outside the "
                              << img.height << "x" << img.width << " image");
  Image out(img.channels, height, width);
  for (int c = 0; c < img.channels; ++c)
    for (int y = 0; y < height; ++y)
      std::memcpy(out.row(c, y), img.row(c, top + y) + left, (size_t)width * sizeof(float));
  return out;
}

Image center_crop(const Image& img, int height, int width) {
  RECON_CHECK(height <= img.height && width <= img.width,
              "center_crop: " << height << "x" << width << " is larger than the " << img.height << "x" << img.width
                              << " image");
  return crop(img, (img.height - height) / 2, (img.width - width) / 2, height, width);
}

Image to_gray(const Image& img) {
  if (img.channels == 1) return img;
  RECON_CHECK(img.channels == 3, "to_gray: needs 1 or 3 channels, got " << img.channels);
  Image out(1, img.height, img.width);
  size_t n = img.plane();
  for (size_t p = 0; p < n; ++p)
    out.pixels[p] = kLumaR * img.pixels[p] + kLumaG * img.pixels[n + p] + kLumaB * img.pixels[2 * n + p];
  return out;
}

Image to_rgb(const Image& img) {
  if (img.channels == 3) return img;
  RECON_CHECK(img.channels == 1, "to_rgb: needs 1 or 3 channels, got " << img.channels);
  Image out(3, img.height, img.width);
  for (int c = 0; c < 3; ++c) std::copy(img.pixels.begin(), img.pixels.end(), out.pixels.begin() + c * img.plane());
  return out;
}

void normalize(Image& img, const std::vector<float>& mean, const std::vector<float>& std) {
  auto ok = [&](const std::vector<float>& v) { return v.size() == 1 || v.size() == (size_t)img.channels; };
  RECON_CHECK(ok(mean) && ok(std), "normalize: " << mean.size() << " means and " << std.size() << " stds for "
                                                 << img.channels << " channels (give 1 or " << img.channels << ")");
  for (int c = 0; c < img.channels; ++c) {
    float m = mean[mean.size() == 1 ? 0 : c], s = std[std.size() == 1 ? 0 : c];
    RECON_CHECK(s > 0, "normalize: std of channel " << c << " must be positive, got " << s);
    float* p = img.row(c, 0);
    for (size_t i = 0; i < img.plane(); ++i) p[i] = (p[i] - m) / s;
  }
}

Image rot90(const Image& img, int k) {
  k = ((k % 4) + 4) % 4;
  if (k == 0) return img;
  const int h = img.height, w = img.width;
  Image out(img.channels, k == 2 ? h : w, k == 2 ? w : h);
  for (int c = 0; c < img.channels; ++c)
    for (int y = 0; y < out.height; ++y)
      for (int x = 0; x < out.width; ++x) {
        // Counter-clockwise: k=1 out[y][x] = in[x][w-1-y]; k=2 in[h-1-y][w-1-x]; k=3 in[h-1-x][y].
        float v = k == 1 ? img.at(c, x, w - 1 - y) : k == 2 ? img.at(c, h - 1 - y, w - 1 - x) : img.at(c, h - 1 - x, y);
        out.at(c, y, x) = v;
      }
  return out;
}

Image flip_horizontal(const Image& img) {
  Image out = img;
  for (int c = 0; c < img.channels; ++c)
    for (int y = 0; y < img.height; ++y) std::reverse(out.row(c, y), out.row(c, y) + img.width);
  return out;
}

Image flip_vertical(const Image& img) {
  Image out = img;
  for (int c = 0; c < img.channels; ++c)
    for (int y = 0; y < img.height; ++y)
      std::memcpy(out.row(c, y), img.row(c, img.height - 1 - y), (size_t)img.width * sizeof(float));
  return out;
}

Image pad(const Image& img, int amount, float value) {
  RECON_CHECK(amount >= 0, "pad: negative amount " << amount);
  if (amount == 0) return img;
  Image out(img.channels, img.height + 2 * amount, img.width + 2 * amount, value);
  for (int c = 0; c < img.channels; ++c)
    for (int y = 0; y < img.height; ++y)
      std::memcpy(out.row(c, y + amount) + amount, img.row(c, y), (size_t)img.width * sizeof(float));
  return out;
}

// ---- sample transforms ------------------------------------------------------------------------------

namespace transforms {

// Applies a geometric op to the image and, when present, the mask.
template <class F>
static void both(Sample& s, F&& f) {
  s.image = f(s.image);
  if (!s.mask.empty()) s.mask = f(s.mask);
}

Transform compose(std::vector<Transform> ts) {
  return [ts = std::move(ts)](Sample& s, Generator& g) {
    for (const Transform& t : ts) t(s, g);
  };
}

Transform resize(int height, int width, ResizeMode mode) {
  return [=](Sample& s, Generator&) {
    s.image = data::resize(s.image, height, width, mode);
    if (!s.mask.empty()) s.mask = data::resize(s.mask, height, width, ResizeMode::Nearest);
  };
}

Transform center_crop(int height, int width) {
  return [=](Sample& s, Generator&) { both(s, [&](const Image& im) { return data::center_crop(im, height, width); }); };
}

Transform to_gray() {
  return [](Sample& s, Generator&) { s.image = data::to_gray(s.image); };
}

Transform to_rgb() {
  return [](Sample& s, Generator&) { s.image = data::to_rgb(s.image); };
}

Transform normalize(std::vector<float> mean, std::vector<float> std) {
  return [=](Sample& s, Generator&) { data::normalize(s.image, mean, std); };
}

Transform random_hflip(float p) {
  return [=](Sample& s, Generator& g) {
    if (g.uniform() < p) both(s, flip_horizontal);
  };
}

Transform random_vflip(float p) {
  return [=](Sample& s, Generator& g) {
    if (g.uniform() < p) both(s, flip_vertical);
  };
}

Transform random_crop(int height, int width, int padding) {
  return [=](Sample& s, Generator& g) {
    both(s, [&](const Image& im) { return data::pad(im, padding); });
    RECON_CHECK(height <= s.image.height && width <= s.image.width,
                "random_crop: " << height << "x" << width << " is larger than the padded " << s.image.height << "x"
                                << s.image.width << " image of " << s.source);
    int top = (int)g.randint(s.image.height - height + 1);
    int left = (int)g.randint(s.image.width - width + 1);
    both(s, [&](const Image& im) { return data::crop(im, top, left, height, width); });
  };
}

}  // namespace transforms

// ---- RotNet ----------------------------------------------------------------------------------------

RotationBatch make_rotation_batch(const Tensor& images) {
  RECON_CHECK(images.defined() && images.dim() == 4 && images.size(2) == images.size(3),
              "make_rotation_batch: expected square (N, C, S, S) images, got "
                  << (images.defined() ? shape_str(images.shape()) : std::string("an undefined tensor")));
  RECON_CHECK(images.device().is_cpu(), "make_rotation_batch: images must be on the CPU, got "
                                            << images.device().str());
  const int64_t n = images.size(0), c = images.size(1), s = images.size(2);
  Tensor src = images.contiguous();
  const float* in = src.data();
  RotationBatch b;
  b.images = Tensor::empty({4 * n, c, s, s});
  b.labels = Tensor::empty({4 * n});
  float* out = b.images.data();
  float* lab = b.labels.data();
  const int64_t plane = s * s;
  for (int64_t i = 0; i < n; ++i)
    for (int k = 0; k < 4; ++k) {
      lab[4 * i + k] = (float)k;
      for (int64_t ch = 0; ch < c; ++ch) {
        const float* p = in + (i * c + ch) * plane;
        float* q = out + ((4 * i + k) * c + ch) * plane;
        for (int64_t y = 0; y < s; ++y)
          for (int64_t x = 0; x < s; ++x) {
            int64_t sy = k == 0 ? y : k == 1 ? x : k == 2 ? s - 1 - y : s - 1 - x;
            int64_t sx = k == 0 ? x : k == 1 ? s - 1 - y : k == 2 ? s - 1 - x : y;
            q[y * s + x] = p[sy * s + sx];
          }
      }
    }
  return b;
}

RotationDataset::RotationDataset(DatasetPtr base) : base_(std::move(base)) {
  RECON_CHECK(base_ != nullptr, "RotationDataset: null base dataset");
}

Sample RotationDataset::get(size_t i) const {
  RECON_CHECK(i < size(), "RotationDataset: index " << i << " out of range (size " << size() << ")");
  Sample s = base_->get(i / 4);
  int k = (int)(i % 4);
  s.image = rot90(s.image, k);
  if (!s.mask.empty()) s.mask = rot90(s.mask, k);
  s.label = k;
  return s;
}

std::string RotationDataset::source(size_t i) const {
  return base_->source(i / 4) + " rot" + std::to_string(90 * (i % 4));
}

}  // namespace recon::data
