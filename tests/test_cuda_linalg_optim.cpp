// The CUDA GEMM path and the fused optimizer against the CPU: cuda::gemm in
// every transpose combination with leading dimensions and alpha/beta,
// strided batched GEMM, matmul and linear forward and every backward kernel
// (run only when needed), the TF32 math mode, RECON_CUBLAS_CHECK's message,
// the fused optimizer step (Adam, AdamW, SGD variants) equal to the CPU step
// in exactly one launch per step, pinned host buffers, and RECON_SYNC=1.
// Runs on a real GPU and in the SIM build; skipped elsewhere.
#include <doctest/doctest.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cuda_compare.hpp"
#include "kernels/cpu/gemm.hpp"
#include "nn/optim.hpp"
#include "runtime/autograd.hpp"
#include "runtime/cuda_context.hpp"
#include "runtime/error.hpp"
#include "runtime/ops.hpp"
#include "runtime/profile.hpp"
#include "tests/gradcheck.hpp"

#if defined(RECON_WITH_CUDA)
#include "kernels/cuda/gemm.hpp"
#include "runtime/cublas_api.hpp"
#endif
#if defined(RECON_SIMT)
#include "kernels/cuda/launch.cuh"
#endif

using namespace recon;
using recon::test::rand_tensor;

#if !defined(RECON_WITH_CUDA)
TEST_CASE("PinnedBuffer refuses to exist without CUDA") {
  CHECK_THROWS_WITH_AS(cuda::PinnedBuffer(16), doctest::Contains("built without CUDA"), Error);
  cuda::PinnedBuffer empty;
  CHECK(empty.empty());
}
#else

namespace {

// RECON_SYNC and RECON_TF32 are read when the runtime first starts CUDA:
// this static initialiser sets both, starts it and records what it read
// (checked by the cases below), then turns TF32 off again so that the
// suite's FP32 thresholds hold whatever the caller's environment says. The
// whole suite runs with sync-after-launch on.
struct EnvAtStart {
  bool started = false;
  bool sync = false;
  bool tf32 = false;
  std::string error;
};
const EnvAtStart g_env = [] {
  EnvAtStart e;
  setenv("RECON_SYNC", "1", 1);
  setenv("RECON_TF32", "1", 1);
  if (!cuda_available()) return e;
  try {
    e.sync = cuda::sync_each_launch();
    e.tf32 = cuda::tf32_enabled();
    cuda::set_tf32(false);
    e.started = true;
  } catch (const std::exception& x) {
    e.error = x.what();
  }
  return e;
}();

const Device kCuda = Device::cuda();

// A CUDA leaf copy of a CPU tensor, requiring grad when asked.
Tensor to_cuda(const Tensor& t, bool requires_grad = false) {
  Tensor c = t.detach().to(kCuda);
  if (requires_grad) c.set_requires_grad(true);
  return c;
}

Tensor cpu_leaf(const Tensor& t, bool requires_grad) {
  Tensor c = t.detach().clone();
  if (requires_grad) c.set_requires_grad(true);
  return c;
}

// Thresholds (normalised MSE). The CPU's OpenBLAS accumulates in float in a
// blocked order, cuBLAS (and the emulator's double loop) in another: the
// difference is rounding, ~1e-14 on these small sizes.
constexpr double kGemmNmse = 1e-10;
// The bias gradient: both sides sum each column in double.
constexpr double kColumnSumNmse = 1e-12;
// The optimizer: the same float formula on both sides (nvcc may contract
// a * b + c into an FMA: a few ulps after several steps).
constexpr double kOptimNmse = 1e-10;

}  // namespace

// ---- cuda::gemm against cpu::gemm --------------------------------------------------------------

TEST_CASE("cuda::gemm matches cpu::gemm: every transpose, padded leading dimensions, alpha and beta" *
          test::needs_cuda()) {
  test::GuardScope guards;
  // (m, n, k): ones, odd, non-square, sizes not a multiple of a tile.
  const std::vector<std::array<int64_t, 3>> sizes = {{1, 1, 1}, {3, 5, 2}, {7, 1, 4}, {1, 9, 1}, {17, 33, 9}};
  int seed = 0;
  for (auto [m, n, k] : sizes)
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (int pad : {0, 3}) {  // leading dimensions larger than the rows (a sub-matrix)
          const int64_t a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
          const int64_t lda = a_cols + pad, ldb = b_cols + pad, ldc = n + pad;
          Tensor a = rand_tensor({a_rows, lda}, 100 + seed), b = rand_tensor({b_rows, ldb}, 200 + seed);
          Tensor c0 = rand_tensor({m, ldc}, 300 + seed);
          ++seed;
          const float alpha = 0.75f, beta = pad ? -0.5f : 0.f;  // beta 0 and beta != 0 both run
          Tensor ref = c0.clone();
          cpu::gemm(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, ref.data(), ldc);
          Tensor da = a.to(kCuda), db = b.to(kCuda), dc = c0.to(kCuda);
          cuda::gemm(ta, tb, m, n, k, alpha, da.data(), lda, db.data(), ldb, beta, dc.data(), ldc);
          test::check_matches(dc, ref, kGemmNmse,
                              "gemm m " + std::to_string(m) + " n " + std::to_string(n) + " k " + std::to_string(k) +
                                  (ta ? " A^T" : " A") + (tb ? " B^T" : " B") + " pad " + std::to_string(pad));
        }
}

TEST_CASE("cuda::gemm with k = 0 writes beta C: zeros for beta 0, C kept for beta 1" * test::needs_cuda()) {
  test::GuardScope guards;
  Tensor c = rand_tensor({3, 4}, 7).to(kCuda);
  Tensor keep = c.clone();
  cuda::gemm(false, false, 3, 4, 0, 1.f, nullptr, 1, nullptr, 4, 1.f, c.data(), 4);
  test::check_matches(c, keep.to(Device::cpu()), 0.0, "beta 1");
  cuda::gemm(false, false, 3, 4, 0, 1.f, nullptr, 1, nullptr, 4, 0.f, c.data(), 4);
  test::check_matches(c, Tensor::zeros({3, 4}), 0.0, "beta 0");
}

TEST_CASE("cuda::gemm_strided_batched matches one cpu::gemm per batch entry, shared operands included" *
          test::needs_cuda()) {
  test::GuardScope guards;
  const int64_t batch = 3, m = 5, n = 7, k = 6;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (bool share_b : {false, true}) {  // stride 0: one B for every product (a weight)
        const int64_t sa = m * k, sb = share_b ? 0 : k * n, sc = m * n;
        Tensor a = rand_tensor({batch, m * k}, 11), b = rand_tensor({share_b ? 1 : batch, k * n}, 12);
        Tensor ref = Tensor::zeros({batch, m * n});
        for (int64_t i = 0; i < batch; ++i)
          cpu::gemm(ta, tb, m, n, k, 1.f, a.data() + i * sa, ta ? m : k, b.data() + i * sb, tb ? k : n, 0.f,
                    ref.data() + i * sc, n);
        Tensor da = a.to(kCuda), db = b.to(kCuda), dc = Tensor::empty({batch, m * n}, kCuda);
        cuda::gemm_strided_batched(ta, tb, m, n, k, 1.f, da.data(), ta ? m : k, sa, db.data(), tb ? k : n, sb, 0.f,
                                   dc.data(), n, sc, batch);
        test::check_matches(dc, ref, kGemmNmse,
                            std::string("batched") + (ta ? " A^T" : " A") + (tb ? " B^T" : " B") +
                                (share_b ? " shared B" : ""));
      }
}

// ---- matmul -------------------------------------------------------------------------------------

TEST_CASE("matmul on CUDA matches the CPU, forward and both gradients, on awkward shapes" * test::needs_cuda()) {
  test::GuardScope guards;
  const std::vector<std::array<int64_t, 3>> shapes = {{1, 1, 1}, {3, 5, 2}, {7, 1, 4}, {1, 9, 1}, {17, 33, 9},
                                                      {4, 0, 3}};
  int seed = 0;
  for (auto [m, k, n] : shapes) {
    const std::string what = "m " + std::to_string(m) + " k " + std::to_string(k) + " n " + std::to_string(n);
    Tensor a = rand_tensor({m, k}, 40 + seed), b = rand_tensor({k, n}, 50 + seed), g = rand_tensor({m, n}, 60 + seed);
    ++seed;
    Tensor ca = cpu_leaf(a, true), cb = cpu_leaf(b, true);
    Tensor cc = matmul(ca, cb);
    cc.backward(g);
    Tensor da = to_cuda(a, true), db = to_cuda(b, true);
    Tensor dc = matmul(da, db);
    test::check_matches(dc, cc, kGemmNmse, "matmul forward " + what);
    dc.backward(g.to(kCuda));
    test::check_matches(da.grad(), ca.grad(), kGemmNmse, "matmul grad a " + what);
    test::check_matches(db.grad(), cb.grad(), kGemmNmse, "matmul grad b " + what);
  }
}

TEST_CASE("matmul on CUDA runs only the gradient GEMM that an operand needs" * test::needs_cuda()) {
  Tensor a = to_cuda(rand_tensor({3, 4}, 1), true), b = to_cuda(rand_tensor({4, 2}, 2));  // b frozen
  reset_range_counts();
  matmul(a, b).backward(Tensor::ones({3, 2}).to(kCuda));
  CHECK(range_count("matmul_backward_a") == 1);
  CHECK(range_count("matmul_backward_b") == 0);
  CHECK(a.grad().device().is_cuda());
}

// ---- linear -------------------------------------------------------------------------------------

TEST_CASE("linear on CUDA matches the CPU: forward, data, weight and bias gradients" * test::needs_cuda()) {
  test::GuardScope guards;
  struct Case {
    Shape x;
    int64_t out;
    bool bias;
  };
  // Batch 1, 3-D inputs, out not a multiple of the column tile (32), rows
  // not a multiple of the row lanes (8), one feature, no bias.
  const std::vector<Case> cases = {{{1, 5}, 3, true},    {{19, 7}, 37, true}, {{2, 3, 6}, 4, true},
                                   {{9, 1}, 1, true},    {{4, 8}, 65, false}, {{33, 2}, 70, true},
                                   {{1, 1}, 1, false}};
  int seed = 0;
  for (const Case& c : cases) {
    const int64_t in = c.x.back();
    const std::string what = "x " + shape_str(c.x) + " out " + std::to_string(c.out) + (c.bias ? " bias" : "");
    Tensor x = rand_tensor(c.x, 70 + seed), w = rand_tensor({c.out, in}, 80 + seed);
    Tensor b = c.bias ? rand_tensor({c.out}, 90 + seed) : Tensor();
    Shape y_shape = c.x;
    y_shape.back() = c.out;
    Tensor g = rand_tensor(y_shape, 95 + seed);
    ++seed;
    Tensor cx = cpu_leaf(x, true), cw = cpu_leaf(w, true), cb = c.bias ? cpu_leaf(b, true) : Tensor();
    Tensor cy = linear(cx, cw, cb);
    cy.backward(g);
    Tensor dx = to_cuda(x, true), dw = to_cuda(w, true), db = c.bias ? to_cuda(b, true) : Tensor();
    Tensor dy = linear(dx, dw, db);
    test::check_matches(dy, cy, kGemmNmse, "linear forward " + what);
    dy.backward(g.to(kCuda));
    test::check_matches(dx.grad(), cx.grad(), kGemmNmse, "linear grad x " + what);
    test::check_matches(dw.grad(), cw.grad(), kGemmNmse, "linear grad weight " + what);
    if (c.bias) test::check_matches(db.grad(), cb.grad(), kColumnSumNmse, "linear grad bias " + what);
  }
}

TEST_CASE("linear on CUDA: a frozen layer runs no weight or bias gradient, a frozen input no data gradient" *
          test::needs_cuda()) {
  Tensor x = to_cuda(rand_tensor({5, 4}, 3), true);
  Tensor w = to_cuda(rand_tensor({6, 4}, 4)), b = to_cuda(rand_tensor({6}, 5));
  reset_range_counts();
  linear(x, w, b).backward(Tensor::ones({5, 6}).to(kCuda));
  CHECK(range_count("linear_backward_data") == 1);
  CHECK(range_count("linear_backward_weight") == 0);
  CHECK(range_count("linear_backward_bias") == 0);

  Tensor x2 = to_cuda(rand_tensor({5, 4}, 6));
  Tensor w2 = to_cuda(rand_tensor({6, 4}, 7), true), b2 = to_cuda(rand_tensor({6}, 8), true);
  reset_range_counts();
  linear(x2, w2, b2).backward(Tensor::ones({5, 6}).to(kCuda));
  CHECK(range_count("linear_backward_data") == 0);
  CHECK(range_count("linear_backward_weight") == 1);
  CHECK(range_count("linear_backward_bias") == 1);
}

TEST_CASE("the CUDA bias gradient is bitwise reproducible" * test::needs_cuda()) {
  Tensor g = rand_tensor({29, 45}, 9).to(kCuda);
  Tensor d1 = Tensor::empty({45}, kCuda), d2 = Tensor::empty({45}, kCuda);
  cuda::linear_backward_bias(g.data(), d1.data(), 29, 45);
  cuda::linear_backward_bias(g.data(), d2.data(), 29, 45);
  const std::vector<float> v1 = d1.to_vector(), v2 = d2.to_vector();
  CHECK(std::memcmp(v1.data(), v2.data(), v1.size() * sizeof(float)) == 0);
}

// ---- math mode and cuBLAS errors --------------------------------------------------------------------

TEST_CASE("RECON_TF32=1 and set_tf32 switch the handle's math mode; TF32 results stay close" *
          test::needs_cuda()) {
  test::GuardScope guards;
  auto mode = [] {
    cublasMath_t m{};
    RECON_CUBLAS_CHECK(cublasGetMathMode(static_cast<cublasHandle_t>(cuda::cublas_handle()), &m));
    return m;
  };
  REQUIRE_MESSAGE(g_env.started, g_env.error);
  CHECK(g_env.tf32);  // RECON_TF32=1 was read at start-up
  CHECK_FALSE(cuda::tf32_enabled());  // and switched off by set_tf32(false)
  CHECK(mode() == CUBLAS_DEFAULT_MATH);
  Tensor a = rand_tensor({16, 48}, 21), b = rand_tensor({48, 12}, 22);
  Tensor ref = matmul(a, b);
  Tensor fp32 = matmul(a.to(kCuda), b.to(kCuda));
  cuda::set_tf32(true);
  CHECK(mode() == CUBLAS_TF32_TENSOR_OP_MATH);
  Tensor tf32 = matmul(a.to(kCuda), b.to(kCuda));
  cuda::set_tf32(false);
  CHECK(mode() == CUBLAS_DEFAULT_MATH);
  test::check_matches(fp32, ref, kGemmNmse, "FP32");
  // TF32 keeps 10 mantissa bits: relative errors ~1e-3 per product, nmse ~1e-7.
  test::check_matches(tf32, ref, 1e-5, "TF32");
  if (cuda_is_emulated()) {  // the emulator rounds every input: the result must differ from FP32
    const double e = test::nmse(tf32.to_vector(), ref.to_vector());
    CHECK(e > 1e-10);
  }
}

TEST_CASE("RECON_CUBLAS_CHECK names the expression, the status and file:line" * test::needs_cuda()) {
  auto handle = static_cast<cublasHandle_t>(cuda::cublas_handle());
  Tensor a = Tensor::zeros({4}, kCuda), b = Tensor::zeros({4}, kCuda), c = Tensor::zeros({4}, kCuda);
  const float alpha = 1.f, beta = 0.f;
  try {
    // lda = 1 < m = 2: cuBLAS rejects it before touching memory.
    RECON_CUBLAS_CHECK(
        cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &alpha, a.data(), 1, b.data(), 2, &beta, c.data(), 2));
    FAIL("an invalid leading dimension was accepted");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("cuBLAS error 7") != std::string::npos);
    CHECK(msg.find("cublasSgemm") != std::string::npos);
    CHECK(msg.find("test_cuda_linalg_optim.cpp:") != std::string::npos);
  }
}

// ---- the fused optimizer -------------------------------------------------------------------------------

namespace {

// A handful of parameters of odd sizes (one spanning two chunks, one of a
// single element), one frozen and one that never gets a gradient.
std::vector<Shape> param_shapes() { return {{7}, {33, 5}, {1}, {cuda::kOptimChunk + 3}, {3, 2, 2}, {4}, {5}}; }
constexpr size_t kFrozen = 5, kNoGrad = 6;

struct Params {
  std::vector<Tensor> cpu, dev;
};

Params make_params() {
  Params p;
  int seed = 500;
  for (const Shape& s : param_shapes()) {
    Tensor t = rand_tensor(s, seed++);
    const bool trains = p.cpu.size() != kFrozen;
    p.cpu.push_back(cpu_leaf(t, trains));
    p.dev.push_back(to_cuda(t, trains));
  }
  return p;
}

// Gives every parameter (but kNoGrad) the same fresh random gradient on both devices.
void set_grads(Params& p, int step) {
  for (size_t i = 0; i < p.cpu.size(); ++i) {
    if (i == kNoGrad) continue;
    Tensor g = rand_tensor(p.cpu[i].shape(), 1000 + 31 * step + (int)i, -2.f, 2.f);
    p.cpu[i].set_grad(g);
    p.dev[i].set_grad(g.to(kCuda));
  }
}

// Runs `steps` steps of both optimizers, new gradients on odd steps (even
// steps reuse the gradient buffers: the cached device table), comparing
// parameters and state after each; one kernel launch per CUDA step.
void compare_steps(const std::function<std::unique_ptr<nn::Optimizer>(const std::vector<Tensor>&)>& make, int steps,
                   const std::string& what) {
  test::GuardScope guards;
  Params p = make_params();
  auto cpu_opt = make(p.cpu);
  auto dev_opt = make(p.dev);
  for (int s = 0; s < steps; ++s) {
    if (s % 2 == 0) set_grads(p, s);
    cpu_opt->step();
    reset_range_counts();
    dev_opt->step();
    CHECK_MESSAGE(range_count("multi_tensor_optim_kernel") == 1, what << ": one fused launch per step");
    // No op ran beside it (the update is not a sequence of elementwise ops).
    for (const char* op : {"add_", "add", "mul", "scale", "sqrt", "div", "sub", "add_scalar"})
      CHECK_MESSAGE(range_count(op) == 0, what << ": op " << op << " ran during the step");
    for (size_t i = 0; i < p.cpu.size(); ++i)
      test::check_matches(p.dev[i], p.cpu[i], kOptimNmse,
                          what + " step " + std::to_string(s + 1) + " param " + std::to_string(i));
    nn::StateDict cs = cpu_opt->state_dict(), ds = dev_opt->state_dict();
    REQUIRE(cs.names() == ds.names());
    for (const std::string& name : cs.names()) {
      if (name == "step") {
        CHECK(ds.at(name).item() == cs.at(name).item());
        continue;
      }
      test::check_matches(ds.at(name), cs.at(name), kOptimNmse, what + " state " + name);
    }
  }
  // The frozen and gradient-less parameters never moved.
  test::check_matches(p.dev[kFrozen], p.cpu[kFrozen], 0.0, what + " frozen");
  test::check_matches(p.dev[kNoGrad], p.cpu[kNoGrad], 0.0, what + " no gradient");
}

}  // namespace

TEST_CASE("the fused CUDA optimizer step equals the CPU step, in one launch per step" * test::needs_cuda()) {
  SUBCASE("Adam with L2 weight decay") {
    compare_steps(
        [](const std::vector<Tensor>& ps) {
          return std::make_unique<nn::Adam>(ps, nn::AdamOptions{.lr = 0.01f, .weight_decay = 0.05f});
        },
        5, "Adam");
  }
  SUBCASE("AdamW") {
    compare_steps(
        [](const std::vector<Tensor>& ps) {
          return std::make_unique<nn::AdamW>(
              ps, nn::AdamOptions{.lr = 0.02f, .beta1 = 0.8f, .beta2 = 0.99f, .eps = 1e-6f, .weight_decay = 0.1f});
        },
        5, "AdamW");
  }
  SUBCASE("SGD with Nesterov momentum and weight decay") {
    compare_steps(
        [](const std::vector<Tensor>& ps) {
          return std::make_unique<nn::SGD>(
              ps, nn::SGDOptions{.lr = 0.05f, .momentum = 0.9f, .weight_decay = 0.01f, .nesterov = true});
        },
        4, "SGD Nesterov");
  }
  SUBCASE("SGD with dampened momentum") {
    compare_steps(
        [](const std::vector<Tensor>& ps) {
          return std::make_unique<nn::SGD>(ps, nn::SGDOptions{.lr = 0.05f, .momentum = 0.7f, .dampening = 0.3f});
        },
        4, "SGD dampening");
  }
  SUBCASE("plain SGD (no state buffer)") {
    compare_steps(
        [](const std::vector<Tensor>& ps) { return std::make_unique<nn::SGD>(ps, nn::SGDOptions{.lr = 0.1f}); }, 3,
        "SGD");
  }
}

TEST_CASE("the fused step follows a changing parameter set and gradients dropped by zero_grad" *
          test::needs_cuda()) {
  test::GuardScope guards;
  Params p = make_params();
  nn::Adam cpu_opt(p.cpu, {.lr = 0.01f}), dev_opt(p.dev, {.lr = 0.01f});
  set_grads(p, 0);
  cpu_opt.step();
  dev_opt.step();
  // Step 2: only parameter 1 has a gradient (a smaller table than step 1's).
  cpu_opt.zero_grad();
  dev_opt.zero_grad();
  Tensor g = rand_tensor(p.cpu[1].shape(), 77);
  p.cpu[1].set_grad(g);
  p.dev[1].set_grad(g.to(kCuda));
  reset_range_counts();
  cpu_opt.step();
  dev_opt.step();
  CHECK(range_count("multi_tensor_optim_kernel") == 1);
  for (size_t i = 0; i < p.cpu.size(); ++i)
    test::check_matches(p.dev[i], p.cpu[i], kOptimNmse, "param " + std::to_string(i));
  // No gradient anywhere: nothing to launch.
  cpu_opt.zero_grad();
  dev_opt.zero_grad();
  reset_range_counts();
  dev_opt.step();
  CHECK(range_count("multi_tensor_optim_kernel") == 0);
}

// ---- pinned host memory ------------------------------------------------------------------------------------

TEST_CASE("PinnedBuffer: page-locked memory that copies to the device, move-only" * test::needs_cuda()) {
  cuda::PinnedBuffer buf(6 * sizeof(float));
  REQUIRE_FALSE(buf.empty());
  CHECK(buf.bytes() == 6 * sizeof(float));
  for (int i = 0; i < 6; ++i) buf.as<float>()[i] = 0.5f * (float)i;
  Tensor d = Tensor::empty({6}, kCuda);
  cuda::copy_h2d(d.data(), buf.data(), buf.bytes());
  CHECK(d.to_vector() == std::vector<float>{0.f, 0.5f, 1.f, 1.5f, 2.f, 2.5f});
  void* p = buf.data();
  cuda::PinnedBuffer moved(std::move(buf));
  CHECK(moved.data() == p);
  CHECK(buf.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  CHECK(buf.bytes() == 0);
  cuda::PinnedBuffer assigned;
  assigned = std::move(moved);
  CHECK(assigned.data() == p);
  CHECK(moved.empty());  // NOLINT(bugprone-use-after-move)
}

// ---- RECON_SYNC ------------------------------------------------------------------------------------------------

TEST_CASE("RECON_SYNC=1 turns sync-after-launch on" * test::needs_cuda()) {
  REQUIRE_MESSAGE(g_env.started, g_env.error);
  CHECK(g_env.sync);
  CHECK(cuda::sync_each_launch());
  // Every op of this suite ran with a synchronisation after each launch.
  Tensor y = linear(rand_tensor({3, 4}, 1).to(kCuda), rand_tensor({2, 4}, 2).to(kCuda), rand_tensor({2}, 3).to(kCuda));
  CHECK(y.device().is_cuda());
}

#if defined(RECON_SIMT)
namespace {
// Thread mapping: one thread per element of y (launched below with a bad
// configuration: it must never run).
__global__ void sync_probe_kernel(float* y, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = 1.f;
}
}  // namespace

TEST_CASE("with RECON_SYNC=1 a launch error surfaces at the launch that caused it, not at the next op" *
          test::needs_cuda()) {
  REQUIRE(cuda::sync_each_launch());
  Tensor y = Tensor::zeros({4}, kCuda);
  // 2048 threads per block: an invalid configuration, as in the emulator's tests.
  RECON_LAUNCH(sync_probe_kernel, 1, 2048, 0, static_cast<cudaStream_t>(cuda::stream_handle()))(y.data(), 4);
  try {
    cuda::check_launch("sync_probe_kernel");
    FAIL("the bad launch was not reported");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("sync_probe_kernel") != std::string::npos);
    CHECK(msg.find("invalid configuration") != std::string::npos);
  }
  CHECK(y.to_vector() == std::vector<float>(4, 0.f));  // the kernel did not run
  // The error was consumed where it happened: the next op's launches are clean.
  Tensor g = rand_tensor({5, 3}, 4).to(kCuda);
  Tensor db = Tensor::empty({3}, kCuda);
  CHECK_NOTHROW(cuda::linear_backward_bias(g.data(), db.data(), 5, 3));
  // And an error left pending is blamed on the next launch's check: why every
  // launch is checked right after it.
  RECON_LAUNCH(sync_probe_kernel, 1, 2048, 0, static_cast<cudaStream_t>(cuda::stream_handle()))(y.data(), 4);
  CHECK_THROWS_WITH_AS(cuda::linear_backward_bias(g.data(), db.data(), 5, 3),
                       doctest::Contains("column_sum_kernel"), Error);
}
#endif

#endif  // RECON_WITH_CUDA
