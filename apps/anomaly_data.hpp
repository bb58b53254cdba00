// The datasets of the anomaly-detection apps behind one set of flags:
// --dataset fashion-mnist|idx|mvtec|folder, --data PATH, --category (MVTec),
// --normal-dir/--abnormal-dir/--mask-dir (folder layout), --image-size.
// Each becomes an AnomalySplit (train normals, held-out calibration normals,
// test set labelled 0 normal / 1 anomalous) plus the transform that brings
// every image to the model's size. "Classes" for --all-classes are the ten
// class indices of an IDX set or the categories under an MVTec root.
// Header-only: apps are thin mains.
#pragma once
#include <string>
#include <vector>

#include "data/folder.hpp"
#include "data/idx.hpp"
#include "data/one_class.hpp"
#include "data/transforms.hpp"
#include "runtime/error.hpp"

namespace recon::apps {

struct DataSpec {
  std::string kind = "fashion-mnist";  // fashion-mnist | idx | mvtec | folder
  std::string path;                    // IDX folder or MVTec root; empty: the kind's default
  std::string category;                // MVTec category
  std::string normal_dir, abnormal_dir, mask_dir;  // folder layout
  int image_size = 0;                  // resize to image_size x image_size; 0 keeps the stored size
  double calibration_fraction = 0.1;   // of the training normals, held out (never trained on)
  double test_fraction = 0.5;          // folder layout: normals held out for the test set
};

struct AnomalyData {
  data::AnomalySplit split;
  data::Transform transform;  // empty when the stored size is kept
  int channels = 0, height = 0, width = 0;  // after the transform
  bool has_masks = false;     // the test set carries pixel masks
  std::string description;    // for messages and run.json
};

inline bool is_idx_kind(const DataSpec& s) { return s.kind == "fashion-mnist" || s.kind == "idx"; }

inline void check_data_kind(const DataSpec& s) {
  RECON_CHECK(s.kind == "fashion-mnist" || s.kind == "idx" || s.kind == "mvtec" || s.kind == "folder",
              "--dataset '" << s.kind << "': expected fashion-mnist, idx, mvtec or folder");
}

// The names --all-classes runs over: "0".."9" for IDX sets, the categories
// of an MVTec root. The folder layout has a single normal class.
inline std::vector<std::string> list_anomaly_classes(const DataSpec& s) {
  check_data_kind(s);
  if (is_idx_kind(s)) {
    std::vector<std::string> c;
    for (int k = 0; k < 10; ++k) c.push_back(std::to_string(k));
    return c;
  }
  RECON_CHECK(s.kind == "mvtec", "--all-classes needs a dataset with classes (fashion-mnist, idx or mvtec); the "
                                 "folder layout has one normal set");
  RECON_CHECK(!s.path.empty(), "--dataset mvtec needs --data <MVTec root>");
  std::vector<std::string> c = data::list_mvtec_categories(s.path);
  RECON_CHECK(!c.empty(), "--dataset mvtec: no category folders (with train/ and test/) under " << s.path);
  return c;
}

// Loads the split of one class: `cls` is the normal class index (IDX) or the
// category (MVTec; empty: --category); ignored for the folder layout.
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
                                  << s.path << ": " << [&] {
                                       std::string all;
                                       for (const std::string& c : data::list_mvtec_categories(s.path))
                                         all += (all.empty() ? "" : ", ") + c;
                                       return all.empty() ? std::string("none") : all;
                                     }());
    auto train = data::load_mvtec(s.path, cat, data::Split::Train);
    auto test = data::load_mvtec(s.path, cat, data::Split::Test);
    // train/good is all label 0 and test labels are 0 good / 1 defect, so the
    // one-class split with class 0 holds out calibration normals and keeps the labels.
    d.split = data::one_class_split(train, test, 0, s.calibration_fraction, seed);
    d.description = "mvtec " + s.path + ", category " + cat;
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

}  // namespace recon::apps
