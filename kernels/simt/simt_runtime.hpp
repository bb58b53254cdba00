// The CUDA runtime API of the SIMT build (RECON_CUDA=SIM): the calls the
// library makes (streams, events, the memory pool, device memory, copies,
// errors, device queries) with device memory backed by host memory, plus the
// emulator's own controls (shuffled thread order, worker threads). Included
// by runtime/cuda_api.hpp in place of cuda_runtime.h.
//
// Everything runs synchronously on the host: an "async" call has finished
// when it returns, a stream is a label, an event records the host time.
// Stream capture (CUDA graphs) is emulated too: while a stream captures, the
// work issued on it (kernel launches, async copies and memsets, events,
// cuBLAS calls, stream-ordered allocations) is recorded instead of run, and
// cudaGraphLaunch runs the recorded work in order; the calls CUDA forbids
// during a capture fail with CUDA's error codes and invalidate it
// (simt_graph.cpp has the rules).
// Device allocations are registered, so copies, memsets and frees check that
// the device side lies inside a live allocation (cudaErrorInvalidValue if
// not), and new allocations are filled with 0xFF bytes (NaN as floats) so
// that reading memory nobody wrote shows in the results.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>

#include "kernels/simt/simt_qualifiers.hpp"
#include "kernels/simt/simt_types.hpp"

// ---- types and constants (the values are CUDA's) ---------------------------
enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidSymbol = 13,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorIllegalState = 401,
  cudaErrorNotReady = 600,
  cudaErrorLaunchFailure = 719,
  cudaErrorNotSupported = 801,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureImplicit = 906,
  cudaErrorStreamCaptureWrongThread = 908,
  cudaErrorUnknown = 999,
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaMemPoolAttr {
  cudaMemPoolReuseFollowEventDependencies = 1,
  cudaMemPoolReuseAllowOpportunistic = 2,
  cudaMemPoolReuseAllowInternalDependencies = 3,
  cudaMemPoolAttrReleaseThreshold = 4,
  cudaMemPoolAttrReservedMemCurrent = 5,
  cudaMemPoolAttrReservedMemHigh = 6,
  cudaMemPoolAttrUsedMemCurrent = 7,
  cudaMemPoolAttrUsedMemHigh = 8,
};

enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};

enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};

enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2,
};

enum cudaStreamCaptureStatus {
  cudaStreamCaptureStatusNone = 0,
  cudaStreamCaptureStatusActive = 1,
  cudaStreamCaptureStatusInvalidated = 2,
};

struct CUstream_st;
struct CUevent_st;
struct CUmemPoolHandle_st;
struct CUgraph_st;
struct CUgraphExec_st;
typedef CUstream_st* cudaStream_t;
typedef CUevent_st* cudaEvent_t;
typedef CUmemPoolHandle_st* cudaMemPool_t;
typedef CUgraph_st* cudaGraph_t;
typedef CUgraphExec_st* cudaGraphExec_t;

constexpr unsigned int cudaStreamDefault = 0x00;
constexpr unsigned int cudaStreamNonBlocking = 0x01;
constexpr unsigned int cudaEventDefault = 0x00;
constexpr unsigned int cudaEventBlockingSync = 0x01;
constexpr unsigned int cudaEventDisableTiming = 0x02;
constexpr unsigned int cudaHostAllocDefault = 0x00;
constexpr unsigned long long cudaGraphInstantiateFlagAutoFreeOnLaunch = 1;

// The fields of cudaDeviceProp that the project reads; the emulated device
// reports the limits the emulator enforces.
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  size_t sharedMemPerBlockOptin;
  int warpSize;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  int multiProcessorCount;
  int major;
  int minor;
};

// ---- device, errors ---------------------------------------------------------
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize();
// The last error of the calling host thread (cleared by cudaGetLastError).
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t error);
const char* cudaGetErrorName(cudaError_t error);

// ---- streams and events -----------------------------------------------------
cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags = 0);
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

// ---- memory -----------------------------------------------------------------
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device);
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value);
cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value);
cudaError_t cudaMalloc(void** ptr, size_t bytes);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMallocAsync(void** ptr, size_t bytes, cudaStream_t stream);
cudaError_t cudaFreeAsync(void* ptr, cudaStream_t stream);
cudaError_t cudaMallocHost(void** ptr, size_t bytes);
cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned int flags);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* dst, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream = nullptr);

// ---- stream capture and graphs -------------------------------------------------
// The subset the library uses, with CUDA's signatures and error codes. A
// graph is the recorded work in issue order (the emulator runs one stream at
// a time, so a sequence is all a graph needs); child graphs and graph
// updates are not emulated.
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags = 0);
cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);

// The typed conveniences of cuda_runtime.h.
template <class T>
cudaError_t cudaMalloc(T** ptr, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
template <class T>
cudaError_t cudaMallocAsync(T** ptr, size_t bytes, cudaStream_t stream) {
  return cudaMallocAsync(reinterpret_cast<void**>(ptr), bytes, stream);
}
template <class T>
cudaError_t cudaMallocHost(T** ptr, size_t bytes) {
  return cudaMallocHost(reinterpret_cast<void**>(ptr), bytes);
}

// __constant__ variables are ordinary globals in the SIMT build.
template <class T>
cudaError_t cudaMemcpyToSymbol(const T& symbol, const void* src, size_t bytes, size_t offset = 0,
                               cudaMemcpyKind kind = cudaMemcpyHostToDevice) {
  if (offset + bytes > sizeof(T)) return cudaErrorInvalidValue;
  return cudaMemcpy(reinterpret_cast<char*>(const_cast<T*>(&symbol)) + offset, src, bytes, cudaMemcpyDefault);
}
template <class T>
cudaError_t cudaMemcpyFromSymbol(void* dst, const T& symbol, size_t bytes, size_t offset = 0,
                                 cudaMemcpyKind kind = cudaMemcpyDeviceToHost) {
  if (offset + bytes > sizeof(T)) return cudaErrorInvalidValue;
  return cudaMemcpy(dst, reinterpret_cast<const char*>(&symbol) + offset, bytes, cudaMemcpyDefault);
}

// ---- kernel attributes --------------------------------------------------------
namespace recon::simt {
cudaError_t set_func_attribute(const void* func, cudaFuncAttribute attr, int value);
}
// Only cudaFuncAttributeMaxDynamicSharedMemorySize has an effect: it raises
// the dynamic shared memory a launch of `func` may ask for above 48 KiB.
template <class F>
cudaError_t cudaFuncSetAttribute(F* func, cudaFuncAttribute attr, int value) {
  return recon::simt::set_func_attribute(reinterpret_cast<const void*>(func), attr, value);
}

// ---- the emulator's controls ----------------------------------------------------
namespace recon::simt {

// Threads of a block run in ascending order between barriers unless a seed is
// set; with one, each block runs its threads in an order shuffled by the seed
// (and the block's index and launch number), so that a missing __syncthreads
// or __syncwarp changes the result. Initialised from RECON_SIMT_SHUFFLE=<seed>.
void set_shuffle_seed(std::optional<uint64_t> seed);
std::optional<uint64_t> shuffle_seed();

// How many OS threads run blocks (the launching thread included). 0 restores
// the default: RECON_SIMT_THREADS if set, else the hardware threads, at most 8.
void set_worker_threads(int n);
int worker_threads();

// Live device allocations (for tests that check a path frees what it allocates).
// Memory allocated during a capture belongs to the graph (as graph memory
// nodes' does) and counts until the graph and its instantiations are destroyed.
size_t live_device_allocations();

// ---- stream capture, for the emulator's own stream-ordered work --------------------
// What stream-ordered work issued on `stream` must do now: run (no capture
// concerns it), be recorded into the graph that `stream` is capturing, or fail
// with *error (the stream's capture was invalidated, or the work goes to the
// legacy stream while this thread captures: cudaErrorStreamCaptureImplicit,
// which invalidates that capture).
enum class Ordering { kRun, kRecord, kFail };
Ordering stream_ordering(cudaStream_t stream, cudaError_t* error);
// Appends `work` to the graph being captured on `stream` (after
// stream_ordering returned kRecord); a replay runs it and returns its error.
void capture_work(cudaStream_t stream, std::function<cudaError_t()> work);
// Invalidates the capture on `stream` (a call issued to it failed).
void invalidate_capture(cudaStream_t stream);
// Graphs launched so far (for tests that count replays).
int64_t graph_launches();

}  // namespace recon::simt
