// No op falls back to the CPU silently (DESIGN.md, decision 3): every op of
// runtime/ops.hpp is called with CUDA inputs, forward and (for
// differentiable ops) backward. Each call must either run and give CUDA
// results (outputs, gradients, updated buffers) or throw exactly
// "<name>: not implemented on CUDA". A CPU result or any other error fails.
// Every op has CUDA kernels, so a "not implemented" op fails too (named in
// the failure); the exact-message rule stays for ops added later.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cuda_compare.hpp"
#include "runtime/autograd.hpp"
#include "runtime/cuda_context.hpp"
#include "runtime/error.hpp"
#include "runtime/generator.hpp"
#include "runtime/ops.hpp"
#include "tests/gradcheck.hpp"

using namespace recon;

namespace {

// A CUDA leaf with values uniform in [lo, hi) from `seed`.
Tensor cu(const Shape& shape, uint64_t seed, bool requires_grad = true, float lo = -1.f, float hi = 1.f) {
  Tensor t = test::rand_tensor(shape, seed, lo, hi).to(Device::cuda());
  if (requires_grad) t.set_requires_grad(true);
  return t;
}

// One op call: builds its CUDA inputs (collected in `inputs` for the gradient
// checks and the device checks) and returns the output.
struct OpCase {
  std::string name;
  bool differentiable;
  std::function<Tensor(std::vector<Tensor>& inputs)> run;
};

std::vector<OpCase> all_ops() {
  auto in = [](std::vector<Tensor>& ins, Tensor t) {
    ins.push_back(t);
    return t;
  };
  auto binary = [in](const char* name, Tensor (*f)(const Tensor&, const Tensor&), float lo) {
    return OpCase{name, true, [=](std::vector<Tensor>& v) {
                    // (2, 3, 4) with (1, 3, 1): broadcasting on both sides of the last axis.
                    return f(in(v, cu({2, 3, 4}, 1)), in(v, cu({1, 3, 1}, 2, true, lo, 1.5f)));
                  }};
  };
  auto unary = [in](const char* name, std::function<Tensor(const Tensor&)> f, float lo = -1.f, float hi = 1.f) {
    return OpCase{name, true, [=](std::vector<Tensor>& v) { return f(in(v, cu({3, 5}, 3, true, lo, hi))); }};
  };
  std::vector<OpCase> ops = {
      binary("add", add, -1.f),
      binary("sub", sub, -1.f),
      binary("mul", mul, -1.f),
      binary("div", div, 0.5f),
      unary("scale", [](const Tensor& x) { return scale(x, 2.5f); }),
      unary("add_scalar", [](const Tensor& x) { return add_scalar(x, 0.5f); }),
      unary("neg", neg),
      unary("exp", [](const Tensor& x) { return exp(x); }),
      unary("log", [](const Tensor& x) { return log(x); }, 0.5f, 2.f),
      unary("sqrt", [](const Tensor& x) { return sqrt(x); }, 0.5f, 2.f),
      unary("pow", [](const Tensor& x) { return pow(x, 3.f); }, 0.5f, 2.f),
      unary("clamp", [](const Tensor& x) { return clamp(x, -0.5f, 0.5f); }),
      unary("relu", relu),
      unary("leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.1f); }),
      unary("sigmoid", sigmoid),
      unary("tanh", [](const Tensor& x) { return tanh(x); }),
      {"add_", false,
       [in](std::vector<Tensor>& v) {
         Tensor a = in(v, cu({3, 5}, 4, false));
         add_(a, cu({3, 5}, 5, false));
         return a;
       }},
      unary("sum", [](const Tensor& x) { return sum(x); }),
      unary("mean", [](const Tensor& x) { return mean(x); }),
      {"sum(axes)", true, [in](std::vector<Tensor>& v) { return sum(in(v, cu({2, 3, 4}, 6)), {1}, true); }},
      {"mean(axes)", true, [in](std::vector<Tensor>& v) { return mean(in(v, cu({2, 3, 4}, 7)), {0, -1}); }},
      {"sum_to", true, [in](std::vector<Tensor>& v) { return sum_to(in(v, cu({2, 3, 4}, 8)), {3, 1}); }},
      {"matmul", true, [in](std::vector<Tensor>& v) { return matmul(in(v, cu({3, 4}, 9)), in(v, cu({4, 2}, 10))); }},
      {"linear", true,
       [in](std::vector<Tensor>& v) {
         return linear(in(v, cu({3, 4}, 11)), in(v, cu({5, 4}, 12)), in(v, cu({5}, 13)));
       }},
      {"conv2d", true,
       [in](std::vector<Tensor>& v) {
         return conv2d(in(v, cu({1, 2, 5, 5}, 14)), in(v, cu({3, 2, 3, 3}, 15)), in(v, cu({3}, 16)),
                       {.stride = {1, 1}, .padding = {1, 1}});
       }},
      {"conv_transpose2d", true,
       [in](std::vector<Tensor>& v) {
         return conv_transpose2d(in(v, cu({1, 2, 4, 4}, 17)), in(v, cu({2, 3, 3, 3}, 18)), in(v, cu({3}, 19)),
                                 {.stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 1}});
       }},
      {"batch_norm2d(train)", true,
       [in](std::vector<Tensor>& v) {
         Tensor rm = in(v, Tensor::zeros({3}).to(Device::cuda())), rv = in(v, Tensor::ones({3}).to(Device::cuda()));
         return batch_norm2d(in(v, cu({2, 3, 4, 4}, 20)), in(v, cu({3}, 21)), in(v, cu({3}, 22)), rm, rv, true);
       }},
      {"batch_norm2d(eval)", true,
       [in](std::vector<Tensor>& v) {
         Tensor rm = in(v, Tensor::zeros({3}).to(Device::cuda())), rv = in(v, Tensor::ones({3}).to(Device::cuda()));
         return batch_norm2d(in(v, cu({2, 3, 4, 4}, 23)), in(v, cu({3}, 24)), in(v, cu({3}, 25)), rm, rv, false);
       }},
      {"max_pool2d", true, [in](std::vector<Tensor>& v) { return max_pool2d(in(v, cu({1, 2, 6, 6}, 26))); }},
      {"avg_pool2d", true,
       [in](std::vector<Tensor>& v) {
         return avg_pool2d(in(v, cu({1, 2, 6, 6}, 27)), {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}});
       }},
      {"global_avg_pool", true, [in](std::vector<Tensor>& v) { return global_avg_pool(in(v, cu({2, 3, 4, 5}, 28))); }},
      {"upsample(nearest)", true,
       [in](std::vector<Tensor>& v) { return upsample(in(v, cu({1, 2, 3, 4}, 29)), 7, 9, UpsampleMode::Nearest); }},
      {"upsample(bilinear)", true,
       [in](std::vector<Tensor>& v) { return upsample(in(v, cu({1, 2, 3, 4}, 30)), 7, 9, UpsampleMode::Bilinear); }},
      {"reshape", true, [in](std::vector<Tensor>& v) { return reshape(in(v, cu({2, 3, 4}, 31)), {4, -1}); }},
      {"flatten", true, [in](std::vector<Tensor>& v) { return flatten(in(v, cu({2, 3, 4}, 32))); }},
      {"concat", true,
       [in](std::vector<Tensor>& v) { return concat({in(v, cu({2, 3, 4}, 33)), in(v, cu({2, 1, 4}, 34))}, 1); }},
      {"slice", true, [in](std::vector<Tensor>& v) { return slice(in(v, cu({2, 3, 6}, 35)), 2, 1, 6, 2); }},
      {"pad(zero)", true,
       [in](std::vector<Tensor>& v) { return pad(in(v, cu({1, 2, 4, 5}, 36)), {1, 2, 0, 1}, PadMode::Zero); }},
      {"pad(reflect)", true,
       [in](std::vector<Tensor>& v) { return pad(in(v, cu({1, 2, 4, 5}, 37)), {1, 2, 2, 1}, PadMode::Reflect); }},
      {"rot90", true, [in](std::vector<Tensor>& v) { return rot90(in(v, cu({1, 2, 3, 5}, 38)), 1); }},
      {"mse_loss", true,
       [in](std::vector<Tensor>& v) { return mse_loss(in(v, cu({2, 3}, 39)), in(v, cu({2, 3}, 40))); }},
      {"cross_entropy", true,
       [in](std::vector<Tensor>& v) {
         Tensor targets = Tensor::from_vector({0.f, 4.f, 2.f, 1.f}, {4}).to(Device::cuda());
         return cross_entropy(in(v, cu({4, 5}, 41)), in(v, targets));
       }},
      {"kl_normal", true,
       [in](std::vector<Tensor>& v) { return kl_normal(in(v, cu({3, 4}, 42)), in(v, cu({3, 4}, 43))); }},
      {"dropout", true,
       [in](std::vector<Tensor>& v) {
         Generator gen(44);
         return dropout(in(v, cu({4, 6}, 45)), 0.3f, true, gen);
       }},
      {"ssim_map", true,
       [in](std::vector<Tensor>& v) {
         return ssim_map(in(v, cu({1, 2, 8, 9}, 46, true, 0.f, 1.f)), in(v, cu({1, 2, 8, 9}, 47, true, 0.f, 1.f)));
       }},
      {"ssim_loss", true,
       [in](std::vector<Tensor>& v) {
         return ssim_loss(in(v, cu({1, 2, 8, 9}, 48, true, 0.f, 1.f)), in(v, cu({1, 2, 8, 9}, 49, true, 0.f, 1.f)));
       }},
      {"image_entropy", false,
       [in](std::vector<Tensor>& v) { return image_entropy(in(v, cu({2, 1, 6, 7}, 50, false, 0.f, 1.f))); }},
      {"local_entropy", false,
       [in](std::vector<Tensor>& v) { return local_entropy(in(v, cu({2, 1, 6, 7}, 51, false, 0.f, 1.f)), 3, 8); }},
      {"information_reduction", true,
       [in](std::vector<Tensor>& v) {
         Generator gen(52);
         InfoReduction r = information_reduction(in(v, cu({2, 3, 2, 2}, 53)), in(v, cu({2, 3, 2, 2}, 54)), true, gen);
         return add(sum(r.z), r.kl);  // both outputs reach the loss
       }},
  };
  return ops;
}

// The op named by a "<name>: not implemented on CUDA" error (the message may
// end with the " [file:line]" that RECON_CHECK appends); empty for any other.
std::string not_implemented_name(const std::string& msg) {
  static const std::regex pattern(R"(^([A-Za-z0-9_:<>]+): not implemented on CUDA( \[.*\])?$)");
  std::smatch m;
  return std::regex_match(msg, m, pattern) ? m[1].str() : std::string();
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : ", ") + x;
  return s.empty() ? "(none)" : s;
}

}  // namespace

TEST_CASE("the op table calls every op declared in runtime/ops.hpp") {
  std::ifstream in(std::string(RECON_SOURCE_DIR) + "/runtime/ops.hpp");
  REQUIRE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  const std::string src = text.str();
  // A declaration: "Tensor name(", "void name(" or "InfoReduction name(" at the start of a line.
  static const std::regex decl(R"((?:^|\n)(?:Tensor|void|InfoReduction) ([a-z_0-9]+)\()");
  std::set<std::string> declared;
  for (auto it = std::sregex_iterator(src.begin(), src.end(), decl); it != std::sregex_iterator(); ++it)
    declared.insert((*it)[1].str());
  CHECK(declared.size() >= 40);  // the parser found the API
  std::set<std::string> called;
  for (const OpCase& op : all_ops()) called.insert(op.name.substr(0, op.name.find('(')));
  for (const std::string& name : declared) CHECK_MESSAGE(called.count(name), "no case calls " << name);
}

TEST_CASE("not_implemented_name accepts only the exact not-implemented message") {
  CHECK(not_implemented_name("relu: not implemented on CUDA [op_utils.hpp:52]") == "relu");
  CHECK(not_implemented_name("linear_backward_bias: not implemented on CUDA") == "linear_backward_bias");
  CHECK(not_implemented_name("SGD::step: not implemented on CUDA") == "SGD::step");
  CHECK(not_implemented_name("relu: tensors on different devices (cpu and cuda:0)") == "");
  CHECK(not_implemented_name("clone: non-contiguous CUDA tensors are not supported yet") == "");
  CHECK(not_implemented_name("x: not implemented on CUDA, falling back") == "");
}

#if defined(RECON_WITH_CUDA)
TEST_CASE("without RECON_TF32 / RECON_SYNC in the environment, GEMMs are FP32 and launches do not sync" *
          test::needs_cuda()) {
  const char* tf32 = std::getenv("RECON_TF32");
  const char* sync = std::getenv("RECON_SYNC");
  if (!(tf32 && tf32[0] == '1')) CHECK_FALSE(cuda::tf32_enabled());
  if (!(sync && sync[0] == '1')) CHECK_FALSE(cuda::sync_each_launch());
}
#endif

TEST_CASE("every op with CUDA inputs runs on CUDA or says it is not implemented; none falls back to the CPU" *
          test::needs_cuda()) {
  std::vector<std::string> missing_forward, missing_backward;
  int ran_forward = 0, ran_backward = 0;
  for (const OpCase& op : all_ops()) {
    INFO("op " << op.name);
    std::vector<Tensor> inputs;
    Tensor out;
    try {
      out = op.run(inputs);
    } catch (const Error& e) {
      const std::string name = not_implemented_name(e.what());
      CHECK_MESSAGE(!name.empty(), "forward threw an error other than \"<op>: not implemented on CUDA\": " << e.what());
      if (!name.empty()) missing_forward.push_back(op.name + (name == op.name ? "" : " (" + name + ")"));
      continue;
    }
    ++ran_forward;
    REQUIRE(out.defined());
    CHECK_MESSAGE(out.device().is_cuda(), "forward returned a tensor on " << out.device().str());
    for (const Tensor& t : inputs)  // in-place updates (add_, running statistics) stay on the device too
      CHECK_MESSAGE(t.device().is_cuda(), "an input moved to " << t.device().str());
    if (!op.differentiable) continue;
    REQUIRE_MESSAGE(out.requires_grad(), "a differentiable op recorded no autograd node");
    try {
      out.backward(Tensor::ones(out.shape()).to(Device::cuda()));
    } catch (const Error& e) {
      const std::string name = not_implemented_name(e.what());
      CHECK_MESSAGE(!name.empty(),
                    "backward threw an error other than \"<op>: not implemented on CUDA\": " << e.what());
      if (!name.empty()) missing_backward.push_back(op.name + " (" + name + ")");
      continue;
    }
    ++ran_backward;
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (!inputs[i].requires_grad()) continue;
      INFO("input " << i);
      REQUIRE(inputs[i].grad().defined());
      CHECK_MESSAGE(inputs[i].grad().device().is_cuda(), "a gradient on " << inputs[i].grad().device().str());
    }
  }
  MESSAGE("ran on CUDA: " << ran_forward << " forward, " << ran_backward << " backward");
  // Every op has its CUDA kernels now: a missing one is a failure.
  CHECK_MESSAGE(missing_forward.empty(), "not implemented on CUDA, forward: " << join(missing_forward));
  CHECK_MESSAGE(missing_backward.empty(), "not implemented on CUDA, backward: " << join(missing_backward));
}
