// Stream capture and CUDA graphs in the SIMT emulator. While a stream
// captures, stream-ordered work issued on it is recorded as a node (a
// closure holding copies of its arguments, as a real launch copies them) in
// issue order; cudaGraphLaunch runs the nodes in that order, through the
// same code that runs eager work, so bounds-checked copies, poisoned memory
// and shuffled thread order apply to replays too.
//
// The rules follow the CUDA Runtime API documentation (cudaStreamBeginCapture,
// cudaThreadExchangeStreamCaptureMode, "Graph memory nodes" in the CUDA C++
// Programming Guide):
// - cudaStreamCaptureModeGlobal / ThreadLocal: "potentially unsafe" calls
//   (cudaMalloc, cudaFree, cudaMallocHost, cudaFreeHost, synchronous copies,
//   cudaDeviceSynchronize) fail with cudaErrorStreamCaptureUnsupported while a
//   global capture runs anywhere, or a thread-local one on the calling thread;
//   Relaxed captures allow them. The failing call invalidates the capture.
// - cudaStreamSynchronize on a capturing stream fails the same way; work on
//   the legacy stream while a capture concerns the thread fails with
//   cudaErrorStreamCaptureImplicit; a copy whose host side is pageable memory
//   cannot be captured (cudaErrorStreamCaptureUnsupported).
// - Once invalidated, work on the stream fails with
//   cudaErrorStreamCaptureInvalidated and cudaStreamEndCapture returns it
//   with a null graph.
// - cudaMallocAsync during a capture is a graph allocation: the memory is
//   allocated at once and keeps its address for the graph's life; each replay
//   re-poisons it (0xFF) where the allocation was recorded, as a fresh
//   allocation would be, and where it is freed (a graph free; on a GPU the
//   graph may hand the memory to a later allocation), so reads of memory the
//   step has not written or has freed show as NaNs. cudaFreeAsync during the
//   capture of memory allocated outside the graph is an error. Graph memory
//   is released when the graph and all its instantiations are destroyed.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <vector>

#include "kernels/simt/simt_internal.hpp"

namespace recon::simt {

// The work one capture recorded and the graph memory it owns.
struct GraphBody {
  std::vector<std::function<cudaError_t()>> nodes;
  std::vector<void*> allocations;  // graph memory, in allocation order
  std::set<void*> freed;           // graph allocations freed inside the graph
  ~GraphBody();
};

namespace {

constexpr unsigned char kPoisonByte = 0xFF;  // as a fresh allocation (simt_runtime.cpp)

struct CaptureRegistry {
  std::mutex mutex;
  std::vector<cudaStream_t> capturing;     // streams with a capture in progress
  std::map<const void*, size_t> graph_memory;  // address -> bytes, owned by live graph bodies
};
CaptureRegistry& captures() {  // never destroyed, like the device registry (simt_runtime.cpp)
  static CaptureRegistry* r = new CaptureRegistry();
  return *r;
}
// Streams capturing: lets eager work skip the registry's mutex.
std::atomic<int> g_active{0};
std::atomic<int64_t> g_graph_launches{0};

// True when the capture on `s` forbids unsafe calls from this thread.
bool concerns_this_thread(const CUstream_st& s) {
  return s.capture_mode == cudaStreamCaptureModeGlobal ||
         (s.capture_mode == cudaStreamCaptureModeThreadLocal && s.capture_thread == std::this_thread::get_id());
}

}  // namespace

GraphBody::~GraphBody() {
  {
    CaptureRegistry& r = captures();
    std::lock_guard<std::mutex> lock(r.mutex);
    for (void* p : allocations) r.graph_memory.erase(p);
  }
  for (void* p : allocations) (void)device_free(p);
}

Ordering stream_ordering(cudaStream_t stream, cudaError_t* error) {
  if (g_active.load(std::memory_order_acquire) == 0) return Ordering::kRun;
  CaptureRegistry& r = captures();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (stream) {
    switch (stream->capture_status) {
      case cudaStreamCaptureStatusNone: return Ordering::kRun;
      case cudaStreamCaptureStatusActive: return Ordering::kRecord;
      case cudaStreamCaptureStatusInvalidated: *error = cudaErrorStreamCaptureInvalidated; return Ordering::kFail;
    }
  }
  // The legacy stream waits for every blocking stream: work on it while a
  // capture concerns this thread would join the capture implicitly.
  bool failed = false;
  for (cudaStream_t s : r.capturing)
    if (concerns_this_thread(*s)) {
      s->capture_status = cudaStreamCaptureStatusInvalidated;
      failed = true;
    }
  if (!failed) return Ordering::kRun;
  *error = cudaErrorStreamCaptureImplicit;
  return Ordering::kFail;
}

void capture_work(cudaStream_t stream, std::function<cudaError_t()> work) {
  CaptureRegistry& r = captures();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (stream && stream->capture_status == cudaStreamCaptureStatusActive)
    stream->capture->nodes.push_back(std::move(work));
}

void invalidate_capture(cudaStream_t stream) {
  CaptureRegistry& r = captures();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (stream && stream->capture_status == cudaStreamCaptureStatusActive)
    stream->capture_status = cudaStreamCaptureStatusInvalidated;
}

cudaError_t unsafe_call_check() {
  if (g_active.load(std::memory_order_acquire) == 0) return cudaSuccess;
  CaptureRegistry& r = captures();
  std::lock_guard<std::mutex> lock(r.mutex);
  bool blocked = false;
  for (cudaStream_t s : r.capturing)
    if (concerns_this_thread(*s)) {
      s->capture_status = cudaStreamCaptureStatusInvalidated;
      blocked = true;
    }
  if (!blocked) return cudaSuccess;
  set_last_error(cudaErrorStreamCaptureUnsupported);
  return cudaErrorStreamCaptureUnsupported;
}

cudaError_t stream_sync_check(cudaStream_t stream) {
  if (g_active.load(std::memory_order_acquire) == 0) return cudaSuccess;
  CaptureRegistry& r = captures();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (stream->capture_status == cudaStreamCaptureStatusNone) return cudaSuccess;
  stream->capture_status = cudaStreamCaptureStatusInvalidated;
  set_last_error(cudaErrorStreamCaptureUnsupported);
  return cudaErrorStreamCaptureUnsupported;
}

cudaError_t graph_alloc(cudaStream_t stream, void** ptr, size_t bytes) {
  if (cudaError_t e = device_alloc(ptr, bytes); e != cudaSuccess) {
    invalidate_capture(stream);
    return e;
  }
  void* p = *ptr;
  CaptureRegistry& r = captures();
  std::lock_guard<std::mutex> lock(r.mutex);
  stream->capture->allocations.push_back(p);
  r.graph_memory[p] = bytes;
  // A replay hands the graph fresh memory: poisoned, as device_alloc leaves it.
  stream->capture->nodes.push_back([p, bytes] {
    std::memset(p, kPoisonByte, bytes);
    return cudaSuccess;
  });
  return cudaSuccess;
}

cudaError_t graph_free(cudaStream_t stream, void* ptr) {
  if (!ptr) return cudaSuccess;
  CaptureRegistry& r = captures();
  std::lock_guard<std::mutex> lock(r.mutex);
  GraphBody& body = *stream->capture;
  const bool mine = std::find(body.allocations.begin(), body.allocations.end(), ptr) != body.allocations.end();
  if (!mine || !body.freed.insert(ptr).second) {  // not this graph's memory, or freed twice
    stream->capture_status = cudaStreamCaptureStatusInvalidated;
    set_last_error(cudaErrorInvalidValue);
    return cudaErrorInvalidValue;
  }
  // On a GPU the graph may reuse freed memory for a later allocation: a
  // replay poisons it here, so that work reading it after the free sees NaNs.
  const size_t bytes = r.graph_memory[ptr];
  body.nodes.push_back([ptr, bytes] {
    std::memset(ptr, kPoisonByte, bytes);
    return cudaSuccess;
  });
  return cudaSuccess;
}

bool is_graph_memory(const void* p) {
  if (!p) return false;
  CaptureRegistry& r = captures();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.graph_memory.count(p) > 0;
}

int64_t graph_launches() { return g_graph_launches.load(); }

}  // namespace recon::simt

// The handles behind cudaGraph_t and cudaGraphExec_t: both share the body, so
// either may be destroyed first.
struct CUgraph_st {
  std::shared_ptr<recon::simt::GraphBody> body;
};
struct CUgraphExec_st {
  std::shared_ptr<recon::simt::GraphBody> body;
  unsigned long long flags = 0;
};

using recon::simt::captures;
using recon::simt::set_last_error;

namespace {
cudaError_t fail(cudaError_t e) {
  set_last_error(e);
  return e;
}
}  // namespace

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  if (!stream) return fail(cudaErrorStreamCaptureUnsupported);  // the legacy stream cannot capture
  if (mode != cudaStreamCaptureModeGlobal && mode != cudaStreamCaptureModeThreadLocal &&
      mode != cudaStreamCaptureModeRelaxed)
    return fail(cudaErrorInvalidValue);
  auto& r = captures();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (stream->capture_status != cudaStreamCaptureStatusNone) return fail(cudaErrorIllegalState);
  stream->capture_status = cudaStreamCaptureStatusActive;
  stream->capture_mode = mode;
  stream->capture_thread = std::this_thread::get_id();
  stream->capture = std::make_shared<recon::simt::GraphBody>();
  r.capturing.push_back(stream);
  recon::simt::g_active.fetch_add(1, std::memory_order_release);
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  if (!stream || !graph) return fail(cudaErrorInvalidValue);
  std::shared_ptr<recon::simt::GraphBody> body;
  cudaStreamCaptureStatus status;
  {
    auto& r = captures();
    std::lock_guard<std::mutex> lock(r.mutex);
    if (stream->capture_status == cudaStreamCaptureStatusNone) return fail(cudaErrorIllegalState);
    if (stream->capture_mode != cudaStreamCaptureModeRelaxed && stream->capture_thread != std::this_thread::get_id())
      return fail(cudaErrorStreamCaptureWrongThread);
    status = stream->capture_status;
    body = std::move(stream->capture);
    stream->capture_status = cudaStreamCaptureStatusNone;
    r.capturing.erase(std::find(r.capturing.begin(), r.capturing.end(), stream));
    recon::simt::g_active.fetch_sub(1, std::memory_order_release);
  }
  *graph = nullptr;
  // An invalidated capture yields no graph; its memory goes with the body
  // (released here, outside the registry's lock).
  if (status == cudaStreamCaptureStatusInvalidated) return fail(cudaErrorStreamCaptureInvalidated);
  *graph = new CUgraph_st{std::move(body)};
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  if (!status) return fail(cudaErrorInvalidValue);
  *status = cudaStreamCaptureStatusNone;
  if (!stream) return cudaSuccess;
  auto& r = captures();
  std::lock_guard<std::mutex> lock(r.mutex);
  *status = stream->capture_status;
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags) {
  if (!exec || !graph) return fail(cudaErrorInvalidValue);
  if ((flags & ~cudaGraphInstantiateFlagAutoFreeOnLaunch) != 0) return fail(cudaErrorInvalidValue);
  *exec = new CUgraphExec_st{graph->body, flags};
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags) {
  return cudaGraphInstantiate(exec, graph, flags);
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  if (!exec) return fail(cudaErrorInvalidValue);
  cudaError_t error = cudaSuccess;
  switch (recon::simt::stream_ordering(stream, &error)) {
    case recon::simt::Ordering::kRun: break;
    case recon::simt::Ordering::kRecord:  // child graphs are not emulated
      recon::simt::invalidate_capture(stream);
      return fail(cudaErrorStreamCaptureUnsupported);
    case recon::simt::Ordering::kFail: return fail(error);
  }
  recon::simt::g_graph_launches.fetch_add(1);
  for (const auto& node : exec->body->nodes)
    if (cudaError_t e = node(); e != cudaSuccess) return fail(e);
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  if (!graph) return fail(cudaErrorInvalidValue);
  delete graph;
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  if (!exec) return fail(cudaErrorInvalidValue);
  delete exec;
  return cudaSuccess;
}
