// The device side of the SIMT emulator: what a CUDA kernel source needs to
// compile as C++ and run on the CPU (RECON_CUDA=SIM). Kernel sources include
// it through kernels/cuda/launch.cuh, never directly.
//
// How it runs (details in simt_scheduler.cpp):
// - Each thread of a block is a fiber (boost::context); all fibers of a block
//   run on one OS thread, one at a time, and switch only at a barrier or a
//   warp collective. Several blocks run at once on several OS threads.
// - threadIdx/blockIdx/blockDim/gridDim read thread_local values that the
//   scheduler sets before it resumes a fiber.
// - __shared__ is `static thread_local`: one copy per OS thread, and an OS
//   thread runs one block at a time, so the copy is the block's. Static
//   shared arrays keep what the previous block on that OS thread left (on a
//   GPU they hold garbage); dynamic shared memory (RECON_DYNAMIC_SHARED) is
//   refilled with 0xFF bytes, NaN as floats, at the start of every block.
// - __syncthreads waits for every thread of the block at the same call site;
//   a warp collective waits for every lane of its mask that has not exited.
//   A block that cannot go on is an error naming kernel, block and thread.
#pragma once
#include <math.h>

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <source_location>
#include <tuple>
#include <type_traits>
#include <utility>

#include "kernels/simt/simt_runtime.hpp"

#define __shared__ static thread_local

// ---- built-in variables ---------------------------------------------------------
namespace recon::simt {
inline thread_local uint3 t_thread_idx{0, 0, 0};
inline thread_local uint3 t_block_idx{0, 0, 0};
inline thread_local dim3 t_block_dim{1, 1, 1};
inline thread_local dim3 t_grid_dim{1, 1, 1};
inline thread_local unsigned char* t_dynamic_shared = nullptr;
}  // namespace recon::simt

#define threadIdx (static_cast<const uint3&>(::recon::simt::t_thread_idx))
#define blockIdx (static_cast<const uint3&>(::recon::simt::t_block_idx))
#define blockDim (static_cast<const dim3&>(::recon::simt::t_block_dim))
#define gridDim (static_cast<const dim3&>(::recon::simt::t_grid_dim))
constexpr int warpSize = 32;

// ---- barriers and warp collectives -------------------------------------------------
namespace recon::simt {
enum class WarpOp : uint8_t { kSyncWarp, kShfl, kShflUp, kShflDown, kShflXor, kBallot, kAny, kAll };
enum class BlockVote : uint8_t { kNone, kCount, kAnd, kOr };
// Blocks the calling thread at the block barrier; returns the vote's result.
int block_barrier(BlockVote vote, int predicate, const std::source_location& where);
// Blocks the calling lane until every live lane of `mask` has arrived at the
// same collective; returns this lane's result (raw bits of the value).
uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t value, int operand, int width,
                         const std::source_location& where);
[[noreturn]] void trap(const std::source_location& where);

template <class T>
uint64_t to_bits(T v) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "warp shuffles move values of up to 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  return bits;
}
template <class T>
T from_bits(uint64_t bits) {
  T v;
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}
}  // namespace recon::simt

inline void __syncthreads(std::source_location where = std::source_location::current()) {
  recon::simt::block_barrier(recon::simt::BlockVote::kNone, 0, where);
}
inline int __syncthreads_count(int predicate, std::source_location where = std::source_location::current()) {
  return recon::simt::block_barrier(recon::simt::BlockVote::kCount, predicate, where);
}
inline int __syncthreads_and(int predicate, std::source_location where = std::source_location::current()) {
  return recon::simt::block_barrier(recon::simt::BlockVote::kAnd, predicate, where);
}
inline int __syncthreads_or(int predicate, std::source_location where = std::source_location::current()) {
  return recon::simt::block_barrier(recon::simt::BlockVote::kOr, predicate, where);
}
inline void __syncwarp(unsigned mask = 0xffffffffu, std::source_location where = std::source_location::current()) {
  recon::simt::warp_collective(recon::simt::WarpOp::kSyncWarp, mask, 0, 0, warpSize, where);
}

template <class T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize,
              std::source_location where = std::source_location::current()) {
  using namespace recon::simt;
  return from_bits<T>(warp_collective(WarpOp::kShfl, mask, to_bits(var), src_lane, width, where));
}
template <class T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                 std::source_location where = std::source_location::current()) {
  using namespace recon::simt;
  return from_bits<T>(warp_collective(WarpOp::kShflUp, mask, to_bits(var), (int)delta, width, where));
}
template <class T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                   std::source_location where = std::source_location::current()) {
  using namespace recon::simt;
  return from_bits<T>(warp_collective(WarpOp::kShflDown, mask, to_bits(var), (int)delta, width, where));
}
template <class T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize,
                  std::source_location where = std::source_location::current()) {
  using namespace recon::simt;
  return from_bits<T>(warp_collective(WarpOp::kShflXor, mask, to_bits(var), lane_mask, width, where));
}
inline unsigned __ballot_sync(unsigned mask, int predicate,
                              std::source_location where = std::source_location::current()) {
  using namespace recon::simt;
  return (unsigned)warp_collective(WarpOp::kBallot, mask, predicate != 0, 0, warpSize, where);
}
inline int __any_sync(unsigned mask, int predicate, std::source_location where = std::source_location::current()) {
  using namespace recon::simt;
  return (int)warp_collective(WarpOp::kAny, mask, predicate != 0, 0, warpSize, where);
}
inline int __all_sync(unsigned mask, int predicate, std::source_location where = std::source_location::current()) {
  using namespace recon::simt;
  return (int)warp_collective(WarpOp::kAll, mask, predicate != 0, 0, warpSize, where);
}

inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }
[[noreturn]] inline void __trap(std::source_location where = std::source_location::current()) {
  recon::simt::trap(where);
}

// ---- atomics: real atomics, since blocks run on several OS threads ---------------
namespace recon::simt {
template <class T>
T atomic_update(T* address, auto&& f) {
  std::atomic_ref<T> ref(*address);
  T old = ref.load(std::memory_order_relaxed);
  while (!ref.compare_exchange_weak(old, f(old), std::memory_order_relaxed)) {
  }
  return old;
}
}  // namespace recon::simt

#define RECON_SIMT_ATOMIC_ADD_SUB_(T)                                                                 \
  inline T atomicAdd(T* address, T val) { return std::atomic_ref<T>(*address).fetch_add(val); }     \
  inline T atomicSub(T* address, T val) { return std::atomic_ref<T>(*address).fetch_sub(val); }
RECON_SIMT_ATOMIC_ADD_SUB_(int)
RECON_SIMT_ATOMIC_ADD_SUB_(unsigned int)
RECON_SIMT_ATOMIC_ADD_SUB_(unsigned long long)
#undef RECON_SIMT_ATOMIC_ADD_SUB_
inline float atomicAdd(float* address, float val) { return std::atomic_ref<float>(*address).fetch_add(val); }
inline double atomicAdd(double* address, double val) { return std::atomic_ref<double>(*address).fetch_add(val); }

#define RECON_SIMT_ATOMIC_INTEGER_(T)                                                                 \
  inline T atomicExch(T* address, T val) { return std::atomic_ref<T>(*address).exchange(val); }     \
  inline T atomicMin(T* address, T val) {                                                           \
    return recon::simt::atomic_update(address, [val](T old) { return old < val ? old : val; });     \
  }                                                                                                 \
  inline T atomicMax(T* address, T val) {                                                           \
    return recon::simt::atomic_update(address, [val](T old) { return old > val ? old : val; });     \
  }                                                                                                 \
  inline T atomicAnd(T* address, T val) { return std::atomic_ref<T>(*address).fetch_and(val); }     \
  inline T atomicOr(T* address, T val) { return std::atomic_ref<T>(*address).fetch_or(val); }       \
  inline T atomicXor(T* address, T val) { return std::atomic_ref<T>(*address).fetch_xor(val); }     \
  inline T atomicCAS(T* address, T compare, T val) {                                                \
    std::atomic_ref<T>(*address).compare_exchange_strong(compare, val);                             \
    return compare;                                                                                 \
  }
RECON_SIMT_ATOMIC_INTEGER_(int)
RECON_SIMT_ATOMIC_INTEGER_(unsigned int)
RECON_SIMT_ATOMIC_INTEGER_(unsigned long long)
#undef RECON_SIMT_ATOMIC_INTEGER_
inline long long atomicMin(long long* address, long long val) {
  return recon::simt::atomic_update(address, [val](long long old) { return old < val ? old : val; });
}
inline long long atomicMax(long long* address, long long val) {
  return recon::simt::atomic_update(address, [val](long long old) { return old > val ? old : val; });
}
inline float atomicExch(float* address, float val) { return std::atomic_ref<float>(*address).exchange(val); }
// CUDA's wrapping increment and decrement.
inline unsigned int atomicInc(unsigned int* address, unsigned int limit) {
  return recon::simt::atomic_update(address, [limit](unsigned old) { return old >= limit ? 0u : old + 1; });
}
inline unsigned int atomicDec(unsigned int* address, unsigned int limit) {
  return recon::simt::atomic_update(address,
                                    [limit](unsigned old) { return old == 0 || old > limit ? limit : old - 1; });
}

// ---- loads -----------------------------------------------------------------------
template <class T>
inline T __ldg(const T* p) {
  return *p;
}

// ---- integer and float intrinsics (exact host math: see README on rounding) -------
inline int min(int a, int b) { return a < b ? a : b; }
inline unsigned int min(unsigned int a, unsigned int b) { return a < b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned int max(unsigned int a, unsigned int b) { return a > b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double max(double a, double b) { return fmax(a, b); }

inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __frsqrt_rn(float x) { return 1.0f / sqrtf(x); }
inline float rcbrtf(float x) { return 1.0f / cbrtf(x); }
inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return powf(10.0f, x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __log10f(float x) { return log10f(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline void __sincosf(float x, float* s, float* c) {
  *s = sinf(x);
  *c = cosf(x);
}
inline float __fdividef(float a, float b) { return a / b; }
inline float fdividef(float a, float b) { return a / b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : (x == x ? x : 0.0f)); }
inline int __float2int_rn(float x) { return (int)nearbyintf(x); }
inline int __float2int_rz(float x) { return (int)x; }
inline int __float2int_rd(float x) { return (int)floorf(x); }
inline int __float2int_ru(float x) { return (int)ceilf(x); }
inline unsigned int __float2uint_rn(float x) { return (unsigned int)nearbyintf(x); }
inline float __int2float_rn(int x) { return (float)x; }
inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline unsigned int __float_as_uint(float x) { return std::bit_cast<unsigned int>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline float __uint_as_float(unsigned int x) { return std::bit_cast<float>(x); }
inline int __popc(unsigned int x) { return std::popcount(x); }
inline int __popcll(unsigned long long x) { return std::popcount(x); }
inline int __clz(int x) { return std::countl_zero((unsigned int)x); }
inline int __clzll(long long x) { return std::countl_zero((unsigned long long)x); }
inline int __ffs(int x) { return x == 0 ? 0 : std::countr_zero((unsigned int)x) + 1; }
inline int __ffsll(long long x) { return x == 0 ? 0 : std::countr_zero((unsigned long long)x) + 1; }
inline unsigned int __brev(unsigned int x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0F0F0F0Fu) | ((x & 0x0F0F0F0Fu) << 4);
  x = ((x >> 8) & 0x00FF00FFu) | ((x & 0x00FF00FFu) << 8);
  return (x >> 16) | (x << 16);
}
inline unsigned int __umulhi(unsigned int a, unsigned int b) { return (unsigned int)(((uint64_t)a * b) >> 32); }
inline int __mulhi(int a, int b) { return (int)(((int64_t)a * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}

// ---- launching -------------------------------------------------------------------
namespace recon::simt {

struct LaunchConfig {
  const char* kernel_name;  // as written at the launch site, for messages
  const void* kernel;       // identity, for cudaFuncSetAttribute limits
  dim3 grid;
  dim3 block;
  size_t dynamic_shared_bytes;
  cudaStream_t stream;
};

// Runs every block of the grid; `run_thread(payload)` runs the kernel body
// for the current thread. Throws recon::Error when a block fails (barrier
// divergence, a warp collective that cannot complete, a trap); an invalid
// launch configuration sets cudaGetLastError like a real launch and runs
// nothing.
void run_grid(const LaunchConfig& config, void (*run_thread)(const void* payload), const void* payload);

// A launch as issued: runs the grid now, or, while config.stream captures,
// checks the configuration (an invalid one sets cudaGetLastError and
// invalidates the capture) and records the launch with its payload (the
// copied arguments) for the graph's replays.
void launch(const LaunchConfig& config, void (*run_thread)(const void* payload), std::shared_ptr<const void> payload);

// The emulator's side of RECON_LAUNCH: binds a kernel and a configuration,
// then `(args...)` converts the arguments to the kernel's parameter types
// once, as a real launch copies them, and runs (or records) the grid.
template <class... Params>
class Launch {
 public:
  Launch(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes = 0,
         cudaStream_t stream = nullptr)
      : kernel_(kernel), config_{name, reinterpret_cast<const void*>(kernel), grid, block, shared_bytes, stream} {}

  template <class... Args>
  void operator()(Args&&... args) const {
    static_assert(sizeof...(Args) == sizeof...(Params), "kernel launched with the wrong number of arguments");
    auto payload = std::make_shared<const Payload>(
        Payload{kernel_, std::tuple<std::decay_t<Params>...>(std::forward<Args>(args)...)});
    launch(config_, &run_thread, std::move(payload));
  }

 private:
  struct Payload {
    void (*kernel)(Params...);
    std::tuple<std::decay_t<Params>...> args;
  };
  static void run_thread(const void* p) {
    const Payload& payload = *static_cast<const Payload*>(p);
    std::apply(payload.kernel, payload.args);  // each thread gets its own copies
  }

  void (*kernel_)(Params...);
  LaunchConfig config_;
};

template <class... Params>
Launch(const char*, void (*)(Params...), dim3, dim3, size_t, cudaStream_t) -> Launch<Params...>;

}  // namespace recon::simt
