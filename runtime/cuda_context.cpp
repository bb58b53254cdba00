// CUDA runtime glue: stream, memory pool, allocation, copies, launch checks.
// Compiled to nothing without CUDA.
#include "runtime/cuda_context.hpp"

#if defined(RECON_WITH_CUDA)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "runtime/error.hpp"

namespace recon::cuda {

namespace {
struct Context {
  cudaStream_t stream = nullptr;
  bool sync_each_launch = false;
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
    const char* s = std::getenv("RECON_SYNC");
    sync_each_launch = s && s[0] == '1';
  }
};
Context& ctx() {
  static Context c;
  return c;
}
}  // namespace

void* stream_handle() { return ctx().stream; }

void* device_alloc(size_t bytes) {
  void* p = nullptr;
  cudaError_t err = cudaMallocAsync(&p, bytes, ctx().stream);
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    RECON_FAIL("CUDA out of memory: could not allocate " << bytes << " bytes ("
               << bytes / (1024.0 * 1024.0) << " MiB); try a smaller --batch-size");
  }
  RECON_CUDA_CHECK(err);
  return p;
}

void device_free(void* p) noexcept {
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

}  // namespace recon::cuda
#endif
