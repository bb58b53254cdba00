// reshape and flatten: views over the same storage when the input is
// contiguous (a copy first otherwise).
#include "runtime/op_utils.hpp"

namespace recon {

Tensor reshape(const Tensor& x_in, const Shape& shape_in) {
  detail::check_defined("reshape", x_in, "the input");
  Shape shape = shape_in;
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      RECON_CHECK(infer < 0, "reshape: more than one -1 in " << shape_str(shape_in));
      infer = (int)i;
    } else {
      RECON_CHECK(shape[i] >= 0, "reshape: negative size in " << shape_str(shape_in));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    RECON_CHECK(known > 0 && x_in.numel() % known == 0,
                "reshape: cannot infer -1 in " << shape_str(shape_in) << " for " << x_in.numel() << " elements");
    shape[infer] = x_in.numel() / known;
  }
  RECON_CHECK(shape_numel(shape) == x_in.numel(), "reshape: shape " << shape_str(shape_in) << " does not fit "
                                                                    << x_in.numel() << " elements of "
                                                                    << shape_str(x_in.shape()));
  Tensor x = x_in.contiguous();
  Tensor out = make_view(x.impl()->storage, shape, contiguous_strides(shape), x.offset());
  if (autograd::any_requires_grad({&x})) {
    Shape s = x.shape();
    autograd::record("reshape", out, {x},
                     [s](const Tensor& g, const std::vector<bool>&) { return std::vector<Tensor>{reshape(g, s)}; });
  }
  return out;
}

Tensor flatten(const Tensor& x, int start_dim) {
  detail::check_defined("flatten", x, "the input");
  int s = detail::normalize_axis("flatten", start_dim, x.shape());
  Shape shape(x.shape().begin(), x.shape().begin() + s);
  int64_t rest = 1;
  for (int64_t d = s; d < x.dim(); ++d) rest *= x.shape()[d];
  shape.push_back(rest);
  return reshape(x, shape);
}

}  // namespace recon
