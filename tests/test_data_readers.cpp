// The data readers on generated fixtures and on bad input (IDX plain and
// gzip, image files, CIFAR-10, generic folders, MVTec AD), the apps' header
// reader of image shapes against the decoder, and on the real
// data sets: Fashion-MNIST from the Debian package and PIPED from the shared
// folder. Every bad input must raise a recon::Error naming the file and the
// problem.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <set>

#include "apps/anomaly_data.hpp"
#include "data/cifar.hpp"
#include "data/folder.hpp"
#include "data/idx.hpp"
#include "data/image_io.hpp"
#include "data/synthetic.hpp"
#include "runtime/error.hpp"
#include "test_data_util.hpp"

using namespace recon;
using namespace recon::data;
using namespace recon_test;

namespace {

std::vector<uint8_t> ramp_bytes(size_t n, int mul = 7) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = (uint8_t)((i * mul + 3) % 256);
  return v;
}

// A (C, H, W) image whose pixels are exact 8-bit code values.
Image ramp_image(int c, int h, int w) {
  Image img(c, h, w);
  for (size_t i = 0; i < img.numel(); ++i) img.pixels[i] = (float)((i * 37 + 11) % 256) / 255.f;
  return img;
}

float max_abs_diff(const Image& a, const Image& b) {
  REQUIRE(a.numel() == b.numel());
  float m = 0;
  for (size_t i = 0; i < a.numel(); ++i) m = std::max(m, std::abs(a.pixels[i] - b.pixels[i]));
  return m;
}

// A small MNIST-like folder: n images of h x w, labels i % 10.
void write_mnist_fixture(const fs::path& dir, const std::string& prefix, int n, int h, int w, bool gzip) {
  std::vector<uint8_t> labels(n);
  for (int i = 0; i < n; ++i) labels[i] = (uint8_t)(i % 10);
  std::string ext = gzip ? ".gz" : "";
  write_idx(dir / (prefix + "-images-idx3-ubyte" + ext), {n, h, w}, ramp_bytes((size_t)n * h * w), gzip);
  write_idx(dir / (prefix + "-labels-idx1-ubyte" + ext), {n}, labels, gzip);
}

}  // namespace

// ---- IDX ---------------------------------------------------------------------------------------------

TEST_CASE("idx: plain and gzip files round-trip dims and bytes") {
  TempDir tmp;
  auto data = ramp_bytes(3 * 4 * 5);
  for (bool gz : {false, true}) {
    fs::path p = tmp / (gz ? "a.idx.gz" : "a.idx");
    write_idx(p, {3, 4, 5}, data, gz);
    auto bytes = read_bytes(p);
    // gzip files start with 1f 8b; plain ones with the IDX magic 00 00 08 03.
    CHECK((gz ? (bytes[0] == 0x1f && bytes[1] == 0x8b) : (bytes[0] == 0 && bytes[2] == 8 && bytes[3] == 3)));
    IdxArray a = read_idx(p);
    CHECK(a.dims == std::vector<int64_t>{3, 4, 5});
    CHECK(a.data == data);
  }
}

TEST_CASE("idx: image and label pair -> ArrayDataset in [0, 1]") {
  TempDir tmp;
  write_mnist_fixture(tmp.path(), "train", 12, 6, 5, true);
  auto ds = load_mnist(tmp.path(), Split::Train);
  REQUIRE(ds->size() == 12);
  CHECK(ds->channels() == 1);
  CHECK(ds->height() == 6);
  CHECK(ds->width() == 5);
  auto raw = ramp_bytes(12 * 30);
  Sample s = ds->get(7);
  CHECK(s.label == 7);
  CHECK(ds->label(11) == 1);
  REQUIRE(s.image.numel() == 30);
  for (int k = 0; k < 30; ++k) CHECK(s.image.pixels[k] == doctest::Approx(raw[7 * 30 + k] / 255.0));
  CHECK(has(s.source, "train-images-idx3-ubyte.gz[7]"));
  // Plain files are found when no .gz exists.
  write_mnist_fixture(tmp.path(), "t10k", 4, 6, 5, false);
  CHECK(load_mnist(tmp.path(), Split::Test)->size() == 4);
}

TEST_CASE("idx: bad input raises errors that name the file and the problem") {
  TempDir tmp;
  auto data = ramp_bytes(2 * 3 * 3);
  SUBCASE("truncated plain file") {
    fs::path p = tmp / "t.idx";
    write_idx(p, {2, 3, 3}, data, false);
    truncate_file(p, fs::file_size(p) - 5);
    std::string m = error_of([&] { read_idx(p); });
    CHECK(has(m, p.string()));
    CHECK(has(m, "truncated: the header promises 18 data bytes, the file holds 13"));
  }
  SUBCASE("truncated header") {
    fs::path p = tmp / "h.idx";
    write_bytes(p, {0, 0, 8, 3, 0, 0});
    std::string m = error_of([&] { read_idx(p); });
    CHECK(has(m, p.string()));
    CHECK(has(m, "truncated: the header needs 16 bytes, the file holds 6"));
  }
  SUBCASE("truncated gzip stream") {
    fs::path p = tmp / "t.idx.gz";
    write_idx(p, {64, 32, 32}, ramp_bytes(64 * 32 * 32, 13), true);
    truncate_file(p, fs::file_size(p) / 2);
    std::string m = error_of([&] { read_idx(p); });
    CHECK(has(m, p.string()));
    CHECK(has(m, "corrupt or truncated gzip stream"));
    CHECK(has(m, "unexpected end of file"));
  }
  SUBCASE("wrong magic number") {
    fs::path p = tmp / "m.idx";
    std::vector<uint8_t> bytes = {0x12, 0x34, 0x08, 0x01, 0, 0, 0, 2, 5, 6};
    write_bytes(p, bytes);
    std::string m = error_of([&] { read_idx(p); });
    CHECK(has(m, p.string()));
    CHECK(has(m, "wrong magic number 0x12340801"));
    // An IDX of another element type (0x0D = float) is refused the same way.
    write_bytes(p, {0, 0, 0x0D, 0x01, 0, 0, 0, 0});
    CHECK(has(error_of([&] { read_idx(p); }), "wrong magic number 0x00000D01"));
  }
  SUBCASE("trailing bytes") {
    fs::path p = tmp / "x.idx";
    write_idx(p, {2, 3, 3}, data, false);
    auto bytes = read_bytes(p);
    bytes.push_back(0);
    write_bytes(p, bytes);
    CHECK(has(error_of([&] { read_idx(p); }), "1 unexpected bytes after the data"));
  }
  SUBCASE("missing file") {
    fs::path p = tmp / "none.idx";
    std::string m = error_of([&] { read_idx(p); });
    CHECK(has(m, p.string()));
    CHECK(has(m, "file not found"));
  }
  SUBCASE("image and label counts differ") {
    write_idx(tmp / "i.idx", {2, 3, 3}, data, false);
    write_idx(tmp / "l.idx", {3}, {0, 1, 2}, false);
    std::string m = error_of([&] { load_idx_pair(tmp / "i.idx", tmp / "l.idx"); });
    CHECK(has(m, "holds 2 images but"));
    CHECK(has(m, "holds 3 labels"));
  }
  SUBCASE("label out of range") {
    write_idx(tmp / "train-images-idx3-ubyte", {2, 3, 3}, data, false);
    write_idx(tmp / "train-labels-idx1-ubyte", {2}, {3, 12}, false);
    std::string m = error_of([&] { load_mnist(tmp.path(), Split::Train); });
    CHECK(has(m, "train-labels-idx1-ubyte"));
    CHECK(has(m, "label 12 at index 1 is not below 10 classes"));
  }
  SUBCASE("missing MNIST folder and missing Fashion-MNIST package") {
    CHECK(has(error_of([&] { load_mnist(tmp / "nope", Split::Train); }), "is missing"));
    std::string m = error_of([&] { load_fashion_mnist(Split::Train, tmp / "nope"); });
    CHECK(has(m, (tmp / "nope").string()));
    CHECK(has(m, "install the Debian package dataset-fashion-mnist"));
  }
}

TEST_CASE("Fashion-MNIST loads from the Debian package") {
  REQUIRE_MESSAGE(fs::is_directory(kFashionMnistDir),
                  kFashionMnistDir << " is missing: install the Debian package dataset-fashion-mnist "
                                      "(apt-get install dataset-fashion-mnist; the setup scripts install it)");
  auto train = load_fashion_mnist(Split::Train);
  auto test = load_fashion_mnist(Split::Test);
  CHECK(train->size() == 60000);
  CHECK(test->size() == 10000);
  for (auto* ds : {train.get(), test.get()}) {
    CHECK(ds->channels() == 1);
    CHECK(ds->height() == 28);
    CHECK(ds->width() == 28);
    std::map<int, int> count;
    for (int l : ds->labels()) ++count[l];
    CHECK(count.size() == 10);
    CHECK(count.begin()->first == 0);
    CHECK(count.rbegin()->first == 9);
    // Both splits are balanced: 6000 and 1000 per class.
    int per_class = (int)ds->size() / 10;
    for (auto [label, n] : count) CHECK_MESSAGE(n == per_class, "class " << label);
  }
  // The first image of each split is an ankle boot (class 9), as in torchvision.
  CHECK(train->label(0) == 9);
  CHECK(test->label(0) == 9);
  Sample s = train->get(0);
  float lo = 1, hi = 0;
  for (float v : s.image.pixels) lo = std::min(lo, v), hi = std::max(hi, v);
  CHECK(lo == 0.f);
  CHECK(hi == 1.f);
}

// ---- image files ------------------------------------------------------------------------------------

TEST_CASE("images: PNG, BMP and TGA round-trip exactly; JPEG closely; gray and RGB") {
  TempDir tmp;
  for (int c : {1, 3}) {
    Image img = ramp_image(c, 9, 13);
    std::string tag = std::to_string(c);
    write_png(tmp / ("a" + tag + ".png"), img);
    write_bmp(tmp / ("a" + tag + ".bmp"), img);
    write_tga(tmp / ("a" + tag + ".tga"), img);
    for (const char* ext : {".png", ".bmp", ".tga"}) {
      // BMP has no plain gray format (stb writes gray as 24-bit): ask for c channels.
      Image back = read_image(tmp / ("a" + tag + ext), c);
      CAPTURE(std::string(ext));
      CHECK(back.channels == c);
      CHECK(back.height == 9);
      CHECK(back.width == 13);
      CHECK(max_abs_diff(back, img) == 0.f);
    }
  }
  CHECK(read_image(tmp / "a1.bmp").channels == 3);
  CHECK(read_image(tmp / "a1.png").channels == 1);
  // JPEG is lossy: a smooth gradient survives within a few code values.
  Image smooth(3, 16, 16);
  for (int ch = 0; ch < 3; ++ch)
    for (int y = 0; y < 16; ++y)
      for (int x = 0; x < 16; ++x) smooth.at(ch, y, x) = (float)(x + y + 8 * ch) / 64.f;
  write_jpeg(tmp / "s.jpg", smooth, 100);
  Image j = read_image(tmp / "s.jpg");
  CHECK(j.channels == 3);
  CHECK(max_abs_diff(j, smooth) < 0.05f);
}

TEST_CASE("images: 16-bit PNG keeps 16-bit precision") {
  TempDir tmp;
  Image img(1, 4, 5);
  for (size_t i = 0; i < img.numel(); ++i) img.pixels[i] = (float)(1000 * i + 7) / 65535.f;
  write_png16(tmp / "g16.png", img);
  Image back = read_image(tmp / "g16.png");
  CHECK(back.channels == 1);
  // 8-bit decoding would be off by up to 1/510; 16-bit is exact to float rounding.
  CHECK(max_abs_diff(back, img) < 1e-6f);
  Image rgb = ramp_image(3, 3, 4);
  rgb.pixels[0] = 12345.f / 65535.f;
  write_png16(tmp / "c16.png", rgb);
  Image rb = read_image(tmp / "c16.png");
  CHECK(rb.channels == 3);
  CHECK(max_abs_diff(rb, rgb) < 1e-6f);
}

TEST_CASE("images: channel conversion on read") {
  TempDir tmp;
  Image rgb(3, 1, 2);
  // Pure red, then white.
  rgb.pixels = {1, 1, 0, 1, 0, 1};
  write_png(tmp / "c.png", rgb);
  Image g = read_image(tmp / "c.png", 1);
  REQUIRE(g.channels == 1);
  CHECK(g.pixels[0] == doctest::Approx(0.299).epsilon(1e-4));
  CHECK(g.pixels[1] == doctest::Approx(1.0).epsilon(1e-4));
  Image gray(1, 1, 2);
  gray.pixels = {0.2f, 0.8f};
  write_png(tmp / "g.png", gray);
  Image c3 = read_image(tmp / "g.png", 3);
  REQUIRE(c3.channels == 3);
  for (int ch = 0; ch < 3; ++ch) CHECK(c3.at(ch, 0, 1) == doctest::Approx(204 / 255.0));
  CHECK(has(error_of([&] { read_image(tmp / "g.png", 2); }), "channels must be 0 (as stored), 1 or 3"));
}

namespace {

// ---- crafted PNG and BMP files (the writers only write 1 or 3 channels) ----------------------

// The PNG chunk CRC (ISO 3309, as zlib's crc32) and zlib's Adler-32, bit by bit:
// the files below are valid PNGs, not only what stb tolerates.
uint32_t png_crc(const uint8_t* p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return c ^ 0xffffffffu;
}

void push_be32(std::vector<uint8_t>& v, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back((uint8_t)(x >> s));
}

void push_chunk(std::vector<uint8_t>& png, const char* type, const std::vector<uint8_t>& data) {
  push_be32(png, (uint32_t)data.size());
  const size_t start = png.size();
  png.insert(png.end(), type, type + 4);
  png.insert(png.end(), data.begin(), data.end());
  push_be32(png, png_crc(png.data() + start, png.size() - start));
}

// An 8-bit PNG of colour type `colour` (0 gray, 2 RGB, 3 palette, 4 gray +
// alpha, 6 RGBA) with `samples` samples per pixel, a ramp of values, stored
// (uncompressed) deflate; `extra` chunks (PLTE, tRNS) go before IDAT.
std::vector<uint8_t> crafted_png(int width, int height, uint8_t colour, int samples,
                                 const std::vector<std::pair<const char*, std::vector<uint8_t>>>& extra = {}) {
  std::vector<uint8_t> raw;
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);  // filter: none
    for (int i = 0; i < width * samples; ++i) raw.push_back((uint8_t)((y * 31 + i * 17) % (colour == 3 ? 4 : 256)));
  }
  REQUIRE(raw.size() < 65536);  // one stored block
  std::vector<uint8_t> z = {0x78, 0x01, 0x01, (uint8_t)(raw.size() & 0xff), (uint8_t)(raw.size() >> 8),
                            (uint8_t)(~raw.size() & 0xff), (uint8_t)((~raw.size() >> 8) & 0xff)};
  z.insert(z.end(), raw.begin(), raw.end());
  uint32_t a = 1, b = 0;
  for (uint8_t v : raw) a = (a + v) % 65521, b = (b + a) % 65521;
  push_be32(z, b << 16 | a);
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, ihdr;
  push_be32(ihdr, (uint32_t)width);
  push_be32(ihdr, (uint32_t)height);
  ihdr.insert(ihdr.end(), {8, colour, 0, 0, 0});
  push_chunk(png, "IHDR", ihdr);
  for (const auto& [type, data] : extra) push_chunk(png, type, data);
  push_chunk(png, "IDAT", z);
  push_chunk(png, "IEND", {});
  return png;
}

// An uncompressed BMP (BITMAPINFOHEADER) of `bpp` 8 (a 256-gray palette), 24
// or 32 bits per pixel.
std::vector<uint8_t> crafted_bmp(int width, int height, int bpp) {
  const int row = (width * bpp / 8 + 3) / 4 * 4, palette = bpp == 8 ? 256 * 4 : 0;
  const uint32_t offset = 14 + 40 + palette, size = offset + (uint32_t)(row * height);
  std::vector<uint8_t> b;
  auto le = [&b](uint32_t x, int n) {
    for (int i = 0; i < n; ++i) b.push_back((uint8_t)(x >> (8 * i)));
  };
  b.push_back('B'), b.push_back('M'), le(size, 4), le(0, 4), le(offset, 4);
  le(40, 4), le((uint32_t)width, 4), le((uint32_t)height, 4), le(1, 2), le((uint32_t)bpp, 2), le(0, 4);
  le((uint32_t)(row * height), 4), le(2835, 4), le(2835, 4), le(bpp == 8 ? 256 : 0, 4), le(0, 4);
  for (int i = 0; i < palette / 4; ++i) b.insert(b.end(), {(uint8_t)i, (uint8_t)i, (uint8_t)i, 0});
  for (int y = 0; y < height; ++y)
    for (int i = 0; i < row; ++i) b.push_back((uint8_t)((y * 13 + i * 7) % 256));
  return b;
}

}  // namespace

TEST_CASE("images: the apps' header read of size and channels is what read_image decodes") {
  TempDir tmp;
  const int w = 5, h = 3;  // odd sizes: BMP row padding, no square confusion
  std::map<std::string, int> expected;  // file -> channels read_image gives (channels 0)
  auto craft = [&](const std::string& name, const std::vector<uint8_t>& bytes, int channels) {
    write_bytes(tmp / name, bytes);
    expected[name] = channels;
  };
  craft("gray.png", crafted_png(w, h, 0, 1), 1);
  craft("gray_trns.png", crafted_png(w, h, 0, 1, {{"tRNS", {0, 7}}}), 1);
  craft("gray_alpha.png", crafted_png(w, h, 4, 2), 1);
  craft("rgb.png", crafted_png(w, h, 2, 3), 3);
  craft("rgba.png", crafted_png(w, h, 6, 4), 3);
  // A palette of four grays, and one with transparency: stb expands both to colour.
  const std::vector<uint8_t> grays = {0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255};
  craft("palette.png", crafted_png(w, h, 3, 1, {{"PLTE", grays}}), 3);
  craft("palette_trns.png", crafted_png(w, h, 3, 1, {{"PLTE", grays}, {"tRNS", {255, 0, 128, 255}}}), 3);
  craft("pal8.bmp", crafted_bmp(w, h, 8), 3);  // even a gray palette decodes as RGB
  craft("bgr24.bmp", crafted_bmp(w, h, 24), 3);
  craft("bgra32.bmp", crafted_bmp(w, h, 32), 3);
  // The project's writers: 8- and 16-bit PNG, 24-bit BMP (stb writes gray as 24 bit too).
  write_png(tmp / "w_gray.png", ramp_image(1, h, w)), expected["w_gray.png"] = 1;
  write_png(tmp / "w_rgb.png", ramp_image(3, h, w)), expected["w_rgb.png"] = 3;
  write_png16(tmp / "w_gray16.png", ramp_image(1, h, w)), expected["w_gray16.png"] = 1;
  write_png16(tmp / "w_rgb16.png", ramp_image(3, h, w)), expected["w_rgb16.png"] = 3;
  write_bmp(tmp / "w_rgb.bmp", ramp_image(3, h, w)), expected["w_rgb.bmp"] = 3;
  write_bmp(tmp / "w_gray.bmp", ramp_image(1, h, w)), expected["w_gray.bmp"] = 3;
  for (const auto& [name, channels] : expected) {
    INFO(name);
    const Image img = read_image(tmp / name);  // each file decodes
    CHECK(img.channels == channels);
    CHECK(img.width == w);
    CHECK(img.height == h);
    int hw = 0, hh = 0, hc = 0;
    REQUIRE(recon::apps::image_header_shape((tmp / name).string(), hw, hh, hc));
    CHECK(hc == img.channels);
    CHECK(hw == img.width);
    CHECK(hh == img.height);
  }
  // Other formats are not read from headers (the check decodes them).
  write_tga(tmp / "t.tga", ramp_image(3, h, w));
  int hw = 0, hh = 0, hc = 0;
  CHECK_FALSE(recon::apps::image_header_shape((tmp / "t.tga").string(), hw, hh, hc));
  // Bad headers are not trusted either (false: the check decodes the file,
  // and the decoder names it): cut short, a zero or negative size, a colour
  // type PNG does not have, a BMP info header of no known size, no file.
  const std::vector<uint8_t> png = crafted_png(w, h, 2, 3);
  auto refused = [&](const std::string& name, std::vector<uint8_t> bytes) {
    INFO(name);
    write_bytes(tmp / name, bytes);
    CHECK_FALSE(recon::apps::image_header_shape((tmp / name).string(), hw, hh, hc));
  };
  refused("cut.png", std::vector<uint8_t>(png.begin(), png.begin() + 20));
  std::vector<uint8_t> bad = png;
  bad[16] = bad[17] = bad[18] = bad[19] = 0;  // width 0
  refused("zero_width.png", bad);
  bad = png;
  bad[20] = 0x80;  // height 2^31 + 3: past INT32_MAX
  refused("huge_height.png", bad);
  bad = png;
  bad[25] = 5;  // no such colour type
  refused("colour5.png", bad);
  bad = crafted_bmp(w, h, 24);
  bad[14] = 20;  // an info header of 20 bytes: no BMP version has one
  refused("info20.bmp", bad);
  CHECK_FALSE(recon::apps::image_header_shape((tmp / "missing.png").string(), hw, hh, hc));
}

TEST_CASE("images: corrupt, truncated and missing files raise named errors") {
  TempDir tmp;
  fs::path junk = tmp / "junk.png";
  write_bytes(junk, {'n', 'o', 't', ' ', 'a', 'n', ' ', 'i', 'm', 'a', 'g', 'e'});
  std::string m = error_of([&] { read_image(junk); });
  CHECK(has(m, junk.string()));
  CHECK(has(m, "cannot decode"));

  fs::path cut = tmp / "cut.png";
  write_png(cut, ramp_image(3, 32, 32));
  auto bytes = read_bytes(cut);
  bytes[20] ^= 0xff;  // damage the IHDR (its CRC no longer matches)
  bytes.resize(bytes.size() / 2);
  write_bytes(cut, bytes);
  m = error_of([&] { read_image(cut); });
  CHECK(has(m, cut.string()));
  CHECK(has(m, "cannot decode"));

  fs::path empty = tmp / "empty.bmp";
  write_bytes(empty, {});
  CHECK(has(error_of([&] { read_image(empty); }), "empty file"));

  fs::path none = tmp / "none.png";
  m = error_of([&] { read_image(none); });
  CHECK(has(m, none.string()));
  CHECK(has(m, "file not found"));
  CHECK(has(error_of([&] { list_images(tmp / "no_dir"); }), "missing"));
}

// ---- CIFAR-10 -----------------------------------------------------------------------------------------

TEST_CASE("cifar: batches load as (3, 32, 32) planar RGB with labels") {
  TempDir tmp;
  const size_t rec = 3 * 32 * 32;
  auto im1 = ramp_bytes(3 * rec, 5), im2 = ramp_bytes(2 * rec, 11);
  write_cifar10_batch(tmp / "b1.bin", im1, {4, 0, 9});
  write_cifar10_batch(tmp / "b2.bin", im2, {1, 2});
  auto ds = load_cifar10_batches({tmp / "b1.bin", tmp / "b2.bin"});
  REQUIRE(ds->size() == 5);
  CHECK(ds->channels() == 3);
  CHECK(ds->labels() == std::vector<int>{4, 0, 9, 1, 2});
  Sample s = ds->get(4);  // record 1 of the second file
  CHECK(s.image.at(0, 0, 0) == doctest::Approx(im2[rec] / 255.0));
  CHECK(s.image.at(1, 0, 0) == doctest::Approx(im2[rec + 1024] / 255.0));     // green plane
  CHECK(s.image.at(2, 31, 31) == doctest::Approx(im2[2 * rec - 1] / 255.0));  // last blue pixel
  // The standard layout: data_batch_1..5.bin and test_batch.bin.
  write_cifar10_batch(tmp / "test_batch.bin", im2, {3, 3});
  CHECK(load_cifar10(tmp.path(), Split::Test)->size() == 2);
  std::string m = error_of([&] { load_cifar10(tmp.path(), Split::Train); });
  CHECK(has(m, "data_batch_1.bin"));
  CHECK(has(m, "file not found"));
}

TEST_CASE("cifar: truncated files and bad labels raise named errors") {
  TempDir tmp;
  const size_t rec = 3 * 32 * 32;
  fs::path p = tmp / "b.bin";
  write_cifar10_batch(p, ramp_bytes(2 * rec), {1, 2});
  truncate_file(p, 2 * (rec + 1) - 100);
  std::string m = error_of([&] { load_cifar10_batches({p}); });
  CHECK(has(m, p.string()));
  CHECK(has(m, "is not a whole number of 3073-byte records"));
  write_cifar10_batch(p, ramp_bytes(2 * rec), {1, 10});
  m = error_of([&] { load_cifar10_batches({p}); });
  CHECK(has(m, p.string()));
  CHECK(has(m, "record 1 has label 10"));
}

// ---- folders ---------------------------------------------------------------------------------------------

namespace {
// normal/ n0..n2, abnormal/ a0, a1, masks/ a0_mask, a1_mask (8x6 RGB).
void write_folder_fixture(const fs::path& root) {
  fs::create_directories(root / "normal");
  fs::create_directories(root / "abnormal");
  fs::create_directories(root / "masks");
  for (int i = 0; i < 3; ++i) write_png(root / "normal" / ("n" + std::to_string(i) + ".png"), ramp_image(3, 8, 6));
  for (int i = 0; i < 2; ++i) {
    write_bmp(root / "abnormal" / ("a" + std::to_string(i) + ".bmp"), ramp_image(3, 8, 6));
    Image m(1, 8, 6, 0.f);
    m.at(0, 2 + i, 3) = 1.f;
    write_png(root / "masks" / ("a" + std::to_string(i) + "_mask.png"), m);
  }
  write_bytes(root / "normal" / "notes.txt", {'x'});  // not an image: ignored
}
}  // namespace

TEST_CASE("folder: normal, abnormal and mask folders") {
  TempDir tmp;
  write_folder_fixture(tmp.path());
  FolderOptions opt;
  opt.normal_dir = tmp / "normal";
  opt.abnormal_dir = tmp / "abnormal";
  opt.mask_dirs = {tmp / "masks"};
  auto ds = load_folder(opt);
  REQUIRE(ds->size() == 5);
  CHECK(ds->has_masks());
  std::vector<int> labels;
  for (size_t i = 0; i < ds->size(); ++i) labels.push_back(ds->label(i));
  CHECK(labels == std::vector<int>{0, 0, 0, 1, 1});
  Sample n = ds->get(1);
  CHECK(n.kind == "good");
  REQUIRE(n.mask.height == 8);
  for (float v : n.mask.pixels) CHECK(v == 0.f);
  Sample a = ds->get(4);
  CHECK(a.kind == "defect");
  CHECK(has(a.source, "a1.bmp"));
  REQUIRE(a.mask.width == 6);
  float total = 0;
  for (float v : a.mask.pixels) total += v;
  CHECK(total == 1.f);
  CHECK(a.mask.at(0, 3, 3) == 1.f);
  // Without a mask folder: no masks at all.
  opt.mask_dirs.clear();
  auto nm = load_folder(opt);
  CHECK_FALSE(nm->has_masks());
  CHECK(nm->get(3).mask.empty());
}

TEST_CASE("folder: missing folder, empty class, missing mask, mask of another size") {
  TempDir tmp;
  write_folder_fixture(tmp.path());
  FolderOptions opt;
  opt.normal_dir = tmp / "normal";
  opt.abnormal_dir = tmp / "abnormal";
  opt.mask_dirs = {tmp / "masks"};
  SUBCASE("missing folder") {
    opt.normal_dir = tmp / "gone";
    std::string m = error_of([&] { load_folder(opt); });
    CHECK(has(m, (tmp / "gone").string()));
    CHECK(has(m, "missing"));
  }
  SUBCASE("missing mask folder") {
    opt.mask_dirs = {tmp / "m1", tmp / "m2"};
    std::string m = error_of([&] { load_folder(opt); });
    CHECK(has(m, "mask folder missing"));
    CHECK(has(m, (tmp / "m2").string()));
  }
  SUBCASE("empty class") {
    fs::create_directories(tmp / "empty");
    write_bytes(tmp / "empty" / "readme.txt", {'x'});
    opt.abnormal_dir = tmp / "empty";
    std::string m = error_of([&] { load_folder(opt); });
    CHECK(has(m, (tmp / "empty").string()));
    CHECK(has(m, "no images (empty abnormal class)"));
  }
  SUBCASE("an abnormal image without a mask") {
    fs::remove(tmp / "masks" / "a1_mask.png");
    std::string m = error_of([&] { load_folder(opt); });
    CHECK(has(m, "a1.bmp has no mask in"));
    CHECK(has(m, "a1_mask.*"));
  }
  SUBCASE("a mask whose size differs from its image") {
    write_png(tmp / "masks" / "a0_mask.png", Image(1, 7, 6, 0.f));
    auto ds = load_folder(opt);
    std::string m = error_of([&] { ds->get(3); });
    CHECK(has(m, (tmp / "masks" / "a0_mask.png").string()));
    CHECK(has(m, "6x7"));
    CHECK(has(m, "mask size differs from image size"));
  }
  SUBCASE("a corrupt image surfaces when decoded, with its name") {
    write_bytes(tmp / "normal" / "n1.png", {1, 2, 3, 4});
    auto ds = load_folder(opt);
    std::string m = error_of([&] { ds->get(1); });
    CHECK(has(m, (tmp / "normal" / "n1.png").string()));
    CHECK(has(m, "cannot decode"));
  }
}

TEST_CASE("mvtec: synthetic category in the MVTec layout") {
  TempDir tmp;
  SyntheticOptions so;
  so.size = 24;
  so.train_count = 5;
  so.test_good_count = 2;
  so.test_defect_count = 3;
  so.seed = 17;
  write_synthetic_mvtec(tmp.path(), "tile", so);
  CHECK(list_mvtec_categories(tmp.path()) == std::vector<std::string>{"tile"});
  auto train = load_mvtec(tmp.path(), "tile", Split::Train);
  CHECK(train->size() == 5);
  CHECK_FALSE(train->has_masks());
  Sample t0 = train->get(0);
  CHECK(t0.image.channels == 3);
  CHECK(t0.image.height == 24);
  auto test = load_mvtec(tmp.path(), "tile", Split::Test);
  REQUIRE(test->size() == 2 + 3 * 3);
  CHECK(test->has_masks());
  std::map<std::string, int> kinds;
  for (size_t i = 0; i < test->size(); ++i) {
    Sample s = test->get(i);
    ++kinds[s.kind];
    CHECK(s.label == (s.kind == "good" ? 0 : 1));
    REQUIRE(s.mask.same_size(s.image));
    float area = 0;
    for (float v : s.mask.pixels) area += v;
    if (s.kind == "good") CHECK(area == 0.f);
    else CHECK_MESSAGE(area > 0.f, s.source);
  }
  CHECK(kinds == std::map<std::string, int>{{"blob", 3}, {"good", 2}, {"hole", 3}, {"scratch", 3}});
  // A defect image without its mask, and a missing category.
  fs::remove(tmp / "tile/ground_truth/hole/001_mask.png");
  std::string m = error_of([&] { load_mvtec(tmp.path(), "tile", Split::Test); });
  CHECK(has(m, "001.png has no mask in"));
  CHECK(has(error_of([&] { load_mvtec(tmp.path(), "wood", Split::Train); }), "category folder"));
  fs::remove_all(tmp / "tile/train/good");
  fs::create_directories(tmp / "tile/train/good");
  CHECK(has(error_of([&] { load_mvtec(tmp.path(), "tile", Split::Train); }), "no images (empty normal class)"));
}

// ---- PIPED ---------------------------------------------------------------------------------------------------

TEST_CASE("piped: 12 classes of 48 normal and 48 defective images, every defect with its mask") {
  const fs::path root = fs::path(RECON_SOURCE_DIR) / ".." / "shared" / "data" / "piped" / "data";
  REQUIRE_MESSAGE(fs::is_directory(root), root.string() << " is missing (the shared PIPED copy)");
  auto classes = list_piped_classes(root);
  REQUIRE(classes.size() == 12);
  std::set<std::string> spellings;
  for (const std::string& cls : classes) {
    CAPTURE(cls);
    for (const char* sp : {"GroundTruth", "GroundThruth"})
      if (fs::is_directory(root / cls / "Defects" / sp)) spellings.insert(sp);
    auto ds = load_piped_class(root, cls);
    REQUIRE(ds->size() == 96);
    CHECK(ds->has_masks());
    int normal = 0, defective = 0;
    for (size_t i = 0; i < ds->size(); ++i) {
      const FileEntry& e = ds->entries()[i];
      if (e.label == 0) {
        ++normal;
        CHECK(e.mask.empty());
      } else {
        ++defective;
        CHECK_MESSAGE(fs::is_regular_file(e.mask), e.image.string());
      }
      Sample s = ds->get(i);
      CHECK(s.image.channels == 3);
      CHECK(s.image.height == 128);
      // One patch of the archive is 127 pixels wide (its mask too).
      bool narrow = e.image.filename() == "PA_BTN01_RL_S_D_07_2.bmp";
      CHECK_MESSAGE(s.image.width == (narrow ? 127 : 128), e.image.string());
      REQUIRE(s.mask.same_size(s.image));
      double area = 0;
      for (float v : s.mask.pixels) area += v;
      // Defects are small impurities: a few pixels, well under half the patch.
      if (e.label == 1) CHECK_MESSAGE((area > 0 && area < 0.5 * 128 * 128), e.mask.string() << " area " << area);
      else CHECK(area == 0);
    }
    CHECK(normal == 48);
    CHECK(defective == 48);
  }
  // Both spellings of the mask folder occur and both load.
  CHECK(spellings.size() == 2);
  CHECK(piped_mask_names("PA_X_S_D_01_2") == std::vector<std::string>{"PA_X_S_GT_01_2", "PA_X_S_GT_1_2"});
  CHECK(piped_mask_names("PA_X_S_D_10_2") == std::vector<std::string>{"PA_X_S_GT_10_2"});
}
