// Layer construction (shapes, PyTorch's default initialisation, registration)
// and the forward calls into the op API.
#include "nn/layers.hpp"

#include <sstream>

#include "nn/init.hpp"
#include "runtime/error.hpp"

namespace recon::nn {

namespace {
std::string pair_str(const std::array<int, 2>& a) {
  std::ostringstream os;
  if (a[0] == a[1]) os << a[0];
  else os << "(" << a[0] << ", " << a[1] << ")";
  return os.str();
}
}  // namespace

// ---- Linear ----------------------------------------------------------------------------------------

Linear::Linear(int64_t in_features, int64_t out_features, bool bias, Generator& gen)
    : in_(in_features), out_(out_features) {
  RECON_CHECK(in_features > 0 && out_features > 0,
              "Linear: features must be positive, got in " << in_features << ", out " << out_features);
  Tensor w = Tensor::empty({out_features, in_features});
  Tensor b = bias ? Tensor::empty({out_features}) : Tensor();
  default_layer_init(w, bias ? &b : nullptr, gen);
  weight_ = register_parameter("weight", w);
  if (bias) bias_ = register_parameter("bias", b);
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight_, bias_); }

std::string Linear::extra_repr() const {
  return "in_features=" + std::to_string(in_) + ", out_features=" + std::to_string(out_) +
         ", bias=" + (bias_.defined() ? "true" : "false");
}

// ---- Conv2d -------------------------------------------------------------------------------------------

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int kernel_size, int stride, int padding, bool bias,
               Generator& gen)
    : Conv2d(in_channels, out_channels, {kernel_size, kernel_size},
             Conv2dOptions{{stride, stride}, {padding, padding}, {1, 1}}, bias, gen) {}

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, std::array<int, 2> kernel, const Conv2dOptions& opt,
               bool bias, Generator& gen)
    : in_(in_channels), out_(out_channels), kernel_(kernel), opt_(opt) {
  RECON_CHECK(in_channels > 0 && out_channels > 0 && kernel[0] > 0 && kernel[1] > 0,
              "Conv2d: channels and kernel must be positive, got in " << in_channels << ", out " << out_channels
                                                                      << ", kernel " << pair_str(kernel));
  Tensor w = Tensor::empty({out_channels, in_channels, kernel[0], kernel[1]});
  Tensor b = bias ? Tensor::empty({out_channels}) : Tensor();
  default_layer_init(w, bias ? &b : nullptr, gen);
  weight_ = register_parameter("weight", w);
  if (bias) bias_ = register_parameter("bias", b);
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight_, bias_, opt_); }

std::string Conv2d::extra_repr() const {
  std::ostringstream os;
  os << in_ << ", " << out_ << ", kernel_size=" << pair_str(kernel_) << ", stride=" << pair_str(opt_.stride);
  if (opt_.padding != std::array<int, 2>{0, 0}) os << ", padding=" << pair_str(opt_.padding);
  if (opt_.dilation != std::array<int, 2>{1, 1}) os << ", dilation=" << pair_str(opt_.dilation);
  if (!bias_.defined()) os << ", bias=false";
  return os.str();
}

// ---- ConvTranspose2d ----------------------------------------------------------------------------------

ConvTranspose2d::ConvTranspose2d(int64_t in_channels, int64_t out_channels, int kernel_size, int stride, int padding,
                                 int output_padding, bool bias, Generator& gen)
    : ConvTranspose2d(in_channels, out_channels, {kernel_size, kernel_size},
                      ConvTranspose2dOptions{{stride, stride}, {padding, padding}, {output_padding, output_padding},
                                             {1, 1}},
                      bias, gen) {}

ConvTranspose2d::ConvTranspose2d(int64_t in_channels, int64_t out_channels, std::array<int, 2> kernel,
                                 const ConvTranspose2dOptions& opt, bool bias, Generator& gen)
    : in_(in_channels), out_(out_channels), kernel_(kernel), opt_(opt) {
  RECON_CHECK(in_channels > 0 && out_channels > 0 && kernel[0] > 0 && kernel[1] > 0,
              "ConvTranspose2d: channels and kernel must be positive, got in "
                  << in_channels << ", out " << out_channels << ", kernel " << pair_str(kernel));
  // PyTorch's layout and fans: weight (Cin, Cout, kh, kw), fan_in = Cout kh kw.
  Tensor w = Tensor::empty({in_channels, out_channels, kernel[0], kernel[1]});
  Tensor b = bias ? Tensor::empty({out_channels}) : Tensor();
  default_layer_init(w, bias ? &b : nullptr, gen);
  weight_ = register_parameter("weight", w);
  if (bias) bias_ = register_parameter("bias", b);
}

Tensor ConvTranspose2d::forward(const Tensor& x) { return conv_transpose2d(x, weight_, bias_, opt_); }

std::string ConvTranspose2d::extra_repr() const {
  std::ostringstream os;
  os << in_ << ", " << out_ << ", kernel_size=" << pair_str(kernel_) << ", stride=" << pair_str(opt_.stride);
  if (opt_.padding != std::array<int, 2>{0, 0}) os << ", padding=" << pair_str(opt_.padding);
  if (opt_.output_padding != std::array<int, 2>{0, 0}) os << ", output_padding=" << pair_str(opt_.output_padding);
  if (opt_.dilation != std::array<int, 2>{1, 1}) os << ", dilation=" << pair_str(opt_.dilation);
  if (!bias_.defined()) os << ", bias=false";
  return os.str();
}

// ---- BatchNorm2d --------------------------------------------------------------------------------------

BatchNorm2d::BatchNorm2d(int64_t num_features, float eps, float momentum, bool affine)
    : c_(num_features), eps_(eps), momentum_(momentum) {
  RECON_CHECK(num_features > 0, "BatchNorm2d: num_features " << num_features << " must be positive");
  if (affine) {
    weight_ = register_parameter("weight", Tensor::ones({num_features}));
    bias_ = register_parameter("bias", Tensor::zeros({num_features}));
  }
  running_mean_ = register_buffer("running_mean", Tensor::zeros({num_features}));
  running_var_ = register_buffer("running_var", Tensor::ones({num_features}));
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  return batch_norm2d(x, weight_, bias_, running_mean_, running_var_, is_training(), momentum_, eps_);
}

std::string BatchNorm2d::extra_repr() const {
  std::ostringstream os;
  os << c_ << ", eps=" << eps_ << ", momentum=" << momentum_ << ", affine=" << (weight_.defined() ? "true" : "false");
  return os.str();
}

// ---- activations, pooling, resampling, dropout -----------------------------------------------------------

std::string LeakyReLU::extra_repr() const {
  std::ostringstream os;
  os << "negative_slope=" << slope_;
  return os.str();
}

static Pool2dOptions pool_options(const char* who, int kernel, int stride, int padding) {
  RECON_CHECK(kernel > 0 && stride >= 0 && padding >= 0,
              who << ": kernel " << kernel << " must be > 0, stride " << stride << " and padding " << padding
                  << " >= 0");
  const int s = stride == 0 ? kernel : stride;
  return Pool2dOptions{{kernel, kernel}, {s, s}, {padding, padding}};
}

static std::string pool_repr(const Pool2dOptions& o) {
  return "kernel_size=" + pair_str(o.kernel) + ", stride=" + pair_str(o.stride) + ", padding=" + pair_str(o.padding);
}

MaxPool2d::MaxPool2d(int kernel_size, int stride, int padding)
    : opt_(pool_options("MaxPool2d", kernel_size, stride, padding)) {}
std::string MaxPool2d::extra_repr() const { return pool_repr(opt_); }

AvgPool2d::AvgPool2d(int kernel_size, int stride, int padding)
    : opt_(pool_options("AvgPool2d", kernel_size, stride, padding)) {}
std::string AvgPool2d::extra_repr() const { return pool_repr(opt_); }

Upsample::Upsample(int scale_factor, UpsampleMode mode) : scale_(scale_factor), mode_(mode) {
  RECON_CHECK(scale_factor > 0, "Upsample: scale_factor " << scale_factor << " must be positive");
}

Upsample::Upsample(OutputSize size, UpsampleMode mode) : size_(size), mode_(mode) {
  RECON_CHECK(size.h > 0 && size.w > 0, "Upsample: size (" << size.h << ", " << size.w << ") must be positive");
}

Tensor Upsample::forward(const Tensor& x) {
  RECON_CHECK(x.dim() == 4, "Upsample: input must be 4-D (N, C, H, W), got " << shape_str(x.shape()));
  if (scale_ > 0) return upsample(x, (int)x.size(2) * scale_, (int)x.size(3) * scale_, mode_);
  return upsample(x, size_.h, size_.w, mode_);
}

std::string Upsample::extra_repr() const {
  std::string mode = mode_ == UpsampleMode::Nearest ? "nearest" : "bilinear";
  if (scale_ > 0) return "scale_factor=" + std::to_string(scale_) + ", mode=" + mode;
  return "size=(" + std::to_string(size_.h) + ", " + std::to_string(size_.w) + "), mode=" + mode;
}

Dropout::Dropout(float p, Generator& gen) : p_(p), gen_(&gen) {
  RECON_CHECK(p >= 0.f && p < 1.f, "Dropout: p " << p << " must be in [0, 1)");
}

std::string Dropout::extra_repr() const {
  std::ostringstream os;
  os << "p=" << p_;
  return os.str();
}

}  // namespace recon::nn
