// Refiner (stage 3 of method 2): shapes of the spatial latent and the
// outputs (odd, non-square sizes), x_tilde in [0, 1], the loss as a per-image
// sum of squared errors plus beta times the KL in nats per image, eval mode
// deterministic without draws, gradients reaching E_r, the heads and D_r but
// never x_hat, and beta steering the rate: after a few Adam steps on a tiny
// batch a large beta leaves a smaller KL than beta = 0.
#include <doctest/doctest.h>

#include <vector>

#include "gradcheck.hpp"
#include "models/refiner.hpp"
#include "nn/optim.hpp"
#include "runtime/ops.hpp"

using namespace recon;
using namespace recon::models;

namespace {

RefinerConfig tiny(int h, int w) {
  RefinerConfig c;
  c.channels = 1;
  c.height = h;
  c.width = w;
  c.base_width = 4;
  c.latent_channels = 3;
  return c;
}

}  // namespace

TEST_CASE("Refiner: shapes, x_tilde in [0, 1], loss terms on the per-image scale") {
  Generator gen(1);
  Refiner ref(tiny(12, 10), gen);
  Tensor x = test::rand_tensor({2, 1, 12, 10}, 2, 0.f, 1.f);
  Tensor x_hat = test::rand_tensor({2, 1, 12, 10}, 3, 0.f, 1.f);
  Refiner::Output o = ref.forward(x, x_hat, true);
  CHECK(o.mu.shape() == Shape{2, 3, 3, 3});  // 12x10 -> 6x5 -> 3x3
  CHECK(o.logvar.shape() == o.mu.shape());
  CHECK(o.r.shape() == x.shape());
  CHECK(o.x_tilde.shape() == x.shape());
  CHECK(o.kl.dim() == 0);
  CHECK(Refiner::rate(o) > 0.f);
  for (float v : o.x_tilde.to_vector()) {
    CHECK(v >= 0.f);
    CHECK(v <= 1.f);
  }
  // x_hat at the edges of [0, 1]: any correction pushes out, the clamp holds it.
  for (float edge : {0.f, 1.f}) {
    Refiner::Output e = ref.forward(x, Tensor::full(x.shape(), edge), true);
    const std::vector<float> r = e.r.to_vector(), xt = e.x_tilde.to_vector();
    bool outside = false;
    for (size_t i = 0; i < r.size(); ++i) {
      outside |= edge + r[i] < 0.f || edge + r[i] > 1.f;
      CHECK((xt[i] >= 0.f && xt[i] <= 1.f));
    }
    CHECK(outside);
  }

  ref.set_beta(0.5f);
  Generator& g = gen;
  const uint64_t seed = g.seed(), offset = g.offset();
  Refiner::Loss l = ref.loss(x, x_hat, true);
  g.set_state(seed, offset);  // same noise again
  Refiner::Output again = ref.forward(x, x_hat, true);
  const std::vector<float> xt = again.x_tilde.to_vector(), xv = x.to_vector();
  double sse = 0;
  for (size_t i = 0; i < xt.size(); ++i) sse += (double)(xt[i] - xv[i]) * (xt[i] - xv[i]);
  CHECK(l.recon.item() == doctest::Approx(sse / 2).epsilon(1e-5));  // per-image sum, batch mean
  CHECK(l.kl.item() == doctest::Approx(again.kl.item()));
  CHECK(l.loss.item() == doctest::Approx(l.recon.item() + 0.5 * l.kl.item()).epsilon(1e-5));
  CHECK_THROWS(ref.forward(x, test::rand_tensor({2, 1, 12, 11}, 5), true));
}

TEST_CASE("Refiner: eval mode is deterministic and draws no noise") {
  Generator gen(6);
  Refiner ref(tiny(8, 8), gen);
  Tensor x = test::rand_tensor({2, 1, 8, 8}, 7, 0.f, 1.f), x_hat = test::rand_tensor({2, 1, 8, 8}, 8, 0.f, 1.f);
  const uint64_t offset = gen.offset();
  Refiner::Output a = ref.forward(x, x_hat, false), b = ref.forward(x, x_hat, false);
  CHECK(gen.offset() == offset);
  CHECK(a.x_tilde.to_vector() == b.x_tilde.to_vector());
  Refiner::Output t = ref.forward(x, x_hat, true);
  CHECK(gen.offset() > offset);
  CHECK(t.r.to_vector() != a.r.to_vector());
  CHECK(t.kl.item() == a.kl.item());  // the KL does not depend on the noise
}

TEST_CASE("Refiner: gradients reach E_r, the heads and D_r, never x_hat") {
  Generator gen(9);
  Refiner ref(tiny(8, 6), gen);
  Tensor x = test::rand_tensor({3, 1, 8, 6}, 10, 0.2f, 0.8f);
  Tensor x_hat = test::rand_tensor({3, 1, 8, 6}, 11, 0.2f, 0.8f).set_requires_grad(true);
  ref.loss(x, x_hat).loss.backward();
  CHECK_FALSE(x_hat.grad().defined());
  for (auto& [name, p] : ref.named_parameters()) {
    INFO(name);
    REQUIRE(p.grad().defined());
    bool nonzero = false;
    for (float v : p.grad().to_vector()) nonzero |= v != 0.f;
    CHECK(nonzero);
  }
}

TEST_CASE("Refiner: a large beta leaves a smaller KL than beta = 0") {
  Tensor x = test::rand_tensor({4, 1, 8, 8}, 12, 0.f, 1.f);
  Tensor x_hat = clamp(add(x, test::rand_tensor({4, 1, 8, 8}, 13, -0.3f, 0.3f)), 0.f, 1.f);
  auto train = [&](float beta, float* kl_first) {
    Generator gen(14);  // the same initial weights and noise for both runs
    RefinerConfig c = tiny(8, 8);
    c.beta = beta;
    Refiner ref(c, gen);
    nn::Adam opt(ref.parameters(), nn::AdamOptions{.lr = 3e-3f});
    float kl = 0;
    for (int step = 0; step < 12; ++step) {
      Refiner::Loss l = ref.loss(x, x_hat, true);
      if (step == 0) *kl_first = l.kl.item();
      opt.zero_grad();
      l.loss.backward();
      opt.step();
    }
    kl = ref.forward(x, x_hat, false).kl.item();
    return kl;
  };
  float first0 = 0, first_big = 0;
  const float kl0 = train(0.f, &first0), kl_big = train(10.f, &first_big);
  CHECK(first0 == first_big);  // same start
  MESSAGE("KL per image: start " << first0 << ", beta 0 -> " << kl0 << ", beta 10 -> " << kl_big);
  CHECK(kl_big < first_big);
  CHECK(kl_big < kl0);
}
