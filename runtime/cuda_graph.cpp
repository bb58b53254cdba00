// CudaGraphStep: warm-up, capture, instantiation and replay of a training
// step on the runtime stream; the replay slots (per-launch device values
// filled from a pinned mirror) and the ring of in-flight steps whose outputs
// come back through pinned memory and events. See cuda_graph.hpp.
#include "runtime/cuda_graph.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <utility>

#include "runtime/cuda_context.hpp"
#include "runtime/device.hpp"
#include "runtime/error.hpp"

#if defined(RECON_WITH_CUDA)
#include "runtime/cuda_api.hpp"
#endif

namespace recon {

namespace {

constexpr size_t kSlotAlignment = 16;     // any scalar or small struct a kernel reads
constexpr size_t kMaxSlotBytes = 256;     // one slot: a few scalars (OptimStep is ~60 bytes)
constexpr size_t kArenaBytes = 16 << 10;  // all slots of one graph: 64 slots of 256 bytes

// A per-launch value: its place in the arena and what writes it.
struct SlotFill {
  size_t offset = 0;
  std::function<void(void*)> fill;
};

// The CudaGraphStep capture running on this thread.
struct CaptureContext {
  uint64_t id = 0;
  unsigned char* arena = nullptr;  // device
  size_t used = 0;
  std::vector<SlotFill> fills;
  std::vector<std::function<void()>> undo;
};
thread_local CaptureContext* t_context = nullptr;
std::atomic<uint64_t> g_next_capture_id{1};

// Runs the undo hooks once, in reverse order of registration.
[[maybe_unused]] void run_undo(CaptureContext& c) noexcept {
  for (auto it = c.undo.rbegin(); it != c.undo.rend(); ++it) {
    try {
      (*it)();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "recon: undoing a captured step's host state failed: %s\n", e.what());
    }
  }
  c.undo.clear();
}

}  // namespace

namespace cuda {

uint64_t capture_id() { return t_context ? t_context->id : 0; }

void* replay_slot(size_t bytes, std::function<void(void* host)> fill) {
  RECON_CHECK(t_context, "replay_slot: per-launch values need a capture run by CudaGraphStep "
                         "(runtime/cuda_graph.hpp)");
  RECON_CHECK(bytes > 0 && bytes <= kMaxSlotBytes, "replay_slot: " << bytes << " bytes (1 to " << kMaxSlotBytes
                                                                   << " per slot)");
  const size_t offset = (t_context->used + kSlotAlignment - 1) / kSlotAlignment * kSlotAlignment;
  RECON_CHECK(offset + bytes <= kArenaBytes, "replay_slot: the captured step asks for more than "
                                                 << kArenaBytes << " bytes of per-launch values");
  t_context->used = offset + bytes;
  t_context->fills.push_back({offset, std::move(fill)});
  return t_context->arena + offset;
}

void on_capture_end(std::function<void()> undo) {
  RECON_CHECK(t_context, "on_capture_end: needs a capture run by CudaGraphStep (runtime/cuda_graph.hpp)");
  t_context->undo.push_back(std::move(undo));
}

}  // namespace cuda

// ---- the graph and the in-flight slots --------------------------------------------------------------

struct CudaGraphStep::Graph {
  void* graph = nullptr;  // cudaGraph_t
  void* exec = nullptr;   // cudaGraphExec_t
  std::vector<void*> deferred;  // freed during the capture, released with the graph
  std::vector<SlotFill> fills;
  size_t arena_used = 0;
  std::vector<Shape> shapes;  // of the static inputs it was captured with

  ~Graph() {
#if defined(RECON_WITH_CUDA)
    // In-flight launches finish first (CUDA frees an executing graph when it
    // completes); the deferred frees are ordered after them on the stream.
    if (exec && cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec)) != cudaSuccess) (void)cudaGetLastError();
    if (graph && cudaGraphDestroy(static_cast<cudaGraph_t>(graph)) != cudaSuccess) (void)cudaGetLastError();
#endif
    cuda::release_deferred(deferred);
  }
};

struct CudaGraphStep::Slot {
  cuda::PinnedBuffer in;   // host mirror of the replay slots
  cuda::PinnedBuffer out;  // the outputs copied back from the device
  std::vector<float> host; // the outputs, when the step ran on the CPU
  void* event = nullptr;   // cudaEvent_t: recorded after the outputs' copy
  int64_t step = -1;
  bool on_device = false;

  ~Slot() {
#if defined(RECON_WITH_CUDA)
    if (event && cudaEventDestroy(static_cast<cudaEvent_t>(event)) != cudaSuccess) (void)cudaGetLastError();
#endif
  }
};

CudaGraphStep::CudaGraphStep(StepFn step, CudaGraphOptions options) : step_(std::move(step)), options_(options) {
  RECON_CHECK(step_, "CudaGraphStep: the step function is empty");
  RECON_CHECK(options_.warmup_steps >= 1,
              "CudaGraphStep: warmup_steps " << options_.warmup_steps << " must be >= 1 (state a step creates "
                                             << "lazily, like gradients, must exist before the capture)");
  RECON_CHECK(options_.in_flight >= 1, "CudaGraphStep: in_flight " << options_.in_flight << " must be >= 1");
  RECON_CHECK(!options_.enabled || cuda_available(),
              "CudaGraphStep: CUDA graphs need a CUDA device (none is available); run with graphs off");
  for (int i = 0; i < options_.in_flight; ++i) slots_.push_back(std::make_unique<Slot>());
}

CudaGraphStep::~CudaGraphStep() {
#if defined(RECON_WITH_CUDA)
  // The pinned buffers may still feed copies of the last steps: wait for them
  // before they are freed.
  bool in_flight = false;
  for (const auto& s : slots_) in_flight = in_flight || s->on_device;
  if (in_flight && !cuda::capturing()) {
    try {
      cuda::synchronize();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "recon: ~CudaGraphStep: %s\n", e.what());
    }
  }
#endif
}

bool CudaGraphStep::captured() const { return graph_ != nullptr; }

void CudaGraphStep::reset() {
  graph_.reset();
  static_inputs_.clear();
  since_reset_ = 0;
}

CudaGraphStep::Slot& CudaGraphStep::claim_slot() {
  Slot& s = *slots_[(size_t)(steps_ % options_.in_flight)];
#if defined(RECON_WITH_CUDA)
  // The step in_flight calls ago used these buffers: wait for it (usually long done).
  if (s.step >= 0 && s.on_device) RECON_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(s.event)));
#endif
  s.step = steps_;
  s.on_device = false;
  s.host.clear();
  return s;
}

std::vector<Tensor> CudaGraphStep::stage_inputs(const std::vector<Tensor>& inputs) {
  for (size_t i = 0; i < inputs.size(); ++i)
    RECON_CHECK(inputs[i].defined(), "CudaGraphStep::run: input " << i << " is undefined");
  bool same = static_inputs_.size() == inputs.size();
  for (size_t i = 0; same && i < inputs.size(); ++i) same = static_inputs_[i].shape() == inputs[i].shape();
  if (!same) {
    if (graph_) {
      std::string got, want;
      for (const Tensor& t : inputs) got += shape_str(t.shape()) + " ";
      for (const Shape& s : graph_->shapes) want += shape_str(s) + " ";
      RECON_FAIL("CudaGraphStep::run: inputs of shapes " << got << "but the CUDA graph was captured for " << want
                                                         << "(a graph replays fixed shapes: keep the batch size "
                                                         << "fixed, e.g. drop the last batch, call reset() to "
                                                         << "capture again, or turn CUDA graphs off)");
    }
    static_inputs_.clear();  // warm-up with new shapes: new static tensors, warm-up again
    for (const Tensor& t : inputs) static_inputs_.push_back(Tensor::empty(t.shape(), Device::cuda()));
    since_reset_ = 0;
  }
#if defined(RECON_WITH_CUDA)
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor src = inputs[i].contiguous();
    const size_t bytes = (size_t)src.numel() * sizeof(float);
    if (bytes == 0) continue;
    if (src.device().is_cpu())
      cuda::copy_h2d(static_inputs_[i].data(), src.data(), bytes);
    else
      cuda::copy_d2d(static_inputs_[i].data(), src.data(), bytes);
  }
#endif
  return static_inputs_;
}

// Copies the outputs into out_device_ (a captured copy inside the graph) or,
// for a step that ran on the CPU, reads them into the slot.
void CudaGraphStep::stage_outputs(std::vector<Tensor> outs, Slot& slot, bool in_graph) {
  if (n_outputs_ < 0) n_outputs_ = (int64_t)outs.size();
  RECON_CHECK((int64_t)outs.size() == n_outputs_, "CudaGraphStep: the step returned " << outs.size()
                                                                                      << " outputs, earlier "
                                                                                      << n_outputs_);
  bool on_cpu = false, on_cuda = false;
  for (size_t i = 0; i < outs.size(); ++i) {
    RECON_CHECK(outs[i].defined() && outs[i].numel() == 1,
                "CudaGraphStep: output " << i << " of the step must be a one-element tensor, got "
                                         << (outs[i].defined() ? shape_str(outs[i].shape()) : "an undefined tensor"));
    (outs[i].device().is_cpu() ? on_cpu : on_cuda) = true;
  }
  RECON_CHECK(!(on_cpu && on_cuda), "CudaGraphStep: the step's outputs are on both the CPU and CUDA");
  RECON_CHECK(!(in_graph && on_cpu), "CudaGraphStep: a captured step must return CUDA tensors");
  if (on_cpu) {
    for (const Tensor& t : outs) slot.host.push_back(t.item());
    return;
  }
#if defined(RECON_WITH_CUDA)
  if (!out_device_.defined()) {
    RECON_CHECK(!in_graph, "CudaGraphStep: internal error: the output buffer is made during warm-up");
    out_device_ = Tensor::empty({std::max<int64_t>(n_outputs_, 1)}, Device::cuda());
  }
  for (size_t i = 0; i < outs.size(); ++i)
    cuda::copy_d2d(out_device_.data() + i, outs[i].data(), sizeof(float));
  slot.on_device = n_outputs_ > 0;
#endif
}

// After the step's work is on the stream: the outputs to pinned memory, then
// the slot's event.
void CudaGraphStep::finish_outputs(Slot& slot) {
#if defined(RECON_WITH_CUDA)
  if (!slot.on_device) return;
  const size_t bytes = (size_t)n_outputs_ * sizeof(float);
  if (slot.out.bytes() < bytes) slot.out = cuda::PinnedBuffer(bytes);
  if (!slot.event) {
    cudaEvent_t e = nullptr;
    RECON_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    slot.event = e;
  }
  cuda::copy_d2h(slot.out.data(), out_device_.data(), bytes);
  RECON_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(slot.event),
                                   static_cast<cudaStream_t>(cuda::stream_handle())));
#else
  (void)slot;
#endif
}

void CudaGraphStep::capture() {
#if defined(RECON_WITH_CUDA)
  if (!arena_.defined()) arena_ = Tensor::empty({(int64_t)(kArenaBytes / sizeof(float))}, Device::cuda());
  CaptureContext ctx;
  ctx.id = g_next_capture_id++;
  ctx.arena = reinterpret_cast<unsigned char*>(arena_.data());
  auto g = std::make_unique<Graph>();
  for (const Tensor& t : static_inputs_) g->shapes.push_back(t.shape());

  // Ends the capture and undoes the host state, on success and failure alike.
  auto finish = [&ctx]() noexcept {
    cuda::CaptureResult r = cuda::capture_end();
    t_context = nullptr;
    run_undo(ctx);
    return r;
  };
  cuda::capture_begin();
  t_context = &ctx;
  cuda::CaptureResult r;
  try {
    Slot scratch;  // the outputs' copies are captured; nothing is read on the host here
    stage_outputs(step_(static_inputs_), scratch, true);
  } catch (...) {
    r = finish();
    g->graph = r.graph;
    g->deferred = std::move(r.deferred_frees);
    throw;  // g releases the graph and the deferred memory
  }
  r = finish();
  g->graph = r.graph;
  g->deferred = std::move(r.deferred_frees);
  RECON_CHECK(r.error == 0, "CudaGraphStep: the capture of the step failed: "
                                << cudaGetErrorString(static_cast<cudaError_t>(r.error))
                                << " (a call inside the step is not allowed in a CUDA graph)");
  RECON_CHECK(r.escaped == 0,
              "CudaGraphStep: " << r.escaped << " device allocation(s) (" << r.escaped_bytes << " bytes) made "
                                << "inside the captured step are still alive after it; a graph's memory lives only "
                                << "inside the graph (e.g. gradients re-created after zero_grad() dropped them: use "
                                << "Optimizer::zero_grad(false) in a captured step; or a tensor the step stores "
                                << "outside itself: create it before the capture)");
  cudaGraphExec_t exec = nullptr;
  RECON_CUDA_CHECK(cudaGraphInstantiate(&exec, static_cast<cudaGraph_t>(g->graph), 0));
  g->exec = exec;
  g->fills = std::move(ctx.fills);
  g->arena_used = ctx.used;
  graph_ = std::move(g);
  ++captures_;
#endif
}

void CudaGraphStep::launch(Slot& slot) {
#if defined(RECON_WITH_CUDA)
  if (graph_->arena_used > 0) {
    if (slot.in.bytes() < kArenaBytes) slot.in = cuda::PinnedBuffer(kArenaBytes);
    unsigned char* host = slot.in.as<unsigned char>();
    for (const SlotFill& f : graph_->fills) f.fill(host + f.offset);
    cuda::copy_h2d(arena_.data(), host, graph_->arena_used);
  }
  RECON_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(graph_->exec),
                                   static_cast<cudaStream_t>(cuda::stream_handle())));
  slot.on_device = n_outputs_ > 0;
  ++replays_;
#else
  (void)slot;
#endif
}

int64_t CudaGraphStep::run(const std::vector<Tensor>& inputs) {
  Slot& slot = claim_slot();
  if (!options_.enabled) {
    stage_outputs(step_(inputs), slot, false);
    ++eager_;
  } else {
    std::vector<Tensor> in = stage_inputs(inputs);
    if (!graph_ && since_reset_ < options_.warmup_steps) {
      stage_outputs(step_(in), slot, false);
      ++eager_;
    } else {
      if (!graph_) capture();
      launch(slot);
    }
    ++since_reset_;
  }
  finish_outputs(slot);
  return steps_++;
}

std::vector<float> CudaGraphStep::outputs(int64_t step) {
  RECON_CHECK(step >= 0 && step < steps_, "CudaGraphStep::outputs: step " << step << " has not run (" << steps_
                                                                          << " steps so far)");
  RECON_CHECK(step >= steps_ - options_.in_flight,
              "CudaGraphStep::outputs: the outputs of step " << step << " were overwritten (only the last "
                                                             << options_.in_flight << " steps are kept)");
  Slot& s = *slots_[(size_t)(step % options_.in_flight)];
  if (!s.on_device) return s.host;
#if defined(RECON_WITH_CUDA)
  RECON_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(s.event)));
  const float* v = s.out.as<float>();
  return std::vector<float>(v, v + n_outputs_);
#else
  return {};
#endif
}

bool CudaGraphStep::ready(int64_t step) const {
  if (step < 0 || step >= steps_ || step < steps_ - options_.in_flight) return false;
  const Slot& s = *slots_[(size_t)(step % options_.in_flight)];
  if (!s.on_device) return true;
#if defined(RECON_WITH_CUDA)
  const cudaError_t e = cudaEventQuery(static_cast<cudaEvent_t>(s.event));
  if (e == cudaErrorNotReady) return false;
  RECON_CUDA_CHECK(e);
#endif
  return true;
}

}  // namespace recon
