// CPU information-reduction kernels: one pass over the elements (OpenMP over
// fixed chunks), the KL partial sums of the chunks added in chunk order so
// the result does not depend on the thread count.
#include "kernels/cpu/vib.hpp"

#include <vector>

#include "kernels/common/vib.hpp"

namespace recon::cpu {

namespace {
constexpr int64_t kChunk = 4096;  // fixes the KL's summation order: do not tie it to the thread count
// An element costs a Philox draw and a double-precision Box-Muller (log, cos,
// sqrt: ~60 ns here), so two threads pay off from a few thousand elements
// (the refiner's latent at batch 32 is 6272).
constexpr int64_t kParallelMin = 2048;
}  // namespace

void vib_forward(const float* mu, const float* logvar, float* z, float* kl, int64_t n, bool sampled, uint64_t seed,
                 uint64_t offset, double scale) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial((size_t)chunks, 0.0);
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t k = 0; k < chunks; ++k) {
    const int64_t end = (k + 1) * kChunk < n ? (k + 1) * kChunk : n;
    double acc = 0.0;
    for (int64_t i = k * kChunk; i < end; ++i) {
      z[i] = sampled ? vib_sample(mu[i], logvar[i], vib_eps(seed, offset, (uint64_t)i)) : mu[i];
      acc += (double)kl_normal_term(mu[i], logvar[i]);
    }
    partial[(size_t)k] = acc;
  }
  double total = 0.0;
  for (double p : partial) total += p;
  kl[0] = (float)(total * scale);
}

void vib_backward(const float* mu, const float* logvar, const float* dz, const float* dkl, float* dmu, float* dlv,
                  int64_t n, bool sampled, uint64_t seed, uint64_t offset, float scale) {
  const float gkl = dkl ? dkl[0] * scale : 0.f;
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float eps = sampled ? vib_eps(seed, offset, (uint64_t)i) : 0.f;
    const VibGrad g = vib_grad_term(mu[i], logvar[i], dz ? dz[i] : 0.f, gkl, eps, sampled);
    if (dmu) dmu[i] = g.dmu;
    if (dlv) dlv[i] = g.dlogvar;
  }
}

}  // namespace recon::cpu
