// The autograd engine: shared subexpressions, branches that rejoin,
// accumulation across backward calls, NoGradGuard, retain_graph, implicit
// gradients, and leaves that do not require grad. Expected gradients are
// derived by hand and evaluated in double.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "gradcheck.hpp"
#include "runtime/error.hpp"
#include "runtime/ops.hpp"

using namespace recon;
using test::check_close;
using test::rand_tensor;

namespace {

Tensor leaf(const Shape& shape, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  Tensor t = rand_tensor(shape, seed, lo, hi);
  t.set_requires_grad(true);
  return t;
}

std::vector<double> as_double(const Tensor& t) {
  std::vector<double> r;
  for (float v : t.to_vector()) r.push_back(v);
  return r;
}

}  // namespace

TEST_CASE("a shared subexpression used twice: y = x*x + x, L = sum(y * y)") {
  Tensor x = leaf({2, 3}, 1);
  Tensor y = add(mul(x, x), x);  // x itself feeds mul twice and add once
  Tensor l = sum(mul(y, y));     // y feeds mul twice
  l.backward();
  REQUIRE(x.grad().defined());
  std::vector<double> want;
  for (double v : as_double(x)) want.push_back(2 * (v * v + v) * (2 * v + 1));  // dL/dx = 2y (2x + 1)
  check_close(x.grad(), want, 1e-6, 1e-5);
  // The loss value itself.
  double lv = 0;
  for (double v : as_double(x)) lv += (v * v + v) * (v * v + v);
  check_close(l, {lv}, 1e-6, 1e-5);
}

TEST_CASE("branches that rejoin, one much longer than the other") {
  // u feeds a long chain and a direct path; u's gradient is complete only
  // after both have run, so a wrong topological order gives a wrong answer.
  Tensor x = leaf({5}, 2);
  Tensor u = scale(x, 2.f);
  Tensor longer = tanh(tanh(tanh(u)));
  Tensor l = sum(add(mul(longer, u), exp(u)));
  l.backward();
  std::vector<double> want;
  for (double xv : as_double(x)) {
    double uv = 2 * xv, t1 = std::tanh(uv), t2 = std::tanh(t1), t3 = std::tanh(t2);
    double dlong_du = (1 - t3 * t3) * (1 - t2 * t2) * (1 - t1 * t1);
    double dl_du = dlong_du * uv + t3 + std::exp(uv);
    want.push_back(2 * dl_du);
  }
  check_close(x.grad(), want, 1e-6, 1e-5);
}

TEST_CASE("two leaves through branches: exp(a) * b + exp(a)") {
  Tensor a = leaf({4}, 3), b = leaf({4}, 4);
  Tensor ea = exp(a);
  sum(add(mul(ea, b), ea)).backward();
  std::vector<double> wa, wb;
  std::vector<double> av = as_double(a), bv = as_double(b);
  for (size_t i = 0; i < av.size(); ++i) {
    wa.push_back(std::exp(av[i]) * (bv[i] + 1));
    wb.push_back(std::exp(av[i]));
  }
  check_close(a.grad(), wa, 1e-6, 1e-5);
  check_close(b.grad(), wb, 1e-6, 1e-5);
}

TEST_CASE("gradients accumulate across two backward calls") {
  Tensor x = leaf({3}, 5);
  sum(mul(x, x)).backward();
  sum(scale(x, 3.f)).backward();
  std::vector<double> want;
  for (double v : as_double(x)) want.push_back(2 * v + 3);
  check_close(x.grad(), want, 1e-6, 1e-6);
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
  sum(scale(x, 3.f)).backward();
  CHECK(x.grad().to_vector() == std::vector<float>(3, 3.f));
}

TEST_CASE("NoGradGuard records nothing and restores grad mode") {
  Tensor x = leaf({3}, 6);
  CHECK(grad_mode_enabled());
  {
    NoGradGuard g;
    CHECK_FALSE(grad_mode_enabled());
    Tensor y = exp(mul(x, x));
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
    {
      NoGradGuard inner;
      CHECK_FALSE(grad_mode_enabled());
    }
    CHECK_FALSE(grad_mode_enabled());  // the inner guard restores "off", not "on"
    CHECK_THROWS_WITH_AS(sum(y).backward(), doctest::Contains("does not require grad"), Error);
  }
  CHECK(grad_mode_enabled());
  Tensor z = mul(x, x);
  CHECK(z.requires_grad());
  REQUIRE(z.grad_fn() != nullptr);
  CHECK(z.grad_fn()->name == "mul");
}

TEST_CASE("a second backward needs retain_graph") {
  Tensor x = leaf({4}, 7);
  Tensor l = sum(mul(exp(x), x));
  l.backward();
  std::vector<float> first = x.grad().to_vector();
  CHECK_THROWS_WITH_AS(l.backward(), doctest::Contains("backward through the graph a second time"), Error);
  CHECK(x.grad().to_vector() == first);  // the failed pass added nothing

  Tensor y = leaf({4}, 8);
  Tensor m = sum(mul(exp(y), y));
  m.backward(Tensor(), /*retain_graph=*/true);
  std::vector<float> once = y.grad().to_vector();
  m.backward(Tensor(), true);
  std::vector<double> twice;
  for (float v : once) twice.push_back(2.0 * v);
  check_close(y.grad(), twice, 0, 1e-6);
  m.backward();  // the last pass may free the graph ...
  CHECK_THROWS_WITH_AS(m.backward(), doctest::Contains("backward through the graph a second time"), Error);
  // ... and gradient of y*e^y is (1 + y) e^y, three times.
  std::vector<double> want;
  for (double v : as_double(y)) want.push_back(3 * (1 + v) * std::exp(v));
  check_close(y.grad(), want, 1e-6, 1e-5);
}

TEST_CASE("backward of a non-scalar needs an explicit gradient") {
  Tensor x = leaf({2, 3}, 9);
  Tensor y = mul(x, x);
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("a gradient can be created implicitly only for a one-element"),
                       Error);
  CHECK_THROWS_WITH_AS(y.backward(Tensor::ones({3, 2})), doctest::Contains("grad has shape (3, 2)"), Error);
  Tensor w = rand_tensor({2, 3}, 10);
  y.backward(w);
  std::vector<double> want;
  std::vector<double> xv = as_double(x), wv = as_double(w);
  for (size_t i = 0; i < xv.size(); ++i) want.push_back(2 * xv[i] * wv[i]);
  check_close(x.grad(), want, 1e-6, 1e-6);
  // A one-element tensor of any rank takes an implicit gradient of 1.
  Tensor z = leaf({1, 1}, 11);
  mul(z, z).backward();
  check_close(z.grad(), {2.0 * z.item()}, 1e-7, 1e-6);
}

TEST_CASE("a leaf that does not require grad gets no gradient") {
  Tensor a = leaf({3}, 12);
  Tensor b = rand_tensor({3}, 13);
  CHECK_FALSE(b.requires_grad());
  sum(mul(a, exp(b))).backward();
  CHECK_FALSE(b.grad().defined());
  std::vector<double> want;
  for (double v : as_double(b)) want.push_back(std::exp(v));
  check_close(a.grad(), want, 1e-6, 1e-6);
  // Nothing requires grad: no node, and backward says so.
  Tensor c = mul(b, b);
  CHECK_FALSE(c.requires_grad());
  CHECK(c.grad_fn() == nullptr);
  CHECK_THROWS_WITH_AS(sum(c).backward(), doctest::Contains("does not require grad and has no grad_fn"), Error);
  // requires_grad is a leaf property only.
  Tensor d = mul(a, a);
  CHECK_THROWS_WITH_AS(d.set_requires_grad(false), doctest::Contains("only leaf tensors"), Error);
}

TEST_CASE("detach cuts the graph") {
  Tensor x = leaf({3}, 14);
  sum(mul(x.detach(), x)).backward();  // only the second operand carries a gradient
  check_close(x.grad(), as_double(x), 0, 0);
}

TEST_CASE("a leaf's gradient does not alias the gradient passed in") {
  Tensor x = leaf({3}, 15);
  Tensor g = Tensor::from_vector({1, 2, 3}, {3});
  add(x, x).backward(g);  // add hands the same tensor to both of its inputs
  CHECK(x.grad().to_vector() == std::vector<float>{2, 4, 6});
  CHECK(g.to_vector() == std::vector<float>{1, 2, 3});
  Tensor y = leaf({3}, 16);
  y.backward(g);  // backward from a leaf
  g.fill_(100.f);
  CHECK(y.grad().to_vector() == std::vector<float>{1, 2, 3});
}

TEST_CASE("the gradient of a non-contiguous leaf follows its logical layout") {
  Tensor base = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor tr = make_view(base.impl()->storage, {3, 2}, {1, 3}, 0);  // the transpose
  tr.set_requires_grad(true);
  Tensor w = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {3, 2});
  sum(mul(mul(tr, tr), w)).backward();  // d/dtr = 2 tr w
  // tr logically is {{0, 3}, {1, 4}, {2, 5}}.
  CHECK(tr.grad().shape() == Shape{3, 2});
  CHECK(tr.grad().to_vector() == std::vector<float>{0, 12, 6, 32, 20, 60});
}

TEST_CASE("a node with two outputs gets both gradients, and a missing one reads as zero") {
  // y0 = 2x, y1 = sum(x^2) from one fused node; the backward sees (g0, g1).
  Tensor x = Tensor::from_vector({1, -2, 3}, {3}).set_requires_grad(true);
  auto two_outputs = [](const Tensor& in) {
    Tensor y0, y1;
    {
      NoGradGuard ng;
      y0 = scale(in, 2.f);
      y1 = sum(mul(in, in));
    }
    Tensor saved = in.detach();
    autograd::record_multi("two_outputs", {&y0, &y1}, {in},
                           [saved](const std::vector<Tensor>& g, const std::vector<bool>&) {
                             Tensor gx = Tensor::zeros(saved.shape());
                             if (g[0].defined()) gx = add(gx, scale(g[0], 2.f));
                             if (g[1].defined()) gx = add(gx, mul(scale(saved, 2.f), g[1]));
                             return std::vector<Tensor>{gx};
                           });
    return std::make_pair(y0, y1);
  };
  auto [a0, a1] = two_outputs(x);
  CHECK(a0.grad_fn() == a1.grad_fn());
  add(sum(a0), scale(a1, 10.f)).backward();  // d/dx = 2 + 20 x
  CHECK(x.grad().to_vector() == std::vector<float>{22, -38, 62});
  x.zero_grad();
  auto [b0, b1] = two_outputs(x);
  b1.backward();  // output 0 unused: its gradient arrives undefined
  CHECK(x.grad().to_vector() == std::vector<float>{2, -4, 6});
  x.zero_grad();
  auto [c0, c1] = two_outputs(x);
  sum(c0).backward();
  CHECK(x.grad().to_vector() == std::vector<float>{2, 2, 2});
}
