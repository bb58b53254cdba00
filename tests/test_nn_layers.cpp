// nn/layers and nn/loss forward passes against naive loops (double
// accumulation), modes (BatchNorm, Dropout), gradients reaching parameters,
// a frozen sub-model getting none, and a tiny fit with SGD and Adam.
#include <doctest/doctest.h>

#include <cmath>

#include "nn/layers.hpp"
#include "nn/loss.hpp"
#include "nn/optim.hpp"
#include "runtime/error.hpp"
#include "tests/gradcheck.hpp"

using namespace recon;
using namespace recon::nn;
using recon::test::check_close;
using recon::test::rand_tensor;

namespace {

std::vector<double> to_double(const Tensor& t) {
  std::vector<float> v = t.to_vector();
  return std::vector<double>(v.begin(), v.end());
}

}  // namespace

TEST_CASE("Linear: y = x W^T + b, gradients reach weight and bias") {
  Generator gen(1);
  Linear fc(4, 3, true, gen);
  Tensor x = rand_tensor({2, 4}, 11);
  Tensor y = fc(x);
  REQUIRE(y.shape() == Shape{2, 3});
  std::vector<float> xv = x.to_vector(), w = fc.weight().to_vector(), b = fc.bias().to_vector();
  std::vector<double> want(6);
  for (int n = 0; n < 2; ++n)
    for (int o = 0; o < 3; ++o) {
      double s = b[o];
      for (int i = 0; i < 4; ++i) s += (double)xv[n * 4 + i] * w[o * 4 + i];
      want[n * 3 + o] = s;
    }
  check_close(y, want, 1e-5, 1e-5, "linear forward");
  sum(y).backward();
  // d sum / dW[o, i] = sum_n x[n, i]; d sum / db[o] = N
  std::vector<double> gw(12), gb(3, 2.0);
  for (int o = 0; o < 3; ++o)
    for (int i = 0; i < 4; ++i) gw[o * 4 + i] = (double)xv[i] + xv[4 + i];
  check_close(fc.weight().grad(), gw, 1e-5, 1e-5, "weight grad");
  check_close(fc.bias().grad(), gb, 1e-6, 1e-6, "bias grad");
  Linear nobias(4, 3, false, gen);
  CHECK_FALSE(nobias.bias().defined());
  CHECK(nobias(x).shape() == Shape{2, 3});
}

TEST_CASE("Conv2d: stride 2, padding 1 against a naive loop") {
  Generator gen(2);
  Conv2d conv(2, 3, 3, 2, 1, true, gen);
  Tensor x = rand_tensor({2, 2, 5, 5}, 12);
  Tensor y = conv(x);
  REQUIRE(y.shape() == Shape{2, 3, 3, 3});  // (5 + 2 - 3) / 2 + 1
  std::vector<float> xv = x.to_vector(), w = conv.weight().to_vector(), b = conv.bias().to_vector();
  std::vector<double> want;
  for (int n = 0; n < 2; ++n)
    for (int co = 0; co < 3; ++co)
      for (int oh = 0; oh < 3; ++oh)
        for (int ow = 0; ow < 3; ++ow) {
          double s = b[co];
          for (int ci = 0; ci < 2; ++ci)
            for (int kh = 0; kh < 3; ++kh)
              for (int kw = 0; kw < 3; ++kw) {
                int ih = oh * 2 - 1 + kh, iw = ow * 2 - 1 + kw;
                if (ih < 0 || ih >= 5 || iw < 0 || iw >= 5) continue;
                s += (double)xv[((n * 2 + ci) * 5 + ih) * 5 + iw] * w[((co * 2 + ci) * 3 + kh) * 3 + kw];
              }
          want.push_back(s);
        }
  check_close(y, want, 1e-5, 1e-5, "conv2d forward");
}

TEST_CASE("ConvTranspose2d: output size and values against a naive scatter") {
  Generator gen(3);
  ConvTranspose2d up(2, 1, 3, 2, 1, 1, true, gen);
  Tensor x = rand_tensor({1, 2, 3, 3}, 13);
  Tensor y = up(x);
  REQUIRE(y.shape() == Shape{1, 1, 6, 6});  // (3 - 1) 2 - 2 + 3 + 1
  std::vector<float> xv = x.to_vector(), w = up.weight().to_vector();
  std::vector<double> want(36, up.bias().to_vector()[0]);
  for (int ci = 0; ci < 2; ++ci)
    for (int ih = 0; ih < 3; ++ih)
      for (int iw = 0; iw < 3; ++iw)
        for (int kh = 0; kh < 3; ++kh)
          for (int kw = 0; kw < 3; ++kw) {
            int oh = ih * 2 - 1 + kh, ow = iw * 2 - 1 + kw;
            if (oh < 0 || oh >= 6 || ow < 0 || ow >= 6) continue;
            want[oh * 6 + ow] += (double)xv[(ci * 3 + ih) * 3 + iw] * w[(ci * 3 + kh) * 3 + kw];  // w (Cin, 1, 3, 3)
          }
  check_close(y, want, 1e-5, 1e-5, "conv_transpose2d forward");
}

TEST_CASE("BatchNorm2d: batch statistics in training, running ones in eval") {
  BatchNorm2d bn(2);
  Tensor x = rand_tensor({4, 2, 3, 3}, 14, -2.f, 3.f);
  std::vector<float> xv = x.to_vector();
  double mean[2] = {0, 0}, var[2] = {0, 0};
  const int per = 4 * 9;
  for (int c = 0; c < 2; ++c) {
    for (int n = 0; n < 4; ++n)
      for (int i = 0; i < 9; ++i) mean[c] += xv[(n * 2 + c) * 9 + i];
    mean[c] /= per;
    for (int n = 0; n < 4; ++n)
      for (int i = 0; i < 9; ++i) var[c] += std::pow(xv[(n * 2 + c) * 9 + i] - mean[c], 2);
    var[c] /= per;  // biased, for normalising
  }
  Tensor y = bn(x);
  std::vector<double> want(xv.size());
  for (int n = 0; n < 4; ++n)
    for (int c = 0; c < 2; ++c)
      for (int i = 0; i < 9; ++i) {
        int k = (n * 2 + c) * 9 + i;
        want[k] = (xv[k] - mean[c]) / std::sqrt(var[c] + 1e-5);
      }
  check_close(y, want, 1e-4, 1e-4, "batch norm, training");
  // Running statistics: momentum 0.1, unbiased variance.
  check_close(bn.running_mean(), {0.1 * mean[0], 0.1 * mean[1]}, 1e-6, 1e-5, "running_mean");
  check_close(bn.running_var(), {0.9 + 0.1 * var[0] * per / (per - 1), 0.9 + 0.1 * var[1] * per / (per - 1)}, 1e-6,
              1e-5, "running_var");
  bn.eval();
  std::vector<float> rm = bn.running_mean().to_vector(), rv = bn.running_var().to_vector();
  Tensor ye = bn(x);
  for (int n = 0; n < 4; ++n)
    for (int c = 0; c < 2; ++c)
      for (int i = 0; i < 9; ++i) {
        int k = (n * 2 + c) * 9 + i;
        want[k] = (xv[k] - rm[c]) / std::sqrt((double)rv[c] + 1e-5);
      }
  check_close(ye, want, 1e-4, 1e-4, "batch norm, eval");
  CHECK(bn.running_mean().to_vector() == rm);  // eval leaves them alone
}

TEST_CASE("activations, pooling, upsampling and flatten") {
  Tensor x = Tensor::from_vector({-2.f, -0.5f, 0.f, 1.5f}, {1, 1, 2, 2});
  check_close(ReLU()(x), {0, 0, 0, 1.5});
  check_close(LeakyReLU(0.1f)(x), {-0.2, -0.05, 0, 1.5});
  check_close(Sigmoid()(x), {1 / (1 + std::exp(2.0)), 1 / (1 + std::exp(0.5)), 0.5, 1 / (1 + std::exp(-1.5))});
  check_close(Tanh()(x), {std::tanh(-2.0), std::tanh(-0.5), 0.0, std::tanh(1.5)});

  std::vector<float> v(16);
  for (int i = 0; i < 16; ++i) v[i] = (float)((i * 7) % 16);
  Tensor img = Tensor::from_vector(v, {1, 1, 4, 4});
  // 0 7 14 5 / 12 3 10 1 / 8 15 6 13 / 4 11 2 9
  check_close(MaxPool2d(2)(img), {12, 14, 15, 13});
  check_close(AvgPool2d(2)(img), {5.5, 7.5, 9.5, 7.5});
  CHECK(MaxPool2d(3, 1)(img).shape() == Shape{1, 1, 2, 2});
  CHECK(AvgPool2d(2, 2, 1)(img).shape() == Shape{1, 1, 3, 3});

  Tensor small = Tensor::from_vector({1, 2, 3, 4}, {1, 1, 2, 2});
  Tensor up = Upsample(2)(small);
  REQUIRE(up.shape() == Shape{1, 1, 4, 4});
  check_close(up, {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  CHECK(Upsample(OutputSize{3, 5}, UpsampleMode::Bilinear)(small).shape() == Shape{1, 1, 3, 5});
  CHECK(Flatten()(Tensor::zeros({2, 3, 4, 5})).shape() == Shape{2, 60});
  CHECK_THROWS_WITH_AS(Upsample(0), doctest::Contains("scale_factor 0 must be positive"), Error);
}

TEST_CASE("Dropout: identity in eval; in training zeros about p and scales the rest, seeded") {
  Generator g1(9), g2(9);
  Dropout d1(0.25f, g1), d2(0.25f, g2);
  Tensor x = Tensor::ones({10000});
  Tensor a = d1(x), b = d2(x);
  CHECK(a.to_vector() == b.to_vector());  // same seed, same mask
  std::vector<float> av = a.to_vector();
  int zeros = 0, badly_scaled = 0;
  for (float v : av) {
    if (v == 0.f) ++zeros;
    else if (std::fabs(v - 1.0 / 0.75) > 1e-6) ++badly_scaled;
  }
  CHECK(badly_scaled == 0);
  CHECK(zeros == doctest::Approx(2500).epsilon(0.1));
  d1.eval();
  CHECK(d1(x).to_vector() == x.to_vector());
}

TEST_CASE("losses: MSE, cross-entropy and KL wrappers against their formulas") {
  Tensor p = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  Tensor t = Tensor::from_vector({0, 2, 5, 3}, {2, 2});
  CHECK(MSELoss()(p, t).item() == doctest::Approx((1 + 0 + 4 + 1) / 4.0));
  CHECK(MSELoss(Reduction::Sum)(p, t).item() == doctest::Approx(6.0));

  Tensor logits = Tensor::from_vector({1, 2, 3, 0, 0, 5}, {2, 3});
  Tensor labels = Tensor::from_vector({2, 0}, {2});
  double l0 = -3 + std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  double l1 = -0 + std::log(2 + std::exp(5.0));
  CHECK(CrossEntropyLoss()(logits, labels).item() == doctest::Approx((l0 + l1) / 2).epsilon(1e-6));
  CHECK(CrossEntropyLoss(Reduction::Sum)(logits, labels).item() == doctest::Approx(l0 + l1).epsilon(1e-6));

  Tensor mu = Tensor::from_vector({0.5f, -1.f}, {2, 1});
  Tensor logvar = Tensor::from_vector({0.f, std::log(2.f)}, {2, 1});
  double kl = 0.5 * ((0.25 + 1 - 1 - 0) + (1 + 2 - 1 - std::log(2.0)));
  CHECK(KLNormalLoss()(mu, logvar).item() == doctest::Approx(kl).epsilon(1e-6));
  CHECK(KLNormalLoss(Reduction::Mean)(mu, logvar).item() == doctest::Approx(kl / 2).epsilon(1e-6));
}

TEST_CASE("Sequential: gradients reach every parameter; a frozen encoder gets none") {
  Generator gen(5);
  auto encoder = make_sequential(std::make_shared<Conv2d>(1, 4, 3, 1, 1, true, gen), std::make_shared<BatchNorm2d>(4),
                                 std::make_shared<LeakyReLU>(0.2f), std::make_shared<MaxPool2d>(2),
                                 std::make_shared<Flatten>(), std::make_shared<Linear>(16, 3, true, gen));
  auto decoder = make_sequential(std::make_shared<Linear>(3, 16, true, gen), std::make_shared<Sigmoid>());
  Tensor x = rand_tensor({2, 1, 4, 4}, 15, 0.f, 1.f);
  Tensor target = rand_tensor({2, 16}, 16, 0.f, 1.f);
  MSELoss loss;
  loss((*decoder)((*encoder)(x)), target).backward();
  for (const auto& [name, p] : encoder->named_parameters()) CHECK_MESSAGE(p.grad().defined(), "encoder " << name);
  for (const auto& [name, p] : decoder->named_parameters()) CHECK_MESSAGE(p.grad().defined(), "decoder " << name);

  encoder->zero_grad();
  decoder->zero_grad();
  encoder->freeze();
  encoder->eval();
  std::vector<float> rm = encoder->state_dict().at("1.running_mean").to_vector();
  loss((*decoder)((*encoder)(x)), target).backward();
  for (const auto& [name, p] : encoder->named_parameters()) CHECK_MESSAGE(!p.grad().defined(), "frozen " << name);
  for (const auto& [name, p] : decoder->named_parameters()) CHECK_MESSAGE(p.grad().defined(), "decoder " << name);
  CHECK(encoder->state_dict().at("1.running_mean").to_vector() == rm);
}

TEST_CASE("training: SGD with momentum and Adam fit y = 2x - 1") {
  for (int which = 0; which < 2; ++which) {
    INFO((which == 0 ? "SGD" : "Adam"));
    Generator gen(6);
    Linear fc(1, 1, true, gen);
    std::unique_ptr<Optimizer> opt;
    if (which == 0) opt = std::make_unique<SGD>(fc.named_parameters(), SGDOptions{.lr = 0.1f, .momentum = 0.9f});
    else opt = std::make_unique<Adam>(fc.named_parameters(), AdamOptions{.lr = 0.05f});
    Tensor x = Tensor::from_vector({-1, -0.5f, 0, 0.5f, 1}, {5, 1});
    Tensor y = Tensor::from_vector({-3, -2, -1, 0, 1}, {5, 1});
    MSELoss loss;
    float first = 0, last = 0;
    for (int s = 0; s < 300; ++s) {
      opt->zero_grad();
      Tensor l = loss(fc(x), y);
      l.backward();
      opt->step();
      if (s == 0) first = l.item();
      last = l.item();
    }
    CHECK(last < 1e-4f * first);
    CHECK(fc.weight().item() == doctest::Approx(2.0).epsilon(1e-2));
    CHECK(fc.bias().item() == doctest::Approx(-1.0).epsilon(1e-2));
  }
}
