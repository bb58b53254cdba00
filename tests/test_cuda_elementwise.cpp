// CUDA elementwise ops and tensor utilities against the CPU: binary ops on
// equal shapes (float4 path, scalar tail, misaligned operands) and with 4-D
// broadcasting, every unary op forward and backward, add_, fill_, clone of
// non-contiguous tensors, and the random factories (the same numbers as the
// CPU for the same generator state). Runs on a real GPU or the SIMT emulator
// (RECON_CUDA=SIM); reported as skipped without either.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "cuda_compare.hpp"
#include "runtime/ops.hpp"

using namespace recon;

namespace {

// Exact ops (+, -, *, copies): the same float operations as the CPU. A
// tolerance rather than 0 leaves room for a GPU contracting into an FMA.
constexpr double kExact = 1e-12;
// Transcendental ops (CUDA's expf/logf/powf/tanhf are within 2 ulp of
// libm), and gradients summed over broadcast dims (a different, fixed order
// of double additions may round the float result 1 ulp apart).
constexpr double kTranscendental = 1e-10;

Tensor cpu_uniform(const Shape& shape, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  Generator g(seed);
  return Tensor::uniform(shape, g, lo, hi);
}

// A CUDA copy of t whose data starts `offset` floats into its allocation:
// offset 1 makes the pointer 4 mod 16 bytes, so kernels take the scalar path.
Tensor cuda_copy_at(const Tensor& t, int64_t offset) {
  Tensor base = Tensor::zeros({t.numel() + offset}, Device::cuda());
  Tensor v = make_view(base.impl()->storage, t.shape(), contiguous_strides(t.shape()), offset);
  v.copy_(t);
  return v;
}

using Op = std::function<Tensor(const std::vector<Tensor>&)>;

// Runs `op` on CPU leaves and on CUDA copies of them (each placed `offset`
// floats into its allocation), compares the outputs, then back-propagates
// the same random output gradient on both devices and compares every
// input's gradient.
void check_forward_backward(const Op& op, const std::vector<Tensor>& inputs, double fwd_threshold,
                            double bwd_threshold, const std::string& what, int64_t offset = 0) {
  test::GuardScope guards;
  std::vector<Tensor> on_cpu, on_cuda;
  for (const Tensor& t : inputs) {
    on_cpu.push_back(t.clone().set_requires_grad(true));
    on_cuda.push_back(cuda_copy_at(t, offset).set_requires_grad(true));
  }
  Tensor y_cpu = op(on_cpu), y_cuda = op(on_cuda);
  test::check_matches(y_cuda, y_cpu, fwd_threshold, what + ": forward");
  Tensor gy = cpu_uniform(y_cpu.shape(), 99);
  y_cpu.backward(gy);
  y_cuda.backward(gy.to(Device::cuda()));
  for (size_t i = 0; i < inputs.size(); ++i)
    test::check_matches(on_cuda[i].grad(), on_cpu[i].grad(), bwd_threshold,
                        what + ": gradient of input " + std::to_string(i));
}

struct BinaryCase {
  const char* name;
  Tensor (*fn)(const Tensor&, const Tensor&);
};
const BinaryCase kBinary[] = {{"add", add}, {"sub", sub}, {"mul", mul}, {"div", div}};

// Operands of a binary op: the divisor is kept away from 0.
std::vector<Tensor> binary_inputs(const Shape& sa, const Shape& sb, uint64_t seed) {
  return {cpu_uniform(sa, seed), cpu_uniform(sb, seed + 1, 0.5f, 2.f)};
}

}  // namespace

TEST_CASE("binary ops on equal shapes: float4 path, scalar tail, misaligned operands" * test::needs_cuda()) {
  // 96 = a multiple of 4; 105 and 1 leave tails of 1; 4099 spans several blocks.
  const std::vector<Shape> shapes = {{2, 3, 4, 4}, {3, 5, 7}, {1}, {4099}, {1, 1, 2, 3, 5}};
  for (const BinaryCase& c : kBinary)
    for (const Shape& s : shapes)
      for (int64_t offset : {0, 1, 2}) {
        Op op = [&](const std::vector<Tensor>& x) { return c.fn(x[0], x[1]); };
        check_forward_backward(op, binary_inputs(s, s, 7), kExact,
                               kTranscendental,
                               std::string(c.name) + " " + shape_str(s) + " offset " + std::to_string(offset),
                               offset);
      }
}

TEST_CASE("binary ops with 4-D broadcasting, forward and the sum_to backward" * test::needs_cuda()) {
  const std::vector<std::pair<Shape, Shape>> pairs = {
      {{2, 3, 4, 5}, {3, 1, 5}}, {{4, 1}, {1, 6}},       {{2, 1, 3, 1}, {1, 5, 1, 7}},
      {{7}, {3, 1}},             {{1}, {2, 3, 5, 3}},    {{3, 37}, {37}},
  };
  for (const BinaryCase& c : kBinary)
    for (const auto& [sa, sb] : pairs) {
      Op op = [&](const std::vector<Tensor>& x) { return c.fn(x[0], x[1]); };
      check_forward_backward(op, binary_inputs(sa, sb, 11), kExact,
                             kTranscendental, std::string(c.name) + " " + shape_str(sa) + " with " + shape_str(sb));
    }
}

TEST_CASE("unary ops forward and backward, aligned and misaligned" * test::needs_cuda()) {
  struct UnaryCase {
    const char* name;
    std::function<Tensor(const Tensor&)> fn;
    float lo, hi;  // input range (inside the op's domain)
    double threshold;
  };
  const std::vector<UnaryCase> cases = {
      {"scale", [](const Tensor& x) { return scale(x, -1.75f); }, -2.f, 2.f, kExact},
      {"add_scalar", [](const Tensor& x) { return add_scalar(x, 0.3f); }, -2.f, 2.f, kExact},
      {"neg", [](const Tensor& x) { return neg(x); }, -2.f, 2.f, kExact},
      {"exp", [](const Tensor& x) { return exp(x); }, -3.f, 3.f, kTranscendental},
      {"log", [](const Tensor& x) { return log(x); }, 0.1f, 4.f, kTranscendental},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, 0.1f, 4.f, kTranscendental},
      {"pow", [](const Tensor& x) { return pow(x, 2.5f); }, 0.1f, 3.f, kTranscendental},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.3f, 0.4f); }, -1.f, 1.f, kExact},
      {"relu", [](const Tensor& x) { return relu(x); }, -1.f, 1.f, kExact},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.1f); }, -1.f, 1.f, kExact},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, -6.f, 6.f, kTranscendental},
      {"tanh", [](const Tensor& x) { return tanh(x); }, -3.f, 3.f, kTranscendental},
  };
  // 1003 = 250 float4 + a tail of 3; (2, 3, 5) = 30, a tail of 2; 4 = one float4.
  const std::vector<Shape> shapes = {{1003}, {2, 3, 5}, {4}};
  for (const UnaryCase& c : cases)
    for (const Shape& s : shapes)
      for (int64_t offset : {0, 3}) {
        Op op = [&](const std::vector<Tensor>& x) { return c.fn(x[0]); };
        check_forward_backward(op, {cpu_uniform(s, 21, c.lo, c.hi)}, c.threshold, c.threshold,
                               std::string(c.name) + " " + shape_str(s) + " offset " + std::to_string(offset),
                               offset);
      }
}

TEST_CASE("add_ in place: float4 path, tail, misaligned, and a += a" * test::needs_cuda()) {
  test::GuardScope guards;
  for (const Shape& s : std::vector<Shape>{{1003}, {2, 2, 2}, {1}})
    for (int64_t offset : {0, 1}) {
      INFO(shape_str(s) << " offset " << offset);
      Tensor a = cpu_uniform(s, 31), b = cpu_uniform(s, 32);
      Tensor a_cuda = cuda_copy_at(a, offset), b_cuda = cuda_copy_at(b, 0);
      add_(a, b);
      add_(a_cuda, b_cuda);
      test::check_matches(a_cuda, a, kExact, "add_");
      add_(a, a);
      add_(a_cuda, a_cuda);
      test::check_matches(a_cuda, a, kExact, "add_(a, a)");
    }
}

TEST_CASE("fill_ and the constant factories write the value on the device" * test::needs_cuda()) {
  test::GuardScope guards;
  for (const Shape& s : std::vector<Shape>{{}, {1}, {3, 5, 7}, {2000}}) {
    INFO(shape_str(s));
    Tensor t = Tensor::empty(s, Device::cuda());
    t.fill_(-2.5f);
    test::check_matches(t, Tensor::full(s, -2.5f), 0.0, "fill_");
    test::check_matches(Tensor::ones(s, Device::cuda()), Tensor::ones(s), 0.0, "ones");
    test::check_matches(Tensor::zeros(s, Device::cuda()), Tensor::zeros(s), 0.0, "zeros");
  }
  // A contiguous view in the middle of an allocation: only its elements change.
  Tensor base = Tensor::zeros({10}, Device::cuda());
  Tensor mid = make_view(base.impl()->storage, {5}, {1}, 3);
  mid.fill_(4.f);
  CHECK(base.to_vector() == std::vector<float>{0, 0, 0, 4, 4, 4, 4, 4, 0, 0});
}

TEST_CASE("clone of non-contiguous CUDA tensors gathers the strided elements" * test::needs_cuda()) {
  test::GuardScope guards;
  Tensor x = cpu_uniform({3, 4, 5, 6}, 41);
  Tensor xc = x.to(Device::cuda());
  struct View {
    const char* name;
    Shape shape, strides;
    int64_t offset;
  };
  const std::vector<View> views = {
      {"transpose of the last two dims", {3, 4, 6, 5}, {120, 30, 1, 6}, 0},
      {"NCHW as NHWC order", {3, 5, 6, 4}, {120, 6, 1, 30}, 0},
      {"every other column from an offset", {3, 4, 5, 3}, {120, 30, 6, 2}, 1},
      {"a broadcast (stride 0) dim", {2, 7, 5}, {6, 0, 1}, 4},
      {"rank 1, stride 7", {17}, {7}, 2},
      {"rank 6", {2, 3, 2, 2, 5, 3}, {180, 60, 30, 15, 3, 1}, 0},
  };
  for (const View& v : views) {
    Tensor ref = make_view(x.impl()->storage, v.shape, v.strides, v.offset).clone();
    Tensor got = make_view(xc.impl()->storage, v.shape, v.strides, v.offset).clone();
    CHECK(got.is_contiguous());
    test::check_matches(got, ref, 0.0, v.name);
  }
}

TEST_CASE("random factories draw the CPU's numbers on the device" * test::needs_cuda()) {
  test::GuardScope guards;
  for (const Shape& s : std::vector<Shape>{{1}, {3, 7, 11}, {4097}}) {
    INFO(shape_str(s));
    Generator g_cpu(1234), g_cuda(1234);
    g_cpu.reserve(17);  // a non-zero starting offset
    g_cuda.reserve(17);
    Tensor u_cpu = Tensor::uniform(s, g_cpu, -2.f, 3.f), u_cuda = Tensor::uniform(s, g_cuda, -2.f, 3.f, Device::cuda());
    Tensor n_cpu = Tensor::normal(s, g_cpu, 0.5f, 2.f), n_cuda = Tensor::normal(s, g_cuda, 0.5f, 2.f, Device::cuda());
    Tensor b_cpu = Tensor::bernoulli(s, g_cpu, 0.3f), b_cuda = Tensor::bernoulli(s, g_cuda, 0.3f, Device::cuda());
    // Uniform and Bernoulli use exact float arithmetic: bitwise equal.
    CHECK(u_cuda.device().is_cuda());
    CHECK(u_cuda.to_vector() == u_cpu.to_vector());
    CHECK(b_cuda.to_vector() == b_cpu.to_vector());
    // Box-Muller in double rounds to the same float unless log/cos differ in
    // the last double bit at a float rounding boundary.
    test::check_matches(n_cuda, n_cpu, 1e-12, "normal");
    CHECK(g_cuda.offset() == g_cpu.offset());
  }
}
