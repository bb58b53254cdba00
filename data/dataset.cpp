// ArrayDataset, FileDataset and SubsetDataset.
#include "data/dataset.hpp"

#include "data/image_io.hpp"
#include "runtime/error.hpp"

namespace recon::data {

// 8-bit code value v -> v / 255 (the same float image_io produces).
static constexpr float kMaxCode = 255.f;

ArrayDataset::ArrayDataset(int channels, int height, int width, std::vector<uint8_t> pixels,
                           std::vector<int> labels, std::string source)
    : channels_(channels), height_(height), width_(width), pixels_(std::move(pixels)),
      labels_(std::move(labels)), source_(std::move(source)) {
  RECON_CHECK(channels > 0 && height > 0 && width > 0,
              source_ << ": bad image shape (" << channels << ", " << height << ", " << width << ")");
  RECON_CHECK(pixels_.size() == labels_.size() * (size_t)channels * height * width,
              source_ << ": " << pixels_.size() << " pixel bytes do not hold " << labels_.size() << " images of ("
                      << channels << ", " << height << ", " << width << ")");
}

const uint8_t* ArrayDataset::raw(size_t i) const {
  RECON_CHECK(i < size(), source_ << ": index " << i << " out of range (size " << size() << ")");
  return pixels_.data() + i * (size_t)channels_ * height_ * width_;
}

Sample ArrayDataset::get(size_t i) const {
  const uint8_t* p = raw(i);
  Sample s;
  s.image = Image(channels_, height_, width_);
  for (size_t k = 0; k < s.image.numel(); ++k) s.image.pixels[k] = (float)p[k] / kMaxCode;
  s.label = labels_[i];
  s.source = source(i);
  return s;
}

int ArrayDataset::label(size_t i) const {
  RECON_CHECK(i < size(), source_ << ": index " << i << " out of range (size " << size() << ")");
  return labels_[i];
}

std::string ArrayDataset::source(size_t i) const { return source_ + "[" + std::to_string(i) + "]"; }

FileDataset::FileDataset(std::vector<FileEntry> entries, bool has_masks, int channels, bool invert_masks)
    : entries_(std::move(entries)), has_masks_(has_masks), channels_(channels), invert_masks_(invert_masks) {
  RECON_CHECK(channels == 0 || channels == 1 || channels == 3,
              "FileDataset: channels must be 0 (as stored), 1 or 3, got " << channels);
}

Sample FileDataset::get(size_t i) const {
  RECON_CHECK(i < size(), "FileDataset: index " << i << " out of range (size " << size() << ")");
  const FileEntry& e = entries_[i];
  Sample s;
  s.image = read_image(e.image, channels_);
  s.label = e.label;
  s.kind = e.kind;
  s.source = e.image.string();
  if (!e.mask.empty()) {
    s.mask = read_mask(e.mask);
    if (invert_masks_)
      for (float& v : s.mask.pixels) v = 1.f - v;
    RECON_CHECK(s.mask.same_size(s.image), "mask " << e.mask.string() << " is " << s.mask.width << "x"
                                                   << s.mask.height << " but its image " << e.image.string()
                                                   << " is " << s.image.width << "x" << s.image.height
                                                   << " (mask size differs from image size)");
  } else if (has_masks_) {
    s.mask = Image(1, s.image.height, s.image.width, 0.f);
  }
  return s;
}

int FileDataset::label(size_t i) const {
  RECON_CHECK(i < size(), "FileDataset: index " << i << " out of range (size " << size() << ")");
  return entries_[i].label;
}

std::string FileDataset::source(size_t i) const {
  RECON_CHECK(i < size(), "FileDataset: index " << i << " out of range (size " << size() << ")");
  return entries_[i].image.string();
}

SubsetDataset::SubsetDataset(DatasetPtr parent, std::vector<size_t> indices, std::vector<int> labels)
    : parent_(std::move(parent)), indices_(std::move(indices)), labels_(std::move(labels)) {
  RECON_CHECK(parent_ != nullptr, "SubsetDataset: null parent");
  RECON_CHECK(labels_.empty() || labels_.size() == indices_.size(),
              "SubsetDataset: " << labels_.size() << " labels for " << indices_.size() << " indices");
  for (size_t k : indices_)
    RECON_CHECK(k < parent_->size(), "SubsetDataset: index " << k << " out of range (parent size "
                                                             << parent_->size() << ")");
}

Sample SubsetDataset::get(size_t i) const {
  RECON_CHECK(i < size(), "SubsetDataset: index " << i << " out of range (size " << size() << ")");
  Sample s = parent_->get(indices_[i]);
  if (!labels_.empty()) s.label = labels_[i];
  return s;
}

int SubsetDataset::label(size_t i) const {
  RECON_CHECK(i < size(), "SubsetDataset: index " << i << " out of range (size " << size() << ")");
  return labels_.empty() ? parent_->label(indices_[i]) : labels_[i];
}

std::string SubsetDataset::source(size_t i) const {
  RECON_CHECK(i < size(), "SubsetDataset: index " << i << " out of range (size " << size() << ")");
  return parent_->source(indices_[i]);
}

std::vector<size_t> random_permutation(size_t n, Generator& gen) {
  std::vector<size_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = i;
  for (size_t i = n; i > 1; --i) std::swap(p[i - 1], p[(size_t)gen.randint((int64_t)i)]);
  return p;
}

}  // namespace recon::data
