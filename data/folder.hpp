// Image-folder datasets: the generic layout (a normal folder, an optional
// abnormal folder, an optional mask folder), MVTec AD (<category>/train/good,
// <category>/test/<defect>, <category>/ground_truth/<defect>/<name>_mask.png)
// and PIPED (<class>/NoDefects, <class>/Defects, masks in
// <class>/Defects/GroundTruth or .../GroundThruth, named *_S_GT_* for the
// image *_S_D_*, black impurities on white). Labels: 0 normal, 1 anomalous.
// Files are decoded on demand.
#pragma once
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.hpp"

namespace recon::data {

// Candidate mask file stems (no extension) for an image's stem, in order.
using MaskNamer = std::function<std::vector<std::string>(const std::string& image_stem)>;
// "<stem>_mask" then "<stem>".
std::vector<std::string> default_mask_names(const std::string& image_stem);

struct FolderOptions {
  std::filesystem::path normal_dir;              // required, must hold images
  std::filesystem::path abnormal_dir;            // optional (empty: normal images only)
  std::vector<std::filesystem::path> mask_dirs;  // optional; the first that exists is used
  MaskNamer mask_names = default_mask_names;
  bool masks_inverted = false;                   // mask files mark anomalous pixels dark
  int channels = 0;                              // 0 as stored, 1 gray, 3 RGB
};

// Normal images (label 0, kind "good") then abnormal ones (label 1, kind
// "defect"), each group sorted by name. With a mask folder every abnormal
// image must have a mask there, and normal images get all-zero masks.
// Throws, naming the folder, when one is missing or holds no images, when no
// candidate mask folder exists, or when an abnormal image has no mask.
std::shared_ptr<FileDataset> load_folder(const FolderOptions& opt);

// ---- MVTec AD ----------------------------------------------------------------------------
// The category folders under `root` (those holding train/ and test/), sorted.
std::vector<std::string> list_mvtec_categories(const std::filesystem::path& root);
// Train: train/good (label 0, no masks). Test: every test/<defect> folder,
// "good" with label 0 and a zero mask, the others label 1 with their mask.
std::shared_ptr<FileDataset> load_mvtec(const std::filesystem::path& root, const std::string& category, Split split,
                                        int channels = 0);

// ---- PIPED -----------------------------------------------------------------------------------
// The class folders under `root` that hold both NoDefects/ and Defects/, sorted
// (the archive also ships PU_PNG01_TL with normal images only; it is skipped).
std::vector<std::string> list_piped_classes(const std::filesystem::path& root);
// The 48 normal then 48 defective images of one class, with masks (inverted
// on read so that 1 marks the impurity). Images are 128x128 RGB except
// PA_BTN01_RL_S_D_07_2 (and its mask), which is 127 wide: batch PIPED with a
// resize transform.
std::shared_ptr<FileDataset> load_piped_class(const std::filesystem::path& root, const std::string& cls,
                                              int channels = 0);
// "X_S_D_01_1" -> {"X_S_GT_01_1", "X_S_GT_1_1"} (PA_ZPB01_RL drops the zero).
std::vector<std::string> piped_mask_names(const std::string& image_stem);

}  // namespace recon::data
