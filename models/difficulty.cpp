// Difficulty measures: entropy and local entropy through the image-measure
// ops, the Sobel gradient and zlib size as host loops over a copy of the
// batch, the blur-and-restore error through avg_pool2d and upsample.
#include "models/difficulty.hpp"

#include <zlib.h>

#include <cmath>
#include <sstream>

#include "runtime/autograd.hpp"
#include "runtime/error.hpp"
#include "runtime/ops.hpp"

namespace recon::models {

namespace {

struct NamedMeasure {
  DifficultyMeasure measure;
  const char* name;
};
constexpr NamedMeasure kMeasures[] = {
    {DifficultyMeasure::Entropy, "entropy"},         {DifficultyMeasure::LocalEntropy, "local-entropy"},
    {DifficultyMeasure::Gradient, "gradient"},       {DifficultyMeasure::Compression, "compression"},
    {DifficultyMeasure::Lowpass, "lowpass"},
};

void check_batch(const char* op, const Tensor& x) {
  RECON_CHECK(x.defined(), op << ": the input is undefined");
  RECON_CHECK(x.dim() == 4, op << ": the input must be (N, C, H, W), got " << shape_str(x.shape()));
  RECON_CHECK(x.size(1) > 0 && x.size(2) > 0 && x.size(3) > 0,
              op << ": images " << shape_str(x.shape()) << " are empty");
}

// Reflect index into [0, n) as PyTorch's reflect padding: -1 -> 1, n -> n - 2.
int reflect(int i, int n) { return i < 0 ? -i : (i >= n ? 2 * n - 2 - i : i); }

// One number per image from a 0-d-per-image tensor (N) on any device.
std::vector<float> per_image(const Tensor& t) { return t.to_vector(); }

}  // namespace

const std::vector<DifficultyMeasure>& all_difficulty_measures() {
  static const std::vector<DifficultyMeasure> all = [] {
    std::vector<DifficultyMeasure> v;
    for (const NamedMeasure& m : kMeasures) v.push_back(m.measure);
    return v;
  }();
  return all;
}

const char* difficulty_measure_name(DifficultyMeasure m) {
  for (const NamedMeasure& nm : kMeasures)
    if (nm.measure == m) return nm.name;
  RECON_FAIL("difficulty_measure_name: unknown measure " << (int)m);
}

DifficultyMeasure parse_difficulty_measure(std::string_view name) {
  std::ostringstream valid;
  for (const NamedMeasure& nm : kMeasures) {
    if (name == nm.name) return nm.measure;
    valid << (&nm == kMeasures ? "" : ", ") << nm.name;
  }
  RECON_FAIL("unknown difficulty measure '" << name << "' (valid: " << valid.str() << ")");
}

std::vector<float> sobel_gradient_mean(const Tensor& x) {
  const char* op = "sobel_gradient_mean";
  check_batch(op, x);
  const int n = (int)x.size(0), c = (int)x.size(1), h = (int)x.size(2), w = (int)x.size(3);
  RECON_CHECK(h >= 2 && w >= 2, op << ": H and W must be at least 2 for reflect padding, got " << shape_str(x.shape()));
  const std::vector<float> v = x.to_vector();
  const size_t plane = (size_t)h * w;
  std::vector<float> gray(plane), out(n);
  for (int b = 0; b < n; ++b) {
    const float* img = v.data() + (size_t)b * c * plane;
    for (size_t i = 0; i < plane; ++i) {
      double s = 0;
      for (int ch = 0; ch < c; ++ch) s += img[ch * plane + i];
      gray[i] = (float)(s / c);
    }
    auto g = [&](int yy, int xx) { return (double)gray[(size_t)reflect(yy, h) * w + reflect(xx, w)]; };
    double total = 0;
    for (int y = 0; y < h; ++y) {
      for (int xx = 0; xx < w; ++xx) {
        // Sobel: derivative [-1 0 1] across, smoothing [1 2 1] along; / 8 makes it per pixel.
        const double gx = (g(y - 1, xx + 1) + 2 * g(y, xx + 1) + g(y + 1, xx + 1) - g(y - 1, xx - 1) -
                           2 * g(y, xx - 1) - g(y + 1, xx - 1)) / 8.0;
        const double gy = (g(y + 1, xx - 1) + 2 * g(y + 1, xx) + g(y + 1, xx + 1) - g(y - 1, xx - 1) -
                           2 * g(y - 1, xx) - g(y - 1, xx + 1)) / 8.0;
        total += std::sqrt(gx * gx + gy * gy);
      }
    }
    out[b] = (float)(total / (double)plane);
  }
  return out;
}

std::vector<float> compressed_bits_per_pixel(const Tensor& x, int level) {
  const char* op = "compressed_bits_per_pixel";
  check_batch(op, x);
  RECON_CHECK(level >= 0 && level <= 9, op << ": zlib level must be in [0, 9], got " << level);
  const int n = (int)x.size(0), c = (int)x.size(1), h = (int)x.size(2), w = (int)x.size(3);
  const std::vector<float> v = x.to_vector();
  const size_t plane = (size_t)h * w;
  std::vector<Bytef> raw(plane * c);
  std::vector<Bytef> packed(compressBound((uLong)raw.size()));
  std::vector<float> out(n);
  for (int b = 0; b < n; ++b) {
    const float* img = v.data() + (size_t)b * c * plane;
    for (int ch = 0; ch < c; ++ch) {
      for (size_t i = 0; i < plane; ++i) {
        const float p = img[ch * plane + i];
        RECON_CHECK(p >= 0.f && p <= 1.f, op << ": value " << p << " of image " << b << " is outside [0, 1]");
        raw[i * c + ch] = (Bytef)std::lround(255.0 * p);  // (H, W, C) interleaved
      }
    }
    uLongf size = (uLongf)packed.size();
    const int rc = compress2(packed.data(), &size, raw.data(), (uLong)raw.size(), level);
    RECON_CHECK(rc == Z_OK, op << ": zlib compress2 failed with code " << rc);
    out[b] = (float)(8.0 * (double)size / (double)plane);
  }
  return out;
}

std::vector<float> lowpass_error(const Tensor& x, int factor) {
  const char* op = "lowpass_error";
  check_batch(op, x);
  RECON_CHECK(factor >= 1, op << ": factor must be >= 1, got " << factor);
  const int64_t h = x.size(2), w = x.size(3);
  RECON_CHECK(h >= factor && w >= factor,
              op << ": H and W must be at least the factor " << factor << ", got " << shape_str(x.shape()));
  NoGradGuard no_grad;
  const Tensor xd = x.detach();
  Pool2dOptions pool;
  pool.kernel = {factor, factor};
  pool.stride = {factor, factor};
  const Tensor restored = upsample(avg_pool2d(xd, pool), (int)h, (int)w, UpsampleMode::Bilinear);
  const Tensor diff = sub(xd, restored);
  return per_image(mean(mul(diff, diff), {1, 2, 3}));  // (N)
}

std::vector<float> difficulty(const Tensor& x, DifficultyMeasure m, const DifficultyOptions& opt) {
  check_batch("difficulty", x);
  switch (m) {
    case DifficultyMeasure::Entropy:
      return per_image(image_entropy(x.detach()));  // (N)
    case DifficultyMeasure::LocalEntropy: {
      const Tensor map = local_entropy(x.detach(), opt.local_entropy_window, opt.local_entropy_bins);  // (N, 1, H, W)
      return per_image(mean(map, {1, 2, 3}));
    }
    case DifficultyMeasure::Gradient:
      return sobel_gradient_mean(x);
    case DifficultyMeasure::Compression:
      return compressed_bits_per_pixel(x, opt.zlib_level);
    case DifficultyMeasure::Lowpass:
      return lowpass_error(x, opt.lowpass_factor);
  }
  RECON_FAIL("difficulty: unknown measure " << (int)m);
}

}  // namespace recon::models
