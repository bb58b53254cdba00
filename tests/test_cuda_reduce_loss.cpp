// CUDA reductions, losses and dropout against the CPU: sum and mean of
// everything (one block to the capped multi-block grid) and over axes (the
// warp-per-row, block-per-row and thread-per-output kernels), sum_to and the
// broadcast backward, mse_loss, cross_entropy (stable for huge logits; NaN
// for an invalid target), kl_normal, and dropout, whose mask must be the
// CPU's bit for bit. Forward and backward, with guard bytes. Runs on a real
// GPU or the SIMT emulator (RECON_CUDA=SIM); reported as skipped otherwise.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "cuda_compare.hpp"
#include "runtime/ops.hpp"

using namespace recon;

namespace {

// Sums in double on both devices, in different fixed orders: the float
// results agree to about 1 ulp (normalised MSE ~1e-14).
constexpr double kSum = 1e-12;
// Elementwise gradients of the losses (exp in cross-entropy and KL; sums of
// per-row terms in different orders).
constexpr double kLoss = 1e-10;

Tensor cpu_uniform(const Shape& shape, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  Generator g(seed);
  return Tensor::uniform(shape, g, lo, hi);
}

Tensor random_targets(int64_t n, int64_t c, uint64_t seed) {
  Generator g(seed);
  std::vector<float> v;
  for (int64_t i = 0; i < n; ++i) v.push_back((float)g.randint(c));
  return Tensor::from_vector(v, {n});
}

using Op = std::function<Tensor(const std::vector<Tensor>&)>;

// Runs `op` on CPU leaves and on CUDA copies, compares the outputs, then
// back-propagates the same random output gradient on both devices and
// compares the gradients of the inputs flagged in `grad`.
void check_forward_backward(const Op& op, const std::vector<Tensor>& inputs, const std::vector<bool>& grad,
                            double fwd_threshold, double bwd_threshold, const std::string& what) {
  test::GuardScope guards;
#if defined(RECON_WITH_CUDA)
  const int64_t violations = cuda::guard_violations();
#endif
  std::vector<Tensor> on_cpu, on_cuda;
  for (size_t i = 0; i < inputs.size(); ++i) {
    on_cpu.push_back(inputs[i].clone().set_requires_grad(grad[i]));
    on_cuda.push_back(inputs[i].to(Device::cuda()).set_requires_grad(grad[i]));
  }
  Tensor y_cpu = op(on_cpu), y_cuda = op(on_cuda);
  test::check_matches(y_cuda, y_cpu, fwd_threshold, what + ": forward");
  Tensor gy = cpu_uniform(y_cpu.shape(), 99, 0.5f, 1.5f);
  y_cpu.backward(gy);
  y_cuda.backward(gy.to(Device::cuda()));
  for (size_t i = 0; i < inputs.size(); ++i)
    if (grad[i])
      test::check_matches(on_cuda[i].grad(), on_cpu[i].grad(), bwd_threshold,
                          what + ": gradient of input " + std::to_string(i));
#if defined(RECON_WITH_CUDA)
  // Scratch buffers (the partial sums) are freed inside the ops: a write out
  // of their bounds shows up here.
  CHECK(cuda::guard_violations() == violations);
#endif
}

}  // namespace

// ---- reductions ------------------------------------------------------------------------

TEST_CASE("sum and mean of everything: one block, several, and the capped grid" * test::needs_cuda()) {
  // 1: one thread; 1000: one block; 70001: 69 partial blocks; 2^20 + 3: more
  // than the 1024 partial blocks allowed, so threads loop.
  for (const Shape& s : std::vector<Shape>{{1}, {10, 100}, {7, 73, 137}, {(1 << 20) + 3}}) {
    Op sum_op = [](const std::vector<Tensor>& x) { return sum(x[0]); };
    Op mean_op = [](const std::vector<Tensor>& x) { return mean(x[0]); };
    check_forward_backward(sum_op, {cpu_uniform(s, 1, 0.f, 1.f)}, {true}, kSum, 0.0, "sum " + shape_str(s));
    check_forward_backward(mean_op, {cpu_uniform(s, 2)}, {true}, kSum, kSum, "mean " + shape_str(s));
  }
}

TEST_CASE("sum of an empty tensor is 0 on CUDA" * test::needs_cuda()) {
  test::GuardScope guards;
  CHECK(sum(Tensor::zeros({0, 3}, Device::cuda())).item() == 0.f);
}

TEST_CASE("sum is bitwise reproducible on CUDA" * test::needs_cuda()) {
  Tensor x = cpu_uniform({70001}, 3).to(Device::cuda());
  const float first = sum(x).item();
  for (int i = 0; i < 3; ++i) CHECK(sum(x).item() == first);
  Tensor rows = cpu_uniform({3, 2000}, 4).to(Device::cuda());
  const std::vector<float> r = sum(rows, {1}).to_vector();
  CHECK(sum(rows, {1}).to_vector() == r);
}

TEST_CASE("sum and mean over axes: every kernel path, keepdim, backward" * test::needs_cuda()) {
  struct AxisCase {
    Shape shape;
    std::vector<int> axes;
  };
  const std::vector<AxisCase> cases = {
      {{2, 3, 5, 7}, {0}},       // outer 1, inner 105: thread per output
      {{2, 3, 5, 7}, {1}},       // inner 35
      {{2, 3, 5, 7}, {3}},       // contiguous rows of 7: thread per output
      {{2, 3, 5, 7}, {2, 3}},    // two passes
      {{2, 3, 5, 7}, {0, 2}},
      {{2, 3, 5, 7}, {-1, -4}},  // negative axes
      {{3, 40}, {1}},            // rows of 40: a warp per row, 8 rows per block
      {{17, 33}, {-1}},          // 17 rows: the last block half empty
      {{2, 1500}, {1}},          // rows of 1500: a block per row
      {{1, 2048}, {1}},
      {{1, 5, 1}, {1}},
      {{6, 0, 2}, {1}},          // reducing an empty axis gives zeros
  };
  for (const AxisCase& c : cases)
    for (bool keepdim : {false, true}) {
      std::string what = "over axes of " + shape_str(c.shape) + (keepdim ? " keepdim" : "");
      Op sum_op = [&](const std::vector<Tensor>& x) { return sum(x[0], c.axes, keepdim); };
      check_forward_backward(sum_op, {cpu_uniform(c.shape, 5)}, {true}, kSum, 0.0, "sum " + what);
      if (shape_numel(c.shape) == 0) continue;  // mean over an empty axis is an error
      Op mean_op = [&](const std::vector<Tensor>& x) { return mean(x[0], c.axes, keepdim); };
      check_forward_backward(mean_op, {cpu_uniform(c.shape, 6)}, {true}, kSum, kSum, "mean " + what);
    }
}

TEST_CASE("sum_to reduces broadcast gradients on CUDA" * test::needs_cuda()) {
  test::GuardScope guards;
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{2, 3, 4, 5}, {3, 1, 5}}, {{2, 3, 4, 5}, {1}}, {{6, 40}, {40}}, {{6, 40}, {6, 1}}, {{4, 1, 3}, {4, 1, 3}}};
  for (const auto& [from, to] : cases) {
    Tensor x = cpu_uniform(from, 7);
    test::check_matches(sum_to(x.to(Device::cuda()), to), sum_to(x, to), kSum,
                        "sum_to " + shape_str(from) + " -> " + shape_str(to));
  }
}

// ---- losses ------------------------------------------------------------------------------

TEST_CASE("mse_loss forward and backward, both inputs, Sum and Mean" * test::needs_cuda()) {
  for (const Shape& s : std::vector<Shape>{{1}, {3, 7, 5}, {2, 1, 33, 31}, {5000}})
    for (Reduction r : {Reduction::Mean, Reduction::Sum}) {
      Op op = [r](const std::vector<Tensor>& x) { return mse_loss(x[0], x[1], r); };
      const std::string what = std::string("mse_loss ") + (r == Reduction::Mean ? "mean " : "sum ") + shape_str(s);
      check_forward_backward(op, {cpu_uniform(s, 8), cpu_uniform(s, 9)}, {true, true}, kSum, kLoss, what);
      check_forward_backward(op, {cpu_uniform(s, 8), cpu_uniform(s, 9)}, {true, false}, kSum, kLoss,
                             what + ", target without grad");
    }
}

TEST_CASE("cross_entropy forward and backward: class counts around the warp size" * test::needs_cuda()) {
  struct CeCase {
    int64_t n, c;
    float scale;  // logits in [-scale, scale]
  };
  // c = 1, 4 and 10 leave most lanes idle; 37 and 70 loop over the row; 9 and
  // 17 rows leave the last block of 8 rows part empty; logits of 1e4 overflow
  // any unshifted exp.
  const std::vector<CeCase> cases = {{1, 4, 3.f}, {5, 10, 3.f}, {9, 1, 3.f}, {17, 37, 5.f}, {8, 70, 2.f},
                                     {13, 4, 1e4f}, {300, 10, 8.f}};
  for (const CeCase& c : cases)
    for (Reduction r : {Reduction::Mean, Reduction::Sum}) {
      Op op = [r](const std::vector<Tensor>& x) { return cross_entropy(x[0], x[1], r); };
      const std::string what = "cross_entropy (" + std::to_string(c.n) + ", " + std::to_string(c.c) + ") scale " +
                               std::to_string(c.scale) + (r == Reduction::Mean ? " mean" : " sum");
      check_forward_backward(op, {cpu_uniform({c.n, c.c}, 10, -c.scale, c.scale), random_targets(c.n, c.c, 11)},
                             {true, false}, kSum, kLoss, what);
    }
}

TEST_CASE("cross_entropy with an invalid target gives a NaN loss and NaN row gradients on CUDA" *
          test::needs_cuda()) {
  test::GuardScope guards;
  Tensor logits = cpu_uniform({4, 5}, 12).to(Device::cuda()).set_requires_grad(true);
  for (float bad : {5.f, -1.f, 1.5f, NAN}) {
    INFO("target " << bad);
    Tensor targets = Tensor::from_vector({0, 4, bad, 2}, {4}, Device::cuda());
    Tensor loss = cross_entropy(logits, targets);
    CHECK(std::isnan(loss.item()));
    logits.zero_grad();
    loss.backward();
    std::vector<float> g = logits.grad().to_vector();
    for (int j = 0; j < 5; ++j) {
      CHECK(std::isfinite(g[1 * 5 + j]));  // a valid row keeps its gradient
      CHECK(std::isnan(g[2 * 5 + j]));     // the invalid row is poisoned
    }
  }
}

TEST_CASE("kl_normal forward and backward, Sum and Mean" * test::needs_cuda()) {
  for (const Shape& s : std::vector<Shape>{{1, 1}, {4, 32}, {3, 7, 5}, {6, 1000}})
    for (Reduction r : {Reduction::Sum, Reduction::Mean}) {
      Op op = [r](const std::vector<Tensor>& x) { return kl_normal(x[0], x[1], r); };
      const std::string what = std::string("kl_normal ") + (r == Reduction::Mean ? "mean " : "sum ") + shape_str(s);
      check_forward_backward(op, {cpu_uniform(s, 13), cpu_uniform(s, 14, -2.f, 2.f)}, {true, true}, kSum, kLoss,
                             what);
      check_forward_backward(op, {cpu_uniform(s, 13), cpu_uniform(s, 14, -2.f, 2.f)}, {false, true}, kSum, kLoss,
                             what + ", mu without grad");
    }
}

// ---- dropout --------------------------------------------------------------------------------

TEST_CASE("dropout: the CUDA mask is the CPU's, bit for bit, forward and backward" * test::needs_cuda()) {
  test::GuardScope guards;
  for (float p : {0.1f, 0.5f, 0.9f, 1.f})
    for (const Shape& s : std::vector<Shape>{{1}, {3, 5, 7}, {4099}}) {
      INFO("p = " << p << " " << shape_str(s));
      Tensor x = cpu_uniform(s, 15, 0.5f, 1.5f);  // never 0: a zero output means dropped
      Tensor x_cpu = x.clone().set_requires_grad(true);
      Tensor x_cuda = x.to(Device::cuda()).set_requires_grad(true);
      Generator g_cpu(77), g_cuda(77);
      g_cpu.reserve(5);
      g_cuda.reserve(5);
      Tensor y_cpu = dropout(x_cpu, p, true, g_cpu), y_cuda = dropout(x_cuda, p, true, g_cuda);
      CHECK(y_cuda.device().is_cuda());
      CHECK(g_cuda.offset() == g_cpu.offset());
      const std::vector<float> yc = y_cpu.to_vector(), yg = y_cuda.to_vector();
      REQUIRE(yc.size() == yg.size());
      int64_t mask_mismatch = 0, kept = 0;
      for (size_t i = 0; i < yc.size(); ++i) {
        mask_mismatch += (yc[i] == 0.f) != (yg[i] == 0.f);
        kept += yg[i] != 0.f;
      }
      CHECK(mask_mismatch == 0);
      CHECK(yg == yc);  // the kept values are scaled identically too
      if (p == 1.f) CHECK(kept == 0);
      Tensor gy = cpu_uniform(s, 16, 0.5f, 1.5f);
      y_cpu.backward(gy);
      y_cuda.backward(gy.to(Device::cuda()));
      CHECK(x_cuda.grad().to_vector() == x_cpu.grad().to_vector());
      test::check_matches(x_cuda.grad(), x_cpu.grad(), 0.0, "dropout backward");
    }
}
