// Elementwise and reduction ops against naive loops in double: binary ops
// with NCHW broadcasting, every unary op, sum/mean over everything and over
// axes, sum_to; finite-difference gradients of each; the CPU kernels' per-op
// loops on large inputs and special values; and the errors for bad shapes
// and axes (they must name the op and the shapes).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "gradcheck.hpp"
#include "kernels/cpu/elementwise.hpp"
#include "runtime/error.hpp"
#include "runtime/ops.hpp"

using namespace recon;
using test::check_close;
using test::gradcheck;
using test::rand_tensor;

namespace {

// Right-aligned numpy broadcast shape (no checks: the test only passes valid pairs).
Shape ref_broadcast_shape(const Shape& a, const Shape& b) {
  size_t r = std::max(a.size(), b.size());
  Shape out(r, 1);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i + a.size() >= r ? a[i + a.size() - r] : 1;
    int64_t db = i + b.size() >= r ? b[i + b.size() - r] : 1;
    out[i] = std::max(da, db);
  }
  return out;
}

// Element of `t` (shape `s`, contiguous values `v`) that output multi-index `oi` (rank r) reads.
double bcast_at(const std::vector<float>& v, const Shape& s, const std::vector<int64_t>& oi) {
  size_t lead = oi.size() - s.size();
  int64_t off = 0;
  for (size_t d = 0; d < s.size(); ++d) off = off * s[d] + (s[d] == 1 ? 0 : oi[lead + d]);
  return v[(size_t)off];
}

std::vector<double> ref_binary(const std::function<double(double, double)>& f, const Tensor& a, const Tensor& b) {
  Shape out = ref_broadcast_shape(a.shape(), b.shape());
  std::vector<float> va = a.to_vector(), vb = b.to_vector();
  std::vector<double> r((size_t)shape_numel(out));
  std::vector<int64_t> oi(out.size());
  for (int64_t lin = 0; lin < (int64_t)r.size(); ++lin) {
    int64_t rem = lin;
    for (size_t d = out.size(); d-- > 0;) {
      oi[d] = rem % out[d];
      rem /= out[d];
    }
    r[(size_t)lin] = f(bcast_at(va, a.shape(), oi), bcast_at(vb, b.shape(), oi));
  }
  return r;
}

// Naive sum over `axes` (already non-negative) of a contiguous tensor, in double.
std::vector<double> ref_sum_axes(const Tensor& x, const std::vector<int>& axes, Shape& kept) {
  const Shape& s = x.shape();
  kept = s;
  for (int a : axes) kept[a] = 1;
  std::vector<double> out((size_t)shape_numel(kept), 0.0);
  std::vector<float> v = x.to_vector();
  std::vector<int64_t> idx(s.size());
  for (int64_t lin = 0; lin < x.numel(); ++lin) {
    int64_t rem = lin;
    for (size_t d = s.size(); d-- > 0;) {
      idx[d] = rem % s[d];
      rem /= s[d];
    }
    int64_t o = 0;
    for (size_t d = 0; d < s.size(); ++d) o = o * kept[d] + (kept[d] == 1 ? 0 : idx[d]);
    out[(size_t)o] += v[(size_t)lin];
  }
  return out;
}

Tensor requiring_grad(Tensor t) {
  t.set_requires_grad(true);
  return t;
}

struct BinaryCase {
  const char* name;
  std::function<Tensor(const Tensor&, const Tensor&)> op;
  std::function<double(double, double)> ref;
};

std::vector<BinaryCase> binary_cases() {
  return {
      {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }, [](double a, double b) { return a + b; }},
      {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }, [](double a, double b) { return a - b; }},
      {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }, [](double a, double b) { return a * b; }},
      {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); }, [](double a, double b) { return a / b; }},
  };
}

// Shape pairs over N, C, H, W: per-channel, per-channel-and-column, last-axis,
// scalars, both operands broadcast, and the swapped order.
const std::vector<std::pair<Shape, Shape>> kBroadcastPairs = {
    {{2, 3, 4, 5}, {2, 3, 4, 5}}, {{2, 3, 4, 5}, {3, 1, 1}}, {{2, 3, 4, 5}, {1, 3, 1, 5}},
    {{2, 3, 4, 5}, {5}},          {{2, 3, 4, 5}, {}},        {{2, 3, 4, 5}, {1}},
    {{3, 1, 1}, {2, 3, 4, 5}},    {{}, {2, 3, 4, 5}},        {{2, 1, 4, 1}, {1, 3, 1, 5}},
    {{4, 1}, {3}},                {{}, {}},
};

}  // namespace

TEST_CASE("binary ops broadcast over N, C, H, W like numpy") {
  for (const auto& c : binary_cases()) {
    for (size_t k = 0; k < kBroadcastPairs.size(); ++k) {
      const auto& [sa, sb] = kBroadcastPairs[k];
      INFO(c.name << " " << shape_str(sa) << " with " << shape_str(sb));
      Tensor a = rand_tensor(sa, 10 + k, -2.f, 2.f);
      // Divisors kept away from 0 so that the relative comparison is meaningful.
      Tensor b = rand_tensor(sb, 100 + k, 0.5f, 1.5f);
      Tensor out = c.op(a, b);
      CHECK(out.shape() == ref_broadcast_shape(sa, sb));
      check_close(out, ref_binary(c.ref, a, b), 1e-6, 1e-6);
    }
  }
}

TEST_CASE("binary ops read non-contiguous operands by their logical layout") {
  Tensor base = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor tr = make_view(base.impl()->storage, {3, 2}, {1, 3}, 0);  // the transpose
  Tensor row = Tensor::from_vector({10, 20}, {2});
  Tensor out = add(tr, row);
  CHECK(out.to_vector() == std::vector<float>{10, 23, 11, 24, 12, 25});
}

TEST_CASE("binary ops of equal shapes beyond 4-D") {
  // Equal shapes need no broadcasting, so the 4-D limit of broadcasting does not apply.
  Tensor a = rand_tensor({2, 1, 2, 3, 2}, 1), b = rand_tensor({2, 1, 2, 3, 2}, 2, 0.5f, 1.5f);
  check_close(mul(a, b), ref_binary([](double x, double y) { return x * y; }, a, b), 1e-6, 1e-6);
  check_close(div(a, b), ref_binary([](double x, double y) { return x / y; }, a, b), 1e-6, 1e-6);
}

TEST_CASE("binary ops: gradients of broadcast operands") {
  const std::vector<std::pair<Shape, Shape>> pairs = {
      {{2, 3, 4, 5}, {3, 1, 1}}, {{2, 3, 4, 5}, {1, 3, 1, 5}}, {{2, 3, 4, 5}, {}},
      {{2, 1, 4, 1}, {1, 3, 1, 5}}, {{5}, {2, 3, 4, 5}},
  };
  for (const auto& c : binary_cases()) {
    for (size_t k = 0; k < pairs.size(); ++k) {
      const auto& [sa, sb] = pairs[k];
      INFO(c.name << " " << shape_str(sa) << " with " << shape_str(sb));
      Tensor a = requiring_grad(rand_tensor(sa, 20 + k, -1.f, 1.f));
      Tensor b = requiring_grad(rand_tensor(sb, 200 + k, 0.5f, 1.5f));
      test::GradcheckOptions opt;
      opt.eps = 1e-3;
      gradcheck([&](const std::vector<Tensor>& in) { return c.op(in[0], in[1]); }, {a, b}, opt);
    }
  }
}

TEST_CASE("binary ops: only the inputs that need a gradient get one") {
  Tensor a = requiring_grad(rand_tensor({2, 3}, 1));
  Tensor b = rand_tensor({3}, 2);
  sum(mul(a, b)).backward();
  REQUIRE(a.grad().defined());
  CHECK_FALSE(b.grad().defined());
  std::vector<double> want;
  for (int i = 0; i < 2; ++i)
    for (float v : b.to_vector()) want.push_back(v);
  check_close(a.grad(), want, 0, 0);  // exact: each element is 1 * b
}

namespace {

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> ref;
  float lo, hi;  // input domain
  float kink_a = NAN, kink_b = NAN;  // where the derivative jumps (skipped by gradcheck)
};

std::vector<UnaryCase> unary_cases() {
  return {
      {"scale", [](const Tensor& x) { return scale(x, -2.5f); }, [](double x) { return -2.5 * x; }, -2, 2},
      {"add_scalar", [](const Tensor& x) { return add_scalar(x, 0.75f); }, [](double x) { return x + 0.75; }, -2,
       2},
      {"neg", [](const Tensor& x) { return neg(x); }, [](double x) { return -x; }, -2, 2},
      {"exp", [](const Tensor& x) { return exp(x); }, [](double x) { return std::exp(x); }, -3, 3},
      {"log", [](const Tensor& x) { return log(x); }, [](double x) { return std::log(x); }, 0.2f, 4},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double x) { return std::sqrt(x); }, 0.2f, 4},
      {"pow", [](const Tensor& x) { return pow(x, 2.5f); }, [](double x) { return std::pow(x, 2.5); }, 0.2f, 3},
      {"pow_negative", [](const Tensor& x) { return pow(x, -1.5f); }, [](double x) { return std::pow(x, -1.5); },
       0.5f, 3},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5f, 0.25f); },
       [](double x) { return std::min(std::max(x, -0.5), 0.25); }, -1, 1, -0.5f, 0.25f},
      {"relu", [](const Tensor& x) { return relu(x); }, [](double x) { return x > 0 ? x : 0.0; }, -1, 1, 0.f},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.2f); },
       [](double x) { return x > 0 ? x : 0.2 * x; }, -1, 1, 0.f},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, [](double x) { return 1.0 / (1.0 + std::exp(-x)); },
       -4, 4},
      {"tanh", [](const Tensor& x) { return tanh(x); }, [](double x) { return std::tanh(x); }, -3, 3},
  };
}

}  // namespace

TEST_CASE("unary ops against double references") {
  for (const auto& c : unary_cases()) {
    INFO(c.name);
    Tensor x = rand_tensor({2, 3, 4, 5}, 42, c.lo, c.hi);
    Tensor y = c.op(x);
    CHECK(y.shape() == x.shape());
    std::vector<double> want;
    for (float v : x.to_vector()) want.push_back(c.ref(v));
    check_close(y, want, 1e-6, 1e-5);
  }
}

TEST_CASE("unary ops read a non-contiguous input by its logical layout") {
  Tensor base = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor tr = make_view(base.impl()->storage, {3, 2}, {1, 3}, 0);
  CHECK(scale(tr, 2.f).to_vector() == std::vector<float>{0, 6, 2, 8, 4, 10});
}

TEST_CASE("unary ops: gradients (kinks skipped)") {
  for (const auto& c : unary_cases()) {
    INFO(c.name);
    Tensor x = requiring_grad(rand_tensor({2, 3, 4, 5}, 43, c.lo, c.hi));
    test::GradcheckOptions opt;
    opt.eps = 1e-3;
    const float ka = c.kink_a, kb = c.kink_b;
    opt.skip = [ka, kb, eps = opt.eps](const std::vector<Tensor>& in, size_t, int64_t i) {
      const float v = in[0].data()[i];
      return (!std::isnan(ka) && std::fabs(v - ka) < 2 * eps) || (!std::isnan(kb) && std::fabs(v - kb) < 2 * eps);
    };
    gradcheck([&](const std::vector<Tensor>& in) { return c.op(in[0]); }, {x}, opt);
  }
}

TEST_CASE("unary ops: derivatives at and beyond the kinks") {
  Tensor x = requiring_grad(Tensor::from_vector({-2.f, -0.5f, 0.f, 0.25f, 0.5f, 3.f}, {6}));
  sum(relu(x)).backward();
  CHECK(x.grad().to_vector() == std::vector<float>{0, 0, 0, 1, 1, 1});
  x.zero_grad();
  sum(leaky_relu(x, 0.1f)).backward();
  CHECK(x.grad().to_vector() == std::vector<float>{0.1f, 0.1f, 0.1f, 1, 1, 1});
  x.zero_grad();
  sum(clamp(x, -0.5f, 0.5f)).backward();  // the bounds themselves pass the gradient
  CHECK(x.grad().to_vector() == std::vector<float>{0, 1, 1, 1, 1, 0});
  CHECK(clamp(x, -0.5f, 0.5f).to_vector() == std::vector<float>{-0.5f, -0.5f, 0, 0.25f, 0.5f, 0.5f});
}

TEST_CASE("sum and mean over everything") {
  Tensor x = rand_tensor({2, 3, 4, 5}, 7);
  double s = 0;
  for (float v : x.to_vector()) s += v;
  Tensor ts = sum(x), tm = mean(x);
  CHECK(ts.dim() == 0);
  CHECK(tm.dim() == 0);
  check_close(ts, {s}, 1e-6, 1e-6);
  check_close(tm, {s / 120}, 1e-7, 1e-6);
  // Exactness on integers and on a 0-d input.
  CHECK(sum(Tensor::from_vector({1, 2, 3, 4}, {2, 2})).item() == 10.f);
  CHECK(mean(Tensor::from_vector({1, 2, 3, 6}, {4})).item() == 3.f);
  CHECK(sum(Tensor::scalar(-4.5f)).item() == -4.5f);
  CHECK_THROWS_WITH_AS(mean(Tensor::zeros({0, 3})), doctest::Contains("mean: the input is empty"), Error);
}

TEST_CASE("sum and mean over axes, keepdim and negative axes") {
  Tensor x = rand_tensor({2, 3, 4, 5}, 8);
  const std::vector<std::vector<int>> axis_sets = {{0}, {1}, {3}, {-1}, {-3}, {0, 2}, {2, -4}, {1, 2, 3},
                                                   {-1, -2}, {0, 1, 2, 3}};
  for (const auto& axes : axis_sets) {
    std::vector<int> norm;
    for (int a : axes) norm.push_back(a < 0 ? a + 4 : a);
    Shape kept;
    std::vector<double> want = ref_sum_axes(x, norm, kept);
    int64_t count = x.numel() / shape_numel(kept);
    std::vector<double> want_mean;
    for (double v : want) want_mean.push_back(v / (double)count);
    Shape squeezed;
    for (int d = 0; d < 4; ++d)
      if (std::find(norm.begin(), norm.end(), d) == norm.end()) squeezed.push_back(x.shape()[d]);
    for (bool keepdim : {true, false}) {
      std::string axes_str;
      for (int a : axes) axes_str += std::to_string(a) + " ";
      INFO("axes " << axes_str << "keepdim " << keepdim);
      Tensor s = sum(x, axes, keepdim), m = mean(x, axes, keepdim);
      CHECK(s.shape() == (keepdim ? kept : squeezed));
      CHECK(m.shape() == (keepdim ? kept : squeezed));
      check_close(s, want, 1e-6, 1e-6);
      check_close(m, want_mean, 1e-6, 1e-6);
    }
  }
}

TEST_CASE("sum and mean over axes: gradients") {
  for (bool keepdim : {true, false}) {
    for (const std::vector<int>& axes : std::vector<std::vector<int>>{{1}, {-1}, {0, 2}, {0, 1, 2, 3}}) {
      Tensor x = requiring_grad(rand_tensor({2, 3, 4, 5}, 9));
      gradcheck([&](const std::vector<Tensor>& in) { return sum(in[0], axes, keepdim); }, {x});
      gradcheck([&](const std::vector<Tensor>& in) { return mean(in[0], axes, keepdim); }, {x});
    }
  }
  Tensor x = requiring_grad(rand_tensor({3, 4}, 10));
  gradcheck([](const std::vector<Tensor>& in) { return sum(in[0]); }, {x});
  gradcheck([](const std::vector<Tensor>& in) { return mean(in[0]); }, {x});
  // The exact values: d mean / dx = 1 / numel.
  Tensor y = requiring_grad(rand_tensor({2, 4}, 11));
  mean(y).backward();
  CHECK(y.grad().to_vector() == std::vector<float>(8, 0.125f));
}

TEST_CASE("sum over everything of a tensor beyond 4-D, and its gradient") {
  Tensor x = requiring_grad(rand_tensor({2, 1, 3, 2, 2}, 12));
  double s = 0;
  for (float v : x.to_vector()) s += v;
  Tensor t = sum(x);
  check_close(t, {s}, 1e-6, 1e-6);
  t.backward();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().shape() == x.shape());
  CHECK(x.grad().to_vector() == std::vector<float>(24, 1.f));
}

TEST_CASE("sum_to undoes broadcasting") {
  Tensor x = rand_tensor({2, 3, 4, 5}, 13);
  const std::vector<Shape> targets = {{3, 1, 1}, {1, 3, 1, 5}, {5}, {}, {2, 1, 4, 1}, {1}, {2, 3, 4, 5}};
  for (const Shape& t : targets) {
    INFO("to " << shape_str(t));
    Tensor r = sum_to(x, t);
    CHECK(r.shape() == t);
    // Reference: sum the (padded) broadcast axes of x.
    Shape padded(4 - t.size(), 1);
    padded.insert(padded.end(), t.begin(), t.end());
    std::vector<int> axes;
    for (int d = 0; d < 4; ++d)
      if (padded[d] == 1 && x.shape()[d] != 1) axes.push_back(d);
    Shape kept;
    check_close(r, ref_sum_axes(x, axes, kept), 1e-6, 1e-6);
  }
  Tensor xg = requiring_grad(rand_tensor({2, 3, 4, 5}, 14));
  gradcheck([](const std::vector<Tensor>& in) { return sum_to(in[0], {3, 1, 1}); }, {xg});
  gradcheck([](const std::vector<Tensor>& in) { return sum_to(in[0], {1, 3, 1, 5}); }, {xg});
  CHECK_THROWS_WITH_AS(sum_to(x, {3, 3, 1, 1}), doctest::Contains("sum_to: cannot reduce (2, 3, 4, 5) to (3, 3, 1, 1)"),
                       Error);
  CHECK_THROWS_WITH_AS(sum_to(rand_tensor({3}, 1), {2, 3}), doctest::Contains("sum_to: cannot reduce (3) to (2, 3)"),
                       Error);
}

TEST_CASE("bad input: shapes that cannot broadcast, > 4-D broadcasts, bad axes") {
  Tensor a = rand_tensor({2, 3, 4, 5}, 1);
  for (const auto& c : binary_cases()) {
    INFO(c.name);
    std::string want = std::string(c.name) + ": shapes (2, 3, 4, 5) and (4) cannot be broadcast together";
    CHECK_THROWS_WITH_AS(c.op(a, rand_tensor({4}, 2)), doctest::Contains(want.c_str()), Error);
    std::string want2 = std::string(c.name) + ": shapes (2, 3) and (3, 2) cannot be broadcast together";
    CHECK_THROWS_WITH_AS(c.op(rand_tensor({2, 3}, 3), rand_tensor({3, 2}, 4)), doctest::Contains(want2.c_str()),
                         Error);
    std::string want5 = std::string(c.name) + ": broadcasting supports up to 4-D, got (1, 2, 3, 4, 5) and (5)";
    CHECK_THROWS_WITH_AS(c.op(rand_tensor({1, 2, 3, 4, 5}, 5), rand_tensor({5}, 6)),
                         doctest::Contains(want5.c_str()), Error);
    std::string want_undef = std::string(c.name) + ": the second operand is an undefined tensor";
    CHECK_THROWS_WITH_AS(c.op(a, Tensor()), doctest::Contains(want_undef.c_str()), Error);
  }
  CHECK_THROWS_WITH_AS(sum(a, {4}), doctest::Contains("sum: axis 4 is out of range for shape (2, 3, 4, 5)"), Error);
  CHECK_THROWS_WITH_AS(sum(a, {-5}), doctest::Contains("sum: axis -5 is out of range for shape (2, 3, 4, 5)"),
                       Error);
  CHECK_THROWS_WITH_AS(mean(a, {7}, true), doctest::Contains("mean: axis 7 is out of range for shape (2, 3, 4, 5)"),
                       Error);
  CHECK_THROWS_WITH_AS(sum(a, {1, 1}), doctest::Contains("sum: axis 1 is given twice for shape (2, 3, 4, 5)"), Error);
  CHECK_THROWS_WITH_AS(mean(a, {3, -1}), doctest::Contains("mean: axis -1 is given twice for shape (2, 3, 4, 5)"),
                       Error);
  CHECK_THROWS_WITH_AS(clamp(a, 1.f, 0.f), doctest::Contains("clamp: lo = 1 is greater than hi = 0"), Error);
  Tensor b = rand_tensor({2, 3}, 1);
  CHECK_THROWS_WITH_AS(add_(b, rand_tensor({3}, 2)), doctest::Contains("add_: shapes (2, 3) and (3) must be equal"),
                       Error);
}

TEST_CASE("CPU unary kernels, vectorised per op: large inputs, special values, and null x or y in the backward") {
  // Over the 32768 elements from which the loops run in parallel, with an odd count (vector tails).
  const int64_t n = 40001;
  std::vector<float> x = rand_tensor({n}, 7, -2.f, 2.f).to_vector();
  x[0] = 0.f, x[1] = -0.f, x[2] = INFINITY, x[3] = -INFINITY, x[4] = NAN;
  std::vector<float> y((size_t)n), gx((size_t)n), g((size_t)n, 0.5f);
  cpu::unary(UnaryOp::LeakyRelu, x.data(), y.data(), n, 0.2f, 0.f);
  cpu::unary_backward(UnaryOp::LeakyRelu, x.data(), nullptr, g.data(), gx.data(), n, 0.2f, 0.f);
  int wrong = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[(size_t)i];
    const float want = v > 0.f ? v : 0.2f * v, want_g = v > 0.f ? 0.5f : 0.2f * 0.5f;
    const bool same = std::isnan(want) ? std::isnan(y[(size_t)i]) : y[(size_t)i] == want;
    if (!same || std::signbit(y[(size_t)i]) != std::signbit(want) || gx[(size_t)i] != want_g) ++wrong;
  }
  CHECK(wrong == 0);
  // exp's derivative reads only y: x may be null.
  cpu::unary(UnaryOp::Exp, x.data() + 5, y.data(), n - 5, 0.f, 0.f);
  cpu::unary_backward(UnaryOp::Exp, nullptr, y.data(), g.data(), gx.data(), n - 5, 0.f, 0.f);
  wrong = 0;
  for (int64_t i = 0; i < n - 5; ++i)
    if (gx[(size_t)i] != 0.5f * y[(size_t)i] || y[(size_t)i] != std::exp(x[(size_t)i + 5])) ++wrong;
  CHECK(wrong == 0);
  // Binary ops per op: a - b against the definition.
  std::vector<float> b = rand_tensor({n}, 8).to_vector(), out((size_t)n);
  cpu::binary_same(BinaryOp::Sub, x.data() + 5, b.data(), out.data(), n - 5);
  wrong = 0;
  for (int64_t i = 0; i < n - 5; ++i)
    if (out[(size_t)i] != x[(size_t)i + 5] - b[(size_t)i]) ++wrong;
  CHECK(wrong == 0);
}
