// The convolution layers of the default 28x28 model (ConvAE: two stride-2
// 3x3 encoder convs after a stride-1 stem, mirrored by transposed convs), as
// conv2d geometries, shared by bench_ops (CPU) and bench_kernels (CUDA and
// CPU) so both time the same shapes.
#pragma once
#include <string>
#include <vector>

#include "kernels/common/conv.hpp"

namespace recon::bench {

struct ConvLayerShape {
  std::string name;
  std::string op;  // "conv2d" or "conv_transpose2d"
  ConvGeometry g;  // the conv2d view (conv_transpose2d is conv2d's data gradient)
};

// conv2d k3 p1 from (c_in, h, h) to c_out channels, batch n.
inline ConvGeometry conv3x3(int n, int c_in, int h, int c_out, int stride) {
  ConvGeometry g;
  g.n = n, g.c_in = c_in, g.h = h, g.w = h, g.c_out = c_out, g.kh = 3, g.kw = 3;
  g.stride_h = g.stride_w = stride;
  g.pad_h = g.pad_w = 1;
  conv2d_set_output(g);
  return g;
}

// conv_transpose2d k3 s2 p1 output_padding 1 from (c_in, h, h): its conv2d view.
inline ConvGeometry conv_transpose3x3(int n, int c_in, int h, int c_out) {
  ConvGeometry g;
  g.n = n, g.c_out = c_in, g.ho = h, g.wo = h, g.c_in = c_out, g.kh = 3, g.kw = 3;
  g.stride_h = g.stride_w = 2;
  g.pad_h = g.pad_w = 1;
  conv_transpose2d_set_output(g, 1, 1);
  return g;
}

// The six conv layers in model order, batch n.
inline std::vector<ConvLayerShape> default_model_convs(int n) {
  return {
      {"enc1", "conv2d", conv3x3(n, 1, 28, 32, 1)},
      {"enc2", "conv2d", conv3x3(n, 32, 28, 64, 2)},
      {"enc3", "conv2d", conv3x3(n, 64, 14, 128, 2)},
      {"dec1", "conv_transpose2d", conv_transpose3x3(n, 128, 7, 64)},
      {"dec2", "conv_transpose2d", conv_transpose3x3(n, 64, 14, 32)},
      {"dec3", "conv2d", conv3x3(n, 32, 28, 1, 1)},
  };
}

}  // namespace recon::bench
