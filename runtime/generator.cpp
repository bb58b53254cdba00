// Scalar draws from the Philox stream.
#include "runtime/generator.hpp"

#include "kernels/common/philox.hpp"

namespace recon {

float Generator::uniform() { return philox_uniform(seed_, reserve(1), 0); }
float Generator::normal() { return philox_normal(seed_, reserve(1), 0); }

uint64_t Generator::next_u64() {
  Philox4 r = philox4x32_10(seed_, reserve(1));
  return ((uint64_t)r.v[0] << 32) | r.v[1];
}

int64_t Generator::randint(int64_t n) {
  // Modulo bias is below 2^-40 for n < 2^24, negligible for shuffles.
  return (int64_t)(next_u64() % (uint64_t)n);
}

Generator& default_generator() {
  static Generator g(0);
  return g;
}

void manual_seed(uint64_t seed) { default_generator().set_state(seed, 0); }

}  // namespace recon
