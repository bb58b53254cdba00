// Image construction and its Tensor conversions.
#include "data/image.hpp"

#include <cstring>
#include <sstream>

#include "runtime/error.hpp"

namespace recon::data {

Image::Image(int c, int h, int w, float fill) : channels(c), height(h), width(w) {
  RECON_CHECK(c > 0 && h > 0 && w > 0, "Image: bad size (" << c << ", " << h << ", " << w << ")");
  pixels.assign((size_t)c * h * w, fill);
}

std::string Image::shape_str() const {
  std::ostringstream os;
  os << "(" << channels << ", " << height << ", " << width << ")";
  return os.str();
}

Tensor image_to_tensor(const Image& img) {
  RECON_CHECK(!img.empty(), "image_to_tensor: empty image");
  Tensor t = Tensor::empty({img.channels, img.height, img.width});
  std::memcpy(t.data(), img.pixels.data(), img.numel() * sizeof(float));
  return t;
}

Image image_from_tensor(const Tensor& t) {
  RECON_CHECK(t.defined() && (t.dim() == 2 || t.dim() == 3),
              "image_from_tensor: expected a (C, H, W) or (H, W) tensor, got "
                  << (t.defined() ? shape_str(t.shape()) : std::string("an undefined tensor")));
  int c = t.dim() == 3 ? (int)t.size(0) : 1;
  Image img(c, (int)t.size(-2), (int)t.size(-1));
  img.pixels = t.to_vector();
  return img;
}

}  // namespace recon::data
