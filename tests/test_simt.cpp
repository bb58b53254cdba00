// The SIMT emulator's own tests: reductions (shared, dynamic shared, warp
// shuffles), a tiled transpose, atomics, scans and votes, indexing, vector
// math, blocks on several OS threads, each against a CPU reference; a missing
// barrier that only the shuffled thread order exposes; divergent barriers and
// broken warp collectives reported with kernel, block and thread; the
// host-memory runtime API. In the real CUDA build the same kernels (compiled
// by nvcc) run on the GPU, and the suite reports as skipped without one.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <random>
#include <vector>

#if defined(RECON_WITH_CUDA)
#include "runtime/device.hpp"
#include "runtime/error.hpp"
#include "tests/simt_test_kernels.hpp"
#endif
#if defined(RECON_SIMT)
#include "kernels/simt/simt_coverage.hpp"
#endif

#if !defined(RECON_WITH_CUDA)

TEST_CASE("SIMT emulator tests need a CUDA or SIM build") {
  std::printf("test_simt: skipped: built without CUDA; RECON_CUDA=SIM runs these kernels in the emulator\n");
  std::fflush(stdout);
  std::exit(77);  // ctest: skipped
}

#else

using namespace recon;
namespace st = recon::simt_test;

namespace {

// Without a GPU (real CUDA build) nothing here can run: report the whole
// suite as skipped (exit code 77), never as passed.
void require_device() {
  if (cuda_available()) return;
  std::printf("test_simt: skipped: no CUDA device (the SIM build runs these kernels on the CPU)\n");
  std::fflush(stdout);
  std::exit(77);
}

// A device array that owns its memory.
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : n_(n) { RECON_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T))); }
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) { upload(host); }
  ~DeviceArray() { cudaFree(p_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  void upload(const std::vector<T>& host) {
    REQUIRE(host.size() == n_);
    RECON_CUDA_CHECK(cudaMemcpy(p_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  void zero() { RECON_CUDA_CHECK(cudaMemset(p_, 0, n_ * sizeof(T))); }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    RECON_CUDA_CHECK(cudaMemcpy(host.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
  T* get() const { return p_; }

 private:
  T* p_ = nullptr;
  size_t n_;
};

std::vector<float> uniform(size_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(gen);
  return v;
}

// Thread orders to run the correct kernels under: the default order and, in
// the emulator, two shuffled ones (a correct kernel must not care).
std::vector<std::optional<uint64_t>> orders() {
#if defined(RECON_SIMT)
  return {std::nullopt, 1u, 0xC0FFEEu};
#else
  return {std::nullopt};
#endif
}

// Sets the emulator's shuffle seed for a scope (nothing on a real GPU).
class OrderScope {
 public:
  explicit OrderScope(std::optional<uint64_t> seed) {
#if defined(RECON_SIMT)
    old_ = simt::shuffle_seed();
    simt::set_shuffle_seed(seed);
#else
    (void)seed;
#endif
  }
  ~OrderScope() {
#if defined(RECON_SIMT)
    simt::set_shuffle_seed(old_);
#endif
  }

 private:
  std::optional<uint64_t> old_;
};

std::string order_name(const std::optional<uint64_t>& seed) {
  return seed ? "shuffled order, seed " + std::to_string(*seed) : "default order";
}

// Per-block sums of a grid-stride loop, in double: the reference of the reductions.
std::vector<double> block_sums_reference(const std::vector<float>& x, int blocks, int threads) {
  std::vector<double> sums(blocks, 0.0);
  for (size_t i = 0; i < x.size(); ++i) sums[(i % ((size_t)blocks * threads)) / threads] += x[i];
  return sums;
}

void check_block_sums(const std::vector<float>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t b = 0; b < got.size(); ++b) {
    INFO("block " << b);
    CHECK(got[b] == doctest::Approx(want[b]).epsilon(1e-5));
  }
}

}  // namespace

TEST_CASE("shared-memory block reduction matches the CPU (blocks of 32 to 1024 threads)") {
  require_device();
  const std::vector<float> x = uniform(5000, -1.f, 1.f, 1);
  DeviceArray<float> dx(x);
  for (int threads : {32, 256, 1024}) {
    const int blocks = 7;
    for (auto seed : orders()) {
      CAPTURE(threads);
      INFO(order_name(seed));
      OrderScope order(seed);
      DeviceArray<float> sums(blocks);
      RECON_CUDA_CHECK(st::block_sum_shared(dx.get(), sums.get(), (int)x.size(), blocks, threads));
      check_block_sums(sums.download(), block_sums_reference(x, blocks, threads));
    }
  }
}

TEST_CASE("dynamic shared memory: the reduction, and its 48 KiB limit unless raised") {
  require_device();
  const std::vector<float> x = uniform(3000, 0.f, 2.f, 2);
  DeviceArray<float> dx(x);
  const int blocks = 5, threads = 128;
  for (auto seed : orders()) {
    INFO(order_name(seed));
    OrderScope order(seed);
    DeviceArray<float> sums(blocks);
    RECON_CUDA_CHECK(st::block_sum_dynamic(dx.get(), sums.get(), (int)x.size(), blocks, threads));
    check_block_sums(sums.download(), block_sums_reference(x, blocks, threads));
  }
  DeviceArray<float> sums(blocks);
  const int over_default = 60 * 1024;  // above the 48 KiB every kernel may use
  CHECK(st::block_sum_dynamic(dx.get(), sums.get(), (int)x.size(), blocks, threads, over_default) != cudaSuccess);
  CHECK(cudaGetLastError() == cudaSuccess);  // reading the error cleared it
  RECON_CUDA_CHECK(st::allow_dynamic_shared(threads * 4 + over_default));
  RECON_CUDA_CHECK(st::block_sum_dynamic(dx.get(), sums.get(), (int)x.size(), blocks, threads, over_default));
  check_block_sums(sums.download(), block_sums_reference(x, blocks, threads));
}

TEST_CASE("warp-shuffle reduction (shfl_down, shfl_xor) matches the CPU") {
  require_device();
  const std::vector<float> x = uniform(4000, -2.f, 3.f, 3);
  DeviceArray<float> dx(x);
  for (int threads : {32, 96, 1024}) {
    const int blocks = 6;
    for (auto seed : orders()) {
      CAPTURE(threads);
      INFO(order_name(seed));
      OrderScope order(seed);
      DeviceArray<float> sums(blocks);
      RECON_CUDA_CHECK(st::warp_sum_shuffle(dx.get(), sums.get(), (int)x.size(), blocks, threads));
      check_block_sums(sums.download(), block_sums_reference(x, blocks, threads));
    }
  }
}

TEST_CASE("shared-memory tiled transpose is exact, ragged edges included") {
  require_device();
  const int rows = 45, cols = 70;  // neither a multiple of the 32x32 tile
  const std::vector<float> in = uniform((size_t)rows * cols, -5.f, 5.f, 4);
  DeviceArray<float> din(in);
  for (auto seed : orders()) {
    INFO(order_name(seed));
    OrderScope order(seed);
    DeviceArray<float> dout((size_t)rows * cols);
    RECON_CUDA_CHECK(st::transpose_tiled(din.get(), dout.get(), rows, cols));
    const std::vector<float> out = dout.download();
    int wrong = 0;
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) wrong += out[(size_t)c * rows + r] != in[(size_t)r * cols + c];
    CHECK(wrong == 0);
  }
}

TEST_CASE("histogram with shared and global atomics (add on int and float, max, CAS)") {
  require_device();
  const int n = 3000, nbins = 37;
  std::mt19937 gen(5);
  std::uniform_int_distribution<int> pick(0, nbins - 1);
  std::vector<int> values(n);
  for (int& v : values) v = pick(gen);
  values[1234] = nbins - 1;  // the maximum is there
  const std::vector<float> weights = uniform(n, 0.f, 1.f, 6);
  std::vector<unsigned> want_bins(nbins, 0);
  std::vector<double> want_weights(nbins, 0.0);
  for (int i = 0; i < n; ++i) {
    want_bins[values[i]] += 1;
    want_weights[values[i]] += weights[i];
  }
  float want_max_weight = 0.f;
  for (float w : weights) want_max_weight = std::max(want_max_weight, w);

  DeviceArray<int> dvalues(values);
  DeviceArray<float> dweights(weights);
  for (auto seed : orders()) {
    INFO(order_name(seed));
    OrderScope order(seed);
    DeviceArray<unsigned> bins(nbins);
    DeviceArray<float> weight_bins(nbins);
    DeviceArray<int> max_value(1);
    DeviceArray<float> max_weight(1);
    bins.zero();
    weight_bins.zero();
    max_value.upload({-1});
    max_weight.upload({-1.f});
    RECON_CUDA_CHECK(st::histogram_atomic(dvalues.get(), dweights.get(), n, bins.get(), weight_bins.get(), nbins,
                                          max_value.get(), max_weight.get(), 4, 128));
    CHECK(bins.download() == want_bins);
    const std::vector<float> got_weights = weight_bins.download();
    for (int b = 0; b < nbins; ++b) CHECK(got_weights[b] == doctest::Approx(want_weights[b]).epsilon(1e-5));
    CHECK(max_value.download()[0] == nbins - 1);
    CHECK(max_weight.download()[0] == want_max_weight);
  }
}

TEST_CASE("warp scan (shfl_up), broadcast (shfl), __syncwarp, ballot/any/all and __syncthreads_count") {
  require_device();
  const int threads = 64, n = 128;  // 2 blocks of 2 warps
  std::vector<int> x(n);
  for (int i = 0; i < n; ++i) {
    const int warp = i / 32, lane = i % 32;
    x[i] = warp == 0 ? lane + 1 : warp == 1 ? -lane : warp == 2 ? (lane % 3 == 0 ? 2 : 0) : (lane == 17 ? 5 : -1);
  }
  DeviceArray<int> dx(x);
  for (auto seed : orders()) {
    INFO(order_name(seed));
    OrderScope order(seed);
    DeviceArray<int> scan(n), broadcast(n), reversed(n), any(4), all(4), block_count(2);
    DeviceArray<unsigned> ballot(4);
    RECON_CUDA_CHECK(st::warp_scan_votes(dx.get(), scan.get(), broadcast.get(), reversed.get(), ballot.get(),
                                         any.get(), all.get(), block_count.get(), n, threads));
    std::vector<int> want_scan(n), want_broadcast(n), want_reversed(n);
    std::vector<unsigned> want_ballot(4, 0);
    std::vector<int> want_any(4, 0), want_all(4, 1), want_count(2, 0);
    for (int i = 0; i < n; ++i) {
      const int warp = i / 32, lane = i % 32;
      want_scan[i] = x[i] + (lane > 0 ? want_scan[i - 1] : 0);
      want_broadcast[i] = x[warp * 32];
      want_reversed[i] = x[warp * 32 + 31 - lane];
      if (x[i] > 0) {
        want_ballot[warp] |= 1u << lane;
        want_any[warp] = 1;
        want_count[i / threads] += 1;
      } else {
        want_all[warp] = 0;
      }
    }
    CHECK(scan.download() == want_scan);
    CHECK(broadcast.download() == want_broadcast);
    CHECK(reversed.download() == want_reversed);
    CHECK(ballot.download() == want_ballot);
    const std::vector<int> got_any = any.download(), got_all = all.download();
    for (int w = 0; w < 4; ++w) {
      CHECK((got_any[w] != 0) == (want_any[w] != 0));
      CHECK((got_all[w] != 0) == (want_all[w] != 0));
    }
    CHECK(block_count.download() == want_count);
  }
}

TEST_CASE("3-D grids of 3-D blocks: every thread sees its own blockIdx and threadIdx") {
  require_device();
  const dim3 grid(3, 2, 2), block(4, 3, 2);
  const int blocks = 12, threads = 24;
  DeviceArray<int> out(blocks * threads);
  out.upload(std::vector<int>(blocks * threads, -1));
  RECON_CUDA_CHECK(st::index_map(out.get(), grid, block));
  const std::vector<int> got = out.download();
  int wrong = 0;
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx)
        for (unsigned tz = 0; tz < block.z; ++tz)
          for (unsigned ty = 0; ty < block.y; ++ty)
            for (unsigned tx = 0; tx < block.x; ++tx) {
              const unsigned b = bx + grid.x * (by + grid.y * bz), t = tx + block.x * (ty + block.y * tz);
              const int want = (int)(bx + 10 * by + 100 * bz + 1000 * (tx + 10 * ty + 100 * tz));
              wrong += got[b * threads + t] != want;
            }
  CHECK(wrong == 0);
}

TEST_CASE("float4 loads through __ldg and the math intrinsics match the CPU") {
  require_device();
  const int n = 256;
  const std::vector<float> a = uniform(n, -1.f, 1.f, 7), b = uniform(n, 0.25f, 4.f, 8), c = uniform(n, -3.f, 3.f, 9);
  DeviceArray<float> da(a), db(b), dc(c), dy(n);
  RECON_CUDA_CHECK(st::vector_math(da.get(), db.get(), dc.get(), dy.get(), n));
  const std::vector<float> y = dy.download();
  for (int i = 0; i < n; ++i) {
    const double want = (double)a[i] * b[i] + c[i] + 1.0 / std::sqrt((double)b[i]) + std::exp(-(double)a[i]) +
                        (double)a[i] / b[i];
    INFO("element " << i);
    // The GPU's __expf, __fdividef and rsqrtf are within a few ulp.
    CHECK(y[i] == doctest::Approx(want).epsilon(1e-5));
  }
}

TEST_CASE("an invalid launch configuration is reported by cudaGetLastError and runs nothing") {
  require_device();
  const std::vector<float> x(64, 1.f);
  DeviceArray<float> dx(x);
  DeviceArray<float> sums(1);
  sums.upload({-7.f});
  CHECK(st::block_sum_shared(dx.get(), sums.get(), 64, 1, 2048) == cudaErrorInvalidConfiguration);
  CHECK(cudaGetLastError() == cudaSuccess);
  CHECK(sums.download()[0] == -7.f);
}

TEST_CASE("two blocks that wait on each other run at the same time") {
  require_device();
#if defined(RECON_SIMT)
  const int old_threads = simt::worker_threads();
  simt::set_worker_threads(2);
#endif
  DeviceArray<int> flag(1), seen(1);
  flag.zero();
  seen.upload({-1});
  RECON_CUDA_CHECK(st::handshake(flag.get(), seen.get(), 4'000'000'000LL));
  CHECK(seen.download()[0] == 1);
#if defined(RECON_SIMT)
  // On one OS thread, block 0 polls to the end before block 1 starts: the
  // flag is never seen. (This is the constraint the pool lifts.)
  simt::set_worker_threads(1);
  flag.zero();
  seen.upload({-1});
  RECON_CUDA_CHECK(st::handshake(flag.get(), seen.get(), 100'000));
  CHECK(seen.download()[0] == 0);
  simt::set_worker_threads(old_threads);
#endif
}

#if defined(RECON_SIMT)

TEST_CASE("a missing __syncthreads: hidden by the default order, exposed by the shuffled order") {
  const int threads = 64;
  auto reference = [](const std::vector<float>& x) {
    std::vector<float> y(x.size());
    for (size_t t = 0; t < x.size(); ++t) y[t] = x[t] + (t > 0 ? x[t - 1] : 0.f);
    return y;
  };
  auto run = [&](const std::vector<float>& x) {
    DeviceArray<float> dx(x), dy(threads);
    RECON_CUDA_CHECK(st::neighbour_sum_missing_barrier(dx.get(), dy.get(), threads));
    return dy.download();
  };
  {
    OrderScope order(std::nullopt);  // ascending order: thread t - 1 always writes before thread t reads
    const std::vector<float> x = uniform(threads, 1.f, 2.f, 10);
    CHECK(run(x) == reference(x));
  }
  for (uint64_t seed : {1u, 2u, 3u}) {
    CAPTURE(seed);
    OrderScope order(seed);
    // Fresh values each run, so that what the previous run left in shared
    // memory cannot pass for the right answer.
    const std::vector<float> x = uniform(threads, 1.f, 2.f, 100 + (uint32_t)seed);
    const std::vector<float> y = run(x), want = reference(x);
    int wrong = 0;
    for (int t = 0; t < threads; ++t) wrong += y[t] != want[t];
    CHECK(wrong > 0);
  }
}

TEST_CASE("a barrier reached by part of a block is an error naming kernel, block and thread") {
  OrderScope order(std::nullopt);  // the messages below name the threads the default order meets first
  DeviceArray<float> y(3 * 64);
  for (int os_threads : {1, 3}) {
    CAPTURE(os_threads);
    const int old_threads = simt::worker_threads();
    simt::set_worker_threads(os_threads);
    try {
      (void)st::divergent_barrier(y.get(), 64);
      FAIL("the divergent barrier was not reported");
    } catch (const Error& e) {
      const std::string msg = e.what();
      CAPTURE(msg);
      CHECK(msg.find("kernel 'divergent_barrier_kernel'") != std::string::npos);
      CHECK(msg.find("block (2,0,0)") != std::string::npos);
      CHECK(msg.find("reached by 32 of 64 threads") != std::string::npos);
      CHECK(msg.find("thread (32,0,0) exited without reaching it") != std::string::npos);
      CHECK(msg.find("simt_test_kernels.cu:") != std::string::npos);
    }
    simt::set_worker_threads(old_threads);
  }
  // The emulator is usable after a failed launch.
  const std::vector<float> x = uniform(256, 0.f, 1.f, 11);
  DeviceArray<float> dx(x), sums(2);
  RECON_CUDA_CHECK(st::block_sum_shared(dx.get(), sums.get(), 256, 2, 64));
  check_block_sums(sums.download(), block_sums_reference(x, 2, 64));
}

TEST_CASE("threads waiting at two different barriers are an error") {
  DeviceArray<float> y(64);
  {
    OrderScope order(std::nullopt);
    CHECK_THROWS_WITH_AS(st::barrier_two_sites(y.get(), 64),
                         doctest::Contains("kernel 'barrier_two_sites_kernel', block (0,0,0): thread (32,0,0) waits "
                                           "at __syncthreads at simt_test_kernels.cu:"),
                         Error);
    CHECK_THROWS_WITH_AS(st::barrier_two_sites(y.get(), 64), doctest::Contains("while thread (0,0,0) waits"), Error);
  }
  for (uint64_t seed : {5u, 6u}) {  // any order meets the two sites
    CAPTURE(seed);
    OrderScope order(seed);
    CHECK_THROWS_WITH_AS(st::barrier_two_sites(y.get(), 64), doctest::Contains("(a barrier in divergent code)"),
                         Error);
  }
}

TEST_CASE("a shuffle whose mask names a lane that does not take part is an error") {
  OrderScope order(std::nullopt);
  DeviceArray<float> y(32);
  CHECK_THROWS_WITH_AS(st::shuffle_missing_lane(y.get()),
                       doctest::Contains("kernel 'shuffle_missing_lane_kernel', block (0,0,0): thread (0,0,0) waits "
                                         "at __shfl_sync(mask 0xffffffff)"),
                       Error);
  CHECK_THROWS_WITH_AS(st::shuffle_missing_lane(y.get()),
                       doctest::Contains("thread (5,0,0) (lane 5 of warp 0, named in the mask) is waiting at "
                                         "__syncthreads"),
                       Error);
  CHECK_THROWS_WITH_AS(st::shuffle_mask_without_self(y.get()),
                       doctest::Contains("thread (0,0,0) (lane 0 of warp 0) calls __shfl_sync"), Error);
  CHECK_THROWS_WITH_AS(st::shuffle_mask_without_self(y.get()),
                       doctest::Contains("with mask 0xfffffffe, which leaves out its own lane"), Error);
}

TEST_CASE("emulated device memory: bounds-checked copies, poisoned allocations, frees") {
  const size_t before = simt::live_device_allocations();
  float* d = nullptr;
  REQUIRE(cudaMalloc(reinterpret_cast<void**>(&d), 10 * sizeof(float)) == cudaSuccess);
  CHECK(simt::live_device_allocations() == before + 1);
  std::vector<float> host(12, 3.f);
  RECON_CUDA_CHECK(cudaMemcpy(host.data(), d, 10 * sizeof(float), cudaMemcpyDeviceToHost));
  CHECK(std::isnan(host[0]));  // nothing wrote it yet
  CHECK(host[10] == 3.f);
  CHECK(cudaMemcpy(d, host.data(), 11 * sizeof(float), cudaMemcpyHostToDevice) == cudaErrorInvalidValue);
  CHECK(cudaGetLastError() == cudaErrorInvalidValue);
  CHECK(cudaGetLastError() == cudaSuccess);
  CHECK(cudaMemcpy(host.data(), host.data() + 1, 4, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);
  CHECK(cudaMemset(d + 2, 0, 9 * sizeof(float)) == cudaErrorInvalidValue);
  RECON_CUDA_CHECK(cudaMemsetAsync(d + 2, 0, 8 * sizeof(float), nullptr));
  RECON_CUDA_CHECK(cudaMemcpy(host.data(), d, 10 * sizeof(float), cudaMemcpyDeviceToHost));
  CHECK(std::isnan(host[1]));
  CHECK(host[2] == 0.f);
  CHECK(host[9] == 0.f);
  RECON_CUDA_CHECK(cudaFree(d));
  CHECK(cudaFree(d) == cudaErrorInvalidValue);  // twice
  (void)cudaGetLastError();
  CHECK(simt::live_device_allocations() == before);
  CHECK_THROWS_WITH_AS(RECON_CUDA_CHECK(cudaFree(host.data())), doctest::Contains("invalid argument"), Error);
  (void)cudaGetLastError();
}

TEST_CASE("kernel coverage: __global__ names in a source and in a launch log") {
  const char* source = R"(
    // __global__ void commented_out(float* x) {}
    /* __global__ void also_commented(float* x); */
    template <int N>
    __global__ void __launch_bounds__(256) tiled_kernel(const float* __restrict__ x, float* y) {}
    __global__ void plain_kernel(float* y);
    __global__ void plain_kernel(float* y) { const char* s = "__global__ void in_a_string("; }
    __device__ float helper(float x) { return x; }
  )";
  CHECK(simt::kernels_defined_in(source) == std::vector<std::string>{"tiled_kernel", "plain_kernel"});
  CHECK(simt::kernel_base_name("(recon::tiled_kernel<float, 2>)") == "tiled_kernel");
  CHECK(simt::kernel_base_name("plain_kernel") == "plain_kernel");
  CHECK(simt::read_kernel_log("/nonexistent/simt.log").empty());
  const std::string log = "simt_coverage_test.log";
  {
    std::ofstream out(log);
    out << "plain_kernel\ttest_a\ntiled_kernel\ttest_b\nplain_kernel\ttest_c\n";
  }
  CHECK(simt::read_kernel_log(log) == std::set<std::string>{"plain_kernel", "tiled_kernel"});
  std::remove(log.c_str());
}

#endif  // RECON_SIMT
#endif  // RECON_WITH_CUDA
