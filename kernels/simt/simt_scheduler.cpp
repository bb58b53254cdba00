// The SIMT emulator's scheduler: runs a grid's blocks on a pool of OS
// threads, each block's threads as fibers on one OS thread, with the block
// barrier, the warp collectives, the seeded shuffle of thread order, and the
// errors that name kernel, block and thread.
//
// A block runs in passes. A pass resumes every ready thread once, in
// ascending order or shuffled by the seed; a thread runs until it reaches a
// barrier or a collective (it then waits) or returns (it exits). A barrier
// that every thread of the block has reached, or a collective that every
// live lane of its mask has reached, makes its threads ready for the next
// pass. A pass that finds nothing ready while threads still wait is a
// deadlock on a GPU; here it is reported.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/context/fiber.hpp>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "kernels/simt/simt.hpp"
#include "kernels/simt/simt_internal.hpp"
#include "runtime/error.hpp"

// AddressSanitizer must be told about every switch between the OS thread's
// stack and a fiber's, or it takes fiber frames for overflows of the thread's
// stack (false stack-buffer reports, wrong unpoisoning on throw).
#if defined(__SANITIZE_ADDRESS__)
#define RECON_SIMT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RECON_SIMT_ASAN 1
#endif
#endif
#ifdef RECON_SIMT_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

namespace recon::simt {

namespace {

// Before a switch: the destination stack is [bottom, bottom + size); a null
// `fake_stack` means the current fiber ends with this switch.
inline void asan_start_switch([[maybe_unused]] void** fake_stack, [[maybe_unused]] const void* bottom,
                              [[maybe_unused]] size_t size) {
#ifdef RECON_SIMT_ASAN
  __sanitizer_start_switch_fiber(fake_stack, bottom, size);
#endif
}
// After a switch, on the new stack: reports the stack that was left.
inline void asan_finish_switch([[maybe_unused]] void* fake_stack, [[maybe_unused]] const void** old_bottom,
                               [[maybe_unused]] size_t* old_size) {
#ifdef RECON_SIMT_ASAN
  __sanitizer_finish_switch_fiber(fake_stack, old_bottom, old_size);
#endif
}

namespace ctx = boost::context;

constexpr size_t kDefaultStackKiB = 64;  // per thread; kernels keep little on the stack
constexpr int kWarpSize = 32;
constexpr uint64_t kPoison = ~0ull;  // a shuffle from a lane that is not there: NaN / -1

// ---- fiber stacks: mmap'd with a guard page, pooled per OS thread ------------------
class StackPool {
 public:
  ~StackPool() {
    for (void* base : free_) munmap(base, mapping_bytes());
  }
  ctx::stack_context allocate() {
    void* base = nullptr;
    if (!free_.empty()) {
      base = free_.back();
      free_.pop_back();
    } else {
      base = mmap(nullptr, mapping_bytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (base == MAP_FAILED) throw std::bad_alloc();
      mprotect(base, page_bytes(), PROT_NONE);  // an overflow faults instead of corrupting
    }
    ctx::stack_context sc;
    sc.size = stack_bytes();
    sc.sp = static_cast<char*>(base) + mapping_bytes();
    return sc;
  }
  void deallocate(ctx::stack_context& sc) noexcept {
    free_.push_back(static_cast<char*>(sc.sp) - mapping_bytes());
  }

 private:
  static size_t page_bytes() {
    static const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return page;
  }
  // RECON_SIMT_STACK_KIB for kernels with large local arrays (an overflow
  // hits the guard page: SIGSEGV).
  static size_t stack_bytes() {
    static const size_t bytes = [] {
      const char* s = std::getenv("RECON_SIMT_STACK_KIB");
      size_t kib = s && std::atoi(s) > 0 ? (size_t)std::atoi(s) : kDefaultStackKiB;
      kib = std::max<size_t>(kib, 16);
      return (kib * 1024 + page_bytes() - 1) / page_bytes() * page_bytes();
    }();
    return bytes;
  }
  static size_t mapping_bytes() { return stack_bytes() + page_bytes(); }
  std::vector<void*> free_;
};
thread_local StackPool t_stack_pool;

// boost::context's StackAllocator concept over the OS thread's pool; tells
// the owner where the stack lies (for ASan's fiber annotations).
struct PooledStack {
  const void** bottom;
  size_t* size;
  ctx::stack_context allocate() {
    ctx::stack_context sc = t_stack_pool.allocate();
    *bottom = static_cast<char*>(sc.sp) - sc.size;
    *size = sc.size;
    return sc;
  }
  void deallocate(ctx::stack_context& sc) noexcept { t_stack_pool.deallocate(sc); }
};

// ---- per-thread and per-block state -------------------------------------------------
enum class State : uint8_t { kReady, kAtBarrier, kAtWarp, kFailed, kExited };

struct WarpWait {
  WarpOp op = WarpOp::kSyncWarp;
  unsigned mask = 0;
  uint64_t value = 0;
  int operand = 0;
  int width = kWarpSize;
  std::source_location where;
};

struct Thread {
  ctx::fiber fiber;  // the suspended thread, held by the scheduler
  ctx::fiber sched;  // the scheduler, held by the running thread
  // For ASan's fiber annotations: this fiber's stack and the scheduler's.
  const void* stack_bottom = nullptr;
  size_t stack_size = 0;
  const void* sched_bottom = nullptr;
  size_t sched_size = 0;
  void* fake_stack = nullptr;
  uint3 idx{0, 0, 0};
  int linear = 0;
  State state = State::kReady;
  WarpWait warp;
  uint64_t result = 0;
};

// splitmix64: a small, well-mixed generator for the shuffled order.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
};

struct Grid;

struct Block {
  const Grid* grid = nullptr;
  uint3 idx{0, 0, 0};
  int nthreads = 0;
  std::vector<Thread> threads;
  std::vector<int> ready, pass;
  // Per warp: lanes waiting at a collective, and lanes exited or absent (a
  // last, partial warp): a collective is only examined once its mask is covered.
  std::vector<unsigned> warp_waiting, warp_gone;
  int exited = 0;
  // The block barrier now being gathered, and the vote of the last one released.
  int at_barrier = 0;
  int barrier_true = 0;
  int barrier_first = -1;
  std::source_location barrier_where;
  int released_true = 0;
  std::string error;  // set once: the block stops at the end of the current resume
};

struct Grid {
  const LaunchConfig* config = nullptr;
  void (*run_thread)(const void*) = nullptr;
  const void* payload = nullptr;
  uint64_t blocks = 0;
  uint64_t launch_id = 0;
  std::optional<uint64_t> seed;
  std::atomic<uint64_t> next_block{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::string error;

  void fail(std::string message) {
    std::lock_guard<std::mutex> lock(error_mutex);
    if (!failed.exchange(true)) error = std::move(message);
  }
};

thread_local Block* t_block = nullptr;    // the block this OS thread is running
thread_local Thread* t_thread = nullptr;  // the thread (fiber) now running on it

// ---- messages ------------------------------------------------------------------------
std::string coords(uint3 v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "(%u,%u,%u)", v.x, v.y, v.z);
  return buf;
}

std::string site(const std::source_location& where) {
  const char* file = where.file_name();
  const char* slash = std::strrchr(file, '/');
  return std::string(slash ? slash + 1 : file) + ":" + std::to_string(where.line());
}

bool same_site(const std::source_location& a, const std::source_location& b) {
  return a.line() == b.line() && a.column() == b.column() &&
         (a.file_name() == b.file_name() || std::strcmp(a.file_name(), b.file_name()) == 0);
}

const char* op_name(WarpOp op) {
  switch (op) {
    case WarpOp::kSyncWarp: return "__syncwarp";
    case WarpOp::kShfl: return "__shfl_sync";
    case WarpOp::kShflUp: return "__shfl_up_sync";
    case WarpOp::kShflDown: return "__shfl_down_sync";
    case WarpOp::kShflXor: return "__shfl_xor_sync";
    case WarpOp::kBallot: return "__ballot_sync";
    case WarpOp::kAny: return "__any_sync";
    case WarpOp::kAll: return "__all_sync";
  }
  return "?";
}

std::string hex(unsigned mask) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", mask);
  return buf;
}

std::string prefix(const Block& b) {
  return "SIMT: kernel '" + std::string(b.grid->config->kernel_name) + "', block " + coords(b.idx) + ": ";
}

std::string thread_name(const Thread& t) { return "thread " + coords(t.idx); }

std::string collective_name(const WarpWait& w) {
  return std::string(w.op == WarpOp::kSyncWarp ? "__syncwarp" : op_name(w.op)) + "(mask " + hex(w.mask) + ") at " +
         site(w.where);
}

// Where a thread that is not taking part in something is.
std::string whereabouts(const Block& b, const Thread& t) {
  switch (t.state) {
    case State::kExited: return "exited";
    case State::kAtBarrier: return "is waiting at __syncthreads at " + site(b.barrier_where);
    case State::kAtWarp: return "is waiting at " + collective_name(t.warp);
    default: return "has not arrived";
  }
}

// ---- fiber switching --------------------------------------------------------------------
// The running thread gives control back to the scheduler until it is resumed.
void suspend(Thread& t) {
  asan_start_switch(&t.fake_stack, t.sched_bottom, t.sched_size);
  // Also when the resume throws forced_unwind (the scheduler unwinds us).
  struct Finish {
    Thread& t;
    ~Finish() { asan_finish_switch(t.fake_stack, nullptr, nullptr); }
  } finish{t};
  t.sched = std::move(t.sched).resume();
}

// A failure found by the running thread: the block stops, and this thread is
// never resumed (the scheduler unwinds its stack).
[[noreturn]] void fail_here(Block& b, Thread& t, const std::string& message) {
  if (b.error.empty()) b.error = prefix(b) + message;
  t.state = State::kFailed;
  suspend(t);
  std::abort();  // unreachable: a failed thread is only unwound
}

Thread& current_thread(const char* what) {
  if (!t_thread) {
    throw Error(std::string("SIMT: ") + what + " called outside a kernel launched by RECON_LAUNCH");
  }
  return *t_thread;
}

void make_ready(Block& b, Thread& t) {
  t.state = State::kReady;
  b.ready.push_back(t.linear);
}

// ---- warp collectives ------------------------------------------------------------------
// Releases the collective that lane `lane` of `warp` waits at if every live
// lane of its mask has arrived at the same one. True if released.
bool try_complete_warp(Block& b, int warp, int lane) {
  const WarpWait& w = b.threads[warp * kWarpSize + lane].warp;
  if ((w.mask & ~(b.warp_waiting[warp] | b.warp_gone[warp])) != 0) return false;  // lanes still to come
  unsigned present = 0;  // lanes of the mask that are here, alive
  for (int l = 0; l < kWarpSize; ++l) {
    if (!(w.mask >> l & 1u)) continue;
    int id = warp * kWarpSize + l;
    if (id >= b.nthreads) continue;  // no such thread: it counts as exited
    const Thread& o = b.threads[id];
    if (o.state == State::kExited) continue;
    if (o.state != State::kAtWarp || o.warp.op != w.op || o.warp.mask != w.mask || o.warp.width != w.width)
      return false;
    present |= 1u << l;
  }
  const WarpOp op = w.op;
  uint64_t ballot = 0;
  for (int l = 0; l < kWarpSize; ++l)
    if (present >> l & 1u) ballot |= (b.threads[warp * kWarpSize + l].warp.value != 0 ? 1ull : 0ull) << l;
  for (int l = 0; l < kWarpSize; ++l) {
    if (!(present >> l & 1u)) continue;
    Thread& t = b.threads[warp * kWarpSize + l];
    const int width = t.warp.width;
    const int segment = l & ~(width - 1);  // first lane of this lane's width-group
    int src = l;
    switch (op) {
      case WarpOp::kShfl: src = segment + (t.warp.operand & (width - 1)); break;
      case WarpOp::kShflUp: {  // lanes below the group's start keep their own value
        const int delta = t.warp.operand;
        src = delta >= 0 && l - segment >= delta ? l - delta : l;
        break;
      }
      case WarpOp::kShflDown: {  // lanes past the group's end keep their own value
        const int delta = t.warp.operand;
        src = delta >= 0 && l - segment + delta < width ? l + delta : l;
        break;
      }
      case WarpOp::kShflXor: {
        int x = l ^ t.warp.operand;
        src = x < segment + width ? x : l;  // later groups are out of reach
        break;
      }
      default: break;
    }
    switch (op) {
      case WarpOp::kSyncWarp: t.result = 0; break;
      case WarpOp::kBallot: t.result = ballot; break;
      case WarpOp::kAny: t.result = ballot != 0; break;
      case WarpOp::kAll: t.result = ballot == present; break;
      default:
        t.result = (src >= 0 && src < kWarpSize && (present >> src & 1u))
                       ? b.threads[warp * kWarpSize + src].warp.value
                       : kPoison;  // the source lane is not taking part: undefined on a GPU
    }
  }
  for (int l = 0; l < kWarpSize; ++l)
    if (present >> l & 1u) make_ready(b, b.threads[warp * kWarpSize + l]);
  b.warp_waiting[warp] &= ~present;
  return true;
}

// After a lane exits, collectives that waited only for it may complete.
void recheck_warp(Block& b, int warp) {
  if (b.warp_waiting[warp] == 0) return;
  for (int l = 0; l < kWarpSize; ++l) {
    int id = warp * kWarpSize + l;
    if (id < b.nthreads && b.threads[id].state == State::kAtWarp) try_complete_warp(b, warp, l);
  }
}

// ---- running a block ---------------------------------------------------------------------
void thread_body(Block& b, Thread& t) {
  try {
    b.grid->run_thread(b.grid->payload);
  } catch (const ctx::detail::forced_unwind&) {
    throw;  // the scheduler is unwinding this thread's stack
  } catch (const std::exception& e) {
    if (b.error.empty()) b.error = prefix(b) + thread_name(t) + " threw: " + e.what();
  } catch (...) {
    if (b.error.empty()) b.error = prefix(b) + thread_name(t) + " threw an unknown exception";
  }
  t.state = State::kExited;
  ++b.exited;
  b.warp_gone[t.linear / kWarpSize] |= 1u << (t.linear % kWarpSize);
  recheck_warp(b, t.linear / kWarpSize);
}

void resume(Block& b, Thread& t) {
  t_thread = &t;
  t_thread_idx = t.idx;
  if (!t.fiber) {
    t.fiber = ctx::fiber(std::allocator_arg, PooledStack{&t.stack_bottom, &t.stack_size},
                         [&b, &t](ctx::fiber&& sched) {
      asan_finish_switch(nullptr, &t.sched_bottom, &t.sched_size);
      t.sched = std::move(sched);
      try {
        thread_body(b, t);
      } catch (...) {  // forced_unwind: the last switch away from this fiber
        asan_start_switch(nullptr, t.sched_bottom, t.sched_size);
        throw;
      }
      asan_start_switch(nullptr, t.sched_bottom, t.sched_size);
      return std::move(t.sched);
    });
  }
  void* fake_stack = nullptr;
  asan_start_switch(&fake_stack, t.stack_bottom, t.stack_size);
  t.fiber = std::move(t.fiber).resume();
  asan_finish_switch(fake_stack, nullptr, nullptr);
  t_thread = nullptr;
}

// The message for a block in which threads wait and none can go on.
std::string deadlock_message(const Block& b) {
  const Thread* first = nullptr;
  for (const Thread& t : b.threads)
    if (t.state != State::kExited) {
      first = &t;
      break;
    }
  if (first->state == State::kAtWarp) {
    const int warp = first->linear / kWarpSize;
    for (int l = 0; l < kWarpSize; ++l) {
      int id = warp * kWarpSize + l;
      if (!(first->warp.mask >> l & 1u) || id >= b.nthreads) continue;
      const Thread& o = b.threads[id];
      bool matches = o.state == State::kAtWarp && o.warp.op == first->warp.op && o.warp.mask == first->warp.mask &&
                     o.warp.width == first->warp.width;
      if (o.state == State::kExited || matches) continue;
      return prefix(b) + thread_name(*first) + " waits at " + collective_name(first->warp) + ", which cannot complete: " +
             thread_name(o) + " (lane " + std::to_string(l) + " of warp " + std::to_string(warp) + ", named in the mask) " +
             whereabouts(b, o);
    }
  } else if (first->state == State::kAtBarrier) {
    for (const Thread& o : b.threads) {
      if (o.state == State::kAtBarrier) continue;
      return prefix(b) + "__syncthreads at " + site(b.barrier_where) + " is reached by " + std::to_string(b.at_barrier) +
             " of " + std::to_string(b.nthreads) + " threads; " + thread_name(o) + " " +
             (o.state == State::kExited ? "exited without reaching it" : whereabouts(b, o));
    }
  }
  return prefix(b) + thread_name(*first) + " cannot go on (" + whereabouts(b, *first) + ")";
}

// Stops a failed block: unwinds the stacks of the threads that are still suspended.
void abandon(Block& b) {
  for (Thread& t : b.threads) {
    t_thread = &t;
    if (!t.fiber) continue;
    void* fake_stack = nullptr;
    asan_start_switch(&fake_stack, t.stack_bottom, t.stack_size);
    t.fiber = ctx::fiber();  // ~fiber unwinds the suspended stack
    asan_finish_switch(fake_stack, nullptr, nullptr);
  }
  t_thread = nullptr;
}

void run_block(Block& b, const Grid& g, uint64_t linear_block) {
  const dim3 grid = g.config->grid, block = g.config->block;
  b.grid = &g;
  b.idx = uint3{(unsigned)(linear_block % grid.x), (unsigned)(linear_block / grid.x % grid.y),
                (unsigned)(linear_block / ((uint64_t)grid.x * grid.y))};
  b.nthreads = (int)(block.x * block.y * block.z);
  b.threads.resize(b.nthreads);
  b.ready.clear();
  for (int i = 0; i < b.nthreads; ++i) {
    Thread& t = b.threads[i];
    t.idx = uint3{i % block.x, i / block.x % block.y, i / (block.x * block.y)};
    t.linear = i;
    t.state = State::kReady;
    b.ready.push_back(i);
  }
  const int warps = (b.nthreads + kWarpSize - 1) / kWarpSize;
  b.warp_waiting.assign(warps, 0u);
  b.warp_gone.assign(warps, 0u);
  if (const int tail = b.nthreads % kWarpSize) b.warp_gone[warps - 1] = ~0u << tail;
  b.exited = b.at_barrier = b.barrier_true = b.released_true = 0;
  b.barrier_first = -1;
  b.error.clear();
  t_block_idx = b.idx;
  std::optional<Rng> rng;
  if (g.seed) rng = Rng{*g.seed ^ (g.launch_id * 0xD1B54A32D192ED03ull) ^ (linear_block * 0x8CB92BA72F3D8DD7ull)};

  while (b.error.empty()) {
    if (b.ready.empty()) {
      if (b.exited != b.nthreads) b.error = deadlock_message(b);
      break;
    }
    std::swap(b.pass, b.ready);
    b.ready.clear();
    if (rng)
      for (size_t i = b.pass.size(); i > 1; --i) std::swap(b.pass[i - 1], b.pass[rng->next() % i]);
    for (int id : b.pass) {
      resume(b, b.threads[id]);
      if (!b.error.empty()) break;
    }
  }
  if (!b.error.empty()) abandon(b);
}

// The dynamic shared memory of the block an OS thread runs, poisoned per block.
struct DynamicShared {
  struct Free {
    void operator()(unsigned char* p) const { ::operator delete(p, std::align_val_t(256)); }
  };
  std::unique_ptr<unsigned char, Free> data;
  size_t capacity = 0;
  unsigned char* get(size_t bytes) {
    if (bytes > capacity) {
      data.reset(static_cast<unsigned char*>(::operator new(bytes, std::align_val_t(256))));
      capacity = bytes;
    }
    return data.get();
  }
};
thread_local DynamicShared t_dynamic_shared_buffer;

// One OS thread's share of a grid: blocks taken in turn until none are left.
void run_blocks(Grid& g) {
  thread_local Block block;
  const size_t shared_bytes = g.config->dynamic_shared_bytes;
  t_block_dim = g.config->block;
  t_grid_dim = g.config->grid;
  t_block = &block;
  try {
    unsigned char* shared = shared_bytes ? t_dynamic_shared_buffer.get(shared_bytes) : nullptr;
    t_dynamic_shared = shared;
    for (;;) {
      uint64_t i = g.next_block.fetch_add(1);
      if (i >= g.blocks || g.failed.load()) break;
      if (shared) std::memset(shared, 0xFF, shared_bytes);
      run_block(block, g, i);
      if (!block.error.empty()) g.fail(block.error);
    }
  } catch (const std::exception& e) {
    g.fail(std::string("SIMT: kernel '") + g.config->kernel_name + "': " + e.what());
  }
  t_block = nullptr;
  t_dynamic_shared = nullptr;
}

// ---- the OS threads that run blocks ------------------------------------------------------------
class WorkerPool {
 public:
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& w : workers_) w.join();
  }

  // Runs `job` on `n` OS threads (the caller and n - 1 workers); returns when all are done.
  void run(int n, const std::function<void()>& job) {
    std::lock_guard<std::mutex> one_at_a_time(run_mutex_);
    while ((int)workers_.size() < n - 1) {
      int index = (int)workers_.size();
      workers_.emplace_back([this, index] { loop(index); });
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &job;
      wanted_ = n - 1;
      pending_ = n - 1;
      ++generation_;
    }
    wake_.notify_all();
    job();
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void loop(int index) {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      if (index >= wanted_) continue;
      const std::function<void()>* job = job_;
      lock.unlock();
      (*job)();
      lock.lock();
      if (--pending_ == 0) done_.notify_all();
    }
  }

  std::mutex run_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  const std::function<void()>* job_ = nullptr;
  int wanted_ = 0;
  int pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

WorkerPool& pool() {
  static WorkerPool p;
  return p;
}

// ---- settings ------------------------------------------------------------------------------------
std::mutex g_settings_mutex;
bool g_settings_read = false;
std::optional<uint64_t> g_seed;
int g_threads = 0;
std::atomic<uint64_t> g_launches{0};

int default_threads() {
  if (const char* s = std::getenv("RECON_SIMT_THREADS"); s && std::atoi(s) > 0) return std::atoi(s);
  int hw = (int)std::thread::hardware_concurrency();
  return std::clamp(hw, 1, 8);
}

// Reads RECON_SIMT_SHUFFLE and RECON_SIMT_THREADS once; a malformed seed
// throws (at every call, until it is fixed).
void read_settings_locked() {
  if (g_settings_read) return;
  std::optional<uint64_t> seed;
  if (const char* s = std::getenv("RECON_SIMT_SHUFFLE"); s && *s) {
    char* end = nullptr;
    unsigned long long v = std::strtoull(s, &end, 0);
    if (*end != '\0') throw Error(std::string("RECON_SIMT_SHUFFLE must be an integer seed, got '") + s + "'");
    seed = v;
  }
  g_seed = seed;
  g_threads = default_threads();
  g_settings_read = true;
}

}  // namespace

void set_shuffle_seed(std::optional<uint64_t> seed) {
  std::lock_guard<std::mutex> lock(g_settings_mutex);
  read_settings_locked();
  g_seed = seed;
}

std::optional<uint64_t> shuffle_seed() {
  std::lock_guard<std::mutex> lock(g_settings_mutex);
  read_settings_locked();
  return g_seed;
}

void set_worker_threads(int n) {
  std::lock_guard<std::mutex> lock(g_settings_mutex);
  read_settings_locked();
  g_threads = n > 0 ? n : default_threads();
}

int worker_threads() {
  std::lock_guard<std::mutex> lock(g_settings_mutex);
  read_settings_locked();
  return g_threads;
}

// ---- device-side entry points ------------------------------------------------------------------
int block_barrier(BlockVote vote, int predicate, const std::source_location& where) {
  Thread& t = current_thread("__syncthreads");
  Block& b = *t_block;
  if (b.at_barrier > 0 && !same_site(where, b.barrier_where)) {
    fail_here(b, t, thread_name(t) + " waits at __syncthreads at " + site(where) + " while " +
                        thread_name(b.threads[b.barrier_first]) + " waits at __syncthreads at " +
                        site(b.barrier_where) + " (a barrier in divergent code)");
  }
  if (b.at_barrier == 0) {
    b.barrier_where = where;
    b.barrier_first = t.linear;
    b.barrier_true = 0;
  }
  ++b.at_barrier;
  b.barrier_true += predicate != 0;
  t.state = State::kAtBarrier;
  if (b.at_barrier == b.nthreads) {
    b.released_true = b.barrier_true;
    b.at_barrier = 0;
    for (Thread& o : b.threads) make_ready(b, o);
  }
  suspend(t);
  switch (vote) {
    case BlockVote::kCount: return b.released_true;
    case BlockVote::kAnd: return b.released_true == b.nthreads;
    case BlockVote::kOr: return b.released_true > 0;
    default: return 0;
  }
}

uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t value, int operand, int width,
                         const std::source_location& where) {
  Thread& t = current_thread(op_name(op));
  Block& b = *t_block;
  const int lane = t.linear % kWarpSize, warp = t.linear / kWarpSize;
  if (!(mask >> lane & 1u)) {
    fail_here(b, t, thread_name(t) + " (lane " + std::to_string(lane) + " of warp " + std::to_string(warp) + ") calls " +
                        op_name(op) + " at " + site(where) + " with mask " + hex(mask) +
                        ", which leaves out its own lane");
  }
  if (width < 1 || width > kWarpSize || (width & (width - 1)) != 0) {
    fail_here(b, t, thread_name(t) + " calls " + op_name(op) + " at " + site(where) + " with width " +
                        std::to_string(width) + " (must be a power of 2 up to 32)");
  }
  t.warp = WarpWait{op, mask, value, operand, width, where};
  t.state = State::kAtWarp;
  b.warp_waiting[warp] |= 1u << lane;
  try_complete_warp(b, warp, lane);
  suspend(t);
  return t.result;
}

void trap(const std::source_location& where) {
  Thread& t = current_thread("__trap");
  fail_here(*t_block, t, thread_name(t) + " called __trap at " + site(where));
}

// ---- the launch -------------------------------------------------------------------------------------
// The error a launch with this configuration returns: an invalid grid or
// block shape, or more dynamic shared memory than the kernel may ask for.
static cudaError_t config_error(const LaunchConfig& config) {
  const dim3 g = config.grid, b = config.block;
  const uint64_t threads = (uint64_t)b.x * b.y * b.z;
  const bool shape_ok = g.x >= 1 && g.y >= 1 && g.z >= 1 && g.x <= 0x7fffffffu && g.y <= 65535 && g.z <= 65535 &&
                        b.x >= 1 && b.y >= 1 && b.z >= 1 && b.x <= 1024 && b.y <= 1024 && b.z <= 64 &&
                        threads <= kMaxThreadsPerBlock;
  if (!shape_ok) return cudaErrorInvalidConfiguration;
  if (config.dynamic_shared_bytes > dynamic_shared_limit(config.kernel)) return cudaErrorInvalidValue;
  return cudaSuccess;
}

static void check_not_on_device(const LaunchConfig& config) {
  if (t_thread) {
    throw Error(std::string("SIMT: kernel '") + config.kernel_name +
                "' launched from device code (dynamic parallelism is not emulated)");
  }
}

void launch(const LaunchConfig& config, void (*run_thread)(const void*), std::shared_ptr<const void> payload) {
  check_not_on_device(config);
  cudaError_t error = cudaSuccess;
  switch (stream_ordering(config.stream, &error)) {
    case Ordering::kRun: run_grid(config, run_thread, payload.get()); return;
    case Ordering::kRecord:
      if (cudaError_t e = config_error(config); e != cudaSuccess) {
        set_last_error(e);
        invalidate_capture(config.stream);
        return;
      }
      capture_work(config.stream, [config, run_thread, payload = std::move(payload)] {
        run_grid(config, run_thread, payload.get());
        return cudaSuccess;
      });
      return;
    case Ordering::kFail: set_last_error(error); return;
  }
}

void run_grid(const LaunchConfig& config, void (*run_thread)(const void*), const void* payload) {
  check_not_on_device(config);
  if (cudaError_t e = config_error(config); e != cudaSuccess) {
    set_last_error(e);
    return;
  }
  log_launched_kernel(config.kernel_name);
  const dim3 g = config.grid;

  Grid grid;
  grid.config = &config;
  grid.run_thread = run_thread;
  grid.payload = payload;
  grid.blocks = (uint64_t)g.x * g.y * g.z;
  grid.launch_id = g_launches.fetch_add(1);
  grid.seed = shuffle_seed();
  const int os_threads = (int)std::min<uint64_t>((uint64_t)worker_threads(), grid.blocks);
  if (os_threads <= 1) {
    run_blocks(grid);
  } else {
    std::function<void()> job = [&grid] { run_blocks(grid); };
    pool().run(os_threads, job);
  }
  if (grid.failed.load()) throw Error(grid.error);
}

}  // namespace recon::simt
