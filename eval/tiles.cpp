// Tile offsets and the averaging stitcher of tile mode.
#include "eval/tiles.hpp"

#include "runtime/error.hpp"

namespace recon::eval {

std::vector<int> tile_starts(int length, int tile, int stride) {
  RECON_CHECK(tile > 0 && tile <= length, "tile_starts: the tile (" << tile << ") must be positive and fit the image ("
                                                                     << length << " pixels)");
  RECON_CHECK(stride > 0, "tile_starts: the stride must be positive, got " << stride);
  std::vector<int> s;
  for (int p = 0; p + tile <= length; p += stride) s.push_back(p);
  if (s.back() != length - tile) s.push_back(length - tile);
  return s;
}

TileStitcher::TileStitcher(int channels, int height, int width)
    : sum_(channels, height, width, 0.f), count_((size_t)height * width, 0) {}

void TileStitcher::add(const data::Image& w, int top, int left) {
  RECON_CHECK(w.channels == sum_.channels && top >= 0 && left >= 0 && top + w.height <= sum_.height &&
                  left + w.width <= sum_.width,
              "TileStitcher::add: window " << w.shape_str() << " at (" << top << ", " << left << ") does not fit "
                                           << sum_.shape_str());
  for (int c = 0; c < w.channels; ++c)
    for (int y = 0; y < w.height; ++y) {
      const float* src = w.row(c, y);
      float* dst = sum_.row(c, top + y) + left;
      for (int x = 0; x < w.width; ++x) dst[x] += src[x];
    }
  for (int y = 0; y < w.height; ++y)
    for (int x = 0; x < w.width; ++x) ++count_[(size_t)(top + y) * sum_.width + left + x];
}

data::Image TileStitcher::result() const {
  data::Image out = sum_;
  const size_t plane = out.plane();
  for (int c = 0; c < out.channels; ++c)
    for (size_t i = 0; i < plane; ++i) {
      float& v = out.pixels[c * plane + i];
      v = count_[i] > 0 ? v / (float)count_[i] : 0.f;
    }
  return out;
}

int64_t TileStitcher::uncovered() const {
  int64_t n = 0;
  for (int c : count_) n += c == 0;
  return n;
}

}  // namespace recon::eval
