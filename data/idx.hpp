// IDX files (the MNIST format: a big-endian magic 0x000008NN, where 08 is
// unsigned byte and NN the number of dimensions, then NN big-endian sizes,
// then the bytes), plain or gzip-compressed, and the MNIST / Fashion-MNIST
// datasets built from them.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "data/dataset.hpp"

namespace recon::data {

// Where the Debian package dataset-fashion-mnist installs the files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;  // prod(dims) bytes, row-major
};

// Reads an unsigned-byte IDX file, gzip or plain (detected from the content).
// Throws, naming the file, on a missing file, a wrong magic number, a corrupt
// gzip stream, or data shorter or longer than the header says.
IdxArray read_idx(const std::filesystem::path& path);
// Writes an unsigned-byte IDX file, gzip-compressed when `gzip` (fixtures).
void write_idx(const std::filesystem::path& path, const std::vector<int64_t>& dims,
               const std::vector<uint8_t>& data, bool gzip);

// An (N, H, W) images file and an (N) labels file -> (1, H, W) images.
// Labels must be below num_classes (0: no limit).
std::shared_ptr<ArrayDataset> load_idx_pair(const std::filesystem::path& images,
                                            const std::filesystem::path& labels, int num_classes = 0);
// MNIST or Fashion-MNIST in `dir`: {train,t10k}-{images-idx3,labels-idx1}-ubyte
// with or without .gz. 10 classes.
std::shared_ptr<ArrayDataset> load_mnist(const std::filesystem::path& dir, Split split);
// Fashion-MNIST from the Debian package; when `dir` is missing, the error
// says to install dataset-fashion-mnist.
std::shared_ptr<ArrayDataset> load_fashion_mnist(Split split,
                                                 const std::filesystem::path& dir = kFashionMnistDir);

}  // namespace recon::data
