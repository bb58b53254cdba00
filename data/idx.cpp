// IDX reading and writing through zlib's gz* API, which reads plain and
// gzip files alike.
#include "data/idx.hpp"

#include <zlib.h>

#include <cstdio>
#include <memory>

#include "runtime/error.hpp"

namespace fs = std::filesystem;

namespace recon::data {

namespace {

struct GzCloser {
  void operator()(gzFile f) const {
    if (f) gzclose(f);
  }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

constexpr uint8_t kTypeUnsignedByte = 0x08;
constexpr int kMaxIdxDims = 4;  // the MNIST family uses 1 (labels) and 3 (images)

// The whole decompressed content of a plain or gzip file.
std::vector<uint8_t> read_all(const fs::path& path) {
  std::error_code ec;
  RECON_CHECK(fs::exists(path, ec), "idx " << path.string() << ": file not found");
  GzFile f(gzopen(path.c_str(), "rb"));
  RECON_CHECK(f != nullptr, "idx " << path.string() << ": cannot open for reading");
  gzbuffer(f.get(), 1 << 17);
  std::vector<uint8_t> out;
  constexpr unsigned kChunk = 1u << 20;
  for (;;) {
    size_t old = out.size();
    out.resize(old + kChunk);
    int got = gzread(f.get(), out.data() + old, kChunk);
    if (got < 0) {
      int errnum = 0;
      const char* msg = gzerror(f.get(), &errnum);
      RECON_FAIL("idx " << path.string() << ": corrupt or truncated gzip stream (" << msg << ")");
    }
    out.resize(old + (size_t)got);
    if (got == 0) break;
  }
  // A gzip stream cut short reads as a clean end of file on some zlib
  // versions; gzerror then reports Z_BUF_ERROR.
  int errnum = 0;
  const char* msg = gzerror(f.get(), &errnum);
  RECON_CHECK(errnum == Z_OK || errnum == Z_STREAM_END,
              "idx " << path.string() << ": corrupt or truncated gzip stream (" << msg << ")");
  return out;
}

uint32_t be32(const uint8_t* p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

}  // namespace

IdxArray read_idx(const fs::path& path) {
  std::vector<uint8_t> bytes = read_all(path);
  const std::string name = path.string();
  RECON_CHECK(bytes.size() >= 4, "idx " << name << ": truncated: " << bytes.size()
                                        << " bytes, too short for the 4-byte magic number");
  uint32_t magic = be32(bytes.data());
  uint8_t type = bytes[2];
  int ndim = bytes[3];
  char hex[16];
  std::snprintf(hex, sizeof hex, "0x%08X", magic);
  RECON_CHECK(bytes[0] == 0 && bytes[1] == 0 && type == kTypeUnsignedByte && ndim >= 1 && ndim <= kMaxIdxDims,
              "idx " << name << ": wrong magic number " << hex
                     << " (expected 0x000008NN: unsigned bytes with NN = 1.." << kMaxIdxDims << " dimensions)");
  size_t header = 4 + 4 * (size_t)ndim;
  RECON_CHECK(bytes.size() >= header, "idx " << name << ": truncated: the header needs " << header
                                             << " bytes, the file holds " << bytes.size());
  IdxArray a;
  size_t count = 1;
  for (int d = 0; d < ndim; ++d) {
    uint32_t n = be32(bytes.data() + 4 + 4 * d);
    a.dims.push_back(n);
    // Four 32-bit sizes can overflow a 64-bit count (and wrap to a small one).
    RECON_CHECK(!__builtin_mul_overflow(count, (size_t)n, &count),
                "idx " << name << ": the header's sizes multiply past 2^64 bytes: corrupt header");
  }
  size_t have = bytes.size() - header;
  RECON_CHECK(have >= count, "idx " << name << ": truncated: the header promises " << count
                                    << " data bytes, the file holds " << have);
  RECON_CHECK(have == count, "idx " << name << ": " << (have - count)
                                    << " unexpected bytes after the data the header describes");
  a.data.assign(bytes.begin() + (std::ptrdiff_t)header, bytes.end());
  return a;
}

void write_idx(const fs::path& path, const std::vector<int64_t>& dims, const std::vector<uint8_t>& data, bool gzip) {
  RECON_CHECK(!dims.empty() && dims.size() <= (size_t)kMaxIdxDims,
              "write_idx " << path.string() << ": 1.." << kMaxIdxDims << " dimensions, got " << dims.size());
  size_t count = 1;
  for (int64_t d : dims) count *= (size_t)d;
  RECON_CHECK(count == data.size(),
              "write_idx " << path.string() << ": dims hold " << count << " bytes, data has " << data.size());
  std::vector<uint8_t> bytes = {0, 0, kTypeUnsignedByte, (uint8_t)dims.size()};
  for (int64_t d : dims)
    for (int s = 24; s >= 0; s -= 8) bytes.push_back((uint8_t)((uint64_t)d >> s));
  bytes.insert(bytes.end(), data.begin(), data.end());
  GzFile f(gzopen(path.c_str(), gzip ? "wb" : "wbT"));  // T: write without compression
  RECON_CHECK(f != nullptr, "write_idx " << path.string() << ": cannot open for writing");
  int wrote = gzwrite(f.get(), bytes.data(), (unsigned)bytes.size());
  RECON_CHECK(wrote == (int)bytes.size(), "write_idx " << path.string() << ": write failed");
  RECON_CHECK(gzclose(f.release()) == Z_OK, "write_idx " << path.string() << ": close failed");
}

std::shared_ptr<ArrayDataset> load_idx_pair(const fs::path& images, const fs::path& labels, int num_classes) {
  IdxArray im = read_idx(images);
  IdxArray lb = read_idx(labels);
  RECON_CHECK(im.dims.size() == 3, "idx " << images.string() << ": expected (N, H, W) images, got "
                                          << im.dims.size() << " dimensions");
  RECON_CHECK(lb.dims.size() == 1,
              "idx " << labels.string() << ": expected (N) labels, got " << lb.dims.size() << " dimensions");
  RECON_CHECK(im.dims[0] == lb.dims[0], "idx " << images.string() << " holds " << im.dims[0] << " images but "
                                               << labels.string() << " holds " << lb.dims[0] << " labels");
  RECON_CHECK(im.dims[0] > 0, "idx " << images.string() << ": no images");
  std::vector<int> lab(lb.data.begin(), lb.data.end());
  if (num_classes > 0)
    for (size_t i = 0; i < lab.size(); ++i)
      RECON_CHECK(lab[i] < num_classes, "idx " << labels.string() << ": label " << lab[i] << " at index " << i
                                               << " is not below " << num_classes << " classes");
  return std::make_shared<ArrayDataset>(1, (int)im.dims[1], (int)im.dims[2], std::move(im.data), std::move(lab),
                                        images.string());
}

// `dir/name.gz` when it exists, else `dir/name`.
static fs::path find_idx(const fs::path& dir, const std::string& name) {
  std::error_code ec;
  fs::path gz = dir / (name + ".gz");
  if (fs::exists(gz, ec)) return gz;
  fs::path plain = dir / name;
  RECON_CHECK(fs::exists(plain, ec), "mnist: neither " << gz.string() << " nor " << plain.string() << " exists");
  return plain;
}

static constexpr int kMnistClasses = 10;

std::shared_ptr<ArrayDataset> load_mnist(const fs::path& dir, Split split) {
  std::error_code ec;
  RECON_CHECK(fs::is_directory(dir, ec), "mnist: folder " << dir.string() << " is missing");
  std::string prefix = split == Split::Train ? "train" : "t10k";
  return load_idx_pair(find_idx(dir, prefix + "-images-idx3-ubyte"), find_idx(dir, prefix + "-labels-idx1-ubyte"),
                       kMnistClasses);
}

std::shared_ptr<ArrayDataset> load_fashion_mnist(Split split, const fs::path& dir) {
  std::error_code ec;
  RECON_CHECK(fs::is_directory(dir, ec),
              "Fashion-MNIST not found: folder " << dir.string()
                                                 << " is missing; install the Debian package dataset-fashion-mnist "
                                                    "(apt-get install dataset-fashion-mnist; the setup scripts do)");
  return load_mnist(dir, split);
}

}  // namespace recon::data
