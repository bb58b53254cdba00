// information_reduction: the variational bottleneck of method 2's refiner
// as one fused op with two outputs (z, kl) recorded as one autograd node.
// The noise is not stored: the forward reserves n counters of the
// generator's Philox stream and the backward regenerates eps from the same
// (seed, offset), on either device.
#include "kernels/cpu/vib.hpp"
#include "kernels/cuda/vib.hpp"
#include "runtime/op_utils.hpp"

namespace recon {

InfoReduction information_reduction(const Tensor& mu_in, const Tensor& logvar_in, bool training, Generator& gen) {
  const char* op = "information_reduction";
  detail::check_defined(op, mu_in, "mu");
  detail::check_defined(op, logvar_in, "logvar");
  detail::check_same_device(op, mu_in, logvar_in);
  detail::check_same_shape(op, mu_in, logvar_in);
  RECON_CHECK(mu_in.dim() >= 1 && mu_in.size(0) > 0,
              op << ": mu and logvar need a non-empty batch dimension (N, ...), got " << shape_str(mu_in.shape()));
  RECON_RANGE(op);
  Tensor mu = mu_in.contiguous(), logvar = logvar_in.contiguous();
  const int64_t n = mu.numel();
  const double scale = 1.0 / (double)mu.size(0);  // nats per image
  const bool sampled = training;
  // Generator::draw: inside a captured CUDA graph the counters are read from
  // device memory refreshed at each replay (rng); eager, rng = (seed, offset).
  const PhiloxArgs rng = sampled ? gen.draw((uint64_t)n) : PhiloxArgs{gen.seed(), 0, nullptr};
  const uint64_t seed = rng.seed, offset = rng.offset;
  InfoReduction out;
  out.z = Tensor::empty(mu.shape(), mu.device());
  out.kl = Tensor::empty({}, mu.device());
  switch (mu.device().type) {
    case DeviceType::CPU:
      cpu::vib_forward(mu.data(), logvar.data(), out.z.data(), out.kl.data(), n, sampled, seed, offset, scale);
      break;
    case DeviceType::CUDA:
      RECON_CUDA_ONLY(op, cuda::vib_forward(mu.data(), logvar.data(), out.z.data(), out.kl.data(), n, sampled, rng,
                                            scale));
      break;
  }
  if (autograd::any_requires_grad({&mu, &logvar})) {
    Tensor smu = mu.detach(), slv = logvar.detach();
    autograd::record_multi(
        op, {&out.z, &out.kl}, {mu, logvar},
        [smu, slv, sampled, seed, offset, rng, scale](const std::vector<Tensor>& g, const std::vector<bool>& need) {
          RECON_RANGE("information_reduction_backward");
          // An output no path to the loss used arrives undefined: read as zero.
          Tensor dz = g[0].defined() ? g[0].contiguous() : Tensor();
          Tensor dkl = g[1].defined() ? g[1].contiguous() : Tensor();
          const float* dz_p = dz.defined() ? dz.data() : nullptr;
          const float* dkl_p = dkl.defined() ? dkl.data() : nullptr;
          Tensor dmu = need[0] ? Tensor::empty(smu.shape(), smu.device()) : Tensor();
          Tensor dlv = need[1] ? Tensor::empty(slv.shape(), slv.device()) : Tensor();
          float* dmu_p = dmu.defined() ? dmu.data() : nullptr;
          float* dlv_p = dlv.defined() ? dlv.data() : nullptr;
          const int64_t n = smu.numel();
          switch (smu.device().type) {
            case DeviceType::CPU:
              cpu::vib_backward(smu.data(), slv.data(), dz_p, dkl_p, dmu_p, dlv_p, n, sampled, seed, offset,
                                (float)scale);
              break;
            case DeviceType::CUDA:
              RECON_CUDA_ONLY("information_reduction_backward",
                              cuda::vib_backward(smu.data(), slv.data(), dz_p, dkl_p, dmu_p, dlv_p, n, sampled, rng,
                                                 (float)scale));
              break;
          }
          return std::vector<Tensor>{dmu, dlv};
        });
  }
  return out;
}

}  // namespace recon
