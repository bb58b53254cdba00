// Kernel coverage for the SIM build: which kernels a source defines and which
// ones the test suites launched. Every launch through the emulator appends
// the kernel's name to $RECON_SIMT_KERNEL_LOG (once per process); the test
// simt_kernel_coverage compares that log with the __global__ functions of
// kernels/cuda/*.cu and fails on a kernel that no test ran.
#pragma once
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace recon::simt {

// "(recon::pool_kernel<float, 2>)" -> "pool_kernel": the name a launch-site
// text refers to, without parentheses, namespaces or template arguments.
std::string kernel_base_name(std::string_view launch_text);

// The names of the __global__ functions declared or defined in a CUDA
// source, in order of appearance, without repeats; comments are ignored.
std::vector<std::string> kernels_defined_in(std::string_view source);

// The kernel names in a launch log (one "name<TAB>executable" line each);
// empty if the file does not exist.
std::set<std::string> read_kernel_log(const std::string& path);

}  // namespace recon::simt
