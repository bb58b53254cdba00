// Profiling hooks: an NVTX range per op, kernel and training phase (no-ops
// without CUDA), and per-name call counters that tests read to prove that a
// kernel ran, or did not (a frozen layer runs no weight-gradient kernel).
#pragma once
#include <cstdint>
#include <string>

namespace recon {

// Pushes an NVTX range named `name` and counts one call of it.
class ScopedRange {
 public:
  explicit ScopedRange(const char* name);
  ~ScopedRange();
  ScopedRange(const ScopedRange&) = delete;
  ScopedRange& operator=(const ScopedRange&) = delete;
};

// How many times a range (op, kernel or phase) named `name` was entered.
int64_t range_count(const std::string& name);
void reset_range_counts();

}  // namespace recon

#define RECON_CONCAT_INNER_(a, b) a##b
#define RECON_CONCAT_(a, b) RECON_CONCAT_INNER_(a, b)
// RECON_RANGE("conv2d_backward_weight"); opens a range to the end of the scope.
#define RECON_RANGE(name) ::recon::ScopedRange RECON_CONCAT_(recon_range_, __LINE__)(name)
