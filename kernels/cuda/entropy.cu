// Entropy kernels on CUDA (math in kernels/common/entropy.hpp).
// image_entropy: one block per image, one launch per batch. The block's 256
// threads bin the image into a shared-memory histogram with integer atomics
// (exact, so order does not matter), then thread b takes bin b's term
// -p log2 p and a fixed tree sums them in double. local_entropy: one thread
// per output pixel, each with a private window histogram in shared memory.
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/device_util.cuh"
#include "kernels/cuda/entropy.hpp"
#include "kernels/common/shape.hpp"
#include "runtime/cuda_context.hpp"

namespace recon::cuda {

using detail::runtime_stream;

namespace {

constexpr int kLocalTileW = 16;           // local_entropy: block width (output columns)
constexpr int kLocalHistBytes = 32768;    // local_entropy: shared bytes for the per-thread histograms
constexpr int64_t kMaxGridZ = 65535;      // images per local_entropy launch (gridDim.z limit)


// One block of 256 threads per image (blockIdx.x); thread t strides over the
// image's values (t, t + 256, ...) adding each to its bin with a shared
// atomicAdd, then owns bin t in the entropy sum.
__global__ void image_entropy_kernel(const float* __restrict__ x, int64_t per_image, float* __restrict__ out) {
  __shared__ unsigned int hist[kEntropyBins];
  __shared__ double red[kEntropyBins];
  const int t = threadIdx.x;
  hist[t] = 0u;
  __syncthreads();
  const float* xi = x + (int64_t)blockIdx.x * per_image;
  for (int64_t i = t; i < per_image; i += kEntropyBins) atomicAdd(&hist[intensity_bin(xi[i], kEntropyBins)], 1u);
  __syncthreads();
  red[t] = entropy_term((int64_t)hist[t], per_image);
  __syncthreads();
  for (int half = kEntropyBins / 2; half > 0; half /= 2) {
    if (t < half) red[t] += red[t + half];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = (float)red[0];
}

// One block: a (16 x blockDim.y) tile of output pixels of image img0 +
// blockIdx.z; thread (tx, ty) owns pixel (row0 + ty, col0 + tx). Dynamic
// shared memory holds the per-thread histograms, laid out [bin][thread] (a
// thread walks its own column: no atomics, no bank conflicts), then the
// tile's gray levels with a reflected halo of k / 2. Each thread zeroes its
// histogram, counts its k x k window, and sums -p log2 p in bin order.
__global__ void local_entropy_kernel(const float* __restrict__ x, float* __restrict__ out, LocalEntropyParams p,
                                     int64_t img0) {
  RECON_DYNAMIC_SHARED(unsigned short, hist);
  const int threads = blockDim.x * blockDim.y;
  const int tid = threadIdx.y * blockDim.x + threadIdx.x;
  unsigned char* tile = reinterpret_cast<unsigned char*>(hist + (int64_t)p.bins * threads);
  const int r = p.k / 2;
  const int tile_w = blockDim.x + 2 * r, tile_h = blockDim.y + 2 * r;
  const int row0 = blockIdx.y * blockDim.y, col0 = blockIdx.x * blockDim.x;
  const int64_t img = img0 + blockIdx.z, plane = (int64_t)p.h * p.w;
  const float* xi = x + img * p.c * plane;

  for (int i = tid; i < tile_w * tile_h; i += threads) {
    const int gr = row0 - r + i / tile_w, gc = col0 - r + i % tile_w;
    // Halo rows/columns past h - 1 + r feed only outputs outside the image.
    if (gr <= p.h - 1 + r && gc <= p.w - 1 + r) {
      const int64_t src = reflect_index(gr, p.h) * p.w + reflect_index(gc, p.w);
      tile[i] = (unsigned char)intensity_bin(gray_value(xi, plane, p.c, src), p.bins);
    }
  }
  for (int b = 0; b < p.bins; ++b) hist[b * threads + tid] = 0;
  __syncthreads();

  const int i = row0 + threadIdx.y, j = col0 + threadIdx.x;
  if (i < p.h && j < p.w) {
    for (int dr = 0; dr < p.k; ++dr)
      for (int dc = 0; dc < p.k; ++dc) ++hist[tile[(threadIdx.y + dr) * tile_w + threadIdx.x + dc] * threads + tid];
    const int64_t total = (int64_t)p.k * p.k;
    double s = 0.0;
    for (int b = 0; b < p.bins; ++b) s += entropy_term(hist[b * threads + tid], total);
    out[img * plane + (int64_t)i * p.w + j] = (float)s;
  }
}

}  // namespace

void image_entropy(const float* x, int64_t n, int64_t per_image, float* out) {
  RECON_LAUNCH(image_entropy_kernel, dim3((unsigned)n), dim3(kEntropyBins), 0, runtime_stream())(x, per_image, out);
  check_launch("image_entropy_kernel");
}

void local_entropy(const LocalEntropyParams& p, const float* x, float* out) {
  // Rows per block: as many as keep the histograms within kLocalHistBytes
  // (16 rows for bins <= 64, 4 rows for 256 bins).
  int rows = kLocalHistBytes / (int)(sizeof(unsigned short) * kLocalTileW * p.bins);
  rows = rows > kLocalTileW ? kLocalTileW : (rows < 1 ? 1 : rows);
  const int r = p.k / 2;
  const size_t hist_bytes = sizeof(unsigned short) * (size_t)p.bins * kLocalTileW * rows;
  const size_t shared = hist_bytes + (size_t)(kLocalTileW + 2 * r) * (rows + 2 * r);
  for (int64_t img0 = 0; img0 < p.n; img0 += kMaxGridZ) {
    const int64_t images = p.n - img0 < kMaxGridZ ? p.n - img0 : kMaxGridZ;
    const dim3 grid((unsigned)((p.w + kLocalTileW - 1) / kLocalTileW), (unsigned)((p.h + rows - 1) / rows),
                    (unsigned)images);
    RECON_LAUNCH(local_entropy_kernel, grid, dim3(kLocalTileW, rows), shared, runtime_stream())(x, out, p, img0);
    check_launch("local_entropy_kernel");
  }
}

}  // namespace recon::cuda
