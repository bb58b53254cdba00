// CIFAR-10 binary batch reader and writer.
#include "data/cifar.hpp"

#include <fstream>

#include "runtime/error.hpp"

namespace fs = std::filesystem;

namespace recon::data {

static constexpr size_t kCifarImageBytes = 3 * kCifarSide * kCifarSide;  // 3072
static constexpr size_t kCifarRecord = 1 + kCifarImageBytes;              // 3073

std::shared_ptr<ArrayDataset> load_cifar10_batches(const std::vector<fs::path>& files) {
  RECON_CHECK(!files.empty(), "cifar: no batch files given");
  std::vector<uint8_t> pixels;
  std::vector<int> labels;
  for (const fs::path& path : files) {
    std::error_code ec;
    RECON_CHECK(fs::is_regular_file(path, ec), "cifar " << path.string() << ": file not found");
    std::ifstream in(path, std::ios::binary);
    RECON_CHECK(in, "cifar " << path.string() << ": cannot open for reading");
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    RECON_CHECK(!bytes.empty(), "cifar " << path.string() << ": empty file");
    RECON_CHECK(bytes.size() % kCifarRecord == 0,
                "cifar " << path.string() << ": size " << bytes.size() << " is not a whole number of "
                         << kCifarRecord << "-byte records (truncated or not a CIFAR-10 batch)");
    size_t n = bytes.size() / kCifarRecord;
    for (size_t r = 0; r < n; ++r) {
      const uint8_t* rec = bytes.data() + r * kCifarRecord;
      RECON_CHECK(rec[0] < kCifarClasses, "cifar " << path.string() << ": record " << r << " has label "
                                                   << (int)rec[0] << ", not below " << kCifarClasses);
      labels.push_back(rec[0]);
      pixels.insert(pixels.end(), rec + 1, rec + kCifarRecord);
    }
  }
  std::string source = files.size() == 1 ? files[0].string() : files[0].parent_path().string();
  return std::make_shared<ArrayDataset>(3, kCifarSide, kCifarSide, std::move(pixels), std::move(labels), source);
}

std::shared_ptr<ArrayDataset> load_cifar10(const fs::path& dir, Split split) {
  std::error_code ec;
  RECON_CHECK(fs::is_directory(dir, ec), "cifar: folder " << dir.string() << " is missing");
  std::vector<fs::path> files;
  constexpr int kTrainBatches = 5;
  if (split == Split::Train)
    for (int b = 1; b <= kTrainBatches; ++b) files.push_back(dir / ("data_batch_" + std::to_string(b) + ".bin"));
  else
    files.push_back(dir / "test_batch.bin");
  return load_cifar10_batches(files);
}

void write_cifar10_batch(const fs::path& path, const std::vector<uint8_t>& images, const std::vector<uint8_t>& labels) {
  RECON_CHECK(images.size() == labels.size() * kCifarImageBytes,
              "write_cifar10_batch: " << images.size() << " image bytes for " << labels.size() << " labels");
  std::ofstream out(path, std::ios::binary);
  RECON_CHECK(out, "write_cifar10_batch " << path.string() << ": cannot open for writing");
  for (size_t r = 0; r < labels.size(); ++r) {
    out.put((char)labels[r]);
    out.write(reinterpret_cast<const char*>(images.data() + r * kCifarImageBytes), kCifarImageBytes);
  }
  RECON_CHECK(out.good(), "write_cifar10_batch " << path.string() << ": write failed");
}

}  // namespace recon::data
