// CPU kernels for raw memory: strided gather into contiguous memory, fill.
#pragma once
#include <cstdint>
#include <vector>

namespace recon::cpu {

// dst (contiguous, numel of shape) <- src laid out with `strides` (elements).
void strided_copy(const float* src, const std::vector<int64_t>& shape, const std::vector<int64_t>& strides,
                  float* dst);
void fill(float* dst, int64_t n, float value);

}  // namespace recon::cpu
