// Losses: mean-squared error, cross-entropy over class logits (fused, stable
// log-softmax + NLL) and the KL divergence of a diagonal Gaussian from
// N(0, I). Each forward is one fused kernel that writes a 0-d loss; each
// backward is one kernel that reads the saved inputs (and row statistics).
#include "kernels/cpu/loss.hpp"
#include "kernels/cuda/loss.hpp"
#include "runtime/op_utils.hpp"

namespace recon {

using detail::check_defined;
using detail::check_same_device;
using detail::check_same_shape;

namespace {

float* data_or_null(const Tensor& t) { return t.defined() ? t.data() : nullptr; }
Tensor empty_if(bool needed, const Shape& shape, Device device) {
  return needed ? Tensor::empty(shape, device) : Tensor();
}

}  // namespace

Tensor mse_loss(const Tensor& pred_in, const Tensor& target_in, Reduction r) {
  const char* op = "mse_loss";
  check_defined(op, pred_in, "pred");
  check_defined(op, target_in, "target");
  check_same_device(op, pred_in, target_in);
  check_same_shape(op, pred_in, target_in);
  const int64_t n = pred_in.numel();
  RECON_CHECK(r == Reduction::Sum || n > 0,
              op << ": the mean over an empty tensor " << shape_str(pred_in.shape()) << " is undefined");
  RECON_RANGE(op);
  Tensor pred = pred_in.contiguous(), target = target_in.contiguous();
  const double scale = r == Reduction::Mean ? 1.0 / (double)n : 1.0;
  Tensor out = Tensor::empty({}, pred.device());
  switch (pred.device().type) {
    case DeviceType::CPU: cpu::mse_forward(pred.data(), target.data(), n, scale, out.data()); break;
    case DeviceType::CUDA:
      RECON_CUDA_ONLY(op, cuda::mse_forward(pred.data(), target.data(), n, scale, out.data()));
      break;
  }
  if (autograd::any_requires_grad({&pred, &target})) {
    Tensor sp = pred.detach(), st = target.detach();
    autograd::record(op, out, {pred, target}, [sp, st, scale](const Tensor& g_in, const std::vector<bool>& need) {
      RECON_RANGE("mse_loss_backward");
      Tensor g = g_in.contiguous();
      Tensor gp = empty_if(need[0], sp.shape(), sp.device()), gt = empty_if(need[1], st.shape(), st.device());
      switch (sp.device().type) {
        case DeviceType::CPU:
          cpu::mse_backward(sp.data(), st.data(), g.data(), (float)scale, data_or_null(gp), data_or_null(gt),
                            sp.numel());
          break;
        case DeviceType::CUDA:
          RECON_CUDA_ONLY("mse_loss_backward",
                          cuda::mse_backward(sp.data(), st.data(), g.data(), (float)scale, data_or_null(gp),
                                             data_or_null(gt), sp.numel()));
          break;
      }
      return std::vector<Tensor>{gp, gt};
    });
  }
  return out;
}

Tensor cross_entropy(const Tensor& logits_in, const Tensor& targets_in, Reduction r) {
  const char* op = "cross_entropy";
  check_defined(op, logits_in, "logits");
  check_defined(op, targets_in, "targets");
  check_same_device(op, logits_in, targets_in);
  detail::check_dim(op, logits_in, 2, "logits", "(N, C)");
  detail::check_dim(op, targets_in, 1, "targets", "(N) of class indices");
  const int64_t n = logits_in.size(0), c = logits_in.size(1);
  RECON_CHECK(targets_in.size(0) == n, op << ": targets " << shape_str(targets_in.shape())
                                          << " must hold one class index per row of logits "
                                          << shape_str(logits_in.shape()));
  RECON_CHECK(n > 0 && c > 0, op << ": logits " << shape_str(logits_in.shape()) << " are empty");
  RECON_RANGE(op);
  Tensor logits = logits_in.contiguous(), targets = targets_in.detach().contiguous();
  const double scale = r == Reduction::Mean ? 1.0 / (double)n : 1.0;
  Tensor out = Tensor::empty({}, logits.device());
  Tensor stats = Tensor::empty({n, 2}, logits.device());  // per row: (max, log sum exp(x - max))
  switch (logits.device().type) {
    case DeviceType::CPU: {
      const int64_t bad = cpu::cross_entropy_invalid_target(targets.data(), n, c);
      RECON_CHECK(bad < 0, op << ": targets[" << bad << "] = " << targets.data()[bad]
                              << " is not a class index in [0, " << c << ") for logits "
                              << shape_str(logits.shape()));
      cpu::cross_entropy_forward(logits.data(), targets.data(), n, c, scale, stats.data(), out.data());
      break;
    }
    case DeviceType::CUDA:
      // An invalid target cannot be reported without waiting for the device:
      // the kernel makes that row's loss (and so the loss) NaN instead.
      RECON_CUDA_ONLY(op, cuda::cross_entropy_forward(logits.data(), targets.data(), n, c, scale, stats.data(),
                                                      out.data()));
      break;
  }
  if (autograd::any_requires_grad({&logits})) {
    Tensor sx = logits.detach();
    autograd::record(op, out, {logits}, [sx, targets, stats, scale](const Tensor& g_in, const std::vector<bool>&) {
      RECON_RANGE("cross_entropy_backward");
      Tensor g = g_in.contiguous();
      Tensor gx = Tensor::empty(sx.shape(), sx.device());
      switch (sx.device().type) {
        case DeviceType::CPU:
          cpu::cross_entropy_backward(sx.data(), targets.data(), stats.data(), g.data(), (float)scale, gx.data(),
                                      sx.size(0), sx.size(1));
          break;
        case DeviceType::CUDA:
          RECON_CUDA_ONLY("cross_entropy_backward",
                          cuda::cross_entropy_backward(sx.data(), targets.data(), stats.data(), g.data(),
                                                       (float)scale, gx.data(), sx.size(0), sx.size(1)));
          break;
      }
      return std::vector<Tensor>{gx};
    });
  }
  return out;
}

Tensor kl_normal(const Tensor& mu_in, const Tensor& logvar_in, Reduction r) {
  const char* op = "kl_normal";
  check_defined(op, mu_in, "mu");
  check_defined(op, logvar_in, "logvar");
  check_same_device(op, mu_in, logvar_in);
  check_same_shape(op, mu_in, logvar_in);
  RECON_CHECK(mu_in.dim() >= 1, op << ": mu and logvar need a batch dimension (N, ...), got "
                                   << shape_str(mu_in.shape()));
  const int64_t batch = mu_in.size(0);
  RECON_CHECK(r == Reduction::Sum || batch > 0,
              op << ": the mean over an empty batch " << shape_str(mu_in.shape()) << " is undefined");
  RECON_RANGE(op);
  Tensor mu = mu_in.contiguous(), logvar = logvar_in.contiguous();
  const double scale = r == Reduction::Mean ? 1.0 / (double)batch : 1.0;
  Tensor out = Tensor::empty({}, mu.device());
  switch (mu.device().type) {
    case DeviceType::CPU: cpu::kl_normal_forward(mu.data(), logvar.data(), mu.numel(), scale, out.data()); break;
    case DeviceType::CUDA:
      RECON_CUDA_ONLY(op, cuda::kl_normal_forward(mu.data(), logvar.data(), mu.numel(), scale, out.data()));
      break;
  }
  if (autograd::any_requires_grad({&mu, &logvar})) {
    Tensor smu = mu.detach(), slv = logvar.detach();
    autograd::record(op, out, {mu, logvar}, [smu, slv, scale](const Tensor& g_in, const std::vector<bool>& need) {
      RECON_RANGE("kl_normal_backward");
      Tensor g = g_in.contiguous();
      Tensor gmu = empty_if(need[0], smu.shape(), smu.device()), glv = empty_if(need[1], slv.shape(), slv.device());
      switch (smu.device().type) {
        case DeviceType::CPU:
          cpu::kl_normal_backward(smu.data(), slv.data(), g.data(), (float)scale, data_or_null(gmu),
                                  data_or_null(glv), smu.numel());
          break;
        case DeviceType::CUDA:
          RECON_CUDA_ONLY("kl_normal_backward",
                          cuda::kl_normal_backward(smu.data(), slv.data(), g.data(), (float)scale,
                                                   data_or_null(gmu), data_or_null(glv), smu.numel()));
          break;
      }
      return std::vector<Tensor>{gmu, glv};
    });
  }
  return out;
}

}  // namespace recon
