// libFuzzer target for the folder layouts (generic folder, MVTec AD, PIPED):
// the input describes a small tree -- records of (folder, file stem,
// extension, content) drawn from the names those layouts use -- which is
// written to a scratch folder and loaded; up to 8 samples are then decoded.
// Byte 0: layout (bits 0-1), channels (bits 2-3), inverted masks (bit 4).
// Record: [folder][stem][ext][len] then content: len 0 -> a valid 2x2 gray
// PNG, 1 -> a valid 2x2 RGB BMP, 2 -> a folder instead of a file, else len-3
// raw bytes. At most 16 records, so that one run stays cheap.
#include <algorithm>
#include <fstream>
#include <iterator>
#include <vector>

#include "data/folder.hpp"
#include "data/image_io.hpp"
#include "fuzz/fuzz_util.hpp"

using namespace recon;
namespace fs = std::filesystem;

namespace {

constexpr const char* kFolders[] = {"normal",          "abnormal",        "masks",
                                    "masks_b",         "cat/train/good",  "cat/test/good",
                                    "cat/test/crack",  "cat/ground_truth/crack", "cat/test",
                                    "cls/NoDefects",   "cls/Defects",     "cls/Defects/GroundTruth",
                                    "cls/Defects/GroundThruth", "cls", "cat/ground_truth/good", "."};
constexpr const char* kStems[] = {"a", "b", "a_mask", "b_mask", "X_S_D_01_1", "X_S_GT_01_1", "X_S_GT_1_1",
                                  "X_S_D_1", "_D_", "_D_0", "c.d", ""};
constexpr const char* kExts[] = {".png", ".bmp", ".PNG", ".txt", "", ".jpg", ".tga", ".jpeg"};
constexpr size_t kMaxRecords = 16;
constexpr size_t kMaxSamples = 8;

template <class T, size_t N>
const T& pick(const T (&a)[N], uint8_t b) {
  return a[b % N];
}

std::vector<uint8_t> file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Valid tiny images, made once with the library's own writers.
struct ValidImages {
  std::vector<uint8_t> png_gray, bmp_rgb;
  ValidImages() {
    const fs::path dir = fuzz::scratch_dir() / "seed";
    fs::create_directories(dir);
    data::Image gray(1, 2, 2), rgb(3, 2, 2);
    for (size_t i = 0; i < gray.pixels.size(); ++i) gray.pixels[i] = (float)(i % 2);
    for (size_t i = 0; i < rgb.pixels.size(); ++i) rgb.pixels[i] = (float)(i % 3) / 2.f;
    data::write_png(dir / "g.png", gray);
    data::write_bmp(dir / "c.bmp", rgb);
    png_gray = file_bytes(dir / "g.png");
    bmp_rgb = file_bytes(dir / "c.bmp");
  }
};

void decode_some(const data::Dataset& ds) {
  for (size_t i = 0; i < std::min(ds.size(), kMaxSamples); ++i) {
    fuzz::expect_ok_or_error([&] {
      data::Sample s = ds.get(i);
      if (ds.label(i) != 0 && ds.label(i) != 1) __builtin_trap();
    });
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ValidImages valid;
  if (size < 1) return 0;
  const fs::path root = fuzz::scratch_dir() / "tree";
  std::error_code ec;
  fs::remove_all(root, ec);
  fs::create_directories(root);
  const int layout = data[0] & 3;
  static constexpr int kChannels[] = {0, 1, 3, 0};
  const int channels = kChannels[(data[0] >> 2) & 3];
  const bool inverted = (data[0] >> 4) & 1;
  size_t at = 1;
  for (size_t r = 0; r < kMaxRecords && at + 4 <= size; ++r) {
    const fs::path folder = root / pick(kFolders, data[at]);
    const std::string name = std::string(pick(kStems, data[at + 1])) + pick(kExts, data[at + 2]);
    const size_t len = data[at + 3];
    at += 4;
    fs::create_directories(folder, ec);
    if (name.empty()) continue;
    const fs::path file = folder / name;
    if (len == 0) {
      fuzz::write_file(file, valid.png_gray.data(), valid.png_gray.size());
    } else if (len == 1) {
      fuzz::write_file(file, valid.bmp_rgb.data(), valid.bmp_rgb.size());
    } else if (len == 2) {
      fs::create_directories(file, ec);
    } else {
      const size_t n = std::min(len - 3, size - at);
      fuzz::write_file(file, data + at, n);
      at += n;
    }
  }
  fuzz::expect_ok_or_error([&] {
    std::shared_ptr<data::FileDataset> ds;
    if (layout == 0) {
      data::FolderOptions opt;
      opt.normal_dir = root / "normal";
      opt.abnormal_dir = root / "abnormal";
      opt.mask_dirs = {root / "masks", root / "masks_b"};
      opt.masks_inverted = inverted;
      opt.channels = channels;
      ds = data::load_folder(opt);
    } else if (layout == 1 || layout == 2) {
      for (const std::string& c : data::list_mvtec_categories(root)) (void)c;
      ds = data::load_mvtec(root, "cat", layout == 1 ? data::Split::Test : data::Split::Train, channels);
    } else {
      for (const std::string& c : data::list_piped_classes(root)) (void)c;
      ds = data::load_piped_class(root, "cls", channels);
    }
    decode_some(*ds);
  });
  return 0;
}
