// Where a tensor lives: the host (CPU) or a CUDA device. CUDA is available
// only when the library was built with it (RECON_WITH_CUDA).
#pragma once
#include <string>

namespace recon {

enum class DeviceType { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int i = 0) { return {DeviceType::CUDA, i}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
};

// True when the library was built with a CUDA backend (real or emulated) and,
// for a real build, a device is present.
bool cuda_available();
// True in the RECON_CUDA=SIM build, where CUDA kernels run on the emulator.
bool cuda_is_emulated();
// Parses "cpu", "cuda", "cuda:1" or "auto" (CUDA when available).
Device parse_device(const std::string& s);

enum class DType { Float32 };
inline const char* dtype_name(DType) { return "float32"; }
inline size_t dtype_size(DType) { return 4; }

}  // namespace recon
