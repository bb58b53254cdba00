// The SIMT build's CUDA runtime API: device memory as registered host
// allocations, synchronous copies and memsets that check the device side,
// streams and events as labels, the last-error slot, device queries. Work on
// a capturing stream is recorded instead (the capture rules and graphs are in
// simt_graph.cpp).
#include "kernels/simt/simt_runtime.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <new>
#include <thread>

#include "kernels/simt/simt_internal.hpp"

// The handles behind cudaEvent_t and cudaMemPool_t (cudaStream_t's is in simt_internal.hpp).
struct CUevent_st {
  std::chrono::steady_clock::time_point time{};
  bool recorded = false;
};
struct CUmemPoolHandle_st {
  uint64_t release_threshold = 0;
};

namespace recon::simt {

namespace {

constexpr size_t kDeviceAlignment = 256;  // cudaMalloc's alignment
constexpr unsigned char kPoisonByte = 0xFF;  // 0xFFFFFFFF is a NaN as a float

thread_local cudaError_t t_last_error = cudaSuccess;

cudaError_t record(cudaError_t e) {
  if (e != cudaSuccess) t_last_error = e;
  return e;
}

// Live device allocations, by start address.
struct Registry {
  std::mutex mutex;
  std::map<uintptr_t, size_t> blocks;
  std::map<uintptr_t, size_t> pinned;  // cudaMallocHost blocks
  std::map<const void*, int> shared_limits;  // cudaFuncSetAttribute
};
// Never destroyed: the runtime's own statics (the cuBLAS workspace, pooled
// memory) may free device memory during exit, after this file's statics.
Registry& registry() {
  static Registry* r = new Registry();
  return *r;
}

// True if [p, p + bytes) lies inside one live device allocation.
bool inside_device(const void* p, size_t bytes) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.blocks.upper_bound(a);
  if (it == r.blocks.begin()) return false;
  --it;
  return a >= it->first && a - it->first <= it->second && bytes <= it->second - (a - it->first);
}

// True if p points into any live device allocation.
bool is_device(const void* p) { return inside_device(p, 0); }

CUmemPoolHandle_st g_default_pool;

}  // namespace

bool is_device_pointer(const void* p) { return is_device(p); }

bool is_pinned(const void* p, size_t bytes) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.pinned.upper_bound(a);
  if (it == r.pinned.begin()) return false;
  --it;
  return a - it->first < std::max<size_t>(it->second, 1) && bytes <= it->second - (a - it->first);
}

cudaError_t device_alloc(void** ptr, size_t bytes) {
  if (!ptr) return record(cudaErrorInvalidValue);
  // The emulated device has the host's physical memory (cudaMemGetInfo's
  // total): a larger request fails as on a GPU, without asking the host
  // allocator (which under AddressSanitizer aborts on absurd sizes).
  const size_t total = (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE);
  if (bytes > total) return record(cudaErrorMemoryAllocation);
  const size_t rounded = (bytes + kDeviceAlignment - 1) / kDeviceAlignment * kDeviceAlignment;
  void* p = ::operator new(rounded == 0 ? kDeviceAlignment : rounded, std::align_val_t(kDeviceAlignment),
                           std::nothrow);
  if (!p) return record(cudaErrorMemoryAllocation);
  std::memset(p, kPoisonByte, rounded);
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    r.blocks[reinterpret_cast<uintptr_t>(p)] = bytes;
  }
  *ptr = p;
  return cudaSuccess;
}

cudaError_t device_free(void* p) {
  if (!p) return cudaSuccess;
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.blocks.find(reinterpret_cast<uintptr_t>(p));
    if (it == r.blocks.end()) return record(cudaErrorInvalidValue);  // not from cudaMalloc, or freed twice
    r.blocks.erase(it);
  }
  ::operator delete(p, std::align_val_t(kDeviceAlignment));
  return cudaSuccess;
}

cudaError_t check_copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (bytes == 0) return cudaSuccess;
  if (!dst || !src) return record(cudaErrorInvalidValue);
  bool ok = true;
  switch (kind) {
    case cudaMemcpyHostToHost: ok = !is_device(dst) && !is_device(src); break;
    case cudaMemcpyHostToDevice: ok = inside_device(dst, bytes) && !is_device(src); break;
    case cudaMemcpyDeviceToHost: ok = !is_device(dst) && inside_device(src, bytes); break;
    case cudaMemcpyDeviceToDevice: ok = inside_device(dst, bytes) && inside_device(src, bytes); break;
    case cudaMemcpyDefault:
      ok = (!is_device(dst) || inside_device(dst, bytes)) && (!is_device(src) || inside_device(src, bytes));
      break;
    default: return record(cudaErrorInvalidMemcpyDirection);
  }
  if (!ok) return record(cudaErrorInvalidValue);
  return cudaSuccess;
}

cudaError_t copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (cudaError_t e = check_copy(dst, src, bytes, kind); e != cudaSuccess || bytes == 0) return e;
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t check_fill(void* dst, size_t bytes) {
  if (bytes == 0) return cudaSuccess;
  if (!inside_device(dst, bytes)) return record(cudaErrorInvalidValue);
  return cudaSuccess;
}

cudaError_t fill(void* dst, int value, size_t bytes) {
  if (cudaError_t e = check_fill(dst, bytes); e != cudaSuccess || bytes == 0) return e;
  std::memset(dst, value, bytes);
  return cudaSuccess;
}

void set_last_error(cudaError_t error) { record(error); }

size_t dynamic_shared_limit(const void* kernel) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.shared_limits.find(kernel);
  return it == r.shared_limits.end() ? kDefaultDynamicShared : std::max<size_t>(kDefaultDynamicShared, it->second);
}

cudaError_t set_func_attribute(const void* func, cudaFuncAttribute attr, int value) {
  if (!func) return record(cudaErrorInvalidValue);
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (value < 0 || (size_t)value > kMaxDynamicSharedOptin) return record(cudaErrorInvalidValue);
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    r.shared_limits[func] = value;
  }
  return cudaSuccess;
}

size_t live_device_allocations() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.blocks.size();
}

}  // namespace recon::simt

using recon::simt::record;

// ---- device, errors --------------------------------------------------------------
cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return record(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
  if (!device) return record(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : record(cudaErrorInvalidDevice); }

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (!prop) return record(cudaErrorInvalidValue);
  if (device != 0) return record(cudaErrorInvalidDevice);
  *prop = cudaDeviceProp{};
  std::strncpy(prop->name, "ReconAD SIMT emulator", sizeof prop->name - 1);
  size_t free_bytes = 0;
  cudaMemGetInfo(&free_bytes, &prop->totalGlobalMem);
  prop->sharedMemPerBlock = recon::simt::kDefaultDynamicShared;
  prop->sharedMemPerBlockOptin = recon::simt::kMaxDynamicSharedOptin;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = (int)recon::simt::kMaxThreadsPerBlock;
  prop->maxThreadsDim[0] = 1024;
  prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 0x7fffffff;
  prop->maxGridSize[1] = 65535;
  prop->maxGridSize[2] = 65535;
  prop->multiProcessorCount = recon::simt::worker_threads();
  prop->major = 9;  // the architecture the project targets (sm_90)
  prop->minor = 0;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (!value) return record(cudaErrorInvalidValue);
  cudaDeviceProp p;
  if (cudaError_t e = cudaGetDeviceProperties(&p, device); e != cudaSuccess) return e;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = p.maxThreadsPerBlock; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = (int)p.sharedMemPerBlock; break;
    case cudaDevAttrWarpSize: *value = p.warpSize; break;
    case cudaDevAttrMultiProcessorCount: *value = p.multiProcessorCount; break;
    case cudaDevAttrComputeCapabilityMajor: *value = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = p.minor; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = (int)p.sharedMemPerBlockOptin; break;
    default: return record(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { return recon::simt::unsafe_call_check(); }

cudaError_t cudaGetLastError() {
  cudaError_t e = recon::simt::t_last_error;
  recon::simt::t_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return recon::simt::t_last_error; }

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidSymbol: return "cudaErrorInvalidSymbol";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureImplicit: return "cudaErrorStreamCaptureImplicit";
    case cudaErrorStreamCaptureWrongThread: return "cudaErrorStreamCaptureWrongThread";
    case cudaErrorUnknown: return "cudaErrorUnknown";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidSymbol: return "invalid device symbol";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureImplicit:
      return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorStreamCaptureWrongThread:
      return "attempt to terminate a thread-local capture sequence from another thread";
    case cudaErrorUnknown: return "unknown error";
  }
  return "unknown error";
}

// ---- streams and events ------------------------------------------------------------
cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  if (!stream) return record(cudaErrorInvalidValue);
  *stream = new CUstream_st();
  (*stream)->flags = flags;
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (!stream) return record(cudaErrorInvalidResourceHandle);
  if (stream->capture_status != cudaStreamCaptureStatusNone) return record(cudaErrorStreamCaptureUnsupported);
  delete stream;
  return cudaSuccess;
}
// Work is done when its call returns; the legacy stream synchronises with
// every blocking stream, so it counts as a synchronising call.
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  return stream ? recon::simt::stream_sync_check(stream) : recon::simt::unsafe_call_check();
}
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t event, unsigned int) {
  return event ? cudaSuccess : record(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int) {
  if (!event) return record(cudaErrorInvalidValue);
  *event = new CUevent_st{};
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (!event) return record(cudaErrorInvalidResourceHandle);
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (!event) return record(cudaErrorInvalidResourceHandle);
  auto stamp = [event] {
    event->time = std::chrono::steady_clock::now();
    event->recorded = true;
    return cudaSuccess;
  };
  cudaError_t error = cudaSuccess;
  switch (recon::simt::stream_ordering(stream, &error)) {
    case recon::simt::Ordering::kRun: return stamp();
    case recon::simt::Ordering::kRecord: recon::simt::capture_work(stream, stamp); return cudaSuccess;
    case recon::simt::Ordering::kFail: break;
  }
  return record(error);
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  return event ? cudaSuccess : record(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventQuery(cudaEvent_t event) { return event ? cudaSuccess : record(cudaErrorInvalidResourceHandle); }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!ms || !start || !end) return record(cudaErrorInvalidValue);
  if (!start->recorded || !end->recorded) return record(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(end->time - start->time).count();
  return cudaSuccess;
}

// ---- memory -----------------------------------------------------------------------------
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device) {
  if (!pool) return record(cudaErrorInvalidValue);
  if (device != 0) return record(cudaErrorInvalidDevice);
  *pool = &recon::simt::g_default_pool;
  return cudaSuccess;
}
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value) {
  if (!pool || !value) return record(cudaErrorInvalidValue);
  if (attr == cudaMemPoolAttrReleaseThreshold) pool->release_threshold = *static_cast<uint64_t*>(value);
  return cudaSuccess;
}
cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value) {
  if (!pool || !value) return record(cudaErrorInvalidValue);
  if (attr != cudaMemPoolAttrReleaseThreshold) return record(cudaErrorNotSupported);
  *static_cast<uint64_t*>(value) = pool->release_threshold;
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  if (cudaError_t e = recon::simt::unsafe_call_check(); e != cudaSuccess) return e;
  return recon::simt::device_alloc(ptr, bytes);
}
cudaError_t cudaFree(void* ptr) {
  if (cudaError_t e = recon::simt::unsafe_call_check(); e != cudaSuccess) return e;
  if (recon::simt::is_graph_memory(ptr)) return cudaSuccess;  // stays with its graph
  return recon::simt::device_free(ptr);
}
cudaError_t cudaMallocAsync(void** ptr, size_t bytes, cudaStream_t stream) {
  cudaError_t error = cudaSuccess;
  switch (recon::simt::stream_ordering(stream, &error)) {
    case recon::simt::Ordering::kRun: return recon::simt::device_alloc(ptr, bytes);
    case recon::simt::Ordering::kRecord: return recon::simt::graph_alloc(stream, ptr, bytes);
    case recon::simt::Ordering::kFail: break;
  }
  return record(error);
}
cudaError_t cudaFreeAsync(void* ptr, cudaStream_t stream) {
  cudaError_t error = cudaSuccess;
  switch (recon::simt::stream_ordering(stream, &error)) {
    case recon::simt::Ordering::kRun:
      if (recon::simt::is_graph_memory(ptr)) return cudaSuccess;  // stays with its graph
      return recon::simt::device_free(ptr);
    case recon::simt::Ordering::kRecord: return recon::simt::graph_free(stream, ptr);
    case recon::simt::Ordering::kFail: break;
  }
  return record(error);
}

cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  if (!ptr) return record(cudaErrorInvalidValue);
  if (cudaError_t e = recon::simt::unsafe_call_check(); e != cudaSuccess) return e;
  *ptr = std::malloc(bytes == 0 ? 1 : bytes);
  if (!*ptr) return record(cudaErrorMemoryAllocation);
  recon::simt::Registry& r = recon::simt::registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.pinned[reinterpret_cast<uintptr_t>(*ptr)] = bytes;
  return cudaSuccess;
}
cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned int) { return cudaMallocHost(ptr, bytes); }
cudaError_t cudaFreeHost(void* ptr) {
  if (cudaError_t e = recon::simt::unsafe_call_check(); e != cudaSuccess) return e;
  if (!ptr) return cudaSuccess;
  {
    recon::simt::Registry& r = recon::simt::registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    if (r.pinned.erase(reinterpret_cast<uintptr_t>(ptr)) == 0) return record(cudaErrorInvalidValue);
  }
  std::free(ptr);
  return cudaSuccess;
}


cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  if (!free_bytes || !total_bytes) return record(cudaErrorInvalidValue);
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  *total_bytes = (size_t)sysconf(_SC_PHYS_PAGES) * page;
  *free_bytes = (size_t)sysconf(_SC_AVPHYS_PAGES) * page;
  return cudaSuccess;
}

// Synchronous copies and memsets go to the legacy stream.
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  return cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  cudaError_t error = cudaSuccess;
  switch (recon::simt::stream_ordering(stream, &error)) {
    case recon::simt::Ordering::kRun: return recon::simt::copy(dst, src, bytes, kind);
    case recon::simt::Ordering::kRecord: {
      // As CUDA: a copy whose host side is pageable memory cannot be captured
      // (the driver would stage it through a synchronous bounce buffer).
      const bool dst_host = !recon::simt::is_device_pointer(dst), src_host = !recon::simt::is_device_pointer(src);
      if (bytes > 0 && ((dst_host && dst && !recon::simt::is_pinned(dst, bytes)) ||
                        (src_host && src && !recon::simt::is_pinned(src, bytes)))) {
        recon::simt::invalidate_capture(stream);
        return record(cudaErrorStreamCaptureUnsupported);
      }
      if (cudaError_t e = recon::simt::check_copy(dst, src, bytes, kind); e != cudaSuccess) {
        recon::simt::invalidate_capture(stream);
        return e;
      }
      recon::simt::capture_work(stream, [=] { return recon::simt::copy(dst, src, bytes, kind); });
      return cudaSuccess;
    }
    case recon::simt::Ordering::kFail: break;
  }
  return record(error);
}
cudaError_t cudaMemset(void* dst, int value, size_t bytes) { return cudaMemsetAsync(dst, value, bytes, nullptr); }
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream) {
  cudaError_t error = cudaSuccess;
  switch (recon::simt::stream_ordering(stream, &error)) {
    case recon::simt::Ordering::kRun: return recon::simt::fill(dst, value, bytes);
    case recon::simt::Ordering::kRecord:
      if (cudaError_t e = recon::simt::check_fill(dst, bytes); e != cudaSuccess) {
        recon::simt::invalidate_capture(stream);
        return e;
      }
      recon::simt::capture_work(stream, [=] { return recon::simt::fill(dst, value, bytes); });
      return cudaSuccess;
    case recon::simt::Ordering::kFail: break;
  }
  return record(error);
}
