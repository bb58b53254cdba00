// Faults in the library (README "Bad input and faults"): truncated and
// corrupted checkpoints (header and data bit flips, caught by the CRC-32),
// falling back to the previous good checkpoint, a full disk while saving
// (RLIMIT_FSIZE in a forked child: writes fail with EFBIG), CUDA out of
// memory, and the inputs the fuzzers found (fuzz/regressions/) replayed
// through the readers.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cuda_compare.hpp"
#include "data/cifar.hpp"
#include "data/idx.hpp"
#include "data/image_io.hpp"
#include "nn/checkpoint.hpp"
#include "nn/json.hpp"
#include "nn/layers.hpp"
#include "nn/safetensors.hpp"
#include "runtime/cuda_context.hpp"
#include "runtime/error.hpp"

using namespace recon;
using namespace recon::nn;
namespace fs = std::filesystem;

namespace {

// A fresh folder under the system temp dir, removed at the end of the test.
struct Scratch {
  fs::path dir;
  explicit Scratch(const std::string& name) {
    dir = fs::temp_directory_path() / ("reconad_test_faults_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string operator/(const std::string& f) const { return (dir / f).string(); }
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), (std::streamsize)bytes.size());
}

// A StateDict with one tensor "w" of n values v, v+1, ...
StateDict weights(int n, float v) {
  std::vector<float> x(n);
  for (int i = 0; i < n; ++i) x[i] = v + (float)i;
  StateDict sd;
  sd.insert("w", Tensor::from_vector(x, {n}));
  return sd;
}

float first_weight(const Checkpoint& ck) { return ck.model.contains("w") ? ck.model.at("w").to_vector()[0] : -1.f; }

// Where the data section of a safetensors file starts.
size_t data_start(const std::string& bytes) {
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  return 8 + (size_t)n;
}

}  // namespace

// ---- checkpoints: damage is detected and named -----------------------------------------------

TEST_CASE("faults: a truncated checkpoint is refused with the file and the problem named") {
  Scratch s("trunc");
  const std::string path = s / "ck.safetensors";
  save_checkpoint(path, weights(64, 1.f));
  const std::string good = slurp(path);
  // Cut inside the 8-byte length, inside the header, and inside the data.
  for (size_t keep : {size_t(5), data_start(good) - 10, good.size() - 7}) {
    CAPTURE(keep);
    spit(path, good.substr(0, keep));
    CHECK_THROWS_WITH_AS(read_checkpoint(path), doctest::Contains(path.c_str()), Error);
    CHECK_THROWS_WITH_AS(read_checkpoint(path), doctest::Contains("truncated"), Error);
  }
  spit(path, good);
  CHECK(first_weight(read_checkpoint(path)) == 1.f);
}

TEST_CASE("faults: a bit flip in the tensor data is caught by the checksum") {
  Scratch s("flip");
  const std::string path = s / "ck.safetensors";
  save_checkpoint(path, weights(64, 1.f));
  std::string bytes = slurp(path);
  Checkpoint ck = read_checkpoint(path);
  REQUIRE(ck.metadata.count(kDataCrc32Key) == 1);
  CHECK(ck.metadata.at(kDataCrc32Key).size() == 8);
  // One bit of one float: the file still parses, only the CRC can tell.
  bytes[data_start(bytes) + 37] ^= 0x10;
  spit(path, bytes);
  CHECK_THROWS_WITH_AS(read_checkpoint(path), doctest::Contains(("safetensors: " + path + ": corrupted data").c_str()),
                       Error);
  // The same flip in a plain safetensors file without a checksum goes unseen:
  // the checksum is what catches it.
  save_safetensors(path, weights(64, 1.f));
  std::string plain = slurp(path);
  plain[data_start(plain) + 37] ^= 0x10;
  spit(path, plain);
  CHECK(load_safetensors(path).tensors.at("w").to_vector()[9] != 10.f);
}

TEST_CASE("faults: a damaged checkpoint header is refused with the file named") {
  Scratch s("header");
  const std::string path = s / "ck.safetensors";
  save_checkpoint(path, weights(8, 1.f));
  const std::string good = slurp(path);
  // The JSON's opening brace.
  std::string bad = good;
  bad[8] = '!';
  spit(path, bad);
  CHECK_THROWS_WITH_AS(read_checkpoint(path), doctest::Contains((path + ": header is not valid JSON").c_str()), Error);
  // A header length far past the end of the file.
  bad = good;
  bad[6] = 0x7f;
  spit(path, bad);
  CHECK_THROWS_WITH_AS(read_checkpoint(path), doctest::Contains("runs past the end of the file"), Error);
  // An empty file.
  spit(path, "");
  CHECK_THROWS_WITH_AS(read_checkpoint(path), doctest::Contains((path + ": truncated file").c_str()), Error);
}

// ---- the previous good checkpoint ------------------------------------------------------------

TEST_CASE("faults: saving keeps the previous good checkpoint; a corrupted newest falls back to it") {
  Scratch s("prev");
  const std::string path = s / "ck.safetensors";
  const std::string prev = previous_checkpoint_path(path);
  CHECK(prev == path + ".prev");
  save_checkpoint(path, weights(4, 1.f));
  CHECK_FALSE(fs::exists(prev));  // nothing to keep yet
  save_checkpoint(path, weights(4, 2.f));
  REQUIRE(fs::exists(prev));
  CHECK(first_weight(read_checkpoint(prev)) == 1.f);
  CHECK(first_weight(read_checkpoint(path)) == 2.f);

  // Both fine: the newest is used, without a warning.
  LatestCheckpoint latest = read_latest_good_checkpoint(path);
  CHECK(latest.used_path == path);
  CHECK(latest.warning.empty());
  CHECK(first_weight(latest.checkpoint) == 2.f);

  // The newest corrupted (one data bit): the previous one is used, and said so.
  std::string bytes = slurp(path);
  bytes[bytes.size() - 2] ^= 0x01;
  spit(path, bytes);
  latest = read_latest_good_checkpoint(path);
  CHECK(latest.used_path == prev);
  CHECK(first_weight(latest.checkpoint) == 1.f);
  CHECK(latest.warning.find("checkpoint " + path + " is unusable") != std::string::npos);
  CHECK(latest.warning.find("corrupted data") != std::string::npos);
  CHECK(latest.warning.find("using the previous good one, " + prev) != std::string::npos);

  // Into a module: Linear(2, 2) has weight (2, 2) and bias (2).
  Linear lin(2, 2);
  StateDict v1, v2;
  v1.insert("weight", Tensor::from_vector({1, 1, 1, 1}, {2, 2}));
  v1.insert("bias", Tensor::from_vector({1, 1}, {2}));
  v2.insert("weight", Tensor::from_vector({2, 2, 2, 2}, {2, 2}));
  v2.insert("bias", Tensor::from_vector({2, 2}, {2}));
  const std::string mpath = s / "lin.safetensors";
  save_checkpoint(mpath, v1, {}, "", Json::object({{"epoch", Json(1)}}));
  save_checkpoint(mpath, v2, {}, "", Json::object({{"epoch", Json(2)}}));
  spit(mpath, slurp(mpath).substr(0, 40));  // truncated, as by a crash of the disk
  LatestCheckpoint got = load_latest_good_checkpoint(mpath, lin);
  CHECK(got.used_path == previous_checkpoint_path(mpath));
  CHECK(got.checkpoint.config.at("epoch").as_int() == 1);
  CHECK(lin.weight().to_vector() == std::vector<float>{1, 1, 1, 1});

  // A damaged newest is not rotated in over the good previous one.
  save_checkpoint(mpath, v2, {}, "", Json::object({{"epoch", Json(3)}}));
  CHECK(read_checkpoint(previous_checkpoint_path(mpath)).config.at("epoch").as_int() == 1);
  CHECK(read_checkpoint(mpath).config.at("epoch").as_int() == 3);
}

TEST_CASE("faults: with neither checkpoint usable, both files and problems are named") {
  Scratch s("none");
  const std::string path = s / "ck.safetensors";
  CHECK_THROWS_WITH_AS(read_latest_good_checkpoint(path),
                       doctest::Contains(("no usable checkpoint: " + path).c_str()), Error);
  save_checkpoint(path, weights(4, 1.f));
  save_checkpoint(path, weights(4, 2.f));
  spit(path, "garbage");
  spit(previous_checkpoint_path(path), "");
  try {
    read_latest_good_checkpoint(path);
    FAIL("expected an error");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find(path + ": safetensors: " + path + ": truncated file") != std::string::npos);
    CHECK(msg.find("previous " + previous_checkpoint_path(path) + ": safetensors: ") != std::string::npos);
  }
}

// ---- a full disk while saving ----------------------------------------------------------------

TEST_CASE("faults: a write that fails (file size limit: EFBIG) leaves the last good checkpoint intact") {
  Scratch s("disk");
  const std::string path = s / "ck.safetensors";
  save_checkpoint(path, weights(16, 1.f));  // small: under the limit below
  const std::string before = slurp(path);
  REQUIRE(before.size() < 4096);
  const std::string report = s / "child_report.txt";

  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The child: writes past 4 KiB fail with EFBIG instead of killing it.
    ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim{4096, 4096};
    int code = 10;
    std::string msg = "no error";
    if (::setrlimit(RLIMIT_FSIZE, &lim) == 0) {
      try {
        save_checkpoint(path, weights(1 << 16, 2.f));  // 256 KiB
        code = 11;
      } catch (const Error& e) {
        msg = e.what();
        code = 0;
      }
    }
    std::ofstream(report) << msg;
    ::_exit(code);  // no doctest or atexit work in the child
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  const std::string msg = slurp(report);
  CAPTURE(msg);
  CHECK(msg.find("cannot write " + path) != std::string::npos);
  CHECK(msg.find(std::strerror(EFBIG)) != std::string::npos);
  CHECK(msg.find(path + " was left as it was") != std::string::npos);
  CHECK_FALSE(fs::exists(path + ".tmp"));
  CHECK(slurp(path) == before);
  CHECK(first_weight(read_checkpoint(path)) == 1.f);
}

// ---- CUDA out of memory --------------------------------------------------------------------

#if defined(RECON_WITH_CUDA)
TEST_CASE("faults: CUDA out of memory names the size and suggests a smaller batch" * test::needs_cuda()) {
  const size_t one_pib = size_t(1) << 50;
  try {
    void* p = cuda::device_alloc(one_pib);
    cuda::device_free(p);
    FAIL("a 1 PiB device allocation succeeded");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CAPTURE(msg);
    CHECK(msg.find("CUDA out of memory") != std::string::npos);
    CHECK(msg.find(std::to_string(one_pib) + " bytes") != std::string::npos);
    CHECK(msg.find("smaller --batch-size") != std::string::npos);
  }
  // The device still works afterwards (the error was cleared).
  Tensor t = Tensor::ones({4}, Device::cuda());
  CHECK(t.to_vector() == std::vector<float>{1, 1, 1, 1});
}
#endif

// ---- inputs the fuzzers found (fuzz/regressions/), replayed through the readers ---------------

TEST_CASE("faults: IDX sizes whose product wraps past 2^64 are refused (fuzz/regressions/idx)") {
  Scratch s("idx");
  // The regression input: a mode byte (0: the file as is), then the IDX file.
  const std::string input = slurp(std::string(RECON_SOURCE_DIR) + "/fuzz/regressions/idx/dims_overflow_2pow64");
  REQUIRE(input.size() == 21);
  const std::string path = s / "wrap.idx";
  spit(path, input.substr(1));
  CHECK_THROWS_WITH_AS(data::read_idx(path), doctest::Contains(("idx " + path + ": the header's sizes multiply").c_str()),
                       Error);
}

TEST_CASE("faults: a JPEG Huffman table of more than 256 codes is refused (fuzz/regressions/image)") {
  // stb_image 2.27 wrote past its table on these inputs (UBSan: index 257
  // out of bounds): one in the header, one after padding that stb skips.
  for (const char* name : {"jpeg_dht_over_256_codes", "jpeg_dht_after_padding"}) {
    CAPTURE(name);
    const std::string input = slurp(std::string(RECON_SOURCE_DIR) + "/fuzz/regressions/image/" + name);
    REQUIRE(input.size() > 1);
    const auto* bytes = reinterpret_cast<const uint8_t*>(input.data()) + 1;  // after the fuzzer's mode byte
    CHECK_THROWS_WITH_AS(data::decode_image(bytes, input.size() - 1, 0, "bad.jpg"),
                         doctest::Contains("image bad.jpg: corrupt JPEG: a Huffman table (DHT) declares more than 256"),
                         Error);
  }
  // A valid JPEG (written by stb_image_write, with its standard tables) still decodes.
  Scratch s("jpeg");
  data::Image img(3, 8, 8, 0.5f);
  data::write_jpeg(s / "ok.jpg", img, 90);
  const std::string ok = slurp(s / "ok.jpg");
  data::Image back = data::decode_image(reinterpret_cast<const uint8_t*>(ok.data()), ok.size(), 0, "ok.jpg");
  CHECK(back.channels == 3);
  CHECK(back.width == 8);
}

TEST_CASE("faults: an image header asking for more than 2^26 pixels is refused before decoding") {
  // A PNG signature and an IHDR of 10000 x 10000 gray pixels, nothing else:
  // 33 bytes that would otherwise allocate 400 MB of floats.
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
  for (uint32_t v : {10000u, 10000u})
    for (int s = 24; s >= 0; s -= 8) png.push_back((uint8_t)(v >> s));
  png.insert(png.end(), {8, 0, 0, 0, 0, 0, 0, 0, 0});  // 8-bit gray, then a CRC stb does not check
  CHECK_THROWS_WITH_AS(data::decode_image(png.data(), png.size(), 0, "huge.png"),
                       doctest::Contains("image huge.png: 10000 x 10000 pixels exceeds the 67108864-pixel limit"),
                       Error);
  // 8000 x 8000 is within the limit: refused only because the data are missing.
  png[16 + 2] = 0x1f, png[16 + 3] = 0x40, png[20 + 2] = 0x1f, png[20 + 3] = 0x40;  // 0x1f40 = 8000
  CHECK_THROWS_WITH_AS(data::decode_image(png.data(), png.size(), 0, "big.png"), doctest::Contains("cannot decode"),
                       Error);
}
