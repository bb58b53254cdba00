// matmul and linear on the CPU: forward against naive loops accumulated in
// double, finite-difference gradients of every input, frozen weights running
// no weight-gradient kernel, and argument errors.
#include <doctest/doctest.h>

#include <array>
#include <string>
#include <vector>

#include "runtime/error.hpp"
#include "runtime/ops.hpp"
#include "runtime/profile.hpp"
#include "tests/gradcheck.hpp"

using namespace recon;
using recon::test::check_close;
using recon::test::gradcheck;
using recon::test::rand_tensor;

namespace {

// c (m, n) = a (m, k) b (k, n) in double.
std::vector<double> matmul_ref(const Tensor& at, const Tensor& bt) {
  const auto a = at.to_vector(), b = bt.to_vector();
  const int64_t m = at.size(0), k = at.size(1), n = bt.size(1);
  std::vector<double> c((size_t)(m * n), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p) s += (double)a[i * k + p] * b[p * n + j];
      c[i * n + j] = s;
    }
  return c;
}

// y (m, out) = x (m, in) w^T + b in double, with m the product of x's leading dimensions.
std::vector<double> linear_ref(const Tensor& xt, const Tensor& wt, const Tensor& bt) {
  const auto x = xt.to_vector(), w = wt.to_vector();
  const auto b = bt.defined() ? bt.to_vector() : std::vector<float>();
  const int64_t out = wt.size(0), in = wt.size(1), m = xt.numel() / in;
  std::vector<double> y((size_t)(m * out));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t o = 0; o < out; ++o) {
      double s = b.empty() ? 0.0 : (double)b[o];
      for (int64_t p = 0; p < in; ++p) s += (double)x[i * in + p] * w[o * in + p];
      y[i * out + o] = s;
    }
  return y;
}

}  // namespace

TEST_CASE("matmul matches a naive loop on awkward shapes") {
  const std::vector<std::array<int64_t, 3>> shapes = {{1, 1, 1}, {3, 5, 2}, {7, 1, 4}, {1, 9, 1}, {17, 33, 9},
                                                      {64, 300, 65}};
  int s = 0;
  for (auto [m, k, n] : shapes) {
    INFO("m " << m << " k " << k << " n " << n);
    Tensor a = rand_tensor({m, k}, 10 + s), b = rand_tensor({k, n}, 20 + s);
    Tensor c = matmul(a, b);
    CHECK(c.shape() == Shape{m, n});
    check_close(c, matmul_ref(a, b), 1e-5, 1e-4);
    ++s;
  }
}

TEST_CASE("matmul reads a non-contiguous (transposed) operand correctly") {
  Tensor base = rand_tensor({4, 3}, 7);  // its transpose (3, 4) as a strided view
  Tensor at = make_view(base.impl()->storage, {3, 4}, {1, 3}, 0);
  REQUIRE_FALSE(at.is_contiguous());
  Tensor b = rand_tensor({4, 2}, 8);
  check_close(matmul(at, b), matmul_ref(at.contiguous(), b), 1e-5, 1e-4);
}

TEST_CASE("linear matches a naive loop, with and without bias, on 2-D and 3-D inputs") {
  struct Case {
    Shape x;
    int64_t out;
    bool bias;
  };
  const std::vector<Case> cases = {{{5, 7}, 3, true},   {{1, 4}, 1, false},     {{2, 3, 4}, 5, true},
                                   {{1, 1}, 6, true},   {{64, 6272}, 64, true}, {{9, 13}, 11, false}};
  int k = 0;
  for (const Case& c : cases) {
    INFO("x " << shape_str(c.x) << " out " << c.out << (c.bias ? " with bias" : " without bias"));
    Tensor x = rand_tensor(c.x, 30 + k), w = rand_tensor({c.out, c.x.back()}, 40 + k);
    Tensor b = c.bias ? rand_tensor({c.out}, 50 + k) : Tensor();
    Tensor y = linear(x, w, b);
    Shape want_shape = c.x;
    want_shape.back() = c.out;
    CHECK(y.shape() == want_shape);
    check_close(y, linear_ref(x, w, b), 1e-4, 1e-4);
    ++k;
  }
}

TEST_CASE("matmul gradients of both operands match finite differences") {
  Tensor a = rand_tensor({3, 4}, 61), b = rand_tensor({4, 5}, 62);
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {a, b});
  Tensor v = rand_tensor({1, 6}, 63), u = rand_tensor({6, 1}, 64);
  v.set_requires_grad(true);
  u.set_requires_grad(true);
  gradcheck([](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }, {v, u});
}

TEST_CASE("linear gradients of input, weight and bias match finite differences") {
  Tensor x = rand_tensor({4, 5}, 71), w = rand_tensor({3, 5}, 72), b = rand_tensor({3}, 73);
  x.set_requires_grad(true);
  w.set_requires_grad(true);
  b.set_requires_grad(true);
  auto f = [](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); };
  gradcheck(f, {x, w, b});
  gradcheck(f, {x, w, Tensor()});
  Tensor x3 = rand_tensor({2, 3, 4}, 74), w3 = rand_tensor({2, 4}, 75), b3 = rand_tensor({2}, 76);
  x3.set_requires_grad(true);
  w3.set_requires_grad(true);
  b3.set_requires_grad(true);
  gradcheck(f, {x3, w3, b3});
}

TEST_CASE("a frozen linear layer runs no weight- or bias-gradient kernel; an input without grad no data kernel") {
  Tensor x = rand_tensor({4, 6}, 81), w = rand_tensor({3, 6}, 82), b = rand_tensor({3}, 83);
  x.set_requires_grad(true);
  reset_range_counts();
  sum(linear(x, w, b)).backward();
  CHECK(range_count("linear_backward_data") == 1);
  CHECK(range_count("linear_backward_weight") == 0);
  CHECK(range_count("linear_backward_bias") == 0);
  CHECK(x.grad().defined());
  CHECK_FALSE(w.grad().defined());
  CHECK_FALSE(b.grad().defined());

  x.set_requires_grad(false);
  x.zero_grad();
  w.set_requires_grad(true);
  b.set_requires_grad(true);
  reset_range_counts();
  sum(linear(x, w, b)).backward();
  CHECK(range_count("linear_backward_data") == 0);
  CHECK(range_count("linear_backward_weight") == 1);
  CHECK(range_count("linear_backward_bias") == 1);
  CHECK_FALSE(x.grad().defined());
  CHECK(w.grad().defined());
  CHECK(b.grad().defined());

  // matmul: an operand that needs no gradient gets no kernel.
  Tensor a = rand_tensor({2, 3}, 84), c = rand_tensor({3, 2}, 85);
  a.set_requires_grad(true);
  reset_range_counts();
  sum(matmul(a, c)).backward();
  CHECK(range_count("matmul_backward_a") == 1);
  CHECK(range_count("matmul_backward_b") == 0);
  CHECK(a.grad().defined());
  CHECK_FALSE(c.grad().defined());
}

TEST_CASE("matmul and linear reject bad arguments with the op, the shapes and what was expected") {
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 5})),
                       doctest::Contains("matmul: inner dimensions differ: (2, 3) x (4, 5) (expected (M, K) x (K, N))"),
                       Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({3}), Tensor::zeros({3, 5})),
                       doctest::Contains("matmul: the first operand must be 2-D (M, K), got (3)"), Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 3}), Tensor::zeros({3, 5, 1})),
                       doctest::Contains("matmul: the second operand must be 2-D (K, N), got (3, 5, 1)"), Error);
  CHECK_THROWS_WITH_AS(linear(Tensor::zeros({4, 5}), Tensor::zeros({3, 6}), Tensor()),
                       doctest::Contains("linear: input (4, 5) has 5 features but weight (3, 6) expects in = 6"),
                       Error);
  CHECK_THROWS_WITH_AS(linear(Tensor::zeros({4, 5}), Tensor::zeros({5}), Tensor()),
                       doctest::Contains("linear: the weight must be 2-D (out, in), got (5)"), Error);
  CHECK_THROWS_WITH_AS(linear(Tensor::zeros({4, 5}), Tensor::zeros({3, 5}), Tensor::zeros({4})),
                       doctest::Contains("linear: bias must be (out) = (3) for weight (3, 5), got (4)"), Error);
  CHECK_THROWS_WITH_AS(linear(Tensor::scalar(1.f), Tensor::zeros({3, 1}), Tensor()),
                       doctest::Contains("linear: the input must be (..., in), got a 0-d tensor"), Error);
}

TEST_CASE("matmul and linear reject tensors on different devices" * doctest::skip(!cuda_available())) {
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 3}), Tensor::zeros({3, 2}, Device::cuda())),
                       doctest::Contains("matmul: tensors on different devices (cpu and cuda:0)"), Error);
  CHECK_THROWS_WITH_AS(linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 3}, Device::cuda()), Tensor()),
                       doctest::Contains("linear: tensors on different devices (cpu and cuda:0)"), Error);
  CHECK_THROWS_WITH_AS(linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 3}), Tensor::zeros({4}, Device::cuda())),
                       doctest::Contains("linear: tensors on different devices (cpu and cuda:0)"), Error);
}
