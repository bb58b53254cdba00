// Entropy ops (method 1's difficulty measures `entropy` and
// `local-entropy`): the Shannon entropy of each image's 256-bin intensity
// histogram, and the local-entropy map over k x k windows. Not
// differentiable: the outputs never join the autograd graph.
#include <cstdint>

#include "kernels/cpu/entropy.hpp"
#include "kernels/cuda/entropy.hpp"
#include "runtime/op_utils.hpp"

namespace recon {

Tensor image_entropy(const Tensor& x_in) {
  const char* op = "image_entropy";
  detail::check_defined(op, x_in, "the input");
  detail::check_dim(op, x_in, 4, "the input", "(N, C, H, W)");
  const int64_t n = x_in.size(0), per_image = x_in.size(1) * x_in.size(2) * x_in.size(3);
  RECON_CHECK(n == 0 || per_image > 0, op << ": images " << shape_str(x_in.shape()) << " are empty");
  RECON_CHECK(per_image <= (int64_t)UINT32_MAX && n <= INT32_MAX,
              op << ": input " << shape_str(x_in.shape()) << " is too large (histogram counts are 32-bit)");
  RECON_RANGE(op);
  Tensor x = x_in.detach().contiguous();
  Tensor out = Tensor::empty({n}, x.device());  // (N)
  if (n == 0) return out;
  switch (x.device().type) {
    case DeviceType::CPU: cpu::image_entropy(x.data(), n, per_image, out.data()); break;
    case DeviceType::CUDA: RECON_CUDA_ONLY(op, cuda::image_entropy(x.data(), n, per_image, out.data())); break;
  }
  return out;
}

Tensor local_entropy(const Tensor& x_in, int k, int bins) {
  const char* op = "local_entropy";
  detail::check_defined(op, x_in, "the input");
  detail::check_dim(op, x_in, 4, "the input", "(N, C, H, W)");
  RECON_CHECK(k >= 1 && k <= kLocalEntropyMaxK && k % 2 == 1,
              op << ": the window k = " << k << " must be odd and in [1, " << kLocalEntropyMaxK << "]");
  RECON_CHECK(bins >= 1 && bins <= kLocalEntropyMaxBins,
              op << ": bins = " << bins << " must be in [1, " << kLocalEntropyMaxBins << "]");
  const int64_t n = x_in.size(0), c = x_in.size(1), h = x_in.size(2), w = x_in.size(3);
  RECON_CHECK(c > 0, op << ": input " << shape_str(x_in.shape()) << " has no channels");
  RECON_CHECK(k / 2 < h && k / 2 < w, op << ": the " << k << "x" << k << " window reflect-pads by " << k / 2
                                         << ", which must be smaller than H and W of " << shape_str(x_in.shape()));
  RECON_CHECK(c * h * w <= INT32_MAX, op << ": images " << shape_str(x_in.shape()) << " are too large");
  RECON_RANGE(op);
  Tensor x = x_in.detach().contiguous();
  Tensor out = Tensor::empty({n, 1, h, w}, x.device());  // (N, 1, H, W)
  if (out.numel() == 0) return out;
  const LocalEntropyParams p{n, (int)c, (int)h, (int)w, k, bins};
  switch (x.device().type) {
    case DeviceType::CPU: cpu::local_entropy(p, x.data(), out.data()); break;
    case DeviceType::CUDA: RECON_CUDA_ONLY(op, cuda::local_entropy(p, x.data(), out.data())); break;
  }
  return out;
}

}  // namespace recon
