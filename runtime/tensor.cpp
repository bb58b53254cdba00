// Tensor: factories, metadata, copies and views.
#include "runtime/tensor.hpp"

#include <cstring>
#include <sstream>

#include "kernels/cpu/copy.hpp"
#include "kernels/cpu/random.hpp"
#include "kernels/cuda/copy.hpp"
#include "kernels/cuda/random.hpp"
#include "runtime/autograd.hpp"
#include "runtime/cuda_context.hpp"
#include "runtime/error.hpp"
#include "runtime/generator.hpp"
#include "runtime/ops.hpp"

namespace recon {

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ")";
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

Tensor make_view(const std::shared_ptr<Storage>& storage, const Shape& shape, const Shape& strides,
                 int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = storage;
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  return Tensor(std::move(impl));
}

// ---- factories -------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, Device device) {
  for (int64_t d : shape) RECON_CHECK(d >= 0, "Tensor::empty: negative size in shape " << shape_str(shape));
  auto storage = std::make_shared<Storage>((size_t)shape_numel(shape) * sizeof(float), device);
  return make_view(storage, shape, contiguous_strides(shape), 0);
}

Tensor Tensor::empty_pinned(const Shape& shape) {
  for (int64_t d : shape) RECON_CHECK(d >= 0, "Tensor::empty_pinned: negative size in shape " << shape_str(shape));
  auto storage = std::make_shared<Storage>(Storage::pinned_host((size_t)shape_numel(shape) * sizeof(float)));
  return make_view(storage, shape, contiguous_strides(shape), 0);
}

Tensor Tensor::zeros(const Shape& shape, Device device) { return full(shape, 0.f, device); }
Tensor Tensor::ones(const Shape& shape, Device device) { return full(shape, 1.f, device); }

Tensor Tensor::full(const Shape& shape, float value, Device device) {
  Tensor t = empty(shape, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::scalar(float value, Device device) { return full({}, value, device); }

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape, Device device) {
  RECON_CHECK((int64_t)values.size() == shape_numel(shape), "Tensor::from_vector: " << values.size()
                                                                << " values for shape " << shape_str(shape));
  Tensor t = empty(shape, Device::cpu());
  if (!values.empty()) std::memcpy(t.data(), values.data(), values.size() * sizeof(float));
  return device.is_cpu() ? t : t.to(device);
}

// Random factories: element i is a pure function of (seed, offset + i)
// (kernels/common/philox.hpp), so the CPU loop and the CUDA kernel, which
// generates on the device, give the same numbers.
Tensor Tensor::uniform(const Shape& shape, Generator& gen, float lo, float hi, Device device) {
  Tensor t = empty(shape, device);
  const uint64_t seed = gen.seed(), offset = gen.reserve((uint64_t)t.numel());
  if (device.is_cpu()) {
    cpu::fill_uniform(t.data(), t.numel(), seed, offset, lo, hi);
  } else {
#if defined(RECON_WITH_CUDA)
    cuda::fill_uniform(t.data(), t.numel(), seed, offset, lo, hi);
#endif
  }
  return t;
}

Tensor Tensor::normal(const Shape& shape, Generator& gen, float mean, float stddev, Device device) {
  Tensor t = empty(shape, device);
  const uint64_t seed = gen.seed(), offset = gen.reserve((uint64_t)t.numel());
  if (device.is_cpu()) {
    cpu::fill_normal(t.data(), t.numel(), seed, offset, mean, stddev);
  } else {
#if defined(RECON_WITH_CUDA)
    cuda::fill_normal(t.data(), t.numel(), seed, offset, mean, stddev);
#endif
  }
  return t;
}

Tensor Tensor::bernoulli(const Shape& shape, Generator& gen, float p, Device device) {
  RECON_CHECK(p >= 0.f && p <= 1.f, "Tensor::bernoulli: p = " << p << " is not in [0, 1]");
  Tensor t = empty(shape, device);
  const uint64_t seed = gen.seed(), offset = gen.reserve((uint64_t)t.numel());
  if (device.is_cpu()) {
    cpu::fill_bernoulli(t.data(), t.numel(), seed, offset, p);
  } else {
#if defined(RECON_WITH_CUDA)
    cuda::fill_bernoulli(t.data(), t.numel(), seed, offset, p);
#endif
  }
  return t;
}

// ---- metadata ------------------------------------------------------------------

static const TensorImpl& checked(const std::shared_ptr<TensorImpl>& p) {
  RECON_CHECK(p != nullptr, "use of an undefined tensor");
  return *p;
}

const Shape& Tensor::shape() const { return checked(impl_).shape; }
const Shape& Tensor::strides() const { return checked(impl_).strides; }
int64_t Tensor::dim() const { return (int64_t)shape().size(); }
int64_t Tensor::numel() const { return shape_numel(shape()); }
int64_t Tensor::offset() const { return checked(impl_).offset; }
Device Tensor::device() const { return checked(impl_).storage->device(); }
bool Tensor::is_pinned() const { return checked(impl_).storage->pinned(); }

int64_t Tensor::size(int64_t d) const {
  int64_t r = dim();
  int64_t a = d < 0 ? d + r : d;
  RECON_CHECK(a >= 0 && a < r, "Tensor::size: dim " << d << " out of range for shape " << shape_str(shape()));
  return shape()[a];
}

bool Tensor::is_contiguous() const {
  const Shape& sh = shape();
  const Shape& st = strides();
  int64_t expected = 1;
  for (size_t i = sh.size(); i-- > 0;) {
    if (sh[i] != 1 && st[i] != expected) return false;
    expected *= sh[i];
  }
  return true;
}

std::string Tensor::str() const {
  if (!defined()) return "Tensor(undefined)";
  return "Tensor" + shape_str(shape()) + " on " + device().str();
}

float* Tensor::data() const {
  const TensorImpl& i = checked(impl_);
  return static_cast<float*>(i.storage->data()) + i.offset;
}

std::vector<float> Tensor::to_vector() const {
  Tensor c = contiguous().to(Device::cpu());
  return std::vector<float>(c.data(), c.data() + c.numel());
}

float Tensor::item() const {
  RECON_CHECK(defined() && numel() == 1, "Tensor::item: needs a one-element tensor, got " << str());
  return to_vector()[0];
}

// ---- copies and views ----------------------------------------------------------

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  Tensor src = contiguous();
  Tensor dst = empty(shape(), device);
  size_t bytes = (size_t)numel() * sizeof(float);
  if (bytes > 0) {
#if defined(RECON_WITH_CUDA)
    if (device.is_cuda()) {
      cuda::copy_h2d(dst.data(), src.data(), bytes);
    } else {
      cuda::copy_d2h(dst.data(), src.data(), bytes);
      cuda::synchronize();  // the host reads it next: the one implicit wait
    }
#else
    RECON_FAIL("Tensor::to(" << device.str() << "): ReconAD was built without CUDA");
#endif
  }
  if (requires_grad() && grad_mode_enabled()) {
    Device back = this->device();
    autograd::record("to_device", dst, {*this},
                     [back](const Tensor& g, const std::vector<bool>&) { return std::vector<Tensor>{g.to(back)}; });
  }
  return dst;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), device());
  if (numel() == 0) return out;
  if (device().is_cpu()) {
    cpu::strided_copy(data(), shape(), strides(), out.data());
  } else {
#if defined(RECON_WITH_CUDA)
    if (is_contiguous())
      cuda::copy_d2d(out.data(), data(), (size_t)numel() * sizeof(float));
    else
      cuda::strided_copy(data(), shape(), strides(), out.data());
#endif
  }
  return out;
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  Tensor out;
  {
    NoGradGuard no_grad;
    out = clone();
  }
  if (requires_grad() && grad_mode_enabled())
    autograd::record("contiguous", out, {*this},
                     [](const Tensor& g, const std::vector<bool>&) { return std::vector<Tensor>{g}; });
  return out;
}

Tensor Tensor::detach() const {
  const TensorImpl& i = checked(impl_);
  return make_view(i.storage, i.shape, i.strides, i.offset);
}

Tensor Tensor::view(const Shape& shape) const { return reshape(*this, shape); }

bool Tensor::shares_storage(const Tensor& other) const {
  return defined() && other.defined() && impl_->storage == other.impl_->storage;
}

void Tensor::copy_(const Tensor& src) {
  RECON_CHECK(src.shape() == shape(), "copy_: source shape " << shape_str(src.shape()) << " differs from "
                                                             << shape_str(shape()));
  Tensor s = src.detach().contiguous().to(device());
  RECON_CHECK(is_contiguous(), "copy_: the destination must be contiguous");
  size_t bytes = (size_t)numel() * sizeof(float);
  if (bytes == 0) return;
  if (device().is_cpu()) {
    std::memmove(data(), s.data(), bytes);
  } else {
#if defined(RECON_WITH_CUDA)
    cuda::copy_d2d(data(), s.data(), bytes);
#endif
  }
}

void Tensor::fill_(float value) {
  RECON_CHECK(is_contiguous(), "fill_: the tensor must be contiguous");
  if (numel() == 0) return;
  if (device().is_cpu()) {
    cpu::fill(data(), numel(), value);
  } else {
#if defined(RECON_WITH_CUDA)
    cuda::fill(data(), numel(), value);
#endif
  }
}

// ---- autograd -----------------------------------------------------------------------

bool Tensor::requires_grad() const { return checked(impl_).requires_grad; }

Tensor& Tensor::set_requires_grad(bool on) {
  RECON_CHECK(is_leaf(), "set_requires_grad: only leaf tensors can change requires_grad (this one comes from "
                             << impl_->grad_fn->name << ")");
  impl_->requires_grad = on;
  return *this;
}

bool Tensor::is_leaf() const { return checked(impl_).grad_fn == nullptr; }
Tensor Tensor::grad() const { return checked(impl_).grad; }

void Tensor::set_grad(const Tensor& g) {
  RECON_CHECK(!g.defined() || g.shape() == shape(), "set_grad: gradient shape " << shape_str(g.shape())
                                                                                << " differs from "
                                                                                << shape_str(shape()));
  impl_->grad = g;
}

void Tensor::zero_grad() { checked(impl_), impl_->grad = Tensor(); }

const std::shared_ptr<Node>& Tensor::grad_fn() const { return checked(impl_).grad_fn; }

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  autograd::run_backward(*this, grad, retain_graph);
}

}  // namespace recon
