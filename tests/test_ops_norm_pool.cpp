// batch_norm2d, max_pool2d, avg_pool2d, global_avg_pool and upsample on the
// CPU: forward against naive loops in double, hand-computed values, gradients
// against finite differences, kernels skipped when a gradient is not needed,
// and argument errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <random>

#include "runtime/error.hpp"
#include "runtime/ops.hpp"
#include "runtime/profile.hpp"
#include "tests/gradcheck.hpp"

using namespace recon;
using recon::test::check_close;
using recon::test::gradcheck;
using recon::test::GradcheckOptions;
using recon::test::rand_tensor;

namespace {

// A CUDA tensor handle with no memory behind it: enough to reach the device
// checks in a build without CUDA (no kernel may touch it).
Tensor fake_cuda_tensor(const Shape& shape) {
  return make_view(std::make_shared<Storage>(0, Device::cuda()), shape, contiguous_strides(shape), 0);
}

// (N, C, H, W) values that are all distinct and at least `gap` apart, in a
// shuffled order: max pooling has no ties, and a +-eps step crosses no kink.
Tensor distinct_tensor(const Shape& shape, uint64_t seed, float gap = 0.05f) {
  std::vector<float> v((size_t)shape_numel(shape));
  for (size_t i = 0; i < v.size(); ++i) v[i] = gap * ((float)i - (float)v.size() / 2);
  std::shuffle(v.begin(), v.end(), std::mt19937_64(seed));
  return Tensor::from_vector(v, shape);
}

std::vector<double> as_double(const Tensor& t) {
  std::vector<float> f = t.to_vector();
  return std::vector<double>(f.begin(), f.end());
}

// ---- naive references (double) ------------------------------------------------

std::vector<double> ref_batch_norm(const Tensor& x, const std::vector<double>& mean, const std::vector<double>& var,
                                   const Tensor& weight, const Tensor& bias, double eps) {
  const int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
  std::vector<float> xv = x.to_vector();
  std::vector<float> wv = weight.defined() ? weight.to_vector() : std::vector<float>(c, 1.f);
  std::vector<float> bv = bias.defined() ? bias.to_vector() : std::vector<float>(c, 0.f);
  std::vector<double> y(xv.size());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t k = 0; k < hw; ++k) {
        size_t idx = (size_t)((i * c + ch) * hw + k);
        y[idx] = (xv[idx] - mean[ch]) / std::sqrt(var[ch] + eps) * wv[ch] + bv[ch];
      }
  return y;
}

// Per-channel mean and biased variance of x (N, C, H, W).
void ref_channel_stats(const Tensor& x, std::vector<double>& mean, std::vector<double>& var) {
  const int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
  std::vector<float> xv = x.to_vector();
  mean.assign(c, 0.0);
  var.assign(c, 0.0);
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < hw; ++k) mean[ch] += xv[(size_t)((i * c + ch) * hw + k)];
    mean[ch] /= (double)(n * hw);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < hw; ++k) {
        double d = xv[(size_t)((i * c + ch) * hw + k)] - mean[ch];
        var[ch] += d * d;
      }
    var[ch] /= (double)(n * hw);
  }
}

// Max or average pooling by the definition: padding is -inf (max) or 0 (avg,
// divided by the full window).
std::vector<double> ref_pool(const Tensor& x, const Pool2dOptions& o, bool is_max) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t oh_n = (h + 2 * o.padding[0] - o.kernel[0]) / o.stride[0] + 1;
  const int64_t ow_n = (w + 2 * o.padding[1] - o.kernel[1]) / o.stride[1] + 1;
  std::vector<float> xv = x.to_vector();
  std::vector<double> y;
  for (int64_t pl = 0; pl < n * c; ++pl)
    for (int64_t oh = 0; oh < oh_n; ++oh)
      for (int64_t ow = 0; ow < ow_n; ++ow) {
        double acc = is_max ? -std::numeric_limits<double>::infinity() : 0.0;
        for (int64_t kh = 0; kh < o.kernel[0]; ++kh)
          for (int64_t kw = 0; kw < o.kernel[1]; ++kw) {
            int64_t ih = oh * o.stride[0] - o.padding[0] + kh, iw = ow * o.stride[1] - o.padding[1] + kw;
            bool inside = ih >= 0 && ih < h && iw >= 0 && iw < w;
            double v = inside ? xv[(size_t)(pl * h * w + ih * w + iw)]
                              : (is_max ? -std::numeric_limits<double>::infinity() : 0.0);
            acc = is_max ? std::max(acc, v) : acc + v;
          }
        y.push_back(is_max ? acc : acc / (double)(o.kernel[0] * o.kernel[1]));
      }
  return y;
}

// PyTorch's interpolate(mode='nearest') and (mode='bilinear', align_corners=False).
std::vector<double> ref_upsample(const Tensor& x, int64_t oh_n, int64_t ow_n, bool bilinear) {
  const int64_t planes = x.size(0) * x.size(1), h = x.size(2), w = x.size(3);
  std::vector<float> xv = x.to_vector();
  auto at = [&](int64_t pl, int64_t i, int64_t j) { return (double)xv[(size_t)(pl * h * w + i * w + j)]; };
  std::vector<double> y;
  for (int64_t pl = 0; pl < planes; ++pl)
    for (int64_t oh = 0; oh < oh_n; ++oh)
      for (int64_t ow = 0; ow < ow_n; ++ow) {
        if (!bilinear) {
          y.push_back(at(pl, (int64_t)std::floor((double)oh * h / oh_n), (int64_t)std::floor((double)ow * w / ow_n)));
          continue;
        }
        double sh = std::max(0.0, ((double)oh + 0.5) * h / oh_n - 0.5);
        double sw = std::max(0.0, ((double)ow + 0.5) * w / ow_n - 0.5);
        int64_t h0 = (int64_t)sh, w0 = (int64_t)sw;
        int64_t h1 = std::min(h0 + 1, h - 1), w1 = std::min(w0 + 1, w - 1);
        double lh = sh - h0, lw = sw - w0;
        y.push_back((1 - lh) * ((1 - lw) * at(pl, h0, w0) + lw * at(pl, h0, w1)) +
                    lh * ((1 - lw) * at(pl, h1, w0) + lw * at(pl, h1, w1)));
      }
  return y;
}

}  // namespace

// ---- batch_norm2d ------------------------------------------------------------------

TEST_CASE("batch_norm2d training: batch statistics, affine on and off, odd shapes") {
  for (Shape shape : {Shape{2, 3, 4, 5}, Shape{1, 2, 3, 1}, Shape{3, 1, 1, 1}, Shape{2, 4, 7, 3}}) {
    for (bool affine : {true, false}) {
      INFO("shape " << shape_str(shape) << " affine " << affine);
      const int64_t c = shape[1];
      Tensor x = rand_tensor(shape, 11, -2.f, 3.f);
      Tensor w = affine ? rand_tensor({c}, 12, 0.5f, 2.f) : Tensor();
      Tensor b = affine ? rand_tensor({c}, 13) : Tensor();
      Tensor rm = Tensor::zeros({c}), rv = Tensor::ones({c});
      Tensor y = batch_norm2d(x, w, b, rm, rv, true, 0.1f, 1e-5f);
      CHECK(y.shape() == shape);
      std::vector<double> mean, var;
      ref_channel_stats(x, mean, var);
      check_close(y, ref_batch_norm(x, mean, var, w, b, 1e-5), 1e-5, 1e-4, "batch_norm2d forward");
    }
  }
}

TEST_CASE("batch_norm2d running statistics: hand-computed momentum updates with the unbiased variance") {
  // One channel, values 1, 2, 3, 4: mean 2.5, biased variance 1.25, unbiased 5/3.
  Tensor x = Tensor::from_vector({1, 2, 3, 4}, {2, 1, 1, 2});
  Tensor rm = Tensor::zeros({1}), rv = Tensor::ones({1});
  Tensor y = batch_norm2d(x, Tensor(), Tensor(), rm, rv, true, 0.1f, 0.f);
  CHECK(rm.item() == doctest::Approx(0.25).epsilon(1e-6));                  // 0.9 * 0 + 0.1 * 2.5
  CHECK(rv.item() == doctest::Approx(0.9 + 0.1 * 5.0 / 3.0).epsilon(1e-6));  // 0.9 * 1 + 0.1 * 5/3
  // Normalised with the biased variance: (1 - 2.5) / sqrt(1.25).
  CHECK(y.to_vector()[0] == doctest::Approx(-1.5 / std::sqrt(1.25)).epsilon(1e-6));
  batch_norm2d(x, Tensor(), Tensor(), rm, rv, true, 0.1f, 0.f);
  CHECK(rm.item() == doctest::Approx(0.9 * 0.25 + 0.25).epsilon(1e-6));
  CHECK(rv.item() == doctest::Approx(0.9 * (0.9 + 0.5 / 3.0) + 0.5 / 3.0).epsilon(1e-6));
  // momentum 1 replaces the statistics outright; two channels, each its own.
  Tensor x2 = Tensor::from_vector({0, 2, 10, 14, 4, 6, 20, 24}, {2, 2, 1, 2});
  Tensor rm2 = Tensor::full({2}, 7.f), rv2 = Tensor::full({2}, 7.f);
  batch_norm2d(x2, Tensor(), Tensor(), rm2, rv2, true, 1.f, 1e-5f);
  // channel 0: 0, 2, 4, 6 -> mean 3, unbiased var 20/3; channel 1: 10, 14, 20, 24 -> mean 17, var 116/3.
  check_close(rm2, {3.0, 17.0}, 1e-6, 1e-6, "running_mean");
  check_close(rv2, {20.0 / 3.0, 116.0 / 3.0}, 1e-5, 1e-6, "running_var");
  // Undefined running statistics in training: batch statistics only.
  Tensor none_m, none_v;
  Tensor y3 = batch_norm2d(x, Tensor(), Tensor(), none_m, none_v, true);
  CHECK(y3.to_vector()[3] == doctest::Approx(1.5 / std::sqrt(1.25 + 1e-5)).epsilon(1e-5));
}

TEST_CASE("batch_norm2d eval: running statistics, buffers untouched") {
  const Shape shape{3, 2, 4, 3};
  Tensor x = rand_tensor(shape, 21, -1.f, 2.f);
  Tensor w = rand_tensor({2}, 22, 0.5f, 2.f), b = rand_tensor({2}, 23);
  Tensor rm = Tensor::from_vector({0.3f, -0.7f}, {2}), rv = Tensor::from_vector({2.f, 0.5f}, {2});
  Tensor y = batch_norm2d(x, w, b, rm, rv, false, 0.1f, 1e-3f);
  check_close(y, ref_batch_norm(x, {0.3, -0.7}, {2.0, 0.5}, w, b, 1e-3), 1e-5, 1e-4, "eval forward");
  CHECK(rm.to_vector() == std::vector<float>{0.3f, -0.7f});
  CHECK(rv.to_vector() == std::vector<float>{2.f, 0.5f});
}

TEST_CASE("batch_norm2d gradients: training and eval, with and without affine") {
  GradcheckOptions opt;
  opt.eps = 1e-3;
  for (bool training : {true, false}) {
    for (Shape shape : {Shape{2, 3, 3, 2}, Shape{1, 2, 2, 3}}) {
      INFO("training " << training << " shape " << shape_str(shape));
      const int64_t c = shape[1];
      Tensor x = rand_tensor(shape, 31, -1.f, 2.f).set_requires_grad(true);
      Tensor w = rand_tensor({c}, 32, 0.5f, 1.5f).set_requires_grad(true);
      Tensor b = rand_tensor({c}, 33).set_requires_grad(true);
      Tensor rm = rand_tensor({c}, 34), rv = rand_tensor({c}, 35, 0.5f, 1.5f);
      gradcheck(
          [&](const std::vector<Tensor>& in) {
            Tensor m = rm.clone(), v = rv.clone();
            return batch_norm2d(in[0], in[1], in[2], m, v, training, 0.1f, 1e-5f);
          },
          {x, w, b}, opt);
      gradcheck(
          [&](const std::vector<Tensor>& in) {
            Tensor m = rm.clone(), v = rv.clone();
            return batch_norm2d(in[0], Tensor(), Tensor(), m, v, training, 0.1f, 1e-5f);
          },
          {x}, opt);
    }
  }
}

TEST_CASE("batch_norm2d backward runs only the kernels whose gradients are needed") {
  Tensor x = rand_tensor({2, 3, 4, 4}, 41);
  Tensor w = rand_tensor({3}, 42), b = rand_tensor({3}, 43);
  Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
  SUBCASE("frozen layer in eval: dx only, no reduction") {
    Tensor xg = x.clone().set_requires_grad(true);
    reset_range_counts();
    sum(batch_norm2d(xg, w, b, rm, rv, false)).backward();
    CHECK(range_count("batch_norm2d_backward_input") == 1);
    CHECK(range_count("batch_norm2d_backward_reduce") == 0);
    // eval dx = g * w / sqrt(rv + eps) with g = 1.
    std::vector<float> wv = w.to_vector(), gx = xg.grad().to_vector();
    for (int64_t i = 0; i < x.numel(); ++i)
      CHECK(gx[(size_t)i] == doctest::Approx(wv[(size_t)((i / 16) % 3)] / std::sqrt(1.0 + 1e-5)).epsilon(1e-5));
  }
  SUBCASE("parameters only: no input gradient") {
    Tensor wg = w.clone().set_requires_grad(true), bg = b.clone().set_requires_grad(true);
    reset_range_counts();
    sum(batch_norm2d(x, wg, bg, rm, rv, true)).backward();
    CHECK(range_count("batch_norm2d_backward_input") == 0);
    CHECK(range_count("batch_norm2d_backward_reduce") == 1);
    // d sum(y) / d bias = N * H * W per channel.
    check_close(bg.grad(), {32.0, 32.0, 32.0}, 1e-5, 1e-6, "dbias");
    // d sum(y) / d weight = sum of the normalised values = 0 per channel.
    check_close(wg.grad(), {0.0, 0.0, 0.0}, 1e-4, 0, "dweight");
  }
}

TEST_CASE("batch_norm2d argument errors name the op and the shapes") {
  Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
  CHECK_THROWS_WITH_AS(batch_norm2d(Tensor::zeros({2, 3, 4}), Tensor(), Tensor(), rm, rv, true),
                       doctest::Contains("batch_norm2d: the input must be 4-D (N, C, H, W), got (2, 3, 4)"), Error);
  CHECK_THROWS_WITH_AS(batch_norm2d(Tensor::zeros({2, 3, 2, 2}), Tensor::ones({4}), Tensor(), rm, rv, true),
                       doctest::Contains("batch_norm2d: weight must be (3) for input (2, 3, 2, 2), got (4)"), Error);
  Tensor rm4 = Tensor::zeros({4});
  CHECK_THROWS_WITH_AS(batch_norm2d(Tensor::zeros({2, 3, 2, 2}), Tensor(), Tensor(), rm4, rv, true),
                       doctest::Contains("running_mean must be (3)"), Error);
  Tensor none;
  CHECK_THROWS_WITH_AS(batch_norm2d(Tensor::zeros({2, 3, 2, 2}), Tensor(), Tensor(), none, none, false),
                       doctest::Contains("batch_norm2d: eval mode needs running_mean"), Error);
  CHECK_THROWS_WITH_AS(batch_norm2d(Tensor::zeros({1, 3, 1, 1}), Tensor(), Tensor(), rm, rv, true),
                       doctest::Contains("more than 1 value per channel, got input (1, 3, 1, 1)"), Error);
  CHECK_THROWS_WITH_AS(batch_norm2d(Tensor::zeros({2, 3, 2, 2}), fake_cuda_tensor({3}), Tensor(), rm, rv, true),
                       doctest::Contains("batch_norm2d: tensors on different devices (cpu and cuda:0)"), Error);
}

// ---- pooling ---------------------------------------------------------------------------

namespace {
struct PoolCase {
  Shape shape;
  Pool2dOptions opt;
};
const std::vector<PoolCase>& pool_cases() {
  static const std::vector<PoolCase> cases = {
      {{2, 3, 6, 6}, {{2, 2}, {2, 2}, {0, 0}}},  // the default
      {{1, 1, 5, 7}, {{3, 3}, {2, 2}, {1, 1}}},  // batch 1, odd, stride 2, padding 1
      {{2, 2, 7, 5}, {{3, 3}, {1, 1}, {0, 0}}},  // overlapping windows
      {{1, 2, 4, 9}, {{2, 3}, {1, 2}, {1, 1}}},  // non-square kernel, stride and input
      {{3, 1, 3, 3}, {{3, 3}, {3, 3}, {1, 0}}},  // padding on H only
  };
  return cases;
}
}  // namespace

TEST_CASE("max_pool2d and avg_pool2d forward against the definition") {
  for (const PoolCase& pc : pool_cases()) {
    INFO("shape " << shape_str(pc.shape) << " kernel " << pc.opt.kernel[0] << "x" << pc.opt.kernel[1] << " stride "
                  << pc.opt.stride[0] << "," << pc.opt.stride[1] << " padding " << pc.opt.padding[0] << ","
                  << pc.opt.padding[1]);
    Tensor x = rand_tensor(pc.shape, 51, -3.f, 1.f);
    Tensor ym = max_pool2d(x, pc.opt), ya = avg_pool2d(x, pc.opt);
    const int64_t oh = (pc.shape[2] + 2 * pc.opt.padding[0] - pc.opt.kernel[0]) / pc.opt.stride[0] + 1;
    const int64_t ow = (pc.shape[3] + 2 * pc.opt.padding[1] - pc.opt.kernel[1]) / pc.opt.stride[1] + 1;
    CHECK(ym.shape() == Shape{pc.shape[0], pc.shape[1], oh, ow});
    CHECK(ya.shape() == ym.shape());
    check_close(ym, ref_pool(x, pc.opt, true), 0, 0, "max_pool2d");  // a max is exact
    check_close(ya, ref_pool(x, pc.opt, false), 1e-6, 1e-5, "avg_pool2d");
  }
}

TEST_CASE("pooling padding: -inf for max, zeros counted for avg (count_include_pad)") {
  Tensor x = Tensor::from_vector({-1, -2, -3, -4}, {1, 1, 2, 2});
  Pool2dOptions o{{2, 2}, {2, 2}, {1, 1}};  // every window holds one element and three pads
  CHECK(max_pool2d(x, o).to_vector() == std::vector<float>{-1, -2, -3, -4});
  CHECK(avg_pool2d(x, o).to_vector() == std::vector<float>{-0.25f, -0.5f, -0.75f, -1.f});
}

TEST_CASE("max_pool2d and avg_pool2d gradients (distinct values: no ties)") {
  for (const PoolCase& pc : pool_cases()) {
    INFO("shape " << shape_str(pc.shape));
    Tensor x = distinct_tensor(pc.shape, 61).set_requires_grad(true);
    const Pool2dOptions o = pc.opt;
    gradcheck([o](const std::vector<Tensor>& in) { return max_pool2d(in[0], o); }, {x});
    gradcheck([o](const std::vector<Tensor>& in) { return avg_pool2d(in[0], o); }, {x});
  }
  // The max gradient goes to the maximum only: 2x2 windows over distinct values.
  Tensor x = Tensor::from_vector({1, 5, 2, 0, 3, 4, 8, 6, 9, 7, 1, 2, 0, 3, 4, 5}, {1, 1, 4, 4}).set_requires_grad(true);
  sum(max_pool2d(x)).backward();
  CHECK(x.grad().to_vector() ==
        std::vector<float>{0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1});
}

TEST_CASE("max_pool2d ties: the first maximum in row-major order takes the gradient (as PyTorch)") {
  Tensor x = Tensor::from_vector({2, 2, 1, 3, 2, 2, 3, 0}, {1, 1, 2, 4}).set_requires_grad(true);
  Tensor y = max_pool2d(x);  // windows {2, 2, 2, 2} and {1, 3, 3, 0}
  CHECK(y.to_vector() == std::vector<float>{2, 3});
  sum(y).backward();
  CHECK(x.grad().to_vector() == std::vector<float>{1, 0, 0, 1, 0, 0, 0, 0});
}

TEST_CASE("pooling a strided view equals pooling its contiguous copy") {
  Tensor big = rand_tensor({2, 3, 8, 10}, 71);
  Tensor v = slice(big, 3, 1, 10, 2);  // (2, 3, 8, 5), non-contiguous
  REQUIRE_FALSE(v.is_contiguous());
  CHECK(max_pool2d(v).to_vector() == max_pool2d(v.clone()).to_vector());
  CHECK(avg_pool2d(v).to_vector() == avg_pool2d(v.clone()).to_vector());
}

TEST_CASE("pooling argument errors") {
  CHECK_THROWS_WITH_AS(max_pool2d(Tensor::zeros({3, 4, 4})),
                       doctest::Contains("max_pool2d: the input must be 4-D (N, C, H, W), got (3, 4, 4)"), Error);
  CHECK_THROWS_WITH_AS(avg_pool2d(Tensor::zeros({1, 1, 4, 4}), {{2, 2}, {2, 2}, {2, 0}}),
                       doctest::Contains("avg_pool2d: padding 2 must be at most half the kernel 2"), Error);
  CHECK_THROWS_WITH_AS(max_pool2d(Tensor::zeros({1, 1, 2, 5}), {{3, 3}, {1, 1}, {0, 0}}),
                       doctest::Contains("max_pool2d: kernel (3, 3) is larger than the padded input (1, 1, 2, 5)"),
                       Error);
  CHECK_THROWS_WITH_AS(avg_pool2d(Tensor::zeros({1, 1, 4, 4}), {{2, 2}, {0, 2}, {0, 0}}),
                       doctest::Contains("avg_pool2d: kernel (2, 2) and stride (0, 2) must be positive"), Error);
}

// ---- global_avg_pool ---------------------------------------------------------------------

TEST_CASE("global_avg_pool: forward, gradient, errors") {
  for (Shape shape : {Shape{2, 3, 4, 5}, Shape{1, 1, 1, 1}, Shape{1, 4, 7, 3}}) {
    Tensor x = rand_tensor(shape, 81, -1.f, 3.f);
    Tensor y = global_avg_pool(x);
    CHECK(y.shape() == Shape{shape[0], shape[1]});
    std::vector<float> xv = x.to_vector();
    const int64_t hw = shape[2] * shape[3];
    std::vector<double> want;
    for (int64_t pl = 0; pl < shape[0] * shape[1]; ++pl) {
      double s = 0;
      for (int64_t i = 0; i < hw; ++i) s += xv[(size_t)(pl * hw + i)];
      want.push_back(s / (double)hw);
    }
    check_close(y, want, 1e-6, 1e-5, "global_avg_pool " + shape_str(shape));
    gradcheck([](const std::vector<Tensor>& in) { return global_avg_pool(in[0]); }, {x.set_requires_grad(true)});
  }
  CHECK_THROWS_WITH_AS(global_avg_pool(Tensor::zeros({2, 3})),
                       doctest::Contains("global_avg_pool: the input must be 4-D (N, C, H, W), got (2, 3)"), Error);
  CHECK_THROWS_WITH_AS(global_avg_pool(Tensor::zeros({2, 3, 0, 4})),
                       doctest::Contains("global_avg_pool: the input (2, 3, 0, 4) has an empty (H, W) plane"),
                       Error);
}

// ---- upsample -----------------------------------------------------------------------------

TEST_CASE("upsample: hand-computed nearest and bilinear values (PyTorch's results)") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4}, {1, 1, 2, 2});
  // F.interpolate(x, size=4, mode='bilinear', align_corners=False)
  check_close(upsample(x, 4, 4, UpsampleMode::Bilinear),
              {1.0, 1.25, 1.75, 2.0, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3.0, 3.25, 3.75, 4.0}, 1e-6, 1e-6,
              "bilinear 2x2 -> 4x4");
  // nearest to 3x3: source rows and cols floor(0 * 2/3), floor(2/3), floor(4/3) = 0, 0, 1.
  CHECK(upsample(x, 3, 3).to_vector() == std::vector<float>{1, 1, 2, 1, 1, 2, 3, 3, 4});
  CHECK(upsample(x, 4, 2).to_vector() == std::vector<float>{1, 2, 1, 2, 3, 4, 3, 4});
}

TEST_CASE("upsample forward against the definition and gradients, up and down") {
  struct Case {
    Shape shape;
    int oh, ow;
  };
  for (const Case& c : std::vector<Case>{{{1, 2, 3, 5}, 7, 4},
                                         {{2, 1, 4, 4}, 8, 8},
                                         {{1, 1, 5, 3}, 2, 2},
                                         {{2, 3, 1, 1}, 3, 2},
                                         {{1, 1, 6, 4}, 9, 10}}) {
    for (UpsampleMode mode : {UpsampleMode::Nearest, UpsampleMode::Bilinear}) {
      const bool bil = mode == UpsampleMode::Bilinear;
      INFO(shape_str(c.shape) << " -> " << c.oh << "x" << c.ow << (bil ? " bilinear" : " nearest"));
      Tensor x = rand_tensor(c.shape, 91, -2.f, 2.f);
      Tensor y = upsample(x, c.oh, c.ow, mode);
      CHECK(y.shape() == Shape{c.shape[0], c.shape[1], c.oh, c.ow});
      check_close(y, ref_upsample(x, c.oh, c.ow, bil), 1e-6, 1e-5, "upsample forward");
      const int oh = c.oh, ow = c.ow;
      gradcheck([oh, ow, mode](const std::vector<Tensor>& in) { return upsample(in[0], oh, ow, mode); },
                {x.set_requires_grad(true)});
    }
  }
}

TEST_CASE("upsample argument errors") {
  CHECK_THROWS_WITH_AS(upsample(Tensor::zeros({4, 4}), 8, 8),
                       doctest::Contains("upsample: the input must be 4-D (N, C, H, W), got (4, 4)"), Error);
  CHECK_THROWS_WITH_AS(upsample(Tensor::zeros({1, 1, 4, 4}), 0, 8),
                       doctest::Contains("upsample: output size (0, 8) must be positive, for input (1, 1, 4, 4)"),
                       Error);
}

// ---- sizes past the kernels' parallel threshold (OpenMP paths) ------------------------------

TEST_CASE("large inputs (parallel loops) match the references") {
  Tensor x = rand_tensor({4, 8, 33, 35}, 101, -2.f, 2.f);
  Tensor rm = Tensor::zeros({8}), rv = Tensor::ones({8});
  std::vector<double> mean, var;
  ref_channel_stats(x, mean, var);
  check_close(batch_norm2d(x, Tensor(), Tensor(), rm, rv, true), ref_batch_norm(x, mean, var, Tensor(), Tensor(), 1e-5),
              1e-5, 1e-4, "batch_norm2d");
  const Pool2dOptions o{{3, 3}, {2, 2}, {1, 1}};
  check_close(max_pool2d(x, o), ref_pool(x, o, true), 0, 0, "max_pool2d");
  check_close(avg_pool2d(x, o), ref_pool(x, o, false), 1e-6, 1e-5, "avg_pool2d");
  // The kernel computes source coordinates in float as PyTorch does: up to ~33 they
  // differ from the double reference by a few 1e-6, times values up to 2.
  check_close(upsample(x, 50, 70, UpsampleMode::Bilinear), ref_upsample(x, 50, 70, true), 3e-5, 1e-5, "bilinear");
  check_close(upsample(x, 66, 70), ref_upsample(x, 66, 70, false), 0, 0, "nearest");
  // Backward at the same size: the gradient of a sum of avg-pooled values.
  Tensor xg = x.clone().set_requires_grad(true);
  sum(avg_pool2d(xg, {{2, 2}, {2, 2}, {0, 0}})).backward();
  std::vector<float> g = xg.grad().to_vector();
  int wrong = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t h = (i / 35) % 33, w = i % 35;  // the last row and column fall outside every window
    if (g[(size_t)i] != (h < 32 && w < 34 ? 0.25f : 0.f)) ++wrong;
  }
  CHECK(wrong == 0);
}
