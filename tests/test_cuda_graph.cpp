// CUDA graphs for training steps (runtime/cuda_graph.hpp): a small model
// (conv, batch norm, dropout, linear; Adam with a cosine learning-rate
// schedule) and the refiner (information_reduction's noise) trained K steps
// eagerly and K steps by capture + replay from the same weights and batches
// give bitwise-equal losses, parameters, buffers, optimizer and generator
// state; capture-unsafe calls inside a step fail with a clear error and leave
// the runtime usable; new input shapes after a capture are refused; the off
// switch never captures; the method-2 decoder step (frozen encoder, SSIM
// loss) replays bitwise too; a kernel issued during a raw capture runs only
// at launches. Also the stream-capture rules of the CUDA API that
// the library relies on (recording, replay, synchronising calls, pageable
// copies, graph memory). Runs on a real GPU or under the SIMT emulator
// (RECON_CUDA=SIM), where the capture really records and the replays really
// run the recorded work; skipped without CUDA.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "cuda_compare.hpp"
#include "graph_test_util.hpp"
#include "models/refiner.hpp"
#include "models/rotnet.hpp"
#include "models/twostage.hpp"
#include "nn/layers.hpp"
#include "nn/module.hpp"
#include "nn/optim.hpp"
#include "nn/schedule.hpp"
#include "runtime/cuda_context.hpp"
#include "runtime/cuda_graph.hpp"
#include "runtime/error.hpp"
#include "runtime/ops.hpp"

#if defined(RECON_WITH_CUDA)
#include "runtime/cuda_api.hpp"
#endif

using namespace recon;

namespace {

constexpr int kSteps = 5;
constexpr int kWarmup = 2;

using recon_test::graph_launches;
using recon_test::same_bits;

// Everything a run leaves behind, on the host (and how its steps ran).
struct RunResult : recon_test::GraphCounts {
  std::vector<std::vector<float>> outputs;  // per step
  std::vector<std::vector<float>> state;    // parameters, buffers, optimizer state
  int64_t step_count = 0;
  uint64_t generator_offset = 0;
};

void collect_state(RunResult& r, const nn::Module& m, const nn::Optimizer& opt) {
  for (const auto& [name, p] : m.named_parameters()) r.state.push_back(p.to_vector());
  for (const auto& [name, b] : m.named_buffers()) r.state.push_back(b.to_vector());
  for (const auto& [name, t] : opt.state_dict()) r.state.push_back(t.to_vector());
  r.step_count = opt.step_count();
}

void check_same_run(const RunResult& eager, const RunResult& graph) {
  REQUIRE(eager.outputs.size() == graph.outputs.size());
  for (size_t k = 0; k < eager.outputs.size(); ++k) {
    INFO("step " << k);
    CHECK(same_bits(eager.outputs[k], graph.outputs[k]));
  }
  REQUIRE(eager.state.size() == graph.state.size());
  for (size_t i = 0; i < eager.state.size(); ++i) {
    INFO("state tensor " << i);
    CHECK(same_bits(eager.state[i], graph.state[i]));
  }
  CHECK(eager.step_count == graph.step_count);
  CHECK(eager.generator_offset == graph.generator_offset);
  // Not vacuous: the steps learned, and the losses moved.
  CHECK(eager.outputs.front()[0] != eager.outputs.back()[0]);
}

// ---- the small classifier: conv -> batch norm -> relu -> dropout -> pool -> linear ----
struct Classifier {
  Generator init{7}, noise{99};
  std::shared_ptr<nn::Sequential> body;
  std::shared_ptr<nn::Linear> head;
  nn::Sequential all;

  Classifier() {
    body = nn::make_sequential(std::make_shared<nn::Conv2d>(1, 4, 3, 1, 1, true, init),
                               std::make_shared<nn::BatchNorm2d>(4), std::make_shared<nn::ReLU>(),
                               std::make_shared<nn::Dropout>(0.25f, noise));
    head = std::make_shared<nn::Linear>(4, 3, true, init);
    all.push_back("body", body);
    all.push_back("head", head);
    all.to(Device::cuda());
    all.train();
  }
  Tensor forward(const Tensor& x) { return (*head)(global_avg_pool((*body)(x))); }
};

// The batches of step k: (4, 1, 6, 6) images and 4 class labels, on CUDA.
std::vector<Tensor> batch(int k, int64_t n = 4) {
  Generator g(1000 + (uint64_t)k);
  Tensor x = Tensor::uniform({n, 1, 6, 6}, g, -1.f, 1.f);
  std::vector<float> labels;
  for (int64_t i = 0; i < n; ++i) labels.push_back((float)((i + k) % 3));
  return {x.to(Device::cuda()), Tensor::from_vector(labels, {n}).to(Device::cuda())};
}

RunResult train_classifier(bool graphs) {
  Classifier net;
  nn::Adam opt(net.all.named_parameters(), nn::AdamOptions{});
  nn::CosineSchedule schedule(0.05, kSteps);
  CudaGraphOptions o;
  o.enabled = graphs;
  o.warmup_steps = kWarmup;
  CudaGraphStep step(nn::training_step(opt,
                                       [&](const std::vector<Tensor>& in) {
                                         Tensor logits = net.forward(in[0]);
                                         return std::vector<Tensor>{cross_entropy(logits, in[1]), mean(logits)};
                                       }),
                     o);
  RunResult r;
  const int64_t launches = graph_launches();
  for (int k = 0; k < kSteps; ++k) {
    opt.set_lr((float)schedule.lr_at(opt.step_count()));
    const int64_t id = step.run(batch(k));
    CHECK(id == k);
    if (k > 0) r.outputs.push_back(step.outputs(id - 1));  // the previous step's: no wait for this one
  }
  r.outputs.push_back(step.outputs(kSteps - 1));
  r.record(step, launches);
  collect_state(r, net.all, opt);
  r.generator_offset = net.noise.offset();
  return r;
}

// ---- the refiner: information_reduction's noise in every step -------------------------
RunResult train_refiner(bool graphs) {
  models::RefinerConfig cfg;
  cfg.channels = 1;
  cfg.height = cfg.width = 8;
  cfg.base_width = 4;
  cfg.latent_channels = 2;
  cfg.beta = 0.5f;
  Generator gen(5);
  models::Refiner refiner(cfg, gen);
  refiner.to(Device::cuda());
  refiner.train();
  nn::AdamOptions ao;
  ao.lr = 1e-2f;
  nn::Adam opt(refiner.named_parameters(), ao);
  CudaGraphOptions o;
  o.enabled = graphs;
  o.warmup_steps = 1;
  CudaGraphStep step(
      [&](const std::vector<Tensor>& in) {
        opt.zero_grad(false);
        models::Refiner::Loss l = refiner.loss(in[0], in[1], true);
        l.loss.backward();
        opt.step();
        return std::vector<Tensor>{l.loss, l.recon, l.kl};
      },
      o);
  RunResult r;
  const int64_t launches = graph_launches();
  for (int k = 0; k < kSteps; ++k) {
    Generator g(2000 + (uint64_t)k);
    Tensor x = Tensor::uniform({2, 1, 8, 8}, g, 0.f, 1.f).to(Device::cuda());
    Tensor x_hat = Tensor::uniform({2, 1, 8, 8}, g, 0.f, 1.f).to(Device::cuda());
    step.run({x, x_hat});
    r.outputs.push_back(step.outputs(k));
  }
  r.record(step, launches);
  collect_state(r, refiner, opt);
  r.generator_offset = gen.offset();
  return r;
}

// ---- method 2's stage 2: a decoder on a frozen RotNet encoder, MSE + SSIM ---------------
RunResult train_decoder(bool graphs) {
  models::RotNetConfig rc;
  rc.channels = 1;
  rc.height = rc.width = 8;
  rc.base_width = 4;
  rc.max_width = 8;
  rc.target_size = 4;
  models::TwoStageConfig tc;
  tc.ssim_weight = 0.5f;
  tc.code = 8;
  Generator gen(11);
  auto rotnet = std::make_shared<models::RotNet>(rc, gen);
  models::TwoStageAE ae(rotnet, tc, gen);
  ae.to(Device::cuda());
  ae.train();
  nn::Adam opt(ae.named_parameters(), nn::AdamOptions{});  // the frozen encoder's are skipped
  CudaGraphOptions o;
  o.enabled = graphs;
  CudaGraphStep step(nn::training_step(opt,
                                       [&](const std::vector<Tensor>& in) {
                                         return std::vector<Tensor>{ae.loss(in[0]).loss};
                                       }),
                     o);
  RunResult r;
  const int64_t launches = graph_launches();
  for (int k = 0; k < kSteps; ++k) {
    Generator g(3000 + (uint64_t)k);
    step.run({Tensor::uniform({3, 1, 8, 8}, g, 0.f, 1.f).to(Device::cuda())});
    r.outputs.push_back(step.outputs(k));
  }
  r.record(step, launches);
  collect_state(r, ae, opt);
  return r;
}

}  // namespace

TEST_CASE("a captured training step replays bitwise like eager steps (conv, batch norm, dropout, Adam, schedule)" *
          test::needs_cuda()) {
  const RunResult eager = train_classifier(false);
  const RunResult graph = train_classifier(true);
  check_same_run(eager, graph);
  CHECK(eager.captures == 0);
  CHECK(eager.eager == kSteps);
  CHECK(graph.captures == 1);
  CHECK(graph.eager == kWarmup);
  CHECK(graph.replays == kSteps - kWarmup);
  CHECK(eager.step_count == kSteps);
  CHECK(eager.generator_offset > 0);  // dropout drew
#if defined(RECON_SIMT)
  CHECK(eager.graph_launches == 0);
  CHECK(graph.graph_launches == kSteps - kWarmup);  // the replays ran recorded work
#endif
}

TEST_CASE("a captured refiner step draws fresh information-reduction noise at every replay" * test::needs_cuda()) {
  const RunResult eager = train_refiner(false);
  const RunResult graph = train_refiner(true);
  check_same_run(eager, graph);
  CHECK(graph.captures == 1);
  CHECK(graph.replays == kSteps - 1);
  // The KL moved from step to step and the noise advanced the generator by the same amount.
  CHECK(eager.outputs[1][2] != eager.outputs[2][2]);
  CHECK(graph.generator_offset == eager.generator_offset);
}

TEST_CASE("a captured decoder step (frozen encoder, SSIM loss) replays bitwise like eager steps" *
          test::needs_cuda()) {
  const RunResult eager = train_decoder(false);
  const RunResult graph = train_decoder(true);
  check_same_run(eager, graph);
  CHECK(graph.captures == 1);
  CHECK(graph.replays == kSteps - 1);
}

TEST_CASE("capture-unsafe calls inside a step fail with a clear error and leave the runtime usable" *
          test::needs_cuda()) {
  struct Case {
    const char* what;
    const char* message;
  };
  const Case cases[] = {
      {"item", "Tensor::item()"},
      {"synchronize", "cuda::synchronize"},
      {"zero_grad", "zero_grad(false)"},
      {"host random", "Generator::reserve"},
      {"stream sync", "operation not permitted when stream is capturing"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    Classifier net;
    nn::SGD opt(net.all.named_parameters(), nn::SGDOptions{});
    int calls = 0;
    CudaGraphStep step([&](const std::vector<Tensor>& in) {
      const bool capturing = ++calls > 1;  // the first call is the eager warm-up
      const bool drop_grads = capturing && std::string(c.what) == "zero_grad";
      opt.zero_grad(drop_grads);
      Tensor loss = cross_entropy(net.forward(in[0]), in[1]);
      loss.backward();
      opt.step();
      if (capturing) {
        const std::string w = c.what;
        if (w == "item") (void)loss.item();
#if defined(RECON_WITH_CUDA)  // cuda::synchronize exists only in CUDA builds
        if (w == "synchronize") cuda::synchronize();
#endif
        if (w == "host random") (void)Tensor::normal({3}, net.noise, 0.f, 1.f, Device::cuda());
#if defined(RECON_WITH_CUDA)
        if (w == "stream sync")
          RECON_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(cuda::stream_handle())));
#endif
      }
      return std::vector<Tensor>{loss};
    });
    step.run(batch(0));
    const uint64_t offset = net.noise.offset();
    const int64_t sgd_steps = opt.step_count();
    CHECK_THROWS_WITH_AS(step.run(batch(1)), doctest::Contains(c.message), Error);
    CHECK_FALSE(step.captured());
    CHECK_FALSE(cuda::capturing());
    CHECK(net.noise.offset() == offset);  // the failed capture took its draws back
    CHECK(opt.step_count() == sgd_steps);
    // The runtime stream works eagerly afterwards, and so does the step without graphs.
    CHECK(sum(Tensor::ones({5}, Device::cuda())).item() == 5.f);
    CHECK(std::isfinite(step.outputs(0)[0]));
  }
}

#if defined(RECON_WITH_CUDA)  // set_sync_each_launch exists only in CUDA builds
TEST_CASE("a capture refuses synchronising settings and tensors that would outlive the graph" * test::needs_cuda()) {
  Classifier net;
  nn::SGD opt(net.all.named_parameters(), nn::SGDOptions{});
  Tensor kept;
  bool keep = false;
  CudaGraphStep step([&](const std::vector<Tensor>& in) {
    opt.zero_grad(false);
    Tensor loss = cross_entropy(net.forward(in[0]), in[1]);
    loss.backward();
    opt.step();
    if (keep) kept = mul(loss, loss);  // outlives the step, and so does the loss its tape saved
    return std::vector<Tensor>{loss};
  });
  step.run(batch(0));
  cuda::set_sync_each_launch(true);
  CHECK_THROWS_WITH_AS(step.run(batch(1)), doctest::Contains("RECON_SYNC=1"), Error);
  cuda::set_sync_each_launch(false);
  {
    test::GuardScope guards;
    CHECK_THROWS_WITH_AS(step.run(batch(1)), doctest::Contains("guard checks"), Error);
  }
  keep = true;
  CHECK_THROWS_WITH_AS(step.run(batch(1)),
                       doctest::Contains("2 device allocation(s) (8 bytes) made inside the captured step are still "
                                         "alive"),
                       Error);
  CHECK_FALSE(cuda::capturing());
  kept = Tensor();  // its memory went with the failed graph: freeing it releases nothing
  keep = false;
  step.run(batch(1));
  CHECK(step.captured());
  step.run(batch(2));
  CHECK(step.replays() == 2);
  CHECK(std::isfinite(step.outputs(2)[0]));
}
#endif  // RECON_WITH_CUDA

TEST_CASE("a captured step refuses inputs of another shape; reset() captures again" * test::needs_cuda()) {
  Classifier net;
  nn::Adam opt(net.all.named_parameters(), nn::AdamOptions{});
  CudaGraphStep step([&](const std::vector<Tensor>& in) {
    opt.zero_grad(false);
    Tensor loss = cross_entropy(net.forward(in[0]), in[1]);
    loss.backward();
    opt.step();
    return std::vector<Tensor>{loss};
  });
  step.run(batch(0));
  step.run(batch(1));
  REQUIRE(step.captured());
  CHECK_THROWS_WITH_AS(step.run(batch(2, 3)), doctest::Contains("captured for (4, 1, 6, 6) (4)"), Error);
  CHECK(step.steps() == 2);
  step.reset();
  step.run(batch(2, 3));  // warm-up at the new shape
  step.run(batch(3, 3));  // capture
  step.run(batch(4, 3));  // replay
  CHECK(step.captures() == 2);
  CHECK(step.replays() == 3);
  CHECK(std::isfinite(step.outputs(4)[0]));
  CHECK(opt.step_count() == 5);
}

TEST_CASE("the off switch runs every step eagerly" * test::needs_cuda()) {
  Classifier net;
  nn::Adam opt(net.all.named_parameters(), nn::AdamOptions{});
  CudaGraphOptions o;
  o.enabled = false;
  CudaGraphStep step(
      [&](const std::vector<Tensor>& in) {
        CHECK_FALSE(cuda::capturing());
        opt.zero_grad();  // set_to_none is fine eagerly
        Tensor loss = cross_entropy(net.forward(in[0]), in[1]);
        loss.backward();
        opt.step();
        return std::vector<Tensor>{loss};
      },
      o);
  const int64_t launches = graph_launches();
  for (int k = 0; k < 4; ++k) step.run(batch(k, k + 2));  // shapes may change
  CHECK(step.captures() == 0);
  CHECK(step.replays() == 0);
  CHECK(step.eager_steps() == 4);
  CHECK(graph_launches() == launches);
  CHECK(std::isfinite(step.outputs(3)[0]));
  CHECK_THROWS_WITH_AS(step.outputs(4), doctest::Contains("has not run"), Error);
}

TEST_CASE("step outputs stay readable for in_flight steps" * test::needs_cuda()) {
  CudaGraphOptions o;
  o.in_flight = 2;
  Tensor w = Tensor::zeros({1}, Device::cuda());
  CudaGraphStep step(
      [&](const std::vector<Tensor>& in) {
        Tensor y = add(reshape(sum(in[0]), {1}), w);
        w.copy_(y.view({1}));
        return std::vector<Tensor>{y};
      },
      o);
  for (int k = 0; k < 5; ++k) step.run({Tensor::full({3}, (float)k, Device::cuda())});
  // w accumulates 3k: 0, 3, 9, 18, 30.
  CHECK(step.outputs(3)[0] == 18.f);
  CHECK(step.outputs(4)[0] == 30.f);
  CHECK(step.ready(4));
  CHECK_THROWS_WITH_AS(step.outputs(2), doctest::Contains("were overwritten"), Error);
  CHECK(step.replays() == 4);  // steps 1 (captured, then launched) to 4
}

#if defined(RECON_WITH_CUDA)
TEST_CASE("a kernel issued during a capture runs only when the graph is launched, at every launch" *
          test::needs_cuda()) {
  Tensor w = Tensor::zeros({4}, Device::cuda());
  cuda::capture_begin();
  CHECK(cuda::capturing());
  w.fill_(3.f);  // a kernel on the runtime stream
  cuda::CaptureResult r = cuda::capture_end();
  CHECK_FALSE(cuda::capturing());
  REQUIRE(r.error == 0);
  REQUIRE(r.graph != nullptr);
  CHECK(r.escaped == 0);
  CHECK(r.deferred_frees.empty());
  CHECK(w.to_vector() == std::vector<float>(4, 0.f));
  cudaGraphExec_t exec = nullptr;
  RECON_CUDA_CHECK(cudaGraphInstantiate(&exec, static_cast<cudaGraph_t>(r.graph), 0));
  const auto stream = static_cast<cudaStream_t>(cuda::stream_handle());
  RECON_CUDA_CHECK(cudaGraphLaunch(exec, stream));
  CHECK(w.to_vector() == std::vector<float>(4, 3.f));
  w.fill_(1.f);
  RECON_CUDA_CHECK(cudaGraphLaunch(exec, stream));
  CHECK(w.to_vector() == std::vector<float>(4, 3.f));
  RECON_CUDA_CHECK(cudaGraphExecDestroy(exec));
  RECON_CUDA_CHECK(cudaGraphDestroy(static_cast<cudaGraph_t>(r.graph)));
}

// The CUDA API's capture rules as the library relies on them; the emulator
// implements the same (kernels/simt/simt_graph.cpp).
TEST_CASE("stream capture: recorded work runs only at launch, and synchronising calls invalidate the capture" *
          test::needs_cuda()) {
  cudaStream_t s = nullptr;
  RECON_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  float* d = nullptr;
  RECON_CUDA_CHECK(cudaMalloc(&d, 4 * sizeof(float)));
  float* pinned = nullptr;
  RECON_CUDA_CHECK(cudaMallocHost(&pinned, 4 * sizeof(float)));
  RECON_CUDA_CHECK(cudaMemsetAsync(d, 0, 4 * sizeof(float), s));
  RECON_CUDA_CHECK(cudaStreamSynchronize(s));

  // Record: a memset to 0x3f3f3f3f (0.747 as floats) and a copy back to pinned memory.
  RECON_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  RECON_CUDA_CHECK(cudaStreamIsCapturing(s, &status));
  CHECK(status == cudaStreamCaptureStatusActive);
  RECON_CUDA_CHECK(cudaMemsetAsync(d, 0x3f, 4 * sizeof(float), s));
  RECON_CUDA_CHECK(cudaMemcpyAsync(pinned, d, 4 * sizeof(float), cudaMemcpyDeviceToHost, s));
  cudaGraph_t graph = nullptr;
  RECON_CUDA_CHECK(cudaStreamEndCapture(s, &graph));
  REQUIRE(graph != nullptr);
  float host[4] = {1, 1, 1, 1};
  RECON_CUDA_CHECK(cudaMemcpy(host, d, sizeof host, cudaMemcpyDeviceToHost));
  CHECK(host[0] == 0.f);  // nothing ran at capture
  cudaGraphExec_t exec = nullptr;
  RECON_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  pinned[0] = 5.f;
  RECON_CUDA_CHECK(cudaGraphLaunch(exec, s));
  RECON_CUDA_CHECK(cudaStreamSynchronize(s));
  float expect;
  const unsigned bits = 0x3f3f3f3fu;
  std::memcpy(&expect, &bits, sizeof expect);
  CHECK(pinned[0] == expect);
  CHECK(pinned[3] == expect);

  // A synchronisation inside the capture fails and invalidates it.
  RECON_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  CHECK(cudaStreamSynchronize(s) == cudaErrorStreamCaptureUnsupported);
  CHECK(cudaMemsetAsync(d, 0, 4, s) == cudaErrorStreamCaptureInvalidated);
  cudaGraph_t bad = nullptr;
  CHECK(cudaStreamEndCapture(s, &bad) == cudaErrorStreamCaptureInvalidated);
  CHECK(bad == nullptr);
  (void)cudaGetLastError();

  // A copy into pageable memory cannot be captured.
  RECON_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  CHECK(cudaMemcpyAsync(host, d, sizeof host, cudaMemcpyDeviceToHost, s) == cudaErrorStreamCaptureUnsupported);
  CHECK(cudaStreamEndCapture(s, &bad) == cudaErrorStreamCaptureInvalidated);
  (void)cudaGetLastError();

  // Graph memory: allocated and freed inside the graph, usable at every launch.
  RECON_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  float* tmp = nullptr;
  RECON_CUDA_CHECK(cudaMallocAsync(&tmp, 4 * sizeof(float), s));
  RECON_CUDA_CHECK(cudaMemsetAsync(tmp, 0, 4 * sizeof(float), s));
  RECON_CUDA_CHECK(cudaMemcpyAsync(d, tmp, 4 * sizeof(float), cudaMemcpyDeviceToDevice, s));
  RECON_CUDA_CHECK(cudaFreeAsync(tmp, s));
  cudaGraph_t with_memory = nullptr;
  RECON_CUDA_CHECK(cudaStreamEndCapture(s, &with_memory));
  cudaGraphExec_t exec2 = nullptr;
  RECON_CUDA_CHECK(cudaGraphInstantiate(&exec2, with_memory, 0));
  for (int i = 0; i < 2; ++i) {
    RECON_CUDA_CHECK(cudaGraphLaunch(exec, s));   // d = 0.747...
    RECON_CUDA_CHECK(cudaGraphLaunch(exec2, s));  // d = 0
    RECON_CUDA_CHECK(cudaStreamSynchronize(s));
    RECON_CUDA_CHECK(cudaMemcpy(host, d, sizeof host, cudaMemcpyDeviceToHost));
    CHECK(host[2] == 0.f);
  }

  RECON_CUDA_CHECK(cudaGraphExecDestroy(exec2));
  RECON_CUDA_CHECK(cudaGraphDestroy(with_memory));
  RECON_CUDA_CHECK(cudaGraphExecDestroy(exec));
  RECON_CUDA_CHECK(cudaGraphDestroy(graph));
  RECON_CUDA_CHECK(cudaFreeHost(pinned));
  RECON_CUDA_CHECK(cudaFree(d));
  RECON_CUDA_CHECK(cudaStreamDestroy(s));
}
#endif
