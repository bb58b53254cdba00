// Difficulty measures d(x) of method 1 (DESIGN.md): how hard an image is to
// reconstruct, used to normalise the reconstruction errors so that a busy
// normal image does not out-score a plain anomalous one. Five measures,
// selectable by enum or by name; each maps a batch (N, C, H, W) with values
// in [0, 1] to one number per image. None is differentiated: they run without
// a tape and return host values.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "runtime/tensor.hpp"

namespace recon::models {

enum class DifficultyMeasure {
  Entropy,       // "entropy": Shannon entropy (bits) of the 256-bin histogram (image_entropy)
  LocalEntropy,  // "local-entropy": mean of the k x k local-entropy map (local_entropy)
  Gradient,      // "gradient": mean Sobel gradient magnitude of the gray image
  Compression,   // "compression": zlib (level 9) size of the 8-bit image, bits per pixel
  Lowpass,       // "lowpass": MSE between x and a blur-and-restore of x
};

// The measures in declaration order, and their names ("entropy",
// "local-entropy", "gradient", "compression", "lowpass").
const std::vector<DifficultyMeasure>& all_difficulty_measures();
const char* difficulty_measure_name(DifficultyMeasure m);
// The measure of a name; throws recon::Error listing the valid names.
DifficultyMeasure parse_difficulty_measure(std::string_view name);

struct DifficultyOptions {
  int local_entropy_window = 9;  // k of local_entropy (odd)
  int local_entropy_bins = 32;   // intensity levels of each local histogram
  int lowpass_factor = 4;        // box-downsampling factor of the blur-and-restore
  int zlib_level = 9;            // zlib compression level, 0..9
};

// d(x) for each image of x (N, C, H, W) -> N values.
std::vector<float> difficulty(const Tensor& x, DifficultyMeasure m, const DifficultyOptions& opt = {});

// ---- the measures one by one (difficulty() dispatches to these) ------------------

// Mean over the pixels of |Sobel gradient| of the gray image (the channel
// mean): gx, gy are the 3x3 Sobel responses divided by 8, so that a ramp
// rising by s per pixel has magnitude s; sqrt(gx^2 + gy^2); reflect padding
// at the border (PyTorch's "reflect": the edge pixel is not repeated).
// Needs H, W >= 2.
std::vector<float> sobel_gradient_mean(const Tensor& x);

// Lossless size of the image as 8-bit values: each value v in [0, 1] becomes
// round(255 v), channels interleaved per pixel (H, W, C), as an unfiltered
// PNG scanline would hold them; zlib's compress2 at `level`; 8 * bytes / (H W)
// bits per pixel (zlib's 6-byte header and checksum included, so a constant
// image costs a little above 0). Throws on values outside [0, 1] or NaN.
std::vector<float> compressed_bits_per_pixel(const Tensor& x, int level = 9);

// The detail a fixed low-capacity model loses: x is averaged over
// factor x factor blocks (avg_pool2d, kernel = stride = factor, so 1/factor^2
// of the numbers remain) and brought back to (H, W) by bilinear upsampling
// (align_corners = false); the result is the per-image MSE over C, H, W.
// A constant image gives 0, a checkerboard of 0/1 gives 0.25. Needs
// H, W >= factor; a remainder of H or W not divisible by factor is restored
// from the neighbouring blocks.
std::vector<float> lowpass_error(const Tensor& x, int factor = 4);

}  // namespace recon::models
