// stb_image decoding, stb_image_write encoding, and a small zlib-based
// 16-bit PNG encoder (stb_image_write only writes 8 bit). The one
// translation unit that instantiates stb_image and stb_image_write.
#include "data/image_io.hpp"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>

#include "runtime/error.hpp"

// The stb headers are third-party code: their warnings are not ours.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#define STB_IMAGE_IMPLEMENTATION
#define STBI_FAILURE_USERMSG
#include <stb_image.h>
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#pragma GCC diagnostic pop

namespace fs = std::filesystem;

namespace recon::data {

// ITU-R BT.601 luma weights for RGB -> gray, in thousandths: integer
// weights summing to 1000 keep a neutral pixel (r = g = b) exact.
static constexpr int kLumaR = 299, kLumaG = 587, kLumaB = 114, kLumaSum = 1000;
// Images above 2^26 pixels (8192 x 8192) are refused before decoding: a
// header of a few bytes could otherwise ask for gigabytes.
static constexpr int64_t kMaxImagePixels = int64_t(1) << 26;

// stb_image 2.27 (Debian 12's libstb-dev) writes past its Huffman tables
// when a JPEG DHT segment declares more than 256 codes (found by
// fuzz/fuzz_image; stb 2.28 refuses such tables). This walks the JPEG's
// markers the way stb reads them -- segments skipped by their length, DHT
// tables by their code counts, padding and scan data up to the next marker
// other than stuffing (FF 00) or a restart -- and reports whether every
// Huffman table it meets holds at most 256 codes. Where stb would stop, the
// walk goes on, so it checks at least every table stb would build; bytes
// that are not a JPEG pass.
static bool jpeg_huffman_tables_ok(const uint8_t* b, size_t n) {
  constexpr unsigned kMaxHuffmanCodes = 256;
  if (n < 2 || b[0] != 0xFF || b[1] != 0xD8) return true;
  size_t pos = 2;
  auto get8 = [&]() -> unsigned { return pos < n ? b[pos++] : 0u; };  // stb reads 0 past the end
  auto get16 = [&]() -> unsigned { unsigned hi = get8(); return hi << 8 | get8(); };
  auto skip = [&](size_t k) { pos = k < n - pos ? pos + k : n; };
  bool in_scan = false;
  while (pos < n) {
    // Entropy-coded data, or padding where a marker was expected (which stb
    // skips before the frame header and refuses after it: walking on there
    // only checks more).
    if (b[pos++] != 0xFF) continue;
    while (pos < n && b[pos] == 0xFF) ++pos;  // fill bytes
    if (pos >= n) return true;
    const unsigned m = b[pos++];
    if (in_scan && (m == 0x00 || (m >= 0xD0 && m <= 0xD7))) continue;  // stuffing, restart
    in_scan = false;
    if (m == 0xD9) return true;  // end of image
    if (m == 0xC4) {             // DHT: tables of (class/id, 16 counts, values)
      int left = (int)get16() - 2;
      while (left > 0) {
        const unsigned q = get8();
        if ((q >> 4) > 1 || (q & 15) > 3) return true;  // stb refuses the header
        unsigned codes = 0;
        for (int i = 0; i < 16; ++i) codes += get8();
        if (codes > kMaxHuffmanCodes) return false;
        skip(codes);
        left -= 17 + (int)codes;
      }
      continue;
    }
    const unsigned len = get16();
    if (len < 2) return true;  // stb refuses the segment
    skip(len - 2);
    if (m == 0xDA) in_scan = true;  // start of scan: entropy-coded data follow
  }
  return true;
}

static std::vector<uint8_t> read_file_bytes(const fs::path& path) {
  std::error_code ec;
  RECON_CHECK(fs::exists(path, ec), "image " << path.string() << ": file not found");
  RECON_CHECK(fs::is_regular_file(path, ec), "image " << path.string() << ": not a regular file");
  std::ifstream in(path, std::ios::binary);
  RECON_CHECK(in, "image " << path.string() << ": cannot open for reading");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  RECON_CHECK(!in.bad(), "image " << path.string() << ": read error");
  return bytes;
}

Image decode_image(const uint8_t* bytes, size_t n, int channels, const std::string& name) {
  RECON_CHECK(channels == 0 || channels == 1 || channels == 3,
              "image " << name << ": channels must be 0 (as stored), 1 or 3, got " << channels);
  RECON_CHECK(n > 0, "image " << name << ": empty file");
  RECON_CHECK(n <= (size_t)INT32_MAX, "image " << name << ": file too large (" << n << " bytes)");
  RECON_CHECK(jpeg_huffman_tables_ok(bytes, n),
              "image " << name << ": corrupt JPEG: a Huffman table (DHT) declares more than 256 codes");
  int w = 0, h = 0, stored = 0;
  if (!stbi_info_from_memory(bytes, (int)n, &w, &h, &stored))
    RECON_FAIL("image " << name << ": cannot decode (" << stbi_failure_reason()
                        << "); not a valid PNG, JPEG, BMP or TGA file");
  RECON_CHECK((int64_t)w * h <= kMaxImagePixels, "image " << name << ": " << w << " x " << h << " pixels exceeds the "
                                                           << kMaxImagePixels << "-pixel limit");
  // Gray (+alpha) stays one channel; colour (+alpha) becomes RGB.
  int out_c = channels != 0 ? channels : (stored <= 2 ? 1 : 3);
  // stb converts to the requested count itself; for gray output we take RGB
  // and apply our luma weights so that conversion is the same everywhere.
  int req = (out_c == 1 && stored >= 3) ? 3 : out_c;
  bool is16 = stbi_is_16_bit_from_memory(bytes, (int)n) != 0;
  Image img;  // allocated once the data decoded (a lying header costs nothing)
  // Code value v of a B-bit file -> v / (2^B - 1), divided (not multiplied by
  // the reciprocal) so that 8-bit values equal v / 255.f everywhere.
  auto fill = [&](auto* data, float max_code) {
    img = Image(out_c, h, w);
    const size_t plane = img.plane();
    if (out_c == req) {
      for (size_t p = 0; p < plane; ++p)
        for (int c = 0; c < out_c; ++c) img.pixels[c * plane + p] = (float)data[p * req + c] / max_code;
    } else {  // RGB -> gray
      for (size_t p = 0; p < plane; ++p) {
        int64_t luma = (int64_t)kLumaR * data[p * 3] + (int64_t)kLumaG * data[p * 3 + 1] + (int64_t)kLumaB * data[p * 3 + 2];
        img.pixels[p] = (float)luma / (max_code * kLumaSum);
      }
    }
  };
  int got_w = 0, got_h = 0, got_c = 0;
  if (is16) {
    std::unique_ptr<stbi_us, void (*)(void*)> data(
        stbi_load_16_from_memory(bytes, (int)n, &got_w, &got_h, &got_c, req), stbi_image_free);
    RECON_CHECK(data != nullptr, "image " << name << ": cannot decode (" << stbi_failure_reason() << ")");
    RECON_CHECK(got_w == w && got_h == h, "image " << name << ": header and data disagree on the size");
    fill(data.get(), 65535.f);
  } else {
    std::unique_ptr<stbi_uc, void (*)(void*)> data(stbi_load_from_memory(bytes, (int)n, &got_w, &got_h, &got_c, req),
                                                   stbi_image_free);
    RECON_CHECK(data != nullptr, "image " << name << ": cannot decode (" << stbi_failure_reason() << ")");
    RECON_CHECK(got_w == w && got_h == h, "image " << name << ": header and data disagree on the size");
    fill(data.get(), 255.f);
  }
  return img;
}

Image read_image(const fs::path& path, int channels) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  return decode_image(bytes.data(), bytes.size(), channels, path.string());
}

Image read_mask(const fs::path& path) {
  Image m = read_image(path, 1);
  for (float& v : m.pixels) v = v > 0.5f ? 1.f : 0.f;
  return m;
}

bool is_image_file(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return (char)std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp" || ext == ".tga";
}

std::vector<fs::path> list_images(const fs::path& dir) {
  std::error_code ec;
  RECON_CHECK(fs::is_directory(dir, ec), "folder " << dir.string() << ": missing (not a directory)");
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && is_image_file(e.path())) out.push_back(e.path());
  RECON_CHECK(!ec, "folder " << dir.string() << ": cannot list (" << ec.message() << ")");
  std::sort(out.begin(), out.end());
  return out;
}

// ---- writers ---------------------------------------------------------------------

static void check_writable(const fs::path& path, const Image& img, const char* what) {
  RECON_CHECK(!img.empty(), what << " " << path.string() << ": empty image");
  RECON_CHECK(img.channels == 1 || img.channels == 3,
              what << " " << path.string() << ": needs 1 or 3 channels, got " << img.channels);
}

static uint8_t to_u8(float v) { return (uint8_t)std::lround(std::clamp(v, 0.f, 1.f) * 255.f); }

std::vector<uint8_t> to_interleaved_u8(const Image& img) {
  std::vector<uint8_t> out(img.numel());
  size_t plane = img.plane();
  for (size_t p = 0; p < plane; ++p)
    for (int c = 0; c < img.channels; ++c) out[p * img.channels + c] = to_u8(img.pixels[c * plane + p]);
  return out;
}

void write_png(const fs::path& path, const Image& img) {
  check_writable(path, img, "write_png");
  auto bytes = to_interleaved_u8(img);
  int ok = stbi_write_png(path.c_str(), img.width, img.height, img.channels, bytes.data(),
                          img.width * img.channels);
  RECON_CHECK(ok != 0, "write_png " << path.string() << ": cannot write the file");
}

void write_bmp(const fs::path& path, const Image& img) {
  check_writable(path, img, "write_bmp");
  auto bytes = to_interleaved_u8(img);
  int ok = stbi_write_bmp(path.c_str(), img.width, img.height, img.channels, bytes.data());
  RECON_CHECK(ok != 0, "write_bmp " << path.string() << ": cannot write the file");
}

void write_tga(const fs::path& path, const Image& img) {
  check_writable(path, img, "write_tga");
  auto bytes = to_interleaved_u8(img);
  int ok = stbi_write_tga(path.c_str(), img.width, img.height, img.channels, bytes.data());
  RECON_CHECK(ok != 0, "write_tga " << path.string() << ": cannot write the file");
}

void write_jpeg(const fs::path& path, const Image& img, int quality) {
  check_writable(path, img, "write_jpeg");
  RECON_CHECK(quality >= 1 && quality <= 100, "write_jpeg " << path.string() << ": quality must be 1..100");
  auto bytes = to_interleaved_u8(img);
  int ok = stbi_write_jpg(path.c_str(), img.width, img.height, img.channels, bytes.data(), quality);
  RECON_CHECK(ok != 0, "write_jpeg " << path.string() << ": cannot write the file");
}

// PNG chunk: length, type, data, CRC over type + data (big-endian numbers).
static void put_be32(std::vector<uint8_t>& v, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back((uint8_t)(x >> s));
}
static void put_chunk(std::vector<uint8_t>& out, const char* type, const std::vector<uint8_t>& data) {
  put_be32(out, (uint32_t)data.size());
  size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  uLong crc = crc32(0L, out.data() + start, (uInt)(out.size() - start));
  put_be32(out, (uint32_t)crc);
}

void write_png16(const fs::path& path, const Image& img) {
  check_writable(path, img, "write_png16");
  const int c = img.channels;
  // Raw scanlines: filter byte 0 (none) then big-endian 16-bit samples.
  std::vector<uint8_t> raw;
  raw.reserve((size_t)img.height * (1 + (size_t)img.width * c * 2));
  for (int y = 0; y < img.height; ++y) {
    raw.push_back(0);
    for (int x = 0; x < img.width; ++x)
      for (int ch = 0; ch < c; ++ch) {
        auto v = (uint16_t)std::lround(std::clamp(img.at(ch, y, x), 0.f, 1.f) * 65535.f);
        raw.push_back((uint8_t)(v >> 8));
        raw.push_back((uint8_t)(v & 0xff));
      }
  }
  uLongf zlen = compressBound((uLong)raw.size());
  std::vector<uint8_t> z(zlen);
  RECON_CHECK(compress2(z.data(), &zlen, raw.data(), (uLong)raw.size(), Z_DEFAULT_COMPRESSION) == Z_OK,
              "write_png16 " << path.string() << ": zlib compression failed");
  z.resize(zlen);
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<uint8_t> ihdr;
  put_be32(ihdr, (uint32_t)img.width);
  put_be32(ihdr, (uint32_t)img.height);
  const uint8_t kBitDepth = 16, kColorGray = 0, kColorRgb = 2;
  ihdr.insert(ihdr.end(), {kBitDepth, c == 1 ? kColorGray : kColorRgb, 0, 0, 0});  // deflate, adaptive, no interlace
  put_chunk(png, "IHDR", ihdr);
  put_chunk(png, "IDAT", z);
  put_chunk(png, "IEND", {});
  std::ofstream out(path, std::ios::binary);
  RECON_CHECK(out, "write_png16 " << path.string() << ": cannot open for writing");
  out.write(reinterpret_cast<const char*>(png.data()), (std::streamsize)png.size());
  RECON_CHECK(out.good(), "write_png16 " << path.string() << ": cannot write the file");
}

}  // namespace recon::data
