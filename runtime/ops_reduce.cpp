// Reductions (sum, mean; over everything or over axes), sum_to and
// broadcast_to, the pair that broadcasting's backward needs.
#include <algorithm>
#include <set>

#include "kernels/cpu/reduce.hpp"
#include "kernels/cuda/elementwise.hpp"
#include "kernels/cuda/reduce.hpp"
#include "runtime/op_utils.hpp"

namespace recon {

namespace {

// Sums a contiguous tensor over one axis, keeping it as size 1. No autograd.
Tensor sum_one_axis(const Tensor& x, int axis) {
  Shape out_shape = x.shape();
  int64_t outer = 1, inner = 1, r = out_shape[axis];
  for (int d = 0; d < axis; ++d) outer *= out_shape[d];
  for (size_t d = axis + 1; d < out_shape.size(); ++d) inner *= out_shape[d];
  out_shape[axis] = 1;
  Tensor out = Tensor::empty(out_shape, x.device());
  switch (x.device().type) {
    case DeviceType::CPU: cpu::sum_axis(x.data(), out.data(), outer, r, inner); break;
    case DeviceType::CUDA: RECON_CUDA_ONLY("sum", cuda::sum_axis(x.data(), out.data(), outer, r, inner)); break;
  }
  return out;
}

// x broadcast to `shape` (right-aligned, up to 4-D). No autograd.
Tensor broadcast_to(const Tensor& x_in, const Shape& shape) {
  Tensor x = x_in.contiguous();
  if (x.shape() == shape) return x;
  RECON_CHECK(shape.size() <= 4 && x.dim() <= (int64_t)shape.size(),
              "broadcast_to: cannot broadcast " << shape_str(x.shape()) << " to " << shape_str(shape));
  Broadcast4 bc{};
  Shape st = contiguous_strides(x.shape());
  for (int d = 0; d < 4; ++d) {
    int od = d - (4 - (int)shape.size());
    int xd = od - ((int)shape.size() - (int)x.dim());
    bc.shape[d] = od < 0 ? 1 : shape[od];
    bc.a_stride[d] = (xd < 0 || x.shape()[xd] == 1) ? 0 : st[xd];
    bc.b_stride[d] = 0;
    RECON_CHECK(xd < 0 || x.shape()[xd] == 1 || x.shape()[xd] == bc.shape[d],
                "broadcast_to: cannot broadcast " << shape_str(x.shape()) << " to " << shape_str(shape));
  }
  Tensor out = Tensor::empty(shape, x.device());
  switch (x.device().type) {
    case DeviceType::CPU: cpu::broadcast_copy(bc, x.data(), out.data()); break;
    case DeviceType::CUDA: RECON_CUDA_ONLY("broadcast_to", cuda::broadcast_copy(bc, x.data(), out.data())); break;
  }
  return out;
}

std::vector<int> normalized_axes(const char* op, const Tensor& x, const std::vector<int>& axes) {
  std::set<int> s;
  for (int a : axes) {
    int n = detail::normalize_axis(op, a, x.shape());
    RECON_CHECK(s.insert(n).second, op << ": axis " << a << " is given twice for shape " << shape_str(x.shape()));
  }
  return std::vector<int>(s.begin(), s.end());
}

}  // namespace

Tensor sum(const Tensor& x_in) {
  detail::check_defined("sum", x_in, "the input");
  RECON_RANGE("sum");
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty({}, x.device());
  switch (x.device().type) {
    case DeviceType::CPU: out.data()[0] = (float)cpu::sum_all(x.data(), x.numel()); break;
    case DeviceType::CUDA: RECON_CUDA_ONLY("sum", cuda::sum_all(x.data(), x.numel(), 1.0, out.data())); break;
  }
  if (autograd::any_requires_grad({&x})) {
    Shape s = x.shape();
    autograd::record("sum", out, {x}, [s](const Tensor& g, const std::vector<bool>&) {
      // Broadcast flat, then view as s: works for any rank (broadcast_to stops at 4-D).
      return std::vector<Tensor>{reshape(broadcast_to(reshape(g, {1}), {shape_numel(s)}), s)};
    });
  }
  return out;
}

Tensor mean(const Tensor& x) {
  RECON_CHECK(x.defined() && x.numel() > 0, "mean: the input is empty");
  return scale(sum(x), 1.f / (float)x.numel());
}

Tensor sum(const Tensor& x_in, const std::vector<int>& axes_in, bool keepdim) {
  detail::check_defined("sum", x_in, "the input");
  std::vector<int> axes = normalized_axes("sum", x_in, axes_in);
  RECON_RANGE("sum");
  Tensor x = x_in.contiguous();
  Tensor out;
  {
    NoGradGuard no_grad;
    out = x;
    for (auto it = axes.rbegin(); it != axes.rend(); ++it) out = sum_one_axis(out, *it);
    if (axes.empty()) out = x.clone();
  }
  Shape kept = out.shape();
  if (!keepdim) {
    Shape squeezed;
    for (int d = 0; d < (int)kept.size(); ++d)
      if (!std::binary_search(axes.begin(), axes.end(), d)) squeezed.push_back(kept[d]);
    out = out.detach();
    out = make_view(out.impl()->storage, squeezed, contiguous_strides(squeezed), 0);
  }
  if (autograd::any_requires_grad({&x})) {
    Shape s = x.shape();
    autograd::record("sum", out, {x}, [s, kept](const Tensor& g, const std::vector<bool>&) {
      return std::vector<Tensor>{broadcast_to(reshape(g, kept), s)};
    });
  }
  return out;
}

Tensor mean(const Tensor& x, const std::vector<int>& axes, bool keepdim) {
  detail::check_defined("mean", x, "the input");
  int64_t count = 1;
  for (int a : normalized_axes("mean", x, axes)) count *= x.shape()[a];
  RECON_CHECK(count > 0, "mean: reducing over an empty axis of " << shape_str(x.shape()));
  return scale(sum(x, axes, keepdim), 1.f / (float)count);
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  RECON_CHECK(x.dim() >= (int64_t)shape.size(),
              "sum_to: cannot reduce " << shape_str(x.shape()) << " to " << shape_str(shape));
  const int lead = (int)x.dim() - (int)shape.size();
  std::vector<int> axes;
  for (int d = 0; d < x.dim(); ++d) {
    if (d < lead) {
      axes.push_back(d);
    } else if (shape[d - lead] == 1 && x.shape()[d] != 1) {
      axes.push_back(d);
    } else {
      RECON_CHECK(shape[d - lead] == x.shape()[d],
                  "sum_to: cannot reduce " << shape_str(x.shape()) << " to " << shape_str(shape));
    }
  }
  return reshape(sum(x, axes, true), shape);
}

}  // namespace recon
