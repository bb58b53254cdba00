// Storage: one move-only allocation on one device. CPU memory is 64-byte
// aligned (a cache line; AVX-512 loads); CUDA memory comes from
// cudaMallocAsync on the runtime's stream (DESIGN.md, decision 2), a graph
// allocation while the stream captures (runtime/cuda_context.hpp). Host
// storage cannot be allocated inside a capture (a recon::Error says why).
#pragma once
#include <cstddef>

#include "runtime/device.hpp"

namespace recon {

class Storage {
 public:
  static constexpr size_t kAlignment = 64;

  Storage() = default;
  Storage(size_t bytes, Device device);
  // Page-locked host memory (CPU device) in a build with CUDA, so copies to
  // the GPU run asynchronously; ordinary host memory otherwise.
  static Storage pinned_host(size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  Storage(Storage&& other) noexcept;
  Storage& operator=(Storage&& other) noexcept;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }
  bool pinned() const { return pinned_; }

 private:
  void release() noexcept;
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_{};
  bool pinned_ = false;
};

// Bytes currently held by live CPU / CUDA storages (for tests and reports).
size_t storage_bytes_in_use(Device device);

// Freed host blocks kept for reuse (storage.cpp: blocks of 64 KiB and more,
// up to RECON_HOST_CACHE_MB MiB, default 512, 0 under AddressSanitizer):
// bytes held, the cap in bytes, and a call that frees them all (an
// allocation that fails does so and retries once).
size_t host_cache_bytes();
size_t host_cache_cap();
void host_cache_release();

}  // namespace recon
