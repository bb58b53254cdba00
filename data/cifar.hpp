// CIFAR-10 binary batches: records of 1 label byte then 3072 pixel bytes
// (32x32 red plane, green plane, blue plane), 10000 records per file.
#pragma once
#include <filesystem>
#include <memory>
#include <vector>

#include "data/dataset.hpp"

namespace recon::data {

inline constexpr int kCifarSide = 32;
inline constexpr int kCifarClasses = 10;

// Reads and concatenates batch files into (3, 32, 32) images. Throws, naming
// the file, when one is missing, its size is not a whole number of records,
// or a label is not below 10.
std::shared_ptr<ArrayDataset> load_cifar10_batches(const std::vector<std::filesystem::path>& files);
// `dir` as unpacked from cifar-10-binary.tar.gz: data_batch_1..5.bin (train)
// and test_batch.bin (test).
std::shared_ptr<ArrayDataset> load_cifar10(const std::filesystem::path& dir, Split split);
// Writes records (fixtures): images (N * 3072 bytes, planar RGB), labels (N).
void write_cifar10_batch(const std::filesystem::path& path, const std::vector<uint8_t>& images,
                         const std::vector<uint8_t>& labels);

}  // namespace recon::data
