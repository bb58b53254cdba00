// Launchers of the CUDA reductions (kernels/cuda/reduce.cu): the sum of
// everything and the sum over one axis, both accumulated in double (as the
// CPU backend does) in a fixed order that depends only on the problem size,
// so a result is bitwise reproducible run to run and device to device. Also
// the two-pass building blocks that the loss kernels share. Plain C++.
#pragma once
#include <cstddef>
#include <cstdint>

#include "runtime/cuda_context.hpp"

namespace recon::cuda {

// out[o * inner + i] = sum_r x[(o * r_len + r) * inner + i] (the CPU's sum_axis).
void sum_axis(const float* x, float* out, int64_t outer, int64_t r_len, int64_t inner);
// out[0] = (float)(scale * sum_{i < n} x[i]); n == 0 gives 0.
void sum_all(const float* x, int64_t n, double scale, float* out);

// ---- the two-pass scheme shared with kernels/cuda/loss.cu ----------------------
// Pass 1 launches partial_sum_blocks(n) blocks of kPartialSumThreads threads,
// each writing its block's double total to partials[blockIdx.x]; pass 2,
// finish_partial_sums, adds the partials in a fixed tree and writes
// (float)(scale * total) to out[0].
constexpr int kPartialSumThreads = 256;
int partial_sum_blocks(int64_t n);
void finish_partial_sums(const double* partials, int count, double scale, float* out);

// A scratch device allocation for the length of a launcher call (the free is
// stream-ordered after the kernels that use it, so nothing waits).
class DeviceWorkspace {
 public:
  explicit DeviceWorkspace(size_t bytes) : p_(device_alloc(bytes)) {}
  ~DeviceWorkspace() { device_free(p_); }
  DeviceWorkspace(const DeviceWorkspace&) = delete;
  DeviceWorkspace& operator=(const DeviceWorkspace&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(p_);
  }

 private:
  void* p_;
};

}  // namespace recon::cuda
