// Training and scoring throughput of method 2 (DESIGN.md "Benchmarks"):
// images/s of one RotNet step (rotation batch of 4N images per N inputs),
// one decoder step (frozen encoder + decoder, MSE + SSIM), one refiner step
// (x_hat under no-grad, then the refiner with the information reduction) and
// of scoring (x_hat, x_tilde and every view error: mse, ssim, feature,
// rotation, and the entropy difficulty), plus the composites alone (SSIM loss
// forward + backward, image entropy, information reduction forward +
// backward: rows op_*, "images" = the batch), for ReconAD and for its LibTorch
// twin (bench/reference/torch_twin.cpp, built when CMake finds Torch) on the
// same weights (ReconAD's state_dict written to a safetensors file that the
// twin loads by name) and the same random images in [0, 1] (28x28 gray, the
// Fashion-MNIST geometry).
//
// Before timing, a validation batch checks that both sides agree: every
// loss, every parameter gradient of each stage, every scoring view, and the
// SSIM / entropy / information-reduction composites; any disagreement beyond
// the tolerance stops the bench. Then each step is warmed up and timed (median
// of --runs, steady_clock; synchronised on CUDA). One table with the ratio
// (ReconAD images/s over LibTorch images/s: > 1 means ReconAD is faster) and
// JSON (--json PATH). On the CPU both sides use --threads N threads (OpenMP
// for ReconAD, torch::set_num_threads for LibTorch); both are printed, with
// the load average before and after (the machine may be shared).
//
// --export DIR writes DIR/weights.safetensors and DIR/expected.safetensors
// (the validation batch and ReconAD's values) for the PyTorch twin
// bench/reference/twostage_torch.py, which validates against them and times
// the torch side where the C++ LibTorch is not available (e.g. on a GPU box).
//
// Usage: bench_train [--quick] [--device cpu|cuda] [--threads N] [--batches 32,128,256]
//                    [--runs N] [--warmup N] [--json PATH] [--export DIR] [--no-torch]
//                    [--stages rotnet_step,score,...] (default: every stage; for profiling one)
//                    [--cuda-graphs on|off] (cuda: training steps captured and replayed as
//                    CUDA graphs, as train_twostage does; default on; validation runs eagerly)
//                    [--help]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "bench/bench_util.hpp"
#include "models/multiview.hpp"
#include "models/refiner.hpp"
#include "models/rotnet.hpp"
#include "models/twostage.hpp"
#include "nn/module.hpp"
#include "nn/optim.hpp"
#include "nn/safetensors.hpp"
#include "runtime/autograd.hpp"
#include "runtime/cuda_context.hpp"
#include "runtime/cuda_graph.hpp"
#include "runtime/error.hpp"
#include "runtime/generator.hpp"
#include "runtime/ops.hpp"

#if RECON_HAVE_TORCH_TWIN
#include "bench/reference/torch_twin.hpp"
#endif

using namespace recon;

namespace recon {
namespace {

using NamedValues = std::vector<std::pair<std::string, std::vector<float>>>;

constexpr int kValidateBatch = 8;
// Per named array: max |ours - torch| <= kTolerance * max |torch| + kAbsTolerance. The absolute term
// covers gradients that are zero in exact arithmetic (a conv bias before BatchNorm).
constexpr double kTolerance = 2e-3, kAbsTolerance = 1e-6;
const char* const kStages[7] = {"rotnet_step", "decoder_step", "refiner_step", "score",
                                "op_ssim_fwd_bwd", "op_entropy", "op_info_red_fwd_bwd"};
constexpr int kLatentChannels = 4;  // the refiner's latent (N, 4, ceil(H/4), ceil(W/4)) for op_info_red

struct Options {
  bool quick = false, no_torch = false;
  std::string device = "cpu", json, export_dir;
  int threads = 0, runs = 5, warmup = 1;
  std::vector<int> batches{32, 128, 256};
  std::vector<std::string> stages;  // empty: all of kStages
  bool cuda_graphs = true;           // --cuda-graphs on|off: training steps replayed as CUDA graphs (cuda only)
};

// The same configuration on both sides (models/*.hpp defaults, the app's beta and lr).
struct Arch {
  models::RotNetConfig rot;
  models::TwoStageConfig ts;
  models::RefinerConfig ref;
  float lr = 1e-3f;
  Arch() { ref.beta = 0.01f; }
};

// Method 2 as one module: "twostage.rotnet.*", "twostage.decoder.*", "refiner.*"
// (the names of train_twostage's checkpoints).
class Method2 : public nn::Module {
 public:
  Method2(const Arch& a, Generator& gen) : noise_(1234) {
    rotnet = std::make_shared<models::RotNet>(a.rot, gen);
    ae = register_module("twostage", std::make_shared<models::TwoStageAE>(rotnet, a.ts, gen));
    refiner = register_module("refiner", std::make_shared<models::Refiner>(a.ref, noise_));
  }
  std::string type_name() const override { return "Method2"; }
  std::shared_ptr<models::RotNet> rotnet;
  std::shared_ptr<models::TwoStageAE> ae;
  std::shared_ptr<models::Refiner> refiner;

 private:
  Generator noise_;
};

nn::NamedTensors with_prefix(const Method2& m, const std::string& prefix) {
  nn::NamedTensors out;
  for (auto& [name, t] : m.named_parameters())
    if (name.rfind(prefix, 0) == 0) out.emplace_back(name, t);
  return out;
}

const char* stage_prefix(int s) { return s == 0 ? "twostage.rotnet." : s == 1 ? "twostage.decoder." : "refiner."; }

// ReconAD's side: modes and freezing as train_twostage's set_modes.
struct Ours {
  Arch arch;
  Generator gen{42};
  Method2 m{arch, gen};
  std::unique_ptr<nn::Adam> opt[3];
  Tensor x;
  nn::StateDict initial;  // deep copy of the initial state, for reset()
  // CUDA graphs (as train_twostage --cuda-graphs): one captured step per
  // stage for the current batch size; reset() keeps them valid (it copies
  // the weights in place), a new batch size drops them (drop_graphs).
  bool graphs = false;
  Tensor rot_labels;  // (4N) stage 1's labels, fixed for the captured step
  std::unique_ptr<CudaGraphStep> graph[3];

  explicit Ours(Device dev) {
    m.to(dev);
    for (auto& [name, t] : m.state_dict()) initial.insert(name, t.to(Device::cpu()).clone());
    nn::AdamOptions ao;
    ao.lr = arch.lr;
    for (int s = 0; s < 3; ++s) {
      nn::NamedTensors p;
      for (auto& [name, t] : with_prefix(m, stage_prefix(s))) p.emplace_back(name, t);
      opt[s] = std::make_unique<nn::Adam>(p, ao);
    }
  }
  void reset() { m.load_state_dict(initial); }
  void modes(int s) {
    m.eval();
    if (s == 0) {
      m.rotnet->unfreeze();
      m.rotnet->train();
    } else {
      m.rotnet->freeze();
      if (s == 1) m.ae->train();
      if (s == 2) m.refiner->train();
    }
  }
  Tensor loss(int s, bool refiner_training) {
    if (s == 0) return models::rotation_loss(*m.rotnet, x).loss;
    if (s == 1) return m.ae->loss(x).loss;
    Tensor x_hat;
    {
      NoGradGuard ng;
      x_hat = m.ae->forward(x);
    }
    return m.refiner->loss(x, x_hat, refiner_training).loss;
  }
  NamedValues grads(int s) {
    modes(s);
    m.zero_grad();
    Tensor l = loss(s, false);
    l.backward();
    NamedValues out{{"loss", l.to_vector()}};
    for (auto& [name, t] : with_prefix(m, stage_prefix(s)))
      out.push_back({"grad." + name, t.grad().defined() ? t.grad().to_vector() : std::vector<float>()});
    m.zero_grad();
    return out;
  }
  void step(int s) {
    if (graphs) {  // the app's step: models::twostage_step_outputs in nn::training_step, captured once
      if (!graph[s]) {
        if (s == 0) rot_labels = models::rotation_labels(x.size(0), x.device());
        graph[s] = std::make_unique<CudaGraphStep>(
            nn::training_step(*opt[s], [this, s](const std::vector<Tensor>& in) {
              return models::twostage_step_outputs(*m.ae, *m.refiner, s + 1, in[0], rot_labels);
            }));
      }
      graph[s]->run({x});  // returns without waiting; median_ms synchronises
      return;
    }
    opt[s]->zero_grad();
    Tensor l = loss(s, true);
    l.backward();
    opt[s]->step();
  }
  void drop_graphs() {
    for (auto& g : graph) g.reset();
  }
  NamedValues score() {
    NoGradGuard ng;
    models::RotNet& rot = *m.rotnet;
    const models::FeatureFn phi = [&rot](const Tensor& t) { return rot.features(t); };
    models::MultiViewScorer scorer(phi), base(phi);
    scorer.add_view("rotation", [&rot](const Tensor& t, const Tensor&) {
      return models::rotation_scores(rot, t).to_vector();
    });
    const Tensor x_hat = m.ae->forward(x);
    const Tensor x_tilde = m.refiner->forward(x, x_hat, false).x_tilde;
    models::ViewErrors eh = scorer.errors(x, x_hat), et = base.errors(x, x_tilde);
    NamedValues out;
    for (size_t v = 0; v < eh.views.size(); ++v) out.push_back({"hat." + eh.views[v], eh.error[v]});
    for (size_t v = 0; v < et.views.size(); ++v) out.push_back({"tilde." + et.views[v], et.error[v]});
    out.push_back({"entropy", scorer.difficulty(x)});
    return out;
  }
  void score_step() {
    modes(3);
    score();
  }
};

// The composites alone, timed (ReconAD side of TorchTwin::op_step).
struct OpInputs {
  Tensor a, b, mu, logvar;
  Generator gen{99};
  void step(int which) {
    if (which == 0) {
      a.zero_grad(), b.zero_grad();
      ssim_loss(a, b).backward();
    } else if (which == 1) {
      NoGradGuard ng;
      image_entropy(a);
    } else {
      mu.zero_grad(), logvar.zero_grad();
      InfoReduction ir = information_reduction(mu, logvar, true, gen);
      add(sum(ir.z), ir.kl).backward();
    }
  }
};

// The composites on their own (ReconAD side of TorchTwin::ops).
NamedValues ours_ops(const Tensor& a_in, const Tensor& b_in) {
  Tensor a = a_in.clone(), b = b_in.clone();
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  Tensor l = ssim_loss(a, b);
  l.backward();
  NamedValues out{{"ssim_loss", l.to_vector()}, {"ssim_loss.grad_a", a.grad().to_vector()},
                  {"ssim_loss.grad_b", b.grad().to_vector()}};
  {
    NoGradGuard ng;
    out.push_back({"entropy", image_entropy(a.detach()).to_vector()});
  }
  Tensor mu = a_in.clone(), lv_base = b_in.clone();
  mu.set_requires_grad(true);
  lv_base.set_requires_grad(true);
  InfoReduction ir = information_reduction(mu, add_scalar(lv_base, -0.5f), false);
  ir.kl.backward();
  out.push_back({"kl", ir.kl.to_vector()});
  out.push_back({"kl.grad_mu", mu.grad().to_vector()});
  out.push_back({"kl.grad_logvar", lv_base.grad().to_vector()});
  return out;
}

double compare(const std::string& what, const NamedValues& ours, const NamedValues& ref) {
  double worst = 0;
  for (auto& [name, want] : ref) {
    auto it = std::find_if(ours.begin(), ours.end(), [&](auto& p) { return p.first == name; });
    if (it == ours.end() || it->second.size() != want.size()) {
      std::fprintf(stderr, "bench_train: %s: %s is %s on the ReconAD side\n", what.c_str(), name.c_str(),
                   it == ours.end() ? "missing" : "of another size");
      std::exit(1);
    }
    const double e = bench::max_rel_error(it->second, want, kAbsTolerance / kTolerance);  // <= kTolerance: pass
    if (!(e <= kTolerance)) {
      std::fprintf(stderr, "bench_train: %s: %s disagrees with LibTorch (max error %.3g of max |value|)\n",
                   what.c_str(), name.c_str(), e);
      std::exit(1);
    }
    worst = std::max(worst, e);
  }
  return worst;
}

using bench::load_average;
using bench::median_ms;

// The usage line: after `msg` on stderr with status 2, or (msg null: --help) on stdout with status 0.
[[noreturn]] void usage(const char* msg) {
  if (msg) std::fprintf(stderr, "bench_train: %s\n", msg);
  std::fprintf(msg ? stderr : stdout,
               "usage: bench_train [--quick] [--device cpu|cuda] [--threads N] [--batches 32,128,256] [--runs N] "
               "[--warmup N] [--json PATH] [--export DIR] [--no-torch] [--stages NAME,...] [--cuda-graphs on|off] "
               "[--help]\n");
  std::exit(msg ? 2 : 0);
}

Options parse(int argc, char** argv) {
  Options o;
  bool runs_set = false, batches_set = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage((a + " needs a value").c_str());
      return argv[++i];
    };
    if (a == "--help" || a == "-h") usage(nullptr);
    else if (a == "--quick") o.quick = true;
    else if (a == "--no-torch") o.no_torch = true;
    else if (a == "--device") o.device = value();
    else if (a == "--threads") o.threads = std::atoi(value().c_str());
    else if (a == "--runs") o.runs = std::atoi(value().c_str()), runs_set = true;
    else if (a == "--warmup") o.warmup = std::atoi(value().c_str());
    else if (a == "--json") o.json = value();
    else if (a == "--export") o.export_dir = value();
    else if (a == "--cuda-graphs") {
      const std::string v = value();
      if (v != "on" && v != "off") usage("--cuda-graphs takes on or off");
      o.cuda_graphs = v == "on";
    }
    else if (a == "--batches") {
      o.batches.clear();
      std::stringstream ss(value());
      for (std::string t; std::getline(ss, t, ',');) o.batches.push_back(std::atoi(t.c_str()));
      batches_set = true;
    } else if (a == "--stages") {
      std::stringstream ss(value());
      for (std::string t; std::getline(ss, t, ',');) {
        if (std::find(std::begin(kStages), std::end(kStages), t) == std::end(kStages))
          usage(("--stages: unknown stage " + t).c_str());
        o.stages.push_back(t);
      }
    } else usage(("unknown argument " + a).c_str());
  }
  if (o.quick) {
    if (!runs_set) o.runs = 3;
    if (!batches_set) o.batches = {32};
  }
  if (o.device != "cpu" && o.device != "cuda") usage("--device must be cpu or cuda");
  if (o.runs < 1 || o.warmup < 0) usage("--runs must be positive and --warmup not negative");
  for (int b : o.batches)
    if (b < 1) usage("--batches must be positive");
  if (o.threads <= 0) {
    const char* env = std::getenv("OMP_NUM_THREADS");
    o.threads = env && std::atoi(env) > 0 ? std::atoi(env) : (int)std::max(1u, std::thread::hardware_concurrency());
  }
  return o;
}

std::vector<float> random_images(int n, const Arch& a, uint64_t seed) {
  Generator g(seed);
  return Tensor::uniform({(int64_t)n * a.rot.channels * a.rot.height * a.rot.width}, g).to_vector();
}

Tensor images_tensor(const std::vector<float>& v, int n, const Arch& a, Device dev) {
  return Tensor::from_vector(v, {n, a.rot.channels, a.rot.height, a.rot.width}).to(dev);
}

void write_named(const std::string& path, const NamedValues& values, const nn::Metadata& meta) {
  nn::StateDict sd;
  for (auto& [name, v] : values) sd.insert(name, Tensor::from_vector(v, {(int64_t)v.size()}));
  nn::save_safetensors(path, sd, meta);
}

struct Row {
  std::string stage;
  int batch;
  double ours_ms, torch_ms;  // torch_ms < 0: not measured
};

int run(const Options& o) {
  const Device dev = o.device == "cuda" ? Device::cuda() : Device::cpu();
  if (dev.is_cuda() && !cuda_available()) usage("--device cuda: this build or machine has no CUDA device");
  omp_set_num_threads(o.threads);
  const std::string load_before = load_average();
  Ours ours(dev);
  const Arch& arch = ours.arch;
  auto sync_ours = [&] {
#if RECON_WITH_CUDA
    if (dev.is_cuda()) cuda::synchronize();
#endif
  };

  // The weights both sides load.
  const std::string dir = o.export_dir.empty()
                              ? (std::filesystem::temp_directory_path() / ("bench_train_" + std::to_string(getpid())))
                                    .string()
                              : o.export_dir;
  std::filesystem::create_directories(dir);
  const std::string weights = dir + "/weights.safetensors";
  nn::save_safetensors(weights, ours.m.state_dict());

  // ReconAD's validation values.
  const std::vector<float> vx = random_images(kValidateBatch, arch, 7);
  ours.x = images_tensor(vx, kValidateBatch, arch, dev);
  std::vector<NamedValues> ours_vals;
  for (int s = 0; s < 3; ++s) {
    ours.reset();
    ours_vals.push_back(ours.grads(s));
  }
  ours.reset();
  ours.modes(3);
  ours_vals.push_back(ours.score());
  const Tensor vb = images_tensor(random_images(kValidateBatch, arch, 8), kValidateBatch, arch, dev);
  ours_vals.push_back(ours_ops(ours.x, vb));
  ours.reset();
  const char* const kValNames[5] = {"rotnet", "decoder", "refiner", "score", "ops"};
  if (!o.export_dir.empty()) {
    NamedValues all{{"x", vx}, {"y", vb.to_vector()}};
    for (int i = 0; i < 5; ++i)
      for (auto& [name, v] : ours_vals[(size_t)i]) all.push_back({std::string(kValNames[i]) + "." + name, v});
    nn::Metadata meta{{"channels", std::to_string(arch.rot.channels)}, {"height", std::to_string(arch.rot.height)},
                      {"width", std::to_string(arch.rot.width)}, {"rot_base_width", std::to_string(arch.rot.base_width)},
                      {"rot_max_width", std::to_string(arch.rot.max_width)},
                      {"rot_target_size", std::to_string(arch.rot.target_size)},
                      {"slope", std::to_string(arch.rot.slope)}, {"ssim_weight", std::to_string(arch.ts.ssim_weight)},
                      {"ref_base_width", std::to_string(arch.ref.base_width)},
                      {"ref_latent", std::to_string(arch.ref.latent_channels)}, {"beta", std::to_string(arch.ref.beta)},
                      {"lr", std::to_string(arch.lr)}, {"validate_batch", std::to_string(kValidateBatch)}};
    write_named(dir + "/expected.safetensors", all, meta);
    std::printf("exported %s/weights.safetensors and %s/expected.safetensors\n", dir.c_str(), dir.c_str());
  }

  bool have_torch = false;
  std::string torch_version = "none";
  int torch_threads = 0;
  std::vector<std::pair<std::string, double>> validation;
#if RECON_HAVE_TORCH_TWIN
  std::unique_ptr<reference::TorchTwin> twin;
  if (!o.no_torch) {
    reference::TorchTwin::set_threads(o.threads);
    reference::TwinConfig tc;
    tc.channels = arch.rot.channels, tc.height = arch.rot.height, tc.width = arch.rot.width;
    tc.rot_base_width = arch.rot.base_width, tc.rot_max_width = arch.rot.max_width;
    tc.rot_target_size = arch.rot.target_size, tc.slope = arch.rot.slope, tc.ssim_weight = arch.ts.ssim_weight;
    tc.ref_base_width = arch.ref.base_width, tc.ref_latent = arch.ref.latent_channels, tc.beta = arch.ref.beta;
    tc.lr = arch.lr;
    twin = std::make_unique<reference::TorchTwin>(tc, weights, dev.is_cuda());
    twin->set_batch(vx, kValidateBatch);
    std::vector<NamedValues> ref{twin->rotnet_grads()};
    twin->reset();
    twin->set_batch(vx, kValidateBatch);
    ref.push_back(twin->decoder_grads());
    twin->reset();
    ref.push_back(twin->refiner_grads());
    twin->reset();
    ref.push_back(twin->score());
    ref.push_back(twin->ops(vx, vb.to_vector(), {kValidateBatch, arch.rot.channels, arch.rot.height, arch.rot.width}));
    twin->reset();
    for (int i = 0; i < 5; ++i) validation.push_back({kValNames[i], compare(kValNames[i], ours_vals[(size_t)i], ref[(size_t)i])});
    have_torch = true;
    torch_version = reference::TorchTwin::version();
    torch_threads = reference::TorchTwin::threads();
  }
#endif

  std::printf("\nbench_train: method 2 on %s, images %dx%dx%d (random, uniform in [0, 1]), median of %d runs after %d "
              "warm-up\nReconAD: %d OpenMP threads; torch: %s (%d threads); %u hardware threads; load average %s\n",
              o.device.c_str(), arch.rot.channels, arch.rot.height, arch.rot.width, o.runs, o.warmup,
              omp_get_max_threads(), torch_version.c_str(), torch_threads, std::thread::hardware_concurrency(),
              load_before.c_str());
  if (dev.is_cuda())
    std::printf("ReconAD training steps: %s\n",
                o.cuda_graphs ? "CUDA graphs (captured once per stage and batch size, then replayed)"
                              : "eager launches (--cuda-graphs off)");
  if (have_torch) {
    std::printf("validated against LibTorch on a batch of %d (max relative error, tolerance %.0e):", kValidateBatch,
                kTolerance);
    for (auto& [n, e] : validation) std::printf(" %s %.1e", n.c_str(), e);
    std::printf("\n");
  } else {
    std::printf("LibTorch twin %s: ReconAD only\n",
#if RECON_HAVE_TORCH_TWIN
                "disabled (--no-torch)"
#else
                "not built (RECON_TORCH_REFERENCE=OFF, or CMake found no Torch)"
#endif
    );
  }

  std::vector<Row> rows;
  for (int n : o.batches) {
    const std::vector<float> xs = random_images(n, arch, 1000 + (uint64_t)n);
    ours.reset();
    ours.drop_graphs();
    ours.x = images_tensor(xs, n, arch, dev);
    ours.graphs = dev.is_cuda() && o.cuda_graphs;  // validation above ran eagerly
#if RECON_HAVE_TORCH_TWIN
    if (have_torch) {
      twin->reset();
      twin->set_batch(xs, n);
    }
#endif
    // The composites' inputs: images and a (mu, logvar) pair of the refiner's latent shape.
    const Shape lat{n, kLatentChannels, (arch.rot.height + 3) / 4, (arch.rot.width + 3) / 4};
    const int64_t lat_numel = lat[0] * lat[1] * lat[2] * lat[3];
    const std::vector<float> ob = random_images(n, arch, 2000 + (uint64_t)n);
    Generator lg(3000 + (uint64_t)n);
    const std::vector<float> mu = Tensor::uniform({lat_numel}, lg, -1.f, 1.f).to_vector(),
                             lv = Tensor::uniform({lat_numel}, lg, -1.f, 1.f).to_vector();
    OpInputs oi;
    oi.a = images_tensor(xs, n, arch, dev), oi.b = images_tensor(ob, n, arch, dev);
    oi.mu = Tensor::from_vector(mu, lat).to(dev), oi.logvar = Tensor::from_vector(lv, lat).to(dev);
    for (Tensor* t : {&oi.a, &oi.b, &oi.mu, &oi.logvar}) t->set_requires_grad(true);
#if RECON_HAVE_TORCH_TWIN
    if (have_torch)
      twin->set_op_inputs(xs, ob, {n, arch.rot.channels, arch.rot.height, arch.rot.width}, mu, lv,
                          std::vector<int64_t>(lat.begin(), lat.end()));
#endif
    for (int s = 0; s < 7; ++s) {
      if (!o.stages.empty() && std::find(o.stages.begin(), o.stages.end(), kStages[s]) == o.stages.end()) continue;
      Row r{kStages[s], n, 0, -1};
      if (s < 3) ours.modes(s);
      if (s < 3 && ours.graphs)  // the eager warm-up step and the capture, before --warmup and the timed runs
        for (int i = 0; i < 2; ++i) ours.step(s);
      r.ours_ms = median_ms(
          [&] {
            if (s < 3) ours.step(s);
            else if (s == 3) ours.score_step();
            else oi.step(s - 4);
          },
          sync_ours, o.warmup, o.runs);
#if RECON_HAVE_TORCH_TWIN
      if (have_torch) {
        auto f = [&] {
          if (s == 0) twin->rotnet_step();
          else if (s == 1) twin->decoder_step();
          else if (s == 2) twin->refiner_step();
          else if (s == 3) twin->score_step();
          else twin->op_step(s - 4);
        };
        r.torch_ms = median_ms(f, [&] { twin->synchronize(); }, o.warmup, o.runs);
      }
#endif
      rows.push_back(r);
      std::fflush(stdout);
    }
  }
  const std::string load_after = load_average();
  if (o.export_dir.empty()) std::filesystem::remove_all(dir);

  std::printf("\n%-20s %6s %11s %12s %11s %12s %7s\n", "stage", "batch", "ReconAD ms", "ReconAD im/s", "torch ms",
              "torch im/s", "ratio");
  std::ostringstream js;
  js << "{\"bench\": \"train\", \"device\": \"" << o.device << "\", \"cuda_graphs\": " << (dev.is_cuda() && o.cuda_graphs ? "true" : "false") << ", \"image\": [" << arch.rot.channels << ", "
     << arch.rot.height << ", " << arch.rot.width << "], \"runs\": " << o.runs << ", \"warmup\": " << o.warmup
     << ", \"omp_threads\": " << omp_get_max_threads() << ", \"torch_threads\": " << torch_threads
     << ", \"torch\": \"" << torch_version << "\", \"load_average_before\": \"" << load_before
     << "\", \"load_average_after\": \"" << load_after << "\", \"validation\": {";
  for (size_t i = 0; i < validation.size(); ++i)
    js << (i ? ", " : "") << "\"" << validation[i].first << "\": " << validation[i].second;
  js << "}, \"results\": [";
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    const double ours_ips = 1000.0 * r.batch / r.ours_ms;
    const double torch_ips = r.torch_ms > 0 ? 1000.0 * r.batch / r.torch_ms : 0;
    if (r.torch_ms > 0)
      std::printf("%-20s %6d %11.2f %12.0f %11.2f %12.0f %6.2fx\n", r.stage.c_str(), r.batch, r.ours_ms, ours_ips,
                  r.torch_ms, torch_ips, ours_ips / torch_ips);
    else
      std::printf("%-20s %6d %11.2f %12.0f %11s %12s %7s\n", r.stage.c_str(), r.batch, r.ours_ms, ours_ips, "-", "-",
                  "-");
    js << (i ? ", " : "") << "{\"stage\": \"" << r.stage << "\", \"batch\": " << r.batch
       << ", \"recon_ms\": " << r.ours_ms << ", \"recon_images_per_s\": " << ours_ips;
    if (r.torch_ms > 0)
      js << ", \"torch_ms\": " << r.torch_ms << ", \"torch_images_per_s\": " << torch_ips
         << ", \"ratio\": " << ours_ips / torch_ips;
    js << "}";
  }
  js << "]}";
  std::printf("ratio = ReconAD images/s / LibTorch images/s (> 1: ReconAD faster); load average after: %s\n",
              load_after.c_str());
  std::printf("%s\n", js.str().c_str());
  if (!o.json.empty()) {
    std::ofstream f(o.json);
    f << js.str() << "\n";
    if (!f) {
      std::fprintf(stderr, "bench_train: cannot write %s\n", o.json.c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace
}  // namespace recon

int main(int argc, char** argv) {
  try {
    return recon::run(recon::parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train: %s\n", e.what());
    return 1;
  }
}
