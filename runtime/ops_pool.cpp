// Pooling and resampling ops: max_pool2d, avg_pool2d, global_avg_pool and
// upsample (nearest, bilinear), forward and backward.
#include "kernels/cpu/pool.hpp"
#include "kernels/cpu/resample.hpp"
#include "kernels/cuda/pool.hpp"
#include "kernels/cuda/resample.hpp"
#include "runtime/op_utils.hpp"

namespace recon {

using detail::check_defined;

namespace {

// Checks the options against x (N, C, H, W) and gives the kernel parameters.
Pool2dParams pool_params(const char* op, const Tensor& x, const Pool2dOptions& opt) {
  check_defined(op, x, "the input");
  detail::check_dim(op, x, 4, "the input", "(N, C, H, W)");
  for (int d = 0; d < 2; ++d) {
    RECON_CHECK(opt.kernel[d] > 0 && opt.stride[d] > 0 && opt.padding[d] >= 0,
                op << ": kernel (" << opt.kernel[0] << ", " << opt.kernel[1] << ") and stride (" << opt.stride[0]
                   << ", " << opt.stride[1] << ") must be positive and padding (" << opt.padding[0] << ", "
                   << opt.padding[1] << ") non-negative, for input " << shape_str(x.shape()));
    // As PyTorch: every window then holds at least one input element.
    RECON_CHECK(opt.padding[d] <= opt.kernel[d] / 2, op << ": padding " << opt.padding[d]
                                                         << " must be at most half the kernel " << opt.kernel[d]
                                                         << ", for input " << shape_str(x.shape()));
  }
  Pool2dParams p{};
  p.planes = x.size(0) * x.size(1);
  p.h = x.size(2);
  p.w = x.size(3);
  p.kernel_h = opt.kernel[0];
  p.kernel_w = opt.kernel[1];
  p.stride_h = opt.stride[0];
  p.stride_w = opt.stride[1];
  p.pad_h = opt.padding[0];
  p.pad_w = opt.padding[1];
  RECON_CHECK(p.h + 2 * p.pad_h >= p.kernel_h && p.w + 2 * p.pad_w >= p.kernel_w,
              op << ": kernel (" << p.kernel_h << ", " << p.kernel_w << ") is larger than the padded input "
                 << shape_str(x.shape()) << " with padding (" << p.pad_h << ", " << p.pad_w << ")");
  p.out_h = pool_out_size(p.h, p.kernel_h, p.stride_h, p.pad_h);
  p.out_w = pool_out_size(p.w, p.kernel_w, p.stride_w, p.pad_w);
  return p;
}

enum class PoolKind { Max, Avg };

Tensor pool2d(const char* op, const char* backward_name, PoolKind kind, const Tensor& x_in,
              const Pool2dOptions& opt) {
  const Pool2dParams p = pool_params(op, x_in, opt);
  RECON_RANGE(op);
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty({x.size(0), x.size(1), p.out_h, p.out_w}, x.device());  // (N, C, Ho, Wo)
  if (y.numel() > 0) {
    switch (x.device().type) {
      case DeviceType::CPU:
        if (kind == PoolKind::Max) cpu::max_pool2d_forward(p, x.data(), y.data());
        else cpu::avg_pool2d_forward(p, x.data(), y.data());
        break;
      case DeviceType::CUDA:
        if (kind == PoolKind::Max) RECON_CUDA_ONLY(op, cuda::max_pool2d_forward(p, x.data(), y.data()));
        else RECON_CUDA_ONLY(op, cuda::avg_pool2d_forward(p, x.data(), y.data()));
        break;
    }
  }
  if (autograd::any_requires_grad({&x})) {
    // Max pooling recomputes each window's argmax from x: no index tensor to keep.
    Tensor sx = kind == PoolKind::Max ? x.detach() : Tensor();
    Shape in_shape = x.shape();
    autograd::record(op, y, {x}, [sx, in_shape, p, kind, backward_name](const Tensor& g_in, const std::vector<bool>&) {
      RECON_RANGE(backward_name);
      Tensor g = g_in.contiguous();
      Tensor dx = Tensor::empty(in_shape, g.device());  // (N, C, H, W); the kernel writes all of it
      if (g.numel() == 0) return std::vector<Tensor>{dx};
      switch (g.device().type) {
        case DeviceType::CPU:
          if (kind == PoolKind::Max) cpu::max_pool2d_backward(p, sx.data(), g.data(), dx.data());
          else cpu::avg_pool2d_backward(p, g.data(), dx.data());
          break;
        case DeviceType::CUDA:
          if (kind == PoolKind::Max)
            RECON_CUDA_ONLY(backward_name, cuda::max_pool2d_backward(p, sx.data(), g.data(), dx.data()));
          else RECON_CUDA_ONLY(backward_name, cuda::avg_pool2d_backward(p, g.data(), dx.data()));
          break;
      }
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

}  // namespace

Tensor max_pool2d(const Tensor& x, const Pool2dOptions& opt) {
  return pool2d("max_pool2d", "max_pool2d_backward", PoolKind::Max, x, opt);
}

Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& opt) {
  return pool2d("avg_pool2d", "avg_pool2d_backward", PoolKind::Avg, x, opt);
}

Tensor global_avg_pool(const Tensor& x_in) {
  const char* op = "global_avg_pool";
  check_defined(op, x_in, "the input");
  detail::check_dim(op, x_in, 4, "the input", "(N, C, H, W)");
  const int64_t planes = x_in.size(0) * x_in.size(1), hw = x_in.size(2) * x_in.size(3);
  RECON_CHECK(hw > 0, op << ": the input " << shape_str(x_in.shape()) << " has an empty (H, W) plane");
  RECON_RANGE(op);
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty({x.size(0), x.size(1)}, x.device());  // (N, C)
  switch (x.device().type) {
    case DeviceType::CPU: cpu::global_avg_pool_forward(x.data(), y.data(), planes, hw); break;
    case DeviceType::CUDA: RECON_CUDA_ONLY(op, cuda::global_avg_pool_forward(x.data(), y.data(), planes, hw)); break;
  }
  if (autograd::any_requires_grad({&x})) {
    Shape in_shape = x.shape();
    autograd::record(op, y, {x}, [in_shape, planes, hw](const Tensor& g_in, const std::vector<bool>&) {
      RECON_RANGE("global_avg_pool_backward");
      Tensor g = g_in.contiguous();
      Tensor dx = Tensor::empty(in_shape, g.device());  // (N, C, H, W)
      switch (g.device().type) {
        case DeviceType::CPU: cpu::global_avg_pool_backward(g.data(), dx.data(), planes, hw); break;
        case DeviceType::CUDA:
          RECON_CUDA_ONLY("global_avg_pool_backward", cuda::global_avg_pool_backward(g.data(), dx.data(), planes, hw));
          break;
      }
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

Tensor upsample(const Tensor& x_in, int out_h, int out_w, UpsampleMode mode) {
  const char* op = "upsample";
  check_defined(op, x_in, "the input");
  detail::check_dim(op, x_in, 4, "the input", "(N, C, H, W)");
  RECON_CHECK(out_h > 0 && out_w > 0, op << ": output size (" << out_h << ", " << out_w
                                         << ") must be positive, for input " << shape_str(x_in.shape()));
  RECON_CHECK(x_in.size(2) > 0 && x_in.size(3) > 0,
              op << ": the input " << shape_str(x_in.shape()) << " has an empty (H, W) plane");
  RECON_RANGE(op);
  Tensor x = x_in.contiguous();
  const ResampleParams p{x.size(0) * x.size(1), x.size(2), x.size(3), out_h, out_w};
  Tensor y = Tensor::empty({x.size(0), x.size(1), out_h, out_w}, x.device());  // (N, C, Ho, Wo)
  const bool nearest = mode == UpsampleMode::Nearest;
  if (y.numel() > 0) {
    switch (x.device().type) {
      case DeviceType::CPU:
        if (nearest) cpu::upsample_nearest_forward(p, x.data(), y.data());
        else cpu::upsample_bilinear_forward(p, x.data(), y.data());
        break;
      case DeviceType::CUDA:
        if (nearest) RECON_CUDA_ONLY(op, cuda::upsample_nearest_forward(p, x.data(), y.data()));
        else RECON_CUDA_ONLY(op, cuda::upsample_bilinear_forward(p, x.data(), y.data()));
        break;
    }
  }
  if (autograd::any_requires_grad({&x})) {
    Shape in_shape = x.shape();
    autograd::record(op, y, {x}, [in_shape, p, nearest](const Tensor& g_in, const std::vector<bool>&) {
      RECON_RANGE("upsample_backward");
      Tensor g = g_in.contiguous();
      Tensor dx = Tensor::empty(in_shape, g.device());  // (N, C, H, W); the kernel writes all of it
      if (g.numel() == 0) return std::vector<Tensor>{dx};
      switch (g.device().type) {
        case DeviceType::CPU:
          if (nearest) cpu::upsample_nearest_backward(p, g.data(), dx.data());
          else cpu::upsample_bilinear_backward(p, g.data(), dx.data());
          break;
        case DeviceType::CUDA:
          if (nearest) RECON_CUDA_ONLY("upsample_backward", cuda::upsample_nearest_backward(p, g.data(), dx.data()));
          else RECON_CUDA_ONLY("upsample_backward", cuda::upsample_bilinear_backward(p, g.data(), dx.data()));
          break;
      }
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

}  // namespace recon
