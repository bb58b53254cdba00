// CUDA kernels of the information-reduction op (method 2's variational
// bottleneck). The forward is one fused kernel: each thread draws its
// elements' noise from the Philox stream (the CPU's numbers), writes z and
// accumulates the KL terms in double; each block writes its total to a
// partial, and reduce.cu's finish kernel adds the partials in a fixed tree
// (deterministic, no atomics). The backward is one kernel that regenerates
// the noise from the same Philox key and counters and writes dmu and dlogvar
// together. Each thread resolves the key and first counter once
// (PhiloxArgs: kernel arguments, or device memory in a CUDA graph).
// Formulas: kernels/common/vib.hpp.
#include "kernels/cuda/launch.cuh"

#include <cstdint>

#include "kernels/common/vib.hpp"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/reduce.hpp"
#include "kernels/cuda/vib.hpp"
#include "runtime/cuda_context.hpp"

namespace recon::cuda {

using detail::runtime_stream;

namespace {

using detail::grid_for;
using detail::grid_start;
using detail::grid_stride;
using detail::kBlockThreads;


// One thread: elements i of its grid-stride share of [0, n): z[i] (sampled
// with eps from counter rng.first() + i, or a copy of mu) and a running
// double sum of their KL terms. One block: its threads' sums added by a
// fixed tree (block_sum) into partials[blockIdx.x].
__global__ void vib_forward_kernel(const float* __restrict__ mu, const float* __restrict__ logvar,
                                   float* __restrict__ z, int64_t n, bool sampled, PhiloxArgs rng,
                                   double* __restrict__ partials) {
  __shared__ double warp_sums[32];
  const uint64_t seed = sampled ? rng.key() : 0, offset = sampled ? rng.first() : 0;
  double acc = 0.0;
  for (int64_t i = grid_start(); i < n; i += grid_stride()) {
    const float m = mu[i], lv = logvar[i];
    z[i] = sampled ? vib_sample(m, lv, vib_eps(seed, offset, (uint64_t)i)) : m;
    acc += (double)kl_normal_term(m, lv);
  }
  const double total = detail::block_sum(acc, warp_sums);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// One thread: element i (grid-stride over n) of dmu and/or dlv, from dz[i]
// (0 when dz is null), dkl[0] * scale (0 when dkl is null) and eps
// regenerated from counter rng.first() + i.
__global__ void vib_backward_kernel(const float* __restrict__ mu, const float* __restrict__ logvar,
                                    const float* __restrict__ dz, const float* __restrict__ dkl,
                                    float* __restrict__ dmu, float* __restrict__ dlv, int64_t n, bool sampled,
                                    PhiloxArgs rng, float scale) {
  const float gkl = dkl ? dkl[0] * scale : 0.f;
  const uint64_t seed = sampled ? rng.key() : 0, offset = sampled ? rng.first() : 0;
  for (int64_t i = grid_start(); i < n; i += grid_stride()) {
    const float eps = sampled ? vib_eps(seed, offset, (uint64_t)i) : 0.f;
    const VibGrad g = vib_grad_term(mu[i], logvar[i], dz ? dz[i] : 0.f, gkl, eps, sampled);
    if (dmu) dmu[i] = g.dmu;
    if (dlv) dlv[i] = g.dlogvar;
  }
}

}  // namespace

void vib_forward(const float* mu, const float* logvar, float* z, float* kl, int64_t n, bool sampled, PhiloxArgs rng,
                 double scale) {
  const int blocks = partial_sum_blocks(n);
  DeviceWorkspace partials((size_t)blocks * sizeof(double));
  RECON_LAUNCH(vib_forward_kernel, blocks, kPartialSumThreads, 0, runtime_stream())
  (mu, logvar, z, n, sampled, rng, partials.as<double>());
  check_launch("vib_forward_kernel");
  finish_partial_sums(partials.as<double>(), blocks, scale, kl);
}

void vib_backward(const float* mu, const float* logvar, const float* dz, const float* dkl, float* dmu, float* dlv,
                  int64_t n, bool sampled, PhiloxArgs rng, float scale) {
  if (n == 0 || (!dmu && !dlv)) return;
  RECON_LAUNCH(vib_backward_kernel, grid_for(n), kBlockThreads, 0, runtime_stream())
  (mu, logvar, dz, dkl, dmu, dlv, n, sampled, rng, scale);
  check_launch("vib_backward_kernel");
}

}  // namespace recon::cuda
