// CPU entropy kernels (formulas in kernels/common/entropy.hpp): the Shannon
// entropy of each image's 256-bin intensity histogram, and the local-entropy
// map over k x k windows. OpenMP over images / rows; sums in bin order, so
// results do not depend on the number of threads.
#pragma once
#include <cstdint>

#include "kernels/common/entropy.hpp"

namespace recon::cpu {

// x (n, per_image) -> out (n): entropy in bits of each image's histogram.
void image_entropy(const float* x, int64_t n, int64_t per_image, float* out);
// x (n, c, h, w) -> out (n, 1, h, w).
void local_entropy(const LocalEntropyParams& p, const float* x, float* out);

}  // namespace recon::cpu
