// Storage allocation: aligned host memory, or stream-ordered CUDA memory.
// While the calling thread captures a CUDA graph, host allocations are
// refused: host work inside a captured step would run once, at the capture,
// and never at a replay.
#include "runtime/storage.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

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

namespace {

// Freed host blocks of at least kMinBytes are kept for the next allocation of
// the same rounded size, up to a cap (RECON_HOST_CACHE_MB, default 512; 0
// keeps none; AddressSanitizer builds default to 0). A training step allocates the same sizes every step, and a
// fresh large block comes from mmap and page-faults on first touch: about a
// tenth of a small-batch CPU step went to the kernel's page-fault path.
class HostCache {
 public:
  static constexpr size_t kMinBytes = size_t(64) << 10;

  static HostCache& get() {
    static HostCache* cache = new HostCache();  // never destroyed: storages may outlive statics
    return *cache;
  }
  // A cached block of exactly `rounded` bytes, or null.
  void* take(size_t rounded) {
    if (rounded < kMinBytes) return nullptr;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(rounded);
    if (it == free_.end() || it->second.empty()) return nullptr;
    void* p = it->second.back();
    it->second.pop_back();
    cached_ -= rounded;
    return p;
  }
  // Keeps the block if it fits under the cap; false: the caller frees it.
  bool put(void* p, size_t rounded) {
    if (rounded < kMinBytes) return false;
    std::lock_guard<std::mutex> lock(mutex_);
    if (cached_ + rounded > cap_) return false;
    free_[rounded].push_back(p);
    cached_ += rounded;
    return true;
  }
  void release_all() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) std::free(p);
    free_.clear();
    cached_ = 0;
  }
  size_t cached_bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }
  size_t cap() const { return cap_; }

 private:
  HostCache() {
    const char* env = std::getenv("RECON_HOST_CACHE_MB");
    if (env != nullptr && *env != '\0') {
      char* end = nullptr;
      const unsigned long long mb = std::strtoull(env, &end, 10);
      RECON_CHECK(end != env && *end == '\0' && mb <= (1ull << 30),
                  "RECON_HOST_CACHE_MB: expected a number of MiB (0 keeps no freed blocks), got '" << env << "'");
      cap_ = (size_t)mb << 20;
    }
  }
  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
#if defined(__SANITIZE_ADDRESS__)
  size_t cap_ = 0;  // AddressSanitizer builds: every free goes back, so a use after free is caught
#else
  size_t cap_ = size_t(512) << 20;
#endif
};

size_t host_rounded(size_t bytes) { return (bytes + Storage::kAlignment - 1) / Storage::kAlignment * Storage::kAlignment; }

}  // namespace

size_t host_cache_bytes() { return HostCache::get().cached_bytes(); }
size_t host_cache_cap() { return HostCache::get().cap(); }
void host_cache_release() { HostCache::get().release_all(); }

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  if (bytes == 0) return;
  if (device.is_cpu()) {
    check_not_capturing(bytes);
    const size_t rounded = host_rounded(bytes);
    data_ = HostCache::get().take(rounded);
    if (data_ == nullptr) data_ = std::aligned_alloc(kAlignment, rounded);
    if (data_ == nullptr) {  // give the cached blocks back and try once more
      host_cache_release();
      data_ = std::aligned_alloc(kAlignment, rounded);
    }
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
    if (!HostCache::get().put(data_, host_rounded(bytes_))) std::free(data_);
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
