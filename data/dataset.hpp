// The dataset abstraction: a Sample (image, optional mask, label, names) and
// the Dataset interface that readers implement, plus the three concrete
// kinds every reader builds on: ArrayDataset (uint8 images of one shape held
// in memory: IDX, CIFAR), FileDataset (image files decoded on demand: MVTec,
// folders, PIPED) and SubsetDataset (indices into another dataset with
// optional relabelling: splits and the one-class protocol).
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/image.hpp"
#include "runtime/generator.hpp"

namespace recon::data {

enum class Split { Train, Test };

struct Sample {
  Image image;         // (C, H, W) in [0, 1]
  Image mask;          // (1, H, W) of 0/1; empty when the dataset has no masks
  int label = 0;       // class index (classification sets) or 0 normal / 1 anomalous
  std::string kind;    // "good" or the defect type for anomaly sets; empty otherwise
  std::string source;  // the file, or "file[index]" for array datasets
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual size_t size() const = 0;
  // Decodes sample i. Must be safe to call from several threads at once.
  virtual Sample get(size_t i) const = 0;
  // The label of sample i without decoding it (for splits).
  virtual int label(size_t i) const = 0;
  // Where sample i comes from, for messages and reports.
  virtual std::string source(size_t i) const = 0;
  // True when every sample carries a mask (normal samples an all-zero one).
  virtual bool has_masks() const { return false; }
};
using DatasetPtr = std::shared_ptr<const Dataset>;

// uint8 images of one (C, H, W) shape, stored planar, held in memory.
class ArrayDataset : public Dataset {
 public:
  // pixels holds n * C*H*W bytes (n = labels.size()); source names the file(s).
  ArrayDataset(int channels, int height, int width, std::vector<uint8_t> pixels, std::vector<int> labels,
               std::string source);
  size_t size() const override { return labels_.size(); }
  Sample get(size_t i) const override;
  int label(size_t i) const override;
  std::string source(size_t i) const override;

  int channels() const { return channels_; }
  int height() const { return height_; }
  int width() const { return width_; }
  const uint8_t* raw(size_t i) const;  // the C*H*W bytes of image i
  const std::vector<int>& labels() const { return labels_; }

 private:
  int channels_, height_, width_;
  std::vector<uint8_t> pixels_;
  std::vector<int> labels_;
  std::string source_;
};

// One image file with its label and optional mask file.
struct FileEntry {
  std::filesystem::path image;
  std::filesystem::path mask;  // empty: no mask (an all-zero one when the dataset has masks)
  int label = 0;
  std::string kind;
};

// Image files decoded on demand (stb_image).
class FileDataset : public Dataset {
 public:
  // channels: 0 keeps each file's own (gray 1, colour 3); 1 or 3 converts.
  // has_masks: every sample gets a mask, all-zero where its entry has none.
  // invert_masks: mask files mark anomalous pixels dark (PIPED) rather than bright.
  FileDataset(std::vector<FileEntry> entries, bool has_masks, int channels = 0, bool invert_masks = false);
  size_t size() const override { return entries_.size(); }
  // Throws when the file cannot be decoded or its mask differs in size.
  Sample get(size_t i) const override;
  int label(size_t i) const override;
  std::string source(size_t i) const override;
  bool has_masks() const override { return has_masks_; }
  const std::vector<FileEntry>& entries() const { return entries_; }

 private:
  std::vector<FileEntry> entries_;
  bool has_masks_;
  int channels_;
  bool invert_masks_;
};

// Samples `indices` of a parent; `labels` (same length), when given,
// replaces the parent's labels.
class SubsetDataset : public Dataset {
 public:
  SubsetDataset(DatasetPtr parent, std::vector<size_t> indices, std::vector<int> labels = {});
  size_t size() const override { return indices_.size(); }
  Sample get(size_t i) const override;
  int label(size_t i) const override;
  std::string source(size_t i) const override;
  bool has_masks() const override { return parent_->has_masks(); }
  const std::vector<size_t>& indices() const { return indices_; }

 private:
  DatasetPtr parent_;
  std::vector<size_t> indices_;
  std::vector<int> labels_;
};

// A uniformly random permutation of 0..n-1 (Fisher-Yates) drawn from `gen`.
std::vector<size_t> random_permutation(size_t n, Generator& gen);

}  // namespace recon::data
