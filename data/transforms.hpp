// Image transforms. Two levels: functions on one Image (resize, crops,
// colour, normalize, rot90, flips), and Transforms on a Sample that apply
// the same geometry to the image and its mask (masks resize with nearest
// neighbour so they stay 0/1) and draw any randomness from the Generator
// they are given. The loader hands each sample its own Generator derived
// from (seed, epoch, position), so results do not depend on thread timing.
// Also the RotNet rotation batch: each image -> 4 copies rotated 0, 90, 180,
// 270 degrees with labels 0..3.
#pragma once
#include <functional>
#include <vector>

#include "data/dataset.hpp"
#include "runtime/generator.hpp"
#include "runtime/tensor.hpp"

namespace recon::data {

// Nearest: source floor(dst * in / out) (PyTorch's "nearest"). Bilinear:
// align_corners = false, no antialiasing (PyTorch's default). Area: each
// output pixel is the exact area-weighted mean of the input pixels it covers
// (OpenCV's INTER_AREA; the choice for shrinking).
enum class ResizeMode { Nearest, Bilinear, Area };

Image resize(const Image& img, int height, int width, ResizeMode mode = ResizeMode::Bilinear);
Image crop(const Image& img, int top, int left, int height, int width);  // must lie inside
Image center_crop(const Image& img, int height, int width);              // top = (H - h) / 2
Image to_gray(const Image& img);   // ITU-R BT.601 luma; a gray image is returned as is
Image to_rgb(const Image& img);    // gray replicated to 3 channels; RGB returned as is
// (x - mean[c]) / std[c]; one value each applies to every channel.
void normalize(Image& img, const std::vector<float>& mean, const std::vector<float>& std);
Image rot90(const Image& img, int k);   // k quarter turns counter-clockwise (torch.rot90(x, k, (1, 2)))
Image flip_horizontal(const Image& img);  // mirror left-right
Image flip_vertical(const Image& img);    // mirror top-bottom
Image pad(const Image& img, int amount, float value = 0.f);  // on all four sides

// A transform of one sample, in place; randomness from `gen` only.
using Transform = std::function<void(Sample& s, Generator& gen)>;

namespace transforms {
Transform compose(std::vector<Transform> ts);
Transform resize(int height, int width, ResizeMode mode = ResizeMode::Bilinear);
Transform center_crop(int height, int width);
Transform to_gray();
Transform to_rgb();
Transform normalize(std::vector<float> mean, std::vector<float> std);
Transform random_hflip(float p = 0.5f);
Transform random_vflip(float p = 0.5f);
// A random height x width window, after `padding` zeros on every side.
Transform random_crop(int height, int width, int padding = 0);
}  // namespace transforms

// ---- RotNet ---------------------------------------------------------------------------------------
struct RotationBatch {
  Tensor images;  // (4N, C, S, S): row 4i + k is image i turned k quarter turns counter-clockwise
  Tensor labels;  // (4N) holding k as a float (the class index cross_entropy expects)
};
// images (N, C, S, S), square, on the CPU.
RotationBatch make_rotation_batch(const Tensor& images);

// Sample 4i + k is sample i of `base` rotated by k quarter turns, label k
// (its mask rotated with it). Base images must be square to batch.
class RotationDataset : public Dataset {
 public:
  explicit RotationDataset(DatasetPtr base);
  size_t size() const override { return 4 * base_->size(); }
  Sample get(size_t i) const override;
  int label(size_t i) const override { return (int)(i % 4); }
  std::string source(size_t i) const override;
  bool has_masks() const override { return base_->has_masks(); }

 private:
  DatasetPtr base_;
};

}  // namespace recon::data
