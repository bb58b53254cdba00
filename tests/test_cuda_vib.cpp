// information_reduction on CUDA against the CPU: z (the same Philox noise on
// both devices), the KL (deterministic two-pass sum), and the fused backward
// (dmu, dlogvar) with both outputs used, only z, only kl, and in eval mode;
// one element, odd sizes, sizes off the block size and a grid of several
// partial blocks; bitwise run-to-run reproducibility. Guard bytes on. Runs on
// a real GPU or the SIMT emulator. Also the Refiner (models/refiner.hpp) end
// to end on CUDA against the CPU, on (RECON_CUDA=SIM); skipped otherwise.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "cuda_compare.hpp"
#include "models/refiner.hpp"
#include "runtime/ops.hpp"

using namespace recon;

namespace {

// z and the gradients: elementwise exp and the same Philox normal (computed
// in double) on both devices: agree to a few ulp.
constexpr double kElem = 1e-12;
// The KL: double sums in different fixed orders, rounded to float.
constexpr double kSum = 1e-12;

Tensor cpu_uniform(const Shape& shape, uint64_t seed, float lo, float hi) {
  Generator g(seed);
  return Tensor::uniform(shape, g, lo, hi);
}

enum class Use { Both, ZOnly, KlOnly };

void check_vib(const Shape& shape, bool training, Use use, const std::string& what) {
  INFO(what);
  test::GuardScope guards;
#if defined(RECON_WITH_CUDA)
  const int64_t violations = cuda::guard_violations();
#endif
  Tensor mu = cpu_uniform(shape, 1, -2.f, 2.f), lv = cpu_uniform(shape, 2, -3.f, 2.f);
  Tensor w = cpu_uniform(shape, 3, 0.5f, 1.5f);
  std::vector<Tensor> results[2];  // z, kl, dmu, dlv per device
  for (int d = 0; d < 2; ++d) {
    const Device dev = d == 0 ? Device::cpu() : Device::cuda();
    // Fresh leaves on each device (to() on the CPU would alias mu itself).
    Tensor m = (d == 0 ? mu.clone() : mu.to(dev)).set_requires_grad(true);
    Tensor l = (d == 0 ? lv.clone() : lv.to(dev)).set_requires_grad(true);
    Generator gen(4242);
    gen.set_state(4242, 1000003);  // same (seed, offset): the same eps on both devices
    InfoReduction r = information_reduction(m, l, training, gen);
    Tensor loss = use == Use::KlOnly ? scale(r.kl, 1.3f) : sum(mul(r.z, w.to(dev)));
    if (use == Use::Both) loss = add(loss, scale(r.kl, 1.3f));
    loss.backward();
    results[d] = {r.z, r.kl, m.grad(), l.grad()};
  }
  test::check_matches(results[1][0], results[0][0], kElem, "z");
  test::check_matches(results[1][1], results[0][1], kSum, "kl");
  test::check_matches(results[1][2], results[0][2], kElem, "dmu");
  test::check_matches(results[1][3], results[0][3], kElem, "dlogvar");
#if defined(RECON_WITH_CUDA)
  // The partial sums' scratch buffer is freed inside the op: an
  // out-of-bounds write to it shows up here.
  CHECK(cuda::guard_violations() == violations);
#endif
}

}  // namespace

TEST_CASE("information_reduction on CUDA matches the CPU: z, kl, dmu, dlogvar" * test::needs_cuda()) {
  // 1 element; odd non-square; off the 256-thread block; 3 partial blocks
  // (1024 elements each) with a ragged last one.
  for (const Shape& s : std::vector<Shape>{{1, 1}, {1, 3, 5, 7}, {3, 5, 17, 9}, {2, 4, 19, 21}})
    for (bool training : {true, false}) {
      const std::string what = shape_str(s) + (training ? " training" : " eval");
      check_vib(s, training, Use::Both, what + ", both outputs used");
      check_vib(s, training, Use::ZOnly, what + ", only z used (dkl undefined)");
      check_vib(s, training, Use::KlOnly, what + ", only kl used (dz undefined)");
    }
}

TEST_CASE("information_reduction on CUDA: eval z is mu; the KL is bitwise reproducible" * test::needs_cuda()) {
  Tensor mu = cpu_uniform({5, 8, 7, 7}, 5, -1.f, 1.f).to(Device::cuda());
  Tensor lv = cpu_uniform({5, 8, 7, 7}, 6, -1.f, 1.f).to(Device::cuda());
  Generator gen(9);
  InfoReduction ev = information_reduction(mu, lv, false, gen);
  CHECK(gen.offset() == 0);
  CHECK(ev.z.to_vector() == mu.to_vector());
  const float kl = ev.kl.item();
  for (int i = 0; i < 3; ++i) CHECK(information_reduction(mu, lv, true, gen).kl.item() == kl);
  CHECK(gen.offset() == 3 * (uint64_t)mu.numel());
}

TEST_CASE("Refiner on CUDA matches the CPU: x_tilde, kl and parameter gradients" * test::needs_cuda()) {
  test::GuardScope guards;
  models::RefinerConfig c;
  c.height = 9;  // odd, non-square: 9x6 -> 5x3 -> 3x2
  c.width = 6;
  c.base_width = 2;
  c.latent_channels = 2;
  c.beta = 0.3f;
  Generator g_cpu(21), g_cuda(21);  // the same weights and the same noise
  models::Refiner on_cpu(c, g_cpu), on_cuda(c, g_cuda);
  on_cuda.to(Device::cuda());
  Tensor x = cpu_uniform({2, 1, 9, 6}, 22, 0.f, 1.f), x_hat = cpu_uniform({2, 1, 9, 6}, 23, 0.f, 1.f);
  models::Refiner::Loss a = on_cpu.loss(x, x_hat, true);
  models::Refiner::Loss b = on_cuda.loss(x.to(Device::cuda()), x_hat.to(Device::cuda()), true);
  a.loss.backward();
  b.loss.backward();
  // Convolutions sum in different orders on the two devices.
  constexpr double kModel = 1e-8;
  test::check_matches(b.x_tilde, a.x_tilde, kModel, "x_tilde");
  test::check_matches(b.kl, a.kl, kModel, "kl");
  test::check_matches(b.loss, a.loss, kModel, "loss");
  auto pa = on_cpu.named_parameters(), pb = on_cuda.named_parameters();
  REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i < pa.size(); ++i) test::check_matches(pb[i].second.grad(), pa[i].second.grad(), 1e-6, pa[i].first);
}
