// libFuzzer target for the IDX reader: the input (after a mode byte) is an
// IDX file as is (plain, or gzip when it starts with the gzip magic), or the
// content of a gzip-compressed file, or an images file + labels file pair
// loaded as a dataset whose first samples are read.
#include <zlib.h>

#include <algorithm>

#include "data/idx.hpp"
#include "fuzz/fuzz_util.hpp"

using namespace recon;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int mode = data[0] % 3;
  const uint8_t* body = data + 1;
  const size_t n = size - 1;
  const auto file = fuzz::scratch_dir() / "a.idx";
  if (mode == 0) {
    fuzz::write_file(file, body, n);
  } else if (mode == 1) {
    gzFile gz = gzopen(file.c_str(), "wb");
    if (!gz) return 0;
    if (n > 0) gzwrite(gz, body, (unsigned)n);
    gzclose(gz);
  }
  if (mode != 2) {
    fuzz::expect_ok_or_error([&] {
      data::IdxArray a = data::read_idx(file);
      // The reader's promise: the data hold exactly prod(dims) bytes.
      size_t count = 1;
      for (int64_t d : a.dims)
        if (__builtin_mul_overflow(count, (size_t)d, &count)) __builtin_trap();
      if (count != a.data.size()) __builtin_trap();
    });
    return 0;
  }
  // Mode 2: two bytes give where the images file ends and the labels file starts.
  if (n < 2) return 0;
  const size_t split = std::min(n - 2, (size_t)(body[0] | body[1] << 8));
  const auto labels = fuzz::scratch_dir() / "b.idx";
  fuzz::write_file(file, body + 2, split);
  fuzz::write_file(labels, body + 2 + split, n - 2 - split);
  fuzz::expect_ok_or_error([&] {
    auto ds = data::load_idx_pair(file, labels, 10);
    for (size_t i = 0; i < std::min<size_t>(ds->size(), 3); ++i) ds->get(i);
    if (ds->size() > 0) ds->get(ds->size() - 1);
  });
  return 0;
}
