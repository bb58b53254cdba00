// Losses and dropout: mse_loss, cross_entropy and kl_normal against values
// worked out by hand and naive double loops, their finite-difference
// gradients, cross-entropy's stability for huge logits and its target checks,
// and dropout's statistics, reproducibility and training/eval behaviour.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "gradcheck.hpp"
#include "runtime/error.hpp"
#include "runtime/ops.hpp"

using namespace recon;
using test::check_close;
using test::gradcheck;
using test::rand_tensor;

namespace {

Tensor requiring_grad(Tensor t) {
  t.set_requires_grad(true);
  return t;
}

// Class indices stored as floats, from a seeded generator.
Tensor random_targets(int64_t n, int64_t c, uint64_t seed) {
  Generator g(seed);
  std::vector<float> v;
  for (int64_t i = 0; i < n; ++i) v.push_back((float)g.randint(c));
  return Tensor::from_vector(v, {n});
}

// Naive per-row cross-entropy in double: log(sum exp(x)) - x_t, shifted by the row max.
std::vector<double> ref_cross_entropy_rows(const Tensor& logits, const Tensor& targets) {
  const int64_t n = logits.size(0), c = logits.size(1);
  std::vector<float> x = logits.to_vector(), t = targets.to_vector();
  std::vector<double> rows;
  for (int64_t i = 0; i < n; ++i) {
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < c; ++j) m = std::max(m, (double)x[i * c + j]);
    for (int64_t j = 0; j < c; ++j) s += std::exp((double)x[i * c + j] - m);
    rows.push_back(m + std::log(s) - x[i * c + (int64_t)t[i]]);
  }
  return rows;
}

}  // namespace

// ---- mse_loss ---------------------------------------------------------------------

TEST_CASE("mse_loss: hand values and a naive reference") {
  Tensor p = Tensor::from_vector({1, 2, 3, 4}, {2, 2}), t = Tensor::from_vector({0, 2, 5, 1}, {2, 2});
  CHECK(mse_loss(p, t, Reduction::Sum).item() == 14.f);  // 1 + 0 + 4 + 9
  CHECK(mse_loss(p, t).item() == 3.5f);                   // Mean is the default
  CHECK(mse_loss(p, t).dim() == 0);

  Tensor a = rand_tensor({2, 3, 4, 5}, 1), b = rand_tensor({2, 3, 4, 5}, 2);
  std::vector<float> av = a.to_vector(), bv = b.to_vector();
  double s = 0;
  for (size_t i = 0; i < av.size(); ++i) s += ((double)av[i] - bv[i]) * ((double)av[i] - bv[i]);
  check_close(mse_loss(a, b, Reduction::Sum), {s}, 1e-6, 1e-6);
  check_close(mse_loss(a, b, Reduction::Mean), {s / 120}, 1e-7, 1e-6);
}

TEST_CASE("mse_loss: gradients for both inputs") {
  for (Reduction r : {Reduction::Mean, Reduction::Sum}) {
    Tensor a = requiring_grad(rand_tensor({2, 3, 4}, 3)), b = requiring_grad(rand_tensor({2, 3, 4}, 4));
    gradcheck([r](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1], r); }, {a, b});
  }
  // Exact: d/dp = 2 (p - t) / n, d/dt = -that.
  Tensor p = requiring_grad(Tensor::from_vector({1, 2, 3, 4}, {4}));
  Tensor t = requiring_grad(Tensor::from_vector({0, 2, 5, 1}, {4}));
  mse_loss(p, t).backward();
  CHECK(p.grad().to_vector() == std::vector<float>{0.5f, 0.f, -1.f, 1.5f});
  CHECK(t.grad().to_vector() == std::vector<float>{-0.5f, -0.f, 1.f, -1.5f});
  // Only the input that requires grad gets one.
  Tensor q = requiring_grad(Tensor::from_vector({1, 2}, {2}));
  Tensor fixed = Tensor::from_vector({3, 3}, {2});
  mse_loss(q, fixed, Reduction::Sum).backward();
  CHECK(q.grad().to_vector() == std::vector<float>{-4.f, -2.f});
  CHECK_FALSE(fixed.grad().defined());
}

TEST_CASE("mse_loss: bad input") {
  CHECK_THROWS_WITH_AS(mse_loss(Tensor::zeros({2, 3}), Tensor::zeros({3, 2})),
                       doctest::Contains("mse_loss: shapes (2, 3) and (3, 2) must be equal"), Error);
  CHECK_THROWS_WITH_AS(mse_loss(Tensor::zeros({0, 3}), Tensor::zeros({0, 3})),
                       doctest::Contains("mse_loss: the mean over an empty tensor (0, 3)"), Error);
  CHECK(mse_loss(Tensor::zeros({0, 3}), Tensor::zeros({0, 3}), Reduction::Sum).item() == 0.f);
  CHECK_THROWS_WITH_AS(mse_loss(Tensor(), Tensor::zeros({3})), doctest::Contains("mse_loss: pred is an undefined"),
                       Error);
}

// ---- cross_entropy -------------------------------------------------------------------

TEST_CASE("cross_entropy: hand values and a naive reference") {
  // Two equal logits: -log(1/2).
  check_close(cross_entropy(Tensor::zeros({1, 2}), Tensor::from_vector({1}, {1})), {std::log(2.0)}, 1e-7, 1e-6);
  // logits (1, 2, 3), target 2: log(1 + e^-1 + e^-2).
  check_close(cross_entropy(Tensor::from_vector({1, 2, 3}, {1, 3}), Tensor::from_vector({2}, {1})),
              {std::log(1 + std::exp(-1.0) + std::exp(-2.0))}, 1e-7, 1e-6);

  Tensor logits = rand_tensor({6, 7}, 5, -3.f, 3.f);
  Tensor targets = random_targets(6, 7, 6);
  std::vector<double> rows = ref_cross_entropy_rows(logits, targets);
  double s = 0;
  for (double v : rows) s += v;
  check_close(cross_entropy(logits, targets, Reduction::Sum), {s}, 1e-6, 1e-6);
  check_close(cross_entropy(logits, targets, Reduction::Mean), {s / 6}, 1e-6, 1e-6);
  check_close(cross_entropy(logits, targets), {s / 6}, 1e-6, 1e-6);  // Mean is the default
}

TEST_CASE("cross_entropy: huge logits stay finite and exact") {
  // exp(1e4) overflows float (and double): only a max-shifted log-sum-exp survives.
  Tensor logits = Tensor::from_vector({1e4f, 0.f, -1e4f,  //
                                       -1e4f, 1e4f, 1e4f,  //
                                       -1e4f, -1e4f, -1e4f},
                                      {3, 3});
  Tensor targets = Tensor::from_vector({0, 0, 2}, {3});
  // Row 0: log(1 + e^-1e4 + e^-2e4) = 0; row 1: 2e4 + log 2; row 2: log 3.
  const double row1 = 2e4 + std::log(2.0), row2 = std::log(3.0);
  Tensor loss = cross_entropy(logits, targets, Reduction::Sum);
  CHECK(std::isfinite(loss.item()));
  CHECK(loss.item() == (float)(row1 + row2));
  Tensor per_row0 = cross_entropy(Tensor::from_vector({1e4f, 0.f, -1e4f}, {1, 3}), Tensor::from_vector({0}, {1}));
  CHECK(per_row0.item() == 0.f);
  Tensor per_row1 = cross_entropy(Tensor::from_vector({-1e4f, 1e4f, 1e4f}, {1, 3}), Tensor::from_vector({1}, {1}));
  check_close(per_row1, {std::log(2.0)}, 1e-7, 1e-6);

  Tensor x = requiring_grad(logits);
  cross_entropy(x, targets, Reduction::Mean).backward();
  std::vector<float> g = x.grad().to_vector();
  for (float v : g) CHECK(std::isfinite(v));
  // (softmax - onehot) / N: rows {0,0,0}, {-1, 1/2, 1/2}, {1/3, 1/3, -2/3}.
  check_close(x.grad(), {0, 0, 0, -1.0 / 3, 1.0 / 6, 1.0 / 6, 1.0 / 9, 1.0 / 9, -2.0 / 9}, 1e-7, 1e-6);
}

TEST_CASE("cross_entropy: gradients") {
  for (Reduction r : {Reduction::Mean, Reduction::Sum}) {
    Tensor logits = requiring_grad(rand_tensor({5, 4}, 7, -2.f, 2.f));
    Tensor targets = random_targets(5, 4, 8);
    gradcheck([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], targets, r); }, {logits});
  }
  // Exact: (softmax - onehot) g / N, checked in double.
  Tensor logits = requiring_grad(rand_tensor({3, 5}, 9, -2.f, 2.f));
  Tensor targets = Tensor::from_vector({4, 0, 2}, {3});
  scale(cross_entropy(logits, targets), 3.f).backward();  // g = 3 on the mean over N = 3 rows
  std::vector<float> x = logits.to_vector();
  std::vector<double> want;
  for (int i = 0; i < 3; ++i) {
    double z = 0;
    for (int j = 0; j < 5; ++j) z += std::exp((double)x[i * 5 + j]);
    for (int j = 0; j < 5; ++j)
      want.push_back((std::exp((double)x[i * 5 + j]) / z - (j == (int)targets.to_vector()[i] ? 1 : 0)) * 3.0 / 3.0);
  }
  check_close(logits.grad(), want, 1e-7, 1e-5);
}

TEST_CASE("cross_entropy: bad targets and shapes") {
  Tensor logits = Tensor::zeros({3, 3});
  CHECK_THROWS_WITH_AS(cross_entropy(logits, Tensor::from_vector({0, 3, 1}, {3})),
                       doctest::Contains("cross_entropy: targets[1] = 3 is not a class index in [0, 3)"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, Tensor::from_vector({0, 1, -1}, {3})),
                       doctest::Contains("targets[2] = -1 is not a class index in [0, 3)"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, Tensor::from_vector({1.5f, 1, 1}, {3})),
                       doctest::Contains("targets[0] = 1.5 is not a class index"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, Tensor::from_vector({0, NAN, 1}, {3})),
                       doctest::Contains("targets[1] = nan is not a class index"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(Tensor::zeros({3}), Tensor::zeros({3})),
                       doctest::Contains("cross_entropy: logits must be 2-D (N, C), got (3)"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, Tensor::zeros({3, 1})),
                       doctest::Contains("cross_entropy: targets must be 1-D"), Error);
  CHECK_THROWS_WITH_AS(
      cross_entropy(logits, Tensor::zeros({2})),
      doctest::Contains("cross_entropy: targets (2) must hold one class index per row of logits (3, 3)"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(Tensor::zeros({0, 3}), Tensor::zeros({0})),
                       doctest::Contains("cross_entropy: logits (0, 3) are empty"), Error);
}

// ---- kl_normal ----------------------------------------------------------------------------

TEST_CASE("kl_normal: hand values and a naive reference") {
  CHECK(kl_normal(Tensor::zeros({2, 3}), Tensor::zeros({2, 3})).item() == 0.f);  // N(0, 1) vs itself
  // mu = (1, 2), logvar = (0, log 2): 0.5 (1 + 1 - 1 - 0) + 0.5 (4 + 2 - 1 - log 2).
  Tensor mu = Tensor::from_vector({1, 2}, {2, 1}), lv = Tensor::from_vector({0, (float)std::log(2.0)}, {2, 1});
  const double hand = 0.5 + 0.5 * (5 - std::log(2.0));
  check_close(kl_normal(mu, lv), {hand}, 1e-7, 1e-6);                        // Sum is the default
  check_close(kl_normal(mu, lv, Reduction::Mean), {hand / 2}, 1e-7, 1e-6);   // divided by N = 2

  Tensor m = rand_tensor({4, 6}, 10), l = rand_tensor({4, 6}, 11, -2.f, 1.f);
  std::vector<float> mv = m.to_vector(), lvv = l.to_vector();
  double s = 0;
  for (size_t i = 0; i < mv.size(); ++i) s += 0.5 * ((double)mv[i] * mv[i] + std::exp((double)lvv[i]) - 1 - lvv[i]);
  check_close(kl_normal(m, l, Reduction::Sum), {s}, 1e-6, 1e-6);
  check_close(kl_normal(m, l, Reduction::Mean), {s / 4}, 1e-6, 1e-6);  // by batch size, not by numel
}

TEST_CASE("kl_normal: gradients") {
  for (Reduction r : {Reduction::Mean, Reduction::Sum}) {
    Tensor m = requiring_grad(rand_tensor({3, 4}, 12)), l = requiring_grad(rand_tensor({3, 4}, 13, -2.f, 1.f));
    gradcheck([r](const std::vector<Tensor>& in) { return kl_normal(in[0], in[1], r); }, {m, l});
  }
  Tensor m = requiring_grad(Tensor::from_vector({1, -2}, {2, 1}));
  Tensor l = requiring_grad(Tensor::from_vector({0, (float)std::log(3.0)}, {2, 1}));
  kl_normal(m, l, Reduction::Mean).backward();
  CHECK(m.grad().to_vector() == std::vector<float>{0.5f, -1.f});     // mu / N
  check_close(l.grad(), {0.0, 0.5 * (3 - 1) / 2}, 1e-7, 1e-6);      // 0.5 (e^lv - 1) / N
}

TEST_CASE("kl_normal: bad input") {
  CHECK_THROWS_WITH_AS(kl_normal(Tensor::zeros({2, 3}), Tensor::zeros({2, 4})),
                       doctest::Contains("kl_normal: shapes (2, 3) and (2, 4) must be equal"), Error);
  CHECK_THROWS_WITH_AS(kl_normal(Tensor::scalar(0.f), Tensor::scalar(0.f)),
                       doctest::Contains("kl_normal: mu and logvar need a batch dimension (N, ...), got ()"), Error);
}

// ---- dropout --------------------------------------------------------------------------------

TEST_CASE("dropout: statistics of an inverted mask") {
  const int64_t n = 200000;
  const float p = 0.3f;
  Generator g(21);
  Tensor y = dropout(Tensor::ones({n}), p, true, g);
  CHECK(g.offset() == (uint64_t)n);  // one counter per element
  int64_t zeros = 0;
  double s = 0;
  const float kept = 1.f / (1.f - p);
  for (float v : y.to_vector()) {
    if (v == 0.f) ++zeros;
    else if (v != kept) FAIL_CHECK("a kept element is " << v << ", expected " << kept);
    s += v;
  }
  // Binomial standard deviation of the drop rate: sqrt(p (1 - p) / n) ~ 1e-3.
  CHECK(std::fabs((double)zeros / n - p) < 5e-3);
  CHECK(std::fabs(s / n - 1.0) < 1e-2);  // inverted: the expectation is unchanged
}

TEST_CASE("dropout: the same seed gives the same mask; the stream moves on") {
  Tensor x = rand_tensor({4, 3, 8, 8}, 22);
  Generator g1(5), g2(5), g3(6);
  Tensor a = dropout(x, 0.5f, true, g1), b = dropout(x, 0.5f, true, g2), c = dropout(x, 0.5f, true, g3);
  CHECK(a.to_vector() == b.to_vector());
  CHECK(a.to_vector() != c.to_vector());
  Tensor a2 = dropout(x, 0.5f, true, g1);  // the next draw of the same generator
  CHECK(a2.to_vector() != a.to_vector());
  // The default generator is reproducible through manual_seed.
  manual_seed(99);
  Tensor d1 = dropout(x, 0.25f, true);
  manual_seed(99);
  Tensor d2 = dropout(x, 0.25f, true);
  CHECK(d1.to_vector() == d2.to_vector());
}

TEST_CASE("dropout: the mask is the generator's Bernoulli(p) stream at the reserved offset") {
  // Pins the contract a CUDA kernel must follow: element i is dropped exactly
  // when uniform(seed, offset + i) < p, the draw Tensor::bernoulli makes.
  Tensor x = Tensor::ones({3, 7, 11});
  Generator g(42), h(42);
  Tensor y = dropout(x, 0.35f, true, g);
  Tensor drop = Tensor::bernoulli({3, 7, 11}, h, 0.35f);
  CHECK(g.offset() == h.offset());
  std::vector<float> yv = y.to_vector(), dv = drop.to_vector();
  int mismatches = 0;
  for (size_t i = 0; i < yv.size(); ++i) mismatches += (yv[i] == 0.f) != (dv[i] == 1.f);
  CHECK(mismatches == 0);
}

TEST_CASE("dropout: eval mode and p == 0 are the identity; p == 1 drops everything") {
  Tensor x = requiring_grad(rand_tensor({2, 3, 4}, 23));
  Generator g(1);
  Tensor e = dropout(x, 0.5f, /*training=*/false, g);
  CHECK(e.to_vector() == x.to_vector());
  CHECK(g.offset() == 0u);  // no numbers drawn
  Tensor z = dropout(x, 0.f, true, g);
  CHECK(z.to_vector() == x.to_vector());
  CHECK(g.offset() == 0u);
  sum(mul(e, e)).backward();  // the identity passes the gradient through
  std::vector<double> want;
  for (float v : x.to_vector()) want.push_back(2.0 * v);
  check_close(x.grad(), want, 1e-7, 1e-6);

  Tensor w = requiring_grad(rand_tensor({10}, 24));
  Tensor all = dropout(w, 1.f, true, g);
  CHECK(all.to_vector() == std::vector<float>(10, 0.f));
  sum(all).backward();
  CHECK(w.grad().to_vector() == std::vector<float>(10, 0.f));
}

TEST_CASE("dropout: the gradient uses the forward's mask") {
  Tensor x = requiring_grad(rand_tensor({3, 50}, 25, 0.5f, 1.5f));  // nonzero, so y == 0 means dropped
  Generator g(31);
  const float p = 0.4f;
  Tensor y = dropout(x, p, true, g);
  Tensor w = rand_tensor({3, 50}, 26);
  sum(mul(y, w)).backward();
  std::vector<float> yv = y.to_vector(), wv = w.to_vector(), gv = x.grad().to_vector();
  int dropped = 0;
  for (size_t i = 0; i < yv.size(); ++i) {
    const float want = yv[i] == 0.f ? 0.f : wv[i] / (1.f - p);
    if (yv[i] == 0.f) ++dropped;
    CHECK(gv[i] == doctest::Approx(want).epsilon(1e-6));
  }
  CHECK(dropped > 0);
  CHECK(dropped < 150);
  // Finite differences, with a fresh generator of the same seed for every evaluation.
  Tensor xc = requiring_grad(rand_tensor({2, 20}, 27));
  gradcheck(
      [](const std::vector<Tensor>& in) {
        Generator fixed(77);
        return dropout(in[0], 0.4f, true, fixed);
      },
      {xc});
}

TEST_CASE("dropout: p outside [0, 1] is an error") {
  Tensor x = Tensor::ones({4});
  Generator g(0);
  CHECK_THROWS_WITH_AS(dropout(x, -0.1f, true, g), doctest::Contains("dropout: p = -0.1 is not a probability"), Error);
  CHECK_THROWS_WITH_AS(dropout(x, 1.5f, true, g), doctest::Contains("dropout: p = 1.5 is not a probability"), Error);
  CHECK_THROWS_WITH_AS(dropout(x, NAN, false, g), doctest::Contains("is not a probability"), Error);
}
