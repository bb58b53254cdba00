// NVTX ranges and range counters.
#include "runtime/profile.hpp"

#include <mutex>
#include <unordered_map>

#if defined(RECON_WITH_CUDA) && !defined(RECON_SIMT)
#include <nvtx3/nvToolsExt.h>
#define RECON_NVTX 1
#endif

namespace recon {

namespace {
std::mutex g_mutex;
std::unordered_map<std::string, int64_t>& counts() {
  static std::unordered_map<std::string, int64_t> c;
  return c;
}
}  // namespace

ScopedRange::ScopedRange(const char* name) {
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    ++counts()[name];
  }
#if defined(RECON_NVTX)
  nvtxRangePushA(name);
#endif
}

ScopedRange::~ScopedRange() {
#if defined(RECON_NVTX)
  nvtxRangePop();
#endif
}

int64_t range_count(const std::string& name) {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = counts().find(name);
  return it == counts().end() ? 0 : it->second;
}

void reset_range_counts() {
  std::lock_guard<std::mutex> lock(g_mutex);
  counts().clear();
}

}  // namespace recon
