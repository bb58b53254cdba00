// Helpers shared by the op implementations in runtime/ops_*.cpp: argument
// checks that name the op and the shapes, and the device switch.
#pragma once
#include <string>

#include "runtime/error.hpp"
#include "runtime/ops.hpp"
#include "runtime/profile.hpp"

namespace recon::detail {

inline void check_defined(const char* op, const Tensor& t, const char* what) {
  RECON_CHECK(t.defined(), op << ": " << what << " is an undefined tensor");
}

inline void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  RECON_CHECK(a.device() == b.device(), op << ": tensors on different devices (" << a.device().str()
                                           << " and " << b.device().str() << ")");
}

inline void check_dim(const char* op, const Tensor& t, int64_t dim, const char* what, const char* layout) {
  RECON_CHECK(t.dim() == dim, op << ": " << what << " must be " << dim << "-D " << layout << ", got "
                                 << shape_str(t.shape()));
}

inline void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  RECON_CHECK(a.shape() == b.shape(), op << ": shapes " << shape_str(a.shape()) << " and "
                                         << shape_str(b.shape()) << " must be equal");
}

// Normalises a possibly negative axis; throws, naming the shape, if out of range.
inline int normalize_axis(const char* op, int axis, const Shape& shape) {
  const int64_t rank = (int64_t)shape.size();
  int a = axis < 0 ? axis + (int)rank : axis;
  RECON_CHECK(a >= 0 && a < rank, op << ": axis " << axis << " is out of range for shape " << shape_str(shape));
  return a;
}

// The device switch's CUDA arm when no CUDA kernel exists for an op.
[[noreturn]] inline void not_on_cuda(const char* op) { RECON_FAIL(op << ": not implemented on CUDA"); }

}  // namespace recon::detail

// The CUDA arm of an op's device switch: the launcher call in a build with
// CUDA (real or emulated), "<op>: not implemented on CUDA" otherwise.
//   case DeviceType::CUDA: RECON_CUDA_ONLY("relu", cuda::unary(...)); break;
#if defined(RECON_WITH_CUDA)
#define RECON_CUDA_ONLY(op, ...) __VA_ARGS__
#else
#define RECON_CUDA_ONLY(op, ...) ::recon::detail::not_on_cuda(op)
#endif
