// image_entropy / local_entropy on the CPU: hand-computed cases (constant
// image 0 bits, 256 equally frequent levels 8 bits, two levels 1 bit,
// checkerboard windows), the binning rule at the edges, and local_entropy
// against a naive per-pixel window count written here.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "gradcheck.hpp"
#include "runtime/error.hpp"
#include "runtime/ops.hpp"

using namespace recon;

namespace {

int refl(int i, int n) { return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i); }

// Entropy in bits of a two-level split a : b.
double split_entropy(double a, double b) {
  const double pa = a / (a + b), pb = b / (a + b);
  return -pa * std::log2(pa) - pb * std::log2(pb);
}

// (1, 1, h, w) checkerboard of two values.
Tensor checkerboard(int h, int w, float lo, float hi) {
  std::vector<float> v(h * w);
  for (int i = 0; i < h; ++i)
    for (int j = 0; j < w; ++j) v[i * w + j] = (i + j) % 2 ? hi : lo;
  return Tensor::from_vector(v, {1, 1, h, w});
}

// Naive local entropy: per pixel, count the reflected k x k window.
std::vector<double> naive_local_entropy(const Tensor& x, int k, int bins) {
  const int n = (int)x.size(0), c = (int)x.size(1), h = (int)x.size(2), w = (int)x.size(3), r = k / 2;
  const std::vector<float> v = x.to_vector();
  auto level = [&](int img, int i, int j) {
    float g = 0.f;
    for (int ch = 0; ch < c; ++ch) g += v[(((int64_t)img * c + ch) * h + i) * w + j];
    g /= (float)c;
    const int b = (int)std::floor(g * (float)bins);  // bins v in float, as the definition
    return b < 0 ? 0 : (b >= bins ? bins - 1 : b);
  };
  std::vector<double> out;
  for (int img = 0; img < n; ++img)
    for (int i = 0; i < h; ++i)
      for (int j = 0; j < w; ++j) {
        std::vector<int> hist(bins, 0);
        for (int a = -r; a <= r; ++a)
          for (int b = -r; b <= r; ++b) ++hist[level(img, refl(i + a, h), refl(j + b, w))];
        double e = 0;
        for (int cnt : hist)
          if (cnt) e -= (double)cnt / (k * k) * std::log2((double)cnt / (k * k));
        out.push_back(e);
      }
  return out;
}

}  // namespace

TEST_CASE("image_entropy: constant 0 bits, 256 equal levels 8 bits, two equal levels 1 bit") {
  Tensor constant = Tensor::full({1, 3, 5, 7}, 0.4f);
  test::check_close(image_entropy(constant), {0.0}, 0, 0, "constant");

  std::vector<float> ramp(2 * 256);  // each level (i + 0.5) / 256 twice
  for (int i = 0; i < 512; ++i) ramp[i] = ((float)(i % 256) + 0.5f) / 256.f;
  test::check_close(image_entropy(Tensor::from_vector(ramp, {1, 2, 16, 16})), {8.0}, 1e-6, 0, "256 levels");

  std::vector<float> two(6 * 7);
  for (int i = 0; i < 42; ++i) two[i] = i % 2 ? 0.9f : 0.1f;
  test::check_close(image_entropy(Tensor::from_vector(two, {1, 1, 6, 7})), {1.0}, 1e-6, 0, "two levels");

  // A batch: each image its own histogram; channels pooled within an image.
  std::vector<float> batch(3 * 2 * 4 * 4);
  for (int i = 0; i < 32; ++i) batch[i] = 0.5f;                       // image 0: constant
  for (int i = 32; i < 64; ++i) batch[i] = i < 48 ? 0.2f : 0.8f;      // image 1: channel 0 vs 1
  for (int i = 64; i < 96; ++i) batch[i] = (float)((i - 64) % 4) / 4.f;  // image 2: 4 equal levels
  test::check_close(image_entropy(Tensor::from_vector(batch, {3, 2, 4, 4})), {0.0, 1.0, 2.0}, 1e-6, 0, "batch");
}

TEST_CASE("image_entropy binning: min(floor(256 v), 255), out-of-range values clamped") {
  // 1.0 falls in the last bin with 255.5 / 256; 0 with -0.3 (bin 0); 1.7 with 1.0.
  std::vector<float> v = {1.0f, 255.5f / 256.f, 0.f, -0.3f};
  test::check_close(image_entropy(Tensor::from_vector(v, {1, 1, 2, 2})), {1.0}, 1e-6, 0, "edges");
  // 1/256 starts bin 1; just below it is bin 0.
  std::vector<float> w = {1.f / 256.f, std::nextafter(1.f / 256.f, 0.f)};
  test::check_close(image_entropy(Tensor::from_vector(w, {1, 1, 1, 2})), {1.0}, 1e-6, 0, "bin boundary");
  std::vector<float> u = {2.f, 1.f, 0.f, -1.f};
  test::check_close(image_entropy(Tensor::from_vector(u, {1, 1, 2, 2})), {1.0}, 1e-6, 0, "clamped");
}

TEST_CASE("local_entropy: constant 0, checkerboard windows, k = 1") {
  Tensor constant = Tensor::full({2, 3, 10, 11}, 0.7f);
  Tensor lc = local_entropy(constant, 9, 32);
  CHECK(lc.shape() == Shape{2, 1, 10, 11});
  test::check_close(lc, std::vector<double>(lc.numel(), 0.0), 0, 0, "constant");

  // Reflect padding keeps a checkerboard a checkerboard, so every k x k
  // window (k odd) holds (k^2 + 1) / 2 of the centre's level and (k^2 - 1) / 2
  // of the other: 41 : 40 for k = 9 (0.99978 bits), 5 : 4 for k = 3.
  Tensor cb = checkerboard(12, 13, 0.1f, 0.9f);
  test::check_close(local_entropy(cb, 9, 32), std::vector<double>(12 * 13, split_entropy(41, 40)), 1e-6, 0, "k9");
  test::check_close(local_entropy(cb, 3, 2), std::vector<double>(12 * 13, split_entropy(5, 4)), 1e-6, 0, "k3");
  // Two levels that share a bin when bins is small: 0 bits.
  Tensor cb2 = checkerboard(8, 8, 0.1f, 0.2f);
  test::check_close(local_entropy(cb2, 5, 4), std::vector<double>(64, 0.0), 0, 0, "one bin");
  // A 1x1 window holds one pixel: 0 bits.
  test::check_close(local_entropy(cb, 1, 32), std::vector<double>(12 * 13, 0.0), 0, 0, "k1");
}

TEST_CASE("local_entropy matches a naive per-pixel window count") {
  struct Case {
    Shape s;
    int k, bins;
  };
  for (const Case& c : {Case{{2, 3, 9, 14}, 9, 32}, Case{{1, 1, 6, 5}, 9, 256}, Case{{1, 2, 17, 8}, 5, 7},
                        Case{{1, 1, 4, 4}, 7, 3}}) {
    INFO("shape " << shape_str(c.s) << " k " << c.k << " bins " << c.bins);
    Tensor x = test::rand_tensor(c.s, 61, -0.1f, 1.1f);
    test::check_close(local_entropy(x, c.k, c.bins), naive_local_entropy(x, c.k, c.bins), 1e-6, 0, "map");
  }
}

TEST_CASE("entropy ops: argument checks and no autograd") {
  Tensor x = Tensor::zeros({1, 1, 8, 8});
  CHECK_THROWS_WITH_AS(local_entropy(x, 4, 32), doctest::Contains("must be odd"), Error);
  CHECK_THROWS_WITH_AS(local_entropy(x, 17, 32), doctest::Contains("must be smaller than H and W"), Error);
  CHECK_THROWS_WITH_AS(local_entropy(x, 9, 0), doctest::Contains("bins = 0"), Error);
  CHECK_THROWS_WITH_AS(local_entropy(x, 9, 257), doctest::Contains("bins = 257"), Error);
  CHECK_THROWS_WITH_AS(image_entropy(Tensor::zeros({4, 4})), doctest::Contains("image_entropy"), Error);
  CHECK_NOTHROW(local_entropy(x, 15, 256));
  Tensor g = test::rand_tensor({2, 1, 6, 6}, 71, 0.f, 1.f).set_requires_grad(true);
  CHECK(image_entropy(g).grad_fn() == nullptr);
  CHECK(local_entropy(g).grad_fn() == nullptr);
  CHECK(image_entropy(Tensor::zeros({0, 1, 4, 4})).shape() == Shape{0});
}
