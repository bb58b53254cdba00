// CUDA graphs for training steps: CudaGraphStep runs a caller's step closure
// (forward, backward, optimizer step) eagerly for a few warm-up calls, then
// captures it once into a CUDA graph on the runtime stream and replays the
// graph on later calls, which removes the per-kernel launch cost of the host
// (one cudaGraphLaunch per step). The step's scalars (the loss, ...) come back
// asynchronously through pinned memory and an event per step.
//
// What a captured step must respect (violations throw a recon::Error naming
// the call, see runtime/cuda_context.hpp):
//  - it reads its data only from the static input tensors it is given (the
//    same storage at every call: run() copies the caller's batch into them);
//  - it never waits for the device or reads a value on the host (no item(),
//    to(cpu), to_vector(), host tensors, RECON_SYNC, guard checks);
//  - every tensor it creates dies inside it, except the 0-d outputs it
//    returns (copied into a static buffer inside the graph): so gradients are
//    zeroed in place (nn::Optimizer::zero_grad(false)), not dropped;
//  - values that change from step to step reach the kernels through device
//    memory refreshed before each replay, never as baked kernel arguments:
//    nn::Optimizer's step scalars (learning rate, bias corrections) and the
//    Philox offsets of Generator::draw (information_reduction, dropout) do so
//    through replay_slot() below;
//  - the shapes are fixed: run() refuses inputs of another shape once captured;
//  - host code inside the step runs once, at the capture, never at a replay:
//    per-step host work (opt.set_lr from a schedule, logging) goes before or
//    after run(), not inside the step;
//  - what the step uses (modules, optimizer, generators) outlives the
//    CudaGraphStep: the graph holds their device addresses, the per-launch
//    fills hold pointers to the optimizer and the generators.
// With options.enabled = false every call runs the step eagerly (same
// numbers: the graph runs the same kernels with the same arguments).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "runtime/tensor.hpp"

namespace recon {

namespace cuda {
// ---- for code that runs inside a captured step --------------------------------------
// The id of the CudaGraphStep capture running on this thread (0 when none).
uint64_t capture_id();
// Inside a CudaGraphStep capture: `bytes` (<= 256) of device memory that the
// graph's kernels may read, holding at every launch what `fill` wrote into
// its host mirror just before that launch. The fills run on the host, in the
// order they were registered, before every launch of the graph (the first
// included), and the mirror goes to the device in one copy, outside the
// graph. The pointer is 16-byte aligned and valid as long as the graph.
// Throws outside such a capture.
void* replay_slot(size_t bytes, std::function<void(void* host)> fill);
// Inside a CudaGraphStep capture: `undo` runs once when the capture ends
// (successful or not), before any launch, to take back host-side effects of
// the captured call that the fills redo at each launch (a step counter, a
// generator's offset). Throws outside such a capture.
void on_capture_end(std::function<void()> undo);
}  // namespace cuda

struct CudaGraphOptions {
  bool enabled = true;  // false: every call runs eagerly (--cuda-graphs off)
  // Eager calls before the capture, so that state the step creates lazily
  // (gradients, the optimizer's device table, the cuBLAS handle) exists
  // before the graph is recorded.
  int warmup_steps = 1;
  // Steps whose outputs stay readable; also how many steps the host may run
  // ahead of the device before run() waits for the oldest.
  int in_flight = 4;
};

class CudaGraphStep {
 public:
  // The step: reads `inputs` (the static CUDA tensors when enabled), returns
  // the one-element tensors to read back (e.g. the loss first, then any
  // other scalars), the same number at every call; on CUDA, or on the CPU
  // when disabled (then read at once).
  using StepFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& inputs)>;

  explicit CudaGraphStep(StepFn step, CudaGraphOptions options = {});
  ~CudaGraphStep();
  CudaGraphStep(const CudaGraphStep&) = delete;
  CudaGraphStep& operator=(const CudaGraphStep&) = delete;

  // Runs one step and returns its number (0, 1, ...) for outputs().
  // Enabled: copies `inputs` (CPU or CUDA; the shapes of the first call) into
  // the static input tensors, then runs the step eagerly (warm-up), captures
  // and launches it (the first call after warm-up), or launches the graph.
  // Disabled: calls the step on `inputs` as they are (any device, any
  // shapes). Returns without waiting for the device.
  int64_t run(const std::vector<Tensor>& inputs);
  // The outputs of step `step`, waiting for that step only (an event).
  // Readable for the last options.in_flight steps.
  std::vector<float> outputs(int64_t step);
  // True when the outputs of `step` can be read without waiting.
  bool ready(int64_t step) const;

  // Drops the graph and the static inputs: the next calls warm up and capture
  // again (e.g. after the batch size changed).
  void reset();

  bool enabled() const { return options_.enabled; }
  bool captured() const;
  int64_t steps() const { return steps_; }
  int64_t captures() const { return captures_; }     // successful captures
  int64_t replays() const { return replays_; }       // graph launches
  int64_t eager_steps() const { return eager_; }     // steps run without the graph
  const std::vector<Tensor>& static_inputs() const { return static_inputs_; }

 private:
  struct Graph;  // the instantiated graph and what it keeps alive
  struct Slot;   // one in-flight step's host buffers and event

  void capture();
  void launch(Slot& slot);
  std::vector<Tensor> stage_inputs(const std::vector<Tensor>& inputs);
  void stage_outputs(std::vector<Tensor> outs, Slot& slot, bool in_graph);
  void finish_outputs(Slot& slot);
  Slot& claim_slot();

  StepFn step_;
  CudaGraphOptions options_;
  std::vector<Tensor> static_inputs_;
  Tensor out_device_;  // (n_outputs) the step's outputs, copied inside the graph
  int64_t n_outputs_ = -1;
  Tensor arena_;       // device memory of the replay slots
  std::unique_ptr<Graph> graph_;
  std::vector<std::unique_ptr<Slot>> slots_;
  int64_t steps_ = 0, captures_ = 0, replays_ = 0, eager_ = 0, since_reset_ = 0;
};

}  // namespace recon
