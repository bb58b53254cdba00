// Links between the parts of the SIMT emulator (scheduler, runtime API,
// kernel-launch log); not for use outside kernels/simt.
#pragma once
#include <cstddef>
#include <memory>
#include <thread>

#include "kernels/simt/simt_runtime.hpp"

namespace recon::simt {
struct GraphBody;  // the recorded work and graph memory of one capture (simt_graph.cpp)
}

// The handle behind cudaStream_t: its flags and its capture, if any.
struct CUstream_st {
  unsigned int flags = 0;
  cudaStreamCaptureStatus capture_status = cudaStreamCaptureStatusNone;
  cudaStreamCaptureMode capture_mode = cudaStreamCaptureModeGlobal;
  std::thread::id capture_thread{};
  std::shared_ptr<recon::simt::GraphBody> capture;  // while capture_status != None
};

namespace recon::simt {

// Records `error` as the calling host thread's last CUDA error.
void set_last_error(cudaError_t error);
// The most dynamic shared memory a launch of `kernel` may ask for: 48 KiB,
// or what cudaFuncSetAttribute allowed (up to the emulated device's opt-in limit).
size_t dynamic_shared_limit(const void* kernel);
// Appends the kernel's name to $RECON_SIMT_KERNEL_LOG (once per process).
void log_launched_kernel(const char* launch_text);

// Device memory and copies (simt_runtime.cpp): allocate / free a registered
// block (poisoned with 0xFF), bounds-checked copy and memset that run now.
cudaError_t device_alloc(void** ptr, size_t bytes);
cudaError_t device_free(void* p);
cudaError_t copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t fill(void* dst, int value, size_t bytes);
// The checks of copy() without the copy: cudaSuccess or the error it would return.
cudaError_t check_copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t check_fill(void* dst, size_t bytes);
// True when [p, p + bytes) lies in cudaMallocHost memory.
bool is_pinned(const void* p, size_t bytes);
bool is_device_pointer(const void* p);

// Capture rules for calls other than stream-ordered work (simt_graph.cpp).
// A call CUDA forbids while a capture is in progress that concerns this
// thread (cudaMalloc, cudaFree, cudaMallocHost, cudaFreeHost,
// cudaDeviceSynchronize, synchronous copies): invalidates that capture and
// returns the error CUDA returns; cudaSuccess when no capture concerns it.
cudaError_t unsafe_call_check();
// cudaStreamSynchronize(stream) while stream captures: invalidates the
// capture, cudaErrorStreamCaptureUnsupported.
cudaError_t stream_sync_check(cudaStream_t stream);
// Stream-ordered allocation and free while `stream` captures (graph memory):
// the memory is allocated now and belongs to the graph until the graph is
// destroyed; a replay re-poisons it where the allocation was recorded.
cudaError_t graph_alloc(cudaStream_t stream, void** ptr, size_t bytes);
cudaError_t graph_free(cudaStream_t stream, void* ptr);
// True when p is graph memory (cudaFree/cudaFreeAsync of it outside a
// capture return it to its graph: nothing is released).
bool is_graph_memory(const void* p);

constexpr size_t kDefaultDynamicShared = 48 * 1024;   // CUDA's limit without opt-in
constexpr size_t kMaxDynamicSharedOptin = 227 * 1024;  // H100/H200 opt-in limit
constexpr unsigned kMaxThreadsPerBlock = 1024;

}  // namespace recon::simt
