// CUDA elementwise kernels: binary ops (same shape with float4 vectors, or
// 4-D broadcast), unary ops and their derivatives, a += b, broadcast copy.
// Every formula is a RECON_HD function of kernels/common/elementwise.hpp,
// the same the CPU backend uses. The op is a kernel argument: the switch on
// it is uniform across the grid, and these kernels are bound by memory.
#include "kernels/cuda/launch.cuh"

#include <cstdint>

#include "kernels/common/elementwise.hpp"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/elementwise.hpp"
#include "runtime/cuda_context.hpp"

namespace recon::cuda {

using detail::runtime_stream;

namespace {

using detail::grid_for;
using detail::grid_start;
using detail::grid_stride;
using detail::kBlockThreads;

bool aligned16(const void* p) { return ((uintptr_t)p & 15u) == 0; }


// ---- binary ------------------------------------------------------------------------

// One thread: element i of a, b, out for i in its grid-stride share of [0, n).
__global__ void binary_kernel(BinaryOp op, const float* __restrict__ a, const float* __restrict__ b,
                              float* __restrict__ out, int64_t n) {
  for (int64_t i = grid_start(); i < n; i += grid_stride()) out[i] = binary_apply(op, a[i], b[i]);
}

// One thread: float4 v of a, b, out for v in its grid-stride share of
// [0, n / 4); the global threads t < n % 4 also do the tail element
// 4 (n / 4) + t. a, b and out are 16-byte aligned.
__global__ void binary_vec4_kernel(BinaryOp op, const float* __restrict__ a, const float* __restrict__ b,
                                   float* __restrict__ out, int64_t n) {
  const int64_t n4 = n / 4;
  const float4* a4 = reinterpret_cast<const float4*>(a);
  const float4* b4 = reinterpret_cast<const float4*>(b);
  float4* o4 = reinterpret_cast<float4*>(out);
  for (int64_t v = grid_start(); v < n4; v += grid_stride()) {
    const float4 x = a4[v], y = b4[v];
    o4[v] = make_float4(binary_apply(op, x.x, y.x), binary_apply(op, x.y, y.y), binary_apply(op, x.z, y.z),
                        binary_apply(op, x.w, y.w));
  }
  const int64_t t = grid_start();
  if (t < n - 4 * n4) out[4 * n4 + t] = binary_apply(op, a[4 * n4 + t], b[4 * n4 + t]);
}

// One thread: output element i (grid-stride over the 4-D output), reading
// a and b at their broadcast offsets.
__global__ void binary_broadcast_kernel(BinaryOp op, Broadcast4 bc, const float* __restrict__ a,
                                        const float* __restrict__ b, float* __restrict__ out, int64_t n) {
  for (int64_t i = grid_start(); i < n; i += grid_stride()) {
    int64_t ia, ib;
    broadcast_offsets(bc, i, ia, ib);
    out[i] = binary_apply(op, a[ia], b[ib]);
  }
}

// ---- unary ---------------------------------------------------------------------------

// One thread: element i of x and y for i in its grid-stride share of [0, n).
__global__ void unary_kernel(UnaryOp op, const float* __restrict__ x, float* __restrict__ y, int64_t n, float p0,
                             float p1) {
  for (int64_t i = grid_start(); i < n; i += grid_stride()) y[i] = unary_apply(op, x[i], p0, p1);
}

// One thread: float4 v of x and y (grid-stride over n / 4), plus tail
// element 4 (n / 4) + t for global thread t < n % 4. x, y 16-byte aligned.
__global__ void unary_vec4_kernel(UnaryOp op, const float* __restrict__ x, float* __restrict__ y, int64_t n, float p0,
                                  float p1) {
  const int64_t n4 = n / 4;
  const float4* x4 = reinterpret_cast<const float4*>(x);
  float4* y4 = reinterpret_cast<float4*>(y);
  for (int64_t v = grid_start(); v < n4; v += grid_stride()) {
    const float4 a = x4[v];
    y4[v] = make_float4(unary_apply(op, a.x, p0, p1), unary_apply(op, a.y, p0, p1), unary_apply(op, a.z, p0, p1),
                        unary_apply(op, a.w, p0, p1));
  }
  const int64_t t = grid_start();
  if (t < n - 4 * n4) y[4 * n4 + t] = unary_apply(op, x[4 * n4 + t], p0, p1);
}

// One thread: gx[i] from x[i], y[i], gy[i] (grid-stride over n); x or y may
// be null (read as 0) when the op's derivative does not use it.
__global__ void unary_backward_kernel(UnaryOp op, const float* __restrict__ x, const float* __restrict__ y,
                                      const float* __restrict__ gy, float* __restrict__ gx, int64_t n, float p0,
                                      float p1) {
  for (int64_t i = grid_start(); i < n; i += grid_stride())
    gx[i] = unary_grad(op, x ? x[i] : 0.f, y ? y[i] : 0.f, gy[i], p0, p1);
}

// One thread: float4 v of x, y, gy, gx (grid-stride over n / 4), plus tail
// element 4 (n / 4) + t for global thread t < n % 4. Non-null pointers are
// 16-byte aligned; a null x or y reads as 0.
__global__ void unary_backward_vec4_kernel(UnaryOp op, const float* __restrict__ x, const float* __restrict__ y,
                                           const float* __restrict__ gy, float* __restrict__ gx, int64_t n,
                                           float p0, float p1) {
  const int64_t n4 = n / 4;
  const float4 zero = make_float4(0.f, 0.f, 0.f, 0.f);
  for (int64_t v = grid_start(); v < n4; v += grid_stride()) {
    const float4 a = x ? reinterpret_cast<const float4*>(x)[v] : zero;
    const float4 b = y ? reinterpret_cast<const float4*>(y)[v] : zero;
    const float4 g = reinterpret_cast<const float4*>(gy)[v];
    reinterpret_cast<float4*>(gx)[v] =
        make_float4(unary_grad(op, a.x, b.x, g.x, p0, p1), unary_grad(op, a.y, b.y, g.y, p0, p1),
                    unary_grad(op, a.z, b.z, g.z, p0, p1), unary_grad(op, a.w, b.w, g.w, p0, p1));
  }
  const int64_t t = grid_start();
  if (t < n - 4 * n4) {
    const int64_t i = 4 * n4 + t;
    gx[i] = unary_grad(op, x ? x[i] : 0.f, y ? y[i] : 0.f, gy[i], p0, p1);
  }
}

// ---- in place and broadcast copy ---------------------------------------------------------

// One thread: a[i] += b[i] for i in its grid-stride share of [0, n). (No
// __restrict__: add_(a, a) passes the same pointer twice.)
__global__ void add_inplace_kernel(float* a, const float* b, int64_t n) {
  for (int64_t i = grid_start(); i < n; i += grid_stride()) a[i] += b[i];
}

// One thread: float4 v of a and b (grid-stride over n / 4), plus tail element
// 4 (n / 4) + t for global thread t < n % 4. a, b 16-byte aligned.
__global__ void add_inplace_vec4_kernel(float* a, const float* b, int64_t n) {
  const int64_t n4 = n / 4;
  float4* a4 = reinterpret_cast<float4*>(a);
  const float4* b4 = reinterpret_cast<const float4*>(b);
  for (int64_t v = grid_start(); v < n4; v += grid_stride()) {
    float4 s = a4[v];
    const float4 d = b4[v];
    s.x += d.x;
    s.y += d.y;
    s.z += d.z;
    s.w += d.w;
    a4[v] = s;
  }
  const int64_t t = grid_start();
  if (t < n - 4 * n4) a[4 * n4 + t] += b[4 * n4 + t];
}

// One thread: output element i (grid-stride over the 4-D output) <- x at its
// broadcast offset.
__global__ void broadcast_copy_kernel(Broadcast4 bc, const float* __restrict__ x, float* __restrict__ out,
                                      int64_t n) {
  for (int64_t i = grid_start(); i < n; i += grid_stride()) {
    int64_t ix, unused;
    broadcast_offsets(bc, i, ix, unused);
    out[i] = x[ix];
  }
}

int64_t numel4(const Broadcast4& bc) { return bc.shape[0] * bc.shape[1] * bc.shape[2] * bc.shape[3]; }

// Threads for a vec4 kernel over n elements: n / 4 vectors and n % 4 tail elements.
int64_t vec4_work(int64_t n) { return n / 4 > n % 4 ? n / 4 : n % 4; }

}  // namespace

void binary_same(BinaryOp op, const float* a, const float* b, float* out, int64_t n) {
  if (n == 0) return;
  if (aligned16(a) && aligned16(b) && aligned16(out)) {
    RECON_LAUNCH(binary_vec4_kernel, grid_for(vec4_work(n)), kBlockThreads, 0, runtime_stream())(op, a, b, out, n);
    check_launch("binary_vec4_kernel");
  } else {
    RECON_LAUNCH(binary_kernel, grid_for(n), kBlockThreads, 0, runtime_stream())(op, a, b, out, n);
    check_launch("binary_kernel");
  }
}

void binary_broadcast(BinaryOp op, const Broadcast4& bc, const float* a, const float* b, float* out) {
  const int64_t n = numel4(bc);
  if (n == 0) return;
  RECON_LAUNCH(binary_broadcast_kernel, grid_for(n), kBlockThreads, 0, runtime_stream())(op, bc, a, b, out, n);
  check_launch("binary_broadcast_kernel");
}

void unary(UnaryOp op, const float* x, float* y, int64_t n, float p0, float p1) {
  if (n == 0) return;
  if (aligned16(x) && aligned16(y)) {
    RECON_LAUNCH(unary_vec4_kernel, grid_for(vec4_work(n)), kBlockThreads, 0, runtime_stream())(op, x, y, n, p0, p1);
    check_launch("unary_vec4_kernel");
  } else {
    RECON_LAUNCH(unary_kernel, grid_for(n), kBlockThreads, 0, runtime_stream())(op, x, y, n, p0, p1);
    check_launch("unary_kernel");
  }
}

void unary_backward(UnaryOp op, const float* x, const float* y, const float* gy, float* gx, int64_t n, float p0,
                    float p1) {
  if (n == 0) return;
  if (aligned16(x) && aligned16(y) && aligned16(gy) && aligned16(gx)) {  // null counts as aligned
    RECON_LAUNCH(unary_backward_vec4_kernel, grid_for(vec4_work(n)), kBlockThreads, 0, runtime_stream())
    (op, x, y, gy, gx, n, p0, p1);
    check_launch("unary_backward_vec4_kernel");
  } else {
    RECON_LAUNCH(unary_backward_kernel, grid_for(n), kBlockThreads, 0, runtime_stream())(op, x, y, gy, gx, n, p0, p1);
    check_launch("unary_backward_kernel");
  }
}

void add_inplace(float* a, const float* b, int64_t n) {
  if (n == 0) return;
  if (aligned16(a) && aligned16(b)) {
    RECON_LAUNCH(add_inplace_vec4_kernel, grid_for(vec4_work(n)), kBlockThreads, 0, runtime_stream())(a, b, n);
    check_launch("add_inplace_vec4_kernel");
  } else {
    RECON_LAUNCH(add_inplace_kernel, grid_for(n), kBlockThreads, 0, runtime_stream())(a, b, n);
    check_launch("add_inplace_kernel");
  }
}

void broadcast_copy(const Broadcast4& bc, const float* x, float* out) {
  const int64_t n = numel4(bc);
  if (n == 0) return;
  RECON_LAUNCH(broadcast_copy_kernel, grid_for(n), kBlockThreads, 0, runtime_stream())(bc, x, out, n);
  check_launch("broadcast_copy_kernel");
}

}  // namespace recon::cuda
