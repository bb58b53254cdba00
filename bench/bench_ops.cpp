// CPU benchmark of the convolution and GEMM kernels at the shapes of the
// default 28x28 ConvAE (batch 64): forward, data gradient and weight gradient
// of every conv / conv_transpose layer and of the bottleneck linear layer.
// Each kernel is first validated on a batch of 2 against naive loops in
// double, then warmed up and timed (median of --runs, steady_clock). Prints
// a table and one JSON object (also written to --json PATH).
//
// conv_transpose2d layers run the conv kernels over their conv2d-view
// geometry, exactly as runtime/ops_conv.cpp does: their forward is the conv
// data-gradient kernel, their data gradient the conv forward kernel.
//
// Usage: bench_ops [--quick] [--runs N] [--json PATH]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/default_model_shapes.hpp"
#include "kernels/common/conv.hpp"
#include "kernels/cpu/conv.hpp"
#include "kernels/cpu/gemm.hpp"
#include "runtime/generator.hpp"
#include "runtime/tensor.hpp"

using namespace recon;

namespace {

constexpr int kBatch = 64;          // the default training batch
constexpr int kValidateBatch = 2;   // batch of the naive-loop validation
constexpr double kTolerance = 1e-4; // max |got - want| / (1 + |want|) accepted by the validation

// One layer of the default model.
struct Layer {
  std::string name;
  std::string op;   // "conv2d", "conv_transpose2d" or "linear"
  ConvGeometry g;   // conv2d view (conv ops)
  int64_t in = 0, out = 0;  // linear features
};

// The conv layers of the default model with the linear layer (the encoder's
// 6272 -> 64 projection) after enc3, in model order; g.n is set per run.
std::vector<Layer> model_layers() {
  std::vector<Layer> layers;
  for (const bench::ConvLayerShape& c : bench::default_model_convs(0)) {
    layers.push_back({c.name, c.op, c.g});
    if (c.name == "enc3") layers.push_back({"fc", "linear", {}, 128 * 7 * 7, 64});
  }
  return layers;
}

std::vector<float> random_vector(int64_t n, uint64_t seed) {
  Generator gen(seed);
  return Tensor::uniform({n}, gen, -1.f, 1.f).to_vector();
}

int64_t in_size(const ConvGeometry& g) { return (int64_t)g.n * g.c_in * g.h * g.w; }
int64_t out_size(const ConvGeometry& g) { return (int64_t)g.n * g.c_out * g.ho * g.wo; }
int64_t weight_size(const ConvGeometry& g) { return (int64_t)g.c_out * g.c_in * g.kh * g.kw; }

// ---- naive references in double (conv2d view) ------------------------------

// Calls f(x index, weight index, y index) for every (output, tap) pair that reads the input.
template <class F>
void for_each_tap(const ConvGeometry& g, F f) {
  for (int n = 0; n < g.n; ++n)
    for (int co = 0; co < g.c_out; ++co)
      for (int oy = 0; oy < g.ho; ++oy)
        for (int ox = 0; ox < g.wo; ++ox)
          for (int ci = 0; ci < g.c_in; ++ci)
            for (int ki = 0; ki < g.kh; ++ki)
              for (int kj = 0; kj < g.kw; ++kj) {
                const int y = oy * g.stride_h - g.pad_h + ki * g.dil_h;
                const int x = ox * g.stride_w - g.pad_w + kj * g.dil_w;
                if (y < 0 || y >= g.h || x < 0 || x >= g.w) continue;
                f((((int64_t)n * g.c_in + ci) * g.h + y) * g.w + x, (((int64_t)co * g.c_in + ci) * g.kh + ki) * g.kw + kj,
                  (((int64_t)n * g.c_out + co) * g.ho + oy) * g.wo + ox);
              }
}

double max_error(const std::vector<float>& got, const std::vector<double>& want) {
  double e = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::fabs(got[i] - want[i]) / (1.0 + std::fabs(want[i]));
    e = std::isnan(d) ? INFINITY : std::max(e, d);
  }
  return e;
}

void require_close(const std::string& what, const std::vector<float>& got, const std::vector<double>& want) {
  const double e = max_error(got, want);
  if (!(e <= kTolerance)) {
    std::fprintf(stderr, "bench_ops: %s disagrees with the naive reference (max error %.3g)\n", what.c_str(), e);
    std::exit(1);
  }
}

// Validates the three conv kernels of layer l (bias 0) at kValidateBatch.
void validate_conv(const Layer& l) {
  ConvGeometry g = l.g;
  g.n = kValidateBatch;
  auto x = random_vector(in_size(g), 1), w = random_vector(weight_size(g), 2), dy = random_vector(out_size(g), 3);
  std::vector<double> y_ref(out_size(g), 0.0), dx_ref(in_size(g), 0.0), dw_ref(weight_size(g), 0.0);
  for_each_tap(g, [&](int64_t xi, int64_t wi, int64_t yi) {
    y_ref[yi] += (double)x[xi] * w[wi];
    dx_ref[xi] += (double)dy[yi] * w[wi];
    dw_ref[wi] += (double)dy[yi] * x[xi];
  });
  std::vector<float> y(out_size(g)), dx(in_size(g)), dw(weight_size(g));
  cpu::conv2d_forward(g, x.data(), w.data(), nullptr, y.data());
  cpu::conv2d_backward_data(g, dy.data(), w.data(), dx.data());
  cpu::conv2d_backward_weight(g, x.data(), dy.data(), dw.data());
  require_close(l.name + " conv forward kernel", y, y_ref);
  require_close(l.name + " conv data-gradient kernel", dx, dx_ref);
  require_close(l.name + " conv weight-gradient kernel", dw, dw_ref);
}

void validate_linear(const Layer& l) {
  const int64_t m = kValidateBatch, in = l.in, out = l.out;
  auto x = random_vector(m * in, 4), w = random_vector(out * in, 5), b = random_vector(out, 6),
       dy = random_vector(m * out, 7);
  std::vector<double> y_ref(m * out), dx_ref(m * in, 0.0), dw_ref(out * in, 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t o = 0; o < out; ++o) {
      double s = b[o];
      for (int64_t p = 0; p < in; ++p) {
        s += (double)x[i * in + p] * w[o * in + p];
        dx_ref[i * in + p] += (double)dy[i * out + o] * w[o * in + p];
        dw_ref[o * in + p] += (double)dy[i * out + o] * x[i * in + p];
      }
      y_ref[i * out + o] = s;
    }
  std::vector<float> y(m * out), dx(m * in), dw(out * in);
  cpu::linear_forward(x.data(), w.data(), b.data(), y.data(), m, in, out);
  cpu::linear_backward_data(dy.data(), w.data(), dx.data(), m, in, out);
  cpu::linear_backward_weight(dy.data(), x.data(), dw.data(), m, in, out);
  require_close(l.name + " linear forward kernel", y, y_ref);
  require_close(l.name + " linear data-gradient kernel", dx, dx_ref);
  require_close(l.name + " linear weight-gradient kernel", dw, dw_ref);
}

// ---- timing --------------------------------------------------------------------

struct Result {
  std::string layer, op, pass, shape;
  double ms = 0, gflops = 0, gbs = 0;
};

// Median wall time of `runs` calls after `warmup` calls, in milliseconds.
double median_ms(const std::function<void()>& f, int warmup, int runs) {
  for (int i = 0; i < warmup; ++i) f();
  std::vector<double> t(runs);
  for (int i = 0; i < runs; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    t[i] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  std::nth_element(t.begin(), t.begin() + runs / 2, t.end());
  return t[runs / 2];
}

std::string conv_shape(const Layer& l) {
  const ConvGeometry& g = l.g;
  std::ostringstream os;
  if (l.op == "conv2d")
    os << g.c_in << "x" << g.h << "x" << g.w << " -> " << g.c_out << "x" << g.ho << "x" << g.wo << " s" << g.stride_h;
  else  // the transposed layer reads the conv view's output and writes its input
    os << g.c_out << "x" << g.ho << "x" << g.wo << " -> " << g.c_in << "x" << g.h << "x" << g.w << " s" << g.stride_h;
  return os.str();
}

std::vector<Result> time_conv(const Layer& l, int warmup, int runs) {
  ConvGeometry g = l.g;
  g.n = kBatch;
  auto x = random_vector(in_size(g), 11), w = random_vector(weight_size(g), 12), dy = random_vector(out_size(g), 13);
  std::vector<float> y(out_size(g)), dx(in_size(g)), dw(weight_size(g));
  // Nominal FLOPs of one pass (multiply-adds on padding taps included, as usual).
  const double flop = 2.0 * g.n * g.c_out * g.ho * g.wo * (double)g.c_in * g.kh * g.kw;
  const double bytes = 4.0 * (in_size(g) + weight_size(g) + out_size(g));  // each tensor read or written once
  auto conv_fwd = [&] { cpu::conv2d_forward(g, x.data(), w.data(), nullptr, y.data()); };
  auto conv_data = [&] { cpu::conv2d_backward_data(g, dy.data(), w.data(), dx.data()); };
  auto conv_weight = [&] { cpu::conv2d_backward_weight(g, x.data(), dy.data(), dw.data()); };
  const bool transposed = l.op == "conv_transpose2d";
  struct Pass {
    const char* name;
    std::function<void()> f;
  };
  const std::vector<Pass> passes = {{"forward", transposed ? std::function<void()>(conv_data) : conv_fwd},
                                    {"backward_data", transposed ? std::function<void()>(conv_fwd) : conv_data},
                                    {"backward_weight", conv_weight}};
  std::vector<Result> out;
  for (const Pass& p : passes) {
    Result r{l.name, l.op, p.name, conv_shape(l)};
    r.ms = median_ms(p.f, warmup, runs);
    r.gflops = flop / (r.ms * 1e6);
    r.gbs = bytes / (r.ms * 1e6);
    out.push_back(r);
  }
  return out;
}

std::vector<Result> time_linear(const Layer& l, int warmup, int runs) {
  const int64_t m = kBatch, in = l.in, out_f = l.out;
  auto x = random_vector(m * in, 21), w = random_vector(out_f * in, 22), b = random_vector(out_f, 23),
       dy = random_vector(m * out_f, 24);
  std::vector<float> y(m * out_f), dx(m * in), dw(out_f * in);
  const double flop = 2.0 * m * in * out_f;
  const double bytes = 4.0 * (m * in + out_f * in + m * out_f);
  const std::string shape = std::to_string(in) + " -> " + std::to_string(out_f);
  std::vector<Result> res;
  auto add = [&](const char* pass, const std::function<void()>& f) {
    Result r{l.name, l.op, pass, shape};
    r.ms = median_ms(f, warmup, runs);
    r.gflops = flop / (r.ms * 1e6);
    r.gbs = bytes / (r.ms * 1e6);
    res.push_back(r);
  };
  add("forward", [&] { cpu::linear_forward(x.data(), w.data(), b.data(), y.data(), m, in, out_f); });
  add("backward_data", [&] { cpu::linear_backward_data(dy.data(), w.data(), dx.data(), m, in, out_f); });
  add("backward_weight", [&] { cpu::linear_backward_weight(dy.data(), x.data(), dw.data(), m, in, out_f); });
  return res;
}

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr, "bench_ops: %s\nusage: bench_ops [--quick] [--runs N] [--json PATH]\n", msg);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  int runs = 0;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") quick = true;
    else if (a == "--runs" && i + 1 < argc) runs = std::atoi(argv[++i]);
    else if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else usage(("unknown or incomplete argument '" + a + "'").c_str());
  }
  // Default: 50 timed runs (about 10 s on 2 cores); --quick: 3 (about 2 s).
  if (runs == 0) runs = quick ? 3 : 50;
  if (runs < 1) usage("--runs must be positive");
  const int warmup = quick ? 1 : 3;

  const std::vector<Layer> layers = model_layers();
  for (const Layer& l : layers) {
    if (l.op == "linear") validate_linear(l);
    else validate_conv(l);
  }
  std::printf("bench_ops: all kernels match the naive double reference (batch %d, max rel. error <= %g)\n",
              kValidateBatch, kTolerance);

  std::vector<Result> results;
  for (const Layer& l : layers) {
    auto r = l.op == "linear" ? time_linear(l, warmup, runs) : time_conv(l, warmup, runs);
    results.insert(results.end(), r.begin(), r.end());
  }

  const std::string blas = cpu::blas_config();
  std::printf("\nCPU kernels, batch %d, %d OpenMP threads, %u hardware threads, median of %d runs\nBLAS: %s\n",
              kBatch, omp_get_max_threads(), std::thread::hardware_concurrency(), runs, blas.c_str());
  std::printf("%-5s %-17s %-24s %-16s %10s %10s %9s\n", "layer", "op", "shape", "pass", "ms", "GFLOP/s", "GB/s");
  double total_ms = 0;
  for (const Result& r : results) {
    std::printf("%-5s %-17s %-24s %-16s %10.3f %10.2f %9.2f\n", r.layer.c_str(), r.op.c_str(), r.shape.c_str(),
                r.pass.c_str(), r.ms, r.gflops, r.gbs);
    total_ms += r.ms;
  }
  std::printf("total (one forward + backward of these layers): %.2f ms\n\n", total_ms);

  std::ostringstream js;
  js << "{\"bench\": \"ops\", \"device\": \"cpu\", \"batch\": " << kBatch << ", \"omp_threads\": "
     << omp_get_max_threads() << ", \"blas\": \"" << blas << "\", \"runs\": " << runs << ", \"total_ms\": " << total_ms << ", \"results\": [";
  for (size_t i = 0; i < results.size(); ++i) {
    const Result& r = results[i];
    js << (i ? ", " : "") << "{\"layer\": \"" << r.layer << "\", \"op\": \"" << r.op << "\", \"pass\": \"" << r.pass
       << "\", \"shape\": \"" << r.shape << "\", \"ms\": " << r.ms << ", \"gflops\": " << r.gflops
       << ", \"gbs\": " << r.gbs << "}";
  }
  js << "]}";
  std::printf("%s\n", js.str().c_str());
  if (!json_path.empty()) {
    std::ofstream f(json_path);
    f << js.str() << "\n";
    if (!f) {
      std::fprintf(stderr, "bench_ops: cannot write %s\n", json_path.c_str());
      return 1;
    }
  }
  return 0;
}
