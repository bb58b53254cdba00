// CUDA (real GPU or the SIMT emulator) against the CPU for the image
// measures: ssim_map and ssim_loss forward and both input gradients,
// image_entropy and local_entropy. Guard bytes around every device result;
// small awkward shapes (minimum 6x6, tiles cut by the edge, several planes,
// many images) keep the emulator fast.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cuda_compare.hpp"
#include "gradcheck.hpp"
#include "runtime/ops.hpp"

using namespace recon;

namespace {

// Thresholds (normalised MSE). SSIM: float sums in the same order on both
// backends, but nvcc contracts multiply-adds (FMA), so allow rounding.
constexpr double kSsimTol = 1e-10;
// Entropy: integer counts on both; the terms are summed in a different order
// (tree vs sequential, in double) and log2 may differ in the last bit.
constexpr double kEntropyTol = 1e-12;

Tensor on_cuda(const Tensor& t) { return t.to(Device::cuda()); }

const std::vector<Shape> kSsimShapes = {Shape{1, 1, 6, 6}, Shape{2, 3, 13, 21}, Shape{1, 2, 33, 7},
                                        Shape{1, 1, 17, 16}};

}  // namespace

TEST_CASE("ssim_map: CUDA forward and both gradients match the CPU" * test::needs_cuda()) {
  for (const Shape& s : kSsimShapes) {
    const std::string tag = "shape " + shape_str(s);
    INFO(tag);
    test::GuardScope guards;
    Tensor x = test::rand_tensor(s, 101, 0.f, 1.f), y = test::rand_tensor(s, 102, 0.f, 1.f);
    Tensor g = test::rand_tensor(s, 103, -1.f, 1.f);
    Tensor xc = x.clone().set_requires_grad(true), yc = y.clone().set_requires_grad(true);
    Tensor m_cpu = ssim_map(xc, yc);
    m_cpu.backward(g);

    Tensor xd = on_cuda(x).set_requires_grad(true), yd = on_cuda(y).set_requires_grad(true);
    Tensor m_cuda = ssim_map(xd, yd);
    test::check_matches(m_cuda, m_cpu, kSsimTol, "map " + tag);
    m_cuda.backward(on_cuda(g));
    test::check_matches(xd.grad(), xc.grad(), kSsimTol, "dx " + tag);
    test::check_matches(yd.grad(), yc.grad(), kSsimTol, "dy " + tag);
  }
}

TEST_CASE("ssim_loss: CUDA forward and both gradients match the CPU" * test::needs_cuda()) {
  for (const Shape& s : kSsimShapes) {
    const std::string tag = "shape " + shape_str(s);
    INFO(tag);
    test::GuardScope guards;
    Tensor x = test::rand_tensor(s, 111, 0.f, 1.f);
    Tensor y = clamp(add(x, test::rand_tensor(s, 112, -0.1f, 0.1f)), 0.f, 1.f);  // correlated: SSIM near 1
    Tensor xc = x.clone().set_requires_grad(true), yc = y.clone().set_requires_grad(true);
    Tensor l_cpu = ssim_loss(xc, yc);
    l_cpu.backward();

    Tensor xd = on_cuda(x).set_requires_grad(true), yd = on_cuda(y).set_requires_grad(true);
    Tensor l_cuda = ssim_loss(xd, yd);
    test::check_matches(l_cuda, l_cpu, kSsimTol, "loss " + tag);
    l_cuda.backward();
    test::check_matches(xd.grad(), xc.grad(), kSsimTol, "dx " + tag);
    test::check_matches(yd.grad(), yc.grad(), kSsimTol, "dy " + tag);
  }
}

TEST_CASE("ssim on CUDA: one input needing grad, no-grad forward, determinism, identical images" * test::needs_cuda()) {
  test::GuardScope guards;
  const Shape s{1, 2, 9, 18};
  Tensor x = test::rand_tensor(s, 121, 0.f, 1.f), y = test::rand_tensor(s, 122, 0.f, 1.f);
  // Only y needs a gradient (the kernel writes dy alone).
  Tensor yc = y.clone().set_requires_grad(true), yd = on_cuda(y).set_requires_grad(true);
  ssim_loss(x, yc).backward();
  ssim_loss(on_cuda(x), yd).backward();
  test::check_matches(yd.grad(), yc.grad(), kSsimTol, "dy only");
  // Without gradients: no partials, same values.
  {
    NoGradGuard ng;
    test::check_matches(ssim_loss(on_cuda(x), on_cuda(y)), ssim_loss(x, y), kSsimTol, "loss, no grad");
    test::check_matches(ssim_map(on_cuda(x), on_cuda(y)), ssim_map(x, y), kSsimTol, "map, no grad");
  }
  // Deterministic: the same launch twice gives the same bits.
  {
    Tensor xa = on_cuda(x).set_requires_grad(true), xb = on_cuda(x).set_requires_grad(true);
    Tensor la = ssim_loss(xa, on_cuda(y)), lb = ssim_loss(xb, on_cuda(y));
    CHECK(la.item() == lb.item());
    la.backward();
    lb.backward();
    CHECK(xa.grad().to_vector() == xb.grad().to_vector());
  }
  Tensor m = ssim_map(on_cuda(x), on_cuda(x));
  test::check_close(m.to(Device::cpu()), std::vector<double>(m.numel(), 1.0), 1e-6, 0, "identical");
  CHECK(std::fabs(ssim_loss(on_cuda(x), on_cuda(x)).item()) <= 1e-6);
}

TEST_CASE("image_entropy: CUDA matches the CPU" * test::needs_cuda()) {
  struct Case {
    Shape s;
    float lo, hi;
  };
  for (const Case& c : {Case{{3, 2, 9, 11}, 0.f, 1.f}, Case{{1, 1, 40, 40}, -0.2f, 1.2f}, Case{{5, 1, 3, 1}, 0.f, 1.f},
                        Case{{2, 3, 7, 7}, 0.45f, 0.55f}}) {
    INFO("shape " << shape_str(c.s));
    test::GuardScope guards;
    Tensor x = test::rand_tensor(c.s, 131, c.lo, c.hi);
    test::check_matches(image_entropy(on_cuda(x)), image_entropy(x), kEntropyTol, "entropy");
  }
  test::GuardScope guards;
  // Hand values on the device: constant 0 bits, two equal levels 1 bit.
  std::vector<float> v(2 * 16);
  for (int i = 0; i < 16; ++i) v[i] = 0.3f;
  for (int i = 16; i < 32; ++i) v[i] = i % 2 ? 0.1f : 0.9f;
  test::check_close(image_entropy(on_cuda(Tensor::from_vector(v, {2, 1, 4, 4}))).to(Device::cpu()), {0.0, 1.0},
                    1e-6, 0, "hand");
}

TEST_CASE("local_entropy: CUDA matches the CPU" * test::needs_cuda()) {
  struct Case {
    Shape s;
    int k, bins;
  };
  // bins 32: 16x16 blocks; bins 256: 16x4 blocks; odd shapes cut the tiles.
  for (const Case& c : {Case{{2, 3, 10, 13}, 9, 32}, Case{{1, 1, 20, 17}, 3, 256}, Case{{1, 2, 6, 19}, 11, 100},
                        Case{{3, 1, 5, 5}, 1, 7}, Case{{1, 1, 9, 33}, 17, 2}}) {
    INFO("shape " << shape_str(c.s) << " k " << c.k << " bins " << c.bins);
    test::GuardScope guards;
    Tensor x = test::rand_tensor(c.s, 141, -0.1f, 1.1f);
    test::check_matches(local_entropy(on_cuda(x), c.k, c.bins), local_entropy(x, c.k, c.bins), kEntropyTol, "map");
  }
}
