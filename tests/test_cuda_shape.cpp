// CUDA concat, slice, pad (zero, reflect) and rot90 against the CPU backend,
// forward and backward, on small awkward shapes (batch 1, odd and
// non-square planes, empty pieces, asymmetric and maximal reflect pads,
// negative and > 3 turns). Runs on a real GPU or the SIMT emulator; skipped
// (and reported so) without either.
#include <doctest/doctest.h>

#include <array>
#include <functional>
#include <string>
#include <vector>

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
  INFO(what);
  test::GuardScope guards;
  Tensor xc = leaf_on(x, Device::cpu()), xg = leaf_on(x, kCuda);
  Tensor yc = f(xc), yg = f(xg);
  test::check_matches(yg, yc, fwd_tol, what + ": forward");
  Tensor g = rand_tensor(yc.shape(), 555);
  yc.backward(g);
  yg.backward(g.to(kCuda));
  test::check_matches(xg.grad(), xc.grad(), bwd_tol, what + ": backward");
}

std::string pads_str(const std::array<int, 4>& p) {
  return "{" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ", " + std::to_string(p[2]) + ", " +
         std::to_string(p[3]) + "}";
}

}  // namespace

// Every case below moves values without arithmetic, or sums them in the
// CPU's order: the CUDA results must equal the CPU's (thresholds 0 or 1e-14).

TEST_CASE("CUDA concat matches the CPU along every dim, with an empty piece and a piece without grad" *
          test::needs_cuda()) {
  const Shape base{2, 3, 4, 5};
  for (int dim : {0, 1, 2, 3, -1}) {
    const int d = dim < 0 ? dim + 4 : dim;
    std::vector<Tensor> parts;
    for (int64_t len : {3, 0, 1, 2}) {
      Shape s = base;
      s[d] = len;
      parts.push_back(rand_tensor(s, 600 + (uint64_t)len));
    }
    INFO("dim " << dim);
    test::GuardScope guards;
    std::vector<Tensor> pc, pg;
    for (size_t i = 0; i < parts.size(); ++i) {
      const bool grad = i != 3;  // the last piece needs no gradient
      pc.push_back(grad ? leaf_on(parts[i], Device::cpu()) : parts[i]);
      pg.push_back(grad ? leaf_on(parts[i], kCuda) : parts[i].to(kCuda));
    }
    Tensor yc = concat(pc, dim), yg = concat(pg, dim);
    test::check_matches(yg, yc, 0.0, "concat forward");
    Tensor g = rand_tensor(yc.shape(), 610);
    yc.backward(g);
    yg.backward(g.to(kCuda));
    for (size_t i = 0; i < 3; ++i)
      test::check_matches(pg[i].grad(), pc[i].grad(), 0.0, "concat backward, piece " + std::to_string(i));
    CHECK_FALSE(pg[3].grad().defined());
  }
}

TEST_CASE("CUDA concat of 2-D matrices and a single piece" * test::needs_cuda()) {
  std::vector<Tensor> mats = {rand_tensor({3, 7}, 620), rand_tensor({3, 1}, 621), rand_tensor({3, 4}, 622)};
  for (int dim : {1, 0}) {
    std::vector<Tensor> parts =
        dim == 1 ? mats : std::vector<Tensor>{rand_tensor({5, 7}, 623), rand_tensor({1, 7}, 624)};
    test::GuardScope guards;
    std::vector<Tensor> pc, pg;
    for (const Tensor& t : parts) {
      pc.push_back(leaf_on(t, Device::cpu()));
      pg.push_back(leaf_on(t, kCuda));
    }
    Tensor yc = concat(pc, dim), yg = concat(pg, dim);
    test::check_matches(yg, yc, 0.0, "concat 2-D forward, dim " + std::to_string(dim));
    Tensor g = rand_tensor(yc.shape(), 625);
    yc.backward(g);
    yg.backward(g.to(kCuda));
    for (size_t i = 0; i < parts.size(); ++i)
      test::check_matches(pg[i].grad(), pc[i].grad(), 0.0, "concat 2-D backward, piece " + std::to_string(i));
  }
  compare_unary(
      "concat of one piece", rand_tensor({1, 3, 2, 5}, 626), [](const Tensor& t) { return concat({t}, 2); }, 0.0, 0.0);
}

TEST_CASE("CUDA slice matches the CPU: views with steps and negative ends, gradient scattered into zeros" *
          test::needs_cuda()) {
  struct Case {
    Shape shape;
    int dim;
    int64_t start, end, step;
  };
  for (const Case& cs :
       {Case{{2, 3, 5, 7}, 3, 1, 6, 2}, Case{{2, 3, 5, 7}, 2, -4, 100, 3}, Case{{2, 3, 5, 7}, 0, 1, 2, 1},
        Case{{4, 9}, 1, 0, -1, 4}, Case{{1, 5, 3, 3}, 1, 3, 1, 1}, Case{{7}, 0, 2, 7, 2}}) {
    const int dim = cs.dim;
    const int64_t start = cs.start, end = cs.end, step = cs.step;
    // Forward: a view over the CUDA storage; comparing its values reads it
    // through Tensor::contiguous (the strided-copy kernel).
    compare_unary(
        "slice " + shape_str(cs.shape) + " dim " + std::to_string(dim) + " [" + std::to_string(start) + ", " +
            std::to_string(end) + ") step " + std::to_string(step),
        rand_tensor(cs.shape, 700 + (uint64_t)dim), [=](const Tensor& t) { return slice(t, dim, start, end, step); },
        0.0, 0.0);
  }
}

TEST_CASE("CUDA pad matches the CPU: zero and reflect, asymmetric, maximal and one-sided pads" * test::needs_cuda()) {
  struct Case {
    Shape shape;
    std::array<int, 4> pads;  // left, right, top, bottom
  };
  // Reflect pads up to size - 1: an element then gathers from up to 3 x 3 positions.
  for (const Case& cs :
       {Case{{2, 3, 5, 7}, {2, 0, 1, 3}}, Case{{1, 2, 4, 6}, {5, 5, 3, 3}}, Case{{2, 1, 3, 2}, {1, 1, 2, 2}},
        Case{{1, 1, 1, 5}, {4, 3, 0, 0}}, Case{{1, 2, 6, 3}, {0, 0, 0, 0}}}) {
    const std::array<int, 4> pads = cs.pads;
    const std::string what = shape_str(cs.shape) + " pads " + pads_str(pads);
    Tensor x = rand_tensor(cs.shape, 800 + (uint64_t)pads[0]);
    compare_unary(
        "pad zero " + what, x, [pads](const Tensor& t) { return pad(t, pads, PadMode::Zero); }, 0.0, 0.0);
    // Reflect backward sums up to 9 gradients in the CPU's order.
    compare_unary(
        "pad reflect " + what, x, [pads](const Tensor& t) { return pad(t, pads, PadMode::Reflect); }, 0.0, 1e-14);
  }
  // Zero padding wider than the input.
  compare_unary(
      "pad zero wide", rand_tensor({1, 2, 2, 3}, 810),
      [](const Tensor& t) {
        return pad(t, {6, 1, 0, 4}, PadMode::Zero);
      },
      0.0, 0.0);
}

TEST_CASE("CUDA rot90 matches the CPU for every k, forward and backward" * test::needs_cuda()) {
  for (int k : {0, 1, 2, 3, -1, 5}) {
    for (Shape shape : {Shape{2, 3, 4, 7}, Shape{1, 1, 5, 1}}) {
      compare_unary(
          "rot90 k " + std::to_string(k) + " " + shape_str(shape), rand_tensor(shape, 900),
          [k](const Tensor& t) { return rot90(t, k); }, 0.0, 0.0);
    }
  }
}
