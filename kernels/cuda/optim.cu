// The fused optimizer kernel: SGD (momentum, Nesterov, weight decay) and
// Adam/AdamW over every parameter tensor in one launch (multi-tensor apply;
// see optim.hpp for the table and the chunking).
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/device_util.cuh"

#include "kernels/common/optim.hpp"
#include "kernels/cuda/optim.hpp"
#include "runtime/cuda_context.hpp"
#include "runtime/error.hpp"
#include "runtime/profile.hpp"

namespace recon::cuda {

using detail::runtime_stream;

namespace {

constexpr int kOptimThreads = 256;  // threads per block: kOptimChunk / 256 = 16 elements each
// Blocks of the grid-stride loop over chunks: about 8 resident 256-thread
// blocks on each of an H100/H200's 132 SMs; more chunks loop.
constexpr int64_t kMaxOptimBlocks = 1024;

// Thread mapping: a grid-stride loop over the chunks of all tensors; one
// block updates one chunk (kOptimChunk consecutive elements of one tensor)
// per iteration, each thread the elements threadIdx.x, +256, ... of it
// (coalesced). A block finds its chunk's tensor by binary search over the
// table's first_chunk (uniform across the block, so no divergence). The
// scalars come from `step_arg`, or from *device_step when it is not null.
__global__ void multi_tensor_optim_kernel(const OptimTensor* __restrict__ table, int n_tensors, int64_t chunks,
                                          OptimStep step_arg, const OptimStep* __restrict__ device_step) {
  const OptimStep s = device_step ? *device_step : step_arg;
  for (int64_t chunk = blockIdx.x; chunk < chunks; chunk += gridDim.x) {
    int lo = 0, hi = n_tensors - 1;  // the last tensor whose first chunk is <= chunk
    while (lo < hi) {
      const int mid = (lo + hi + 1) / 2;
      if (table[mid].first_chunk <= chunk)
        lo = mid;
      else
        hi = mid - 1;
    }
    const OptimTensor t = table[lo];
    const int64_t begin = (chunk - t.first_chunk) * kOptimChunk;
    const int64_t end = begin + kOptimChunk < t.numel ? begin + kOptimChunk : t.numel;
    for (int64_t j = begin + threadIdx.x; j < end; j += blockDim.x) {
      float p = t.param[j];
      const float g = t.grad[j];
      if (s.kind == OptimKind::kAdam) {
        float m = t.state0[j], v = t.state1[j];
        adam_update(p, g, m, v, s.lr, s.beta1, s.beta2, s.eps, s.weight_decay, s.decoupled, s.bias_correction1,
                    s.bias_correction2);
        t.state0[j] = m;
        t.state1[j] = v;
      } else {
        float buf = t.state0 ? t.state0[j] : 0.f;
        sgd_update(p, g, buf, s.lr, s.momentum, s.dampening, s.weight_decay, s.nesterov, s.first_step);
        if (t.state0) t.state0[j] = buf;
      }
      t.param[j] = p;
    }
  }
}

}  // namespace

void multi_tensor_step(const std::vector<OptimTensor>& table, int64_t chunks, OptimTensor* device_table, bool upload,
                       const OptimStep& step, const OptimStep* device_step) {
  if (table.empty() || chunks == 0) return;
  RECON_CHECK(table.size() <= (size_t)INT32_MAX, "multi_tensor_step: " << table.size() << " tensors are too many");
  cudaStream_t stream = runtime_stream();
  // From pageable memory: the call returns once the bytes are staged, so the
  // host table may change afterwards; the copy is ordered before the kernel.
  if (upload) copy_h2d(device_table, table.data(), table.size() * sizeof(OptimTensor));
  const unsigned grid = (unsigned)(chunks < kMaxOptimBlocks ? chunks : kMaxOptimBlocks);
  RECON_RANGE("multi_tensor_optim_kernel");  // counted by tests: one launch per step
  RECON_LAUNCH(multi_tensor_optim_kernel, grid, kOptimThreads, 0, stream)(device_table, (int)table.size(), chunks,
                                                                          step, device_step);
  check_launch("multi_tensor_optim_kernel");
}

}  // namespace recon::cuda
