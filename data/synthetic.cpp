// Synthetic textures and defects (see synthetic.hpp).
#include "data/synthetic.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "data/image_io.hpp"
#include "runtime/error.hpp"

namespace fs = std::filesystem;

namespace recon::data {

namespace {

constexpr float kPi = 3.14159265358979f;
constexpr int kGratings = 3;           // sinusoids summed into a texture
constexpr float kGratingAmp = 0.12f;   // amplitude of each grating
constexpr float kNoiseAmp = 0.03f;     // fine per-pixel noise

// The fixed part of a category's texture.
struct Texture {
  float base[3];
  float fx[kGratings], fy[kGratings];  // cycles per pixel
  float tint[kGratings][3];            // per-channel weight of each grating
};

// Base colour in [0.35, 0.65] per channel (mid-grey, room for defects above
// and below); grating periods of about 6 to 25 pixels in any direction.
Texture make_texture(uint64_t texture_seed) {
  Generator g(texture_seed);
  Texture t{};
  for (float& b : t.base) b = 0.35f + 0.3f * g.uniform();
  for (int k = 0; k < kGratings; ++k) {
    float angle = 2 * kPi * g.uniform();
    float freq = 0.04f + 0.12f * g.uniform();
    t.fx[k] = freq * std::cos(angle);
    t.fy[k] = freq * std::sin(angle);
    for (float& w : t.tint[k]) w = 0.5f + 0.5f * g.uniform();
  }
  return t;
}

// Paints `value` (per channel) where inside(y, x); marks the mask.
template <class Inside>
void paint(Sample& s, const float* value, Inside&& inside) {
  for (int y = 0; y < s.image.height; ++y)
    for (int x = 0; x < s.image.width; ++x)
      if (inside((float)y, (float)x)) {
        for (int c = 0; c < s.image.channels; ++c) s.image.at(c, y, x) = value[c];
        s.mask.at(0, y, x) = 1.f;
      }
}

// FNV-1a: a category name -> 64 bits, the same on every platform.
uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

}  // namespace

const char* defect_name(SyntheticDefect d) {
  switch (d) {
    case SyntheticDefect::None: return "good";
    case SyntheticDefect::Scratch: return "scratch";
    case SyntheticDefect::Hole: return "hole";
    case SyntheticDefect::Blob: return "blob";
  }
  return "?";
}

Sample synthetic_sample(const SyntheticOptions& opt, uint64_t texture_seed, SyntheticDefect defect, Generator& gen) {
  RECON_CHECK(opt.channels == 1 || opt.channels == 3, "synthetic: channels must be 1 or 3, got " << opt.channels);
  RECON_CHECK(opt.size >= 16, "synthetic: size must be at least 16, got " << opt.size);
  const int n = opt.size, ch = opt.channels;
  Texture t = make_texture(texture_seed);
  Sample s;
  s.image = Image(ch, n, n);
  s.mask = Image(1, n, n, 0.f);
  float phase[kGratings];
  for (float& p : phase) p = 2 * kPi * gen.uniform();
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      float noise = kNoiseAmp * (2 * gen.uniform() - 1);
      for (int c = 0; c < ch; ++c) {
        float v = t.base[c] + noise;
        for (int k = 0; k < kGratings; ++k)
          v += kGratingAmp * t.tint[k][c] * std::sin(2 * kPi * (t.fx[k] * x + t.fy[k] * y) + phase[k]);
        s.image.at(c, y, x) = std::clamp(v, 0.f, 1.f);
      }
    }
  s.kind = defect_name(defect);
  s.label = defect == SyntheticDefect::None ? 0 : 1;
  // Defects sit in the central half of the image so they are never clipped
  // away; sizes below are fractions of the side.
  const float cy = n * (0.25f + 0.5f * gen.uniform()), cx = n * (0.25f + 0.5f * gen.uniform());
  switch (defect) {
    case SyntheticDefect::None:
      break;
    case SyntheticDefect::Scratch: {
      // A thin segment through (cy, cx): pixels within half_width of it.
      float angle = kPi * gen.uniform(), half_len = n * (0.15f + 0.2f * gen.uniform());
      float half_width = 0.6f + 0.6f * gen.uniform();
      float dy = std::sin(angle), dx = std::cos(angle);
      float bright = gen.uniform() < 0.5f ? 0.95f : 0.05f;
      float value[3] = {bright, bright, bright};
      paint(s, value, [&](float y, float x) {
        float along = (y - cy) * dy + (x - cx) * dx, across = -(y - cy) * dx + (x - cx) * dy;
        return std::abs(along) <= half_len && std::abs(across) <= half_width;
      });
      break;
    }
    case SyntheticDefect::Hole: {
      float ry = n * (0.05f + 0.08f * gen.uniform()), rx = n * (0.05f + 0.08f * gen.uniform());
      float value[3] = {0.02f, 0.02f, 0.02f};
      paint(s, value, [&](float y, float x) {
        float u = (y - cy) / ry, v = (x - cx) / rx;
        return u * u + v * v <= 1.f;
      });
      break;
    }
    case SyntheticDefect::Blob: {
      // A disk whose radius wobbles with the angle, in a colour far from the base.
      float r0 = n * (0.06f + 0.08f * gen.uniform()), wobble = 0.25f * gen.uniform(), turn = 2 * kPi * gen.uniform();
      float value[3];
      for (int c = 0; c < 3; ++c) value[c] = t.base[c] > 0.5f ? 0.05f + 0.2f * gen.uniform() : 0.8f + 0.2f * gen.uniform();
      paint(s, value, [&](float y, float x) {
        float r = std::hypot(y - cy, x - cx), a = std::atan2(y - cy, x - cx);
        return r <= r0 * (1.f + wobble * std::sin(3 * a + turn));
      });
      break;
    }
  }
  return s;
}

void write_synthetic_mvtec(const fs::path& root, const std::string& category, const SyntheticOptions& opt) {
  RECON_CHECK(!category.empty(), "synthetic: empty category name");
  const fs::path cat = root / category;
  std::error_code ec;
  for (const char* d : {"train/good", "test/good", "test/scratch", "test/hole", "test/blob", "ground_truth/scratch",
                        "ground_truth/hole", "ground_truth/blob"}) {
    fs::create_directories(cat / d, ec);
    RECON_CHECK(!ec, "synthetic: cannot create " << (cat / d).string() << " (" << ec.message() << ")");
  }
  // The texture depends on (seed, category); each image draws its own variation.
  uint64_t texture_seed = opt.seed ^ fnv1a(category);
  Generator gen(opt.seed * 0x9E3779B97F4A7C15ull + 1);
  auto name = [](int i) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%03d", i);
    return std::string(buf);
  };
  for (int i = 0; i < opt.train_count; ++i)
    write_png(cat / "train/good" / (name(i) + ".png"), synthetic_sample(opt, texture_seed, SyntheticDefect::None, gen).image);
  for (int i = 0; i < opt.test_good_count; ++i)
    write_png(cat / "test/good" / (name(i) + ".png"), synthetic_sample(opt, texture_seed, SyntheticDefect::None, gen).image);
  for (SyntheticDefect d : {SyntheticDefect::Scratch, SyntheticDefect::Hole, SyntheticDefect::Blob})
    for (int i = 0; i < opt.test_defect_count; ++i) {
      Sample s = synthetic_sample(opt, texture_seed, d, gen);
      write_png(cat / "test" / defect_name(d) / (name(i) + ".png"), s.image);
      write_png(cat / "ground_truth" / defect_name(d) / (name(i) + "_mask.png"), s.mask);
    }
}

}  // namespace recon::data
