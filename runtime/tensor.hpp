// Tensor: a float32 array on one device, with a shape and strides over a
// shared Storage, so that reshape, view and slice of contiguous data are free.
// A Tensor is a cheap handle (shared_ptr to its TensorImpl); copying it
// aliases, clone() copies the data. Layout convention: NCHW, row-major.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "runtime/device.hpp"
#include "runtime/storage.hpp"

namespace recon {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);          // "(2, 3, 4)"
int64_t shape_numel(const Shape& s);            // 1 for a 0-d shape
Shape contiguous_strides(const Shape& s);

class Generator;
struct Node;
struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories -----------------------------------------------------------
  static Tensor empty(const Shape& shape, Device device = Device::cpu());
  // A host tensor in page-locked memory (with CUDA; ordinary memory without),
  // whose to(cuda) copy runs asynchronously: the loader's batches.
  static Tensor empty_pinned(const Shape& shape);
  bool is_pinned() const;
  static Tensor zeros(const Shape& shape, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, Device device = Device::cpu());
  static Tensor full(const Shape& shape, float value, Device device = Device::cpu());
  static Tensor scalar(float value, Device device = Device::cpu());  // 0-d
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape,
                            Device device = Device::cpu());
  static Tensor uniform(const Shape& shape, Generator& gen, float lo = 0.f, float hi = 1.f,
                        Device device = Device::cpu());
  static Tensor normal(const Shape& shape, Generator& gen, float mean = 0.f, float stddev = 1.f,
                       Device device = Device::cpu());
  static Tensor bernoulli(const Shape& shape, Generator& gen, float p, Device device = Device::cpu());

  // ---- metadata ------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Shape& strides() const;
  int64_t dim() const;
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const;
  int64_t offset() const;  // in elements, into the storage
  bool is_contiguous() const;
  Device device() const;
  DType dtype() const { return DType::Float32; }
  std::string str() const;  // "Tensor(2, 3) on cpu"

  // ---- data ------------------------------------------------------------------
  // Pointer to element 0 (storage + offset), on the tensor's device.
  float* data() const;
  std::vector<float> to_vector() const;  // a contiguous host copy
  float item() const;                    // the single element of a 1-element tensor

  // ---- copies and views ----------------------------------------------------
  Tensor to(Device device) const;     // the only cross-device copy
  Tensor contiguous() const;          // itself when contiguous, else a copy (differentiable)
  Tensor clone() const;               // a fresh contiguous copy (not differentiable)
  Tensor detach() const;              // the same data, cut from the graph
  Tensor view(const Shape& shape) const;  // differentiable reshape (see ops::reshape)
  void copy_(const Tensor& src);      // overwrite values in place (same shape, no grad)
  void fill_(float value);            // in place, no grad
  bool shares_storage(const Tensor& other) const;

  // ---- autograd -----------------------------------------------------------------
  bool requires_grad() const;
  Tensor& set_requires_grad(bool on);  // only on leaves
  bool is_leaf() const;                // no grad_fn
  Tensor grad() const;                 // accumulated gradient of a leaf (undefined if none)
  void set_grad(const Tensor& g);
  void zero_grad();                    // drops the gradient
  const std::shared_ptr<Node>& grad_fn() const;
  // Runs the backward pass from this tensor. `grad` may be omitted only for a
  // one-element tensor; retain_graph keeps saved buffers for a second pass.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// The state behind a Tensor handle.
struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;
  int64_t offset = 0;
  bool requires_grad = false;
  Tensor grad;                     // leaves only
  std::shared_ptr<Node> grad_fn;   // non-leaves: the node that made this tensor
  int output_nr = 0;               // which output of grad_fn this tensor is
};

// Builds a tensor handle over existing storage.
Tensor make_view(const std::shared_ptr<Storage>& storage, const Shape& shape, const Shape& strides,
                 int64_t offset);

}  // namespace recon
