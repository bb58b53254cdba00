// models/difficulty: every measure orders generated images flat < smooth
// texture < noise, gives the known value where there is one (constant image,
// two-level image, ramp, checkerboard, 8-bit noise), works per image in a
// batch, and the names parse.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "models/difficulty.hpp"
#include "runtime/error.hpp"
#include "runtime/generator.hpp"
#include "runtime/ops.hpp"

using namespace recon;
using namespace recon::models;

namespace {

constexpr int kSize = 64;

Tensor flat_image(int c, float value) { return Tensor::full({1, c, kSize, kSize}, value); }

// Smooth random texture: a 4x4 grid of uniform values bilinearly upsampled to
// 64x64 (16 pixels per cell), squeezed into [0.25, 0.75].
Tensor smooth_image(int c, uint64_t seed) {
  Generator gen(seed);
  const Tensor coarse = Tensor::uniform({1, c, 4, 4}, gen);
  return add_scalar(scale(upsample(coarse, kSize, kSize, UpsampleMode::Bilinear), 0.5f), 0.25f);
}

// Independent uniform noise in [0, 1) per pixel.
Tensor noise_image(int c, uint64_t seed) {
  Generator gen(seed);
  return Tensor::uniform({1, c, kSize, kSize}, gen);
}

// A (1, 1, H, W) image from a function of (y, x).
template <class F>
Tensor image_of(int h, int w, F f) {
  std::vector<float> v((size_t)h * w);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) v[(size_t)y * w + x] = f(y, x);
  return Tensor::from_vector(v, {1, 1, h, w});
}

}  // namespace

TEST_CASE("difficulty: every measure orders flat < smooth texture < noise") {
  for (int c : {1, 3}) {
    const Tensor batch = concat({flat_image(c, 0.5f), smooth_image(c, 11), noise_image(c, 12)}, 0);  // (3, c, 64, 64)
    for (DifficultyMeasure m : all_difficulty_measures()) {
      INFO("measure " << std::string(difficulty_measure_name(m)) << ", channels " << c);
      const std::vector<float> d = difficulty(batch, m);
      REQUIRE(d.size() == 3);
      INFO("flat " << d[0] << ", smooth " << d[1] << ", noise " << d[2]);
      CHECK(d[0] < d[1]);
      CHECK(d[1] < d[2]);
    }
  }
}

TEST_CASE("difficulty: each image of a batch is measured on its own") {
  const Tensor a = smooth_image(1, 3), b = noise_image(1, 4);
  const Tensor batch = concat({a, b}, 0);
  for (DifficultyMeasure m : all_difficulty_measures()) {
    INFO("measure " << std::string(difficulty_measure_name(m)));
    const std::vector<float> both = difficulty(batch, m);
    REQUIRE(both.size() == 2);
    CHECK(both[0] == doctest::Approx(difficulty(a, m)[0]).epsilon(1e-6));
    CHECK(both[1] == doctest::Approx(difficulty(b, m)[0]).epsilon(1e-6));
  }
}

TEST_CASE("difficulty: a constant image is easy") {
  const Tensor x = flat_image(3, 0.37f);
  CHECK(difficulty(x, DifficultyMeasure::Entropy)[0] == doctest::Approx(0.0));
  CHECK(difficulty(x, DifficultyMeasure::LocalEntropy)[0] == doctest::Approx(0.0));
  CHECK(difficulty(x, DifficultyMeasure::Gradient)[0] == 0.f);
  CHECK(difficulty(x, DifficultyMeasure::Lowpass)[0] == doctest::Approx(0.0).epsilon(1e-12));
  // zlib's header, checksum and a few bytes of run: far below a bit per pixel.
  const float bpp = difficulty(x, DifficultyMeasure::Compression)[0];
  CHECK(bpp > 0.f);
  CHECK(bpp < 0.1f);
  // Three different constant channels are still flat in gray.
  const Tensor rgb = concat({flat_image(1, 0.1f), flat_image(1, 0.5f), flat_image(1, 0.9f)}, 1);
  CHECK(sobel_gradient_mean(rgb)[0] == doctest::Approx(0.0).epsilon(1e-12));
}

TEST_CASE("difficulty: known values") {
  SUBCASE("entropy of a half-black, half-white image is 1 bit") {
    const Tensor x = image_of(kSize, kSize, [](int, int xx) { return xx < kSize / 2 ? 0.f : 1.f; });
    CHECK(difficulty(x, DifficultyMeasure::Entropy)[0] == doctest::Approx(1.0).epsilon(1e-5));
  }
  SUBCASE("gradient of a ramp is its slope, except on the reflected border") {
    // v = s x: gx = s inside; at x = 0 and x = W-1 reflection makes both
    // sides equal (gx = 0): the mean is s (W - 2) / W.
    const float s = 1.f / kSize;
    const double want = s * (double)(kSize - 2) / kSize;
    const Tensor across = image_of(kSize, kSize, [&](int, int xx) { return s * (float)xx; });
    const Tensor down = image_of(kSize, kSize, [&](int y, int) { return s * (float)y; });
    CHECK(sobel_gradient_mean(across)[0] == doctest::Approx(want).epsilon(1e-5));
    CHECK(sobel_gradient_mean(down)[0] == doctest::Approx(want).epsilon(1e-5));
    // A diagonal ramp v = s (x + y): |g| = s sqrt(2) inside.
    const Tensor diag = image_of(kSize, kSize, [&](int y, int xx) { return s * (float)(xx + y) / 2.f; });
    const double inside = s / 2 * std::sqrt(2.0);
    const double d = sobel_gradient_mean(diag)[0];
    CHECK(d < inside);  // the border loses part of it
    CHECK(d > inside * (kSize - 2.0) / kSize * (kSize - 2.0) / kSize);
  }
  SUBCASE("8-bit uniform noise does not compress") {
    const float bpp1 = compressed_bits_per_pixel(noise_image(1, 5))[0];
    CHECK(bpp1 > 7.9f);
    CHECK(bpp1 < 8.2f);  // stored blocks cost a little above 8
    const float bpp3 = compressed_bits_per_pixel(noise_image(3, 6))[0];
    CHECK(bpp3 > 3 * 7.9f);
    CHECK(bpp3 < 3 * 8.2f);
  }
  SUBCASE("lowpass of a 0/1 checkerboard loses everything: MSE 0.25") {
    const Tensor x = image_of(kSize, kSize, [](int y, int xx) { return (float)((y + xx) % 2); });
    CHECK(lowpass_error(x)[0] == doctest::Approx(0.25).epsilon(1e-6));
    // Blocks of 4x4 constant values come back blurred at their edges only:
    // some error, well below the checkerboard's.
    const Tensor blocks = image_of(kSize, kSize, [](int y, int xx) { return (float)((y / 4 + xx / 4) % 2); });
    const float e = lowpass_error(blocks)[0];
    CHECK(e > 0.f);
    CHECK(e < 0.25f);
    // factor 1 restores exactly.
    CHECK(lowpass_error(x, 1)[0] == doctest::Approx(0.0).epsilon(1e-12));
  }
}

TEST_CASE("difficulty: options reach the measures") {
  const Tensor x = noise_image(1, 9);
  DifficultyOptions two_bins;
  two_bins.local_entropy_bins = 2;  // at most 1 bit per window
  CHECK(difficulty(x, DifficultyMeasure::LocalEntropy, two_bins)[0] <= 1.0f + 1e-6f);
  CHECK(difficulty(x, DifficultyMeasure::LocalEntropy)[0] > 3.0f);
  DifficultyOptions stored;
  stored.zlib_level = 0;  // stored blocks: 8 bits per pixel plus framing
  CHECK(difficulty(flat_image(1, 0.f), DifficultyMeasure::Compression, stored)[0] > 8.f);
  DifficultyOptions fine;
  fine.lowpass_factor = 2;
  const Tensor s = smooth_image(1, 10);
  CHECK(difficulty(s, DifficultyMeasure::Lowpass, fine)[0] < difficulty(s, DifficultyMeasure::Lowpass)[0]);
}

TEST_CASE("difficulty: names parse, and a bad name lists the valid ones") {
  const std::vector<std::string> names = {"entropy", "local-entropy", "gradient", "compression", "lowpass"};
  REQUIRE(all_difficulty_measures().size() == names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    CHECK(difficulty_measure_name(all_difficulty_measures()[i]) == names[i]);
    CHECK(parse_difficulty_measure(names[i]) == all_difficulty_measures()[i]);
  }
  CHECK(parse_difficulty_measure("local-entropy") == DifficultyMeasure::LocalEntropy);
  CHECK_THROWS_WITH_AS(parse_difficulty_measure("Entropy"),
                       doctest::Contains("unknown difficulty measure 'Entropy' (valid: entropy, local-entropy, "
                                         "gradient, compression, lowpass)"),
                       recon::Error);
}

TEST_CASE("difficulty: bad input is rejected") {
  CHECK_THROWS_WITH_AS(difficulty(Tensor::zeros({4, 4}), DifficultyMeasure::Gradient),
                       doctest::Contains("(N, C, H, W)"), recon::Error);
  CHECK_THROWS_WITH_AS(compressed_bits_per_pixel(Tensor::full({1, 1, 4, 4}, 1.5f)),
                       doctest::Contains("outside [0, 1]"), recon::Error);
  CHECK_THROWS_WITH_AS(compressed_bits_per_pixel(flat_image(1, 0.f), 10), doctest::Contains("zlib level"),
                       recon::Error);
  CHECK_THROWS_WITH_AS(lowpass_error(Tensor::zeros({1, 1, 3, 8})), doctest::Contains("at least the factor"),
                       recon::Error);
  CHECK_THROWS_WITH_AS(sobel_gradient_mean(Tensor::zeros({1, 1, 1, 8})), doctest::Contains("at least 2"),
                       recon::Error);
}
