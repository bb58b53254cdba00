// A seeded random generator. Draws are Philox4x32-10 streams keyed by the
// seed; each draw of n numbers takes the next n counters, so one seed and one
// sequence of draws give the same numbers on every machine and device.
#pragma once
#include <cstdint>

namespace recon {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed; offset_ = offset; }

  // Reserves n counters and returns the first: element i of the draw uses
  // counter (returned + i). Kernels on any device take (seed, offset).
  uint64_t reserve(uint64_t n) {
    uint64_t first = offset_;
    offset_ += n;
    return first;
  }

  float uniform();                  // one number in [0, 1)
  float normal();                   // one standard normal
  uint64_t next_u64();              // 64 random bits
  int64_t randint(int64_t n);       // uniform in [0, n)

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// The process-wide generator used when none is passed.
Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace recon
