// The CUDA side of the runtime: one stream per process that every op and
// copy is ordered on, a memory pool with a high release threshold, the
// stream-ordered allocation used by Storage, the cuBLAS handle of the stream
// and its math mode, pinned host buffers, launch checks, and the capture of
// the stream into a CUDA graph (the memory rules of a capture live here, next
// to the allocator; runtime/cuda_graph.hpp builds the training-step graphs on
// them). Declared in every build so that callers compile; defined only when
// RECON_WITH_CUDA (PinnedBuffer, capturing() and the capture calls exist
// everywhere: without CUDA capturing() is false and the rest throws).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace recon::cuda {

// Device memory from cudaMallocAsync on the runtime stream. Throws a
// recon::Error naming the size asked for (and suggesting a smaller batch) when
// the device is out of memory.
void* device_alloc(size_t bytes);
// cudaFreeAsync on the runtime stream; never throws (called by destructors).
void device_free(void* p) noexcept;
// Host <-> device copies, asynchronous on the runtime stream.
void copy_h2d(void* dst, const void* src, size_t bytes);
void copy_d2h(void* dst, const void* src, size_t bytes);
void copy_d2d(void* dst, const void* src, size_t bytes);
void memset_zero(void* dst, size_t bytes);
// Page-locked host memory (cudaMallocHost), so host->device copies run
// asynchronously; pinned_alloc throws naming the size, pinned_free never throws.
void* pinned_alloc(size_t bytes);
void pinned_free(void* p) noexcept;
// Waits for all work on the runtime stream. Throws during a capture (the
// host cannot wait for work that has not been issued).
void synchronize();
// The runtime stream as an opaque handle (cudaStream_t).
void* stream_handle();
// Guard bytes (for tests): while enabled, every new device allocation gets
// kGuardBytes of a fixed pattern before and after it. check_guards() throws
// if a live allocation's guards were overwritten (a kernel wrote out of
// bounds); a guarded allocation freed with damaged guards is logged and
// counted in guard_violations(). Enabled by set_guard_checks(true) or the
// environment variable RECON_GUARD=1. Checking synchronises the stream.
constexpr size_t kGuardBytes = 256;  // keeps the user pointer 256-byte aligned, as cudaMalloc's
void set_guard_checks(bool on);
void check_guards(const void* p);
int64_t guard_violations();

// After a kernel launch: checks cudaGetLastError, and synchronizes and checks
// again when sync-after-launch is on (RECON_SYNC=1 in the environment, or
// set_sync_each_launch(true)), so that an error in the kernel's execution is
// reported at this launch rather than at a later call. The error names the
// kernel.
void check_launch(const char* kernel_name);
void set_sync_each_launch(bool on);
bool sync_each_launch();

// ---- capturing the runtime stream into a CUDA graph ---------------------------------
// True while the calling thread captures the runtime stream (between
// capture_begin and capture_end on that thread). False in a build without CUDA.
bool capturing();

// What a capture hands back besides the graph.
struct CaptureResult {
  void* graph = nullptr;  // cudaGraph_t; null when the capture failed (see error)
  int error = 0;          // the cudaError_t of cudaStreamEndCapture (0: success)
  // Device memory allocated before the capture and freed during it: nodes of
  // the graph may still read it, so it is released (release_deferred) only
  // after the graph is destroyed.
  std::vector<void*> deferred_frees;
  // Allocations made during the capture and still alive at its end: graph
  // memory that would outlive the graph. A correct step leaves none (the
  // tensors it returns are copied and dropped inside the capture). They stay
  // with the graph: freeing them later releases nothing.
  size_t escaped = 0;
  size_t escaped_bytes = 0;
};

// Starts capturing the runtime stream (cudaStreamBeginCapture, thread-local
// mode: other threads may keep using CUDA). Throws when something would
// synchronise inside the capture (RECON_SYNC / set_sync_each_launch, guard
// checks) or a capture is already running. Creates the cuBLAS handle and its
// workspace first, so that neither is created inside the graph.
// While capturing, on the capturing thread:
//  - device_alloc is a graph allocation (a memory node: the same address at
//    every replay); device_free of such memory is a graph free; device_free
//    of memory allocated before the capture is deferred (CaptureResult);
//  - copy_h2d/copy_d2h (any host memory: a captured copy would move
//    whatever the host buffer holds at each replay), synchronize(), host
//    (CPU) Storage allocations and host-side random draws throw a
//    recon::Error that names the call (each would break the graph or be
//    frozen into it); pinned frees are deferred to capture_end.
void capture_begin();
// Ends the capture (cudaStreamEndCapture); never throws: a failed capture is
// reported in CaptureResult::error with a null graph.
CaptureResult capture_end() noexcept;
// Frees device memory deferred by a capture (once its graph is destroyed).
void release_deferred(std::vector<void*>& ptrs) noexcept;

// ---- cuBLAS -------------------------------------------------------------------------
// The cuBLAS handle (cublasHandle_t) bound to the runtime stream with
// cublasSetStream, created on first use (one handle per stream; the runtime
// has one stream), with the current math mode applied and a fixed workspace
// (cublasSetWorkspace, kCublasWorkspaceBytes of device memory held as long as
// the handle), so that GEMMs never allocate: a requirement of graph capture.
// The handle lives as long as the process, like the stream.
// The workspace NVIDIA's cuBLAS documentation recommends for Hopper (32 MiB;
// 4 MiB suffices on older GPUs).
constexpr size_t kCublasWorkspaceBytes = 32u << 20;
void* cublas_handle();
// The math mode of the GEMMs: full FP32 (CUBLAS_DEFAULT_MATH) by default;
// TF32 tensor cores (CUBLAS_TF32_TENSOR_OP_MATH: inputs rounded to 10
// mantissa bits, FP32 accumulation, ~1e-3 relative error) when on, from
// set_tf32(true) or RECON_TF32=1 in the environment.
void set_tf32(bool on);
bool tf32_enabled();

// ---- pinned host memory ---------------------------------------------------------------
// Page-locked host memory (cudaMallocHost / cudaFreeHost): copies from it
// run asynchronously with the host at full bandwidth. Move-only; the memory
// must not be freed while a copy from it may still run (synchronize first).
// For the data loader's staging buffers. Throws without CUDA.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(size_t bytes);
  ~PinnedBuffer();
  PinnedBuffer(PinnedBuffer&& other) noexcept;
  PinnedBuffer& operator=(PinnedBuffer&& other) noexcept;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  void* data() const { return data_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  size_t bytes() const { return bytes_; }
  bool empty() const { return data_ == nullptr; }

 private:
  void release() noexcept;
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace recon::cuda
