// The CPU convolution's AVX-512 product (kernels/cpu/conv_gemm_avx512.cpp)
// against a product accumulated in double, on shapes that cut every block of
// its loop nest (micro-tile edges, k, row and column blocks), all four
// transpose cases, beta 0, 1 and 0.5, padded leading dimensions, the
// transposed route for narrow outputs, bitwise-equal results on 1 and 2
// threads; and the kernel choice (RECON_CPU_CONV, set_conv_product) with
// conv2d agreeing under both kernels. On a CPU without AVX-512F the kernel
// cases are skipped and say so. (tests/CMakeLists.txt also runs the whole
// test_ops_conv suite a second time with RECON_CPU_CONV=blas.)
#include <doctest/doctest.h>
#include <omp.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/conv_gemm.hpp"
#include "runtime/error.hpp"
#include "runtime/ops.hpp"
#include "tests/gradcheck.hpp"

using namespace recon;

namespace {

const bool kNoAvx512 = [] {
  if (!cpu::cpu_has_avx512()) std::printf("this CPU has no AVX-512F: the AVX-512 product cases are skipped\n");
  return !cpu::cpu_has_avx512();
}();

struct GemmCase {
  bool ta, tb;
  int64_t m, n, k;
  float beta;
  int64_t pad = 0;  // extra columns in every leading dimension
};

std::string case_str(const GemmCase& c) {
  return std::string("trans ") + (c.ta ? "T" : "N") + (c.tb ? "T" : "N") + " m " + std::to_string(c.m) + " n " +
         std::to_string(c.n) + " k " + std::to_string(c.k) + " beta " + std::to_string(c.beta) + " pad " +
         std::to_string(c.pad);
}

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// Runs one case: C gets a sentinel in its padding columns (must survive) and,
// for beta 0, NaN in its body (must not be read).
void check_case(const GemmCase& c, uint32_t seed) {
  INFO(case_str(c));
  const int64_t a_rows = c.ta ? c.k : c.m, a_cols = c.ta ? c.m : c.k;
  const int64_t b_rows = c.tb ? c.n : c.k, b_cols = c.tb ? c.k : c.n;
  const int64_t lda = a_cols + c.pad, ldb = b_cols + c.pad, ldc = c.n + c.pad;
  const std::vector<float> a = random_floats((size_t)(a_rows * lda), seed);
  const std::vector<float> b = random_floats((size_t)(b_rows * ldb), seed + 1);
  std::vector<float> c0 = random_floats((size_t)(c.m * ldc), seed + 2);
  constexpr float kSentinel = 12345.f;
  for (int64_t i = 0; i < c.m; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      float& v = c0[(size_t)(i * ldc + j)];
      if (j >= c.n) v = kSentinel;
      else if (c.beta == 0.f) v = std::numeric_limits<float>::quiet_NaN();
    }
  std::vector<float> got = c0;
  cpu::sgemm_avx512(c.ta, c.tb, c.m, c.n, c.k, a.data(), lda, b.data(), ldb, c.beta, got.data(), ldc);
  double worst = 0;
  bool sentinel_ok = true;
  for (int64_t i = 0; i < c.m; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      const float g = got[(size_t)(i * ldc + j)];
      if (j >= c.n) {
        sentinel_ok = sentinel_ok && g == kSentinel;
        continue;
      }
      double want = c.beta == 0.f ? 0.0 : (double)c.beta * c0[(size_t)(i * ldc + j)];
      double mag = std::fabs(want);
      for (int64_t p = 0; p < c.k; ++p) {
        const double av = c.ta ? a[(size_t)(p * lda + i)] : a[(size_t)(i * lda + p)];
        const double bv = c.tb ? b[(size_t)(j * ldb + p)] : b[(size_t)(p * ldb + j)];
        want += av * bv;
        mag += std::fabs(av * bv);
      }
      // float sums of k terms: error below k * eps * sum |terms| (a loose bound, 4x the usual sqrt-k slack)
      const double err = std::fabs(g - want) / (1e-6 + 4 * 1.2e-7 * std::sqrt((double)c.k + 1) * (mag + 1));
      worst = std::max(worst, std::isfinite(g) ? err : std::numeric_limits<double>::infinity());
    }
  }
  CHECK(sentinel_ok);
  CHECK(worst <= 1.0);
}

}  // namespace

TEST_CASE("the AVX-512 product matches a double product on shapes that cut every block" * doctest::skip(kNoAvx512)) {
  // Micro-tile 8 x 48, k blocks of 128, row blocks of 128, column blocks of 3072 (conv_gemm_avx512.cpp).
  const std::vector<GemmCase> cases = {
      {false, false, 1, 1, 1, 0.f},          {false, false, 8, 48, 128, 0.f},  // exactly one tile, one k block
      {false, false, 9, 49, 129, 0.f},       {false, false, 7, 47, 127, 1.f},  // one past / one short of each
      {false, false, 130, 100, 300, 0.5f},   // two row blocks, three k blocks, beta 0.5
      {false, false, 3, 3100, 5, 0.f},       // two column blocks
      {true, false, 33, 97, 65, 0.f, 3},     // A transposed, padded leading dimensions
      {false, true, 40, 200, 260, 1.f, 5},   // B transposed (the weight gradient), accumulating
      {true, true, 17, 61, 31, 0.5f, 1},     // both transposed
      {false, false, 32, 9, 1000, 0.f},      // narrow: runs as C^T (the 1-channel layer's weight gradient)
      {false, true, 64, 27, 513, 1.f, 2},    // narrow, B transposed, accumulating
      {true, false, 9, 5, 7, 0.f},           // narrow but not tall: stays as it is
      {false, false, 128, 25088, 288, 0.f},  // the RotNet's second layer forward at batch 32 (128 images)
  };
  uint32_t seed = 1;
  for (const GemmCase& c : cases) check_case(c, seed += 3);
}

TEST_CASE("the AVX-512 product with k = 0 scales C by beta" * doctest::skip(kNoAvx512)) {
  std::vector<float> c = {1.f, 2.f, 3.f, 4.f, 5.f, 6.f};
  cpu::sgemm_avx512(false, false, 2, 3, 0, nullptr, 1, nullptr, 3, 0.5f, c.data(), 3);
  CHECK(c == std::vector<float>{0.5f, 1.f, 1.5f, 2.f, 2.5f, 3.f});
  std::vector<float> nan(6, std::numeric_limits<float>::quiet_NaN());
  cpu::sgemm_avx512(false, false, 2, 3, 0, nullptr, 1, nullptr, 3, 0.f, nan.data(), 3);
  CHECK(nan == std::vector<float>(6, 0.f));
}

TEST_CASE("the AVX-512 product gives the same bits on 1 and 2 threads" * doctest::skip(kNoAvx512)) {
  for (const GemmCase& c : {GemmCase{false, false, 64, 2000, 300, 0.f}, GemmCase{false, true, 64, 576, 3000, 0.f},
                            GemmCase{false, false, 32, 9, 20000, 0.f}}) {
    INFO(case_str(c));
    const std::vector<float> a = random_floats((size_t)(c.m * c.k), 7);
    const std::vector<float> b = random_floats((size_t)(c.k * c.n), 8);
    std::vector<float> out[2];
    const int before = omp_get_max_threads();
    for (int t = 0; t < 2; ++t) {
      omp_set_num_threads(t + 1);
      out[t].assign((size_t)(c.m * c.n), 0.f);
      cpu::sgemm_avx512(c.ta, c.tb, c.m, c.n, c.k, a.data(), c.ta ? c.m : c.k, b.data(), c.tb ? c.k : c.n, 0.f,
                        out[t].data(), c.n);
    }
    omp_set_num_threads(before);
    CHECK(out[0] == out[1]);
  }
}

TEST_CASE("conv2d and conv_transpose2d agree under the OpenBLAS and the AVX-512 products" *
          doctest::skip(kNoAvx512)) {
  // The AVX-512 route packs the im2col matrix straight from the images in the
  // forward and weight-gradient products (48 taps or more), so the shapes
  // cover its index math: the RotNet's downsampling layer, a 1-channel first
  // layer (stored-col route for the weight gradient), dilation, per-axis
  // stride and padding, a non-square kernel, odd sizes, a conv_transpose2d.
  struct Case {
    int n, ci, h, w, co, kh, kw;
    std::array<int, 2> stride, pad, dil;
    bool transposed = false;
  };
  const std::vector<Case> cases = {
      {8, 32, 14, 14, 64, 3, 3, {2, 2}, {1, 1}, {1, 1}},
      {16, 1, 28, 28, 32, 3, 3, {1, 1}, {1, 1}, {1, 1}},
      {3, 7, 13, 11, 10, 3, 3, {1, 1}, {2, 2}, {2, 2}},
      {5, 6, 9, 12, 9, 3, 4, {2, 1}, {0, 2}, {1, 2}},
      {4, 16, 7, 7, 24, 3, 3, {2, 2}, {1, 1}, {1, 1}, true},
  };
  const cpu::ConvProduct before = cpu::conv_product();
  for (const Case& c : cases) {
    INFO("x (" << c.n << ", " << c.ci << ", " << c.h << ", " << c.w << ") co " << c.co << " k " << c.kh << "x" << c.kw
               << " stride " << c.stride[0] << "," << c.stride[1] << " pad " << c.pad[0] << "," << c.pad[1]
               << " dil " << c.dil[0] << "," << c.dil[1] << (c.transposed ? " transposed" : ""));
    std::vector<float> res[2][4];
    for (int kind = 0; kind < 2; ++kind) {
      cpu::set_conv_product(kind == 0 ? cpu::ConvProduct::kBlas : cpu::ConvProduct::kAvx512);
      CHECK(cpu::conv_product_name() == (kind == 0 ? "OpenBLAS" : "avx512 (ours)"));
      Tensor x = test::rand_tensor({c.n, c.ci, c.h, c.w}, 31).set_requires_grad(true);
      Tensor w = (c.transposed ? test::rand_tensor({c.ci, c.co, c.kh, c.kw}, 32)
                               : test::rand_tensor({c.co, c.ci, c.kh, c.kw}, 32))
                     .set_requires_grad(true);
      Tensor b = test::rand_tensor({c.co}, 33).set_requires_grad(true);
      Tensor y = c.transposed ? conv_transpose2d(x, w, b, ConvTranspose2dOptions{c.stride, c.pad, {1, 1}, c.dil})
                              : conv2d(x, w, b, Conv2dOptions{c.stride, c.pad, c.dil});
      y.backward(test::rand_tensor(y.shape(), 34));
      res[kind][0] = y.to_vector();
      res[kind][1] = x.grad().to_vector();
      res[kind][2] = w.grad().to_vector();
      res[kind][3] = b.grad().to_vector();
    }
    const char* names[4] = {"forward", "data gradient", "weight gradient", "bias gradient"};
    for (int t = 0; t < 4; ++t) {
      INFO(names[t]);
      REQUIRE(res[0][t].size() == res[1][t].size());
      double err = 0, norm = 0;
      for (size_t i = 0; i < res[0][t].size(); ++i) {
        err += std::pow((double)res[0][t][i] - res[1][t][i], 2);
        norm += std::pow((double)res[0][t][i], 2);
      }
      CHECK(norm > 0);
      CHECK(err / norm < 1e-10);  // two float sums of the same terms in different orders
    }
  }
  cpu::set_conv_product(before);
}

TEST_CASE("the conv product choice resolves kAuto by the CPU and reads back") {
  const cpu::ConvProduct before = cpu::conv_product();
  cpu::set_conv_product(cpu::ConvProduct::kAuto);
  CHECK(cpu::conv_product_name() == (cpu::cpu_has_avx512() ? "avx512 (ours)" : "OpenBLAS"));
  cpu::set_conv_product(cpu::ConvProduct::kBlas);
  CHECK(cpu::conv_product() == cpu::ConvProduct::kBlas);
  CHECK(cpu::conv_product_name() == "OpenBLAS");
  if (!cpu::cpu_has_avx512()) {
    CHECK_THROWS_WITH_AS(cpu::set_conv_product(cpu::ConvProduct::kAvx512),
                         doctest::Contains("no AVX-512F"), recon::Error);
  }
  cpu::set_conv_product(before);
}
