// The datasets of the anomaly-detection apps behind one set of flags:
// --dataset fashion-mnist|idx|mvtec|folder|piped, --data PATH, --category
// (MVTec category, PIPED class), --normal-dir/--abnormal-dir/--mask-dir
// (folder layout), --image-size. Each becomes an AnomalySplit (train normals,
// held-out calibration normals, test set labelled 0 normal / 1 anomalous)
// plus the transform that brings every image to the model's size. "Classes"
// for --all-classes are the ten class indices of an IDX set, the categories
// under an MVTec root or the classes of PIPED. Random-tile training
// (TileSampling) draws fixed-size windows of the training normals at native
// resolution instead. Header-only: apps are thin mains.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "data/folder.hpp"
#include "data/idx.hpp"
#include "data/one_class.hpp"
#include "data/transforms.hpp"
#include "runtime/error.hpp"

namespace recon::apps {

struct DataSpec {
  std::string kind = "fashion-mnist";  // fashion-mnist | idx | mvtec | folder | piped
  std::string path;                    // IDX folder, MVTec or PIPED root; empty: the kind's default
  std::string category;                // MVTec category or PIPED class
  std::string normal_dir, abnormal_dir, mask_dir;  // folder layout
  int image_size = 0;                  // resize to image_size x image_size; 0 keeps the stored size
  // Held out of the training normals (never trained on). Folder layout and
  // PIPED: a fraction of all normals, taken from those left after the test part.
  double calibration_fraction = 0.1;
  double test_fraction = 0.5;          // folder layout and PIPED: normals held out for the test set
};

// Where --dataset piped looks without --data: the PIPED archive beside the
// repository, as the project's machines hold it (DESIGN.md, Data).
inline constexpr const char* kPipedDefaultDir = "../shared/data/piped";

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
  AnomalyData d;
  if (is_idx_kind(s)) {
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
    auto train = data::load_mvtec(s.path, cat, data::Split::Train);
    auto test = data::load_mvtec(s.path, cat, data::Split::Test);
    // train/good is all label 0 and test labels are 0 good / 1 defect, so the
    // one-class split with class 0 holds out calibration normals and keeps the labels.
    d.split = data::one_class_split(train, test, 0, s.calibration_fraction, seed);
    d.description = "mvtec " + s.path + ", category " + cat;
  } else if (s.kind == "piped") {
    const std::string root = resolve_piped_root(s.path.empty() ? kPipedDefaultDir : s.path);
    const std::string c = cls.empty() ? s.category : cls;
    RECON_CHECK(!c.empty(), "--dataset piped needs --category (or --all-classes); classes under "
                                << root << ": " << join_names(data::list_piped_classes(root)));
    d.split = data::holdout_split(data::load_piped_class(root, c), s.test_fraction, s.calibration_fraction, seed);
    d.description = "piped " + root + ", class " + c;
  } else {
    RECON_CHECK(!s.normal_dir.empty(), "--dataset folder needs --normal-dir (and --abnormal-dir for a test set)");
    RECON_CHECK(!s.abnormal_dir.empty(), "--dataset folder needs --abnormal-dir: the test set needs anomalies");
    data::FolderOptions fo;
    fo.normal_dir = s.normal_dir;
    fo.abnormal_dir = s.abnormal_dir;
    if (!s.mask_dir.empty()) fo.mask_dirs = {s.mask_dir};
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
