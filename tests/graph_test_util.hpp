// Helpers shared by the CUDA-graph suites (test_cuda_graph,
// test_cuda_graph_twostage): bitwise equality of float vectors, the SIMT
// emulator's count of graph launches, and how a run's steps ran.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

#include "runtime/cuda_graph.hpp"

#if defined(RECON_WITH_CUDA)
#include "runtime/cuda_api.hpp"
#endif

namespace recon_test {

// Bitwise equality of two float vectors (NaN payloads and the sign of zero included).
inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// Graphs launched so far: counted by the SIMT emulator, 0 elsewhere.
inline int64_t graph_launches() {
#if defined(RECON_SIMT)
  return recon::simt::graph_launches();
#else
  return 0;
#endif
}

// How a run's steps ran: its CudaGraphStep's captures, replays and eager
// steps, and the graphs launched meanwhile.
struct GraphCounts {
  int64_t captures = 0, replays = 0, eager = 0, graph_launches = 0;

  // Reads `step`'s counters; `launches_before`: graph_launches() when the run began.
  void record(const recon::CudaGraphStep& step, int64_t launches_before) {
    graph_launches = recon_test::graph_launches() - launches_before;
    captures = step.captures();
    replays = step.replays();
    eager = step.eager_steps();
  }
};

}  // namespace recon_test
