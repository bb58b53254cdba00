// CUDA batch_norm2d, max_pool2d, avg_pool2d, global_avg_pool and upsample
// (nearest, bilinear) against the CPU backend, forward and backward, on small
// awkward shapes (batch 1, odd and non-square planes, sizes that are not a
// multiple of the block size, overlapping and padded windows, ties). Runs on
// a real GPU or the SIMT emulator; skipped (and reported so) without either.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "runtime/profile.hpp"
#include "tests/cuda_compare.hpp"
#include "tests/gradcheck.hpp"

using namespace recon;
using recon::test::rand_tensor;

namespace {

const Device kCuda = Device::cuda();

// A leaf that requires grad: a copy of `t` on `dev`.
Tensor leaf_on(const Tensor& t, Device dev) {
  Tensor l = dev.is_cpu() ? t.clone() : t.to(dev);
  l.set_requires_grad(true);
  return l;
}

// Runs f on a CPU and a CUDA copy of x, then backward with the same random
// gradient; checks y and dx of CUDA against CPU (normalised MSE thresholds
// fwd_tol and bwd_tol), inside a guard-byte scope.
void compare_unary(const std::string& what, const Tensor& x, const std::function<Tensor(const Tensor&)>& f,
                   double fwd_tol, double bwd_tol) {
  test::GuardScope guards;
  Tensor xc = leaf_on(x, Device::cpu()), xg = leaf_on(x, kCuda);
  Tensor yc = f(xc), yg = f(xg);
  test::check_matches(yg, yc, fwd_tol, what + ": forward");
  Tensor g = rand_tensor(yc.shape(), 777);
  yc.backward(g);
  yg.backward(g.to(kCuda));
  test::check_matches(xg.grad(), xc.grad(), bwd_tol, what + ": backward");
}

// Values in {0, 1, 2}: many ties inside every pooling window.
Tensor tied_tensor(const Shape& shape, uint64_t seed) {
  std::vector<float> v = rand_tensor(shape, seed, 0.f, 3.f).to_vector();
  for (float& e : v) e = std::floor(e);
  return Tensor::from_vector(v, shape);
}

std::string pool_str(const Shape& s, const Pool2dOptions& o) {
  return shape_str(s) + " kernel (" + std::to_string(o.kernel[0]) + ", " + std::to_string(o.kernel[1]) + ") stride (" +
         std::to_string(o.stride[0]) + ", " + std::to_string(o.stride[1]) + ") padding (" +
         std::to_string(o.padding[0]) + ", " + std::to_string(o.padding[1]) + ")";
}

// Pooling cases: overlapping windows (stride < kernel), padding, non-square
// kernels, windows that do not tile the plane, batch 1.
struct PoolCase {
  Shape shape;
  Pool2dOptions opt;
};
const std::vector<PoolCase> kPoolCases = {
    {{2, 3, 7, 9}, {{3, 3}, {2, 2}, {1, 1}}},  {{1, 2, 5, 7}, {{2, 2}, {2, 2}, {0, 0}}},
    {{2, 1, 6, 11}, {{2, 3}, {1, 2}, {1, 0}}}, {{1, 3, 9, 5}, {{4, 2}, {3, 1}, {2, 1}}},
    {{3, 2, 4, 4}, {{4, 4}, {1, 1}, {0, 0}}},
};

}  // namespace

// ---- batch_norm2d ----------------------------------------------------------------------

TEST_CASE("CUDA batch_norm2d training matches the CPU: y, running statistics, dx, dweight, dbias" *
          test::needs_cuda()) {
  // (2, 3, 13, 11): 286 values per channel, more than a 256-thread block;
  // (3, 5, 7, 9): 189, fewer; (1, 4, 5, 3): batch 1; offset 50: two-pass variance.
  struct Case {
    Shape shape;
    bool affine, running;
    float offset;
  };
  for (const Case& cs : {Case{{2, 3, 13, 11}, true, true, 0.f}, Case{{3, 5, 7, 9}, true, false, 0.f},
                         Case{{1, 4, 5, 3}, false, true, 0.f}, Case{{2, 2, 3, 5}, true, true, 50.f}}) {
    const int64_t c = cs.shape[1];
    const std::string what = "batch_norm2d train " + shape_str(cs.shape) + (cs.affine ? " affine" : "") +
                             (cs.running ? " running" : "") + " offset " + std::to_string(cs.offset);
    INFO(what);
    test::GuardScope guards;
    Tensor x = add_scalar(rand_tensor(cs.shape, 11, -2.f, 3.f), cs.offset);
    Tensor w = rand_tensor({c}, 12, 0.5f, 1.5f), b = rand_tensor({c}, 13);
    Tensor rm0 = rand_tensor({c}, 14), rv0 = rand_tensor({c}, 15, 0.5f, 2.f);
    Tensor xc = leaf_on(x, Device::cpu()), xg = leaf_on(x, kCuda);
    Tensor wc = cs.affine ? leaf_on(w, Device::cpu()) : Tensor(), wg = cs.affine ? leaf_on(w, kCuda) : Tensor();
    Tensor bc = cs.affine ? leaf_on(b, Device::cpu()) : Tensor(), bg = cs.affine ? leaf_on(b, kCuda) : Tensor();
    Tensor rmc = cs.running ? rm0.clone() : Tensor(), rvc = cs.running ? rv0.clone() : Tensor();
    Tensor rmg = cs.running ? rm0.to(kCuda) : Tensor(), rvg = cs.running ? rv0.to(kCuda) : Tensor();
    Tensor yc = batch_norm2d(xc, wc, bc, rmc, rvc, true, 0.3f, 1e-3f);
    Tensor yg = batch_norm2d(xg, wg, bg, rmg, rvg, true, 0.3f, 1e-3f);
    test::check_matches(yg, yc, 1e-10, what + ": y");  // double sums on both sides; float apply
    if (cs.running) {
      test::check_matches(rmg, rmc, 1e-12, what + ": running_mean");
      test::check_matches(rvg, rvc, 1e-12, what + ": running_var");
    }
    Tensor g = rand_tensor(cs.shape, 16);
    yc.backward(g);
    yg.backward(g.to(kCuda));
    test::check_matches(xg.grad(), xc.grad(), 1e-9, what + ": dx");  // float sums of O(m) terms cancel
    if (cs.affine) {
      test::check_matches(wg.grad(), wc.grad(), 1e-10, what + ": dweight");
      test::check_matches(bg.grad(), bc.grad(), 1e-10, what + ": dbias");
    }
  }
}

TEST_CASE("CUDA batch_norm2d eval matches the CPU and leaves the running statistics alone" * test::needs_cuda()) {
  for (bool affine : {true, false}) {
    INFO("affine " << affine);
    test::GuardScope guards;
    const Shape shape{2, 3, 5, 7};
    Tensor x = rand_tensor(shape, 21), w = rand_tensor({3}, 22, 0.5f, 1.5f), b = rand_tensor({3}, 23);
    Tensor rm = rand_tensor({3}, 24), rv = rand_tensor({3}, 25, 0.5f, 2.f);
    Tensor xc = leaf_on(x, Device::cpu()), xg = leaf_on(x, kCuda);
    Tensor wc = affine ? leaf_on(w, Device::cpu()) : Tensor(), wg = affine ? leaf_on(w, kCuda) : Tensor();
    Tensor bc = affine ? leaf_on(b, Device::cpu()) : Tensor(), bg = affine ? leaf_on(b, kCuda) : Tensor();
    Tensor rmc = rm.clone(), rvc = rv.clone(), rmg = rm.to(kCuda), rvg = rv.to(kCuda);
    Tensor yc = batch_norm2d(xc, wc, bc, rmc, rvc, false);
    Tensor yg = batch_norm2d(xg, wg, bg, rmg, rvg, false);
    test::check_matches(yg, yc, 1e-12, "eval y");  // same float formula
    test::check_matches(rmg, rm, 0.0, "running_mean untouched");
    test::check_matches(rvg, rv, 0.0, "running_var untouched");
    Tensor g = rand_tensor(shape, 26);
    yc.backward(g);
    yg.backward(g.to(kCuda));
    test::check_matches(xg.grad(), xc.grad(), 1e-12, "eval dx");
    if (affine) {
      test::check_matches(wg.grad(), wc.grad(), 1e-10, "eval dweight");
      test::check_matches(bg.grad(), bc.grad(), 1e-10, "eval dbias");
    }
  }
}

TEST_CASE("CUDA batch_norm2d backward launches only the passes whose gradients are needed" * test::needs_cuda()) {
  const Shape shape{2, 3, 4, 5};
  Tensor x = rand_tensor(shape, 31), w = rand_tensor({3}, 32, 0.5f, 1.5f), b = rand_tensor({3}, 33);
  Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
  Tensor g = rand_tensor(shape, 34);
  SUBCASE("frozen layer in eval: dx only, no reduction") {
    test::GuardScope guards;
    Tensor xc = leaf_on(x, Device::cpu()), xg = leaf_on(x, kCuda);
    Tensor rmg = rm.to(kCuda), rvg = rv.to(kCuda);
    batch_norm2d(xc, w, b, rm, rv, false).backward(g);
    reset_range_counts();
    batch_norm2d(xg, w.to(kCuda), b.to(kCuda), rmg, rvg, false).backward(g.to(kCuda));
    CHECK(range_count("batch_norm2d_backward_input") == 1);
    CHECK(range_count("batch_norm2d_backward_reduce") == 0);
    test::check_matches(xg.grad(), xc.grad(), 1e-12, "frozen eval dx");
  }
  SUBCASE("parameters only in training: the reduction, no input gradient") {
    test::GuardScope guards;
    Tensor wc = leaf_on(w, Device::cpu()), bc = leaf_on(b, Device::cpu());
    Tensor wg = leaf_on(w, kCuda), bg = leaf_on(b, kCuda);
    Tensor rmg = rm.to(kCuda), rvg = rv.to(kCuda);
    batch_norm2d(x, wc, bc, rm, rv, true).backward(g);
    reset_range_counts();
    batch_norm2d(x.to(kCuda), wg, bg, rmg, rvg, true).backward(g.to(kCuda));
    CHECK(range_count("batch_norm2d_backward_input") == 0);
    CHECK(range_count("batch_norm2d_backward_reduce") == 1);
    test::check_matches(wg.grad(), wc.grad(), 1e-10, "params-only dweight");
    test::check_matches(bg.grad(), bc.grad(), 1e-10, "params-only dbias");
  }
}

// ---- pooling ---------------------------------------------------------------------------

TEST_CASE("CUDA max_pool2d and avg_pool2d match the CPU, forward and backward" * test::needs_cuda()) {
  uint64_t seed = 100;
  for (const PoolCase& pc : kPoolCases) {
    const Pool2dOptions opt = pc.opt;
    Tensor x = rand_tensor(pc.shape, ++seed);
    // Max: the same argmax on both sides, so the sums are the same additions.
    compare_unary(
        "max_pool2d " + pool_str(pc.shape, opt), x, [opt](const Tensor& t) { return max_pool2d(t, opt); }, 1e-14,
        1e-14);
    // Avg: the gather adds g / (kh kw) in the CPU's order; nvcc may fuse a multiply-add.
    compare_unary(
        "avg_pool2d " + pool_str(pc.shape, opt), x, [opt](const Tensor& t) { return avg_pool2d(t, opt); }, 1e-12,
        1e-12);
  }
}

TEST_CASE("CUDA max_pool2d with ties routes the gradient to the first maximum, as the CPU" * test::needs_cuda()) {
  uint64_t seed = 200;
  for (const PoolCase& pc : kPoolCases) {
    const Pool2dOptions opt = pc.opt;
    compare_unary(
        "max_pool2d ties " + pool_str(pc.shape, opt), tied_tensor(pc.shape, ++seed),
        [opt](const Tensor& t) { return max_pool2d(t, opt); }, 1e-14, 1e-14);
  }
}

TEST_CASE("CUDA global_avg_pool matches the CPU, forward and backward" * test::needs_cuda()) {
  // hw 63 (under a warp's 2 rounds), 1 (lanes idle), 1155 (many rounds); 40
  // planes span several blocks of 8 warps.
  for (Shape shape : {Shape{3, 5, 7, 9}, Shape{1, 40, 1, 1}, Shape{2, 3, 33, 35}}) {
    compare_unary(
        "global_avg_pool " + shape_str(shape), rand_tensor(shape, 300),
        [](const Tensor& t) { return global_avg_pool(t); }, 1e-12, 1e-14);
  }
}

// ---- upsample --------------------------------------------------------------------------

TEST_CASE("CUDA upsample nearest and bilinear match the CPU, up and down, forward and backward" * test::needs_cuda()) {
  struct Case {
    Shape shape;
    int out_h, out_w;
  };
  // Non-integer and integer scales, downsampling, one axis each way, a 1-pixel
  // plane, and a large ratio (the gather's candidate range must hold every tap).
  for (const Case& cs : {Case{{2, 3, 5, 7}, 11, 13}, Case{{1, 2, 5, 7}, 10, 14}, Case{{2, 2, 9, 8}, 4, 3},
                         Case{{1, 2, 4, 5}, 17, 3}, Case{{1, 1, 1, 1}, 3, 2}, Case{{1, 1, 2, 3}, 37, 41}}) {
    const int oh = cs.out_h, ow = cs.out_w;
    const std::string to = shape_str(cs.shape) + " -> (" + std::to_string(oh) + ", " + std::to_string(ow) + ")";
    Tensor x = rand_tensor(cs.shape, 400 + (uint64_t)oh);
    compare_unary(
        "upsample nearest " + to, x, [oh, ow](const Tensor& t) { return upsample(t, oh, ow, UpsampleMode::Nearest); },
        1e-14, 1e-14);
    // Bilinear: the same tap weights and summation order; nvcc may fuse multiply-adds.
    compare_unary(
        "upsample bilinear " + to, x, [oh, ow](const Tensor& t) { return upsample(t, oh, ow, UpsampleMode::Bilinear); },
        1e-12, 1e-12);
  }
}
