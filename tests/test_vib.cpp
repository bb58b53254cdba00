// information_reduction on the CPU (the reference): the KL against a hand
// value, the sample against mu + sigma eps with eps the generator's own
// normal draw, finite-difference gradients of z, kl and both together with
// the noise held fixed (the generator state reset before every evaluation),
// eval mode (z = mu, no draw), the parallel loops (the same bits on 1 and 2
// threads), and argument errors.
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <vector>

#include "gradcheck.hpp"
#include "runtime/ops.hpp"

using namespace recon;

namespace {

constexpr uint64_t kSeed = 1234, kOffset = 77;

// mu in [-1, 1), logvar in [-1.5, 1.5).
std::vector<Tensor> inputs(const Shape& shape, uint64_t seed) {
  return {test::rand_tensor(shape, seed).set_requires_grad(true),
          test::rand_tensor(shape, seed + 1, -1.5f, 1.5f).set_requires_grad(true)};
}

}  // namespace

TEST_CASE("information_reduction: KL against a hand value, nats per image") {
  // Two images of two values. Terms 0.5 (mu^2 + e^lv - 1 - lv):
  // (0.5, 0): 0.125; (-1, 1): 0.5 (1 + e - 2) = 0.5 (e - 1); (0, -1): 0.5 e^-1;
  // (2, 0.5): 0.5 (4 + e^0.5 - 1.5). kl = their sum / 2.
  Tensor mu = Tensor::from_vector({0.5f, -1.f, 0.f, 2.f}, {2, 2});
  Tensor lv = Tensor::from_vector({0.f, 1.f, -1.f, 0.5f}, {2, 2});
  const double e = std::exp(1.0);
  const double want = (0.125 + 0.5 * (e - 1) + 0.5 * std::exp(-1.0) + 0.5 * (2.5 + std::exp(0.5))) / 2;
  Generator gen(kSeed);
  InfoReduction r = information_reduction(mu, lv, true, gen);
  CHECK(r.kl.dim() == 0);
  CHECK(r.kl.item() == doctest::Approx(want).epsilon(1e-6));
  InfoReduction ev = information_reduction(mu, lv, false, gen);
  CHECK(ev.kl.item() == r.kl.item());  // the KL does not depend on the mode
  CHECK(r.kl.item() == kl_normal(mu, lv, Reduction::Mean).item());
}

TEST_CASE("information_reduction: z = mu + exp(logvar / 2) eps with the generator's normal draw") {
  auto in = inputs({3, 2, 5, 3}, 10);
  Generator gen(kSeed);
  gen.set_state(kSeed, kOffset);
  InfoReduction r = information_reduction(in[0], in[1], true, gen);
  CHECK(gen.offset() == kOffset + (uint64_t)in[0].numel());  // one counter per element reserved
  Generator same(kSeed);
  same.set_state(kSeed, kOffset);
  const std::vector<float> eps = Tensor::normal(in[0].shape(), same).to_vector();
  const std::vector<float> mu = in[0].to_vector(), lv = in[1].to_vector(), z = r.z.to_vector();
  REQUIRE(r.z.shape() == in[0].shape());
  for (size_t i = 0; i < z.size(); ++i) {
    INFO("element " << i);
    CHECK(z[i] == doctest::Approx(mu[i] + std::exp(0.5 * lv[i]) * eps[i]).epsilon(1e-6));
  }
  // Noise is really there: z differs from mu, and eps looks standard normal-ish.
  double s = 0, s2 = 0;
  for (float v : eps) s += v, s2 += (double)v * v;
  CHECK(std::fabs(s / eps.size()) < 0.5);
  CHECK(s2 / eps.size() == doctest::Approx(1.0).epsilon(0.5));
  // The next call draws fresh noise.
  InfoReduction r2 = information_reduction(in[0], in[1], true, gen);
  CHECK(r2.z.to_vector() != z);
}

TEST_CASE("information_reduction: eval mode gives z = mu and draws nothing") {
  auto in = inputs({2, 3, 4}, 20);
  Generator gen(kSeed);
  InfoReduction r = information_reduction(in[0], in[1], false, gen);
  CHECK(gen.offset() == 0);
  CHECK(r.z.to_vector() == in[0].to_vector());
  // Backward: dz flows to mu unchanged; logvar only gets the KL's gradient.
  sum(r.z).backward();
  for (float g : in[0].grad().to_vector()) CHECK(g == 1.f);
  if (in[1].grad().defined())
    for (float g : in[1].grad().to_vector()) CHECK(g == 0.f);
}

TEST_CASE("information_reduction: finite-difference gradients with the noise held fixed") {
  Generator gen(kSeed);
  // Every evaluation (the analytic pass and each perturbed one) re-uses the
  // same eps: the generator is reset to the same state first.
  auto run = [&](const std::vector<Tensor>& in, bool training) {
    gen.set_state(kSeed, kOffset);
    return information_reduction(in[0], in[1], training, gen);
  };
  test::GradcheckOptions opt;
  opt.eps = 1e-3;
  for (bool training : {true, false}) {
    INFO("training " << training);
    // z alone (kl's gradient arrives undefined), kl alone (z's undefined), both.
    test::gradcheck([&](const std::vector<Tensor>& in) { return run(in, training).z; }, inputs({2, 3, 2, 2}, 30),
                    opt);
    test::gradcheck([&](const std::vector<Tensor>& in) { return run(in, training).kl; }, inputs({2, 3, 2, 2}, 31),
                    opt);
    test::gradcheck(
        [&](const std::vector<Tensor>& in) {
          InfoReduction r = run(in, training);
          return add(r.z, scale(r.kl, 0.7f));
        },
        inputs({3, 5}, 32), opt);
  }
}

TEST_CASE("information_reduction: hand gradients of both outputs at once") {
  // loss = sum(w z) + c kl: dmu = w + c mu / N, dlv = w 0.5 sigma eps + c 0.5 (e^lv - 1) / N.
  auto in = inputs({2, 7}, 40);
  Tensor w = test::rand_tensor({2, 7}, 41);
  const float c = 1.7f;
  Generator gen(kSeed);
  InfoReduction r = information_reduction(in[0], in[1], true, gen);
  add(sum(mul(r.z, w)), scale(r.kl, c)).backward();
  Generator again(kSeed);
  const std::vector<float> eps = Tensor::normal({2, 7}, again).to_vector();
  const std::vector<float> mu = in[0].to_vector(), lv = in[1].to_vector(), wv = w.to_vector();
  const std::vector<float> dmu = in[0].grad().to_vector(), dlv = in[1].grad().to_vector();
  for (size_t i = 0; i < mu.size(); ++i) {
    const double sigma = std::exp(0.5 * lv[i]);
    CHECK(dmu[i] == doctest::Approx(wv[i] + c * mu[i] / 2).epsilon(1e-5));
    CHECK(dlv[i] == doctest::Approx(wv[i] * 0.5 * sigma * eps[i] + c * 0.5 * (std::exp(lv[i]) - 1) / 2).epsilon(1e-5));
  }
}

TEST_CASE("information_reduction: argument errors") {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({2, 4});
  CHECK_THROWS_WITH(information_reduction(a, b, true), doctest::Contains("information_reduction"));
  CHECK_THROWS(information_reduction(Tensor(), a, true));
  CHECK_THROWS(information_reduction(Tensor::zeros({0, 3}), Tensor::zeros({0, 3}), true));
  CHECK_THROWS(information_reduction(Tensor::scalar(1.f), Tensor::scalar(1.f), true));
}

TEST_CASE("information_reduction above the parallel threshold: the same bits on 1 and 2 threads") {
  // 2 x 4 x 25 x 25 = 5000 elements: over the 2048 from which the CPU kernels run in parallel,
  // and more than one 4096-element chunk of the KL sum (whose order must not follow the threads).
  const Shape shape{2, 4, 25, 25};
  std::vector<std::vector<float>> runs[2];
  const int threads_before = omp_get_max_threads();
  for (int t = 0; t < 2; ++t) {
    omp_set_num_threads(t + 1);
    std::vector<Tensor> in = inputs(shape, 91);
    Generator gen(kSeed);
    InfoReduction ir = information_reduction(in[0], in[1], true, gen);
    add(sum(ir.z), ir.kl).backward();
    runs[t] = {ir.z.to_vector(), ir.kl.to_vector(), in[0].grad().to_vector(), in[1].grad().to_vector()};
    // Against the formulas in double, with eps the generator's normal draw at the same state.
    Generator replay(kSeed);
    const std::vector<float> eps = Tensor::normal(shape, replay).to_vector();
    const std::vector<float> mu = in[0].to_vector(), lv = in[1].to_vector();
    std::vector<double> z(mu.size()), dmu(mu.size()), dlv(mu.size());
    double kl = 0;
    for (size_t i = 0; i < mu.size(); ++i) {
      const double s = std::exp(0.5 * lv[i]);
      z[i] = mu[i] + s * eps[i];
      kl += 0.5 * (mu[i] * (double)mu[i] + std::exp((double)lv[i]) - 1 - lv[i]);
      dmu[i] = 1 + mu[i] / 2.0;                                     // dz + d(kl / N)/dmu, N = 2
      dlv[i] = 0.5 * s * eps[i] + 0.25 * (std::exp((double)lv[i]) - 1);
    }
    test::check_close(ir.z, z, 1e-5, 1e-5, "z");
    test::check_close(ir.kl, std::vector<double>{kl / 2}, 1e-5, 1e-5, "kl");
    test::check_close(in[0].grad(), dmu, 1e-5, 1e-5, "dmu");
    test::check_close(in[1].grad(), dlv, 1e-5, 1e-5, "dlogvar");
  }
  omp_set_num_threads(threads_before);
  for (size_t i = 0; i < runs[0].size(); ++i) {
    INFO("output " << i);
    CHECK(runs[0][i] == runs[1][i]);
  }
}
