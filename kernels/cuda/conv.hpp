// CUDA convolution launchers (kernels in kernels/cuda/conv.cu): forward, data
// gradient and weight gradient of conv2d over a conv2d-view geometry
// (kernels/common/conv.hpp), plus the bias gradient. conv_transpose2d runs
// these same launchers exactly as the CPU does: its forward is
// conv2d_backward_data (with its bias fused), its data gradient conv2d_forward,
// its weight gradient conv2d_backward_weight with x and dy swapped.
//
// Two kernel families, chosen per geometry by conv_path():
// - implicit GEMM (tiled): shared-memory tiles of the GEMM view read straight
//   from the NCHW tensors (no im2col buffer), register-blocked; when a
//   layer's output tiles are too few to fill the GPU (deep layers' small maps
//   in the forward and data gradient, the weight gradient's long N Ho Wo
//   reduction), every pass splits its reduction over blocks (split-K) into
//   partial outputs in a caller-provided workspace and sums them in a second,
//   fixed-order kernel (bitwise reproducible, no atomics), adding the bias there;
// - direct: for layers with 1-3 input or output channels (the first and last
//   layers), where a GEMM tile would be mostly empty.
// Raw device pointers, asynchronous on the runtime stream, no CUDA types here.
#pragma once
#include <cstdint>

#include "kernels/common/conv.hpp"

namespace recon::cuda {

enum class ConvPath {
  kAuto,   // direct when min(c_in, c_out) <= kConvDirectMaxChannels, tiled otherwise
  kTiled,  // implicit GEMM
  kDirect  // one thread (forward, data gradient) or one block (weight gradient) per output
};

// Layers with at most this many input or output channels run the direct kernels.
constexpr int kConvDirectMaxChannels = 3;

// The path kAuto resolves to for g (never kAuto).
ConvPath conv_path(const ConvGeometry& g, ConvPath requested = ConvPath::kAuto);

enum class ConvPass { kForward, kBackwardData, kBackwardWeight };

// How many slices the pass splits its reduction into (1: no split, no
// workspace; always 1 on the direct path). The rule is in kernels/cuda/conv.cu.
int conv_splits(const ConvGeometry& g, ConvPass pass, ConvPath path = ConvPath::kAuto);
// Floats of device workspace the pass's launcher needs (0 when unsplit).
int64_t conv_workspace(const ConvGeometry& g, ConvPass pass, ConvPath path = ConvPath::kAuto);

// Each launcher's workspace holds conv_workspace(g, its pass, path) floats
// (may be null when that is 0); it is scratch, free again when the stream
// reaches the launcher's last kernel.

// y (n, c_out, ho, wo) = conv(x (n, c_in, h, w), weight (c_out, c_in, kh, kw)) + bias (c_out); bias may be null.
void conv2d_forward(const ConvGeometry& g, const float* x, const float* weight, const float* bias, float* workspace,
                    float* y, ConvPath path = ConvPath::kAuto);
// dx (n, c_in, h, w) from dy (n, c_out, ho, wo) and weight (c_out, c_in, kh, kw), plus bias (c_in) when
// not null (conv_transpose2d's forward).
void conv2d_backward_data(const ConvGeometry& g, const float* dy, const float* weight, const float* bias,
                          float* workspace, float* dx, ConvPath path = ConvPath::kAuto);
// dweight (c_out, c_in, kh, kw) from x (n, c_in, h, w) and dy (n, c_out, ho, wo).
void conv2d_backward_weight(const ConvGeometry& g, const float* x, const float* dy, float* workspace,
                            float* dweight, ConvPath path = ConvPath::kAuto);
// dbias (c) = sums of dy (n, c, hw) over n and hw, a fixed-order tree per channel.
void conv2d_backward_bias(const float* dy, float* dbias, int64_t n, int64_t c, int64_t hw);

}  // namespace recon::cuda
