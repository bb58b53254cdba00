// The CUDA declaration qualifiers for a host compiler in the SIMT build
// (RECON_CUDA=SIM): what cuda_runtime.h gives g++ in a real CUDA build, so
// that headers marked __host__ __device__ (kernels/common, RECON_HD) compile
// in every translation unit. (__noinline__ is left out: libstdc++ spells
// GCC's attribute that way.) __shared__ is not here: it only means something
// inside a kernel, and kernels/simt/simt.hpp defines it for kernel sources.
#pragma once

#if !defined(__CUDACC__)
#define __host__
#define __device__
#define __global__
#define __constant__
#define __managed__
#define __forceinline__ inline __attribute__((always_inline))
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
#endif
