// The op API (DESIGN.md, decision 3). Every op checks its arguments (an
// error names the op, the shapes given and what was expected), dispatches on
// the device with one switch to a CPU or CUDA kernel, and, when an input
// requires grad and grad mode is on, records an autograd node whose backward
// calls kernels directly. A kernel missing on a device throws
// "<op>: not implemented on CUDA"; nothing falls back silently.
//
// Layout: images are (N, C, H, W); matrices (rows, cols); row-major.
#pragma once
#include <array>
#include <vector>

#include "runtime/autograd.hpp"
#include "runtime/generator.hpp"
#include "runtime/tensor.hpp"

namespace recon {

// ---- elementwise, binary with broadcasting (numpy rules, up to 4-D) -------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);

// ---- elementwise, unary ----------------------------------------------------
Tensor scale(const Tensor& x, float s);        // s * x
Tensor add_scalar(const Tensor& x, float s);   // x + s
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor pow(const Tensor& x, float p);
Tensor clamp(const Tensor& x, float lo, float hi);  // gradient 0 outside [lo, hi]
Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, float slope = 0.01f);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);

// In place, no autograd (optimizers, gradient accumulation): a += b, same shape.
void add_(Tensor& a, const Tensor& b);

// ---- reductions --------------------------------------------------------------
Tensor sum(const Tensor& x);   // all elements -> 0-d
Tensor mean(const Tensor& x);  // all elements -> 0-d
// Over `axes` (negative counts from the end); keepdim keeps them as size 1.
Tensor sum(const Tensor& x, const std::vector<int>& axes, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int>& axes, bool keepdim = false);
// Sums a broadcast gradient back to `shape` (the inverse of broadcasting).
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- linear algebra ----------------------------------------------------------
Tensor matmul(const Tensor& a, const Tensor& b);  // (M, K) x (K, N) -> (M, N)
// x (N, in), weight (out, in), bias (out) or undefined -> (N, out)
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

// ---- convolution -----------------------------------------------------------------
struct Conv2dOptions {
  std::array<int, 2> stride{1, 1};
  std::array<int, 2> padding{0, 0};
  std::array<int, 2> dilation{1, 1};
};
// x (N, Cin, H, W), weight (Cout, Cin, kh, kw), bias (Cout) or undefined
// -> (N, Cout, Ho, Wo), Ho = (H + 2p - d(k-1) - 1) / s + 1
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& opt = {});

struct ConvTranspose2dOptions {
  std::array<int, 2> stride{1, 1};
  std::array<int, 2> padding{0, 0};
  std::array<int, 2> output_padding{0, 0};
  std::array<int, 2> dilation{1, 1};
};
// x (N, Cin, H, W), weight (Cin, Cout, kh, kw) as in PyTorch, bias (Cout)
// -> (N, Cout, Ho, Wo), Ho = (H - 1)s - 2p + d(k-1) + output_padding + 1
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const ConvTranspose2dOptions& opt = {});

// ---- normalisation -------------------------------------------------------------
// x (N, C, H, W); weight, bias (C) or undefined; running_mean/var (C) buffers,
// updated in place in training (unbiased variance, as PyTorch) and used in eval.
Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                    Tensor& running_var, bool training, float momentum = 0.1f, float eps = 1e-5f);

// ---- pooling and resampling ----------------------------------------------------
struct Pool2dOptions {
  std::array<int, 2> kernel{2, 2};
  std::array<int, 2> stride{2, 2};
  std::array<int, 2> padding{0, 0};
};
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& opt = {});
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& opt = {});  // padding counts as zeros
Tensor global_avg_pool(const Tensor& x);                            // (N, C, H, W) -> (N, C)
enum class UpsampleMode { Nearest, Bilinear };
// To (out_h, out_w); bilinear uses align_corners = false (PyTorch's default).
Tensor upsample(const Tensor& x, int out_h, int out_w, UpsampleMode mode = UpsampleMode::Nearest);

// ---- shape --------------------------------------------------------------------------
Tensor reshape(const Tensor& x, const Shape& shape);  // one -1 allowed; a view when contiguous
Tensor flatten(const Tensor& x, int start_dim = 1);   // dims start_dim.. into one
Tensor concat(const std::vector<Tensor>& xs, int dim);
Tensor slice(const Tensor& x, int dim, int64_t start, int64_t end, int64_t step = 1);  // a view
enum class PadMode { Zero, Reflect };
// pads = {left, right, top, bottom} on W and H of (N, C, H, W)
Tensor pad(const Tensor& x, const std::array<int, 4>& pads, PadMode mode = PadMode::Zero);
// Rotates the (H, W) plane by k quarter turns counter-clockwise (torch.rot90(x, k, (2, 3))).
Tensor rot90(const Tensor& x, int k);

// ---- losses ---------------------------------------------------------------------------
enum class Reduction { Mean, Sum };
Tensor mse_loss(const Tensor& pred, const Tensor& target, Reduction r = Reduction::Mean);
// logits (N, C); targets (N) holding class indices 0..C-1 as floats. Fused
// log-softmax: stable for large logits.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, Reduction r = Reduction::Mean);
// KL(N(mu, exp(logvar)) || N(0, I)) = 0.5 sum(mu^2 + exp(logvar) - 1 - logvar);
// Sum over everything, or Mean = the sum divided by the batch size N.
Tensor kl_normal(const Tensor& mu, const Tensor& logvar, Reduction r = Reduction::Sum);

// ---- regularisation ------------------------------------------------------------------
// Inverted dropout: zeros with probability p, scales the rest by 1/(1-p);
// identity when !training or p == 0. The mask comes from `gen`.
Tensor dropout(const Tensor& x, float p, bool training, Generator& gen = default_generator());

// ---- image measures (method 1) ---------------------------------------------------
// SSIM (Wang et al. 2004) between x and y, both (N, C, H, W) with values in
// [0, 1] (L = 1): 11x11 Gaussian window, sigma = 1.5, C1 = 0.01^2,
// C2 = 0.03^2, reflect padding, per channel; a same-size map (N, C, H, W).
// Differentiable in both inputs. H and W must be at least 6 (a reflect pad of
// 5 must be smaller than the size, as in PyTorch); smaller images throw.
Tensor ssim_map(const Tensor& x, const Tensor& y);
// The SSIM loss 1 - mean(ssim_map(x, y)) as one fused op (0-d).
Tensor ssim_loss(const Tensor& x, const Tensor& y);
// Shannon entropy in bits of each image's 256-bin intensity histogram
// (values in [0, 1] binned as min(floor(256 v), 255), all channels pooled;
// values below 0 count in bin 0, above 1 in bin 255): (N, C, H, W) -> (N).
// Not differentiable.
Tensor image_entropy(const Tensor& x);
// Local entropy: for each pixel, the entropy in bits of the histogram of the
// k x k window around it (reflect padding; channels averaged to gray first;
// `bins` levels, min(floor(bins v), bins - 1)): (N, C, H, W) -> (N, 1, H, W).
// k odd in [1, 63] with k / 2 < H and W; bins in [1, 256]. Not differentiable.
Tensor local_entropy(const Tensor& x, int k = 9, int bins = 32);

// ---- information reduction (method 2's refiner) -------------------------------------
// A variational bottleneck (Kingma & Welling 2014; Alemi et al. 2017) as one
// fused op. mu, logvar (N, ...) of one shape. Training: z = mu + exp(logvar/2)
// * eps with eps ~ N(0, I) drawn from `gen` (Philox: the same eps on every
// device); eval: z = mu. kl = KL(N(mu, exp(logvar)) || N(0, I)) in nats,
// summed over all elements and divided by N: nats per image. One node with
// two outputs: the backward gives dmu and dlogvar from dz and dkl together.
struct InfoReduction {
  Tensor z;   // (same shape as mu)
  Tensor kl;  // 0-d, nats per image
};
InfoReduction information_reduction(const Tensor& mu, const Tensor& logvar, bool training,
                                    Generator& gen = default_generator());

}  // namespace recon
