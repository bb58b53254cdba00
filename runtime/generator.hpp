// A seeded random generator. Draws are Philox4x32-10 streams keyed by the
// seed; each draw of n numbers takes the next n counters, so one seed and one
// sequence of draws give the same numbers on every machine and device.
//
// CUDA graphs: a captured step is replayed with new random numbers. Ops that
// draw inside it call draw(), which hands their kernels a PhiloxArgs whose
// key and base counter are read from device memory that CudaGraphStep
// refreshes before each replay (runtime/cuda_graph.hpp); the host offset
// advances by what one step consumes, so replays draw exactly the numbers
// eager steps would. Draws that would be frozen into a graph (reserve() and
// the host-side scalars) throw during a capture.
#pragma once
#include <cstdint>

#include "kernels/common/hd.hpp"

namespace recon {

// Where a kernel finds a draw's Philox key and first counter: (seed, offset)
// themselves, or, inside a captured graph, a device pointer to
// {seed, base} (refreshed before each replay) and offset as the delta from
// base. Element i of the draw uses counter first() + i with key key().
struct PhiloxArgs {
  uint64_t seed = 0;
  uint64_t offset = 0;
  const uint64_t* device_state = nullptr;  // null: eager; else {seed, base} on the device

  RECON_HD uint64_t key() const { return device_state ? device_state[0] : seed; }
  RECON_HD uint64_t first() const { return device_state ? device_state[1] + offset : offset; }
};

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed; offset_ = offset; }

  // Reserves n counters and returns the first: element i of the draw uses
  // counter (returned + i). Kernels on any device take (seed, offset).
  // Throws while the calling thread captures a CUDA graph (the offset would
  // be the same at every replay): ops use draw() instead.
  uint64_t reserve(uint64_t n);

  // Reserves n counters for a kernel's draw: {seed, reserve(n), null}
  // outside a capture; inside one, a delta and the device state of this
  // generator for the capture (the generator must outlive the graph).
  PhiloxArgs draw(uint64_t n);

  float uniform();                  // one number in [0, 1)
  float normal();                   // one standard normal
  uint64_t next_u64();              // 64 random bits
  int64_t randint(int64_t n);       // uniform in [0, n)

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
  // The capture this generator last drew in (0: none), the offset when it
  // started drawing there, and its device state slot in that capture.
  uint64_t capture_id_ = 0;
  uint64_t capture_base_ = 0;
  const uint64_t* capture_state_ = nullptr;
};

// The process-wide generator used when none is passed.
Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace recon
