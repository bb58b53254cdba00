// Kernel benchmarks (DESIGN.md "Benchmarks").
//
// 1. Composite ops against their LibTorch composites, at the model shapes
//    (28x28 gray batches 32, 128, 256 and 128x128 RGB batch 32): the fused
//    SSIM loss forward + backward (LibTorch: reflect pad + two grouped
//    conv2d passes over the five moments, then the SSIM formula, autograd
//    backward), the image entropy (LibTorch: scatter_add histogram), the
//    local entropy (k = 9, 32 levels; LibTorch: one-hot planes box-filtered
//    by avg_pool2d) and the information reduction forward + backward of
//    sum(z) + kl with a sampled z (LibTorch: exp, randn_like, sum). The
//    LibTorch composites are bench/reference/torch_twin.cpp's (the same as
//    bench_train validates). Both sides are timed at the op level (autograd
//    included), median of --runs after warm-up. GB/s counts the minimum bytes
//    an op must move: every input read once and every output written once
//    (SSIM: x, y in, dx, dy out; entropy: x in, one value per image out;
//    local entropy: x in, the (N, 1, H, W) map out; information reduction:
//    mu, logvar in, z, dmu, dlogvar out), 4 bytes each.
//    On the CPU (any build without a usable GPU) ours runs the CPU kernels
//    on --threads threads against the C++ LibTorch twin on as many threads
//    (when CMake found Torch), each validated against it first (max |ours -
//    torch| <= 2e-3 max |torch| + 1e-6 per value; eval-mode information
//    reduction, as the sampled noise differs). On a GPU ours runs the CUDA
//    kernels, timed with CUDA events after an L2 flush, validated against
//    the CPU kernels (sampled z included: the Philox noise is the same), and
//    each row gets the share of the device's peak memory bandwidth (2 x
//    memory clock x bus width, from cudaDeviceGetAttribute); LibTorch's
//    side comes from bench/reference/kernels_torch.py on the machine's
//    Python torch, fed by --export DIR (the inputs and our values), and
//    bench/run_gpu.sh joins both into one table.
// 2. On a GPU: the handwritten convolution kernels (kernels/cuda/conv.hpp)
//    at the conv shapes of the default 28x28 ConvAE, batch 64 (the layers of
//    bench/bench_ops.cpp): for every layer, each conv pass (forward, data
//    gradient, weight gradient, in conv2d-view terms: a conv_transpose2d
//    layer's forward is the data-gradient kernel, as in
//    runtime/ops_conv.cpp) through both kernel families (implicit GEMM and
//    direct; '*' marks the one the launcher picks) and the bias gradient.
//    Every result is first checked against the CPU kernels by normalised
//    MSE, then timed with CUDA events: warm-up, an L2 flush before each run,
//    the median of --runs. Built with -DRECON_CUDNN=ON, cuDNN runs the same
//    passes in the same process (FP32, FMA math: no TF32; fastest algorithm
//    found by cudnnFind*), is validated the same way, and each row gets ours
//    / cuDNN time.
// 3. On the CPU (any build without a usable GPU): the CPU convolution
//    kernels (kernels/cpu/conv.hpp, their products through the kernel that
//    conv_product_name() reports, RECON_CPU_CONV chooses) at the same layers,
//    batches 32, 128 and 256 (the gray28 composite cases), against LibTorch on
//    the same data (TorchOps::conv_step: at::conv2d with bias for the
//    forward, at::convolution_backward for the data and the weight gradient),
//    the same conv2d-view pass on both sides, --threads threads each. Each
//    layer is first validated against LibTorch (max |ours - torch| <= 1e-4
//    max |torch| + 1e-6 per pass), then each pass timed like the composites
//    (median of --runs after warm-up, steady_clock); GFLOP/s counts
//    2 N Cout Ho Wo Cin kh kw per pass. Without the LibTorch twin ReconAD is
//    timed alone, unvalidated, as the composites are.
//
// Prints the tables and one JSON object (also to --json PATH).
//
// Usage: bench_kernels [--runs N] [--threads N] [--json PATH] [--export DIR] [--no-torch]
//                      [--no-conv | --conv-only] [--help]
// (--no-conv: the composite rows alone; --conv-only: the conv rows alone, for quick runs on conv kernels)
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench/bench_util.hpp"
#include "bench/default_model_shapes.hpp"
#include "kernels/common/conv.hpp"
#include "kernels/cpu/conv.hpp"
#include "kernels/cpu/conv_gemm.hpp"
#include "nn/safetensors.hpp"
#include "runtime/autograd.hpp"
#include "runtime/device.hpp"
#include "runtime/generator.hpp"
#include "runtime/ops.hpp"
#include "runtime/tensor.hpp"

#if RECON_HAVE_TORCH_TWIN
#include "bench/reference/torch_twin.hpp"
#else
namespace recon::reference {
class TorchOps;  // not built: the rows that would compare with it get a null pointer
}  // namespace recon::reference
#endif

#if defined(RECON_WITH_CUDA) && !defined(RECON_SIMT)
#define RECON_BENCH_GPU 1
#include <cuda_runtime.h>
#if defined(RECON_HAVE_CUDNN)
#include <cudnn.h>
#endif

#include "kernels/cuda/conv.hpp"
#include "runtime/cuda_context.hpp"
#else
#define RECON_BENCH_GPU 0
#endif

using namespace recon;

namespace {

using NamedValues = std::vector<std::pair<std::string, std::vector<float>>>;

constexpr int kWarmup = 3;  // untimed runs before timing

struct Options {
  int runs = 50, threads = 0;
  std::string json, export_dir;
  bool no_torch = false, no_conv = false, conv_only = false;
};

// The usage line: after `msg` on stderr with status 2, or (msg null: --help) on stdout with status 0.
[[noreturn]] void usage(const char* msg) {
  if (msg) std::fprintf(stderr, "bench_kernels: %s\n", msg);
  std::fprintf(msg ? stderr : stdout,
               "usage: bench_kernels [--runs N] [--threads N] [--json PATH] [--export DIR] [--no-torch] "
               "[--no-conv | --conv-only] [--help]\n");
  std::exit(msg ? 2 : 0);
}

// ---- composite ops ----------------------------------------------------------------------

// Agreement with LibTorch (as bench_train): max |ours - torch| <= kTolerance max |torch| + kAbsTolerance.
constexpr double kTolerance = 2e-3, kAbsTolerance = 1e-6;
// CUDA against the CPU kernels: float sums in other orders, the same Philox noise.
constexpr double kDeviceTolerance = 1e-4;
constexpr int kLocalK = 9, kLocalBins = 32;  // local_entropy's window and levels (models/difficulty.hpp defaults)
constexpr int kLatentChannels = 4;           // the refiner's latent (N, 4, ceil(H/4), ceil(W/4))
const char* const kCompositeOps[4] = {"ssim_fwd_bwd", "image_entropy", "local_entropy", "info_red_fwd_bwd"};
constexpr int kTorchStep[4] = {0, 1, 3, 2};  // TorchOps::step's numbering of kCompositeOps

struct CompositeCase {
  std::string name;
  Shape image, latent;
};

std::vector<CompositeCase> composite_cases() {
  auto make = [](const char* name, int64_t n, int64_t c, int64_t s) {
    return CompositeCase{name, {n, c, s, s}, {n, kLatentChannels, (s + 3) / 4, (s + 3) / 4}};
  };
  return {make("gray28_b32", 32, 1, 28), make("gray28_b128", 128, 1, 28), make("gray28_b256", 256, 1, 28),
          make("rgb128_b32", 32, 3, 128)};
}

int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// The minimum bytes an op moves: inputs read once, outputs written once (see the header).
double min_bytes(int op, const CompositeCase& c) {
  const double img = (double)numel_of(c.image), lat = (double)numel_of(c.latent), n = (double)c.image[0];
  const double plane = (double)c.image[2] * c.image[3];
  switch (op) {
    case 0: return 4.0 * (4 * img);                 // x, y -> dx, dy
    case 1: return 4.0 * (img + n);                 // x -> one entropy per image
    case 2: return 4.0 * (img + n * plane);         // x -> (N, 1, H, W)
    default: return 4.0 * (5 * lat);                // mu, logvar -> z, dmu, dlogvar
  }
}

struct CompositeInputs {
  std::vector<float> a, b, mu, logvar;  // images in [0, 1]; mu, logvar in [-1, 1]
};

CompositeInputs make_inputs(const CompositeCase& c, uint64_t seed) {
  Generator g(seed);
  CompositeInputs in;
  in.a = Tensor::uniform({numel_of(c.image)}, g).to_vector();
  in.b = Tensor::uniform({numel_of(c.image)}, g).to_vector();
  in.mu = Tensor::uniform({numel_of(c.latent)}, g, -1.f, 1.f).to_vector();
  in.logvar = Tensor::uniform({numel_of(c.latent)}, g, -1.f, 1.f).to_vector();
  return in;
}

// ReconAD's side of one case on one device, through the public ops (autograd included).
struct OursOps {
  Tensor a, b, mu, logvar;  // leaves that require grad
  Generator gen{99};        // the sampled z's noise

  OursOps(const CompositeCase& c, const CompositeInputs& in, Device dev) {
    a = Tensor::from_vector(in.a, c.image).to(dev);
    b = Tensor::from_vector(in.b, c.image).to(dev);
    mu = Tensor::from_vector(in.mu, c.latent).to(dev);
    logvar = Tensor::from_vector(in.logvar, c.latent).to(dev);
    for (Tensor* t : {&a, &b, &mu, &logvar}) t->set_requires_grad(true);
  }
  // One timed step of kCompositeOps[op].
  void step(int op) {
    if (op == 0) {
      a.zero_grad(), b.zero_grad();
      ssim_loss(a, b).backward();
    } else if (op == 1) {
      NoGradGuard ng;
      image_entropy(a);
    } else if (op == 2) {
      NoGradGuard ng;
      local_entropy(a, kLocalK, kLocalBins);
    } else {
      mu.zero_grad(), logvar.zero_grad();
      InfoReduction ir = information_reduction(mu, logvar, true, gen);
      add(sum(ir.z), ir.kl).backward();
    }
  }
  // The values of TorchOps::values (eval-mode information reduction: kl and its backward alone).
  NamedValues values() {
    Tensor x = a.detach().clone(), y = b.detach().clone(), m = mu.detach().clone(), lv = logvar.detach().clone();
    for (Tensor* t : {&x, &y, &m, &lv}) t->set_requires_grad(true);
    Tensor l = ssim_loss(x, y);
    l.backward();
    NamedValues out{{"ssim_loss", l.to_vector()},
                    {"ssim_loss.grad_a", x.grad().to_vector()},
                    {"ssim_loss.grad_b", y.grad().to_vector()}};
    {
      NoGradGuard ng;
      out.push_back({"entropy", image_entropy(x.detach()).to_vector()});
      out.push_back({"local_entropy", local_entropy(x.detach(), kLocalK, kLocalBins).to_vector()});
    }
    InfoReduction ir = information_reduction(m, lv, false);
    ir.kl.backward();
    out.push_back({"kl", ir.kl.to_vector()});
    out.push_back({"kl.grad_mu", m.grad().to_vector()});
    out.push_back({"kl.grad_logvar", lv.grad().to_vector()});
    return out;
  }
  // The sampled information reduction (fixed seed): z and the gradients of sum(z) + kl.
  NamedValues sampled_values() {
    Tensor m = mu.detach().clone(), lv = logvar.detach().clone();
    m.set_requires_grad(true);
    lv.set_requires_grad(true);
    Generator g(7);
    InfoReduction ir = information_reduction(m, lv, true, g);
    add(sum(ir.z), ir.kl).backward();
    return {{"sampled.z", ir.z.to_vector()},
            {"sampled.grad_mu", m.grad().to_vector()},
            {"sampled.grad_logvar", lv.grad().to_vector()}};
  }
};

// Every value of `ref` in `got` within tol (else a message and exit 1); returns the worst error.
double require_agree(const std::string& what, const NamedValues& got, const NamedValues& ref, double tol) {
  double worst = 0;
  for (auto& [name, want] : ref) {
    auto it = std::find_if(got.begin(), got.end(), [&](auto& p) { return p.first == name; });
    const double e = it == got.end() ? INFINITY : bench::max_rel_error(it->second, want, kAbsTolerance / tol);
    if (!(e <= tol)) {
      std::fprintf(stderr, "bench_kernels: %s: %s disagrees (max error %.3g of max |reference|, tolerance %.0e)\n",
                   what.c_str(), name.c_str(), e, tol);
      std::exit(1);
    }
    worst = std::max(worst, e);
  }
  return worst;
}

struct CompositeRow {
  std::string case_name, op;
  Shape image;
  double ms = 0, bytes = 0, torch_ms = -1, peak_share = -1;
};

// ---- convolution rows: the shapes, and the CPU rows ----------------------------------

using Layer = recon::bench::ConvLayerShape;

int64_t in_size(const ConvGeometry& g) { return (int64_t)g.n * g.c_in * g.h * g.w; }
int64_t out_size(const ConvGeometry& g) { return (int64_t)g.n * g.c_out * g.ho * g.wo; }
int64_t weight_size(const ConvGeometry& g) { return (int64_t)g.c_out * g.c_in * g.kh * g.kw; }
// Multiply-adds of one pass (every pass has the same count), as 2 flops each; padding taps included.
double conv_flops(const ConvGeometry& g) { return 2.0 * out_size(g) * g.c_in * g.kh * g.kw; }

std::vector<float> random_vector(int64_t n, uint64_t seed) {
  Generator gen(seed);
  return Tensor::uniform({n}, gen, -1.f, 1.f).to_vector();
}

// The op-level pass a conv2d-view pass of layer l serves: a conv_transpose2d
// layer's forward is the data-gradient kernel and its data gradient the
// forward kernel, as in runtime/ops_conv.cpp.
std::string serves(const Layer& l, const std::string& conv_pass) {
  if (l.op != "conv_transpose2d") return conv_pass;
  return conv_pass == "forward" ? "backward_data" : conv_pass == "backward_data" ? "forward" : conv_pass;
}

constexpr int kCpuConvBatches[3] = {32, 128, 256};  // the batches of the gray28 composite cases
// CPU conv passes against LibTorch: max |ours - torch| <= kConvTolerance max |torch| + kAbsTolerance (float
// sums of up to N Ho Wo terms, blocked in other orders).
constexpr double kConvTolerance = 1e-4;
const char* const kConvPasses[3] = {"forward", "backward_data", "backward_weight"};  // TorchOps::conv_step's numbering

struct CpuConvRow {
  std::string layer, op, pass;  // pass: "<conv2d-view pass> -> <the op pass it serves>"
  int batch = 0;
  double flops = 0, ms = 0, torch_ms = -1;
};

// Times the three conv2d-view passes of every default-model layer at each of
// kCpuConvBatches with the CPU kernels and, when `torch` is not null, with
// LibTorch on the same data, after validating each layer against it (see the
// header); prints the table and returns the JSON member "conv".
std::string cpu_conv_rows(int runs, reference::TorchOps* torch, const std::string& torch_note) {
  const std::string load_before = bench::load_average();
  std::vector<CpuConvRow> rows;
  std::vector<std::pair<std::string, double>> validation;
  for (int n : kCpuConvBatches) {
    for (const Layer& l : recon::bench::default_model_convs(n)) {
      const ConvGeometry& g = l.g;
      const auto x = random_vector(in_size(g), 1), w = random_vector(weight_size(g), 2),
                 dy = random_vector(out_size(g), 3), b = random_vector(g.c_out, 4);
      std::vector<float> y(out_size(g)), dx(in_size(g)), dw(weight_size(g));
      const std::function<void()> ours[3] = {
          [&] { cpu::conv2d_forward(g, x.data(), w.data(), b.data(), y.data()); },
          [&] { cpu::conv2d_backward_data(g, dy.data(), w.data(), dx.data()); },
          [&] { cpu::conv2d_backward_weight(g, x.data(), dy.data(), dw.data()); },
      };
#if RECON_HAVE_TORCH_TWIN
      if (torch) {
        // Validation before any timing.
        for (const auto& f : ours) f();
        torch->set_conv(g, x, w, b, dy);
        const std::string name = l.name + "_b" + std::to_string(n);
        validation.push_back({name, require_agree(name + " (against LibTorch)",
                                                  {{"forward", y}, {"backward_data", dx}, {"backward_weight", dw}},
                                                  torch->conv_values(), kConvTolerance)});
      }
#endif
      for (int p = 0; p < 3; ++p) {
        CpuConvRow r{l.name, l.op, std::string(kConvPasses[p]) + " -> " + serves(l, kConvPasses[p]), n,
                     conv_flops(g)};
        r.ms = bench::median_ms(ours[p], [] {}, kWarmup, runs);
#if RECON_HAVE_TORCH_TWIN
        if (torch) r.torch_ms = bench::median_ms([&] { torch->conv_step(p); }, [] {}, kWarmup, runs);
#endif
        rows.push_back(r);
      }
    }
  }
  const std::string load_after = bench::load_average();

  const std::string product = cpu::conv_product_name();
  std::printf("\nconv2d passes on cpu (CPU kernels, conv product %s), the default model's layers, median of %d runs "
              "after %d warm-up, steady_clock; ReconAD: %d OpenMP threads; %s\nload average before %s, after %s\n",
              product.c_str(), runs, kWarmup, omp_get_max_threads(), torch_note.c_str(), load_before.c_str(),
              load_after.c_str());
  if (!validation.empty()) {
    std::printf("validated (max relative error of the three passes) against LibTorch:");
    for (auto& [n, e] : validation) std::printf(" %s %.1e", n.c_str(), e);
    std::printf("\n");
  }
  std::printf("conv2d-view passes ('-> pass': the op pass it serves), the same pass on both sides; GFLOP/s: "
              "2 N Cout Ho Wo Cin kh kw / time; ratio = torch ms / ReconAD ms (> 1: ReconAD faster)\n");
  std::printf("%5s %-5s %-16s %-33s %10s %9s %10s %9s %7s\n", "batch", "layer", "op", "pass", "ReconAD ms", "GFLOP/s",
              "torch ms", "GFLOP/s", "ratio");
  std::ostringstream js;
  js << "\"conv\": {\"device\": \"cpu\", \"omp_threads\": " << omp_get_max_threads() << ", \"conv_product\": \""
     << product << "\", \"torch\": \"" << (torch ? torch_note : std::string("none"))
     << "\", \"load_average_before\": \"" << load_before << "\", \"load_average_after\": \"" << load_after
     << "\", \"results\": [";
  for (size_t i = 0; i < rows.size(); ++i) {
    const CpuConvRow& r = rows[i];
    const double gflops = r.flops / (r.ms * 1e6);
    std::printf("%5d %-5s %-16s %-33s %10.4f %9.1f", r.batch, r.layer.c_str(), r.op.c_str(), r.pass.c_str(), r.ms,
                gflops);
    if (r.torch_ms > 0)
      std::printf(" %10.4f %9.1f %6.2fx\n", r.torch_ms, r.flops / (r.torch_ms * 1e6), r.torch_ms / r.ms);
    else
      std::printf(" %10s %9s %7s\n", "-", "-", "-");
    js << (i ? ", " : "") << "{\"layer\": \"" << r.layer << "\", \"op\": \"" << r.op << "\", \"pass\": \"" << r.pass
       << "\", \"batch\": " << r.batch << ", \"ms\": " << r.ms << ", \"flops\": " << r.flops
       << ", \"gflops\": " << gflops;
    if (r.torch_ms > 0)
      js << ", \"torch_ms\": " << r.torch_ms << ", \"torch_gflops\": " << r.flops / (r.torch_ms * 1e6)
         << ", \"ratio\": " << r.torch_ms / r.ms;
    js << "}";
  }
  js << "]}";
  return js.str();
}

#if RECON_BENCH_GPU
// ---- GPU timing and the convolution rows ----------------------------------------------

constexpr int kBatch = 64;                 // the default training batch
constexpr size_t kFlushBytes = 256u << 20;  // > the 50 MiB L2 of an H100/H200: a memset of it evicts the data
constexpr double kValidateNmse = 1e-8;     // float sums of up to 50176 terms against the CPU's

#define BENCH_CUDA(expr)                                                                         \
  do {                                                                                           \
    cudaError_t e_ = (expr);                                                                     \
    if (e_ != cudaSuccess) {                                                                     \
      std::fprintf(stderr, "bench_kernels: %s failed: %s\n", #expr, cudaGetErrorString(e_));    \
      std::exit(1);                                                                              \
    }                                                                                            \
  } while (0)

#if defined(RECON_HAVE_CUDNN)
#define BENCH_CUDNN(expr)                                                                        \
  do {                                                                                           \
    cudnnStatus_t s_ = (expr);                                                                   \
    if (s_ != CUDNN_STATUS_SUCCESS) {                                                            \
      std::fprintf(stderr, "bench_kernels: %s failed: %s\n", #expr, cudnnGetErrorString(s_));   \
      std::exit(1);                                                                              \
    }                                                                                            \
  } while (0)
#endif

std::vector<Layer> model_layers() { return recon::bench::default_model_convs(kBatch); }

double nmse(const std::vector<float>& got, const std::vector<float>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = (double)got[i] - ref[i];
    num += d * d;
    den += (double)ref[i] * ref[i];
  }
  return std::isfinite(num) ? num / std::max(den, 1e-30) : INFINITY;
}

// A device buffer (cudaMalloc: the bench times kernels, not the pool).
struct DeviceBuffer {
  float* p = nullptr;
  int64_t n = 0;
  explicit DeviceBuffer(int64_t count) : n(count) {
    if (n > 0) BENCH_CUDA(cudaMalloc(&p, (size_t)n * sizeof(float)));
  }
  DeviceBuffer(const std::vector<float>& v) : DeviceBuffer((int64_t)v.size()) {
    if (n > 0) BENCH_CUDA(cudaMemcpy(p, v.data(), (size_t)n * sizeof(float), cudaMemcpyHostToDevice));
  }
  ~DeviceBuffer() { cudaFree(p); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  std::vector<float> host() const {
    std::vector<float> v((size_t)n);
    BENCH_CUDA(cudaStreamSynchronize(static_cast<cudaStream_t>(cuda::stream_handle())));
    if (n > 0) BENCH_CUDA(cudaMemcpy(v.data(), p, (size_t)n * sizeof(float), cudaMemcpyDeviceToHost));
    return v;
  }
};

// Median time in ms of `runs` runs of f on the runtime stream, each after an L2 flush.
double time_ms(const std::function<void()>& f, int runs, void* flush) {
  cudaStream_t s = static_cast<cudaStream_t>(cuda::stream_handle());
  for (int i = 0; i < kWarmup; ++i) f();
  cudaEvent_t start, stop;
  BENCH_CUDA(cudaEventCreate(&start));
  BENCH_CUDA(cudaEventCreate(&stop));
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    BENCH_CUDA(cudaMemsetAsync(flush, i & 0xff, kFlushBytes, s));
    BENCH_CUDA(cudaEventRecord(start, s));
    f();
    BENCH_CUDA(cudaEventRecord(stop, s));
    BENCH_CUDA(cudaEventSynchronize(stop));
    float ms = 0;
    BENCH_CUDA(cudaEventElapsedTime(&ms, start, stop));
    t.push_back(ms);
  }
  BENCH_CUDA(cudaEventDestroy(start));
  BENCH_CUDA(cudaEventDestroy(stop));
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

void require_valid(const std::string& what, const std::vector<float>& got, const std::vector<float>& ref) {
  const double e = nmse(got, ref);
  if (!(e <= kValidateNmse)) {
    std::fprintf(stderr, "bench_kernels: %s disagrees with the CPU (normalised MSE %.3g > %.1g)\n", what.c_str(), e,
                 kValidateNmse);
    std::exit(1);
  }
}

#if defined(RECON_HAVE_CUDNN)
// cuDNN descriptors for one conv2d-view geometry, FP32 with FMA math (TF32 off).
struct CudnnConv {
  cudnnHandle_t h;
  cudnnTensorDescriptor_t x, y, bias;
  cudnnFilterDescriptor_t w;
  cudnnConvolutionDescriptor_t conv;
  CudnnConv(cudnnHandle_t handle, const ConvGeometry& g) : h(handle) {
    BENCH_CUDNN(cudnnCreateTensorDescriptor(&x));
    BENCH_CUDNN(cudnnCreateTensorDescriptor(&y));
    BENCH_CUDNN(cudnnCreateTensorDescriptor(&bias));
    BENCH_CUDNN(cudnnCreateFilterDescriptor(&w));
    BENCH_CUDNN(cudnnCreateConvolutionDescriptor(&conv));
    BENCH_CUDNN(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, g.n, g.c_in, g.h, g.w));
    BENCH_CUDNN(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, g.n, g.c_out, g.ho, g.wo));
    BENCH_CUDNN(cudnnSetTensor4dDescriptor(bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, g.c_out, 1, 1));
    BENCH_CUDNN(cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, g.c_out, g.c_in, g.kh, g.kw));
    BENCH_CUDNN(cudnnSetConvolution2dDescriptor(conv, g.pad_h, g.pad_w, g.stride_h, g.stride_w, g.dil_h, g.dil_w,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    BENCH_CUDNN(cudnnSetConvolutionMathType(conv, CUDNN_FMA_MATH));
  }
  ~CudnnConv() {
    cudnnDestroyTensorDescriptor(x);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyTensorDescriptor(bias);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyConvolutionDescriptor(conv);
  }
};

// The fastest successful algorithm with FMA math among cudnnFind*'s results; -1 if none.
template <class Perf>
int pick_algo(const Perf* perf, int count, size_t& ws) {
  for (int i = 0; i < count; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].mathType == CUDNN_FMA_MATH) {
      ws = perf[i].memory;
      return (int)perf[i].algo;
    }
  return -1;
}
#endif

struct ConvRow {
  std::string layer, op, conv_pass, pass, kernel;  // pass: "<conv_pass> -> <the op pass it serves>"
  bool chosen = false;
  double ms = 0, gflops = 0, gbs = 0, cudnn_ms = -1;
};

// Peak DRAM bandwidth in GB/s: 2 transfers per memory clock (DDR) x bus width.
double peak_gbs(int device) {
  int clock_khz = 0, bus_bits = 0;
  BENCH_CUDA(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, device));
  BENCH_CUDA(cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, device));
  return 2.0 * clock_khz * 1e3 * (bus_bits / 8.0) / 1e9;
}

// Times every conv pass of the default model (see the header), prints the
// table and returns the JSON members of the conv rows.
std::string conv_rows(int runs, void* flush, const cudaDeviceProp& prop) {
  cudaStream_t stream = static_cast<cudaStream_t>(cuda::stream_handle());
#if defined(RECON_HAVE_CUDNN)
  cudnnHandle_t dnn;
  BENCH_CUDNN(cudnnCreate(&dnn));
  BENCH_CUDNN(cudnnSetStream(dnn, stream));
  const bool with_cudnn = true;
#else
  (void)stream;
  const bool with_cudnn = false;
#endif
  std::vector<ConvRow> rows;
  for (const Layer& l : model_layers()) {
    const ConvGeometry& g = l.g;
    const auto x = random_vector(in_size(g), 1), w = random_vector(weight_size(g), 2),
               dy = random_vector(out_size(g), 3), b = random_vector(g.c_out, 4);
    // CPU references (conv2d view; the forward with bias).
    std::vector<float> y_ref(out_size(g)), dx_ref(in_size(g)), dw_ref(weight_size(g)), db_ref(g.c_out);
    cpu::conv2d_forward(g, x.data(), w.data(), b.data(), y_ref.data());
    cpu::conv2d_backward_data(g, dy.data(), w.data(), dx_ref.data());
    cpu::conv2d_backward_weight(g, x.data(), dy.data(), dw_ref.data());
    cpu::conv2d_backward_bias(dy.data(), db_ref.data(), g.n, g.c_out, (int64_t)g.ho * g.wo);

    DeviceBuffer xd(x), wd(w), dyd(dy), bd(b), yd(out_size(g)), dxd(in_size(g)), dwd(weight_size(g)), dbd(g.c_out);
    const cuda::ConvPath chosen = cuda::conv_path(g);
    const double flops = conv_flops(g);
    const double bytes_fwd = 4.0 * (in_size(g) + weight_size(g) + out_size(g));

    for (cuda::ConvPath path : {cuda::ConvPath::kTiled, cuda::ConvPath::kDirect}) {
      const std::string kname = path == cuda::ConvPath::kTiled ? "implicit_gemm" : "direct";
      // One split-K workspace for the three passes (they run one after another on the stream).
      DeviceBuffer ws(std::max({cuda::conv_workspace(g, cuda::ConvPass::kForward, path),
                                cuda::conv_workspace(g, cuda::ConvPass::kBackwardData, path),
                                cuda::conv_workspace(g, cuda::ConvPass::kBackwardWeight, path)}));
      struct Pass {
        const char* name;
        std::function<void()> run;
        const DeviceBuffer* out;
        const std::vector<float>* ref;
      };
      const std::vector<Pass> passes = {
          {"forward", [&] { cuda::conv2d_forward(g, xd.p, wd.p, bd.p, ws.p, yd.p, path); }, &yd, &y_ref},
          {"backward_data", [&] { cuda::conv2d_backward_data(g, dyd.p, wd.p, nullptr, ws.p, dxd.p, path); }, &dxd,
           &dx_ref},
          {"backward_weight", [&] { cuda::conv2d_backward_weight(g, xd.p, dyd.p, ws.p, dwd.p, path); }, &dwd,
           &dw_ref},
      };
      for (const Pass& p : passes) {
        p.run();
        require_valid(l.name + " " + p.name + " (" + kname + ")", p.out->host(), *p.ref);
        ConvRow r{l.name, l.op, p.name, std::string(p.name) + " -> " + serves(l, p.name), kname, path == chosen};
        r.ms = time_ms(p.run, runs, flush);
        r.gflops = flops / (r.ms * 1e6);
        r.gbs = bytes_fwd / (r.ms * 1e6);
        rows.push_back(r);
      }
    }
    {
      auto run = [&] { cuda::conv2d_backward_bias(dyd.p, dbd.p, g.n, g.c_out, (int64_t)g.ho * g.wo); };
      run();
      require_valid(l.name + " bias gradient", dbd.host(), db_ref);
      ConvRow r{l.name, l.op, "backward_bias", "backward_bias", "channel_tree", true};
      r.ms = time_ms(run, runs, flush);
      r.gflops = out_size(g) / (r.ms * 1e6);
      r.gbs = 4.0 * out_size(g) / (r.ms * 1e6);
      rows.push_back(r);
    }

#if defined(RECON_HAVE_CUDNN)
    {
      CudnnConv c(dnn, g);
      const float one = 1.f, zero = 0.f;
      constexpr int kAlgos = 16;
      int found = 0;
      size_t ws_f = 0, ws_d = 0, ws_w = 0;
      cudnnConvolutionFwdAlgoPerf_t pf[kAlgos];
      cudnnConvolutionBwdDataAlgoPerf_t pd[kAlgos];
      cudnnConvolutionBwdFilterAlgoPerf_t pw[kAlgos];
      BENCH_CUDNN(cudnnFindConvolutionForwardAlgorithm(dnn, c.x, c.w, c.conv, c.y, kAlgos, &found, pf));
      const int af = pick_algo(pf, found, ws_f);
      BENCH_CUDNN(cudnnFindConvolutionBackwardDataAlgorithm(dnn, c.w, c.y, c.conv, c.x, kAlgos, &found, pd));
      const int ad = pick_algo(pd, found, ws_d);
      BENCH_CUDNN(cudnnFindConvolutionBackwardFilterAlgorithm(dnn, c.x, c.y, c.conv, c.w, kAlgos, &found, pw));
      const int aw = pick_algo(pw, found, ws_w);
      DeviceBuffer wsf((int64_t)(ws_f + 3) / 4), wsd((int64_t)(ws_d + 3) / 4), wsw((int64_t)(ws_w + 3) / 4);
      DeviceBuffer yc(out_size(g)), dxc(in_size(g)), dwc(weight_size(g)), dbc(g.c_out);
      struct Pass {
        const char* name;
        int algo;
        std::function<void()> run;
        const DeviceBuffer* out;
        const std::vector<float>* ref;
      };
      const std::vector<Pass> passes = {
          {"forward", af,
           [&] {
             BENCH_CUDNN(cudnnConvolutionForward(dnn, &one, c.x, xd.p, c.w, wd.p, c.conv,
                                                 (cudnnConvolutionFwdAlgo_t)af, wsf.p, ws_f, &zero, c.y, yc.p));
             BENCH_CUDNN(cudnnAddTensor(dnn, &one, c.bias, bd.p, &one, c.y, yc.p));
           },
           &yc, &y_ref},
          {"backward_data", ad,
           [&] {
             BENCH_CUDNN(cudnnConvolutionBackwardData(dnn, &one, c.w, wd.p, c.y, dyd.p, c.conv,
                                                      (cudnnConvolutionBwdDataAlgo_t)ad, wsd.p, ws_d, &zero, c.x,
                                                      dxc.p));
           },
           &dxc, &dx_ref},
          {"backward_weight", aw,
           [&] {
             BENCH_CUDNN(cudnnConvolutionBackwardFilter(dnn, &one, c.x, xd.p, c.y, dyd.p, c.conv,
                                                        (cudnnConvolutionBwdFilterAlgo_t)aw, wsw.p, ws_w, &zero, c.w,
                                                        dwc.p));
           },
           &dwc, &dw_ref},
          {"backward_bias", 0,
           [&] { BENCH_CUDNN(cudnnConvolutionBackwardBias(dnn, &one, c.y, dyd.p, &zero, c.bias, dbc.p)); }, &dbc,
           &db_ref},
      };
      for (const Pass& p : passes) {
        if (p.algo < 0) {
          std::printf("bench_kernels: %s %s: cuDNN has no FMA-math algorithm, no comparison\n", l.name.c_str(),
                      p.name);
          continue;
        }
        p.run();
        require_valid(l.name + " " + p.name + " (cuDNN)", p.out->host(), *p.ref);
        const double ms = time_ms(p.run, runs, flush);
        for (ConvRow& r : rows)
          if (r.layer == l.name && r.conv_pass == p.name) r.cudnn_ms = ms;
      }
    }
#endif
  }

  std::printf("bench_kernels: every kernel matches the CPU kernels (normalised MSE <= %.0e)\n", kValidateNmse);
  std::printf("\n%s, batch %d, median of %d runs (L2 flushed before each), FP32%s\n", prop.name, kBatch, runs,
              with_cudnn ? "; cuDNN with FMA math (no TF32)" : "; built without cuDNN (-DRECON_CUDNN=ON to compare)");
  std::printf("conv2d-view passes; '-> pass' is the op pass a kernel serves; * = the launcher's choice\n");
  std::printf("%-5s %-17s %-34s %-14s %9s %10s %9s %10s %8s\n", "layer", "op", "pass", "kernel", "ms", "GFLOP/s",
              "GB/s", "cuDNN ms", "ours/cuDNN");
  for (const ConvRow& r : rows) {
    std::printf("%-5s %-17s %-34s %-13s%s %9.4f %10.1f %9.1f", r.layer.c_str(), r.op.c_str(), r.pass.c_str(),
                r.kernel.c_str(), r.chosen ? "*" : " ", r.ms, r.gflops, r.gbs);
    if (r.cudnn_ms > 0) std::printf(" %10.4f %8.2f\n", r.cudnn_ms, r.ms / r.cudnn_ms);
    else std::printf(" %10s %8s\n", "-", "-");
  }
  std::ostringstream js;
  js << "\"batch\": " << kBatch << ", \"cudnn\": " << (with_cudnn ? "true" : "false") << ", \"results\": [";
  for (size_t i = 0; i < rows.size(); ++i) {
    const ConvRow& r = rows[i];
    js << (i ? ", " : "") << "{\"layer\": \"" << r.layer << "\", \"op\": \"" << r.op << "\", \"pass\": \"" << r.pass
       << "\", \"kernel\": \"" << r.kernel << "\", \"chosen\": " << (r.chosen ? "true" : "false")
       << ", \"ms\": " << r.ms << ", \"gflops\": " << r.gflops << ", \"gbs\": " << r.gbs;
    if (r.cudnn_ms > 0) js << ", \"cudnn_ms\": " << r.cudnn_ms << ", \"ratio_to_cudnn\": " << r.ms / r.cudnn_ms;
    js << "}";
  }
  js << "]";
#if defined(RECON_HAVE_CUDNN)
  cudnnDestroy(dnn);
#endif
  return js.str();
}
#endif  // RECON_BENCH_GPU

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage((a + " needs a value").c_str());
      return argv[++i];
    };
    if (a == "--runs") o.runs = std::atoi(value().c_str());
    else if (a == "--threads") o.threads = std::atoi(value().c_str());
    else if (a == "--json") o.json = value();
    else if (a == "--export") o.export_dir = value();
    else if (a == "--no-torch") o.no_torch = true;
    else if (a == "--no-conv") o.no_conv = true;
    else if (a == "--conv-only") o.conv_only = true;
    else if (a == "--help" || a == "-h") usage(nullptr);
    else usage(("unknown argument " + a).c_str());
  }
  if (o.runs < 1) usage("--runs must be positive");
  if (o.conv_only && (o.no_conv || !o.export_dir.empty())) usage("--conv-only excludes --no-conv and --export");
  if (o.threads <= 0) {
    const char* env = std::getenv("OMP_NUM_THREADS");
    o.threads = env && std::atoi(env) > 0 ? std::atoi(env) : (int)std::max(1u, std::thread::hardware_concurrency());
  }
  return o;
}

int run(const Options& o) {
  omp_set_num_threads(o.threads);
  const std::string load_before = bench::load_average();
  std::ostringstream js;
  js << "{\"bench\": \"bench_kernels\", \"runs\": " << o.runs;

  // ---- the device: a GPU when this is a real CUDA build and one is there ----
  bool gpu = false;
  std::string device_name = "cpu";
  double peak = -1;
#if RECON_BENCH_GPU
  int devices = 0;
  gpu = cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0;
  cudaDeviceProp prop;
  void* flush = nullptr;
  if (gpu) {
    BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
    BENCH_CUDA(cudaMalloc(&flush, kFlushBytes));
    device_name = prop.name;
    peak = peak_gbs(0);
  }
#endif
  js << ", \"device\": \"" << device_name << "\"";

  // ---- the LibTorch twin: the CPU's reference for the conv and composite rows ----
  reference::TorchOps* torch = nullptr;
  std::string torch_note = gpu ? "LibTorch side: bench/reference/kernels_torch.py (Python torch), joined by run_gpu.sh"
                               : "LibTorch twin not built (RECON_TORCH_REFERENCE=OFF, or CMake found no Torch)";
#if RECON_HAVE_TORCH_TWIN
  std::unique_ptr<reference::TorchOps> torch_ops;
  if (!gpu && !o.no_torch) {
    reference::TorchTwin::set_threads(o.threads);
    torch_ops = std::make_unique<reference::TorchOps>(false);
    torch = torch_ops.get();
    torch_note = reference::TorchTwin::version();
  } else if (!gpu) {
    torch_note = "LibTorch twin disabled (--no-torch)";
  }
#endif
  const bool have_torch = torch != nullptr;

  // ---- conv rows: CUDA kernels against cuDNN, or CPU kernels against LibTorch ----
#if RECON_BENCH_GPU
  if (gpu && !o.no_conv) js << ", " << conv_rows(o.runs, flush, prop);
#endif
  if (!gpu && !o.no_conv) js << ", " << cpu_conv_rows(o.runs, torch, torch_note);

  // ---- composite rows (all but --conv-only) ----
  if (!o.conv_only) {
    const Device dev = gpu ? Device::cuda() : Device::cpu();
    auto sync = [&] {
#if RECON_BENCH_GPU
      if (gpu) cuda::synchronize();
#endif
    };
    NamedValues exported;
    std::vector<CompositeRow> rows;
    std::vector<std::pair<std::string, double>> validation;
    uint64_t seed = 1;
    for (const CompositeCase& c : composite_cases()) {
      const CompositeInputs in = make_inputs(c, seed++);
      OursOps ours(c, in, dev);
      // Validation before any timing.
      const NamedValues ours_values = ours.values();
      if (gpu) {
        OursOps cpu_side(c, in, Device::cpu());
        double e = require_agree(c.name + " (CUDA against the CPU kernels)", ours_values, cpu_side.values(),
                                 kDeviceTolerance);
        e = std::max(e, require_agree(c.name + " sampled (CUDA against the CPU kernels)", ours.sampled_values(),
                                      cpu_side.sampled_values(), kDeviceTolerance));
        validation.push_back({c.name, e});
      }
#if RECON_HAVE_TORCH_TWIN
      if (have_torch) {
        torch_ops->set_inputs(in.a, in.b, std::vector<int64_t>(c.image.begin(), c.image.end()), in.mu, in.logvar,
                              std::vector<int64_t>(c.latent.begin(), c.latent.end()));
        validation.push_back(
            {c.name, require_agree(c.name + " (against LibTorch)", ours_values, torch_ops->values(kLocalK, kLocalBins),
                                   kTolerance)});
      }
#endif
      if (!o.export_dir.empty()) {
        for (auto& [name, v] : NamedValues{{"a", in.a}, {"b", in.b}, {"mu", in.mu}, {"logvar", in.logvar}})
          exported.push_back({c.name + "." + name, v});
        for (auto& [name, v] : ours_values) exported.push_back({c.name + "." + name, v});
      }
      for (int op = 0; op < 4; ++op) {
        CompositeRow r{c.name, kCompositeOps[op], c.image};
        r.bytes = min_bytes(op, c);
        auto f = [&] { ours.step(op); };
#if RECON_BENCH_GPU
        if (gpu) r.ms = time_ms(f, o.runs, flush);
#endif
        if (!gpu) r.ms = bench::median_ms(f, sync, kWarmup, o.runs);
        if (peak > 0) r.peak_share = r.bytes / (r.ms * 1e6) / peak;
#if RECON_HAVE_TORCH_TWIN
        if (have_torch) {
          const int which = kTorchStep[op];
          r.torch_ms = bench::median_ms([&] { torch_ops->step(which, kLocalK, kLocalBins); }, [] {}, kWarmup, o.runs);
        }
#endif
        rows.push_back(r);
      }
    }
    const std::string load_after = bench::load_average();

    std::printf("\ncomposite ops on %s (%s), median of %d runs after %d warm-up%s; ReconAD: %d OpenMP threads; "
                "%s\nload average before %s, after %s\n",
                device_name.c_str(), gpu ? "CUDA kernels" : "CPU kernels", o.runs, kWarmup,
                gpu ? ", CUDA events, L2 flushed before each" : ", steady_clock", omp_get_max_threads(),
                torch_note.c_str(), load_before.c_str(), load_after.c_str());
    if (!validation.empty()) {
      std::printf("validated (max relative error) %s:", gpu ? "against the CPU kernels" : "against LibTorch");
      for (auto& [n, e] : validation) std::printf(" %s %.1e", n.c_str(), e);
      std::printf("\n");
    }
    if (peak > 0) std::printf("peak memory bandwidth %.0f GB/s (2 x memory clock x bus width)\n", peak);
    std::printf("GB/s: minimum bytes (inputs read once, outputs written once) / time; ratio = torch ms / ReconAD ms "
                "(> 1: ReconAD faster)\n");
    std::printf("%-12s %-17s %-16s %10s %9s %7s %10s %9s %7s\n", "case", "op", "shape", "ReconAD ms", "GB/s", "peak",
                "torch ms", "GB/s", "ratio");
    js << ", \"composites\": {\"device\": \"" << (gpu ? "cuda" : "cpu") << "\", \"omp_threads\": "
       << omp_get_max_threads() << ", \"torch\": \"" << (have_torch ? torch_note : std::string("none"))
       << "\", \"peak_gbs\": " << peak << ", \"load_average_before\": \"" << load_before
       << "\", \"load_average_after\": \"" << load_after << "\", \"results\": [";
    for (size_t i = 0; i < rows.size(); ++i) {
      const CompositeRow& r = rows[i];
      const std::string shape = shape_str(r.image);
      const double gbs = r.bytes / (r.ms * 1e6);
      std::printf("%-12s %-17s %-16s %10.4f %9.2f", r.case_name.c_str(), r.op.c_str(), shape.c_str(), r.ms, gbs);
      if (r.peak_share >= 0) std::printf(" %6.1f%%", 100 * r.peak_share);
      else std::printf(" %7s", "-");
      if (r.torch_ms > 0)
        std::printf(" %10.4f %9.2f %6.2fx\n", r.torch_ms, r.bytes / (r.torch_ms * 1e6), r.torch_ms / r.ms);
      else
        std::printf(" %10s %9s %7s\n", "-", "-", "-");
      js << (i ? ", " : "") << "{\"case\": \"" << r.case_name << "\", \"op\": \"" << r.op << "\", \"shape\": ["
         << r.image[0] << ", " << r.image[1] << ", " << r.image[2] << ", " << r.image[3] << "], \"ms\": " << r.ms
         << ", \"bytes\": " << r.bytes << ", \"gbs\": " << gbs;
      if (r.peak_share >= 0) js << ", \"peak_share\": " << r.peak_share;
      if (r.torch_ms > 0)
        js << ", \"torch_ms\": " << r.torch_ms << ", \"torch_gbs\": " << r.bytes / (r.torch_ms * 1e6)
           << ", \"ratio\": " << r.torch_ms / r.ms;
      js << "}";
    }
    js << "]}";

    if (!o.export_dir.empty()) {
      std::filesystem::create_directories(o.export_dir);
      nn::StateDict sd;
      for (auto& [name, v] : exported) sd.insert(name, Tensor::from_vector(v, {(int64_t)v.size()}));
      std::string cases;
      for (const CompositeCase& c : composite_cases())
        cases += (cases.empty() ? "" : ";") + c.name + ":" + std::to_string(c.image[0]) + "," +
                 std::to_string(c.image[1]) + "," + std::to_string(c.image[2]) + "," + std::to_string(c.image[3]) +
                 ":" + std::to_string(c.latent[0]) + "," + std::to_string(c.latent[1]) + "," +
                 std::to_string(c.latent[2]) + "," + std::to_string(c.latent[3]);
      nn::save_safetensors(o.export_dir + "/kernels.safetensors", sd,
                           nn::Metadata{{"cases", cases},
                                        {"local_k", std::to_string(kLocalK)},
                                        {"local_bins", std::to_string(kLocalBins)}});
      std::printf("exported %s/kernels.safetensors (inputs and ReconAD's values, for kernels_torch.py)\n",
                  o.export_dir.c_str());
    }
  }
  js << "}";
  std::printf("%s\n", js.str().c_str());
#if RECON_BENCH_GPU
  if (flush) cudaFree(flush);
#endif
  if (!o.json.empty()) {
    std::ofstream f(o.json);
    f << js.str() << "\n";
    if (!f) {
      std::fprintf(stderr, "bench_kernels: cannot write %s\n", o.json.c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_kernels: %s\n", e.what());
    return 1;
  }
}
