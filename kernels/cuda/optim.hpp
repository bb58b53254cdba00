// The fused optimizer step on CUDA: one kernel launch updates every parameter
// (a multi-tensor apply). The host builds a table of OptimTensor entries
// (parameter, gradient and state pointers, sizes), plan_chunks() cuts each
// tensor into chunks of kOptimChunk elements, the table goes to device memory
// (re-uploaded only when it changed), and multi_tensor_step() launches one
// grid that strides over all chunks of all tensors. The per-element math is
// sgd_update / adam_update of kernels/common/optim.hpp, the same the CPU loop
// in nn/optim.cpp runs. Plain C++: nn/optim.cpp includes it in every build.
#pragma once
#include <cstdint>
#include <vector>

namespace recon::cuda {

// Elements per chunk: 16 per thread of a 256-thread block.
constexpr int64_t kOptimChunk = 4096;

// One parameter tensor of a step; all pointers on the device, contiguous.
struct OptimTensor {
  float* param;        // (numel)
  const float* grad;   // (numel)
  float* state0;       // SGD: momentum buffer (null without momentum); Adam: exp_avg
  float* state1;       // Adam: exp_avg_sq; SGD: null
  int64_t numel;       // > 0
  int64_t first_chunk;  // the launch's index of this tensor's first chunk (plan_chunks)
};

enum class OptimKind : int32_t { kSGD = 0, kAdam = 1 };

// The scalars of one step (the same for every tensor). The Adam bias
// corrections 1 - beta^t are computed by the host, as for the CPU loop.
struct OptimStep {
  OptimKind kind = OptimKind::kSGD;
  float lr = 0.f;
  float weight_decay = 0.f;
  // SGD
  float momentum = 0.f;
  float dampening = 0.f;
  bool nesterov = false;
  bool first_step = false;
  // Adam / AdamW
  bool decoupled = false;  // AdamW
  float beta1 = 0.f;
  float beta2 = 0.f;
  float eps = 0.f;
  float bias_correction1 = 1.f;
  float bias_correction2 = 1.f;
};

// Sets first_chunk of every entry (in table order) and returns the total
// number of chunks.
inline int64_t plan_chunks(std::vector<OptimTensor>& table) {
  int64_t chunks = 0;
  for (OptimTensor& t : table) {
    t.first_chunk = chunks;
    chunks += (t.numel + kOptimChunk - 1) / kOptimChunk;
  }
  return chunks;
}

// One launch of the fused step over `table` (planned by plan_chunks, with
// `chunks` chunks in all) on the runtime stream. When `upload`, the host
// table is first copied (asynchronously, on the stream) into device_table,
// device memory for table.size() entries; otherwise device_table must already
// hold the same entries. The step's scalars are `step`, or, when
// device_step is not null, the OptimStep the kernel reads from device memory
// (a CUDA graph's replay slot, refreshed before each launch: a captured
// kernel argument would freeze the learning rate and the bias corrections).
void multi_tensor_step(const std::vector<OptimTensor>& table, int64_t chunks, OptimTensor* device_table, bool upload,
                       const OptimStep& step, const OptimStep* device_step = nullptr);

}  // namespace recon::cuda
