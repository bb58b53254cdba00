// Convolution ops: conv2d and conv_transpose2d. Both run the same three
// kernels (kernels/cpu/conv.hpp) over a conv2d-view geometry: conv_transpose2d's
// forward is conv2d's data gradient, its data gradient is conv2d's forward and
// its weight gradient is conv2d's weight gradient with x and dy swapped. Each
// gradient (data, weight, bias) is its own kernel under its own range and runs
// only for an input that needs it: a frozen layer runs no weight gradient.
// The CUDA arms call kernels/cuda/conv.hpp's launchers with the same
// geometry; there conv_transpose2d's bias is fused into its forward kernel.
#include <climits>
#include <sstream>

#include "kernels/cpu/conv.hpp"
#include "kernels/cuda/conv.hpp"
#include "runtime/op_utils.hpp"

namespace recon {

using detail::check_defined;
using detail::check_same_device;

namespace {

std::string pair_str(const std::array<int, 2>& a) {
  std::ostringstream s;  // (not string operator+: GCC 12 reports a false -Wrestrict there)
  s << "(" << a[0] << ", " << a[1] << ")";
  return s.str();
}

void check_conv_options(const char* op, const std::array<int, 2>& stride, const std::array<int, 2>& padding,
                        const std::array<int, 2>& dilation) {
  RECON_CHECK(stride[0] > 0 && stride[1] > 0, op << ": stride must be positive, got " << pair_str(stride));
  RECON_CHECK(padding[0] >= 0 && padding[1] >= 0, op << ": padding must be non-negative, got " << pair_str(padding));
  RECON_CHECK(dilation[0] > 0 && dilation[1] > 0, op << ": dilation must be positive, got " << pair_str(dilation));
}

// The geometry holds ints (the CUDA kernels' index type).
void check_int_dims(const char* op, const Tensor& t, const char* what) {
  for (int64_t s : t.shape())
    RECON_CHECK(s <= INT_MAX, op << ": " << what << " " << shape_str(t.shape()) << " has a dimension over 2^31 - 1");
}

// x and weight defined, 4-D, on one device with the bias (if any).
void check_conv_tensors(const char* op, const Tensor& x, const Tensor& w, const Tensor& b, const char* w_layout) {
  check_defined(op, x, "the input");
  check_defined(op, w, "the weight");
  detail::check_dim(op, x, 4, "the input", "(N, Cin, H, W)");
  detail::check_dim(op, w, 4, "the weight", w_layout);
  check_same_device(op, x, w);
  check_int_dims(op, x, "input");
  check_int_dims(op, w, "weight");
  RECON_CHECK(w.size(2) > 0 && w.size(3) > 0, op << ": weight " << shape_str(w.shape()) << " has an empty kernel");
  if (b.defined()) check_same_device(op, x, b);
}

// bias undefined or (Cout), Cout = weight dimension `channels_dim`.
void check_conv_bias(const char* op, const Tensor& w, const Tensor& b, int channels_dim) {
  if (!b.defined()) return;
  const int64_t c = w.size(channels_dim);
  RECON_CHECK(b.dim() == 1 && b.size(0) == c, op << ": bias must be (Cout) = (" << c << ") for weight "
                                                 << shape_str(w.shape()) << ", got " << shape_str(b.shape()));
}

ConvGeometry checked_conv2d_geometry(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& opt) {
  const char* op = "conv2d";
  check_conv_tensors(op, x, w, b, "(Cout, Cin, kh, kw)");
  check_conv_options(op, opt.stride, opt.padding, opt.dilation);
  RECON_CHECK(x.size(1) == w.size(1), op << ": input " << shape_str(x.shape()) << " has " << x.size(1)
                                         << " channels but weight " << shape_str(w.shape())
                                         << " (Cout, Cin, kh, kw) expects Cin = " << w.size(1));
  check_conv_bias(op, w, b, 0);
  ConvGeometry g;
  g.n = (int)x.size(0);
  g.c_in = (int)x.size(1), g.h = (int)x.size(2), g.w = (int)x.size(3);
  g.c_out = (int)w.size(0), g.kh = (int)w.size(2), g.kw = (int)w.size(3);
  g.stride_h = opt.stride[0], g.stride_w = opt.stride[1];
  g.pad_h = opt.padding[0], g.pad_w = opt.padding[1];
  g.dil_h = opt.dilation[0], g.dil_w = opt.dilation[1];
  const int64_t ext_h = conv_kernel_extent(g.kh, g.dil_h), ext_w = conv_kernel_extent(g.kw, g.dil_w);
  RECON_CHECK(ext_h <= (int64_t)g.h + 2 * g.pad_h && ext_w <= (int64_t)g.w + 2 * g.pad_w,
              op << ": kernel " << g.kh << "x" << g.kw << " (dilation " << pair_str(opt.dilation)
                 << ", covering " << ext_h << "x" << ext_w << ") is larger than the padded input "
                 << (int64_t)g.h + 2 * g.pad_h << "x" << (int64_t)g.w + 2 * g.pad_w << " (input "
                 << shape_str(x.shape()) << ", padding " << pair_str(opt.padding) << ")");
  conv2d_set_output(g);
  return g;
}

// conv_transpose2d of x (N, Cin, H, W) with weight (Cin, Cout, kh, kw) as the
// data gradient of a conv2d from (N, Cout, Ho, Wo) to (N, Cin, H, W).
ConvGeometry checked_conv_transpose2d_geometry(const Tensor& x, const Tensor& w, const Tensor& b,
                                               const ConvTranspose2dOptions& opt) {
  const char* op = "conv_transpose2d";
  check_conv_tensors(op, x, w, b, "(Cin, Cout, kh, kw)");
  check_conv_options(op, opt.stride, opt.padding, opt.dilation);
  RECON_CHECK(x.size(1) == w.size(0), op << ": input " << shape_str(x.shape()) << " has " << x.size(1)
                                         << " channels but weight " << shape_str(w.shape())
                                         << " (Cin, Cout, kh, kw) expects Cin = " << w.size(0));
  check_conv_bias(op, w, b, 1);
  for (int d = 0; d < 2; ++d)
    RECON_CHECK(opt.output_padding[d] >= 0 &&
                    (opt.output_padding[d] < opt.stride[d] || opt.output_padding[d] < opt.dilation[d]),
                op << ": output_padding " << pair_str(opt.output_padding)
                   << " must be non-negative and smaller than either stride " << pair_str(opt.stride)
                   << " or dilation " << pair_str(opt.dilation));
  ConvGeometry g;
  g.n = (int)x.size(0);
  g.c_out = (int)x.size(1), g.ho = (int)x.size(2), g.wo = (int)x.size(3);
  g.c_in = (int)w.size(1), g.kh = (int)w.size(2), g.kw = (int)w.size(3);
  g.stride_h = opt.stride[0], g.stride_w = opt.stride[1];
  g.pad_h = opt.padding[0], g.pad_w = opt.padding[1];
  g.dil_h = opt.dilation[0], g.dil_w = opt.dilation[1];
  // The output size in 64 bits first: conv_transpose2d_set_output computes it in int.
  const int64_t oh = (int64_t)(g.ho - 1) * g.stride_h - 2 * (int64_t)g.pad_h +
                     conv_kernel_extent(g.kh, g.dil_h) + opt.output_padding[0];
  const int64_t ow = (int64_t)(g.wo - 1) * g.stride_w - 2 * (int64_t)g.pad_w +
                     conv_kernel_extent(g.kw, g.dil_w) + opt.output_padding[1];
  RECON_CHECK(oh > 0 && ow > 0,
              op << ": output size " << oh << "x" << ow << " is not positive (input " << shape_str(x.shape())
                 << ", weight " << shape_str(w.shape()) << ", stride " << pair_str(opt.stride) << ", padding "
                 << pair_str(opt.padding) << ", dilation " << pair_str(opt.dilation) << ")");
  RECON_CHECK(oh <= INT_MAX && ow <= INT_MAX, op << ": output size " << oh << "x" << ow << " exceeds 2^31 - 1");
  conv_transpose2d_set_output(g, opt.output_padding[0], opt.output_padding[1]);
  return g;
}

const float* data_or_null(const Tensor& t) { return t.defined() ? t.data() : nullptr; }

// ---- the kernels, one device switch each; the callers open the ranges --------

#if defined(RECON_WITH_CUDA)
// The split-K workspace of a CUDA conv pass (undefined when unsplit); stream-ordered, freed on return.
Tensor cuda_conv_workspace(const ConvGeometry& g, cuda::ConvPass pass, Device device) {
  const int64_t ws_floats = cuda::conv_workspace(g, pass);
  return ws_floats > 0 ? Tensor::empty({ws_floats}, device) : Tensor();
}

void cuda_conv_forward(const ConvGeometry& g, const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) {
  Tensor ws = cuda_conv_workspace(g, cuda::ConvPass::kForward, x.device());
  cuda::conv2d_forward(g, x.data(), w.data(), data_or_null(b), ws.defined() ? ws.data() : nullptr, y.data());
}

void cuda_conv_backward_data(const ConvGeometry& g, const Tensor& dy, const Tensor& w, const Tensor& b, Tensor& dx) {
  Tensor ws = cuda_conv_workspace(g, cuda::ConvPass::kBackwardData, dy.device());
  cuda::conv2d_backward_data(g, dy.data(), w.data(), data_or_null(b), ws.defined() ? ws.data() : nullptr, dx.data());
}
#endif

// y (n, c_out, ho, wo) = conv(x (n, c_in, h, w), w (c_out, c_in, kh, kw)) + b (c_out) or no bias.
Tensor run_conv_forward(const char* op, const ConvGeometry& g, const Tensor& x, const Tensor& w, const Tensor& b) {
  Tensor y = Tensor::empty({g.n, g.c_out, g.ho, g.wo}, x.device());
  switch (x.device().type) {
    case DeviceType::CPU: cpu::conv2d_forward(g, x.data(), w.data(), data_or_null(b), y.data()); break;
    case DeviceType::CUDA:
      RECON_CUDA_ONLY(op, cuda_conv_forward(g, x, w, b, y));
      break;
  }
  return y;
}

// dx (n, c_in, h, w) from dy (n, c_out, ho, wo) and w (c_out, c_in, kh, kw), plus b (c_in) when
// defined (conv_transpose2d's forward).
Tensor run_conv_backward_data(const char* op, const ConvGeometry& g, const Tensor& dy, const Tensor& w,
                              const Tensor& b) {
  Tensor dx = Tensor::empty({g.n, g.c_in, g.h, g.w}, dy.device());
  switch (dy.device().type) {
    case DeviceType::CPU:
      cpu::conv2d_backward_data(g, dy.data(), w.data(), dx.data());
      if (b.defined()) cpu::add_channel_bias(dx.data(), b.data(), g.n, g.c_in, (int64_t)g.h * g.w);
      break;
    case DeviceType::CUDA:
      RECON_CUDA_ONLY(op, cuda_conv_backward_data(g, dy, w, b, dx));
      break;
  }
  return dx;
}

#if defined(RECON_WITH_CUDA)
// The CUDA weight gradient with its split-reduction workspace (stream-ordered, freed on return).
void cuda_conv_backward_weight(const ConvGeometry& g, const Tensor& x, const Tensor& dy, Tensor& dw) {
  Tensor ws = cuda_conv_workspace(g, cuda::ConvPass::kBackwardWeight, dy.device());
  cuda::conv2d_backward_weight(g, x.data(), dy.data(), ws.defined() ? ws.data() : nullptr, dw.data());
}
#endif

// dw (c_out, c_in, kh, kw) from x (n, c_in, h, w) and dy (n, c_out, ho, wo).
Tensor run_conv_backward_weight(const char* op, const ConvGeometry& g, const Tensor& x, const Tensor& dy) {
  Tensor dw = Tensor::empty({g.c_out, g.c_in, g.kh, g.kw}, dy.device());
  switch (dy.device().type) {
    case DeviceType::CPU: cpu::conv2d_backward_weight(g, x.data(), dy.data(), dw.data()); break;
    case DeviceType::CUDA: RECON_CUDA_ONLY(op, cuda_conv_backward_weight(g, x, dy, dw)); break;
  }
  return dw;
}

// db (C) = the sums of dy (N, C, H, W) over N, H and W.
Tensor run_conv_backward_bias(const char* op, const Tensor& dy) {
  Tensor db = Tensor::empty({dy.size(1)}, dy.device());
  switch (dy.device().type) {
    case DeviceType::CPU:
      cpu::conv2d_backward_bias(dy.data(), db.data(), dy.size(0), dy.size(1), dy.size(2) * dy.size(3));
      break;
    case DeviceType::CUDA:
      RECON_CUDA_ONLY(op, cuda::conv2d_backward_bias(dy.data(), db.data(), dy.size(0), dy.size(1),
                                                     dy.size(2) * dy.size(3)));
      break;
  }
  return db;
}

}  // namespace

Tensor conv2d(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, const Conv2dOptions& opt) {
  const ConvGeometry g = checked_conv2d_geometry(x_in, w_in, b_in, opt);
  RECON_RANGE("conv2d");
  // x (N, Cin, H, W), w (Cout, Cin, kh, kw), b (Cout) or undefined
  Tensor x = x_in.contiguous(), w = w_in.contiguous(), b = b_in.defined() ? b_in.contiguous() : Tensor();
  Tensor y = run_conv_forward("conv2d", g, x, w, b);  // (N, Cout, Ho, Wo)
  if (autograd::any_requires_grad({&x, &w, &b})) {
    Tensor sx = w.requires_grad() ? x.detach() : Tensor();  // only the weight gradient reads x
    Tensor sw = x.requires_grad() ? w.detach() : Tensor();  // only the data gradient reads w
    autograd::record("conv2d", y, {x, w, b}, [g, sx, sw](const Tensor& gy_in, const std::vector<bool>& need) {
      Tensor gy = gy_in.contiguous();  // (N, Cout, Ho, Wo)
      Tensor gx, gw, gb;
      if (need[0]) {
        RECON_RANGE("conv2d_backward_data");
        gx = run_conv_backward_data("conv2d_backward_data", g, gy, sw, Tensor());
      }
      if (need[1]) {
        RECON_RANGE("conv2d_backward_weight");
        gw = run_conv_backward_weight("conv2d_backward_weight", g, sx, gy);
      }
      if (need[2]) {
        RECON_RANGE("conv2d_backward_bias");
        gb = run_conv_backward_bias("conv2d_backward_bias", gy);
      }
      return std::vector<Tensor>{gx, gw, gb};
    });
  }
  return y;
}

Tensor conv_transpose2d(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in,
                        const ConvTranspose2dOptions& opt) {
  // g is the conv2d from the output (N, Cout, Ho, Wo) to the input (N, Cin, H, W).
  const ConvGeometry g = checked_conv_transpose2d_geometry(x_in, w_in, b_in, opt);
  RECON_RANGE("conv_transpose2d");
  // x (N, Cin, H, W), w (Cin, Cout, kh, kw), b (Cout) or undefined
  Tensor x = x_in.contiguous(), w = w_in.contiguous(), b = b_in.defined() ? b_in.contiguous() : Tensor();
  Tensor y = run_conv_backward_data("conv_transpose2d", g, x, w, b);  // (N, Cout, Ho, Wo)
  if (autograd::any_requires_grad({&x, &w, &b})) {
    Tensor sx = w.requires_grad() ? x.detach() : Tensor();  // only the weight gradient reads x
    Tensor sw = x.requires_grad() ? w.detach() : Tensor();  // only the data gradient reads w
    autograd::record("conv_transpose2d", y, {x, w, b},
                     [g, sx, sw](const Tensor& gy_in, const std::vector<bool>& need) {
                       Tensor gy = gy_in.contiguous();  // (N, Cout, Ho, Wo)
                       Tensor gx, gw, gb;
                       if (need[0]) {
                         RECON_RANGE("conv_transpose2d_backward_data");
                         gx = run_conv_forward("conv_transpose2d_backward_data", g, gy, sw, Tensor());
                       }
                       if (need[1]) {
                         RECON_RANGE("conv_transpose2d_backward_weight");
                         gw = run_conv_backward_weight("conv_transpose2d_backward_weight", g, gy, sx);
                       }
                       if (need[2]) {
                         RECON_RANGE("conv_transpose2d_backward_bias");
                         gb = run_conv_backward_bias("conv_transpose2d_backward_bias", gy);
                       }
                       return std::vector<Tensor>{gx, gw, gb};
                     });
  }
  return y;
}

}  // namespace recon
