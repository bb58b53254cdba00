// CUDA runtime glue: stream, memory pool, allocation, copies, launch checks,
// the cuBLAS handle and math mode, pinned host buffers. Without CUDA only
// PinnedBuffer exists (and throws).
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
#include <unordered_map>
#include <vector>

#include "runtime/cublas_api.hpp"

namespace recon::cuda {

namespace {
// The byte written around guarded allocations.
constexpr unsigned char kGuardPattern = 0xA5;

// A cuBLAS handle and the math mode last set on it.
struct CublasHandle {
  cublasHandle_t handle = nullptr;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
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
    for (auto& [stream, h] : cublas)
      if (h.handle) (void)cublasDestroy(h.handle);
  }
};
Context& ctx() {
  static Context c;
  return c;
}
}  // namespace

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
  RECON_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx().stream));
}
void copy_d2h(void* dst, const void* src, size_t bytes) {
  RECON_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx().stream));
}
void copy_d2d(void* dst, const void* src, size_t bytes) {
  RECON_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx().stream));
}
void memset_zero(void* dst, size_t bytes) { RECON_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, ctx().stream)); }
void synchronize() { RECON_CUDA_CHECK(cudaStreamSynchronize(ctx().stream)); }

void check_launch(const char* kernel_name) {
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
    h.handle = created;
    h.math = CUBLAS_DEFAULT_MATH;
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

// ---- pinned host memory ---------------------------------------------------------------------------

void* pinned_alloc(size_t bytes) {
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

#else  // no CUDA: pinned memory cannot exist

namespace recon::cuda {
PinnedBuffer::PinnedBuffer(size_t bytes) {
  RECON_FAIL("PinnedBuffer(" << bytes << " bytes): ReconAD was built without CUDA");
}
void PinnedBuffer::release() noexcept {}
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
