// Links between the parts of the SIMT emulator (scheduler, runtime API,
// kernel-launch log); not for use outside kernels/simt.
#pragma once
#include <cstddef>

#include "kernels/simt/simt_runtime.hpp"

namespace recon::simt {

// Records `error` as the calling host thread's last CUDA error.
void set_last_error(cudaError_t error);
// The most dynamic shared memory a launch of `kernel` may ask for: 48 KiB,
// or what cudaFuncSetAttribute allowed (up to the emulated device's opt-in limit).
size_t dynamic_shared_limit(const void* kernel);
// Appends the kernel's name to $RECON_SIMT_KERNEL_LOG (once per process).
void log_launched_kernel(const char* launch_text);

constexpr size_t kDefaultDynamicShared = 48 * 1024;   // CUDA's limit without opt-in
constexpr size_t kMaxDynamicSharedOptin = 227 * 1024;  // H100/H200 opt-in limit
constexpr unsigned kMaxThreadsPerBlock = 1024;

}  // namespace recon::simt
