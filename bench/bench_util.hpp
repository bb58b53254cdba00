// Helpers shared by the benchmarks (bench_train, bench_kernels): the median
// wall time of a step, the machine's load average, and the agreement rule
// both use against their LibTorch twins.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace recon::bench {

// Median of `runs` timed calls of f (ms, steady_clock), after `warmup` untimed
// ones; sync() runs after each call (a device synchronisation, or nothing).
inline double median_ms(const std::function<void()>& f, const std::function<void()>& sync, int warmup, int runs) {
  for (int i = 0; i < warmup; ++i) f();
  sync();
  std::vector<double> t((size_t)runs);
  for (int i = 0; i < runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    sync();
    t[(size_t)i] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  std::nth_element(t.begin(), t.begin() + runs / 2, t.end());
  return t[(size_t)runs / 2];
}

// "1.23 0.98 0.70" from /proc/loadavg ("unknown" where it cannot be read).
inline std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return f ? a + " " + b + " " + c : std::string("unknown");
}

// max |got - want| / (max |want| + abs_floor): the agreement rule of the
// benchmarks (pass when <= their tolerance; abs_floor = absolute tolerance /
// relative tolerance covers values that are zero in exact arithmetic).
// Infinite for a NaN difference or a size mismatch.
inline double max_rel_error(const std::vector<float>& got, const std::vector<float>& want, double abs_floor) {
  if (got.size() != want.size()) return INFINITY;
  double scale = 0, diff = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, (double)std::fabs(want[i]));
    const double d = std::fabs((double)got[i] - want[i]);
    diff = std::isnan(d) ? INFINITY : std::max(diff, d);
  }
  return diff / (scale + abs_floor);
}

}  // namespace recon::bench
