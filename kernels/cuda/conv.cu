// CUDA convolution kernels (launchers declared in kernels/cuda/conv.hpp).
//
// Implicit GEMM: one kernel template, three GEMM views of the conv2d-view
// geometry g, each element of A and B gathered from the NCHW tensors as the
// tile is loaded (no im2col buffer):
//   forward          C (n ho wo, c_out)        = A x-taps (.., c_in kh kw)  B w^T
//   data gradient    C (n hp wp, c_in)         = A dy-taps (.., c_out t)    B w
//                    one problem per stride phase (py, px) of the input: the
//                    pixels y = py (mod s) are reached only by the taps ki with
//                    (py + p - ki d) divisible by s, so each phase is a dense
//                    GEMM over those t taps (no multiply by structural zeros);
//   weight gradient  C (c_in kh kw, c_out)     = A x-taps^T (.., n ho wo)   B dy
//                    (dw^T, so that stores walk along dw's rows).
// Split-K (all three passes, conv_split_count): when the output tiles alone
// would leave most SMs idle, blockIdx.z also splits the reduction into slices
// whose partial C's go to a workspace; conv_split_reduce_kernel sums them in
// a fixed order and adds the bias once.
// Direct kernels serve layers with 1-3 input or output channels, and a
// per-channel tree the bias gradient. No float atomics anywhere: every sum is
// in a fixed order, so results are bitwise reproducible run to run.
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/device_util.cuh"

#include <algorithm>
#include <climits>
#include <string>

#include "kernels/cuda/conv.hpp"
#include "runtime/cuda_context.hpp"
#include "runtime/error.hpp"

#if defined(__CUDACC__)
#define RECON_CONV_UNROLL _Pragma("unroll")
#else
#define RECON_CONV_UNROLL
#endif

namespace recon::cuda {

using detail::runtime_stream;

namespace {

// ---- implicit GEMM tiling --------------------------------------------------------
constexpr int kTileM = 64, kTileN = 64, kTileK = 16;  // block tile of C and the reduction step
constexpr int kThreadsX = 16, kThreadsY = 16;         // 256 threads in a 16 x 16 grid
constexpr int kThreads = kThreadsX * kThreadsY;
constexpr int kMicroM = kTileM / kThreadsX, kMicroN = kTileN / kThreadsY;  // 4 x 4 outputs per thread
constexpr int kLoadsA = kTileM * kTileK / kThreads, kLoadsB = kTileN * kTileK / kThreads;  // 4 + 4 loads
// Shared rows padded by 2 floats: a loader walking along k (16 threads on one
// m, the next 16 on m + 1) stores to banks 2 kk + m: conflict-free, as is a
// loader walking along m.
constexpr int kSmemPad = 2;
static_assert(kThreads % kTileM == 0 && kThreads % kTileN == 0 && kThreads % kTileK == 0,
              "every loader slot keeps its m (or n, or k) across the k loop");

// Split-K, every pass (split_count): aim for ~2 blocks per SM of an H100/H200
// (132 SMs), at most ceil(K / kSplitMinK) slices (kSplitMinK = 16 reduction
// steps, so slices average over kSplitMinK / 2 = 128 k; the last slice holds
// the remainder), at most kSplitMax slices. tiles: the output tiles of the
// GEMM view (data gradient: times the stride phases; its K is the most taps
// of any phase, so a phase with fewer may leave a slice empty: zeros).
//   splits = min(ceil(264 / tiles), ceil(K / 256), 64), then lowered so that
//   no slice is empty once its length is rounded up to a multiple of kTileK.
// Deep layers of the small models, batch 32, forward (M = n ho wo, N = c_out):
//   7x7,   64 -> 64,  3x3: M 1568, N 64,  K 576:  25 tiles x 3 slices (192 k)  =  75 blocks
//   7x7,  128 -> 128, 3x3: M 1568, N 128, K 1152: 50 tiles x 5 slices (240 k)  = 250 blocks
//   14x14, 64 -> 128, 3x3: M 6272, N 128, K 576:  196 tiles x 2 slices (288 k) = 392 blocks
//   14x14,128 -> 128, 3x3: M 6272, N 128, K 1152: 196 tiles x 2 slices (576 k) = 392 blocks
// (unsplit, those launch 25, 50, 196 and 196 blocks). Weight gradient
// (M = c_in kh kw, N = c_out, K = n ho wo): 7x7, 64 -> 64: 9 tiles x 7 slices.
constexpr int kSplitTargetBlocks = 264;
constexpr int kSplitMinK = 16 * kTileK;
constexpr int kSplitMax = 64;

// Direct kernels and reductions.
constexpr int kDirectThreads = 256;  // forward / data gradient: one thread per output element
constexpr int kReduceThreads = 128;  // weight / bias gradient: one block per output, a fixed tree

enum class Pass { kForward, kBackwardData, kBackwardWeight };

struct IgemmParams {
  ConvGeometry g;
  const float* a;     // forward: x; data gradient: dy; weight gradient: x
  const float* b;     // forward: w; data gradient: w; weight gradient: dy
  const float* bias;  // forward: (c_out), data gradient: (c_in), or null
  float* out;         // y, dx, dw, or (split) the workspace of `splits` partial outputs, slice-major
  int k_per_split;    // reduction length of one slice (a multiple of kTileK; >= K when unsplit)
  int64_t slice_size; // elements of one partial output (of y, dx or dw)
};

// This block's GEMM: sizes, reduction range and (data gradient) its phase.
struct Problem {
  int m = 0, n = 0, k_begin = 0, k_end = 0;
  int slice = 0;                           // the reduction slice (split-K)
  int py = 0, px = 0, hp = 0, wp = 0;      // phase and its pixel counts
  int ki0 = 0, kis = 1, nki = 0;           // taps in y: ki0, ki0 + kis, ... (nki of them)
  int kj0 = 0, kjs = 1, nkj = 0;           // taps in x
};

template <Pass P>
__device__ Problem make_problem(const IgemmParams& p) {
  const ConvGeometry& g = p.g;
  Problem q;
  if constexpr (P == Pass::kForward) {
    q.m = g.n * g.ho * g.wo;
    q.n = g.c_out;
    q.k_end = g.c_in * g.kh * g.kw;
    q.slice = (int)blockIdx.z;
  } else if constexpr (P == Pass::kBackwardData) {  // blockIdx.z = slice (stride_h stride_w) + phase
    const int phases = g.stride_h * g.stride_w, phase = (int)blockIdx.z % phases;
    q.slice = (int)blockIdx.z / phases;
    q.py = phase / g.stride_w;
    q.px = phase % g.stride_w;
    q.hp = conv_phase_size(g.h, q.py, g.stride_h);
    q.wp = conv_phase_size(g.w, q.px, g.stride_w);
    conv_phase_taps(q.py, g.kh, g.stride_h, g.pad_h, g.dil_h, q.ki0, q.kis, q.nki);
    conv_phase_taps(q.px, g.kw, g.stride_w, g.pad_w, g.dil_w, q.kj0, q.kjs, q.nkj);
    q.m = g.n * q.hp * q.wp;
    q.n = g.c_in;
    q.k_end = g.c_out * q.nki * q.nkj;
  } else {
    q.m = g.c_in * g.kh * g.kw;
    q.n = g.c_out;
    q.k_end = g.n * g.ho * g.wo;
    q.slice = (int)blockIdx.z;
  }
  // This slice's part of the reduction; it may be empty (a phase with fewer
  // taps), and its partial output is then stored as zeros.
  const int64_t begin = (int64_t)q.slice * p.k_per_split, end = begin + p.k_per_split;
  q.k_begin = begin < q.k_end ? (int)begin : q.k_end;
  q.k_end = end < q.k_end ? (int)end : q.k_end;
  return q;
}

// The input pixel (b, y, x) of GEMM row m of a data-gradient phase.
__device__ void phase_pixel(const ConvGeometry& g, const Problem& q, int m, int& b, int& y, int& x) {
  const int per_image = q.hp * q.wp;
  b = m / per_image;
  const int r = m - b * per_image;
  const int jy = r / q.wp;
  y = q.py + jy * g.stride_h;
  x = q.px + (r - jy * q.wp) * g.stride_w;
}

// x (b, c, y, x) read by tap r = (c kh + ki) kw + kj of output pixel q = oy wo + ox of image b,
// 0 in the padding (the im2col element, kernels/common/conv.hpp).
__device__ float x_tap(const ConvGeometry& g, const float* __restrict__ x, int b, int r, int q) {
  const int kj = r % g.kw, t = r / g.kw;
  const int ki = t % g.kh, c = t / g.kh;
  const int oy = q / g.wo, ox = q - oy * g.wo;
  const int iy = conv_in_coord(oy, ki, g.stride_h, g.pad_h, g.dil_h);
  const int ix = conv_in_coord(ox, kj, g.stride_w, g.pad_w, g.dil_w);
  if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) return 0.f;
  return __ldg(x + (((int64_t)b * g.c_in + c) * g.h + iy) * g.w + ix);
}

// A (m, k) of this block's GEMM; 0 outside it.
template <Pass P>
__device__ float load_a(const IgemmParams& p, const Problem& q, int m, int k) {
  const ConvGeometry& g = p.g;
  if (m >= q.m || k >= q.k_end) return 0.f;
  if constexpr (P == Pass::kForward) {  // m = (b, oy, ox), k = (c, ki, kj): x
    const int hw = g.ho * g.wo, b = m / hw;
    return x_tap(g, p.a, b, k, m - b * hw);
  } else if constexpr (P == Pass::kBackwardData) {  // m = phase pixel (b, y, x), k = (co, ti, tj): dy
    int b, y, x;
    phase_pixel(g, q, m, b, y, x);
    const int tj = k % q.nkj, t = k / q.nkj;
    const int ti = t % q.nki, co = t / q.nki;
    int oy, ox;
    if (!conv_out_coord(y, q.ki0 + ti * q.kis, g.stride_h, g.pad_h, g.dil_h, g.ho, oy) ||
        !conv_out_coord(x, q.kj0 + tj * q.kjs, g.stride_w, g.pad_w, g.dil_w, g.wo, ox))
      return 0.f;
    return __ldg(p.a + (((int64_t)b * g.c_out + co) * g.ho + oy) * g.wo + ox);
  } else {  // m = tap r, k = (b, oy, ox): x
    const int hw = g.ho * g.wo, b = k / hw;
    return x_tap(g, p.a, b, m, k - b * hw);
  }
}

// B (k, n) of this block's GEMM; 0 outside it.
template <Pass P>
__device__ float load_b(const IgemmParams& p, const Problem& q, int k, int n) {
  const ConvGeometry& g = p.g;
  if (n >= q.n || k >= q.k_end) return 0.f;
  if constexpr (P == Pass::kForward) {  // w (c_out, c_in kh kw) row n
    return __ldg(p.b + (int64_t)n * (g.c_in * g.kh * g.kw) + k);
  } else if constexpr (P == Pass::kBackwardData) {  // w (co, n, ki, kj) of phase tap k
    const int tj = k % q.nkj, t = k / q.nkj;
    const int ti = t % q.nki, co = t / q.nki;
    const int ki = q.ki0 + ti * q.kis, kj = q.kj0 + tj * q.kjs;
    return __ldg(p.b + (((int64_t)co * g.c_in + n) * g.kh + ki) * g.kw + kj);
  } else {  // dy (b, n, oy, ox), k = (b, oy, ox)
    const int hw = g.ho * g.wo, b = k / hw;
    return __ldg(p.b + ((int64_t)b * g.c_out + n) * hw + (k - b * hw));
  }
}

// C (m, n) = acc to its tensor (bias added where the pass has one).
template <Pass P>
__device__ void store_c(const IgemmParams& p, const Problem& q, int m, int n, float acc) {
  const ConvGeometry& g = p.g;
  if (m >= q.m || n >= q.n) return;
  float* out = p.out + q.slice * p.slice_size;  // split: the slice's partial output, bias null
  if constexpr (P == Pass::kForward) {
    const int hw = g.ho * g.wo, b = m / hw;
    out[((int64_t)b * g.c_out + n) * hw + (m - b * hw)] = p.bias ? acc + p.bias[n] : acc;
  } else if constexpr (P == Pass::kBackwardData) {
    int b, y, x;
    phase_pixel(g, q, m, b, y, x);
    out[(((int64_t)b * g.c_in + n) * g.h + y) * g.w + x] = p.bias ? acc + p.bias[n] : acc;
  } else {  // dw (c_out, c_in kh kw)
    out[(int64_t)n * q.m + m] = acc;
  }
}

// Implicit-GEMM convolution pass P.
// One block: a kTileM x kTileN tile of C (blockIdx.x along m, blockIdx.y along
// n) of the problem blockIdx.z (data gradient: the stride phase; weight
// gradient: the reduction slice). Per kTileK step, every thread gathers 4
// elements of A and 4 of B into registers (the next step's loads are issued
// before the current tile is multiplied), then stores them to shared memory.
// One thread (tx, ty): C rows m0 + tx + 16 i and columns n0 + ty + 16 j,
// i, j < 4, accumulated in registers over the block's reduction range.
template <Pass P>
__global__ void __launch_bounds__(kThreads) conv_igemm_kernel(IgemmParams p) {
  __shared__ float a_tile[kTileK][kTileM + kSmemPad];  // A (k, m) of the step
  __shared__ float b_tile[kTileK][kTileN + kSmemPad];  // B (k, n) of the step
  const Problem q = make_problem<P>(p);
  const int tx = (int)threadIdx.x, ty = (int)threadIdx.y, tid = ty * kThreadsX + tx;
  const int m0 = (int)blockIdx.x * kTileM, n0 = (int)blockIdx.y * kTileN;

  // Loader slots: the forward and data gradient walk A along m (consecutive
  // pixels), the weight gradient along k (consecutive pixels there); B walks
  // along k where its rows are contiguous (forward w, weight-gradient dy).
  constexpr bool kAAlongM = P != Pass::kBackwardWeight;
  constexpr bool kBAlongN = P == Pass::kBackwardData;
  int a_m[kLoadsA], a_k[kLoadsA], b_k[kLoadsB], b_n[kLoadsB];
  RECON_CONV_UNROLL
  for (int i = 0; i < kLoadsA; ++i) {
    const int e = tid + i * kThreads;
    a_m[i] = kAAlongM ? e % kTileM : e / kTileK;
    a_k[i] = kAAlongM ? e / kTileM : e % kTileK;
  }
  RECON_CONV_UNROLL
  for (int i = 0; i < kLoadsB; ++i) {
    const int e = tid + i * kThreads;
    b_n[i] = kBAlongN ? e % kTileN : e / kTileK;
    b_k[i] = kBAlongN ? e / kTileN : e % kTileK;
  }

  float acc[kMicroM][kMicroN] = {};
  float ra[kLoadsA], rb[kLoadsB];
  RECON_CONV_UNROLL
  for (int i = 0; i < kLoadsA; ++i) ra[i] = load_a<P>(p, q, m0 + a_m[i], q.k_begin + a_k[i]);
  RECON_CONV_UNROLL
  for (int i = 0; i < kLoadsB; ++i) rb[i] = load_b<P>(p, q, q.k_begin + b_k[i], n0 + b_n[i]);

  for (int k0 = q.k_begin; k0 < q.k_end; k0 += kTileK) {
    RECON_CONV_UNROLL
    for (int i = 0; i < kLoadsA; ++i) a_tile[a_k[i]][a_m[i]] = ra[i];
    RECON_CONV_UNROLL
    for (int i = 0; i < kLoadsB; ++i) b_tile[b_k[i]][b_n[i]] = rb[i];
    __syncthreads();
    const int k1 = k0 + kTileK;
    if (k1 < q.k_end) {  // the next step's gathers, in flight during the products
      RECON_CONV_UNROLL
      for (int i = 0; i < kLoadsA; ++i) ra[i] = load_a<P>(p, q, m0 + a_m[i], k1 + a_k[i]);
      RECON_CONV_UNROLL
      for (int i = 0; i < kLoadsB; ++i) rb[i] = load_b<P>(p, q, k1 + b_k[i], n0 + b_n[i]);
    }
    RECON_CONV_UNROLL
    for (int kk = 0; kk < kTileK; ++kk) {
      float av[kMicroM], bv[kMicroN];
      RECON_CONV_UNROLL
      for (int i = 0; i < kMicroM; ++i) av[i] = a_tile[kk][tx + i * kThreadsX];
      RECON_CONV_UNROLL
      for (int j = 0; j < kMicroN; ++j) bv[j] = b_tile[kk][ty + j * kThreadsY];
      RECON_CONV_UNROLL
      for (int i = 0; i < kMicroM; ++i)
        RECON_CONV_UNROLL
        for (int j = 0; j < kMicroN; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }
  RECON_CONV_UNROLL
  for (int i = 0; i < kMicroM; ++i)
    RECON_CONV_UNROLL
    for (int j = 0; j < kMicroN; ++j) store_c<P>(p, q, m0 + tx + i * kThreadsX, n0 + ty + j * kThreadsY, acc[i][j]);
}

// out[i] = sum over s < splits of partial[s count + i], s ascending, plus
// bias[(i / inner) % channels] when bias is not null (out viewed as
// (.., channels, inner): the one place a split pass adds its bias).
// One thread: one element of y, dx or dw.
__global__ void conv_split_reduce_kernel(const float* __restrict__ partial, int splits, int64_t count,
                                         const float* __restrict__ bias, int64_t channels, int64_t inner,
                                         float* __restrict__ out) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= count) return;
  float s = 0.f;
  for (int k = 0; k < splits; ++k) s += partial[(int64_t)k * count + i];
  out[i] = bias ? s + bias[i / inner % channels] : s;
}

// ---- direct kernels ------------------------------------------------------------------

// y (n, c_out, ho, wo) = conv(x, w) + bias, for few channels.
// One thread: one element of y, its c_in kh kw taps summed in order (ox is the
// fastest index, so a warp reads neighbouring pixels and one weight row).
__global__ void conv_direct_forward_kernel(ConvGeometry g, const float* __restrict__ x, const float* __restrict__ w,
                                           const float* __restrict__ bias, float* __restrict__ y) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t total = (int64_t)g.n * g.c_out * g.ho * g.wo;
  if (i >= total) return;
  const int ox = (int)(i % g.wo), oy = (int)(i / g.wo % g.ho);
  const int co = (int)(i / ((int64_t)g.wo * g.ho) % g.c_out), b = (int)(i / ((int64_t)g.wo * g.ho * g.c_out));
  float s = 0.f;
  for (int c = 0; c < g.c_in; ++c) {
    const float* xc = x + ((int64_t)b * g.c_in + c) * g.h * g.w;
    const float* wc = w + ((int64_t)co * g.c_in + c) * g.kh * g.kw;
    for (int ki = 0; ki < g.kh; ++ki) {
      const int iy = conv_in_coord(oy, ki, g.stride_h, g.pad_h, g.dil_h);
      if (iy < 0 || iy >= g.h) continue;
      for (int kj = 0; kj < g.kw; ++kj) {
        const int ix = conv_in_coord(ox, kj, g.stride_w, g.pad_w, g.dil_w);
        if (ix < 0 || ix >= g.w) continue;
        s = fmaf(__ldg(xc + (int64_t)iy * g.w + ix), __ldg(wc + ki * g.kw + kj), s);
      }
    }
  }
  y[i] = bias ? s + bias[co] : s;
}

// dx (n, c_in, h, w) from dy and w (+ bias (c_in), conv_transpose2d's), for few channels.
// One thread: one element of dx, gathering the (co, ki, kj) whose tap reads it.
__global__ void conv_direct_backward_data_kernel(ConvGeometry g, const float* __restrict__ dy,
                                                 const float* __restrict__ w, const float* __restrict__ bias,
                                                 float* __restrict__ dx) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t total = (int64_t)g.n * g.c_in * g.h * g.w;
  if (i >= total) return;
  const int x = (int)(i % g.w), y = (int)(i / g.w % g.h);
  const int c = (int)(i / ((int64_t)g.w * g.h) % g.c_in), b = (int)(i / ((int64_t)g.w * g.h * g.c_in));
  float s = 0.f;
  for (int co = 0; co < g.c_out; ++co) {
    const float* dyc = dy + ((int64_t)b * g.c_out + co) * g.ho * g.wo;
    const float* wc = w + ((int64_t)co * g.c_in + c) * g.kh * g.kw;
    for (int ki = 0; ki < g.kh; ++ki) {
      int oy;
      if (!conv_out_coord(y, ki, g.stride_h, g.pad_h, g.dil_h, g.ho, oy)) continue;
      for (int kj = 0; kj < g.kw; ++kj) {
        int ox;
        if (!conv_out_coord(x, kj, g.stride_w, g.pad_w, g.dil_w, g.wo, ox)) continue;
        s = fmaf(__ldg(dyc + (int64_t)oy * g.wo + ox), __ldg(wc + ki * g.kw + kj), s);
      }
    }
  }
  dx[i] = bias ? s + bias[c] : s;
}

// Sums v over the block (blockDim.x == kReduceThreads) with a fixed tree;
// the result is valid in thread 0.
__device__ float block_tree_sum(float v, float* partial) {
  const int t = (int)threadIdx.x;
  partial[t] = v;
  __syncthreads();
  for (int half = kReduceThreads / 2; half > 0; half /= 2) {
    if (t < half) partial[t] += partial[t + half];
    __syncthreads();
  }
  return partial[0];
}

// dw (c_out, c_in, kh, kw) from x and dy, for few channels.
// One block: one element (co, c, ki, kj) of dw; thread t sums the output
// pixels (b, oy, ox) = t, t + 128, ... of the n ho wo, then a fixed tree adds
// the 128 partial sums.
__global__ void conv_direct_backward_weight_kernel(ConvGeometry g, const float* __restrict__ x,
                                                   const float* __restrict__ dy, float* __restrict__ dw) {
  __shared__ float partial[kReduceThreads];
  const int r = (int)blockIdx.x % (g.c_in * g.kh * g.kw), co = (int)blockIdx.x / (g.c_in * g.kh * g.kw);
  const int hw = g.ho * g.wo, k_total = g.n * hw;
  float s = 0.f;
  for (int k = (int)threadIdx.x; k < k_total; k += kReduceThreads) {
    const int b = k / hw, q = k - b * hw;
    s = fmaf(__ldg(dy + ((int64_t)b * g.c_out + co) * hw + q), x_tap(g, x, b, r, q), s);
  }
  s = block_tree_sum(s, partial);
  if (threadIdx.x == 0) dw[blockIdx.x] = s;
}

// dbias (c) = sums of dy (n, c, hw) over n and hw.
// One block: one channel; thread t sums elements t, t + 128, ... of the
// channel's n hw, then a fixed tree adds the 128 partial sums.
__global__ void conv_bias_grad_kernel(const float* __restrict__ dy, float* __restrict__ dbias, int64_t n, int64_t c,
                                      int64_t hw) {
  __shared__ float partial[kReduceThreads];
  const int64_t ch = blockIdx.x;
  float s = 0.f;
  for (int64_t k = threadIdx.x; k < n * hw; k += kReduceThreads) {
    const int64_t b = k / hw;
    s += dy[(b * c + ch) * hw + (k - b * hw)];
  }
  s = block_tree_sum(s, partial);
  if (threadIdx.x == 0) dbias[ch] = s;
}

// ---- launch helpers ------------------------------------------------------------------


unsigned blocks_for(int64_t count, int threads) { return (unsigned)((count + threads - 1) / threads); }

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The GEMM sizes (and reduction) of the tiled passes must fit the kernels' int indices.
void check_int_range(const char* what, int64_t v) {
  RECON_CHECK(v <= INT_MAX, what << " of " << v << " elements exceeds the conv kernels' 2^31 - 1 index range");
}

// The k length of one slice for `splits` slices, a multiple of kTileK.
int split_length(int64_t k_total, int splits) {
  return (int)std::min<int64_t>(ceil_div(ceil_div(k_total, splits), kTileK) * kTileK, INT_MAX);
}

// The split-K rule of every tiled pass (numbers in the comment on kSplitTargetBlocks):
// `tiles` output tiles (blocks before the split), reduction length k_total.
int split_count(int64_t tiles, int64_t k_total) {
  if (k_total == 0) return 1;  // an empty reduction: one slice of zeros
  int64_t splits = std::min({ceil_div(kSplitTargetBlocks, std::max<int64_t>(tiles, 1)), ceil_div(k_total, kSplitMinK),
                             (int64_t)kSplitMax});
  splits = std::max<int64_t>(splits, 1);
  return (int)ceil_div(k_total, split_length(k_total, (int)splits));  // rounding the length may empty a slice
}

// The GEMM view of pass `pass` of g: rows m, columns n, reduction k, problems
// (data gradient: the stride phases; m and k of the largest phase).
struct GemmShape {
  int64_t m, n, k, problems;
};

GemmShape gemm_shape(const ConvGeometry& g, ConvPass pass) {
  switch (pass) {
    case ConvPass::kForward: return {(int64_t)g.n * g.ho * g.wo, g.c_out, (int64_t)g.c_in * g.kh * g.kw, 1};
    case ConvPass::kBackwardData: {
      // The largest phase (phase 0) sets m; the most taps of any phase set k.
      int64_t taps = 0;
      for (int py = 0; py < g.stride_h; ++py)
        for (int px = 0; px < g.stride_w; ++px) {
          int f, st, nki, nkj;
          conv_phase_taps(py, g.kh, g.stride_h, g.pad_h, g.dil_h, f, st, nki);
          conv_phase_taps(px, g.kw, g.stride_w, g.pad_w, g.dil_w, f, st, nkj);
          taps = std::max<int64_t>(taps, (int64_t)nki * nkj);
        }
      return {(int64_t)g.n * ceil_div(g.h, g.stride_h) * ceil_div(g.w, g.stride_w), g.c_in, g.c_out * taps,
              (int64_t)g.stride_h * g.stride_w};
    }
    case ConvPass::kBackwardWeight: break;
  }
  return {(int64_t)g.c_in * g.kh * g.kw, g.c_out, (int64_t)g.n * g.ho * g.wo, 1};
}

// Elements of the pass's output (one partial output of a split).
int64_t output_size(const ConvGeometry& g, ConvPass pass) {
  switch (pass) {
    case ConvPass::kForward: return (int64_t)g.n * g.c_out * g.ho * g.wo;
    case ConvPass::kBackwardData: return (int64_t)g.n * g.c_in * g.h * g.w;
    case ConvPass::kBackwardWeight: break;
  }
  return (int64_t)g.c_out * g.c_in * g.kh * g.kw;
}

// Launches the tiled pass P (blockIdx.z = slice * problems + problem) and, when
// split, the reduce that sums the partials in `workspace` into out and adds bias
// (channels `channels`, each `inner` elements) there instead of in the GEMM.
template <Pass P>
void launch_tiled(const char* name, const ConvGeometry& g, ConvPass pass, const float* a, const float* b,
                  const float* bias, float* workspace, float* out, int64_t channels, int64_t inner) {
  const GemmShape s = gemm_shape(g, pass);
  check_int_range((std::string(name) + ": GEMM rows").c_str(), s.m);
  check_int_range((std::string(name) + ": reduction").c_str(), s.k);
  const int splits = conv_splits(g, pass, ConvPath::kTiled);
  const int64_t count = output_size(g, pass);
  RECON_CHECK(splits == 1 || workspace, name << ": " << splits << " split slices need a workspace of "
                                             << conv_workspace(g, pass, ConvPath::kTiled) << " floats");
  const dim3 grid((unsigned)ceil_div(s.m, kTileM), (unsigned)ceil_div(s.n, kTileN), (unsigned)(splits * s.problems));
  RECON_LAUNCH(conv_igemm_kernel<P>, grid, dim3(kThreadsX, kThreadsY), 0, runtime_stream())
  (IgemmParams{g, a, b, splits > 1 ? nullptr : bias, splits > 1 ? workspace : out, split_length(s.k, splits), count});
  check_launch("conv_igemm_kernel");
  if (splits > 1) {
    RECON_LAUNCH(conv_split_reduce_kernel, blocks_for(count, kDirectThreads), kDirectThreads, 0, runtime_stream())
    (workspace, splits, count, bias, channels, inner, out);
    check_launch("conv_split_reduce_kernel");
  }
}

}  // namespace

ConvPath conv_path(const ConvGeometry& g, ConvPath requested) {
  if (requested != ConvPath::kAuto) return requested;
  return std::min(g.c_in, g.c_out) <= kConvDirectMaxChannels ? ConvPath::kDirect : ConvPath::kTiled;
}

int conv_splits(const ConvGeometry& g, ConvPass pass, ConvPath path) {
  if (conv_path(g, path) == ConvPath::kDirect) return 1;
  const GemmShape s = gemm_shape(g, pass);
  return split_count(ceil_div(s.m, kTileM) * ceil_div(s.n, kTileN) * s.problems, s.k);
}

int64_t conv_workspace(const ConvGeometry& g, ConvPass pass, ConvPath path) {
  const int splits = conv_splits(g, pass, path);
  return splits > 1 ? splits * output_size(g, pass) : 0;
}

void conv2d_forward(const ConvGeometry& g, const float* x, const float* weight, const float* bias, float* workspace,
                    float* y, ConvPath path) {
  const int64_t total = (int64_t)g.n * g.c_out * g.ho * g.wo;
  if (total == 0) return;
  if (conv_path(g, path) == ConvPath::kDirect) {
    RECON_LAUNCH(conv_direct_forward_kernel, blocks_for(total, kDirectThreads), kDirectThreads, 0, runtime_stream())
    (g, x, weight, bias, y);
    check_launch("conv_direct_forward_kernel");
    return;
  }
  launch_tiled<Pass::kForward>("conv2d_forward", g, ConvPass::kForward, x, weight, bias, workspace, y, g.c_out,
                               (int64_t)g.ho * g.wo);
}

void conv2d_backward_data(const ConvGeometry& g, const float* dy, const float* weight, const float* bias,
                          float* workspace, float* dx, ConvPath path) {
  const int64_t total = (int64_t)g.n * g.c_in * g.h * g.w;
  if (total == 0) return;
  if (conv_path(g, path) == ConvPath::kDirect) {
    RECON_LAUNCH(conv_direct_backward_data_kernel, blocks_for(total, kDirectThreads), kDirectThreads, 0, runtime_stream())
    (g, dy, weight, bias, dx);
    check_launch("conv_direct_backward_data_kernel");
    return;
  }
  // The largest phase (phase 0) sets the grid; the other phases' extra tiles store nothing.
  check_int_range("conv2d_backward_data: n h w", total / g.c_in);
  launch_tiled<Pass::kBackwardData>("conv2d_backward_data", g, ConvPass::kBackwardData, dy, weight, bias, workspace,
                                    dx, g.c_in, (int64_t)g.h * g.w);
}

void conv2d_backward_weight(const ConvGeometry& g, const float* x, const float* dy, float* workspace, float* dweight,
                            ConvPath path) {
  const int64_t rows = (int64_t)g.c_in * g.kh * g.kw, total = g.c_out * rows;
  if (total == 0) return;
  if (conv_path(g, path) == ConvPath::kDirect) {
    check_int_range("conv2d_backward_weight: n ho wo", (int64_t)g.n * g.ho * g.wo);
    RECON_LAUNCH(conv_direct_backward_weight_kernel, (unsigned)total, kReduceThreads, 0, runtime_stream())(g, x, dy, dweight);
    check_launch("conv_direct_backward_weight_kernel");
    return;
  }
  launch_tiled<Pass::kBackwardWeight>("conv2d_backward_weight", g, ConvPass::kBackwardWeight, x, dy, nullptr,
                                      workspace, dweight, 1, 1);
}

void conv2d_backward_bias(const float* dy, float* dbias, int64_t n, int64_t c, int64_t hw) {
  if (c == 0) return;
  RECON_LAUNCH(conv_bias_grad_kernel, (unsigned)c, kReduceThreads, 0, runtime_stream())(dy, dbias, n, c, hw);
  check_launch("conv_bias_grad_kernel");
}

}  // namespace recon::cuda
