// The CUDA runtime API as the library sees it: the real cuda_runtime.h under
// nvcc/cudart, the SIMT emulator's host-backed twin in the RECON_SIMT build.
#pragma once
#if defined(RECON_SIMT)
#include "kernels/simt/simt_runtime.hpp"
#elif defined(RECON_WITH_CUDA)
#include <cuda_runtime.h>
#endif
