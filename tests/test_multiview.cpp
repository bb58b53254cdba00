// models/multiview: each view on hand-made pairs (identical images score 0,
// known MSE and cosine), the ratio and residual normalisations on synthetic
// numbers with a known linear relation, z-scores of the calibration data
// (mean 0, std 1), the fused score ranking a broken reconstruction above
// normal ones, the calibration's checkpoint round trip, extra views, and the
// pixel map highlighting where x and x_hat differ.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

#include "models/conv_ae.hpp"
#include "models/multiview.hpp"
#include "nn/checkpoint.hpp"
#include "runtime/error.hpp"
#include "runtime/generator.hpp"
#include "runtime/ops.hpp"

using namespace recon;
using namespace recon::models;

namespace {

constexpr int kSize = 28;

// Smooth random textures in [0.25, 0.75]: a 4x4 grid bilinearly upsampled.
Tensor smooth_batch(int n, int c, uint64_t seed) {
  Generator gen(seed);
  const Tensor coarse = Tensor::uniform({n, c, 4, 4}, gen);
  return add_scalar(scale(upsample(coarse, kSize, kSize, UpsampleMode::Bilinear), 0.5f), 0.25f);
}

// x plus uniform noise in [-amp, amp] (a reconstruction with small errors).
Tensor jitter(const Tensor& x, float amp, uint64_t seed) {
  Generator gen(seed);
  return add(x, Tensor::uniform(x.shape(), gen, -amp, amp));
}

// x with the square [y0, y0 + s) x [x0, x0 + s) of every channel set to `value`.
Tensor with_square(const Tensor& x, int y0, int x0, int s, float value) {
  std::vector<float> v = x.to_vector();
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  for (int64_t b = 0; b < n * c; ++b)
    for (int y = y0; y < y0 + s; ++y)
      for (int xx = x0; xx < x0 + s; ++xx) v[(size_t)(b * h * w + y * w + xx)] = value;
  return Tensor::from_vector(v, x.shape());
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s / (double)v.size();
}

double pop_std(const std::vector<double>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / (double)v.size());
}

FeatureFn flatten_phi() {
  return [](const Tensor& x) { return flatten(x, 1); };
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("recon_mv_" + std::to_string(getpid()) + "_" + name)).string();
}

}  // namespace

TEST_CASE("ConvAE::features is the conv map before the bottleneck") {
  Generator gen(1);
  ConvAEConfig cfg;
  cfg.width1 = 8;
  cfg.latent = 16;
  ConvAE ae(cfg, gen);
  const Tensor x = smooth_batch(2, 1, 3);
  const Tensor f = ae.features(x);
  CHECK(f.shape() == Shape{2, 16, 7, 7});
  CHECK(ae.encode(x).shape() == Shape{2, 16});
  CHECK(ae(x).shape() == x.shape());
}

TEST_CASE("identical images give 0 in every view") {
  Generator gen(2);
  ConvAEConfig cfg;
  cfg.width1 = 8;
  auto ae = std::make_shared<ConvAE>(cfg, gen);
  MultiViewScorer scorer([ae](const Tensor& x) { return ae->features(x); });
  CHECK(scorer.view_names() == std::vector<std::string>{"mse", "ssim", "feature"});
  const Tensor x = smooth_batch(3, 1, 4);
  const ViewErrors e = scorer.errors(x, x.clone());
  REQUIRE(e.num_images() == 3);
  for (size_t v = 0; v < e.views.size(); ++v) {
    CAPTURE(e.views[v]);
    for (float val : e.error[v]) CHECK(std::fabs(val) < 1e-6f);
  }
  // ...and a different reconstruction gives more than 0 in every view.
  const ViewErrors d = scorer.errors(x, jitter(x, 0.2f, 5));
  for (size_t v = 0; v < d.views.size(); ++v) {
    CAPTURE(d.views[v]);
    for (float val : d.error[v]) CHECK(val > 1e-5f);
  }
}

TEST_CASE("the mse view is the known mean squared error") {
  const Tensor x = Tensor::full({2, 1, kSize, kSize}, 0.2f);
  const Tensor y = Tensor::full({2, 1, kSize, kSize}, 0.5f);
  for (float v : mse_error(x, y)) CHECK(v == doctest::Approx(0.09).epsilon(1e-5));
  // Half the pixels off by 0.4, the other half exact: 0.5 * 0.16.
  std::vector<float> half(kSize * kSize, 0.3f);
  for (int i = 0; i < kSize * kSize / 2; ++i) half[i] = 0.7f;
  const Tensor h = Tensor::from_vector(half, {1, 1, kSize, kSize});
  CHECK(mse_error(Tensor::full({1, 1, kSize, kSize}, 0.3f), h)[0] == doctest::Approx(0.08).epsilon(1e-5));
}

TEST_CASE("the feature view is one minus the cosine of the features") {
  // phi = the flattened image: orthogonal images give 1, a rescaled copy 0.
  std::vector<float> top(kSize * kSize, 0.f), bottom(kSize * kSize, 0.f);
  for (int i = 0; i < kSize * kSize; ++i) (i < kSize * kSize / 2 ? top : bottom)[i] = 1.f;
  const Tensor a = Tensor::from_vector(top, {1, 1, kSize, kSize});
  const Tensor b = Tensor::from_vector(bottom, {1, 1, kSize, kSize});
  CHECK(feature_error(flatten_phi(), a, b)[0] == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(std::fabs(feature_error(flatten_phi(), a, scale(a, 0.5f))[0]) < 1e-6f);
  // Half overlap: cos = (n/4) / (n/2) = 0.5.
  std::vector<float> left(kSize * kSize, 0.f);
  for (int y = 0; y < kSize; ++y)
    for (int x = 0; x < kSize / 2; ++x) left[y * kSize + x] = 1.f;
  const Tensor l = Tensor::from_vector(left, {1, 1, kSize, kSize});
  CHECK(feature_error(flatten_phi(), a, l)[0] == doctest::Approx(0.5).epsilon(1e-6));
  // A feature map (N, D, h, w) is pooled globally first: two maps with the
  // same channel means give 0 however the pixels are arranged.
  auto map_phi = [](const Tensor& x) { return x; };
  CHECK(std::fabs(feature_error(map_phi, a, b)[0]) < 1e-6f);
}

TEST_CASE("the ssim view grows with the damage") {
  const Tensor x = smooth_batch(1, 1, 6);
  const float small = ssim_error(x, jitter(x, 0.05f, 7))[0];
  const float large = ssim_error(x, jitter(x, 0.3f, 7))[0];
  CHECK(std::fabs(ssim_error(x, x)[0]) < 1e-6f);
  CHECK(small > 0.f);
  CHECK(large > small);
  CHECK(large <= 2.f);
}

TEST_CASE("residual normalisation removes an exact linear relation") {
  ViewErrors normals;
  normals.views = {"v"};
  std::vector<float> d, e;
  for (int i = 1; i <= 50; ++i) {
    d.push_back(0.1f * (float)i);
    e.push_back(0.5f + 2.f * d.back());
  }
  normals.error = {e};
  const auto [a, b] = fit_line(d, e);
  CHECK(a == doctest::Approx(0.5).epsilon(1e-5));
  CHECK(b == doctest::Approx(2.0).epsilon(1e-5));
  const Calibration c = fit_calibration(normals, d, DifficultyMeasure::Entropy, Normalization::Residual);
  CHECK(c.view("v").a == doctest::Approx(0.5).epsilon(1e-5));
  CHECK(c.view("v").b == doctest::Approx(2.0).epsilon(1e-5));
  for (size_t i = 0; i < d.size(); ++i)
    CHECK(std::fabs(normalize_error(e[i], d[i], Normalization::Residual, c.view("v"), c.ratio_floor)) < 1e-5);
  // Without normalisation the error tracks d; a new point off the line by
  // +1 has residual 1 whatever its difficulty.
  CHECK(normalize_error(0.5 + 2 * 9.0 + 1.0, 9.0, Normalization::Residual, c.view("v"), 0) ==
        doctest::Approx(1.0).epsilon(1e-4));
  CHECK(normalize_error(3.0, 9.0, Normalization::None, c.view("v"), 0) == 3.0);
}

TEST_CASE("residuals of a noisy relation are uncorrelated with d") {
  Generator gen(8);
  const std::vector<float> noise = Tensor::uniform({200}, gen, -0.3f, 0.3f).to_vector();
  std::vector<float> d, e;
  for (int i = 0; i < 200; ++i) {
    d.push_back(1.f + 0.02f * (float)i);
    e.push_back(1.f + 3.f * d.back() + noise[i]);
  }
  ViewErrors normals;
  normals.views = {"v"};
  normals.error = {e};
  const Calibration c = fit_calibration(normals, d, DifficultyMeasure::Gradient, Normalization::Residual);
  std::vector<double> r(d.size());
  for (size_t i = 0; i < d.size(); ++i) r[i] = normalize_error(e[i], d[i], Normalization::Residual, c.view("v"), 0);
  double md = 0;
  for (float v : d) md += v;
  md /= (double)d.size();
  double cov = 0;
  for (size_t i = 0; i < d.size(); ++i) cov += (d[i] - md) * r[i];
  CHECK(std::fabs(cov / (double)d.size()) < 1e-5);
  CHECK(std::fabs(mean_of(r)) < 1e-5);
  CHECK(c.view("v").b == doctest::Approx(3.0).epsilon(0.05));
}

TEST_CASE("ratio normalisation divides by d, guarded near 0") {
  ViewErrors normals;
  normals.views = {"v"};
  std::vector<float> d, e;
  for (int i = 1; i <= 20; ++i) {
    d.push_back((float)i);
    e.push_back(3.f * (float)i);
  }
  normals.error = {e};
  const Calibration c = fit_calibration(normals, d, DifficultyMeasure::Entropy, Normalization::Ratio);
  // mean |d| = 10.5, so the floor is 1% of it.
  CHECK(c.ratio_floor == doctest::Approx(kRatioFloorFraction * 10.5));
  for (size_t i = 0; i < d.size(); ++i)
    CHECK(normalize_error(e[i], d[i], Normalization::Ratio, c.view("v"), c.ratio_floor) == doctest::Approx(3.0));
  CHECK(c.view("v").mean == doctest::Approx(3.0));
  CHECK(c.view("v").std == 1.0);  // every ratio equal: the degenerate std becomes 1
  // d = 0 is divided by the floor, not by 0.
  const double guarded = normalize_error(0.21, 0.0, Normalization::Ratio, c.view("v"), c.ratio_floor);
  CHECK(std::isfinite(guarded));
  CHECK(guarded == doctest::Approx(0.21 / c.ratio_floor));
}

TEST_CASE("calibration z-scores have mean 0 and std 1 on the calibration data") {
  Generator gen(9);
  ViewErrors normals;
  normals.views = {"a", "b"};
  const std::vector<float> d = Tensor::uniform({64}, gen, 1.f, 8.f).to_vector();
  std::vector<float> ea = Tensor::uniform({64}, gen, 0.01f, 0.05f).to_vector();
  std::vector<float> eb = Tensor::uniform({64}, gen, 0.1f, 0.5f).to_vector();
  for (size_t i = 0; i < d.size(); ++i) ea[i] += 0.01f * d[i];
  normals.error = {ea, eb};
  for (Normalization n : all_normalizations()) {
    CAPTURE(normalization_name(n));
    const Calibration c = fit_calibration(normals, d, DifficultyMeasure::Entropy, n, {1.0, 2.0});
    const Scores s = apply_calibration(c, normals, d);
    REQUIRE(s.z.size() == 2);
    for (const auto& z : s.z) {
      CHECK(std::fabs(mean_of(z)) < 1e-6);
      CHECK(pop_std(z) == doctest::Approx(1.0).epsilon(1e-6));
    }
    for (size_t i = 0; i < d.size(); ++i) CHECK(s.fused[i] == doctest::Approx(s.z[0][i] + 2.0 * s.z[1][i]));
  }
  CHECK_THROWS_AS(fit_calibration(normals, d, DifficultyMeasure::Entropy, Normalization::Ratio, {1.0}), Error);
  CHECK_THROWS_AS(fit_calibration(normals, {1.f}, DifficultyMeasure::Entropy, Normalization::Ratio), Error);
}

TEST_CASE("the fused score ranks a broken reconstruction above normal ones") {
  for (Normalization n : all_normalizations()) {
    CAPTURE(normalization_name(n));
    ScorerOptions opt;
    opt.normalization = n;
    MultiViewScorer scorer(flatten_phi(), opt);
    const Tensor calib = smooth_batch(32, 1, 10);
    const Tensor calib_hat = jitter(calib, 0.05f, 11);
    scorer.calibrate(scorer.errors(calib, calib_hat), scorer.difficulty(calib));
    CHECK(scorer.calibration().fitted());
    CHECK(scorer.calibration().num_images == 32);
    // Eight new normals; the last reconstruction also misses a bright square.
    const Tensor x = smooth_batch(8, 1, 12);
    Tensor x_hat = jitter(x, 0.05f, 13);
    std::vector<float> v = x_hat.to_vector();
    for (int y = 8; y < 18; ++y)
      for (int xx = 8; xx < 18; ++xx) v[(size_t)(7 * kSize * kSize + y * kSize + xx)] = 1.f;
    x_hat = Tensor::from_vector(v, x.shape());
    const Scores s = scorer.score(x, x_hat);
    REQUIRE(s.fused.size() == 8);
    for (int i = 0; i < 7; ++i) CHECK(s.fused[7] > s.fused[i]);
    for (size_t view = 0; view < s.z.size(); ++view) {
      CAPTURE(s.views[view]);
      CHECK(s.z[view][7] > 3.0);  // far outside the normals' spread
    }
  }
}

TEST_CASE("extra views join the scorer") {
  MultiViewScorer scorer;
  CHECK(scorer.view_names() == std::vector<std::string>{"mse", "ssim"});
  scorer.add_view("brightness", [](const Tensor& x, const Tensor&) { return mean(x, {1, 2, 3}).to_vector(); });
  CHECK_THROWS_AS(scorer.add_view("mse", [](const Tensor&, const Tensor&) { return std::vector<float>{}; }), Error);
  const Tensor x = Tensor::full({2, 1, kSize, kSize}, 0.4f);
  const ViewErrors e = scorer.errors(x, x);
  CHECK(e.views.back() == "brightness");
  CHECK(e.view("brightness")[1] == doctest::Approx(0.4));
  CHECK_THROWS_AS(e.view("nope"), Error);
}

TEST_CASE("the calibration survives a checkpoint round trip") {
  Generator gen(14);
  ConvAEConfig cfg;
  cfg.width1 = 4;
  cfg.latent = 8;
  auto ae = std::make_shared<ConvAE>(cfg, gen);
  ScorerOptions opt;
  opt.measure = DifficultyMeasure::Gradient;
  opt.normalization = Normalization::Residual;
  opt.weights = {1.0, 0.5, 2.0};
  MultiViewScorer scorer([ae](const Tensor& x) { return ae->features(x); }, opt);
  const Tensor calib = smooth_batch(16, 1, 15);
  const Tensor calib_hat = jitter(calib, 0.05f, 16);
  scorer.calibrate(scorer.errors(calib, calib_hat), scorer.difficulty(calib));
  const Calibration& c = scorer.calibration();

  const std::string path = temp_path("calib.safetensors");
  nn::Json config = nn::Json::object();
  config.set("app", nn::Json("test"));
  save_scored_checkpoint(path, *ae, c, config);
  const Calibration back = load_calibration(path);
  std::filesystem::remove(path);
  CHECK(back.measure == DifficultyMeasure::Gradient);
  CHECK(back.normalization == Normalization::Residual);
  CHECK(back.ratio_floor == c.ratio_floor);
  CHECK(back.num_images == 16);
  REQUIRE(back.views.size() == 3);
  for (size_t v = 0; v < 3; ++v) {
    CAPTURE(c.views[v].name);
    CHECK(back.views[v].name == c.views[v].name);
    CHECK(back.views[v].weight == c.views[v].weight);
    CHECK(back.views[v].a == c.views[v].a);
    CHECK(back.views[v].b == c.views[v].b);
    CHECK(back.views[v].mean == c.views[v].mean);
    CHECK(back.views[v].std == c.views[v].std);
    CHECK(back.views[v].raw_mean == c.views[v].raw_mean);
  }
  CHECK(back.views[1].weight == 0.5);
  // A fresh scorer with the loaded calibration scores exactly as the original.
  MultiViewScorer loaded([ae](const Tensor& x) { return ae->features(x); });
  loaded.set_calibration(back);
  CHECK(loaded.options().measure == DifficultyMeasure::Gradient);
  const Tensor x = smooth_batch(4, 1, 17);
  const Tensor x_hat = jitter(x, 0.1f, 18);
  const Scores s0 = scorer.score(x, x_hat), s1 = loaded.score(x, x_hat);
  for (size_t i = 0; i < 4; ++i) CHECK(s0.fused[i] == s1.fused[i]);
  // A scorer with other views refuses it.
  MultiViewScorer two_views;
  CHECK_THROWS_AS(two_views.set_calibration(back), Error);
  // A malformed calibration names the field.
  nn::Json bad = back.to_json();
  bad.set("normalization", nn::Json("sideways"));
  CHECK_THROWS_AS(Calibration::from_json(bad), Error);
  nn::Json missing = nn::Json::object();
  missing.set("measure", nn::Json("entropy"));
  CHECK_THROWS_AS(Calibration::from_json(missing), Error);
}

TEST_CASE("the pixel map highlights where x and x_hat differ") {
  const Tensor x = smooth_batch(2, 3, 19);
  const Tensor x_hat = with_square(jitter(x, 0.02f, 20), 16, 4, 6, 1.f);
  MultiViewScorer scorer;
  const Tensor m = scorer.pixel_map(x, x_hat);
  REQUIRE(m.shape() == Shape{2, 1, kSize, kSize});
  const std::vector<float> v = m.to_vector();
  for (int b = 0; b < 2; ++b) {
    double inside = 0, outside = 0;
    int n_in = 0, n_out = 0;
    int argmax = 0;
    float best = -1.f;
    for (int y = 0; y < kSize; ++y)
      for (int xx = 0; xx < kSize; ++xx) {
        const float val = v[(size_t)(b * kSize * kSize + y * kSize + xx)];
        if (val > best) {
          best = val;
          argmax = y * kSize + xx;
        }
        if (y >= 16 && y < 22 && xx >= 4 && xx < 10) {
          inside += val;
          ++n_in;
        } else if (y < 10 || xx > 16) {  // well away from the square and the blur's reach
          outside += val;
          ++n_out;
        }
      }
    CHECK(inside / n_in > 5 * outside / n_out);
    const int ay = argmax / kSize, ax = argmax % kSize;
    CHECK(ay >= 14);
    CHECK(ay < 24);
    CHECK(ax >= 2);
    CHECK(ax < 12);
  }
  // Identical images: a map of zeros (up to rounding).
  const std::vector<float> zero = scorer.pixel_map(x, x.clone()).to_vector();
  for (float z : zero) CHECK(std::fabs(z) < 1e-5f);
}

TEST_CASE("the pixel map is smoothed by a k x k box filter") {
  const Tensor x = smooth_batch(1, 1, 21);
  const Tensor x_hat = with_square(jitter(x, 0.05f, 22), 12, 12, 3, 0.f);
  const std::vector<float> raw = MultiViewScorer({}, ScorerOptions{.map_smoothing = 1}).pixel_map(x, x_hat).to_vector();
  const std::vector<float> box = MultiViewScorer({}, ScorerOptions{.map_smoothing = 3}).pixel_map(x, x_hat).to_vector();
  for (int y : {1, 10, 13, 26})
    for (int xx : {1, 11, 14, 26}) {
      double s = 0;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) s += raw[(size_t)((y + dy) * kSize + xx + dx)];
      CAPTURE(y);
      CAPTURE(xx);
      CHECK(box[(size_t)(y * kSize + xx)] == doctest::Approx(s / 9).epsilon(1e-5));
    }
  // Reflect padding at the border: pixel (0, 0) averages rows/columns 1, 0, 1.
  double corner = 0;
  for (int y : {1, 0, 1})
    for (int xx : {1, 0, 1}) corner += raw[(size_t)(y * kSize + xx)];
  CHECK(box[0] == doctest::Approx(corner / 9).epsilon(1e-5));
}

TEST_CASE("normalisation names") {
  for (Normalization n : all_normalizations()) CHECK(parse_normalization(normalization_name(n)) == n);
  CHECK_THROWS_AS(parse_normalization("zscore"), Error);
  CHECK_THROWS_AS(MultiViewScorer({}, ScorerOptions{.map_smoothing = 2}), Error);
}
