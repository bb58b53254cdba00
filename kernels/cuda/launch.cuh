// What every kernel source in kernels/cuda includes first: the CUDA runtime
// under nvcc, the SIMT emulator's device environment otherwise (RECON_CUDA=SIM),
// and the two macros that let one kernel source serve both builds.
//
//   RECON_LAUNCH(kernel, grid, block, shared_bytes, stream)(args...);
//     nvcc: kernel<<<grid, block, shared_bytes, stream>>>(args...)
//     SIM:  runs the grid on the CPU (kernels/simt/simt.hpp); errors found by
//           the emulator (divergent barrier, a warp collective that cannot
//           complete) are thrown as recon::Error naming kernel, block, thread.
//     A template kernel whose arguments contain commas goes in parentheses:
//     RECON_LAUNCH((pool_kernel<float, 2>), grid, block, 0, stream)(...).
//     Launch kernels by name (not through a pointer variable): the name is
//     what the emulator's messages and the kernel-coverage test use.
//
//   RECON_DYNAMIC_SHARED(float, smem);
//     inside a kernel: `float* smem` pointing at the launch's dynamic shared
//     memory (`extern __shared__` under nvcc), 16-byte aligned.
#pragma once

#if defined(__CUDACC__)
#include <cuda_runtime.h>

#define RECON_LAUNCH(kernel, grid, block, shared_bytes, stream) kernel<<<(grid), (block), (shared_bytes), (stream)>>>
#define RECON_DYNAMIC_SHARED(type, name)                                 \
  extern __shared__ __align__(16) unsigned char recon_dynamic_shared_[]; \
  type* name = reinterpret_cast<type*>(recon_dynamic_shared_)

#elif defined(RECON_SIMT)
#include "kernels/simt/simt.hpp"

#define RECON_LAUNCH(kernel, grid, block, shared_bytes, stream) \
  ::recon::simt::Launch(#kernel, kernel, grid, block, shared_bytes, stream)
#define RECON_DYNAMIC_SHARED(type, name) type* name = reinterpret_cast<type*>(::recon::simt::t_dynamic_shared)

#else
#error "kernels/cuda sources build with nvcc or with RECON_CUDA=SIM (the SIMT emulator)"
#endif
