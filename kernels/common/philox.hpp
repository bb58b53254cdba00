// Philox4x32-10 counter-based random numbers (Salmon et al., "Parallel Random
// Numbers: As Easy as 1, 2, 3", SC 2011). Element i of a draw is a pure
// function of (seed, counter), so the CPU, a CUDA kernel and the emulator
// produce the same numbers in any order on any machine.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common/hd.hpp"

namespace recon {

struct Philox4 {
  uint32_t v[4];
};

// Multipliers and Weyl constants of Philox4x32 from the paper (Table 2).
constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;

RECON_HD Philox4 philox4x32_10(uint64_t seed, uint64_t counter) {
  uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = (uint64_t)kPhiloxM0 * c0;
    uint64_t p1 = (uint64_t)kPhiloxM1 * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
    uint32_t n1 = (uint32_t)p1;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    uint32_t n3 = (uint32_t)p0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// 24 random bits to a float in [0, 1) (exactly representable).
RECON_HD float philox_uniform01(uint32_t bits) { return (float)(bits >> 8) * (1.0f / 16777216.0f); }

// Uniform in [0, 1) for element `index` of a draw starting at `offset`.
RECON_HD float philox_uniform(uint64_t seed, uint64_t offset, uint64_t index) {
  return philox_uniform01(philox4x32_10(seed, offset + index).v[0]);
}

// Standard normal for element `index` (Box-Muller on two words, in double so
// that the float result is the same wherever libm's last bit differs).
RECON_HD float philox_normal(uint64_t seed, uint64_t offset, uint64_t index) {
  Philox4 r = philox4x32_10(seed, offset + index);
  double u1 = ((double)(r.v[0] >> 8) + 1.0) * (1.0 / 16777216.0);  // (0, 1]: log is finite
  double u2 = (double)(r.v[1] >> 8) * (1.0 / 16777216.0);
  const double kTwoPi = 6.283185307179586476925286766559;
  // ::sqrt and ::log: recon::sqrt/log (tensor ops) would hide them after runtime/ops.hpp.
  return (float)(::sqrt(-2.0 * ::log(u1)) * ::cos(kTwoPi * u2));
}

}  // namespace recon
