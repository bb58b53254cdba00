// Tile mode: an image at native resolution is cut into overlapping
// tile x tile windows (stride apart, the last row and column of windows
// flush with the far edges so that every pixel is covered), each window is
// scored on its own, and the per-window maps are stitched back, averaged
// where windows overlap. The image score is the highest window score (a
// small defect lives in one window). tile_starts gives the window offsets
// along one axis; TileStitcher accumulates windows into a sum and a count.
#pragma once
#include <vector>

#include "data/image.hpp"

namespace recon::eval {

// Offsets 0, stride, 2 stride, ... and length - tile (added when the steps
// miss it), increasing and distinct. Throws unless 0 < tile <= length and
// stride > 0.
std::vector<int> tile_starts(int length, int tile, int stride);

// Accumulates (C, th, tw) windows into a (C, H, W) image; result() divides
// each pixel by the number of windows that covered it (0 where none did).
class TileStitcher {
 public:
  TileStitcher(int channels, int height, int width);
  // Adds window `w` at (top, left); it must lie inside and match the channels.
  void add(const data::Image& w, int top, int left);
  data::Image result() const;
  // Pixels no window covered.
  int64_t uncovered() const;

 private:
  data::Image sum_;
  std::vector<int> count_;  // (H, W)
};

}  // namespace recon::eval
