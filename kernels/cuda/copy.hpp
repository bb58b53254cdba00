// Launchers of the CUDA raw-memory kernels (kernels/cuda/copy.cu): fill with
// a value, and the gather of a strided (non-contiguous) tensor into
// contiguous memory. Plain C++: included by runtime/tensor.cpp in every build.
#pragma once
#include <cstdint>
#include <vector>

namespace recon::cuda {

// dst[i] = value for n elements.
void fill(float* dst, int64_t n, float value);
// dst (contiguous, numel of shape) <- src laid out with `strides` (elements);
// at most kMaxStridedDims (kernels/common/elementwise.hpp) dims.
void strided_copy(const float* src, const std::vector<int64_t>& shape, const std::vector<int64_t>& strides,
                  float* dst);

}  // namespace recon::cuda
