// Determinism (DESIGN.md, Tests): the same seed and the same steps give
// bitwise-equal losses and gradients on the CPU, whatever the number of
// OpenMP threads, for a small chain of random init, elementwise and
// reduction ops, dropout, the three losses and backward.
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "runtime/ops.hpp"

using namespace recon;

namespace {

struct RunResult {
  std::vector<float> loss;
  std::vector<std::vector<float>> grads;
};

// One training-like step from `seed`. Sizes are chosen so that the large
// tensors pass the kernels' parallel thresholds (2^15 to 2^16 elements).
RunResult run_chain(uint64_t seed) {
  Generator gen(seed);
  Tensor x = Tensor::normal({16, 4, 32, 32}, gen);                         // (N, C, H, W) input
  Tensor w = Tensor::uniform({4, 1, 1}, gen, 0.5f, 1.5f).set_requires_grad(true);  // per-channel scale
  Tensor b = Tensor::normal({1, 4, 1, 32}, gen, 0.f, 0.1f).set_requires_grad(true);
  Tensor mu_w = Tensor::normal({4}, gen).set_requires_grad(true);
  Tensor lv_w = Tensor::normal({4}, gen, 0.f, 0.5f).set_requires_grad(true);

  Tensor h = tanh(add(mul(x, w), b));                          // (16, 4, 32, 32)
  Tensor d = dropout(h, 0.2f, true, gen);
  Tensor recon_loss = mse_loss(sigmoid(d), sigmoid(x));
  Tensor pooled = mean(d, {2, 3});                             // (16, 4) logits
  std::vector<float> t;
  for (int i = 0; i < 16; ++i) t.push_back((float)gen.randint(4));
  Tensor ce = cross_entropy(scale(pooled, 8.f), Tensor::from_vector(t, {16}));
  Tensor mu = mul(pooled, mu_w), lv = mul(pooled, lv_w);
  Tensor kl = kl_normal(mu, lv, Reduction::Mean);
  Tensor loss = add(add(recon_loss, ce), scale(kl, 0.01f));
  loss.backward();
  return {loss.to_vector(), {w.grad().to_vector(), b.grad().to_vector(), mu_w.grad().to_vector(),
                             lv_w.grad().to_vector()}};
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("same seed, same chain: bitwise-equal loss and gradients for 1 and 2 threads") {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  RunResult one = run_chain(2024);
  omp_set_num_threads(2);
  RunResult two = run_chain(2024);
  RunResult again = run_chain(2024);
  RunResult other = run_chain(2025);
  omp_set_num_threads(saved);

  REQUIRE(one.loss.size() == 1);
  CHECK(std::isfinite(one.loss[0]));
  CHECK(bitwise_equal(one.loss, two.loss));
  CHECK(bitwise_equal(two.loss, again.loss));
  REQUIRE(one.grads.size() == two.grads.size());
  for (size_t i = 0; i < one.grads.size(); ++i) {
    INFO("gradient " << i);
    CHECK_FALSE(one.grads[i].empty());
    CHECK(bitwise_equal(one.grads[i], two.grads[i]));
    CHECK(bitwise_equal(two.grads[i], again.grads[i]));
  }
  // A different seed is a different run: the comparison above can fail.
  CHECK_FALSE(bitwise_equal(one.loss, other.loss));
}
