// Shape ops: concat (any dim, any rank), slice (a strided view over the same
// storage), pad (zero or reflect on (N, C, H, W)) and rot90 of the (H, W)
// plane, forward and backward.
#include <algorithm>

#include "kernels/common/elementwise.hpp"  // StridedLayout
#include "kernels/cpu/shape.hpp"
#include "kernels/cuda/shape.hpp"
#include "runtime/op_utils.hpp"

namespace recon {

using detail::check_defined;
using detail::check_same_device;

Tensor concat(const std::vector<Tensor>& xs_in, int dim) {
  const char* op = "concat";
  RECON_CHECK(!xs_in.empty(), op << ": needs at least one tensor");
  for (const Tensor& t : xs_in) check_defined(op, t, "an input");
  const Tensor& first = xs_in[0];
  RECON_CHECK(first.dim() > 0, op << ": cannot concatenate 0-d tensors");
  const int d = detail::normalize_axis(op, dim, first.shape());
  Shape out_shape = first.shape();
  out_shape[d] = 0;
  for (size_t i = 0; i < xs_in.size(); ++i) {
    const Tensor& t = xs_in[i];
    check_same_device(op, first, t);
    bool fits = t.dim() == first.dim();
    for (int64_t a = 0; fits && a < t.dim(); ++a) fits = a == d || t.size(a) == first.size(a);
    RECON_CHECK(fits, op << ": input " << i << " has shape " << shape_str(t.shape()) << " but input 0 has "
                         << shape_str(first.shape()) << "; only dim " << d << " may differ");
    out_shape[d] += t.size(d);
  }
  RECON_RANGE(op);
  std::vector<Tensor> xs;
  for (const Tensor& t : xs_in) xs.push_back(t.contiguous());
  // Each input is `outer` rows of size(d) * inner elements; the output's rows are `total` long.
  int64_t outer = 1, inner = 1;
  for (int a = 0; a < d; ++a) outer *= out_shape[a];
  for (size_t a = d + 1; a < out_shape.size(); ++a) inner *= out_shape[a];
  const int64_t total = out_shape[d] * inner;
  Tensor out = Tensor::empty(out_shape, first.device());
  switch (first.device().type) {
    case DeviceType::CPU: {
      int64_t off = 0;
      for (const Tensor& t : xs) {
        const int64_t len = t.size(d) * inner;
        cpu::copy_rows(t.data(), len, out.data() + off, total, outer, len);
        off += len;
      }
      break;
    }
    case DeviceType::CUDA: {
      int64_t off = 0;
      for (const Tensor& t : xs) {
        const int64_t len = t.size(d) * inner;
        RECON_CUDA_ONLY(op, cuda::copy_rows(t.data(), len, out.data() + off, total, outer, len));
        off += len;
      }
      break;
    }
  }
  if (autograd::any_requires_grad(xs)) {
    std::vector<Shape> shapes;
    for (const Tensor& t : xs) shapes.push_back(t.shape());
    autograd::record(op, out, xs, [shapes, d, outer, inner, total](const Tensor& g_in, const std::vector<bool>& need) {
      RECON_RANGE("concat_backward");
      Tensor g = g_in.contiguous();
      std::vector<Tensor> grads(shapes.size());
      int64_t off = 0;
      for (size_t i = 0; i < shapes.size(); ++i) {
        const int64_t len = shapes[i][d] * inner;
        if (need[i]) {
          grads[i] = Tensor::empty(shapes[i], g.device());
          switch (g.device().type) {
            case DeviceType::CPU: cpu::copy_rows(g.data() + off, total, grads[i].data(), len, outer, len); break;
            case DeviceType::CUDA:
              RECON_CUDA_ONLY("concat_backward",
                              cuda::copy_rows(g.data() + off, total, grads[i].data(), len, outer, len));
              break;
          }
        }
        off += len;
      }
      return grads;
    });
  }
  return out;
}

Tensor slice(const Tensor& x, int dim, int64_t start, int64_t end, int64_t step) {
  const char* op = "slice";
  check_defined(op, x, "the input");
  RECON_CHECK(x.dim() > 0, op << ": cannot slice a 0-d tensor");
  const int d = detail::normalize_axis(op, dim, x.shape());
  RECON_CHECK(step > 0, op << ": step " << step << " must be positive (input " << shape_str(x.shape()) << ")");
  // Python semantics: a negative index counts from the end; both ends clamp to [0, n].
  const int64_t n = x.size(d);
  auto clamp_index = [n](int64_t i) { return std::clamp<int64_t>(i < 0 ? i + n : i, 0, n); };
  const int64_t s = clamp_index(start), e = clamp_index(end);
  const int64_t len = e > s ? (e - s + step - 1) / step : 0;
  Shape shape = x.shape(), strides = x.strides();
  shape[d] = len;
  const int64_t offset = x.offset() + (len > 0 ? s * strides[d] : 0);
  strides[d] *= step;
  Tensor out = make_view(x.impl()->storage, shape, strides, offset);
  if (autograd::any_requires_grad({&x})) {
    Shape in_shape = x.shape();
    autograd::record(op, out, {x}, [in_shape, d, s, step](const Tensor& g_in, const std::vector<bool>&) {
      RECON_RANGE("slice_backward");
      Tensor g = g_in.contiguous();
      Tensor dx = Tensor::zeros(in_shape, g.device());  // the input's shape, zero outside the slice
      // The slice's positions inside the contiguous dx.
      Shape view_strides = contiguous_strides(in_shape);
      const int64_t off = s * view_strides[d];
      view_strides[d] *= step;
      if (g.numel() == 0) return std::vector<Tensor>{dx};
      switch (g.device().type) {
        case DeviceType::CPU: cpu::strided_scatter(g.data(), g.shape(), view_strides, dx.data() + off); break;
        case DeviceType::CUDA: {
          StridedLayout layout{};
          RECON_CHECK(g.dim() <= kMaxStridedDims, "slice_backward: a " << g.dim() << "-D gradient is above the "
                                                  << kMaxStridedDims << " dims the CUDA scatter takes");
          layout.rank = (int)g.dim();
          for (int a = 0; a < layout.rank; ++a) {
            layout.shape[a] = g.size(a);
            layout.stride[a] = view_strides[a];
          }
          RECON_CUDA_ONLY("slice_backward", cuda::strided_scatter(g.data(), layout, dx.data() + off));
          break;
        }
      }
      return std::vector<Tensor>{dx};
    });
  }
  return out;
}

Tensor pad(const Tensor& x_in, const std::array<int, 4>& pads, PadMode mode) {
  const char* op = "pad";
  check_defined(op, x_in, "the input");
  detail::check_dim(op, x_in, 4, "the input", "(N, C, H, W)");
  const int left = pads[0], right = pads[1], top = pads[2], bottom = pads[3];
  RECON_CHECK(left >= 0 && right >= 0 && top >= 0 && bottom >= 0,
              op << ": pads (left " << left << ", right " << right << ", top " << top << ", bottom " << bottom
                 << ") must be non-negative, for input " << shape_str(x_in.shape()));
  const int64_t h = x_in.size(2), w = x_in.size(3);
  RECON_CHECK(mode != PadMode::Reflect || (left < w && right < w && top < h && bottom < h),
              op << ": reflect pads (left " << left << ", right " << right << ", top " << top << ", bottom "
                 << bottom << ") must be smaller than the padded dims of input " << shape_str(x_in.shape()));
  RECON_RANGE(op);
  Tensor x = x_in.contiguous();
  const Pad2dParams p{x.size(0) * x.size(1), h, w, h + top + bottom, w + left + right, left, top};
  const PadKind kind = mode == PadMode::Reflect ? PadKind::Reflect : PadKind::Zero;
  Tensor y = Tensor::empty({x.size(0), x.size(1), p.out_h, p.out_w}, x.device());  // (N, C, Ho, Wo)
  if (y.numel() > 0) {
    switch (x.device().type) {
      case DeviceType::CPU: cpu::pad2d_forward(p, kind, x.data(), y.data()); break;
      case DeviceType::CUDA: RECON_CUDA_ONLY(op, cuda::pad2d_forward(p, kind, x.data(), y.data())); break;
    }
  }
  if (autograd::any_requires_grad({&x})) {
    Shape in_shape = x.shape();
    autograd::record(op, y, {x}, [in_shape, p, kind](const Tensor& g_in, const std::vector<bool>&) {
      RECON_RANGE("pad_backward");
      Tensor g = g_in.contiguous();
      Tensor dx = Tensor::empty(in_shape, g.device());  // (N, C, H, W); the kernel writes all of it
      if (dx.numel() == 0) return std::vector<Tensor>{dx};
      switch (g.device().type) {
        case DeviceType::CPU: cpu::pad2d_backward(p, kind, g.data(), dx.data()); break;
        case DeviceType::CUDA:
          RECON_CUDA_ONLY("pad_backward", cuda::pad2d_backward(p, kind, g.data(), dx.data()));
          break;
      }
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

Tensor rot90(const Tensor& x_in, int k) {
  const char* op = "rot90";
  check_defined(op, x_in, "the input");
  detail::check_dim(op, x_in, 4, "the input", "(N, C, H, W)");
  const int turns = rot90_turns(k);
  RECON_RANGE(op);
  Tensor x = x_in.contiguous();
  const int64_t planes = x.size(0) * x.size(1), h = x.size(2), w = x.size(3);
  const bool odd = turns % 2 == 1;
  Tensor y = Tensor::empty({x.size(0), x.size(1), odd ? w : h, odd ? h : w}, x.device());  // (N, C, Ho, Wo)
  if (y.numel() > 0) {
    switch (x.device().type) {
      case DeviceType::CPU: cpu::rot90(x.data(), y.data(), planes, h, w, turns); break;
      case DeviceType::CUDA: RECON_CUDA_ONLY(op, cuda::rot90(x.data(), y.data(), planes, h, w, turns)); break;
    }
  }
  if (autograd::any_requires_grad({&x})) {
    Shape in_shape = x.shape();
    autograd::record(op, y, {x}, [in_shape, turns](const Tensor& g_in, const std::vector<bool>&) {
      RECON_RANGE("rot90_backward");
      Tensor g = g_in.contiguous();  // (N, C, Ho, Wo): turned back by 4 - turns quarter turns
      Tensor dx = Tensor::empty(in_shape, g.device());
      if (dx.numel() == 0) return std::vector<Tensor>{dx};
      switch (g.device().type) {
        case DeviceType::CPU:
          cpu::rot90(g.data(), dx.data(), g.size(0) * g.size(1), g.size(2), g.size(3), (4 - turns) % 4);
          break;
        case DeviceType::CUDA:
          RECON_CUDA_ONLY("rot90_backward", cuda::rot90(g.data(), dx.data(), g.size(0) * g.size(1), g.size(2),
                                                        g.size(3), (4 - turns) % 4));
          break;
      }
      return std::vector<Tensor>{dx};
    });
  }
  return y;
}

}  // namespace recon
