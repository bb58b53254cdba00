// Per-thread scratch buffers (see scratch.hpp).
#include "kernels/cpu/scratch.hpp"

#include <cstdlib>
#include <memory>
#include <new>

namespace recon::cpu {

namespace {
struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
}  // namespace

float* thread_scratch(ScratchSlot slot, int64_t floats) {
  constexpr int kSlots = (int)ScratchSlot::kCount;
  thread_local std::unique_ptr<float, FreeDeleter> buf[kSlots];
  thread_local int64_t cap[kSlots] = {};
  const int s = (int)slot;
  if (cap[s] < floats) {
    buf[s].reset();  // free the old one first: peak memory is the new size
    cap[s] = 0;      // stays 0 if the allocation below fails
    const size_t bytes = ((size_t)floats * sizeof(float) + 63) / 64 * 64;
    buf[s].reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
    if (!buf[s]) throw std::bad_alloc();
    cap[s] = floats;
  }
  return buf[s].get();
}

}  // namespace recon::cpu
