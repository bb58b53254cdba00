// RECON_CPU_HOT marks a hot CPU loop (elementwise passes, batch norm, conv
// layout shuffles) to be compiled twice: for AVX-512 CPUs (x86-64-v4) and
// for the baseline x86-64 the rest of the library targets; GCC picks the
// clone when the program loads (target_clones, an ifunc). The baseline
// build vectorises these loops with 128-bit SSE only. The AVX-512 clone may
// fuse a multiply and an add into one FMA, so results can differ from the
// baseline clone's in the last bit (like the CUDA kernels'); on one machine
// they are the same every run.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RECON_CPU_HOT __attribute__((target_clones("arch=x86-64-v4", "default")))
#else
#define RECON_CPU_HOT
#endif
