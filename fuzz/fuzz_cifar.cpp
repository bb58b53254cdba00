// libFuzzer target for CIFAR-10 binary batches: the input is one batch file;
// what loads has its first and last samples read.
#include "data/cifar.hpp"
#include "fuzz/fuzz_util.hpp"

using namespace recon;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = fuzz::scratch_dir() / "batch.bin";
  fuzz::write_file(file, data, size);
  fuzz::expect_ok_or_error([&] {
    auto ds = data::load_cifar10_batches({file});
    if (ds->size() * 3073 != size) __builtin_trap();  // whole records only
    ds->get(0);
    data::Sample last = ds->get(ds->size() - 1);
    if (last.label < 0 || last.label >= data::kCifarClasses) __builtin_trap();
  });
  return 0;
}
