// Which kernel the CPU convolution multiplies with (see conv_gemm.hpp): the
// choice, its environment override and the dispatch. Compiled with the
// project's ordinary flags, so it runs on any x86-64 CPU.
#include "kernels/cpu/conv_gemm.hpp"

#include <atomic>
#include <cstdlib>
#include <string_view>

#include "kernels/cpu/gemm.hpp"
#include "runtime/error.hpp"

namespace recon::cpu {

namespace {

ConvProduct from_environment() {
  const char* env = std::getenv("RECON_CPU_CONV");
  if (env == nullptr || *env == '\0') return ConvProduct::kAuto;
  const std::string_view v(env);
  if (v == "auto") return ConvProduct::kAuto;
  if (v == "blas") return ConvProduct::kBlas;
  if (v == "avx512") {
    RECON_CHECK(cpu_has_avx512(), "RECON_CPU_CONV=avx512: this CPU has no AVX-512F");
    return ConvProduct::kAvx512;
  }
  RECON_FAIL("RECON_CPU_CONV: expected auto, blas or avx512, got '" << v << "'");
}

std::atomic<ConvProduct>& choice() {
  static std::atomic<ConvProduct> c{from_environment()};
  return c;
}

}  // namespace

bool conv_uses_avx512() {
  switch (choice().load(std::memory_order_relaxed)) {
    case ConvProduct::kBlas: return false;
    case ConvProduct::kAvx512: return true;
    case ConvProduct::kAuto: break;
  }
  return cpu_has_avx512();
}

bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
  return has;
#else
  return false;
#endif
}

ConvProduct conv_product() { return choice().load(std::memory_order_relaxed); }

void set_conv_product(ConvProduct p) {
  RECON_CHECK(p != ConvProduct::kAvx512 || cpu_has_avx512(), "set_conv_product: this CPU has no AVX-512F");
  choice().store(p, std::memory_order_relaxed);
}

std::string conv_product_name() { return conv_uses_avx512() ? "avx512 (ours)" : "OpenBLAS"; }

void conv_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (conv_uses_avx512()) {
    sgemm_avx512(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc);
  } else {
    gemm(trans_a, trans_b, m, n, k, 1.f, a, lda, b, ldb, beta, c, ldc);
  }
}

}  // namespace recon::cpu
