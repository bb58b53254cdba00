// Writes the fuzzers' seed corpus (fuzz/corpus/<reader>/) with the library's
// own writers: small valid inputs of every kind each reader understands, from
// which libFuzzer mutates. Usage: make_seeds <fuzz/corpus folder>.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "data/cifar.hpp"
#include "data/idx.hpp"
#include "data/image_io.hpp"
#include "nn/json.hpp"
#include "nn/safetensors.hpp"

using namespace recon;
namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

namespace {

Bytes read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void put(const fs::path& p, const Bytes& b) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), (std::streamsize)b.size());
}

// `prefix` bytes then `rest`.
Bytes cat(Bytes prefix, const Bytes& rest) {
  prefix.insert(prefix.end(), rest.begin(), rest.end());
  return prefix;
}

data::Image ramp(int c, int h, int w) {
  data::Image img(c, h, w);
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = (float)(i % 7) / 6.f;
  return img;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds <corpus folder>\n");
    return 2;
  }
  const fs::path out = argv[1];
  const fs::path tmp = fs::temp_directory_path() / "reconad_make_seeds";
  fs::remove_all(tmp);
  fs::create_directories(tmp);

  // IDX: mode 0 = the file as is, 1 = gzip it, 2 = images + labels pair.
  Bytes pixels(2 * 3 * 3);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = (uint8_t)(i * 13);
  data::write_idx(tmp / "im", {2, 3, 3}, pixels, false);
  data::write_idx(tmp / "lb", {2}, {1, 7}, false);
  data::write_idx(tmp / "im.gz", {2, 3, 3}, pixels, true);
  const Bytes im = read_bytes(tmp / "im"), lb = read_bytes(tmp / "lb");
  put(out / "idx/plain_images", cat({0}, im));
  put(out / "idx/gzip_file", cat({0}, read_bytes(tmp / "im.gz")));
  put(out / "idx/gzip_labels", cat({1}, lb));
  put(out / "idx/pair", cat(cat({2, (uint8_t)im.size(), 0}, im), lb));

  // Images: byte 0 picks the channels (0 as stored, 1 gray, 2 RGB).
  data::write_png(tmp / "g.png", ramp(1, 3, 4));
  data::write_png(tmp / "c.png", ramp(3, 2, 3));
  data::write_png16(tmp / "g16.png", ramp(1, 2, 2));
  data::write_bmp(tmp / "c.bmp", ramp(3, 2, 2));
  data::write_tga(tmp / "g.tga", ramp(1, 2, 2));
  data::write_jpeg(tmp / "c.jpg", ramp(3, 8, 8), 50);
  put(out / "image/gray_png", cat({0}, read_bytes(tmp / "g.png")));
  put(out / "image/rgb_png_to_gray", cat({1}, read_bytes(tmp / "c.png")));
  put(out / "image/png16", cat({0}, read_bytes(tmp / "g16.png")));
  put(out / "image/bmp", cat({2}, read_bytes(tmp / "c.bmp")));
  put(out / "image/tga", cat({0}, read_bytes(tmp / "g.tga")));
  put(out / "image/jpeg", cat({1}, read_bytes(tmp / "c.jpg")));

  // safetensors: a checkpoint-like file with a checksum, and a plain one.
  nn::StateDict sd;
  sd.insert("model.w", Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}));
  sd.insert("model.b", Tensor::from_vector({0.5f}, {1}));
  sd.insert("empty", Tensor::zeros({0, 2}));
  const std::string ck = nn::encode_safetensors(sd, {{"format", "reconad.checkpoint.v1"}}, true);
  put(out / "safetensors/checkpoint", Bytes(ck.begin(), ck.end()));
  const std::string plain = nn::encode_safetensors(sd);
  put(out / "safetensors/plain", Bytes(plain.begin(), plain.end()));

  // CIFAR-10: two records.
  Bytes cif(2 * 3072);
  for (size_t i = 0; i < cif.size(); ++i) cif[i] = (uint8_t)i;
  data::write_cifar10_batch(tmp / "b.bin", cif, {3, 9});
  put(out / "cifar/two_records", read_bytes(tmp / "b.bin"));

  // Folder trees (see fuzz_folder.cpp for the record layout). Folder and
  // stem indices: 0 normal, 1 abnormal, 2 masks; 4 train/good, 5 test/good,
  // 6 test/crack, 7 ground_truth/crack; 9 NoDefects, 10 Defects,
  // 11 Defects/GroundTruth. Stems: 0 a, 1 b, 2 a_mask, 4 X_S_D_01_1, 5 X_S_GT_01_1.
  put(out / "folder/generic", {0x00, 0, 0, 0, 0, 0, 1, 0, 1, 1, 0, 0, 0, 2, 2, 0, 0});
  put(out / "folder/generic_rgb_inverted", {0x18, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 1, 1});
  put(out / "folder/mvtec_test", {0x01, 5, 0, 0, 0, 6, 0, 0, 0, 7, 2, 0, 0, 4, 1, 0, 0});
  put(out / "folder/mvtec_train", {0x02, 4, 0, 0, 0, 4, 1, 0, 0});
  put(out / "folder/piped", {0x03, 9, 0, 1, 1, 10, 4, 1, 1, 11, 5, 0, 0});
  put(out / "folder/raw_bytes", {0x00, 0, 0, 0, 8, 'n', 'o', 't', ' ', 'p'});

  // JSON: a run configuration, a safetensors header, odd but valid text.
  nn::Json cfg = nn::Json::object({{"model", nn::Json("twostage")},
                                   {"lr", nn::Json(1e-3)},
                                   {"epochs", nn::Json(20)},
                                   {"views", nn::Json::array({nn::Json("mse"), nn::Json("ssim")})},
                                   {"beta", nn::Json(0.25)},
                                   {"resume", nn::Json(false)},
                                   {"out", nn::Json()}});
  const std::string cfg_text = cfg.dump(2);
  put(out / "json/config", Bytes(cfg_text.begin(), cfg_text.end()));
  uint64_t hn = 0;
  std::memcpy(&hn, ck.data(), 8);
  put(out / "json/safetensors_header", Bytes(ck.begin() + 8, ck.begin() + 8 + (std::ptrdiff_t)hn));
  const std::string odd = R"([-0, 1E+2, 0.5e-3, "\u00e9\ud83d\ude00\n", {}, [], 9223372036854775807, 1e308])";
  put(out / "json/odd", Bytes(odd.begin(), odd.end()));
  fs::remove_all(tmp);
  return 0;
}
