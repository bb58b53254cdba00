// Storage allocation: aligned host memory, or stream-ordered CUDA memory.
// While the calling thread captures a CUDA graph, host allocations are
// refused: host work inside a captured step would run once, at the capture,
// and never at a replay.
#include "runtime/storage.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <utility>

#include "runtime/cuda_context.hpp"
#include "runtime/error.hpp"

namespace recon {

static std::atomic<size_t> g_cpu_bytes{0};
static std::atomic<size_t> g_cuda_bytes{0};

static std::atomic<size_t>& counter(Device d) { return d.is_cpu() ? g_cpu_bytes : g_cuda_bytes; }

// Throws when the calling thread captures a CUDA graph (see above).
static void check_not_capturing(size_t bytes) {
  RECON_CHECK(!cuda::capturing(),
              "a host (CPU) tensor of " << bytes << " bytes was allocated while the runtime stream captures a CUDA "
                                        << "graph: host work inside a captured step runs only once, at the capture "
                                        << "(e.g. Tensor::item(), to(cpu), to_vector(), from_vector() or an op on "
                                        << "CPU tensors inside the step); read results through CudaGraphStep's "
                                        << "outputs, make constants before the capture, or turn CUDA graphs off");
}

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  if (bytes == 0) return;
  if (device.is_cpu()) {
    check_not_capturing(bytes);
    size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    data_ = std::aligned_alloc(kAlignment, rounded);
    RECON_CHECK(data_ != nullptr, "out of host memory: could not allocate " << bytes << " bytes");
  } else {
#if defined(RECON_WITH_CUDA)
    data_ = cuda::device_alloc(bytes);
#else
    RECON_FAIL("cannot allocate on " << device.str() << ": ReconAD was built without CUDA");
#endif
  }
  counter(device_) += bytes_;
}

Storage Storage::pinned_host(size_t bytes) {
#if defined(RECON_WITH_CUDA)
  Storage s;
  s.device_ = Device::cpu();
  s.bytes_ = bytes;
  if (bytes == 0) return s;
  check_not_capturing(bytes);
  s.data_ = cuda::pinned_alloc(bytes);
  s.pinned_ = true;
  counter(s.device_) += bytes;
  return s;
#else
  return Storage(bytes, Device::cpu());
#endif
}

void Storage::release() noexcept {
  if (!data_) return;
  counter(device_) -= bytes_;
  if (pinned_) {
#if defined(RECON_WITH_CUDA)
    cuda::pinned_free(data_);
#endif
  } else if (device_.is_cpu()) {
    std::free(data_);
  } else {
#if defined(RECON_WITH_CUDA)
    cuda::device_free(data_);
#endif
  }
  data_ = nullptr;
}

Storage::~Storage() { release(); }

Storage::Storage(Storage&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)),
      bytes_(std::exchange(o.bytes_, 0)),
      device_(o.device_),
      pinned_(std::exchange(o.pinned_, false)) {}

Storage& Storage::operator=(Storage&& o) noexcept {
  if (this != &o) {
    release();
    data_ = std::exchange(o.data_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
    device_ = o.device_;
    pinned_ = std::exchange(o.pinned_, false);
  }
  return *this;
}

size_t storage_bytes_in_use(Device device) { return counter(device).load(); }

}  // namespace recon
