// libFuzzer target for the safetensors reader (checkpoints): any bytes are
// decoded; what decodes must survive a write and a second read unchanged
// (values compared bit for bit, metadata as strings).
#include <cstring>

#include "fuzz/fuzz_util.hpp"
#include "nn/safetensors.hpp"

using namespace recon;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  nn::SafetensorsContents first;
  try {
    first = nn::decode_safetensors(bytes, "fuzz-input");
  } catch (const recon::Error&) {
    return 0;
  }
  nn::Metadata meta = first.metadata;
  meta.erase(nn::kDataCrc32Key);  // recomputed for the re-encoded data
  const std::string again = nn::encode_safetensors(first.tensors, meta, /*checksum=*/true);
  nn::SafetensorsContents second = nn::decode_safetensors(again, "re-encoded");
  if (second.tensors.names() != first.tensors.names()) __builtin_trap();
  for (const std::string& name : first.tensors.names()) {
    const Tensor& a = first.tensors.at(name);
    const Tensor& b = second.tensors.at(name);
    if (a.shape() != b.shape()) __builtin_trap();
    std::vector<float> va = a.to_vector(), vb = b.to_vector();
    if (va.size() != vb.size() || (!va.empty() && std::memcmp(va.data(), vb.data(), va.size() * 4) != 0))
      __builtin_trap();
  }
  second.metadata.erase(nn::kDataCrc32Key);
  if (second.metadata != meta) __builtin_trap();
  return 0;
}
