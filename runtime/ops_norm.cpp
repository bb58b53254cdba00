// batch_norm2d: batch statistics and running-statistics update in training,
// running statistics in eval; backward gives dx, dweight and dbias, each only
// when needed (a frozen layer in eval costs one elementwise pass for dx).
#include "kernels/cpu/norm.hpp"
#include "kernels/cuda/norm.hpp"
#include "runtime/op_utils.hpp"

namespace recon {

using detail::check_defined;
using detail::check_same_device;

// A per-channel tensor (weight, bias, running stats) of a batch norm over x (N, C, H, W).
static void check_channel_vector(const char* op, const Tensor& x, const Tensor& t, const char* what) {
  if (!t.defined()) return;
  check_same_device(op, x, t);
  RECON_CHECK(t.dim() == 1 && t.size(0) == x.size(1), op << ": " << what << " must be (" << x.size(1)
                                                        << ") for input " << shape_str(x.shape()) << ", got "
                                                        << shape_str(t.shape()));
}

Tensor batch_norm2d(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in, Tensor& running_mean,
                    Tensor& running_var, bool training, float momentum, float eps) {
  const char* op = "batch_norm2d";
  check_defined(op, x_in, "the input");
  detail::check_dim(op, x_in, 4, "the input", "(N, C, H, W)");
  check_channel_vector(op, x_in, weight_in, "weight");
  check_channel_vector(op, x_in, bias_in, "bias");
  check_channel_vector(op, x_in, running_mean, "running_mean");
  check_channel_vector(op, x_in, running_var, "running_var");
  RECON_CHECK(running_mean.defined() == running_var.defined(),
              op << ": running_mean and running_var must be given together");
  RECON_CHECK(training || running_mean.defined(),
              op << ": eval mode needs running_mean and running_var (input " << shape_str(x_in.shape()) << ")");
  RECON_CHECK(!running_mean.defined() || (running_mean.is_contiguous() && running_var.is_contiguous()),
              op << ": running_mean and running_var must be contiguous (they are updated in place)");
  RECON_CHECK(eps >= 0.f, op << ": eps = " << eps << " must not be negative");
  const int64_t n = x_in.size(0), c = x_in.size(1), hw = x_in.size(2) * x_in.size(3);
  RECON_CHECK(!training || n * hw > 1, op << ": training needs more than 1 value per channel, got input "
                                          << shape_str(x_in.shape()));
  RECON_RANGE(op);
  Tensor x = x_in.contiguous();
  Tensor weight = weight_in.defined() ? weight_in.contiguous() : Tensor();
  Tensor bias = bias_in.defined() ? bias_in.contiguous() : Tensor();
  const BatchNormParams p{n, c, hw, eps};
  const Device dev = x.device();
  Tensor mean = Tensor::empty({c}, dev), invstd = Tensor::empty({c}, dev);  // (C): the statistics used
  Tensor y = Tensor::empty(x.shape(), dev);                                 // (N, C, H, W)
  switch (dev.type) {
    case DeviceType::CPU:
      if (training) {
        Tensor var = Tensor::empty({c}, dev);
        cpu::batch_norm_stats(p, x.data(), mean.data(), var.data());
        cpu::batch_norm_invstd(p, var.data(), invstd.data());
        if (running_mean.defined())
          cpu::batch_norm_update_running(p, mean.data(), var.data(), momentum, running_mean.data(),
                                         running_var.data());
      } else {
        // Copies: the backward must see the statistics of this forward.
        mean.copy_(running_mean);
        cpu::batch_norm_invstd(p, running_var.data(), invstd.data());
      }
      cpu::batch_norm_forward(p, x.data(), mean.data(), invstd.data(), weight.defined() ? weight.data() : nullptr,
                              bias.defined() ? bias.data() : nullptr, y.data());
      break;
    case DeviceType::CUDA:
      if (training) {
        // One kernel: statistics, invstd and the running-statistics update.
        RECON_CUDA_ONLY(op, cuda::batch_norm_stats(p, x.data(), momentum, mean.data(), invstd.data(),
                                                   running_mean.defined() ? running_mean.data() : nullptr,
                                                   running_var.defined() ? running_var.data() : nullptr));
      } else {
        mean.copy_(running_mean);
        RECON_CUDA_ONLY(op, cuda::batch_norm_invstd(p, running_var.data(), invstd.data()));
      }
      RECON_CUDA_ONLY(op, cuda::batch_norm_forward(p, x.data(), mean.data(), invstd.data(),
                                                   weight.defined() ? weight.data() : nullptr,
                                                   bias.defined() ? bias.data() : nullptr, y.data()));
      break;
  }
  if (autograd::any_requires_grad({&x, &weight, &bias})) {
    Tensor sx = x.detach(), sw = weight.defined() ? weight.detach() : Tensor();
    autograd::record(op, y, {x, weight, bias},
                     [sx, sw, mean, invstd, p, training](const Tensor& g_in, const std::vector<bool>& need) {
                       Tensor g = g_in.contiguous();
                       const Device dev = sx.device();
                       Tensor dx, sum_g, sum_gxhat;
                       // dweight = sum g xhat, dbias = sum g; training dx needs both sums.
                       const bool reduce = need[1] || need[2] || (need[0] && training);
                       switch (dev.type) {
                         case DeviceType::CPU:
                           if (reduce) {
                             RECON_RANGE("batch_norm2d_backward_reduce");
                             sum_g = Tensor::empty({p.c}, dev);
                             sum_gxhat = Tensor::empty({p.c}, dev);
                             cpu::batch_norm_backward_reduce(p, g.data(), sx.data(), mean.data(), invstd.data(),
                                                             sum_g.data(), sum_gxhat.data());
                           }
                           if (need[0]) {
                             RECON_RANGE("batch_norm2d_backward_input");
                             dx = Tensor::empty(sx.shape(), dev);
                             cpu::batch_norm_backward_input(p, training, g.data(), sx.data(), mean.data(),
                                                            invstd.data(), sw.defined() ? sw.data() : nullptr,
                                                            reduce ? sum_g.data() : nullptr,
                                                            reduce ? sum_gxhat.data() : nullptr, dx.data());
                           }
                           break;
                         case DeviceType::CUDA:
                           if (reduce) {
                             RECON_RANGE("batch_norm2d_backward_reduce");
                             sum_g = Tensor::empty({p.c}, dev);
                             sum_gxhat = Tensor::empty({p.c}, dev);
                             RECON_CUDA_ONLY("batch_norm2d_backward",
                                             cuda::batch_norm_backward_reduce(p, g.data(), sx.data(), mean.data(),
                                                                              invstd.data(), sum_g.data(),
                                                                              sum_gxhat.data()));
                           }
                           if (need[0]) {
                             RECON_RANGE("batch_norm2d_backward_input");
                             dx = Tensor::empty(sx.shape(), dev);
                             RECON_CUDA_ONLY("batch_norm2d_backward",
                                             cuda::batch_norm_backward_input(
                                                 p, training, g.data(), sx.data(), mean.data(), invstd.data(),
                                                 sw.defined() ? sw.data() : nullptr, reduce ? sum_g.data() : nullptr,
                                                 reduce ? sum_gxhat.data() : nullptr, dx.data()));
                           }
                           break;
                       }
                       return std::vector<Tensor>{dx, need[1] ? sum_gxhat : Tensor(), need[2] ? sum_g : Tensor()};
                     });
  }
  return y;
}

}  // namespace recon
