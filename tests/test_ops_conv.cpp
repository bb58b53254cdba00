// conv2d and conv_transpose2d on the CPU: forward against naive direct loops
// accumulated in double on awkward shapes, backward against naive loops on
// shapes large enough to split the batch into im2col chunks, finite-difference
// gradients of every input, frozen layers running no weight-gradient kernel,
// the parallel layout loops (the same bits on 1 and 2 threads), and argument
// errors.
#include <doctest/doctest.h>
#include <omp.h>

#include <array>
#include <string>
#include <vector>

#include "kernels/cpu/conv.hpp"
#include "runtime/error.hpp"
#include "runtime/ops.hpp"
#include "runtime/profile.hpp"
#include "tests/gradcheck.hpp"

using namespace recon;
using recon::test::check_close;
using recon::test::gradcheck;
using recon::test::rand_tensor;

namespace {

// One conv shape in conv2d terms: x (n, ci, h, w), weight (co, ci, kh, kw).
struct ConvCase {
  int n, ci, h, w, co, kh, kw;
  std::array<int, 2> stride{1, 1}, padding{0, 0}, dilation{1, 1}, output_padding{0, 0};
  bool bias = true;
};

std::string case_str(const ConvCase& c) {
  return "x (" + std::to_string(c.n) + ", " + std::to_string(c.ci) + ", " + std::to_string(c.h) + ", " +
         std::to_string(c.w) + ") co " + std::to_string(c.co) + " k " + std::to_string(c.kh) + "x" +
         std::to_string(c.kw) + " s " + std::to_string(c.stride[0]) + "," + std::to_string(c.stride[1]) + " p " +
         std::to_string(c.padding[0]) + "," + std::to_string(c.padding[1]) + " d " + std::to_string(c.dilation[0]) +
         "," + std::to_string(c.dilation[1]) + " op " + std::to_string(c.output_padding[0]) + "," +
         std::to_string(c.output_padding[1]);
}

// Direct conv2d: y[n, co, oy, ox] = b[co] + sum x[n, ci, oy s - p + ki d, ox s - p + kj d] w[co, ci, ki, kj].
std::vector<double> conv2d_ref(const Tensor& xt, const Tensor& wt, const Tensor& bt, const ConvCase& c, int& ho,
                               int& wo) {
  const auto x = xt.to_vector(), w = wt.to_vector();
  const auto b = bt.defined() ? bt.to_vector() : std::vector<float>(c.co, 0.f);
  ho = (c.h + 2 * c.padding[0] - c.dilation[0] * (c.kh - 1) - 1) / c.stride[0] + 1;
  wo = (c.w + 2 * c.padding[1] - c.dilation[1] * (c.kw - 1) - 1) / c.stride[1] + 1;
  std::vector<double> y((size_t)c.n * c.co * ho * wo);
  for (int n = 0; n < c.n; ++n)
    for (int co = 0; co < c.co; ++co)
      for (int oy = 0; oy < ho; ++oy)
        for (int ox = 0; ox < wo; ++ox) {
          double s = b[co];
          for (int ci = 0; ci < c.ci; ++ci)
            for (int ki = 0; ki < c.kh; ++ki)
              for (int kj = 0; kj < c.kw; ++kj) {
                int iy = oy * c.stride[0] - c.padding[0] + ki * c.dilation[0];
                int ix = ox * c.stride[1] - c.padding[1] + kj * c.dilation[1];
                if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) continue;
                s += (double)x[((size_t)(n * c.ci + ci) * c.h + iy) * c.w + ix] *
                     w[((size_t)(co * c.ci + ci) * c.kh + ki) * c.kw + kj];
              }
          y[((size_t)(n * c.co + co) * ho + oy) * wo + ox] = s;
        }
  return y;
}

// Naive conv2d gradients (scatter form): dx from dy and w, dw from x and dy.
void conv2d_backward_ref(const Tensor& xt, const Tensor& wt, const Tensor& dyt, const ConvCase& c, int ho, int wo,
                         std::vector<double>& dx, std::vector<double>& dw) {
  const auto x = xt.to_vector(), w = wt.to_vector(), dy = dyt.to_vector();
  dx.assign(x.size(), 0.0);
  dw.assign(w.size(), 0.0);
  for (int n = 0; n < c.n; ++n)
    for (int co = 0; co < c.co; ++co)
      for (int oy = 0; oy < ho; ++oy)
        for (int ox = 0; ox < wo; ++ox) {
          const double g = dy[((size_t)(n * c.co + co) * ho + oy) * wo + ox];
          for (int ci = 0; ci < c.ci; ++ci)
            for (int ki = 0; ki < c.kh; ++ki)
              for (int kj = 0; kj < c.kw; ++kj) {
                int iy = oy * c.stride[0] - c.padding[0] + ki * c.dilation[0];
                int ix = ox * c.stride[1] - c.padding[1] + kj * c.dilation[1];
                if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) continue;
                const size_t xi = ((size_t)(n * c.ci + ci) * c.h + iy) * c.w + ix;
                const size_t wi = ((size_t)(co * c.ci + ci) * c.kh + ki) * c.kw + kj;
                dx[xi] += g * w[wi];
                dw[wi] += g * x[xi];
              }
        }
}

// Direct conv_transpose2d (scatter form) with x (n, ci, h, w), weight
// (ci, co, kh, kw): y[n, co, iy s - p + ki d, ix s - p + kj d] += x[n, ci, iy, ix] w[ci, co, ki, kj].
std::vector<double> conv_transpose2d_ref(const Tensor& xt, const Tensor& wt, const Tensor& bt, const ConvCase& c,
                                         int& ho, int& wo) {
  const auto x = xt.to_vector(), w = wt.to_vector();
  const auto b = bt.defined() ? bt.to_vector() : std::vector<float>(c.co, 0.f);
  ho = (c.h - 1) * c.stride[0] - 2 * c.padding[0] + c.dilation[0] * (c.kh - 1) + c.output_padding[0] + 1;
  wo = (c.w - 1) * c.stride[1] - 2 * c.padding[1] + c.dilation[1] * (c.kw - 1) + c.output_padding[1] + 1;
  std::vector<double> y((size_t)c.n * c.co * ho * wo);
  for (int n = 0; n < c.n; ++n)
    for (int co = 0; co < c.co; ++co)
      for (int i = 0; i < ho * wo; ++i) y[(size_t)(n * c.co + co) * ho * wo + i] = b[co];
  for (int n = 0; n < c.n; ++n)
    for (int ci = 0; ci < c.ci; ++ci)
      for (int iy = 0; iy < c.h; ++iy)
        for (int ix = 0; ix < c.w; ++ix) {
          const double v = x[((size_t)(n * c.ci + ci) * c.h + iy) * c.w + ix];
          for (int co = 0; co < c.co; ++co)
            for (int ki = 0; ki < c.kh; ++ki)
              for (int kj = 0; kj < c.kw; ++kj) {
                int oy = iy * c.stride[0] - c.padding[0] + ki * c.dilation[0];
                int ox = ix * c.stride[1] - c.padding[1] + kj * c.dilation[1];
                if (oy < 0 || oy >= ho || ox < 0 || ox >= wo) continue;
                y[((size_t)(n * c.co + co) * ho + oy) * wo + ox] +=
                    v * w[((size_t)(ci * c.co + co) * c.kh + ki) * c.kw + kj];
              }
        }
  return y;
}

Conv2dOptions conv_opts(const ConvCase& c) { return {c.stride, c.padding, c.dilation}; }
ConvTranspose2dOptions convt_opts(const ConvCase& c) {
  return {c.stride, c.padding, c.output_padding, c.dilation};
}

}  // namespace

TEST_CASE("conv2d forward matches a direct loop on awkward shapes") {
  const std::vector<ConvCase> cases = {
      {1, 1, 5, 5, 1, 3, 3},                                  // single channel, padding 0
      {2, 3, 7, 6, 4, 3, 3, {2, 2}, {1, 1}},                  // stride 2, padding 1, odd sizes
      {1, 3, 9, 8, 2, 3, 2, {1, 1}, {1, 1}, {2, 2}, {}, false},  // dilation 2, non-square kernel, no bias
      {3, 2, 6, 7, 3, 1, 1},                                  // 1x1 kernel
      {2, 1, 8, 5, 3, 3, 3, {2, 1}, {0, 1}, {1, 2}},          // per-axis stride, padding, dilation
      {1, 3, 5, 5, 1, 5, 5},                                  // kernel as large as the input: 1x1 output
      {2, 3, 4, 4, 1, 3, 3, {2, 2}, {1, 1}, {1, 1}, {}, false},  // Cout 1
      {64, 1, 28, 28, 4, 3, 3, {1, 1}, {1, 1}},               // the model's first layer, whole batch in one chunk
  };
  int k = 0;
  for (const ConvCase& c : cases) {
    INFO(case_str(c));
    Tensor x = rand_tensor({c.n, c.ci, c.h, c.w}, 100 + k);
    Tensor w = rand_tensor({c.co, c.ci, c.kh, c.kw}, 200 + k);
    Tensor b = c.bias ? rand_tensor({c.co}, 300 + k) : Tensor();
    int ho = 0, wo = 0;
    std::vector<double> want = conv2d_ref(x, w, b, c, ho, wo);
    Tensor y = conv2d(x, w, b, conv_opts(c));
    CHECK(y.shape() == Shape{c.n, c.co, ho, wo});
    check_close(y, want, 1e-5, 1e-4, case_str(c));
    ++k;
  }
}

TEST_CASE("conv_transpose2d forward matches a direct loop on awkward shapes") {
  const std::vector<ConvCase> cases = {
      {1, 1, 3, 3, 1, 3, 3},                                           // single channel
      {2, 3, 4, 5, 2, 3, 3, {2, 2}, {1, 1}, {1, 1}, {1, 1}},           // stride 2, padding 1, output_padding 1
      {1, 2, 3, 4, 3, 3, 2, {2, 3}, {1, 0}, {1, 1}, {1, 2}, false},    // per-axis, non-square, no bias
      {2, 1, 5, 4, 1, 3, 3, {1, 1}, {1, 1}, {2, 2}},                   // dilation 2
      {1, 3, 3, 3, 1, 3, 3, {1, 1}, {0, 0}, {2, 2}, {1, 1}},           // output_padding >= stride, < dilation
      {2, 4, 7, 7, 2, 3, 3, {2, 2}, {1, 1}, {1, 1}, {1, 1}},           // the decoder's 7 -> 14 step
      {1, 2, 1, 1, 3, 2, 2, {2, 2}},                                   // 1x1 input
  };
  int k = 0;
  for (const ConvCase& c : cases) {
    INFO(case_str(c));
    Tensor x = rand_tensor({c.n, c.ci, c.h, c.w}, 400 + k);
    Tensor w = rand_tensor({c.ci, c.co, c.kh, c.kw}, 500 + k);
    Tensor b = c.bias ? rand_tensor({c.co}, 600 + k) : Tensor();
    int ho = 0, wo = 0;
    std::vector<double> want = conv_transpose2d_ref(x, w, b, c, ho, wo);
    Tensor y = conv_transpose2d(x, w, b, convt_opts(c));
    CHECK(y.shape() == Shape{c.n, c.co, ho, wo});
    check_close(y, want, 1e-5, 1e-4, case_str(c));
    ++k;
  }
}

TEST_CASE("conv2d forward and backward match direct loops when the batch spans several im2col chunks") {
  // Column matrix per image: (32 * 3 * 3) x (40 * 40) = 0.46M floats, so a
  // chunk holds two images and a batch of 3 runs as chunks of 2 and 1.
  const ConvCase c{3, 32, 40, 40, 2, 3, 3, {1, 1}, {1, 1}};
  const int64_t per_image = (int64_t)c.ci * c.kh * c.kw * c.h * c.w;
  REQUIRE(2 * per_image <= cpu::kConvColBudget);
  REQUIRE(3 * per_image > cpu::kConvColBudget);
  Tensor x = rand_tensor({c.n, c.ci, c.h, c.w}, 11);
  Tensor w = rand_tensor({c.co, c.ci, c.kh, c.kw}, 12);
  Tensor b = rand_tensor({c.co}, 13);
  x.set_requires_grad(true);
  w.set_requires_grad(true);
  int ho = 0, wo = 0;
  std::vector<double> want = conv2d_ref(x, w, b, c, ho, wo);
  Tensor y = conv2d(x, w, b, conv_opts(c));
  check_close(y, want, 1e-4, 1e-4, "forward");
  Tensor dy = rand_tensor(y.shape(), 14);
  y.backward(dy);
  std::vector<double> dx, dw;
  conv2d_backward_ref(x, w, dy, c, ho, wo, dx, dw);
  check_close(x.grad(), dx, 1e-4, 1e-4, "data gradient");
  check_close(w.grad(), dw, 1e-3, 1e-4, "weight gradient");
}

TEST_CASE("conv2d gradients of input, weight and bias match finite differences") {
  const std::vector<ConvCase> cases = {
      {2, 2, 5, 4, 3, 3, 2, {2, 1}, {1, 1}, {1, 2}},
      {1, 1, 4, 4, 1, 3, 3},
      {2, 3, 6, 5, 2, 3, 3, {2, 2}, {1, 0}, {1, 1}, {}, false},
  };
  int k = 0;
  for (const ConvCase& c : cases) {
    INFO(case_str(c));
    Tensor x = rand_tensor({c.n, c.ci, c.h, c.w}, 700 + k);
    Tensor w = rand_tensor({c.co, c.ci, c.kh, c.kw}, 710 + k);
    Tensor b = c.bias ? rand_tensor({c.co}, 720 + k) : Tensor();
    x.set_requires_grad(true);
    w.set_requires_grad(true);
    if (b.defined()) b.set_requires_grad(true);
    const Conv2dOptions o = conv_opts(c);
    gradcheck([o](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], o); }, {x, w, b});
    ++k;
  }
}

TEST_CASE("conv_transpose2d gradients of input, weight and bias match finite differences") {
  const std::vector<ConvCase> cases = {
      {2, 2, 3, 3, 3, 3, 3, {2, 2}, {1, 1}, {1, 1}, {1, 1}},
      {1, 1, 3, 2, 1, 2, 3, {1, 2}, {0, 1}, {2, 1}, {1, 0}},
      {2, 3, 2, 3, 2, 3, 3, {1, 1}, {1, 1}, {1, 1}, {0, 0}, false},
  };
  int k = 0;
  for (const ConvCase& c : cases) {
    INFO(case_str(c));
    Tensor x = rand_tensor({c.n, c.ci, c.h, c.w}, 800 + k);
    Tensor w = rand_tensor({c.ci, c.co, c.kh, c.kw}, 810 + k);
    Tensor b = c.bias ? rand_tensor({c.co}, 820 + k) : Tensor();
    x.set_requires_grad(true);
    w.set_requires_grad(true);
    if (b.defined()) b.set_requires_grad(true);
    const ConvTranspose2dOptions o = convt_opts(c);
    gradcheck([o](const std::vector<Tensor>& in) { return conv_transpose2d(in[0], in[1], in[2], o); }, {x, w, b});
    ++k;
  }
}

TEST_CASE("a frozen conv layer runs no weight- or bias-gradient kernel; an input without grad no data kernel") {
  for (bool transposed : {false, true}) {
    const std::string op = transposed ? "conv_transpose2d" : "conv2d";
    INFO(op);
    auto run = [&](const Tensor& x, const Tensor& w, const Tensor& b) {
      return transposed ? conv_transpose2d(x, w, b, {{2, 2}, {1, 1}, {1, 1}}) : conv2d(x, w, b, {{2, 2}, {1, 1}});
    };
    Tensor x = rand_tensor({2, 3, 6, 6}, 31);
    Tensor w = rand_tensor(transposed ? Shape{3, 4, 3, 3} : Shape{4, 3, 3, 3}, 32);
    Tensor b = rand_tensor({4}, 33);

    // Frozen weight and bias, input needs a gradient (a layer after a trained one).
    x.set_requires_grad(true);
    reset_range_counts();
    sum(run(x, w, b)).backward();
    CHECK(range_count(op + "_backward_data") == 1);
    CHECK(range_count(op + "_backward_weight") == 0);
    CHECK(range_count(op + "_backward_bias") == 0);
    CHECK(x.grad().defined());
    CHECK_FALSE(w.grad().defined());
    CHECK_FALSE(b.grad().defined());

    // Trained layer on an input that needs no gradient (the first layer).
    x.set_requires_grad(false);
    x.zero_grad();
    w.set_requires_grad(true);
    b.set_requires_grad(true);
    reset_range_counts();
    sum(run(x, w, b)).backward();
    CHECK(range_count(op + "_backward_data") == 0);
    CHECK(range_count(op + "_backward_weight") == 1);
    CHECK(range_count(op + "_backward_bias") == 1);
    CHECK_FALSE(x.grad().defined());
    CHECK(w.grad().defined());
    CHECK(b.grad().defined());

    // Under NoGradGuard nothing is recorded at all.
    reset_range_counts();
    {
      NoGradGuard ng;
      Tensor y = run(x, w, b);
      CHECK_FALSE(y.requires_grad());
    }
    CHECK(range_count(op) == 1);
  }
}

TEST_CASE("conv2d rejects bad arguments with the op, the shapes and what was expected") {
  Tensor x = Tensor::zeros({2, 3, 5, 5});
  Tensor w = Tensor::zeros({4, 3, 3, 3});
  Tensor b = Tensor::zeros({4});
  CHECK_THROWS_WITH_AS(conv2d(Tensor::zeros({3, 5, 5}), w, b),
                       doctest::Contains("conv2d: the input must be 4-D (N, Cin, H, W), got (3, 5, 5)"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({4, 3, 3}), b),
                       doctest::Contains("conv2d: the weight must be 4-D (Cout, Cin, kh, kw), got (4, 3, 3)"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({4, 2, 3, 3}), b),
                       doctest::Contains("conv2d: input (2, 3, 5, 5) has 3 channels but weight (4, 2, 3, 3) "
                                         "(Cout, Cin, kh, kw) expects Cin = 2"),
                       Error);
  CHECK_THROWS_WITH_AS(conv2d(x, w, Tensor::zeros({3})),
                       doctest::Contains("conv2d: bias must be (Cout) = (4) for weight (4, 3, 3, 3), got (3)"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({4, 3, 7, 3}), b),
                       doctest::Contains("conv2d: kernel 7x3 (dilation (1, 1), covering 7x3) is larger than the "
                                         "padded input 5x5 (input (2, 3, 5, 5), padding (0, 0))"),
                       Error);
  Conv2dOptions dil;
  dil.padding = {1, 1};
  dil.dilation = {4, 4};  // a 3x3 kernel then covers 9x9 > 5 + 2
  CHECK_THROWS_WITH_AS(conv2d(x, w, b, dil),
                       doctest::Contains("conv2d: kernel 3x3 (dilation (4, 4), covering 9x9) is larger than the "
                                         "padded input 7x7"),
                       Error);
  CHECK_THROWS_WITH_AS(conv2d(x, w, b, {{0, 1}}), doctest::Contains("conv2d: stride must be positive, got (0, 1)"),
                       Error);
  CHECK_THROWS_WITH_AS(conv2d(x, w, b, {{1, 1}, {-1, 0}}),
                       doctest::Contains("conv2d: padding must be non-negative, got (-1, 0)"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, w, b, {{1, 1}, {0, 0}, {1, 0}}),
                       doctest::Contains("conv2d: dilation must be positive, got (1, 0)"), Error);
  CHECK_THROWS_WITH_AS(conv2d(Tensor(), w, b), doctest::Contains("conv2d: the input is an undefined tensor"), Error);
  // A kernel exactly as large as the padded input is fine.
  CHECK(conv2d(x, Tensor::zeros({4, 3, 7, 7}), b, {{1, 1}, {1, 1}}).shape() == Shape{2, 4, 1, 1});
}

TEST_CASE("conv_transpose2d rejects bad arguments with the op, the shapes and what was expected") {
  Tensor x = Tensor::zeros({2, 3, 4, 4});
  Tensor w = Tensor::zeros({3, 5, 3, 3});
  Tensor b = Tensor::zeros({5});
  CHECK_THROWS_WITH_AS(conv_transpose2d(Tensor::zeros({2, 3, 4}), w, b),
                       doctest::Contains("conv_transpose2d: the input must be 4-D (N, Cin, H, W), got (2, 3, 4)"),
                       Error);
  CHECK_THROWS_WITH_AS(conv_transpose2d(x, Tensor::zeros({5, 3, 3, 3}), b),
                       doctest::Contains("conv_transpose2d: input (2, 3, 4, 4) has 3 channels but weight "
                                         "(5, 3, 3, 3) (Cin, Cout, kh, kw) expects Cin = 5"),
                       Error);
  CHECK_THROWS_WITH_AS(conv_transpose2d(x, w, Tensor::zeros({3})),
                       doctest::Contains("conv_transpose2d: bias must be (Cout) = (5) for weight (3, 5, 3, 3), got (3)"),
                       Error);
  CHECK_THROWS_WITH_AS(conv_transpose2d(x, w, b, {{2, 2}, {1, 1}, {2, 0}}),
                       doctest::Contains("conv_transpose2d: output_padding (2, 0) must be non-negative and smaller "
                                         "than either stride (2, 2) or dilation (1, 1)"),
                       Error);
  CHECK_THROWS_WITH_AS(conv_transpose2d(x, w, b, {{0, 2}}),
                       doctest::Contains("conv_transpose2d: stride must be positive, got (0, 2)"), Error);
  CHECK_THROWS_WITH_AS(conv_transpose2d(Tensor::zeros({1, 3, 1, 1}), Tensor::zeros({3, 5, 1, 1}), b,
                                        {{1, 1}, {1, 1}}),
                       doctest::Contains("conv_transpose2d: output size -1x-1 is not positive (input (1, 3, 1, 1)"),
                       Error);
}

TEST_CASE("conv ops reject tensors on different devices" * doctest::skip(!cuda_available())) {
  Tensor x = Tensor::zeros({1, 2, 4, 4});
  Tensor w = Tensor::zeros({2, 2, 3, 3}, Device::cuda());
  CHECK_THROWS_WITH_AS(conv2d(x, w, Tensor()), doctest::Contains("conv2d: tensors on different devices (cpu and cuda:0)"),
                       Error);
  CHECK_THROWS_WITH_AS(conv_transpose2d(x, w, Tensor()),
                       doctest::Contains("conv_transpose2d: tensors on different devices (cpu and cuda:0)"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, Tensor::zeros({2, 2, 3, 3}), Tensor::zeros({2}, Device::cuda())),
                       doctest::Contains("conv2d: tensors on different devices (cpu and cuda:0)"), Error);
}

TEST_CASE("an empty batch gives an empty output and a zero weight gradient") {
  Tensor x = Tensor::zeros({0, 3, 5, 5});
  Tensor w = rand_tensor({4, 3, 3, 3}, 41), wt = rand_tensor({3, 4, 3, 3}, 42);
  w.set_requires_grad(true);
  wt.set_requires_grad(true);
  Tensor y = conv2d(x, w, Tensor(), {{2, 2}, {1, 1}});
  CHECK(y.shape() == Shape{0, 4, 3, 3});
  sum(y).backward();
  REQUIRE(w.grad().defined());
  CHECK(w.grad().to_vector() == std::vector<float>(4 * 3 * 3 * 3, 0.f));
  Tensor yt = conv_transpose2d(x, wt, Tensor(), {{2, 2}, {1, 1}, {1, 1}});
  CHECK(yt.shape() == Shape{0, 4, 10, 10});
  sum(yt).backward();
  REQUIRE(wt.grad().defined());
  CHECK(wt.grad().to_vector() == std::vector<float>(3 * 4 * 3 * 3, 0.f));
}

TEST_CASE("stride-2 conv2d and conv_transpose2d above the parallel threshold match direct loops on 1 and 2 threads") {
  // The encoder's downsampling shape at a batch whose column matrix (16 * 9) x (8 * 8 * 8)
  // is over the 32768 floats from which im2col, col2im and the layout loops run in parallel.
  const ConvCase c{8, 16, 15, 16, 12, 3, 3, {2, 2}, {1, 1}};
  Tensor x0 = rand_tensor({c.n, c.ci, c.h, c.w}, 21);
  Tensor w0 = rand_tensor({c.co, c.ci, c.kh, c.kw}, 22);
  Tensor b0 = rand_tensor({c.co}, 23);
  int ho = 0, wo = 0;
  const std::vector<double> want = conv2d_ref(x0, w0, b0, c, ho, wo);
  REQUIRE((int64_t)c.ci * c.kh * c.kw * c.n * ho * wo > (1 << 15));
  Tensor dy = rand_tensor({c.n, c.co, ho, wo}, 24);
  std::vector<double> dx_want, dw_want, db_want((size_t)c.co, 0.0);
  conv2d_backward_ref(x0, w0, dy, c, ho, wo, dx_want, dw_want);
  const std::vector<float> dyv = dy.to_vector();
  for (size_t i = 0; i < dyv.size(); ++i) db_want[i / ((size_t)ho * wo) % (size_t)c.co] += dyv[i];
  // conv_transpose2d of dy with the same weight is the data gradient plus a bias: the same kernels the other way.
  const ConvCase ct{c.n, c.co, ho, wo, c.ci, c.kh, c.kw, c.stride, c.padding, c.dilation, {0, 1}};
  int tho = 0, two = 0;
  Tensor bt = rand_tensor({c.ci}, 25);
  const std::vector<double> want_t = conv_transpose2d_ref(dy, w0, bt, ct, tho, two);
  std::vector<float> db[2];
  const int threads_before = omp_get_max_threads();
  for (int t = 0; t < 2; ++t) {
    INFO((t + 1) << " threads");
    omp_set_num_threads(t + 1);
    Tensor x = x0.clone().set_requires_grad(true), w = w0.clone().set_requires_grad(true),
           b = b0.clone().set_requires_grad(true);
    Tensor y = conv2d(x, w, b, conv_opts(c));
    y.backward(dy);
    check_close(y, want, 1e-4, 1e-4, "forward");
    check_close(x.grad(), dx_want, 1e-4, 1e-4, "data gradient");
    check_close(w.grad(), dw_want, 1e-3, 1e-4, "weight gradient");
    check_close(b.grad(), db_want, 1e-4, 1e-4, "bias gradient");
    check_close(conv_transpose2d(dy, w0, bt, convt_opts(ct)), want_t, 1e-4, 1e-4, "conv_transpose2d forward");
    db[t] = b.grad().to_vector();
  }
  omp_set_num_threads(threads_before);
  // The bias gradient is our own sum (fixed order per channel): the same bits on any thread count.
  // (The GEMM outputs need not be: OpenBLAS may split its sums otherwise on another thread count.)
  CHECK(db[0] == db[1]);
}
