// nn/optim and nn/schedule: SGD (momentum, dampening, Nesterov, weight decay)
// and Adam/AdamW against values worked out by hand, optimizer state as named
// tensors and its restore, clip_grad_norm, and the learning-rate schedules
// against their formulas.
#include <doctest/doctest.h>

#include <cmath>
#include <numbers>

#include "nn/optim.hpp"
#include "nn/schedule.hpp"
#include "runtime/error.hpp"

using namespace recon;
using namespace recon::nn;

namespace {

Tensor param(std::vector<float> v) {
  Tensor t = Tensor::from_vector(v, {(int64_t)v.size()});
  t.set_requires_grad(true);
  return t;
}

// Runs opt over the gradient sequence `grads` (one per step) for parameter
// `p` and returns p's value after each step.
std::vector<float> run(Optimizer& opt, Tensor& p, const std::vector<float>& grads) {
  std::vector<float> out;
  for (float g : grads) {
    p.set_grad(Tensor::full(p.shape(), g));
    opt.step();
    out.push_back(p.to_vector()[0]);
  }
  return out;
}

}  // namespace

// ---- SGD -----------------------------------------------------------------------------------------

// Gradients 0.5, -0.25, 1.0 on p0 = 1, lr = 0.1. By hand (see kernels/common/optim.hpp):
TEST_CASE("sgd: plain, momentum + weight decay, Nesterov, dampening against hand values") {
  const std::vector<float> grads{0.5f, -0.25f, 1.0f};
  SUBCASE("plain: p -= lr g") {
    Tensor p = param({1.f});
    SGD opt({p}, {.lr = 0.1f});
    // 1 - 0.05 = 0.95; 0.95 + 0.025 = 0.975; 0.975 - 0.1 = 0.875
    std::vector<float> got = run(opt, p, grads);
    CHECK(got[0] == doctest::Approx(0.95).epsilon(1e-6));
    CHECK(got[1] == doctest::Approx(0.975).epsilon(1e-6));
    CHECK(got[2] == doctest::Approx(0.875).epsilon(1e-6));
    CHECK(opt.state_dict().names() == std::vector<std::string>{"step"});  // no momentum buffer
  }
  SUBCASE("momentum 0.9, weight decay 0.01") {
    Tensor p = param({1.f});
    SGD opt({p}, {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f});
    // t1: g = 0.5 + 0.01 = 0.51, buf = 0.51, p = 1 - 0.051 = 0.949
    // t2: g = -0.25 + 0.00949 = -0.24051, buf = 0.459 - 0.24051 = 0.21849, p = 0.927151
    // t3: g = 1 + 0.00927151, buf = 0.196641 + 1.00927151 = 1.20591251, p = 0.806559749
    std::vector<float> got = run(opt, p, grads);
    CHECK(got[0] == doctest::Approx(0.949).epsilon(1e-6));
    CHECK(got[1] == doctest::Approx(0.927151).epsilon(1e-6));
    CHECK(got[2] == doctest::Approx(0.806559749).epsilon(1e-6));
    CHECK(opt.state_dict().at("0.momentum_buffer").item() == doctest::Approx(1.20591251).epsilon(1e-6));
  }
  SUBCASE("Nesterov 0.9, weight decay 0.01") {
    Tensor p = param({1.f});
    SGD opt({p}, {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f, .nesterov = true});
    // t1: g = 0.51, buf = 0.51, d = 0.51 + 0.459 = 0.969, p = 0.9031
    // t2: g = -0.240969, buf = 0.459 - 0.240969 = 0.218031, d = -0.240969 + 0.1962279 = -0.0447411,
    //     p = 0.9031 + 0.00447411 = 0.90757411
    std::vector<float> got = run(opt, p, grads);
    CHECK(got[0] == doctest::Approx(0.9031).epsilon(1e-6));
    CHECK(got[1] == doctest::Approx(0.90757411).epsilon(1e-6));
    CHECK(got[2] == doctest::Approx(0.6981892082).epsilon(1e-6));
  }
  SUBCASE("momentum 0.9, dampening 0.5") {
    Tensor p = param({1.f});
    SGD opt({p}, {.lr = 0.1f, .momentum = 0.9f, .dampening = 0.5f});
    // t1: buf = 0.5 (no dampening on the first step), p = 0.95
    // t2: buf = 0.45 - 0.125 = 0.325, p = 0.9175
    std::vector<float> got = run(opt, p, grads);
    CHECK(got[0] == doctest::Approx(0.95).epsilon(1e-6));
    CHECK(got[1] == doctest::Approx(0.9175).epsilon(1e-6));
  }
}

TEST_CASE("sgd: argument checks") {
  Tensor p = param({1.f});
  CHECK_THROWS_WITH_AS(SGD({p}, {.lr = 0.1f, .nesterov = true}), doctest::Contains("Nesterov momentum needs momentum > 0"),
                       Error);
  CHECK_THROWS_WITH_AS(SGD({p}, {.lr = -1.f}), doctest::Contains("learning rate -1"), Error);
  CHECK_THROWS_WITH_AS(SGD(NamedTensors{{"a", p}, {"a", param({2.f})}}), doctest::Contains("duplicate name \"a\""), Error);
  SGD ok({p});
  CHECK_THROWS_WITH_AS(ok.set_lr(NAN), doctest::Contains("must be finite"), Error);
}

// ---- Adam / AdamW --------------------------------------------------------------------------------

// p0 = 1, gradients 0.5 then -0.25, lr = 0.1, betas (0.9, 0.999), eps = 1e-8.
TEST_CASE("adam: two steps by hand") {
  Tensor p = param({1.f});
  Adam opt({p}, {.lr = 0.1f});
  // t1: m = 0.05, v = 0.00025, m^ = 0.5, v^ = 0.25, p = 1 - 0.1 * 0.5 / 0.5 = 0.9
  // t2: m = 0.045 - 0.025 = 0.02, v = 0.00024975 + 0.0000625 = 0.00031225,
  //     m^ = 0.02 / 0.19 = 0.1052632, v^ = 0.00031225 / 0.001999 = 0.1562031,
  //     p = 0.9 - 0.1 * 0.1052632 / 0.3952254 = 0.8733663
  std::vector<float> got = run(opt, p, {0.5f, -0.25f});
  CHECK(got[0] == doctest::Approx(0.9).epsilon(1e-6));
  CHECK(got[1] == doctest::Approx(0.8733663).epsilon(1e-6));
  StateDict st = opt.state_dict();
  CHECK(st.names() == std::vector<std::string>{"step", "0.exp_avg", "0.exp_avg_sq"});
  CHECK(st.at("step").item() == 2.f);
  CHECK(st.at("0.exp_avg").item() == doctest::Approx(0.02).epsilon(1e-6));
  CHECK(st.at("0.exp_avg_sq").item() == doctest::Approx(0.00031225).epsilon(1e-6));
  CHECK(opt.type_name() == "Adam");
}

TEST_CASE("adam with L2 weight decay vs AdamW with decoupled weight decay") {
  SUBCASE("Adam, weight_decay 0.1: the decay joins the gradient") {
    Tensor p = param({1.f});
    Adam opt({p}, {.lr = 0.1f, .weight_decay = 0.1f});
    // t1: g = 0.6, p = 0.9 (Adam's first step has size lr)
    // t2: g = -0.25 + 0.09 = -0.16, m = 0.054 - 0.016 = 0.038, v = 0.00035964 + 0.0000256 = 0.00038524,
    //     m^ = 0.2, v^ = 0.1927164, p = 0.9 - 0.1 * 0.2 / 0.4389948 = 0.8544414
    std::vector<float> got = run(opt, p, {0.5f, -0.25f});
    CHECK(got[0] == doctest::Approx(0.9).epsilon(1e-6));
    CHECK(got[1] == doctest::Approx(0.8544414).epsilon(1e-6));
  }
  SUBCASE("AdamW, weight_decay 0.1: p shrinks by (1 - lr wd) first") {
    Tensor p = param({1.f});
    AdamW opt({p}, {.lr = 0.1f, .weight_decay = 0.1f});
    // t1: p = 0.99 - 0.1 = 0.89
    // t2: p = 0.89 * 0.99 - 0.1 * 0.1052632 / 0.3952254 = 0.8811 - 0.0266337 = 0.8544663
    std::vector<float> got = run(opt, p, {0.5f, -0.25f});
    CHECK(got[0] == doctest::Approx(0.89).epsilon(1e-6));
    CHECK(got[1] == doctest::Approx(0.8544663).epsilon(1e-6));
    CHECK(opt.type_name() == "AdamW");
  }
  CHECK(AdamW::defaults().weight_decay == 0.01f);
}

TEST_CASE("optimizers: elementwise over several parameters; skip frozen and gradient-less ones") {
  Tensor a = param({1.f, -2.f});
  Tensor b = param({5.f});
  Tensor frozen = param({7.f});
  frozen.set_requires_grad(false);
  Adam opt(NamedTensors{{"a", a}, {"b", b}, {"frozen", frozen}}, {.lr = 0.1f});
  a.set_grad(Tensor::from_vector({0.5f, -1.f}, {2}));
  frozen.set_grad(Tensor::ones({1}));  // ignored: requires_grad is off
  opt.step();                          // b has no gradient: untouched
  CHECK(a.to_vector()[0] == doctest::Approx(0.9).epsilon(1e-6));
  CHECK(a.to_vector()[1] == doctest::Approx(-1.9).epsilon(1e-6));
  CHECK(b.to_vector()[0] == 5.f);
  CHECK(frozen.to_vector()[0] == 7.f);
  a.set_grad(Tensor::from_vector({-0.25f, 3.f}, {2}));
  opt.step();
  CHECK(a.to_vector()[0] == doctest::Approx(0.8733663).epsilon(1e-6));
  CHECK(a.to_vector()[1] == doctest::Approx(-1.949419).epsilon(1e-6));
  opt.zero_grad();
  CHECK_FALSE(a.grad().defined());
}

TEST_CASE("optimizer state: named tensors, restore continues bit-identically, mismatches named") {
  auto make = [] { return param({0.3f, -0.7f, 1.1f}); };
  const std::vector<std::vector<float>> grads{{0.1f, -0.2f, 0.3f}, {0.5f, 0.4f, -0.6f}, {-0.3f, 0.2f, 0.1f}};
  Tensor p1 = make();
  AdamW o1(NamedTensors{{"w", p1}}, {.lr = 0.05f});
  for (int s = 0; s < 2; ++s) {
    p1.set_grad(Tensor::from_vector(grads[s], {3}));
    o1.step();
  }
  StateDict saved;
  for (const auto& [name, t] : o1.state_dict()) saved.insert(name, t.clone());
  CHECK(saved.names() == std::vector<std::string>{"step", "w.exp_avg", "w.exp_avg_sq"});

  Tensor p2 = param(p1.to_vector());
  AdamW o2(NamedTensors{{"w", p2}}, {.lr = 0.05f});
  o2.load_state_dict(saved);
  CHECK(o2.step_count() == 2);
  p1.set_grad(Tensor::from_vector(grads[2], {3}));
  p2.set_grad(Tensor::from_vector(grads[2], {3}));
  o1.step();
  o2.step();
  // Equal only if the moments and the step count (bias correction) came back.
  CHECK(p1.to_vector() == p2.to_vector());

  StateDict wrong;
  wrong.insert("step", Tensor::scalar(1.f));
  wrong.insert("w.exp_avg", Tensor::zeros({4}));
  wrong.insert("v.exp_avg_sq", Tensor::zeros({3}));
  CHECK_THROWS_WITH_AS(o2.load_state_dict(wrong),
                       doctest::Contains("AdamW::load_state_dict: state does not match; missing (1): w.exp_avg_sq; "
                                         "unexpected (1): v.exp_avg_sq; wrong shape (1): w.exp_avg (expected (3), got (4))"),
                       Error);
  StateDict bad_step = saved;
  bad_step.set("step", Tensor::scalar(1.5f));
  CHECK_THROWS_WITH_AS(o2.load_state_dict(bad_step), doctest::Contains("step 1.5 is not a non-negative integer"), Error);
}

// ---- clipping -------------------------------------------------------------------------------------

TEST_CASE("clip_grad_norm: returns the global norm and scales only when above the limit") {
  Tensor a = param({0.f, 0.f});
  Tensor b = param({0.f});
  Tensor none = param({0.f});  // no gradient: ignored
  a.set_grad(Tensor::from_vector({3.f, 4.f}, {2}));
  b.set_grad(Tensor::from_vector({12.f}, {1}));
  // sqrt(9 + 16 + 144) = 13
  CHECK(clip_grad_norm({a, b, none}, 20.f) == doctest::Approx(13.0).epsilon(1e-7));
  CHECK(a.grad().to_vector() == std::vector<float>{3.f, 4.f});  // under the limit: untouched
  CHECK(clip_grad_norm({a, b, none}, 6.5f) == doctest::Approx(13.0).epsilon(1e-7));
  const double c = 6.5 / (13.0 + 1e-6);
  CHECK(a.grad().to_vector()[0] == doctest::Approx(3.0 * c).epsilon(1e-6));
  CHECK(a.grad().to_vector()[1] == doctest::Approx(4.0 * c).epsilon(1e-6));
  CHECK(b.grad().to_vector()[0] == doctest::Approx(12.0 * c).epsilon(1e-6));
  CHECK_FALSE(none.grad().defined());
  // After clipping, the norm is the limit.
  CHECK(clip_grad_norm({a, b}, 100.f) == doctest::Approx(6.5).epsilon(1e-6));
  CHECK_THROWS_WITH_AS(clip_grad_norm({a}, 0.f), doctest::Contains("max_norm 0 must be > 0"), Error);
}

// ---- schedules -------------------------------------------------------------------------------------

TEST_CASE("schedules: step decay, cosine, warm-up composed with each") {
  StepSchedule step(0.1, 3, 0.5);
  const double step_want[] = {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025};
  for (int s = 0; s < 7; ++s) CHECK(step.lr_at(s) == doctest::Approx(step_want[s]).epsilon(1e-12));

  CosineSchedule cos(1.0, 10, 0.1);
  CHECK(cos.lr_at(0) == doctest::Approx(1.0));
  CHECK(cos.lr_at(5) == doctest::Approx(0.55));  // halfway: the mean of base and min
  CHECK(cos.lr_at(10) == doctest::Approx(0.1));
  CHECK(cos.lr_at(25) == doctest::Approx(0.1));  // stays at min
  for (int s = 0; s <= 10; ++s)
    CHECK(cos.lr_at(s) == doctest::Approx(0.1 + 0.9 * (1 + std::cos(std::numbers::pi * s / 10)) / 2).epsilon(1e-12));

  auto inner = std::make_shared<CosineSchedule>(1.0, 10, 0.0);
  WarmupSchedule warm(inner, 4);
  const double warm_want[] = {0.0, 0.25, 0.5, 0.75, 1.0};
  for (int s = 0; s < 5; ++s) CHECK(warm.lr_at(s) == doctest::Approx(warm_want[s]).epsilon(1e-12));
  CHECK(warm.lr_at(9) == doctest::Approx(inner->lr_at(5)).epsilon(1e-12));
  CHECK(warm.lr_at(9) == doctest::Approx(0.5).epsilon(1e-12));
  CHECK(warm.lr_at(14) == doctest::Approx(0.0).epsilon(1e-12));

  WarmupSchedule warm_step(std::make_shared<StepSchedule>(0.2, 2, 0.1), 2, 0.5);
  CHECK(warm_step.lr_at(0) == doctest::Approx(0.1));   // 0.2 * 0.5
  CHECK(warm_step.lr_at(1) == doctest::Approx(0.15));  // 0.2 * (0.5 + 0.5 * 1/2)
  CHECK(warm_step.lr_at(2) == doctest::Approx(0.2));
  CHECK(warm_step.lr_at(4) == doctest::Approx(0.02));

  auto wc = warmup_cosine(0.01, 5, 25, 0.001);
  CHECK(wc->lr_at(0) == 0.0);
  CHECK(wc->lr_at(5) == doctest::Approx(0.01));
  CHECK(wc->lr_at(15) == doctest::Approx(0.0055));
  CHECK(wc->lr_at(25) == doctest::Approx(0.001));

  CHECK_THROWS_WITH_AS(StepSchedule(0.1, 0), doctest::Contains("step_size 0 must be > 0"), Error);
  CHECK_THROWS_WITH_AS(warmup_cosine(0.1, 10, 10), doctest::Contains("must exceed warmup_steps"), Error);
  CHECK_THROWS_WITH_AS(cos.lr_at(-1), doctest::Contains("negative step"), Error);
}

TEST_CASE("schedule drives an optimizer's learning rate") {
  Tensor p = param({1.f});
  SGD opt({p}, {.lr = 1.f});
  StepSchedule sched(0.1, 1, 0.5);
  for (int s = 0; s < 3; ++s) {
    opt.set_lr((float)sched.lr_at(opt.step_count()));
    p.set_grad(Tensor::ones({1}));
    opt.step();
  }
  // 1 - 0.1 - 0.05 - 0.025
  CHECK(p.to_vector()[0] == doctest::Approx(0.825).epsilon(1e-6));
  CHECK(opt.lr() == doctest::Approx(0.025));
}
