// Device queries and parsing.
#include "runtime/device.hpp"

#include "runtime/error.hpp"

namespace recon {

bool cuda_is_emulated() {
#if defined(RECON_SIMT)
  return true;
#else
  return false;
#endif
}

bool cuda_available() {
#if defined(RECON_SIMT)
  return true;
#elif defined(RECON_WITH_CUDA)
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
#else
  return false;
#endif
}

Device parse_device(const std::string& s) {
  if (s == "cpu") return Device::cpu();
  if (s == "auto") return cuda_available() ? Device::cuda() : Device::cpu();
  if (s == "cuda" || s.rfind("cuda:", 0) == 0) {
    int index = s == "cuda" ? 0 : std::stoi(s.substr(5));
    RECON_CHECK(cuda_available(), "device '" << s << "' requested but no CUDA device is available"
#if !defined(RECON_WITH_CUDA)
                                             << " (ReconAD was built without CUDA)"
#endif
    );
    return Device::cuda(index);
  }
  RECON_FAIL("unknown device '" << s << "': expected cpu, cuda, cuda:N or auto");
}

}  // namespace recon
