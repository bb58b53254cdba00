// CUDA runtime glue: stream, memory pool, allocation, copies, launch checks,
// the cuBLAS handle, its workspace and math mode, pinned host buffers, and
// the bookkeeping of a graph capture (which memory belongs to the graph,
// what is deferred, what must not run). Without CUDA only PinnedBuffer and
// the capture calls exist (they throw; capturing() is false).
#include "runtime/cuda_context.hpp"

#include <utility>

#include "runtime/error.hpp"

#if defined(RECON_WITH_CUDA)
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "runtime/cublas_api.hpp"

namespace recon::cuda {

namespace {
// The byte written around guarded allocations.
constexpr unsigned char kGuardPattern = 0xA5;

// A cuBLAS handle, the math mode last set on it, and its workspace.
struct CublasHandle {
  cublasHandle_t handle = nullptr;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
  void* workspace = nullptr;
};

// The capture in progress, if any (one at a time: the runtime has one stream).
struct CaptureState {
  bool active = false;
  std::thread::id thread{};
  std::unordered_map<void*, size_t> allocations;  // made during the capture, not yet freed
  std::vector<void*> deferred_frees;              // allocated before it, freed during it
  std::vector<void*> deferred_pinned;             // pinned frees asked for during it
};

// True when the environment variable `name` starts with '1'.
bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && v[0] == '1';
}

struct Context {
  cudaStream_t stream = nullptr;
  std::atomic<bool> sync_each_launch{false};
  std::atomic<bool> tf32{false};
  std::mutex cublas_mutex;
  std::unordered_map<cudaStream_t, CublasHandle> cublas;  // one handle per stream
  bool guards = false;
  std::mutex guard_mutex;
  std::unordered_map<const void*, size_t> guarded;  // user pointer -> user bytes
  int64_t guard_violations = 0;
  std::mutex capture_mutex;
  std::atomic<bool> capture_active{false};  // fast path for device_alloc/free
  CaptureState capture;
  std::unordered_set<void*> graph_owned;  // escaped graph memory: freeing it releases nothing
  Context() {
    RECON_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    int device = 0;
    RECON_CUDA_CHECK(cudaGetDevice(&device));
    cudaMemPool_t pool;
    RECON_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
    // Keep freed blocks in the pool: stream-ordered reuse instead of
    // returning memory to the driver at every synchronisation.
    uint64_t threshold = UINT64_MAX;
    RECON_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
    sync_each_launch = env_flag("RECON_SYNC");
    tf32 = env_flag("RECON_TF32");
    const char* g = std::getenv("RECON_GUARD");
    guards = g && g[0] == '1';
  }
  // At exit: the cuBLAS handles go too (LeakSanitizer saw them leak). This
  // runs before the CUDA runtime's own teardown, which registered itself
  // during the constructor's first CUDA call; errors at exit are ignored.
  ~Context() {
    for (auto& [stream, h] : cublas) {
      if (h.handle) (void)cublasDestroy(h.handle);
      if (h.workspace) (void)cudaFree(h.workspace);
    }
  }
};
Context& ctx() {
  static Context c;
  return c;
}

// Set on the capturing thread between capture_begin and capture_end.
thread_local bool t_capturing = false;

// Throws when a capture is running: a copy between host and device memory
// inside a graph would read or write the host buffer at every replay with
// whatever it holds then (long after the step's code ran), and CUDA cannot
// capture one from pageable memory at all. The library's graphs move data
// between host and device outside the graph (CudaGraphStep).
void check_no_host_copy(const char* what, size_t bytes) {
  RECON_CHECK(!ctx().capture_active.load(),
              what << ": a copy of " << bytes << " bytes between host and device memory while the runtime stream "
                   << "captures a CUDA graph (e.g. Tensor::item(), to(cpu), to_vector() or a host tensor copied to "
                   << "the device inside a captured step); read results through CudaGraphStep's outputs, pass data "
                   << "as its inputs, make constants on the device before the capture, or turn CUDA graphs off");
}
}  // namespace

bool capturing() { return t_capturing; }

void* stream_handle() { return ctx().stream; }

// True when both guard regions of the allocation at user pointer p hold the pattern.
static bool guards_intact(const void* p, size_t bytes) {
  std::vector<unsigned char> host(2 * kGuardBytes);
  const unsigned char* base = static_cast<const unsigned char*>(p) - kGuardBytes;
  RECON_CUDA_CHECK(cudaMemcpyAsync(host.data(), base, kGuardBytes, cudaMemcpyDeviceToHost, ctx().stream));
  RECON_CUDA_CHECK(cudaMemcpyAsync(host.data() + kGuardBytes, base + kGuardBytes + bytes, kGuardBytes,
                                   cudaMemcpyDeviceToHost, ctx().stream));
  RECON_CUDA_CHECK(cudaStreamSynchronize(ctx().stream));
  for (unsigned char b : host)
    if (b != kGuardPattern) return false;
  return true;
}

void set_guard_checks(bool on) { ctx().guards = on; }

int64_t guard_violations() {
  std::lock_guard<std::mutex> lock(ctx().guard_mutex);
  return ctx().guard_violations;
}

void check_guards(const void* p) {
  size_t bytes = 0;
  {
    std::lock_guard<std::mutex> lock(ctx().guard_mutex);
    auto it = ctx().guarded.find(p);
    RECON_CHECK(it != ctx().guarded.end(), "check_guards: " << p << " is not a guarded device allocation "
                                                              "(enable set_guard_checks before allocating)");
    bytes = it->second;
  }
  RECON_CHECK(guards_intact(p, bytes), "guard bytes around a device allocation of " << bytes
                                           << " bytes were overwritten: a kernel wrote out of bounds");
}

void* device_alloc(size_t bytes) {
  void* p = nullptr;
  if (ctx().capture_active.load()) {
    // A graph allocation (capture_begin refused guard checks).
    std::lock_guard<std::mutex> lock(ctx().capture_mutex);
    if (ctx().capture.active) {
      cudaError_t err = cudaMallocAsync(&p, bytes, ctx().stream);
      if (err == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        RECON_FAIL("CUDA out of memory: could not allocate " << bytes << " bytes inside a CUDA graph capture; try a "
                   "smaller --batch-size");
      }
      RECON_CUDA_CHECK(err);
      ctx().capture.allocations[p] = bytes;
      return p;
    }
  }
  const bool guarded = ctx().guards;
  const size_t total = guarded ? bytes + 2 * kGuardBytes : bytes;
  cudaError_t err = cudaMallocAsync(&p, total, ctx().stream);
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    RECON_FAIL("CUDA out of memory: could not allocate " << bytes << " bytes ("
               << bytes / (1024.0 * 1024.0) << " MiB); try a smaller --batch-size");
  }
  RECON_CUDA_CHECK(err);
  if (guarded) {
    unsigned char* base = static_cast<unsigned char*>(p);
    RECON_CUDA_CHECK(cudaMemsetAsync(base, kGuardPattern, kGuardBytes, ctx().stream));
    RECON_CUDA_CHECK(cudaMemsetAsync(base + kGuardBytes + bytes, kGuardPattern, kGuardBytes, ctx().stream));
    p = base + kGuardBytes;
    std::lock_guard<std::mutex> lock(ctx().guard_mutex);
    ctx().guarded[p] = bytes;
  }
  return p;
}

void device_free(void* p) noexcept {
  if (!p) return;
  {
    Context& c = ctx();
    std::lock_guard<std::mutex> lock(c.capture_mutex);
    if (c.graph_owned.erase(p)) return;  // graph memory of a graph that is gone or failed
    if (c.capture.active) {
      if (c.capture.allocations.erase(p)) {
        // A graph free. On an invalidated capture the call fails; the memory
        // goes with the failed graph.
        if (cudaFreeAsync(p, c.stream) != cudaSuccess) (void)cudaGetLastError();
      } else {
        c.capture.deferred_frees.push_back(p);  // the graph may still read it
      }
      return;
    }
  }
  size_t guarded_bytes = 0;
  bool guarded = false;
  {
    std::lock_guard<std::mutex> lock(ctx().guard_mutex);
    auto it = ctx().guarded.find(p);
    if (it != ctx().guarded.end()) {
      guarded = true;
      guarded_bytes = it->second;
      ctx().guarded.erase(it);
    }
  }
  if (guarded) {
    bool intact = false;
    try {
      intact = guards_intact(p, guarded_bytes);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "recon: checking guard bytes failed: %s\n", e.what());
    }
    if (!intact) {
      std::fprintf(stderr, "recon: guard bytes around a device allocation of %zu bytes were overwritten\n",
                   guarded_bytes);
      std::lock_guard<std::mutex> lock(ctx().guard_mutex);
      ++ctx().guard_violations;
    }
    p = static_cast<unsigned char*>(p) - kGuardBytes;
  }
  cudaError_t err = cudaFreeAsync(p, ctx().stream);
  if (err != cudaSuccess) std::fprintf(stderr, "recon: cudaFreeAsync failed: %s\n", cudaGetErrorString(err));
}

void copy_h2d(void* dst, const void* src, size_t bytes) {
  check_no_host_copy("copy_h2d", bytes);
  RECON_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx().stream));
}
void copy_d2h(void* dst, const void* src, size_t bytes) {
  check_no_host_copy("copy_d2h", bytes);
  RECON_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx().stream));
}
void copy_d2d(void* dst, const void* src, size_t bytes) {
  RECON_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx().stream));
}
void memset_zero(void* dst, size_t bytes) { RECON_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, ctx().stream)); }
void synchronize() {
  RECON_CHECK(!ctx().capture_active.load(),
              "cuda::synchronize: the host waits for the runtime stream while it captures a CUDA graph (e.g. "
              "Tensor::item(), to(cpu) or a timing inside a captured step); the graph's work runs only when it is "
              "launched: read results through CudaGraphStep's outputs, or turn CUDA graphs off");
  RECON_CUDA_CHECK(cudaStreamSynchronize(ctx().stream));
}

void check_launch(const char* kernel_name) {
  RECON_CHECK(!(ctx().sync_each_launch && ctx().capture_active.load()),
              "CUDA kernel " << kernel_name << ": RECON_SYNC=1 (synchronise after each launch) cannot run while the "
                             << "runtime stream captures a CUDA graph; unset it or turn CUDA graphs off");
  cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess && ctx().sync_each_launch) err = cudaStreamSynchronize(ctx().stream);
  RECON_CHECK(err == cudaSuccess, "CUDA kernel " << kernel_name << " failed: " << cudaGetErrorString(err));
}

void set_sync_each_launch(bool on) { ctx().sync_each_launch = on; }
bool sync_each_launch() { return ctx().sync_each_launch; }

// ---- cuBLAS -------------------------------------------------------------------------------------

void* cublas_handle() {
  Context& c = ctx();
  std::lock_guard<std::mutex> lock(c.cublas_mutex);
  CublasHandle& h = c.cublas[c.stream];
  if (!h.handle) {
    cublasHandle_t created = nullptr;
    RECON_CUBLAS_CHECK(cublasCreate(&created));
    RECON_CUBLAS_CHECK(cublasSetStream(created, c.stream));
    RECON_CUBLAS_CHECK(cublasSetMathMode(created, CUBLAS_DEFAULT_MATH));
    // Outside the pool and its guard bytes: the workspace lives as long as the handle.
    void* workspace = nullptr;
    cudaError_t err = cudaMalloc(&workspace, kCublasWorkspaceBytes);
    if (err != cudaSuccess) {
      (void)cublasDestroy(created);
      RECON_CUDA_CHECK(err);
    }
    RECON_CUBLAS_CHECK(cublasSetWorkspace(created, workspace, kCublasWorkspaceBytes));
    h.handle = created;
    h.math = CUBLAS_DEFAULT_MATH;
    h.workspace = workspace;
  }
  const cublasMath_t want = c.tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH;
  if (h.math != want) {
    RECON_CUBLAS_CHECK(cublasSetMathMode(h.handle, want));
    h.math = want;
  }
  return h.handle;
}

void set_tf32(bool on) { ctx().tf32 = on; }
bool tf32_enabled() { return ctx().tf32; }

// ---- graph capture ----------------------------------------------------------------------------------

void capture_begin() {
  Context& c = ctx();
  RECON_CHECK(!c.sync_each_launch, "CUDA graph capture: RECON_SYNC=1 (synchronise after each launch) is on; a "
                                   "capture cannot synchronise: unset it or turn CUDA graphs off");
  RECON_CHECK(!c.guards, "CUDA graph capture: guard checks (RECON_GUARD=1 / set_guard_checks) are on; they read "
                         "the guards back synchronously: turn them off or turn CUDA graphs off");
  (void)cublas_handle();  // the handle and its workspace exist before the graph
  std::lock_guard<std::mutex> lock(c.capture_mutex);
  RECON_CHECK(!c.capture.active, "CUDA graph capture: the runtime stream is already being captured");
  RECON_CUDA_CHECK(cudaStreamBeginCapture(c.stream, cudaStreamCaptureModeThreadLocal));
  c.capture = CaptureState{};
  c.capture.active = true;
  c.capture.thread = std::this_thread::get_id();
  c.capture_active = true;
  t_capturing = true;
}

CaptureResult capture_end() noexcept {
  Context& c = ctx();
  CaptureResult r;
  std::vector<void*> pinned;
  {
    std::lock_guard<std::mutex> lock(c.capture_mutex);
    if (!c.capture.active) {
      r.error = (int)cudaErrorIllegalState;
      return r;
    }
    cudaGraph_t graph = nullptr;
    const cudaError_t err = cudaStreamEndCapture(c.stream, &graph);
    if (err != cudaSuccess) (void)cudaGetLastError();
    r.graph = graph;
    r.error = (int)err;
    r.deferred_frees = std::move(c.capture.deferred_frees);
    for (const auto& [p, bytes] : c.capture.allocations) {
      ++r.escaped;
      r.escaped_bytes += bytes;
      c.graph_owned.insert(p);
    }
    pinned = std::move(c.capture.deferred_pinned);
    c.capture = CaptureState{};
    c.capture_active = false;
    t_capturing = false;
  }
  for (void* p : pinned) pinned_free(p);
  return r;
}

void release_deferred(std::vector<void*>& ptrs) noexcept {
  for (void* p : ptrs) device_free(p);
  ptrs.clear();
}

// ---- pinned host memory ---------------------------------------------------------------------------

void* pinned_alloc(size_t bytes) {
  RECON_CHECK(!t_capturing, "pinned_alloc(" << bytes << " bytes): page-locked host memory cannot be allocated "
                                               "while the runtime stream captures a CUDA graph (cudaMallocHost "
                                               "synchronises); allocate it before the capture");
  void* p = nullptr;
  cudaError_t err = cudaMallocHost(&p, bytes);
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    RECON_FAIL("could not allocate " << bytes << " bytes of page-locked host memory");
  }
  RECON_CUDA_CHECK(err);
  return p;
}

void pinned_free(void* p) noexcept {
  if (t_capturing) {  // cudaFreeHost would synchronise: after the capture
    std::lock_guard<std::mutex> lock(ctx().capture_mutex);
    ctx().capture.deferred_pinned.push_back(p);
    return;
  }
  cudaError_t err = cudaFreeHost(p);
  if (err != cudaSuccess) std::fprintf(stderr, "recon: cudaFreeHost failed: %s\n", cudaGetErrorString(err));
}

PinnedBuffer::PinnedBuffer(size_t bytes) : data_(pinned_alloc(bytes)), bytes_(bytes) {}

void PinnedBuffer::release() noexcept {
  if (!data_) return;
  pinned_free(data_);
  data_ = nullptr;
  bytes_ = 0;
}

}  // namespace recon::cuda

namespace recon::detail {
void cublas_fail(const char* file, int line, const char* expr, int status, const char* what) {
  const char* slash = std::strrchr(file, '/');
  std::ostringstream os;
  os << "cuBLAS error " << status << " (" << what << ") in `" << expr << "` [" << (slash ? slash + 1 : file) << ":"
     << line << "]";
  throw Error(os.str());
}
}  // namespace recon::detail

#else  // no CUDA: pinned memory and captures cannot exist

namespace recon::cuda {
PinnedBuffer::PinnedBuffer(size_t bytes) {
  RECON_FAIL("PinnedBuffer(" << bytes << " bytes): ReconAD was built without CUDA");
}
void PinnedBuffer::release() noexcept {}
bool capturing() { return false; }
void capture_begin() { RECON_FAIL("CUDA graph capture: ReconAD was built without CUDA"); }
CaptureResult capture_end() noexcept { return CaptureResult{}; }
void release_deferred(std::vector<void*>& ptrs) noexcept { ptrs.clear(); }
}  // namespace recon::cuda

#endif

namespace recon::cuda {
PinnedBuffer::~PinnedBuffer() { release(); }
PinnedBuffer::PinnedBuffer(PinnedBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}
}  // namespace recon::cuda
