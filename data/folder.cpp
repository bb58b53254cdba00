// Generic folder, MVTec AD and PIPED layouts: they only list files and pair
// images with masks; FileDataset decodes.
#include "data/folder.hpp"

#include <algorithm>
#include <map>

#include "data/image_io.hpp"
#include "runtime/error.hpp"

namespace fs = std::filesystem;

namespace recon::data {

std::vector<std::string> default_mask_names(const std::string& stem) { return {stem + "_mask", stem}; }

std::vector<std::string> piped_mask_names(const std::string& stem) {
  size_t at = stem.rfind("_D_");
  if (at == std::string::npos) return {};
  std::string rest = stem.substr(at + 3);  // "01_1"
  std::vector<std::string> out = {stem.substr(0, at) + "_GT_" + rest};
  // PA_ZPB01_RL numbers its masks without the leading zero: _GT_1_1 for _D_01_1.
  if (rest.size() > 1 && rest[0] == '0') out.push_back(stem.substr(0, at) + "_GT_" + rest.substr(1));
  return out;
}

// Images in `dir`; throws when there are none.
static std::vector<fs::path> nonempty_images(const fs::path& dir, const char* what) {
  std::vector<fs::path> files = list_images(dir);
  RECON_CHECK(!files.empty(), "folder " << dir.string() << ": no images (empty " << what << " class)");
  return files;
}

// The mask in `by_stem` for `image` under the namer's candidates.
static fs::path find_mask(const fs::path& image, const std::map<std::string, fs::path>& by_stem,
                          const fs::path& mask_dir, const MaskNamer& namer) {
  std::vector<std::string> cands = namer(image.stem().string());
  for (const std::string& c : cands) {
    auto it = by_stem.find(c);
    if (it != by_stem.end()) return it->second;
  }
  std::string tried;
  for (const std::string& c : cands) tried += (tried.empty() ? "" : ", ") + c + ".*";
  RECON_FAIL("image " << image.string() << " has no mask in " << mask_dir.string() << " (tried "
                      << (tried.empty() ? std::string("no names") : tried) << ")");
}

static std::map<std::string, fs::path> masks_by_stem(const fs::path& dir) {
  std::map<std::string, fs::path> m;
  for (const fs::path& p : list_images(dir)) m.emplace(p.stem().string(), p);
  return m;
}

std::shared_ptr<FileDataset> load_folder(const FolderOptions& opt) {
  RECON_CHECK(!opt.normal_dir.empty(), "load_folder: normal_dir is required");
  std::vector<FileEntry> entries;
  for (const fs::path& p : nonempty_images(opt.normal_dir, "normal")) entries.push_back({p, {}, 0, "good"});
  fs::path mask_dir;
  if (!opt.mask_dirs.empty()) {
    std::error_code ec;
    std::string tried;
    for (const fs::path& d : opt.mask_dirs) {
      if (fs::is_directory(d, ec)) {
        mask_dir = d;
        break;
      }
      tried += (tried.empty() ? "" : ", ") + d.string();
    }
    RECON_CHECK(!mask_dir.empty(), "mask folder missing: none of " << tried << " exists");
  }
  if (!opt.abnormal_dir.empty()) {
    std::map<std::string, fs::path> masks;
    if (!mask_dir.empty()) masks = masks_by_stem(mask_dir);
    for (const fs::path& p : nonempty_images(opt.abnormal_dir, "abnormal")) {
      fs::path m = mask_dir.empty() ? fs::path() : find_mask(p, masks, mask_dir, opt.mask_names);
      entries.push_back({p, m, 1, "defect"});
    }
  }
  return std::make_shared<FileDataset>(std::move(entries), !mask_dir.empty(), opt.channels, opt.masks_inverted);
}

// ---- MVTec AD ---------------------------------------------------------------------------------

std::vector<std::string> list_mvtec_categories(const fs::path& root) {
  std::error_code ec;
  RECON_CHECK(fs::is_directory(root, ec), "mvtec: folder " << root.string() << " is missing");
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(root, ec))
    if (e.is_directory() && fs::is_directory(e.path() / "train", ec) && fs::is_directory(e.path() / "test", ec))
      out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::shared_ptr<FileDataset> load_mvtec(const fs::path& root, const std::string& category, Split split,
                                        int channels) {
  std::error_code ec;
  fs::path cat = root / category;
  RECON_CHECK(fs::is_directory(cat, ec), "mvtec: category folder " << cat.string() << " is missing");
  std::vector<FileEntry> entries;
  if (split == Split::Train) {
    for (const fs::path& p : nonempty_images(cat / "train" / "good", "normal")) entries.push_back({p, {}, 0, "good"});
    return std::make_shared<FileDataset>(std::move(entries), false, channels);
  }
  fs::path test = cat / "test";
  RECON_CHECK(fs::is_directory(test, ec), "mvtec: folder " << test.string() << " is missing");
  std::vector<std::string> kinds;
  for (const auto& e : fs::directory_iterator(test, ec))
    if (e.is_directory()) kinds.push_back(e.path().filename().string());
  std::sort(kinds.begin(), kinds.end());
  RECON_CHECK(!kinds.empty(), "mvtec: folder " << test.string() << " has no defect folders");
  for (const std::string& kind : kinds) {
    auto files = nonempty_images(test / kind, kind.c_str());
    if (kind == "good") {
      for (const fs::path& p : files) entries.push_back({p, {}, 0, kind});
      continue;
    }
    fs::path gt = cat / "ground_truth" / kind;
    RECON_CHECK(fs::is_directory(gt, ec), "mvtec: mask folder " << gt.string() << " is missing");
    auto masks = masks_by_stem(gt);
    auto namer = [](const std::string& stem) { return std::vector<std::string>{stem + "_mask"}; };
    for (const fs::path& p : files) entries.push_back({p, find_mask(p, masks, gt, namer), 1, kind});
  }
  return std::make_shared<FileDataset>(std::move(entries), true, channels);
}

// ---- PIPED ----------------------------------------------------------------------------------------

std::vector<std::string> list_piped_classes(const fs::path& root) {
  std::error_code ec;
  RECON_CHECK(fs::is_directory(root, ec), "piped: folder " << root.string() << " is missing");
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(root, ec))
    if (e.is_directory() && fs::is_directory(e.path() / "NoDefects", ec) &&
        fs::is_directory(e.path() / "Defects", ec))
      out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::shared_ptr<FileDataset> load_piped_class(const fs::path& root, const std::string& cls, int channels) {
  std::error_code ec;
  fs::path dir = root / cls;
  RECON_CHECK(fs::is_directory(dir, ec), "piped: class folder " << dir.string() << " is missing");
  FolderOptions opt;
  opt.normal_dir = dir / "NoDefects";
  opt.abnormal_dir = dir / "Defects";
  // The archive spells the mask folder both ways.
  opt.mask_dirs = {dir / "Defects" / "GroundTruth", dir / "Defects" / "GroundThruth"};
  opt.mask_names = piped_mask_names;
  opt.masks_inverted = true;  // PIPED masks are black impurities on white
  opt.channels = channels;
  return load_folder(opt);
}

}  // namespace recon::data
