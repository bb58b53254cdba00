// SSIM ops (method 1's local view): ssim_map and the fused ssim_loss =
// 1 - mean(ssim_map). One forward kernel writes the map and, when an input
// needs a gradient, the four per-pixel partials dS/dstat that the backward
// kernel filters into dL/dx and dL/dy (kernels/common/ssim.hpp). ssim_loss's
// backward feeds the constant map -g/numel into the same backward kernel.
#include "kernels/cpu/ssim.hpp"
#include "kernels/cuda/ssim.hpp"
#include "runtime/op_utils.hpp"

namespace recon {

namespace {

float* data_or_null(const Tensor& t) { return t.defined() ? t.data() : nullptr; }
Tensor empty_if(bool needed, const Shape& shape, Device device) {
  return needed ? Tensor::empty(shape, device) : Tensor();
}

// Checks x and y for an SSIM op and returns the plane geometry.
SsimParams check_ssim_inputs(const char* op, const Tensor& x, const Tensor& y) {
  detail::check_defined(op, x, "x");
  detail::check_defined(op, y, "y");
  detail::check_same_device(op, x, y);
  detail::check_dim(op, x, 4, "x", "(N, C, H, W)");
  detail::check_same_shape(op, x, y);
  const int64_t h = x.size(2), w = x.size(3);
  RECON_CHECK(h >= kSsimMinSize && w >= kSsimMinSize,
              op << ": H and W must be at least " << kSsimMinSize << " (the " << kSsimWindow << "x" << kSsimWindow
                 << " window reflect-pads by " << kSsimRadius << ", and a reflect pad must be smaller than the size), "
                 << "got " << shape_str(x.shape()));
  RECON_CHECK(h * w <= INT32_MAX, op << ": planes of " << shape_str(x.shape()) << " are too large");
  return SsimParams{x.size(0) * x.size(1), (int)h, (int)w};
}

// The backward shared by both ops: G = (g_map ? g_map : g_scalar[0]) * g_scale.
std::vector<Tensor> ssim_grads(const SsimParams& p, const Tensor& sx, const Tensor& sy, const Tensor& partials,
                               const Tensor& g_map, const Tensor& g_scalar, float g_scale,
                               const std::vector<bool>& need) {
  Tensor dx = empty_if(need[0], sx.shape(), sx.device()), dy = empty_if(need[1], sy.shape(), sy.device());
  if (sx.numel() == 0) return {dx, dy};
  const float* gm = data_or_null(g_map);
  const float* gs = data_or_null(g_scalar);
  switch (sx.device().type) {
    case DeviceType::CPU:
      cpu::ssim_backward(p, sx.data(), sy.data(), partials.data(), gm, gs, g_scale, data_or_null(dx),
                         data_or_null(dy));
      break;
    case DeviceType::CUDA:
      RECON_CUDA_ONLY("ssim_backward", cuda::ssim_backward(p, sx.data(), sy.data(), partials.data(), gm, gs, g_scale,
                                                          data_or_null(dx), data_or_null(dy)));
      break;
  }
  return {dx, dy};
}

}  // namespace

Tensor ssim_map(const Tensor& x_in, const Tensor& y_in) {
  const char* op = "ssim_map";
  const SsimParams p = check_ssim_inputs(op, x_in, y_in);
  RECON_RANGE(op);
  Tensor x = x_in.contiguous(), y = y_in.contiguous();
  const bool grad = autograd::any_requires_grad({&x, &y});
  Tensor map = Tensor::empty(x.shape(), x.device());  // (N, C, H, W)
  Tensor partials = empty_if(grad, {kSsimPartials, x.numel()}, x.device());
  if (x.numel() > 0) {
    switch (x.device().type) {
      case DeviceType::CPU: cpu::ssim_forward(p, x.data(), y.data(), map.data(), data_or_null(partials)); break;
      case DeviceType::CUDA:
        RECON_CUDA_ONLY(op, cuda::ssim_forward(p, x.data(), y.data(), map.data(), data_or_null(partials), nullptr));
        break;
    }
  }
  if (grad) {
    Tensor sx = x.detach(), sy = y.detach();
    autograd::record(op, map, {x, y}, [p, sx, sy, partials](const Tensor& g_in, const std::vector<bool>& need) {
      RECON_RANGE("ssim_map_backward");
      return ssim_grads(p, sx, sy, partials, g_in.contiguous(), Tensor(), 1.f, need);
    });
  }
  return map;
}

Tensor ssim_loss(const Tensor& x_in, const Tensor& y_in) {
  const char* op = "ssim_loss";
  const SsimParams p = check_ssim_inputs(op, x_in, y_in);
  const int64_t numel = x_in.numel();
  RECON_CHECK(numel > 0, op << ": the mean over empty images " << shape_str(x_in.shape()) << " is undefined");
  RECON_RANGE(op);
  Tensor x = x_in.contiguous(), y = y_in.contiguous();
  const bool grad = autograd::any_requires_grad({&x, &y});
  Tensor partials = empty_if(grad, {kSsimPartials, numel}, x.device());
  Tensor out = Tensor::empty({}, x.device());
  switch (x.device().type) {
    case DeviceType::CPU: {
      Tensor map = Tensor::empty(x.shape(), x.device());
      cpu::ssim_forward(p, x.data(), y.data(), map.data(), data_or_null(partials));
      cpu::ssim_loss_from_map(p, map.data(), out.data());
      break;
    }
    case DeviceType::CUDA: {
      // No map: each block writes its SSIM sum, a one-block kernel reduces them.
      Tensor block_sums = Tensor::empty({ssim_tile_count(p)}, x.device());
      RECON_CUDA_ONLY(op, cuda::ssim_forward(p, x.data(), y.data(), nullptr, data_or_null(partials), block_sums.data());
                      cuda::ssim_loss_finalize(block_sums.data(), block_sums.numel(), numel, out.data()));
      break;
    }
  }
  if (grad) {
    Tensor sx = x.detach(), sy = y.detach();
    const float g_scale = (float)(-1.0 / (double)numel);  // d(1 - mean)/dS at every pixel
    autograd::record(op, out, {x, y},
                     [p, sx, sy, partials, g_scale](const Tensor& g_in, const std::vector<bool>& need) {
                       RECON_RANGE("ssim_loss_backward");
                       return ssim_grads(p, sx, sy, partials, Tensor(), g_in.contiguous(), g_scale, need);
                     });
  }
  return out;
}

}  // namespace recon
