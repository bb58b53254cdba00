// RECON_HD marks functions shared by the CPU backend and CUDA kernels
// (__host__ __device__ under nvcc and the SIMT emulator, nothing otherwise).
#pragma once
#if defined(RECON_SIMT) && !defined(__CUDACC__)
#include "kernels/simt/simt_qualifiers.hpp"  // __host__ __device__ __forceinline__ for g++
#endif
#if defined(__CUDACC__) || defined(RECON_SIMT)
#define RECON_HD __host__ __device__ __forceinline__
#else
#define RECON_HD inline
#endif
