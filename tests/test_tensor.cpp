// Tensor, Storage and Generator: shapes, strides, views, copies, alignment,
// errors, and seeded determinism.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "runtime/error.hpp"
#include "kernels/common/philox.hpp"
#include "runtime/ops.hpp"
#include "runtime/storage.hpp"

using namespace recon;

TEST_CASE("factories, shape and contiguous strides") {
  Tensor t = Tensor::zeros({2, 3, 4, 5});
  CHECK(t.dim() == 4);
  CHECK(t.numel() == 120);
  CHECK(t.strides() == Shape{60, 20, 5, 1});
  CHECK(t.is_contiguous());
  CHECK(t.size(-1) == 5);
  CHECK_THROWS_AS(t.size(4), Error);
  Tensor s = Tensor::scalar(3.5f);
  CHECK(s.dim() == 0);
  CHECK(s.numel() == 1);
  CHECK(s.item() == 3.5f);
  Tensor f = Tensor::full({3}, 2.f);
  CHECK(f.to_vector() == std::vector<float>{2, 2, 2});
  CHECK_THROWS_WITH_AS(Tensor::from_vector({1, 2, 3}, {2, 2}), doctest::Contains("3 values for shape (2, 2)"),
                       Error);
}

TEST_CASE("storage is 64-byte aligned and move-only") {
  for (int n : {1, 3, 17, 1000}) {
    Tensor t = Tensor::empty({n});
    CHECK(reinterpret_cast<uintptr_t>(t.data()) % 64 == 0);
  }
  Storage a(256, Device::cpu());
  void* p = a.data();
  Storage b(std::move(a));
  CHECK(b.data() == p);
  CHECK(a.data() == nullptr);
  static_assert(!std::is_copy_constructible_v<Storage>);
}

// tests/CMakeLists.txt runs this case again with RECON_HOST_CACHE_MB=0 (keep nothing).
TEST_CASE("host block cache: freed blocks of 64 KiB and more are reused for the same size, under the cap") {
  const char* env = std::getenv("RECON_HOST_CACHE_MB");
  const size_t cap = host_cache_cap();  // throws for a bad RECON_HOST_CACHE_MB
  const std::string env_str = env ? env : "(unset)";
  INFO("RECON_HOST_CACHE_MB=" << env_str << ", cap " << cap);
  if (env != nullptr) CHECK(cap == std::strtoull(env, nullptr, 10) << 20);
  const bool off = cap == 0;  // RECON_HOST_CACHE_MB=0, or an AddressSanitizer build
  host_cache_release();
  REQUIRE(host_cache_bytes() == 0);
  const size_t big = size_t(1) << 20, bytes_before = storage_bytes_in_use(Device::cpu());
  void* first = nullptr;
  {
    Storage s(big, Device::cpu());
    first = s.data();
    CHECK(storage_bytes_in_use(Device::cpu()) == bytes_before + big);
  }
  CHECK(host_cache_bytes() == (off ? 0 : big));  // kept (unless the cap is 0), no longer counted as in use
  CHECK(storage_bytes_in_use(Device::cpu()) == bytes_before);
  {
    Storage other(big + 4096, Device::cpu());  // another size: never this block
    CHECK(other.data() != first);
    Storage again(big - 10, Device::cpu());  // rounds to the same 64-byte multiple: the same block
    if (!off) CHECK(again.data() == first);
    CHECK(host_cache_bytes() == 0);
    CHECK(reinterpret_cast<uintptr_t>(again.data()) % Storage::kAlignment == 0);
  }
  CHECK(host_cache_bytes() == (off ? 0 : 2 * big + 4096));
  { Storage small(1024, Device::cpu()); }
  CHECK(host_cache_bytes() == (off ? 0 : 2 * big + 4096));  // a 1 KiB block goes straight back to malloc
  host_cache_release();
  CHECK(host_cache_bytes() == 0);
}

TEST_CASE("reshape is a view; slice-like strides copy on contiguous()") {
  Tensor t = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor r = reshape(t, {3, -1});
  CHECK(r.shape() == Shape{3, 2});
  CHECK(r.shares_storage(t));
  t.data()[0] = 42.f;
  CHECK(r.to_vector()[0] == 42.f);
  // A transposed view built by hand: strides (1, 3).
  Tensor tr = make_view(t.impl()->storage, {3, 2}, {1, 3}, 0);
  CHECK_FALSE(tr.is_contiguous());
  CHECK(tr.to_vector() == std::vector<float>{42, 3, 1, 4, 2, 5});
  Tensor c = tr.contiguous();
  CHECK(c.is_contiguous());
  CHECK_FALSE(c.shares_storage(t));
  CHECK_THROWS_WITH_AS(reshape(t, {4, 2}), doctest::Contains("does not fit 6 elements"), Error);
  CHECK_THROWS_WITH_AS(reshape(t, {-1, -1}), doctest::Contains("more than one -1"), Error);
}

TEST_CASE("clone and copy_ are deep; detach shares") {
  Tensor a = Tensor::from_vector({1, 2, 3}, {3});
  Tensor b = a.clone();
  b.data()[0] = 9;
  CHECK(a.to_vector()[0] == 1);
  Tensor d = a.detach();
  CHECK(d.shares_storage(a));
  Tensor z = Tensor::zeros({3});
  z.copy_(a);
  CHECK(z.to_vector() == std::vector<float>{1, 2, 3});
  CHECK_THROWS_AS(z.copy_(Tensor::zeros({4})), Error);
}

TEST_CASE("generator: same seed, same numbers; known statistics") {
  Generator g1(1234), g2(1234), g3(99);
  Tensor a = Tensor::normal({10000}, g1), b = Tensor::normal({10000}, g2), c = Tensor::normal({10000}, g3);
  CHECK(a.to_vector() == b.to_vector());
  CHECK(a.to_vector() != c.to_vector());
  // Successive draws continue the stream rather than repeat it.
  Tensor a2 = Tensor::normal({10000}, g1);
  CHECK(a2.to_vector() != a.to_vector());
  double m = 0, v = 0;
  for (float x : a.to_vector()) m += x;
  m /= 10000;
  for (float x : a.to_vector()) v += (x - m) * (x - m);
  v /= 10000;
  CHECK(std::abs(m) < 0.05);
  CHECK(std::abs(v - 1.0) < 0.05);
  Generator gu(7);
  auto u = Tensor::uniform({10000}, gu, 2.f, 4.f).to_vector();
  double mu = 0;
  for (float x : u) {
    CHECK_MESSAGE((x >= 2.f && x < 4.f), x);
    mu += x;
  }
  CHECK(std::abs(mu / 10000 - 3.0) < 0.05);
  Generator gb(8);
  auto bern = Tensor::bernoulli({10000}, gb, 0.3f).to_vector();
  double ones = 0;
  for (float x : bern) ones += x;
  CHECK(std::abs(ones / 10000 - 0.3) < 0.02);
}

TEST_CASE("generator: values pinned across machines") {
  // Philox4x32-10 known-answer test: counter 0, key 0 (Random123's kat_vectors).
  Philox4 r = philox4x32_10(0, 0);
  CHECK(r.v[0] == 0x6627e8d5u);
  CHECK(r.v[1] == 0xe169c58du);
  CHECK(r.v[2] == 0xbc57ac4cu);
  CHECK(r.v[3] == 0x9b00dbd8u);
}

TEST_CASE("errors name the file and line") {
  try {
    RECON_CHECK(1 + 1 == 3, "arithmetic is broken: " << 42);
    FAIL("no throw");
  } catch (const Error& e) {
    std::string m = e.what();
    CHECK(m.find("arithmetic is broken: 42") != std::string::npos);
    CHECK(m.find("test_tensor.cpp:") != std::string::npos);
  }
}

TEST_CASE("cuda device requests fail clearly without a CUDA build or device") {
  if (cuda_available()) return;  // nothing to check where CUDA exists
  CHECK_THROWS_WITH_AS(parse_device("cuda"), doctest::Contains("no CUDA device is available"), Error);
  CHECK(parse_device("auto") == Device::cpu());
  CHECK_THROWS_WITH_AS(parse_device("tpu"), doctest::Contains("unknown device 'tpu'"), Error);
}

// Runs on a real GPU and in the SIM build (the emulator backs device memory
// with host memory); doctest reports it as skipped elsewhere.
TEST_CASE("to(cuda) and back round-trips values; device tensors refuse host access paths" *
          doctest::skip(!cuda_available())) {
  Generator g(5);
  Tensor h = Tensor::normal({3, 5, 7}, g);
  Tensor d = h.to(Device::cuda());
  CHECK(d.device().is_cuda());
  CHECK_FALSE(d.shares_storage(h));
  Tensor back = d.to(Device::cpu());
  CHECK(back.to_vector() == h.to_vector());
  Tensor z = Tensor::zeros({4, 4}, Device::cuda());
  CHECK(z.to_vector() == std::vector<float>(16, 0.f));
  Tensor f = Tensor::full({5}, 2.5f, Device::cuda());
  CHECK(f.to_vector() == std::vector<float>(5, 2.5f));
  Tensor c = d.clone();
  CHECK(c.to_vector() == h.to_vector());
  CHECK(storage_bytes_in_use(Device::cuda()) >= 3 * 5 * 7 * sizeof(float));
}
