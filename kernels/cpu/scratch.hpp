// Per-thread scratch buffers for the CPU kernels: grown on demand and kept,
// so that the calls of a training step reuse the same pages instead of
// faulting in fresh ones every time.
#pragma once
#include <cstdint>

namespace recon::cpu {

// The slots: each caller owns its own, so nested uses never share one.
enum class ScratchSlot : int {
  kConvColumns = 0,  // conv.cpp: a chunk's column matrix
  kConvProduct,      // conv.cpp: a product in (c, cnt hw) layout
  kPackA,            // conv_gemm_avx512.cpp: packed panels of A
  kPackB,            // conv_gemm_avx512.cpp: packed panels of B
  kCount
};

// At least `floats` floats, 64-byte aligned and uninitialised, owned by the
// calling thread and valid until its next call with the same slot. Throws
// std::bad_alloc when it cannot grow.
float* thread_scratch(ScratchSlot slot, int64_t floats);

}  // namespace recon::cpu
