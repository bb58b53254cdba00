// Launchers of the entropy kernels (kernels/cuda/entropy.cu); raw device
// pointers, runtime stream, no synchronisation. Plain C++: included by
// runtime/ops_entropy.cpp in every build.
#pragma once
#include <cstdint>

#include "kernels/common/entropy.hpp"

namespace recon::cuda {

// x (n, per_image) -> out (n): entropy in bits of each image's 256-bin
// histogram. One launch for the batch; per_image < 2^32.
void image_entropy(const float* x, int64_t n, int64_t per_image, float* out);
// x (n, c, h, w) -> out (n, 1, h, w): entropy of each pixel's k x k window.
void local_entropy(const LocalEntropyParams& p, const float* x, float* out);

}  // namespace recon::cuda
