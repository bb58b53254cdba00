// The CUDA side of the runtime: device memory, copies and guard bytes. Runs
// on a real GPU and in the SIM build; skipped (and reported so) elsewhere.
#include <doctest/doctest.h>

#include "cuda_compare.hpp"
#include "runtime/cuda_context.hpp"
#include "runtime/error.hpp"

using namespace recon;

#if defined(RECON_WITH_CUDA)
TEST_CASE("guard bytes catch a write past the end of a device allocation" * test::needs_cuda()) {
  test::GuardScope guards;
  Tensor t = Tensor::zeros({10}, Device::cuda());
  void* base = t.impl()->storage->data();
  CHECK_NOTHROW(cuda::check_guards(base));
  // One float written just past the end, as an off-by-one kernel would.
  const float bad = 1.f;
  cuda::copy_h2d(static_cast<float*>(base) + 10, &bad, sizeof bad);
  CHECK_THROWS_WITH_AS(cuda::check_guards(base), doctest::Contains("were overwritten"), Error);
  const int64_t before = cuda::guard_violations();
  t = Tensor();  // the free notices the damage too
  CHECK(cuda::guard_violations() == before + 1);
}

TEST_CASE("guard bytes catch a write before the start" * test::needs_cuda()) {
  test::GuardScope guards;
  Tensor t = Tensor::zeros({4}, Device::cuda());
  void* base = t.impl()->storage->data();
  const float bad = 2.f;
  cuda::copy_h2d(static_cast<float*>(base) - 1, &bad, sizeof bad);
  CHECK_THROWS_AS(cuda::check_guards(base), Error);
  const int64_t before = cuda::guard_violations();
  t = Tensor();
  CHECK(cuda::guard_violations() == before + 1);
}

TEST_CASE("unguarded allocations are refused by check_guards" * test::needs_cuda()) {
  Tensor t = Tensor::zeros({4}, Device::cuda());
  CHECK_THROWS_WITH_AS(cuda::check_guards(t.impl()->storage->data()), doctest::Contains("not a guarded"), Error);
}
#endif

TEST_CASE("mixed devices are rejected by name" * test::needs_cuda()) {
  Tensor a = Tensor::ones({2, 2}), b = Tensor::ones({2, 2}, Device::cuda());
  CHECK_THROWS_WITH_AS(add(a, b), doctest::Contains("add: tensors on different devices (cpu and cuda:0)"), Error);
}

TEST_CASE("pinned host tensors copy to the device and back" * test::needs_cuda()) {
  Tensor p = Tensor::empty_pinned({3, 4});
  CHECK(p.device().is_cpu());
  CHECK(p.is_pinned());
  CHECK_FALSE(Tensor::empty({3, 4}).is_pinned());
  for (int i = 0; i < 12; ++i) p.data()[i] = (float)i * 0.5f;
  Tensor d = p.to(Device::cuda());
  CHECK(d.to_vector() == p.to_vector());
}
