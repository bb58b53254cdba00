// libFuzzer target for the JSON reader (safetensors headers, run
// configurations, calibration files): any text is parsed; what parses must
// read back equal from both the compact and the indented writer.
#include "fuzz/fuzz_util.hpp"
#include "nn/json.hpp"

using namespace recon;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  nn::Json v;
  try {
    v = nn::Json::parse(text);
  } catch (const recon::Error&) {
    return 0;
  }
  if (!(nn::Json::parse(v.dump()) == v)) __builtin_trap();
  if (!(nn::Json::parse(v.dump(2)) == v)) __builtin_trap();
  return 0;
}
