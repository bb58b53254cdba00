// conv2d and conv_transpose2d on CUDA (a real GPU or the SIMT emulator)
// against the CPU: forward, data gradient, weight gradient and bias gradient
// through the ops (autograd), on awkward small shapes that reach both kernel
// families (direct for 1-3 channels, implicit GEMM otherwise), the split-K
// reduction of every pass (forward, data gradient, weight gradient; with bias,
// stride, padding, dilation, slices of unequal length and empty ones), stride
// phases without taps, tiles cut by the channel counts; then each launcher with
// its path forced both ways, the split rule on the models' deep layers,
// run-to-run determinism, and a frozen layer running no weight-gradient kernel.
//
// Thresholds (normalised MSE): the CUDA kernels sum the same products as the
// CPU's im2col + GEMM in another order, in float, over at most ~900 terms per
// output (weight gradient: ~450): rounding gives ~1e-14; 1e-10 leaves room
// for the order and still fails on any wrong tap, channel or pixel (one
// wrong term out of hundreds is ~1e-3).
#include <doctest/doctest.h>

#include <array>
#include <string>
#include <vector>

#include "kernels/cpu/conv.hpp"
#include "kernels/cuda/conv.hpp"
#include "runtime/cuda_context.hpp"
#include "runtime/ops.hpp"
#include "runtime/profile.hpp"
#include "tests/cuda_compare.hpp"
#include "tests/gradcheck.hpp"

using namespace recon;
using recon::test::check_matches;
using recon::test::rand_tensor;

// The launchers exist in CUDA and SIM builds only; a CPU-only build keeps one
// case, reported as skipped.
#if defined(RECON_WITH_CUDA)
namespace {

constexpr double kConvNmse = 1e-10;  // see the file comment

// One layer: conv2d x (n, ci, h, w) -> co channels, or conv_transpose2d
// x (n, ci, h, w) with weight (ci, co, kh, kw).
struct Case {
  const char* name;
  bool transposed;
  int n, ci, h, w, co, kh, kw;
  std::array<int, 2> stride{1, 1}, padding{0, 0}, dilation{1, 1}, output_padding{0, 0};
  cuda::ConvPath expect_path;  // what the launcher picks automatically
  bool expect_split = false;   // the weight gradient splits its reduction
  // the conv2d-view forward / data gradient split theirs (conv_transpose2d: its data gradient / forward)
  bool expect_forward_split = false, expect_data_split = false;
};

// conv2d-view geometry of a case (as runtime/ops_conv.cpp builds it).
ConvGeometry geometry(const Case& c) {
  ConvGeometry g;
  g.n = c.n, g.kh = c.kh, g.kw = c.kw;
  g.stride_h = c.stride[0], g.stride_w = c.stride[1];
  g.pad_h = c.padding[0], g.pad_w = c.padding[1];
  g.dil_h = c.dilation[0], g.dil_w = c.dilation[1];
  if (!c.transposed) {
    g.c_in = c.ci, g.h = c.h, g.w = c.w, g.c_out = c.co;
    conv2d_set_output(g);
  } else {
    g.c_out = c.ci, g.ho = c.h, g.wo = c.w, g.c_in = c.co;
    conv_transpose2d_set_output(g, c.output_padding[0], c.output_padding[1]);
  }
  return g;
}

Tensor run_layer(const Case& c, const Tensor& x, const Tensor& w, const Tensor& b) {
  if (c.transposed) return conv_transpose2d(x, w, b, {c.stride, c.padding, c.output_padding, c.dilation});
  return conv2d(x, w, b, {c.stride, c.padding, c.dilation});
}

struct Result {
  Tensor y, gx, gw, gb;
};

// A new leaf on `device` holding t's values.
Tensor fresh_leaf(const Tensor& t, Device device) { return device == t.device() ? t.clone() : t.to(device); }

// Forward and backward (upstream gradient gy) of case c on `device` from the CPU tensors given.
Result forward_backward(const Case& c, Device device, const Tensor& x0, const Tensor& w0, const Tensor& b0,
                        const Tensor& gy0) {
  Tensor x = fresh_leaf(x0, device), w = fresh_leaf(w0, device), b = fresh_leaf(b0, device);
  x.set_requires_grad(true);
  w.set_requires_grad(true);
  b.set_requires_grad(true);
  Tensor y = run_layer(c, x, w, b);
  y.backward(gy0.to(device));
  return {y.detach(), x.grad(), w.grad(), b.grad()};
}

void check_case(const Case& c) {
  const ConvGeometry g = geometry(c);
  INFO(std::string(c.name));
  CHECK(cuda::conv_path(g) == c.expect_path);
  CHECK((cuda::conv_splits(g, cuda::ConvPass::kBackwardWeight) > 1) == c.expect_split);
  CHECK((cuda::conv_splits(g, cuda::ConvPass::kForward) > 1) == c.expect_forward_split);
  CHECK((cuda::conv_splits(g, cuda::ConvPass::kBackwardData) > 1) == c.expect_data_split);
  const Shape w_shape = c.transposed ? Shape{c.ci, c.co, c.kh, c.kw} : Shape{c.co, c.ci, c.kh, c.kw};
  Tensor x = rand_tensor({c.n, c.ci, c.h, c.w}, 11), w = rand_tensor(w_shape, 12), b = rand_tensor({c.co}, 13);
  const Shape y_shape = c.transposed ? Shape{g.n, g.c_in, g.h, g.w} : Shape{g.n, g.c_out, g.ho, g.wo};
  Tensor gy = rand_tensor(y_shape, 14);
  test::GuardScope guards;
  const Result ref = forward_backward(c, Device::cpu(), x, w, b, gy);
  const Result got = forward_backward(c, Device::cuda(), x, w, b, gy);
  check_matches(got.y, ref.y, kConvNmse, std::string(c.name) + ": forward");
  check_matches(got.gx, ref.gx, kConvNmse, std::string(c.name) + ": data gradient");
  check_matches(got.gw, ref.gw, kConvNmse, std::string(c.name) + ": weight gradient");
  check_matches(got.gb, ref.gb, kConvNmse, std::string(c.name) + ": bias gradient");
}

constexpr auto kDirect = cuda::ConvPath::kDirect;
constexpr auto kTiled = cuda::ConvPath::kTiled;

}  // namespace

TEST_CASE("conv2d on CUDA matches the CPU: direct kernels (1-3 channels)" * test::needs_cuda()) {
  const std::vector<Case> cases = {
      {"batch 1, 1 -> 4 channels, 5x7, pad 1", false, 1, 1, 5, 7, 4, 3, 3, {1, 1}, {1, 1}, {1, 1}, {0, 0}, kDirect},
      {"3 -> 5 channels, 9x6, stride 2, pad 1", false, 2, 3, 9, 6, 5, 3, 3, {2, 2}, {1, 1}, {1, 1}, {0, 0}, kDirect},
      {"6 -> 3 channels, 8x7, pad 0", false, 2, 6, 8, 7, 3, 3, 3, {1, 1}, {0, 0}, {1, 1}, {0, 0}, kDirect},
      {"5 -> 1 channel, 7x9, dilation 2, pad 2", false, 2, 5, 7, 9, 1, 3, 3, {1, 1}, {2, 2}, {2, 2}, {0, 0},
       kDirect},
  };
  for (const Case& c : cases) check_case(c);
}

TEST_CASE("conv2d on CUDA matches the CPU: implicit GEMM" * test::needs_cuda()) {
  const std::vector<Case> cases = {
      {"5 -> 7 channels, 9x11, stride 2, pad 1", false, 2, 5, 9, 11, 7, 3, 3, {2, 2}, {1, 1}, {1, 1}, {0, 0}, kTiled},
      {"batch 1, 4 -> 6, 10x9, kernel 3x2, dilation 2", false, 1, 4, 10, 9, 6, 3, 2, {1, 1}, {1, 1}, {2, 2}, {0, 0},
       kTiled},
      {"4 -> 4, 7x8, stride 2, pad 0", false, 2, 4, 7, 8, 4, 3, 3, {2, 2}, {0, 0}, {1, 1}, {0, 0}, kTiled},
      // stride 2 with dilation 2 and pad 1: even rows are reached by no tap (a phase with an empty reduction)
      {"4 -> 5, 11x9, stride 2, pad 1, dilation (2, 1)", false, 1, 4, 11, 9, 5, 3, 3, {2, 2}, {1, 1}, {2, 1}, {0, 0},
       kTiled},
      // 66 and 67 channels: two tiles along n in every pass, the second nearly empty; K = 594 and 603:
      // the forward and data gradient split in 3
      {"batch 1, 66 -> 67 channels, 5x6", false, 1, 66, 5, 6, 67, 3, 3, {1, 1}, {1, 1}, {1, 1}, {0, 0}, kTiled,
       false, true, true},
      // reduction n ho wo = 432 > 256: the weight gradient splits in two and reduces the partials
      {"4 -> 5, 12x12, split weight gradient", false, 3, 4, 12, 12, 5, 3, 3, {1, 1}, {1, 1}, {1, 1}, {0, 0}, kTiled,
       true},
  };
  for (const Case& c : cases) check_case(c);
}

TEST_CASE("conv2d on CUDA matches the CPU: split-K forward and data gradient" * test::needs_cuda()) {
  // One or two output tiles each, so the reduction K = c_in kh kw (forward) or c_out taps (data gradient)
  // sets the split: ceil(K / 256) slices of ceil(K / splits) rounded up to 16.
  const std::vector<Case> cases = {
      // forward K = 270: slices 144 + 126 (K not a multiple of the slice length)
      {"30 -> 8, 6x6, pad 1, split forward", false, 2, 30, 6, 6, 8, 3, 3, {1, 1}, {1, 1}, {1, 1}, {0, 0}, kTiled,
       false, true, false},
      // forward K = 360 (192 + 168), stride 2, pad 2, dilation 2; data gradient K = 30 x 9 taps = 270 in one
      // phase of four (the rest hold fewer taps: their second slice is empty)
      {"40 -> 30, 9x9, stride 2, pad 2, dilation 2, split forward and data gradient", false, 2, 40, 9, 9, 30, 3, 3,
       {2, 2}, {2, 2}, {2, 2}, {0, 0}, kTiled, false, true, true},
      // forward K = 900: 4 slices (240 240 240 180), kernel 3x3, stride (2, 1), pad (1, 0)
      {"100 -> 5, 7x6, stride (2, 1), split forward in 4", false, 1, 100, 7, 6, 5, 3, 3, {2, 1}, {1, 0}, {1, 1},
       {0, 0}, kTiled, false, true, false},
  };
  for (const Case& c : cases) {
    const ConvGeometry g = geometry(c);
    if (c.expect_forward_split) CHECK(cuda::conv_splits(g, cuda::ConvPass::kForward) > 1);
    check_case(c);
  }
  CHECK(cuda::conv_splits(geometry(cases[2]), cuda::ConvPass::kForward) == 4);
}

TEST_CASE("conv_transpose2d on CUDA matches the CPU" * test::needs_cuda()) {
  const std::vector<Case> cases = {
      {"3 -> 4 channels, 4x5, stride 2, output_padding 1", true, 2, 3, 4, 5, 4, 3, 3, {2, 2}, {1, 1}, {1, 1}, {1, 1},
       kDirect},
      {"batch 1, 5 -> 1 channel, 5x4, stride 2", true, 1, 5, 5, 4, 1, 3, 3, {2, 2}, {1, 1}, {1, 1}, {1, 1}, kDirect},
      {"6 -> 5, 4x3, stride 2, output_padding 1", true, 2, 6, 4, 3, 5, 3, 3, {2, 2}, {1, 1}, {1, 1}, {1, 1}, kTiled},
      {"batch 1, 4 -> 5, 5x6, stride 1, pad 0", true, 1, 4, 5, 6, 5, 3, 3, {1, 1}, {0, 0}, {1, 1}, {0, 0}, kTiled},
      {"5 -> 4, 4x4, stride 2, pad 0, dilation 2", true, 2, 5, 4, 4, 4, 3, 3, {2, 2}, {0, 0}, {2, 2}, {1, 1},
       kTiled},
      {"5 -> 4, 12x10, split weight gradient", true, 3, 5, 12, 10, 4, 3, 3, {1, 1}, {1, 1}, {1, 1}, {0, 0}, kTiled,
       true},
      // its forward (the conv2d-view data gradient, bias fused) splits: K = 80 x 4 taps = 320 in the largest
      // stride phase, 2 slices of 160; the phases with 2 and 1 taps (160, 80) leave their second slice empty
      {"80 -> 6, 3x3, stride 2, split forward", true, 1, 80, 3, 3, 6, 3, 3, {2, 2}, {1, 1}, {1, 1}, {1, 1}, kTiled,
       false, false, true},
  };
  for (const Case& c : cases) check_case(c);
}

TEST_CASE("each conv launcher matches the CPU kernel with its path forced either way" * test::needs_cuda()) {
  // Geometries the automatic choice sends to one family, run through both.
  const std::vector<Case> cases = {
      {"1 -> 4 channels, 6x5, pad 1", false, 2, 1, 6, 5, 4, 3, 3, {1, 1}, {1, 1}, {1, 1}, {0, 0}, kDirect},
      {"5 -> 6, 7x9, stride 2, dilation 2", false, 1, 5, 7, 9, 6, 3, 3, {2, 2}, {2, 2}, {2, 2}, {0, 0}, kTiled},
      {"6 -> 4, 15x12, stride (2, 1), pad (1, 0)", false, 4, 6, 15, 12, 4, 3, 3, {2, 1}, {1, 0}, {1, 1}, {0, 0}, kTiled,
       true},
      // forward K = 270, data gradient K = 360: both split in 2 (with bias)
      {"30 -> 40, 5x5, pad 1, split forward and data gradient", false, 1, 30, 5, 5, 40, 3, 3, {1, 1}, {1, 1},
       {1, 1}, {0, 0}, kTiled, false, true, true},
  };
  for (const Case& c : cases) {
    const ConvGeometry g = geometry(c);
    const Tensor x = rand_tensor({g.n, g.c_in, g.h, g.w}, 21), w = rand_tensor({g.c_out, g.c_in, g.kh, g.kw}, 22);
    const Tensor b = rand_tensor({g.c_out}, 23), b_in = rand_tensor({g.c_in}, 24);
    const Tensor dy = rand_tensor({g.n, g.c_out, g.ho, g.wo}, 25);
    // CPU references: y = conv + b, dx = data gradient + b_in (conv_transpose2d's fused bias), dw.
    Tensor y_ref = Tensor::empty(dy.shape()), dx_ref = Tensor::empty(x.shape()), dw_ref = Tensor::empty(w.shape());
    cpu::conv2d_forward(g, x.data(), w.data(), b.data(), y_ref.data());
    cpu::conv2d_backward_data(g, dy.data(), w.data(), dx_ref.data());
    cpu::add_channel_bias(dx_ref.data(), b_in.data(), g.n, g.c_in, (int64_t)g.h * g.w);
    cpu::conv2d_backward_weight(g, x.data(), dy.data(), dw_ref.data());
    for (cuda::ConvPath path : {kDirect, kTiled}) {
      INFO(c.name << (path == kDirect ? " (direct)" : " (implicit GEMM)"));
      test::GuardScope guards;
      const Device d = Device::cuda();
      const Tensor xd = x.to(d), wd = w.to(d), bd = b.to(d), b_ind = b_in.to(d), dyd = dy.to(d);
      Tensor y = Tensor::empty(y_ref.shape(), d), dx = Tensor::empty(dx_ref.shape(), d);
      Tensor dw = Tensor::empty(dw_ref.shape(), d);
      const int64_t ws_fwd = cuda::conv_workspace(g, cuda::ConvPass::kForward, path);
      const int64_t ws_data = cuda::conv_workspace(g, cuda::ConvPass::kBackwardData, path);
      const int64_t ws_weight = cuda::conv_workspace(g, cuda::ConvPass::kBackwardWeight, path);
      CHECK((ws_fwd > 0) == (path == kTiled && c.expect_forward_split));
      CHECK((ws_data > 0) == (path == kTiled && c.expect_data_split));
      CHECK((ws_weight > 0) == (path == kTiled && c.expect_split));
      // Exactly sized (the guards catch a partial output written past the end), one per pass.
      Tensor ws_f = Tensor::empty({std::max<int64_t>(ws_fwd, 1)}, d);
      Tensor ws_d = Tensor::empty({std::max<int64_t>(ws_data, 1)}, d);
      Tensor ws = Tensor::empty({std::max<int64_t>(ws_weight, 1)}, d);
      cuda::conv2d_forward(g, xd.data(), wd.data(), bd.data(), ws_f.data(), y.data(), path);
      cuda::conv2d_backward_data(g, dyd.data(), wd.data(), b_ind.data(), ws_d.data(), dx.data(), path);
      cuda::conv2d_backward_weight(g, xd.data(), dyd.data(), ws.data(), dw.data(), path);
      check_matches(y, y_ref, kConvNmse, "forward");
      check_matches(dx, dx_ref, kConvNmse, "data gradient + bias");
      check_matches(dw, dw_ref, kConvNmse, "weight gradient");
      CHECK_NOTHROW(cuda::check_guards(ws.impl()->storage->data()));
      CHECK_NOTHROW(cuda::check_guards(ws_f.impl()->storage->data()));
      CHECK_NOTHROW(cuda::check_guards(ws_d.impl()->storage->data()));
    }
  }
}

TEST_CASE("the conv bias gradient matches the CPU on odd sizes" * test::needs_cuda()) {
  // n hw = 3 * 37 = 111 (fewer than one block's threads) and 2 * 150 = 300 (several elements per thread).
  for (const Shape& s : {Shape{3, 5, 1, 37}, Shape{2, 3, 10, 15}}) {
    INFO(shape_str(s));
    test::GuardScope guards;
    const Tensor dy = rand_tensor(s, 31);
    Tensor ref = Tensor::empty({s[1]});
    cpu::conv2d_backward_bias(dy.data(), ref.data(), s[0], s[1], s[2] * s[3]);
    const Tensor dyd = dy.to(Device::cuda());
    Tensor got = Tensor::empty({s[1]}, Device::cuda());
    cuda::conv2d_backward_bias(dyd.data(), got.data(), s[0], s[1], s[2] * s[3]);
    check_matches(got, ref, 1e-12, "bias gradient");  // 300 terms per channel, float vs double sums
  }
}

TEST_CASE("the split-K rule on the models' deep layers (batch 32)" * test::needs_cuda()) {
  // The numbers in kernels/cuda/conv.cu's comment on the rule: output tiles x slices.
  auto geom = [](int hw, int ci, int co) {
    ConvGeometry g;
    g.n = 32, g.c_in = ci, g.h = hw, g.w = hw, g.c_out = co, g.kh = 3, g.kw = 3, g.pad_h = 1, g.pad_w = 1;
    conv2d_set_output(g);
    return g;
  };
  CHECK(cuda::conv_splits(geom(7, 64, 64), cuda::ConvPass::kForward) == 3);     // 25 tiles -> 75 blocks
  CHECK(cuda::conv_splits(geom(7, 128, 128), cuda::ConvPass::kForward) == 5);   // 50 tiles -> 250 blocks
  CHECK(cuda::conv_splits(geom(14, 64, 128), cuda::ConvPass::kForward) == 2);   // 196 tiles -> 392 blocks
  CHECK(cuda::conv_splits(geom(14, 128, 128), cuda::ConvPass::kForward) == 2);  // 196 tiles -> 392 blocks
  CHECK(cuda::conv_splits(geom(7, 64, 64), cuda::ConvPass::kBackwardWeight) == 7);  // 9 tiles -> 63 blocks
  CHECK(cuda::conv_splits(geom(28, 64, 64), cuda::ConvPass::kForward) == 1);    // 392 tiles already fill it
  CHECK(cuda::conv_splits(geom(7, 64, 64), cuda::ConvPass::kForward, cuda::ConvPath::kDirect) == 1);
  CHECK(cuda::conv_workspace(geom(7, 64, 64), cuda::ConvPass::kForward) == 3LL * 32 * 64 * 49);
}

TEST_CASE("the split forward and data gradient are bitwise reproducible" * test::needs_cuda()) {
  const Case c{"30 -> 40, 5x5", false, 1, 30, 5, 5, 40, 3, 3, {1, 1}, {1, 1}, {1, 1}, {0, 0}, kTiled};
  const ConvGeometry g = geometry(c);
  REQUIRE(cuda::conv_splits(g, cuda::ConvPass::kForward) > 1);
  REQUIRE(cuda::conv_splits(g, cuda::ConvPass::kBackwardData) > 1);
  const Device d = Device::cuda();
  const Tensor x = rand_tensor({g.n, g.c_in, g.h, g.w}, 43).to(d), w = rand_tensor({g.c_out, g.c_in, g.kh, g.kw}, 44).to(d);
  const Tensor b = rand_tensor({g.c_out}, 45).to(d), dy = rand_tensor({g.n, g.c_out, g.ho, g.wo}, 46).to(d);
  Tensor ws = Tensor::empty({std::max(cuda::conv_workspace(g, cuda::ConvPass::kForward),
                                      cuda::conv_workspace(g, cuda::ConvPass::kBackwardData))},
                            d);
  std::vector<std::vector<float>> ys, dxs;
  for (int r = 0; r < 2; ++r) {
    Tensor y = Tensor::empty({g.n, g.c_out, g.ho, g.wo}, d), dx = Tensor::empty({g.n, g.c_in, g.h, g.w}, d);
    cuda::conv2d_forward(g, x.data(), w.data(), b.data(), ws.data(), y.data());
    cuda::conv2d_backward_data(g, dy.data(), w.data(), nullptr, ws.data(), dx.data());
    ys.push_back(y.to_vector());
    dxs.push_back(dx.to_vector());
  }
  CHECK(ys[0] == ys[1]);
  CHECK(dxs[0] == dxs[1]);
}

TEST_CASE("the split weight gradient is bitwise reproducible" * test::needs_cuda()) {
  const Case c{"4 -> 5, 12x12", false, 3, 4, 12, 12, 5, 3, 3, {1, 1}, {1, 1}, {1, 1}, {0, 0}, kTiled, true};
  const ConvGeometry g = geometry(c);
  REQUIRE(cuda::conv_splits(g, cuda::ConvPass::kBackwardWeight) > 1);
  const Device d = Device::cuda();
  const Tensor x = rand_tensor({g.n, g.c_in, g.h, g.w}, 41).to(d), dy = rand_tensor({g.n, g.c_out, g.ho, g.wo}, 42).to(d);
  Tensor ws = Tensor::empty({cuda::conv_workspace(g, cuda::ConvPass::kBackwardWeight)}, d);
  std::vector<std::vector<float>> runs;
  for (int r = 0; r < 2; ++r) {
    Tensor dw = Tensor::empty({g.c_out, g.c_in, g.kh, g.kw}, d);
    cuda::conv2d_backward_weight(g, x.data(), dy.data(), ws.data(), dw.data());
    runs.push_back(dw.to_vector());
  }
  CHECK(runs[0] == runs[1]);
}

TEST_CASE("a frozen conv layer on CUDA runs no weight- or bias-gradient kernel" * test::needs_cuda()) {
  for (bool transposed : {false, true}) {
    const std::string op = transposed ? "conv_transpose2d" : "conv2d";
    INFO(op);
    const Device d = Device::cuda();
    auto run = [&](const Tensor& x, const Tensor& w, const Tensor& b) {
      return transposed ? conv_transpose2d(x, w, b, {{2, 2}, {1, 1}, {1, 1}}) : conv2d(x, w, b, {{2, 2}, {1, 1}});
    };
    Tensor x = rand_tensor({2, 4, 6, 6}, 51).to(d);
    Tensor w = rand_tensor(transposed ? Shape{4, 5, 3, 3} : Shape{5, 4, 3, 3}, 52).to(d);
    Tensor b = rand_tensor({5}, 53).to(d);

    // Frozen weight and bias (stage 2's encoder under a trained layer): only the data gradient runs.
    x.set_requires_grad(true);
    reset_range_counts();
    Tensor y = run(x, w, b);
    y.backward(Tensor::ones(y.shape(), d));
    CHECK(range_count(op + "_backward_data") == 1);
    CHECK(range_count(op + "_backward_weight") == 0);
    CHECK(range_count(op + "_backward_bias") == 0);
    CHECK(x.grad().defined());
    CHECK_FALSE(w.grad().defined());
    CHECK_FALSE(b.grad().defined());

    // A trained first layer (input without gradient): no data-gradient kernel.
    x.set_requires_grad(false);
    x.zero_grad();
    w.set_requires_grad(true);
    b.set_requires_grad(true);
    reset_range_counts();
    y = run(x, w, b);
    y.backward(Tensor::ones(y.shape(), d));
    CHECK(range_count(op + "_backward_data") == 0);
    CHECK(range_count(op + "_backward_weight") == 1);
    CHECK(range_count(op + "_backward_bias") == 1);
    CHECK(w.grad().defined());
    CHECK(b.grad().defined());
  }
}
#else
TEST_CASE("conv2d and conv_transpose2d on CUDA match the CPU" * test::needs_cuda()) {}
#endif
