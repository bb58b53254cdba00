// The CUDA side of the runtime: one stream per process that every op and
// copy is ordered on, a memory pool with a high release threshold, and the
// stream-ordered allocation used by Storage. Declared in every build so that
// callers compile; defined only when RECON_WITH_CUDA.
#pragma once
#include <cstddef>
#include <cstdint>

namespace recon::cuda {

// Device memory from cudaMallocAsync on the runtime stream. Throws a
// recon::Error naming the size asked for (and suggesting a smaller batch) when
// the device is out of memory.
void* device_alloc(size_t bytes);
// cudaFreeAsync on the runtime stream; never throws (called by destructors).
void device_free(void* p) noexcept;
// Host <-> device copies, asynchronous on the runtime stream.
void copy_h2d(void* dst, const void* src, size_t bytes);
void copy_d2h(void* dst, const void* src, size_t bytes);
void copy_d2d(void* dst, const void* src, size_t bytes);
void memset_zero(void* dst, size_t bytes);
// Waits for all work on the runtime stream.
void synchronize();
// The runtime stream as an opaque handle (cudaStream_t).
void* stream_handle();
// Guard bytes (for tests): while enabled, every new device allocation gets
// kGuardBytes of a fixed pattern before and after it. check_guards() throws
// if a live allocation's guards were overwritten (a kernel wrote out of
// bounds); a guarded allocation freed with damaged guards is logged and
// counted in guard_violations(). Enabled by set_guard_checks(true) or the
// environment variable RECON_GUARD=1. Checking synchronises the stream.
constexpr size_t kGuardBytes = 256;  // keeps the user pointer 256-byte aligned, as cudaMalloc's
void set_guard_checks(bool on);
void check_guards(const void* p);
int64_t guard_violations();

// After a kernel launch: checks cudaGetLastError, and synchronizes and checks
// again when RECON_SYNC=1 is set in the environment.
void check_launch(const char* kernel_name);

}  // namespace recon::cuda
