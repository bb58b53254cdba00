// The datasets of the anomaly-detection apps behind one set of flags:
// --dataset fashion-mnist|idx|mvtec|folder|piped, --data PATH, --category
// (MVTec category, PIPED class), --normal-dir/--abnormal-dir/--mask-dir
// (folder layout), --image-size, --channels. Each becomes an AnomalySplit (train normals,
// held-out calibration normals, test set labelled 0 normal / 1 anomalous)
// plus the transform that brings every image to the model's size. "Classes"
// for --all-classes are the ten class indices of an IDX set, the categories
// under an MVTec root or the classes of PIPED. Random-tile training
// (TileSampling) draws fixed-size windows of the training normals at native
// resolution instead. add_data_flags registers the flags on a Cli;
// check_one_image_shape refuses a set of mixed sizes or channel counts before
// any training.
// Header-only: apps are thin mains.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "apps/cli.hpp"
#include "data/folder.hpp"
#include "data/idx.hpp"
#include "data/one_class.hpp"
#include "data/transforms.hpp"
#include "nn/json.hpp"
#include "runtime/error.hpp"

namespace recon::apps {

struct DataSpec {
  std::string kind = "fashion-mnist";  // fashion-mnist | idx | mvtec | folder | piped
  std::string path;                    // IDX folder, MVTec or PIPED root; empty: the kind's default
  std::string category;                // MVTec category or PIPED class
  std::string normal_dir, abnormal_dir, mask_dir;  // folder layout
  int image_size = 0;                  // resize to image_size x image_size; 0 keeps the stored size
  int channels = 0;                    // 0 as stored, 1 every image to gray, 3 to RGB (IDX: always 1)
  // Held out of the training normals (never trained on). Folder layout and
  // PIPED: a fraction of all normals, taken from those left after the test part.
  double calibration_fraction = 0.1;
  double test_fraction = 0.5;          // folder layout and PIPED: normals held out for the test set
};

// Where --dataset piped looks without --data: the PIPED archive beside the
// repository, as the project's machines hold it (DESIGN.md, Data).
inline constexpr const char* kPipedDefaultDir = "../shared/data/piped";

// Writes the data keys of a training app's config (what recon_eval reads
// to find the test set again) into `j`: the same keys for every app.
inline void set_data_json(nn::Json& j, const DataSpec& s) {
  j.set("dataset", nn::Json(s.kind));
  j.set("data", nn::Json(s.path));
  j.set("category", nn::Json(s.category));
  j.set("normal_dir", nn::Json(s.normal_dir));
  j.set("abnormal_dir", nn::Json(s.abnormal_dir));
  j.set("mask_dir", nn::Json(s.mask_dir));
  j.set("image_size", nn::Json(s.image_size));
  j.set("channels", nn::Json(s.channels));  // --channels: recon_eval reads the test set the same way
  j.set("test_fraction", nn::Json(s.test_fraction));
}

// Registers the dataset flags of the training apps on `cli`, bound to `spec`
// (and --normal-class to `normal_class`), with one set of help texts. Only
// what the apps do differently is passed in: `mask_dir_use`, what the app does
// with --mask-dir's masks, and `image_size_note`, appended to --image-size's
// "(0: keep; a set of mixed sizes needs it".
inline void add_data_flags(Cli& cli, DataSpec& spec, int& normal_class, const std::string& mask_dir_use,
                           const std::string& image_size_note = "") {
  cli.add("--dataset", spec.kind, "fashion-mnist, idx (any MNIST-format IDX folder), mvtec, folder or piped");
  cli.add("--data", spec.path,
          std::string("IDX folder ({train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]; fashion-mnist defaults to ") +
              data::kFashionMnistDir +
              ", Debian package dataset-fashion-mnist), the MVTec AD root, or the PIPED root (the class folders or "
              "the archive holding them in data/; piped defaults to " + kPipedDefaultDir + ")");
  cli.add("--category", spec.category, "MVTec category (e.g. bottle) or PIPED class (e.g. PA_BDP01_TL)");
  cli.add("--normal-dir", spec.normal_dir, "folder layout: normal images");
  cli.add("--abnormal-dir", spec.abnormal_dir, "folder layout: anomalous images (test only)");
  cli.add("--mask-dir", spec.mask_dir, "folder layout: masks of the anomalous images (" + mask_dir_use + ")");
  cli.add("--image-size", spec.image_size,
          "resize images to SIZE x SIZE (0: keep; a set of mixed sizes needs it" + image_size_note + ")");
  cli.add("--channels", spec.channels,
          "0: keep each file's channels (a set mixing gray and colour files needs 1 or 3); 1: convert every image "
          "to gray (BT.601 luma); 3: to RGB. IDX sets are gray");
  cli.add("--calibration-fraction", spec.calibration_fraction,
          "training normals held out for calibration and held-out reports (never trained on); folder layout and "
          "PIPED: a fraction of all normals, taken from those the test set leaves");
  cli.add("--test-fraction", spec.test_fraction,
          "folder layout and PIPED: normals held out for the test set (PIPED: half of each class's 48)");
  cli.add("--normal-class", normal_class, "IDX sets: the normal class, 0-9; every other class is an anomaly");
}

// The folder holding PIPED's class folders: `path` itself, or its data/
// subfolder when `path` is the unpacked archive (README.md, data/<class>).
// Throws, naming the path, when neither holds a class.
inline std::string resolve_piped_root(const std::string& path) {
  std::error_code ec;
  RECON_CHECK(std::filesystem::is_directory(path, ec),
              "--dataset piped: the folder " << path << " is missing (pass --data <PIPED root>)");
  if (!data::list_piped_classes(path).empty()) return path;
  const std::string sub = (std::filesystem::path(path) / "data").string();
  RECON_CHECK(std::filesystem::is_directory(sub, ec) && !data::list_piped_classes(sub).empty(),
              "--dataset piped: no class folders (with NoDefects/ and Defects/) under " << path << " or " << sub);
  return sub;
}

struct AnomalyData {
  data::AnomalySplit split;
  data::Transform transform;  // empty when the stored size is kept
  int channels = 0, height = 0, width = 0;  // after the transform
  bool has_masks = false;     // the test set carries pixel masks
  std::string description;    // for messages and run.json
};

// "a, b, c" ("none" when empty), for messages.
inline std::string join_names(const std::vector<std::string>& names) {
  std::string all;
  for (const std::string& n : names) all += (all.empty() ? "" : ", ") + n;
  return all.empty() ? std::string("none") : all;
}

inline bool is_idx_kind(const DataSpec& s) { return s.kind == "fashion-mnist" || s.kind == "idx"; }

inline void check_data_kind(const DataSpec& s) {
  RECON_CHECK(s.kind == "fashion-mnist" || s.kind == "idx" || s.kind == "mvtec" || s.kind == "folder" ||
                  s.kind == "piped",
              "--dataset '" << s.kind << "': expected fashion-mnist, idx, mvtec, folder or piped");
}

// The names --all-classes runs over: "0".."9" for IDX sets, the categories
// of an MVTec root, the classes of PIPED (12: the one with normal images
// only is skipped). The folder layout has a single normal class.
inline std::vector<std::string> list_anomaly_classes(const DataSpec& s) {
  check_data_kind(s);
  if (is_idx_kind(s)) {
    std::vector<std::string> c;
    for (int k = 0; k < 10; ++k) c.push_back(std::to_string(k));
    return c;
  }
  if (s.kind == "piped")
    return data::list_piped_classes(resolve_piped_root(s.path.empty() ? kPipedDefaultDir : s.path));
  RECON_CHECK(s.kind == "mvtec", "--all-classes needs a dataset with classes (fashion-mnist, idx, mvtec or piped); "
                                 "the folder layout has one normal set");
  RECON_CHECK(!s.path.empty(), "--dataset mvtec needs --data <MVTec root>");
  std::vector<std::string> c = data::list_mvtec_categories(s.path);
  RECON_CHECK(!c.empty(), "--dataset mvtec: no category folders (with train/ and test/) under " << s.path);
  return c;
}

// Loads the split of one class: `cls` is the normal class index (IDX), the
// category (MVTec) or the class (PIPED; empty: --category); ignored for the
// folder layout. PIPED: --test-fraction of each class's normals join its
// defective images in the test set, --calibration-fraction are held out for
// calibration, the rest train (data::holdout_split, as recon_eval splits).
inline AnomalyData load_anomaly_data(const DataSpec& s, const std::string& cls, uint64_t seed) {
  check_data_kind(s);
  RECON_CHECK(s.channels == 0 || s.channels == 1 || s.channels == 3,
              "--channels must be 0 (as stored), 1 (gray) or 3 (RGB), got " << s.channels);
  AnomalyData d;
  if (is_idx_kind(s)) {
    RECON_CHECK(s.channels != 3, "--channels 3: --dataset " << s.kind
                                     << " holds gray images (one channel); pass --channels 0 or 1, or use a "
                                        "dataset of files (folder, mvtec, piped) to train on RGB");
    const int k = std::stoi(cls);
    RECON_CHECK(k >= 0 && k <= 9, "--normal-class must be 0-9, got " << k);
    data::DatasetPtr train, test;
    if (s.kind == "fashion-mnist") {
      const std::string dir = s.path.empty() ? data::kFashionMnistDir : s.path;
      train = data::load_fashion_mnist(data::Split::Train, dir);
      test = data::load_fashion_mnist(data::Split::Test, dir);
    } else {
      RECON_CHECK(!s.path.empty(), "--dataset idx needs --data <folder with {train,t10k}-*-ubyte[.gz]>");
      train = data::load_mnist(s.path, data::Split::Train);
      test = data::load_mnist(s.path, data::Split::Test);
    }
    d.split = data::one_class_split(train, test, k, s.calibration_fraction, seed);
    d.description = s.kind + " " + (s.path.empty() ? std::string(data::kFashionMnistDir) : s.path) +
                    ", normal class " + cls;
  } else if (s.kind == "mvtec") {
    RECON_CHECK(!s.path.empty(), "--dataset mvtec needs --data <MVTec root>");
    const std::string cat = cls.empty() ? s.category : cls;
    RECON_CHECK(!cat.empty(), "--dataset mvtec needs --category (or --all-classes); categories under "
                                  << s.path << ": " << join_names(data::list_mvtec_categories(s.path)));
    auto train = data::load_mvtec(s.path, cat, data::Split::Train, s.channels);
    auto test = data::load_mvtec(s.path, cat, data::Split::Test, s.channels);
    // train/good is all label 0 and test labels are 0 good / 1 defect, so the
    // one-class split with class 0 holds out calibration normals and keeps the labels.
    d.split = data::one_class_split(train, test, 0, s.calibration_fraction, seed);
    d.description = "mvtec " + s.path + ", category " + cat;
  } else if (s.kind == "piped") {
    const std::string root = resolve_piped_root(s.path.empty() ? kPipedDefaultDir : s.path);
    const std::string c = cls.empty() ? s.category : cls;
    RECON_CHECK(!c.empty(), "--dataset piped needs --category (or --all-classes); classes under "
                                << root << ": " << join_names(data::list_piped_classes(root)));
    d.split = data::holdout_split(data::load_piped_class(root, c, s.channels), s.test_fraction,
                                  s.calibration_fraction, seed);
    d.description = "piped " + root + ", class " + c;
  } else {
    RECON_CHECK(!s.normal_dir.empty(), "--dataset folder needs --normal-dir (and --abnormal-dir for a test set)");
    RECON_CHECK(!s.abnormal_dir.empty(), "--dataset folder needs --abnormal-dir: the test set needs anomalies");
    data::FolderOptions fo;
    fo.normal_dir = s.normal_dir;
    fo.abnormal_dir = s.abnormal_dir;
    if (!s.mask_dir.empty()) fo.mask_dirs = {s.mask_dir};
    fo.channels = s.channels;
    d.split = data::holdout_split(data::load_folder(fo), s.test_fraction, s.calibration_fraction, seed);
    d.description = "folder normal " + s.normal_dir + ", abnormal " + s.abnormal_dir;
  }
  d.has_masks = d.split.test->has_masks();
  const data::Image first = d.split.train->get(0).image;
  d.channels = first.channels;
  d.height = first.height;
  d.width = first.width;
  if (s.image_size > 0) {
    // Every image, not only when the first differs: a set may mix sizes.
    // Area averaging when shrinking (no aliasing), bilinear when enlarging.
    const data::ResizeMode mode =
        s.image_size < std::max(first.height, first.width) ? data::ResizeMode::Area : data::ResizeMode::Bilinear;
    d.transform = data::transforms::resize(s.image_size, s.image_size, mode);
    d.height = d.width = s.image_size;
  }
  return d;
}

// ---- one image shape ---------------------------------------------------------------

// The width, height and decoded channel count of a PNG or BMP file, read from
// its header without decoding; false for another format (or a file too short
// to be one). The channels are those read_image(path) returns (channels 0),
// which follows stb_image's own count (data/image_io.cpp: 1 or 2 stored
// channels -> 1, 3 or 4 -> 3):
//   PNG, IHDR colour type (byte 25): 0 gray -> 1 (also with a tRNS chunk:
//     stb reports 1 channel for the header), 4 gray+alpha -> 1, 2 RGB -> 3,
//     3 palette -> 3 (stb expands palettes to RGB(A), whatever the colours),
//     6 RGBA -> 3; any other value is not a PNG stb reads (false: decoded).
//   BMP: always 3. stb expands every BMP, 8-bit palette ones included (even
//     a gray palette), to RGB or RGBA, and reports 3 or 4 channels.
inline bool image_header_shape(const std::string& path, int& width, int& height, int& channels) {
  unsigned char h[26] = {};
  std::ifstream f(path, std::ios::binary);
  if (!f.read(reinterpret_cast<char*>(h), sizeof h)) return false;
  auto be32 = [&h](int o) {
    return (int64_t)((uint32_t)h[o] << 24 | (uint32_t)h[o + 1] << 16 | (uint32_t)h[o + 2] << 8 | (uint32_t)h[o + 3]);
  };
  auto le32 = [&h](int o) {
    return (int64_t)(int32_t)((uint32_t)h[o] | (uint32_t)h[o + 1] << 8 | (uint32_t)h[o + 2] << 16 |
                              (uint32_t)h[o + 3] << 24);
  };
  int64_t w = 0, ht = 0;
  int c = 0;
  static const unsigned char kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (std::memcmp(h, kPng, 8) == 0 && std::memcmp(h + 12, "IHDR", 4) == 0) {
    w = be32(16);
    ht = be32(20);
    switch (h[25]) {  // IHDR: width, height, bit depth (byte 24), then the colour type (byte 25)
      case 0: case 4: c = 1; break;          // gray, gray + alpha
      case 2: case 3: case 6: c = 3; break;  // RGB, palette, RGBA
      default: return false;
    }
  } else if (h[0] == 'B' && h[1] == 'M') {
    const int64_t info = le32(14);  // the size of the info header after the 14-byte file header
    if (info == 12) {               // BITMAPCOREHEADER: 16-bit sizes
      w = h[18] | h[19] << 8;
      ht = h[20] | h[21] << 8;
    } else if (info >= 40) {        // BITMAPINFOHEADER and later; a negative height is a top-down bitmap
      w = le32(18);
      ht = std::llabs(le32(22));
    }
    c = 3;
  }
  if (w <= 0 || ht <= 0 || w > INT32_MAX || ht > INT32_MAX) return false;
  width = (int)w;
  height = (int)ht;
  channels = c;
  return true;
}

// The model takes one image shape, and batches only stack images of one
// shape: throws, before any training, when the training, calibration and test
// images do not all share
//  - one channel count, unless --channels converts them (spec.channels 1 or 3):
//    naming a file of another count, its count, the most common one and
//    --channels 1 or 3 (this holds with --image-size too: resizing keeps the
//    channels, and with `check_size` false, for random-tile training);
//  - one size, when the stored size is kept (spec.image_size 0) and
//    `check_size`: naming a file of another size, its size, the most common
//    size and --image-size.
// PNG and BMP shapes come from their headers, other files are decoded once;
// IDX sets hold one shape by construction.
inline void check_one_image_shape(const DataSpec& spec, const AnomalyData& d, const std::string& app,
                                  bool check_size = true) {
  const bool sizes = check_size && spec.image_size <= 0, channels = spec.channels == 0;
  if (is_idx_kind(spec) || (!sizes && !channels)) return;
  struct Shaped {
    std::string source;
    int width = 0, height = 0, channels = 0;
  };
  std::vector<Shaped> all;
  std::map<std::pair<int, int>, size_t> size_count;  // (width, height) -> images
  std::map<int, size_t> channel_count;               // channels -> images
  for (const data::DatasetPtr& ds : {d.split.train, d.split.calibration, d.split.test})
    for (size_t i = 0; ds && i < ds->size(); ++i) {
      Shaped s{ds->source(i)};
      if (!image_header_shape(s.source, s.width, s.height, s.channels)) {
        const data::Image img = ds->get(i).image;
        s.width = img.width;
        s.height = img.height;
        s.channels = img.channels;
      }
      ++size_count[{s.width, s.height}];
      ++channel_count[s.channels];
      all.push_back(std::move(s));
    }
  auto most = [](const auto& count) {
    return std::max_element(count.begin(), count.end(),
                            [](const auto& a, const auto& b) { return a.second < b.second; });
  };
  if (channels && channel_count.size() > 1) {
    const auto common = most(channel_count);
    const auto odd = std::find_if(all.begin(), all.end(), [&](const Shaped& s) { return s.channels != common->first; });
    auto name = [](int c) {
      return std::to_string(c) + (c == 1 ? " channel (gray)" : c == 3 ? " channels (colour)" : " channels");
    };
    RECON_FAIL(app << ": " << odd->source << " has " << name(odd->channels) << " but " << common->second << " of the "
                   << all.size() << " training, calibration and test images have " << name(common->first) << " ("
                   << all.size() - common->second
                   << " differ); the model takes one channel count: pass --channels 1 to convert every image to "
                      "gray or --channels 3 to RGB");
  }
  if (!sizes || size_count.size() <= 1) return;
  const auto common = most(size_count);
  const auto odd = std::find_if(all.begin(), all.end(), [&](const Shaped& s) {
    return std::make_pair(s.width, s.height) != common->first;
  });
  RECON_FAIL(app << ": " << odd->source << " is " << odd->width << "x" << odd->height << " (width x height) but "
                 << common->second << " of the " << all.size() << " training, calibration and test images are "
                 << common->first.first << "x" << common->first.second << " (" << all.size() - common->second
                 << " of other sizes); the model takes one size: pass --image-size S to resize every image to "
                    "S x S");
}

// ---- random-tile training (--train-tile) ------------------------------------------

// The training samples of random-tile training: each one a random tile x tile
// window, at native resolution, of a training normal. An epoch holds `count`
// windows; the normals take turns (each count / n times, the remainder
// spread by the loader's shuffle) and every window's place is drawn from the
// loader's per-sample generator, so an epoch depends only on (seed, epoch)
// and an interrupted one resumes exactly like an epoch of whole images.
// Memory is that of a batch of windows, whatever the image size.
struct TileSampling {
  data::DatasetPtr dataset;   // `count` samples: training normal i % n
  data::Transform transform;  // the random window
};

inline TileSampling random_tiles(const data::DatasetPtr& train, int tile, int64_t count) {
  RECON_CHECK(tile > 0, "--train-tile must be positive, got " << tile);
  RECON_CHECK(count > 0, "--tiles-per-epoch must be positive, got " << count);
  RECON_CHECK(train->size() > 0, "random tiles: no training images");
  std::vector<size_t> idx((size_t)count);
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i % train->size();
  return {std::make_shared<data::SubsetDataset>(train, std::move(idx)), data::transforms::random_crop(tile, tile)};
}

// The default epoch of random-tile training: as many windows as cover the
// training images' area once, n ceil(H W / tile^2) with the first image's H x W.
inline int64_t area_tiles_per_epoch(size_t n_train, int height, int width, int tile) {
  const int64_t per_image = ((int64_t)height * width + (int64_t)tile * tile - 1) / ((int64_t)tile * tile);
  return (int64_t)n_train * std::max<int64_t>(1, per_image);
}

}  // namespace recon::apps
