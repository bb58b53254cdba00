// CUDA benchmark of the handwritten convolution kernels (kernels/cuda/conv.hpp)
// at the conv shapes of the default 28x28 ConvAE, batch 64 (the layers of
// bench/bench_ops.cpp): for every layer, each conv pass (forward, data
// gradient, weight gradient, in conv2d-view terms: a conv_transpose2d layer's
// forward is the data-gradient kernel, as in runtime/ops_conv.cpp) through
// both kernel families (implicit GEMM and direct; '*' marks the one the
// launcher picks) and the bias gradient. Every result is first checked
// against the CPU kernels (kernels/cpu/conv.hpp) by normalised MSE, then
// timed with CUDA events: warm-up, an L2 flush before each run, the median of
// --runs. Built with -DRECON_CUDNN=ON, cuDNN runs the same passes in the same
// process (FP32, FMA math: no TF32; fastest algorithm found by
// cudnnFind*), is validated the same way, and each row gets ours / cuDNN time.
// Prints a table and JSON (--json PATH). Needs a real GPU: in a CPU-only or
// SIM build, or without a device, it says so and exits 0.
//
// Usage: bench_kernels [--runs N] [--json PATH]
#include <cstdio>
#include <cstdlib>
#include <string>

#if defined(RECON_WITH_CUDA) && !defined(RECON_SIMT)
#include <cuda_runtime.h>
#if defined(RECON_HAVE_CUDNN)
#include <cudnn.h>
#endif

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>
#include <vector>

#include "bench/default_model_shapes.hpp"
#include "kernels/common/conv.hpp"
#include "kernels/cpu/conv.hpp"
#include "kernels/cuda/conv.hpp"
#include "runtime/cuda_context.hpp"
#include "runtime/device.hpp"
#include "runtime/generator.hpp"
#include "runtime/tensor.hpp"

using namespace recon;

namespace {

constexpr int kBatch = 64;                 // the default training batch
constexpr int kWarmup = 3;                 // untimed runs before timing
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

using Layer = bench::ConvLayerShape;
std::vector<Layer> model_layers() { return bench::default_model_convs(kBatch); }

int64_t in_size(const ConvGeometry& g) { return (int64_t)g.n * g.c_in * g.h * g.w; }
int64_t out_size(const ConvGeometry& g) { return (int64_t)g.n * g.c_out * g.ho * g.wo; }
int64_t weight_size(const ConvGeometry& g) { return (int64_t)g.c_out * g.c_in * g.kh * g.kw; }
// Multiply-adds of one pass (every pass has the same count), as 2 flops each; padding taps included.
double conv_flops(const ConvGeometry& g) { return 2.0 * out_size(g) * g.c_in * g.kh * g.kw; }

std::vector<float> random_vector(int64_t n, uint64_t seed) {
  Generator gen(seed);
  return Tensor::uniform({n}, gen, -1.f, 1.f).to_vector();
}

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

struct Row {
  std::string layer, op, conv_pass, pass, kernel;  // pass: "<conv_pass> -> <the op pass it serves>"
  bool chosen = false;
  double ms = 0, gflops = 0, gbs = 0, cudnn_ms = -1;
};

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr, "bench_kernels: %s\nusage: bench_kernels [--runs N] [--json PATH]\n", msg);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 50;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) runs = std::atoi(argv[++i]);
    else if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else usage(("unknown argument " + a).c_str());
  }
  if (runs < 1) usage("--runs must be positive");
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("bench_kernels: needs a CUDA GPU; none found, nothing measured\n");
    return 0;
  }
  cudaDeviceProp prop;
  BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
  cudaStream_t stream = static_cast<cudaStream_t>(cuda::stream_handle());
  void* flush = nullptr;
  BENCH_CUDA(cudaMalloc(&flush, kFlushBytes));
#if defined(RECON_HAVE_CUDNN)
  cudnnHandle_t dnn;
  BENCH_CUDNN(cudnnCreate(&dnn));
  BENCH_CUDNN(cudnnSetStream(dnn, stream));
  const bool with_cudnn = true;
#else
  const bool with_cudnn = false;
#endif

  std::vector<Row> rows;
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
    const bool transposed = l.op == "conv_transpose2d";
    // The op-level pass each conv2d-view kernel serves.
    auto serves = [&](const char* conv_pass) -> std::string {
      const std::string p = conv_pass;
      if (!transposed) return p;
      return p == "forward" ? "backward_data" : p == "backward_data" ? "forward" : p;
    };

    for (cuda::ConvPath path : {cuda::ConvPath::kTiled, cuda::ConvPath::kDirect}) {
      const std::string kname = path == cuda::ConvPath::kTiled ? "implicit_gemm" : "direct";
      DeviceBuffer ws(cuda::conv_weight_grad_workspace(g, path));
      struct Pass {
        const char* name;
        std::function<void()> run;
        const DeviceBuffer* out;
        const std::vector<float>* ref;
      };
      const std::vector<Pass> passes = {
          {"forward", [&] { cuda::conv2d_forward(g, xd.p, wd.p, bd.p, yd.p, path); }, &yd, &y_ref},
          {"backward_data", [&] { cuda::conv2d_backward_data(g, dyd.p, wd.p, nullptr, dxd.p, path); }, &dxd,
           &dx_ref},
          {"backward_weight", [&] { cuda::conv2d_backward_weight(g, xd.p, dyd.p, ws.p, dwd.p, path); }, &dwd,
           &dw_ref},
      };
      for (const Pass& p : passes) {
        p.run();
        require_valid(l.name + " " + p.name + " (" + kname + ")", p.out->host(), *p.ref);
        Row r{l.name, l.op, p.name, std::string(p.name) + " -> " + serves(p.name), kname, path == chosen};
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
      Row r{l.name, l.op, "backward_bias", "backward_bias", "channel_tree", true};
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
        for (Row& r : rows)
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
  for (const Row& r : rows) {
    std::printf("%-5s %-17s %-34s %-13s%s %9.4f %10.1f %9.1f", r.layer.c_str(), r.op.c_str(), r.pass.c_str(),
                r.kernel.c_str(), r.chosen ? "*" : " ", r.ms, r.gflops, r.gbs);
    if (r.cudnn_ms > 0) std::printf(" %10.4f %8.2f\n", r.cudnn_ms, r.ms / r.cudnn_ms);
    else std::printf(" %10s %8s\n", "-", "-");
  }
  std::ostringstream js;
  js << "{\"bench\": \"bench_kernels\", \"device\": \"" << prop.name << "\", \"batch\": " << kBatch
     << ", \"runs\": " << runs << ", \"cudnn\": " << (with_cudnn ? "true" : "false") << ", \"results\": [";
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    js << (i ? ", " : "") << "{\"layer\": \"" << r.layer << "\", \"op\": \"" << r.op << "\", \"pass\": \"" << r.pass
       << "\", \"kernel\": \"" << r.kernel << "\", \"chosen\": " << (r.chosen ? "true" : "false")
       << ", \"ms\": " << r.ms << ", \"gflops\": " << r.gflops << ", \"gbs\": " << r.gbs;
    if (r.cudnn_ms > 0) js << ", \"cudnn_ms\": " << r.cudnn_ms << ", \"ratio_to_cudnn\": " << r.ms / r.cudnn_ms;
    js << "}";
  }
  js << "]}";
  std::printf("%s\n", js.str().c_str());
  if (!json_path.empty()) {
    std::ofstream f(json_path);
    f << js.str() << "\n";
    if (!f) {
      std::fprintf(stderr, "bench_kernels: cannot write %s\n", json_path.c_str());
      return 1;
    }
  }
#if defined(RECON_HAVE_CUDNN)
  cudnnDestroy(dnn);
#endif
  cudaFree(flush);
  return 0;
}

#else  // a CPU-only or SIM build

int main() {
  std::printf("bench_kernels: needs a CUDA GPU and a real CUDA build (RECON_CUDA=ON); nothing measured\n");
  return 0;
}

#endif
