// The layers, as PyTorch's torch.nn modules of the same names: parameter
// names, shapes, default initialisation and modes match, so state_dicts
// carry over by name. Each forward is one call into runtime/ops.hpp.
// Random initialisation and dropout masks draw from a recon::Generator
// (the process default unless one is passed; it must outlive the layer).
#pragma once
#include <array>

#include "nn/module.hpp"
#include "runtime/generator.hpp"
#include "runtime/ops.hpp"

namespace recon::nn {

// weight (out, in), bias (out). x (N, in) -> (N, out).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Linear"; }
  std::string extra_repr() const override;
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }  // undefined when disabled

 private:
  Tensor weight_, bias_;
  int64_t in_, out_;
};

// weight (Cout, Cin, kh, kw), bias (Cout). x (N, Cin, H, W) -> (N, Cout, Ho, Wo).
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int kernel_size, int stride = 1, int padding = 0,
         bool bias = true, Generator& gen = default_generator());
  Conv2d(int64_t in_channels, int64_t out_channels, std::array<int, 2> kernel, const Conv2dOptions& opt,
         bool bias = true, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Conv2d"; }
  std::string extra_repr() const override;
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  const Conv2dOptions& options() const { return opt_; }

 private:
  Tensor weight_, bias_;
  int64_t in_, out_;
  std::array<int, 2> kernel_;
  Conv2dOptions opt_;
};

// weight (Cin, Cout, kh, kw) as PyTorch, bias (Cout).
// x (N, Cin, H, W) -> (N, Cout, (H-1)s - 2p + d(k-1) + output_padding + 1, ...).
class ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, int kernel_size, int stride = 1, int padding = 0,
                  int output_padding = 0, bool bias = true, Generator& gen = default_generator());
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, std::array<int, 2> kernel,
                  const ConvTranspose2dOptions& opt, bool bias = true, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "ConvTranspose2d"; }
  std::string extra_repr() const override;
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  const ConvTranspose2dOptions& options() const { return opt_; }

 private:
  Tensor weight_, bias_;
  int64_t in_, out_;
  std::array<int, 2> kernel_;
  ConvTranspose2dOptions opt_;
};

// Parameters weight (ones), bias (zeros) when affine; buffers running_mean
// (zeros), running_var (ones). Batch statistics in training (updating the
// running ones), running statistics in eval. PyTorch's num_batches_tracked
// (an int64 counter unused with a fixed momentum) is not kept.
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t num_features, float eps = 1e-5f, float momentum = 0.1f, bool affine = true);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "BatchNorm2d"; }
  std::string extra_repr() const override;
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  const Tensor& running_mean() const { return running_mean_; }
  const Tensor& running_var() const { return running_var_; }

 private:
  Tensor weight_, bias_, running_mean_, running_var_;
  int64_t c_;
  float eps_, momentum_;
};

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override { return relu(x); }
  std::string type_name() const override { return "ReLU"; }
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(float negative_slope = 0.01f) : slope_(negative_slope) {}
  Tensor forward(const Tensor& x) override { return leaky_relu(x, slope_); }
  std::string type_name() const override { return "LeakyReLU"; }
  std::string extra_repr() const override;

 private:
  float slope_;
};

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override { return sigmoid(x); }
  std::string type_name() const override { return "Sigmoid"; }
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& x) override { return tanh(x); }
  std::string type_name() const override { return "Tanh"; }
};

// stride defaults to the kernel size (stride = 0 means "same as kernel").
class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(int kernel_size, int stride = 0, int padding = 0);
  Tensor forward(const Tensor& x) override { return max_pool2d(x, opt_); }
  std::string type_name() const override { return "MaxPool2d"; }
  std::string extra_repr() const override;

 private:
  Pool2dOptions opt_;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(int kernel_size, int stride = 0, int padding = 0);
  Tensor forward(const Tensor& x) override { return avg_pool2d(x, opt_); }
  std::string type_name() const override { return "AvgPool2d"; }
  std::string extra_repr() const override;

 private:
  Pool2dOptions opt_;
};

// To a fixed (h, w), or by an integer scale factor of H and W.
struct OutputSize {
  int h, w;
};
class Upsample : public Module {
 public:
  explicit Upsample(int scale_factor, UpsampleMode mode = UpsampleMode::Nearest);
  explicit Upsample(OutputSize size, UpsampleMode mode = UpsampleMode::Nearest);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Upsample"; }
  std::string extra_repr() const override;

 private:
  OutputSize size_{0, 0};
  int scale_ = 0;  // 0 when a size is given
  UpsampleMode mode_;
};

// (N, d1, d2, ...) -> (N, d1 d2 ...) for start_dim = 1.
class Flatten : public Module {
 public:
  explicit Flatten(int start_dim = 1) : start_(start_dim) {}
  Tensor forward(const Tensor& x) override { return flatten(x, start_); }
  std::string type_name() const override { return "Flatten"; }

 private:
  int start_;
};

// Inverted dropout in training, identity in eval.
class Dropout : public Module {
 public:
  explicit Dropout(float p = 0.5f, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override { return dropout(x, p_, is_training(), *gen_); }
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;

 private:
  float p_;
  Generator* gen_;
};

}  // namespace recon::nn
