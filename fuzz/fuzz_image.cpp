// libFuzzer target for image decoding from memory (stb_image behind
// decode_image): PNG 8/16 bit, JPEG, BMP, TGA; the first byte picks the
// channel request (as stored, gray, RGB).
#include <cmath>

#include "data/image_io.hpp"
#include "fuzz/fuzz_util.hpp"

using namespace recon;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static constexpr int kChannels[] = {0, 1, 3};
  const int channels = kChannels[data[0] % 3];
  fuzz::expect_ok_or_error([&] {
    data::Image img = data::decode_image(data + 1, size - 1, channels, "fuzz-input");
    // Decoded values lie in [0, 1] with the promised channel count.
    if (channels != 0 && img.channels != channels) __builtin_trap();
    for (float v : img.pixels)
      if (!(v >= 0.f && v <= 1.f)) __builtin_trap();
  });
  return 0;
}
