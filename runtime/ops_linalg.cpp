// Linear algebra ops: matmul and linear (GEMM; OpenBLAS on the CPU, cuBLAS
// on CUDA through kernels/cuda/gemm.hpp). Each gradient (data, weight, bias)
// is its own kernel under its own range and runs only for an input that
// needs it.
#include <algorithm>

#include "kernels/cpu/gemm.hpp"
#include "kernels/cuda/gemm.hpp"
#include "runtime/op_utils.hpp"

namespace recon {

using detail::check_defined;
using detail::check_same_device;

namespace {

// c (m, n) = op(a) op(b), op = transpose when trans_*; a and b contiguous.
Tensor gemm_op(const char* op, bool trans_a, bool trans_b, const Tensor& a, const Tensor& b, int64_t m, int64_t n,
               int64_t k) {
  Tensor c = Tensor::empty({m, n}, a.device());
  switch (a.device().type) {
    case DeviceType::CPU:
      cpu::gemm(trans_a, trans_b, m, n, k, 1.f, a.data(), trans_a ? m : k, b.data(), trans_b ? k : n, 0.f,
                c.data(), n);
      break;
    case DeviceType::CUDA:
      RECON_CUDA_ONLY(op, cuda::gemm(trans_a, trans_b, m, n, k, 1.f, a.data(), trans_a ? m : k, b.data(),
                                     trans_b ? k : n, 0.f, c.data(), n));
      break;
  }
  return c;
}

}  // namespace

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  check_defined("matmul", a_in, "the first operand");
  check_defined("matmul", b_in, "the second operand");
  detail::check_dim("matmul", a_in, 2, "the first operand", "(M, K)");
  detail::check_dim("matmul", b_in, 2, "the second operand", "(K, N)");
  check_same_device("matmul", a_in, b_in);
  RECON_CHECK(a_in.size(1) == b_in.size(0), "matmul: inner dimensions differ: " << shape_str(a_in.shape()) << " x "
                                                                                << shape_str(b_in.shape())
                                                                                << " (expected (M, K) x (K, N))");
  RECON_RANGE("matmul");
  Tensor a = a_in.contiguous(), b = b_in.contiguous();  // a (M, K), b (K, N)
  const int64_t m = a.size(0), k = a.size(1), n = b.size(1);
  Tensor c = gemm_op("matmul", false, false, a, b, m, n, k);  // (M, N)
  if (autograd::any_requires_grad({&a, &b})) {
    Tensor sa = b.requires_grad() ? a.detach() : Tensor();  // each operand is saved only for the other's gradient
    Tensor sb = a.requires_grad() ? b.detach() : Tensor();
    autograd::record("matmul", c, {a, b}, [sa, sb, m, n, k](const Tensor& g_in, const std::vector<bool>& need) {
      Tensor g = g_in.contiguous();  // (M, N)
      Tensor ga, gb;
      if (need[0]) {
        RECON_RANGE("matmul_backward_a");
        ga = gemm_op("matmul_backward_a", false, true, g, sb, m, k, n);  // (M, N) x (N, K)
      }
      if (need[1]) {
        RECON_RANGE("matmul_backward_b");
        gb = gemm_op("matmul_backward_b", true, false, sa, g, k, n, m);  // (K, M) x (M, N)
      }
      return std::vector<Tensor>{ga, gb};
    });
  }
  return c;
}

Tensor linear(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in) {
  check_defined("linear", x_in, "the input");
  check_defined("linear", w_in, "the weight");
  detail::check_dim("linear", w_in, 2, "the weight", "(out, in)");
  RECON_CHECK(x_in.dim() >= 1, "linear: the input must be (..., in), got a 0-d tensor");
  check_same_device("linear", x_in, w_in);
  const int64_t out_f = w_in.size(0), in_f = w_in.size(1);
  RECON_CHECK(x_in.size(-1) == in_f, "linear: input " << shape_str(x_in.shape()) << " has " << x_in.size(-1)
                                                      << " features but weight " << shape_str(w_in.shape())
                                                      << " expects in = " << in_f);
  if (b_in.defined()) {
    check_same_device("linear", x_in, b_in);
    RECON_CHECK(b_in.dim() == 1 && b_in.size(0) == out_f, "linear: bias must be (out) = (" << out_f << ") for weight "
                                                                                           << shape_str(w_in.shape())
                                                                                           << ", got "
                                                                                           << shape_str(b_in.shape()));
  }
  RECON_RANGE("linear");
  // x (M, in) with M the product of the leading dimensions; weight (out, in); bias (out)
  Tensor x = x_in.contiguous(), w = w_in.contiguous(), b = b_in.defined() ? b_in.contiguous() : Tensor();
  const int64_t m = x.numel() / std::max<int64_t>(in_f, 1);
  Shape y_shape = x.shape();
  y_shape.back() = out_f;
  Tensor y = Tensor::empty(y_shape, x.device());  // (..., out)
  switch (x.device().type) {
    case DeviceType::CPU:
      cpu::linear_forward(x.data(), w.data(), b.defined() ? b.data() : nullptr, y.data(), m, in_f, out_f);
      break;
    case DeviceType::CUDA:
      RECON_CUDA_ONLY("linear", cuda::linear_forward(x.data(), w.data(), b.defined() ? b.data() : nullptr, y.data(),
                                                     m, in_f, out_f));
      break;
  }
  if (autograd::any_requires_grad({&x, &w, &b})) {
    Tensor sx = w.requires_grad() ? x.detach() : Tensor();  // only the weight gradient reads x
    Tensor sw = x.requires_grad() ? w.detach() : Tensor();  // only the data gradient reads the weight
    Shape x_shape = x.shape();
    autograd::record("linear", y, {x, w, b},
                     [sx, sw, x_shape, m, in_f, out_f](const Tensor& g_in, const std::vector<bool>& need) {
                       Tensor g = g_in.contiguous();  // (..., out)
                       Tensor gx, gw, gb;
                       const Device dev = g.device();
                       if (need[0]) {
                         RECON_RANGE("linear_backward_data");
                         gx = Tensor::empty(x_shape, dev);  // (..., in)
                         switch (dev.type) {
                           case DeviceType::CPU:
                             cpu::linear_backward_data(g.data(), sw.data(), gx.data(), m, in_f, out_f);
                             break;
                           case DeviceType::CUDA:
                             RECON_CUDA_ONLY("linear_backward_data",
                                             cuda::linear_backward_data(g.data(), sw.data(), gx.data(), m, in_f,
                                                                        out_f));
                             break;
                         }
                       }
                       if (need[1]) {
                         RECON_RANGE("linear_backward_weight");
                         gw = Tensor::empty({out_f, in_f}, dev);
                         switch (dev.type) {
                           case DeviceType::CPU:
                             cpu::linear_backward_weight(g.data(), sx.data(), gw.data(), m, in_f, out_f);
                             break;
                           case DeviceType::CUDA:
                             RECON_CUDA_ONLY("linear_backward_weight",
                                             cuda::linear_backward_weight(g.data(), sx.data(), gw.data(), m, in_f,
                                                                          out_f));
                             break;
                         }
                       }
                       if (need[2]) {
                         RECON_RANGE("linear_backward_bias");
                         gb = Tensor::empty({out_f}, dev);
                         switch (dev.type) {
                           case DeviceType::CPU: cpu::linear_backward_bias(g.data(), gb.data(), m, out_f); break;
                           case DeviceType::CUDA:
                             RECON_CUDA_ONLY("linear_backward_bias",
                                             cuda::linear_backward_bias(g.data(), gb.data(), m, out_f));
                             break;
                         }
                       }
                       return std::vector<Tensor>{gx, gw, gb};
                     });
  }
  return y;
}

}  // namespace recon
