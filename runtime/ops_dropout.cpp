// Inverted dropout. The mask is not stored: forward and backward regenerate
// it from the generator's (seed, offset) reserved for this call, so a seed
// reproduces it on any device. Generator::draw keeps the mask fresh at every
// replay of a captured CUDA graph (the counters come from device memory).
#include "kernels/cpu/dropout.hpp"
#include "kernels/cuda/random.hpp"
#include "runtime/op_utils.hpp"

namespace recon {

Tensor dropout(const Tensor& x_in, float p, bool training, Generator& gen) {
  const char* op = "dropout";
  detail::check_defined(op, x_in, "the input");
  // p == 1 is allowed (everything dropped); NaN fails both comparisons.
  RECON_CHECK(p >= 0.f && p <= 1.f, op << ": p = " << p << " is not a probability in [0, 1] (input "
                                       << shape_str(x_in.shape()) << ")");
  if (!training || p == 0.f) return x_in;
  RECON_RANGE(op);
  Tensor x = x_in.contiguous();
  const int64_t n = x.numel();
  const PhiloxArgs rng = gen.draw((uint64_t)n);
  const uint64_t seed = rng.seed, offset = rng.offset;
  Tensor y = Tensor::empty(x.shape(), x.device());
  switch (x.device().type) {
    case DeviceType::CPU: cpu::dropout_forward(x.data(), y.data(), n, p, seed, offset); break;
    case DeviceType::CUDA: RECON_CUDA_ONLY(op, cuda::dropout(x.data(), y.data(), n, p, rng)); break;
  }
  if (autograd::any_requires_grad({&x})) {
    autograd::record(op, y, {x}, [p, seed, offset, rng](const Tensor& g_in, const std::vector<bool>&) {
      RECON_RANGE("dropout_backward");
      Tensor g = g_in.contiguous();
      Tensor gx = Tensor::empty(g.shape(), g.device());
      switch (g.device().type) {
        case DeviceType::CPU: cpu::dropout_backward(g.data(), gx.data(), g.numel(), p, seed, offset); break;
        case DeviceType::CUDA:
          RECON_CUDA_ONLY("dropout_backward", cuda::dropout(g.data(), gx.data(), g.numel(), p, rng));
          break;
      }
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

}  // namespace recon
