// Elementwise ops: binary with broadcasting, unary with derivatives, a += b.
#include <algorithm>

#include "kernels/cpu/elementwise.hpp"
#include "kernels/cuda/elementwise.hpp"
#include "runtime/op_utils.hpp"

namespace recon {

using detail::check_defined;
using detail::check_same_device;

// ---- broadcasting --------------------------------------------------------------

static Shape broadcast_shape(const char* op, const Shape& a, const Shape& b) {
  if (a == b) return a;  // nothing to broadcast: any rank
  RECON_CHECK(a.size() <= 4 && b.size() <= 4, op << ": broadcasting supports up to 4-D, got " << shape_str(a)
                                                 << " and " << shape_str(b));
  size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    RECON_CHECK(da == db || da == 1 || db == 1, op << ": shapes " << shape_str(a) << " and " << shape_str(b)
                                                   << " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Strides of a contiguous operand of shape `s` seen in the 4-D index space of `out`.
static void broadcast_strides(const Shape& s, const Shape& out, int64_t* stride4) {
  Shape st = contiguous_strides(s);
  size_t pad_out = 4 - out.size(), pad_s = out.size() - s.size();
  for (int d = 0; d < 4; ++d) {
    int idx = d - (int)pad_out - (int)pad_s;  // index into s
    stride4[d] = (idx < 0 || s[idx] == 1) ? 0 : st[idx];
  }
}

static Tensor binary_forward(const char* op, BinaryOp kind, const Tensor& a_in, const Tensor& b_in) {
  check_defined(op, a_in, "the first operand");
  check_defined(op, b_in, "the second operand");
  check_same_device(op, a_in, b_in);
  RECON_RANGE(op);
  Tensor a = a_in.contiguous(), b = b_in.contiguous();
  Shape shape = broadcast_shape(op, a.shape(), b.shape());
  Tensor out = Tensor::empty(shape, a.device());
  if (out.numel() == 0) return out;
  if (a.shape() == b.shape()) {
    switch (a.device().type) {
      case DeviceType::CPU: cpu::binary_same(kind, a.data(), b.data(), out.data(), out.numel()); break;
      case DeviceType::CUDA:
        RECON_CUDA_ONLY(op, cuda::binary_same(kind, a.data(), b.data(), out.data(), out.numel()));
        break;
    }
    return out;
  }
  Broadcast4 bc{};
  for (int d = 0; d < 4; ++d) bc.shape[d] = d < 4 - (int)shape.size() ? 1 : shape[d - (4 - shape.size())];
  broadcast_strides(a.shape(), shape, bc.a_stride);
  broadcast_strides(b.shape(), shape, bc.b_stride);
  switch (a.device().type) {
    case DeviceType::CPU: cpu::binary_broadcast(kind, bc, a.data(), b.data(), out.data()); break;
    case DeviceType::CUDA: RECON_CUDA_ONLY(op, cuda::binary_broadcast(kind, bc, a.data(), b.data(), out.data())); break;
  }
  return out;
}

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("add", BinaryOp::Add, a, b);
  if (autograd::any_requires_grad({&a, &b})) {
    Shape sa = a.shape(), sb = b.shape();
    autograd::record("add", out, {a, b}, [sa, sb](const Tensor& g, const std::vector<bool>& need) {
      return std::vector<Tensor>{need[0] ? sum_to(g, sa) : Tensor(), need[1] ? sum_to(g, sb) : Tensor()};
    });
  }
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("sub", BinaryOp::Sub, a, b);
  if (autograd::any_requires_grad({&a, &b})) {
    Shape sa = a.shape(), sb = b.shape();
    autograd::record("sub", out, {a, b}, [sa, sb](const Tensor& g, const std::vector<bool>& need) {
      return std::vector<Tensor>{need[0] ? sum_to(g, sa) : Tensor(), need[1] ? sum_to(neg(g), sb) : Tensor()};
    });
  }
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("mul", BinaryOp::Mul, a, b);
  if (autograd::any_requires_grad({&a, &b})) {
    Tensor sa = a.detach(), sb = b.detach();
    autograd::record("mul", out, {a, b}, [sa, sb](const Tensor& g, const std::vector<bool>& need) {
      return std::vector<Tensor>{need[0] ? sum_to(mul(g, sb), sa.shape()) : Tensor(),
                                 need[1] ? sum_to(mul(g, sa), sb.shape()) : Tensor()};
    });
  }
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward("div", BinaryOp::Div, a, b);
  if (autograd::any_requires_grad({&a, &b})) {
    Tensor sa = a.detach(), sb = b.detach();
    autograd::record("div", out, {a, b}, [sa, sb](const Tensor& g, const std::vector<bool>& need) {
      Tensor ga, gb;
      if (need[0]) ga = sum_to(div(g, sb), sa.shape());
      if (need[1]) gb = sum_to(neg(div(mul(g, sa), mul(sb, sb))), sb.shape());  // -g a / b^2
      return std::vector<Tensor>{ga, gb};
    });
  }
  return out;
}

// ---- unary -----------------------------------------------------------------------

static Tensor unary_op(const char* op, UnaryOp kind, const Tensor& x_in, float p0 = 0.f, float p1 = 0.f) {
  check_defined(op, x_in, "the input");
  RECON_RANGE(op);
  Tensor x = x_in.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.device());
  switch (x.device().type) {
    case DeviceType::CPU: cpu::unary(kind, x.data(), y.data(), x.numel(), p0, p1); break;
    case DeviceType::CUDA: RECON_CUDA_ONLY(op, cuda::unary(kind, x.data(), y.data(), x.numel(), p0, p1)); break;
  }
  if (autograd::any_requires_grad({&x})) {
    Tensor sx = x.detach(), sy = y.detach();
    autograd::record(op, y, {x}, [op, kind, sx, sy, p0, p1](const Tensor& g_in, const std::vector<bool>&) {
      Tensor g = g_in.contiguous();
      Tensor gx = Tensor::empty(sx.shape(), sx.device());
      switch (sx.device().type) {
        case DeviceType::CPU:
          cpu::unary_backward(kind, sx.data(), sy.data(), g.data(), gx.data(), sx.numel(), p0, p1);
          break;
        case DeviceType::CUDA:
          RECON_CUDA_ONLY(op,
                          cuda::unary_backward(kind, sx.data(), sy.data(), g.data(), gx.data(), sx.numel(), p0, p1));
          break;
      }
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

Tensor scale(const Tensor& x, float s) { return unary_op("scale", UnaryOp::Scale, x, s); }
Tensor add_scalar(const Tensor& x, float s) { return unary_op("add_scalar", UnaryOp::AddScalar, x, s); }
Tensor neg(const Tensor& x) { return unary_op("neg", UnaryOp::Neg, x); }
Tensor exp(const Tensor& x) { return unary_op("exp", UnaryOp::Exp, x); }
Tensor log(const Tensor& x) { return unary_op("log", UnaryOp::Log, x); }
Tensor sqrt(const Tensor& x) { return unary_op("sqrt", UnaryOp::Sqrt, x); }
Tensor pow(const Tensor& x, float p) { return unary_op("pow", UnaryOp::Pow, x, p); }
Tensor relu(const Tensor& x) { return unary_op("relu", UnaryOp::Relu, x); }
Tensor leaky_relu(const Tensor& x, float slope) { return unary_op("leaky_relu", UnaryOp::LeakyRelu, x, slope); }
Tensor sigmoid(const Tensor& x) { return unary_op("sigmoid", UnaryOp::Sigmoid, x); }
Tensor tanh(const Tensor& x) { return unary_op("tanh", UnaryOp::Tanh, x); }

Tensor clamp(const Tensor& x, float lo, float hi) {
  RECON_CHECK(lo <= hi, "clamp: lo = " << lo << " is greater than hi = " << hi);
  return unary_op("clamp", UnaryOp::Clamp, x, lo, hi);
}

void add_(Tensor& a, const Tensor& b) {
  check_same_device("add_", a, b);
  detail::check_same_shape("add_", a, b);
  RECON_CHECK(a.is_contiguous(), "add_: the destination must be contiguous");
  RECON_RANGE("add_");
  Tensor bc = b.contiguous();
  switch (a.device().type) {
    case DeviceType::CPU: cpu::add_inplace(a.data(), bc.data(), a.numel()); break;
    case DeviceType::CUDA: RECON_CUDA_ONLY("add_", cuda::add_inplace(a.data(), bc.data(), a.numel())); break;
  }
}

}  // namespace recon
