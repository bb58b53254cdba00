// The AVX-512 single-precision product behind the CPU convolution (see
// conv_gemm.hpp). Its functions alone are compiled for AVX-512 (a target
// pragma after the includes), and none runs unless cpu_has_avx512() said yes.
//
// Structure (the loop nest of Goto & van de Geijn, "Anatomy of
// High-Performance Matrix Multiplication", ACM TOMS 2008, as BLIS arranges
// it): C is cut into column slices, one per thread; within a slice, blocks of
// kNc columns and equal blocks of at most kKc steps of k are packed into
// panels of kNr columns, blocks of kMc rows of A into panels of kMr rows, and
// one register-resident kMr x kNr tile of C is updated per micro-kernel call.
// Panels are padded with zeros, so the micro-kernel always runs full-width
// tiles (a panel with fewer real rows runs only those); edge tiles go through
// a small buffer on their way to C.
//
// Thread mapping: thread t owns the column panels [t P / T, (t + 1) P / T)
// of C (P panels, T threads) and does all of k for them, so every element of
// C is one thread's sum over k, in k order, whatever T is.
#include "kernels/cpu/conv_gemm.hpp"

#if defined(__x86_64__)
// GCC 12 warns that the unpack intrinsics read an uninitialised value (the
// _mm512_undefined_ps() they pass as the unused merge source; GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#include <omp.h>

#include <algorithm>
#include <exception>

#include "kernels/cpu/scratch.hpp"

// Everything below is compiled for AVX-512 and FMA; everything above (the
// standard library and the project's headers) for the baseline x86-64 the
// rest of the library targets. Building the whole file with -mavx512f would
// let the linker keep this file's copy of an inline function or template
// that other files share (std::min, conv_col_rows, ...) and run AVX-512 code
// on a CPU without it.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,fma")
#endif

namespace recon::cpu {

namespace {

// Micro-tile: 8 rows of C by 48 columns (3 vectors of 16) = 24 accumulators,
// leaving 8 of the 32 vector registers for the B row and A broadcasts.
constexpr int kMr = 8;
constexpr int kNr = 48;
// k steps per packed block: a kKc x kNr panel of B (24 KiB) stays in L1 while
// the micro-kernel walks down a column of A panels.
constexpr int64_t kKc = 128;
// Rows of A per packed block: kMc x kKc floats (64 KiB) stay in L2.
constexpr int64_t kMc = 128;
// Columns of B per packed block: kKc x kNc floats (1.5 MiB) in L2 / L3.
constexpr int64_t kNc = 64 * kNr;
// Below this many multiply-adds one thread does the whole product: a
// parallel region costs more than it saves.
constexpr int64_t kParallelMinMacs = int64_t(1) << 18;

// The operand views: element (i, p) of op(A) and (p, j) of op(B).
struct Operand {
  const float* data;
  int64_t ld;
  bool trans;
};

// dst[c 8 + r] = src[r lds + c] for r, c < 8: an 8 x 8 block transposed in
// 256-bit registers (rows interleaved by 32 bits, then 64, then 128-bit
// halves swapped); dst is 32-byte aligned.
inline void transpose8(const float* src, int64_t lds, float* dst) {
  __m256 r[8], t[8], u[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int g = 0; g < 8; g += 4) {  // u[g + c]: columns c (low half) and 4 + c (high half) of rows g .. g + 3
    u[g] = _mm256_shuffle_ps(t[g], t[g + 2], 0x44);
    u[g + 1] = _mm256_shuffle_ps(t[g], t[g + 2], 0xee);
    u[g + 2] = _mm256_shuffle_ps(t[g + 1], t[g + 3], 0x44);
    u[g + 3] = _mm256_shuffle_ps(t[g + 1], t[g + 3], 0xee);
  }
  for (int c = 0; c < 4; ++c) {
    _mm256_store_ps(dst + c * 8, _mm256_permute2f128_ps(u[c], u[4 + c], 0x20));
    _mm256_store_ps(dst + (4 + c) * 8, _mm256_permute2f128_ps(u[c], u[4 + c], 0x31));
  }
}

// Rows [i0, i0 + mc) and k steps [p0, p0 + kc) of op(A) into panels of kMr
// rows: panel q holds (kc, kMr) with row i of the panel at offset p kMr + i;
// rows past mc are zero.
void pack_a(const Operand& a, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* dst) {
  for (int64_t ip = 0; ip < mc; ip += kMr, dst += kc * kMr) {
    const int rows = (int)std::min<int64_t>(kMr, mc - ip);
    if (a.trans) {  // op(A)(i, p) = a[p ld + i]: each k step is a contiguous run of rows
      for (int64_t p = 0; p < kc; ++p) {
        const float* s = a.data + (p0 + p) * a.ld + i0 + ip;
        float* d = dst + p * kMr;
        for (int r = 0; r < rows; ++r) d[r] = s[r];
        for (int r = rows; r < kMr; ++r) d[r] = 0.f;
      }
    } else {  // op(A)(i, p) = a[i ld + p]: rows are contiguous; 8 x 8 blocks go through registers
      const float* s = a.data + (i0 + ip) * a.ld + p0;
      int64_t p = 0;
      if (rows == kMr)
        for (; p + 8 <= kc; p += 8) transpose8(s + p, a.ld, dst + p * kMr);
      for (; p < kc; ++p)
        for (int r = 0; r < kMr; ++r) dst[p * kMr + r] = r < rows ? s[r * a.ld + p] : 0.f;
    }
  }
}

// A matrix kept as a batch of images in NCHW: element (i, q) at
// data[(q / hw) rows hw + i hw + q % hw], i a channel and q = (image,
// position): dy (cnt, c_out, ho, wo) seen as (c_out, cnt ho wo) without the
// copy into that layout.
struct BatchedRows {
  const float* data;
  int64_t rows, hw;
};

// pack_a of a BatchedRows operand (never transposed): 8 x 8 blocks through
// registers where the 8 positions lie in one image, element by element where
// they straddle two.
void pack_a(const BatchedRows& a, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* dst) {
  for (int64_t ip = 0; ip < mc; ip += kMr, dst += kc * kMr) {
    const int rows = (int)std::min<int64_t>(kMr, mc - ip);
    int64_t b = p0 / a.hw, s = p0 % a.hw;  // image and position of k step p
    for (int64_t p = 0; p < kc;) {
      const float* base = a.data + (b * a.rows + i0 + ip) * a.hw + s;
      const int64_t run = std::min(kc - p, a.hw - s);  // k steps left in this image
      int64_t t = 0;
      if (rows == kMr)
        for (; t + 8 <= run; t += 8) transpose8(base + t, a.hw, dst + (p + t) * kMr);
      for (; t < run; ++t)
        for (int r = 0; r < kMr; ++r) dst[(p + t) * kMr + r] = r < rows ? base[r * a.hw + t] : 0.f;
      p += run;
      s += run;
      if (s == a.hw) s = 0, ++b;
    }
  }
}

// dst[c ldd + r] = src[r lds + c] for r, c < 16: a 16 x 16 block transposed
// in registers (pairs of rows interleaved by 32, then 64 bits, then 128-bit
// lanes gathered in two rounds).
inline void transpose16(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * lds);
  for (int i = 0; i < 16; i += 2) {  // t[i]: r[i], r[i+1] interleaved, low / high pairs of each lane
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int g = 0; g < 16; g += 4) {  // r[g + c]: lane L holds column 4 L + c of rows g .. g + 3
    const __m512d t0 = _mm512_castps_pd(t[g]), t1 = _mm512_castps_pd(t[g + 1]);
    const __m512d t2 = _mm512_castps_pd(t[g + 2]), t3 = _mm512_castps_pd(t[g + 3]);
    r[g] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
    r[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
    r[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
    r[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
  }
  for (int c = 0; c < 4; ++c) {
    // lanes 0, 2 of each source (0x88) or 1, 3 (0xdd): columns c and 8 + c, then 4 + c and 12 + c
    const __m512 v0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88), w0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);
    const __m512 v1 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88),
                 w1 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd);
    _mm512_store_ps(dst + c * ldd, _mm512_shuffle_f32x4(v0, v1, 0x88));
    _mm512_store_ps(dst + (8 + c) * ldd, _mm512_shuffle_f32x4(v0, v1, 0xdd));
    _mm512_store_ps(dst + (4 + c) * ldd, _mm512_shuffle_f32x4(w0, w1, 0x88));
    _mm512_store_ps(dst + (12 + c) * ldd, _mm512_shuffle_f32x4(w0, w1, 0xdd));
  }
}

// Columns [j0, j0 + nc) and k steps [p0, p0 + kc) of op(B) into panels of kNr
// columns: panel q holds (kc, kNr), column j at offset p kNr + j; columns past
// nc are zero.
void pack_b_operand(const Operand& b, int64_t j0, int64_t nc, int64_t p0, int64_t kc, float* dst) {
  for (int64_t jp = 0; jp < nc; jp += kNr, dst += kc * kNr) {
    const int cols = (int)std::min<int64_t>(kNr, nc - jp);
    if (!b.trans) {  // op(B)(p, j) = b[p ld + j]: each k step is a contiguous run of columns
      const __mmask16 m0 = (__mmask16)((1u << std::clamp(cols, 0, 16)) - 1);
      const __mmask16 m1 = (__mmask16)((1u << std::clamp(cols - 16, 0, 16)) - 1);
      const __mmask16 m2 = (__mmask16)((1u << std::clamp(cols - 32, 0, 16)) - 1);
      for (int64_t p = 0; p < kc; ++p) {
        const float* s = b.data + (p0 + p) * b.ld + j0 + jp;
        float* d = dst + p * kNr;
        if (cols == kNr) {
          _mm512_store_ps(d, _mm512_loadu_ps(s));
          _mm512_store_ps(d + 16, _mm512_loadu_ps(s + 16));
          _mm512_store_ps(d + 32, _mm512_loadu_ps(s + 32));
        } else {  // masked loads read nothing past the last column
          _mm512_store_ps(d, _mm512_maskz_loadu_ps(m0, s));
          _mm512_store_ps(d + 16, _mm512_maskz_loadu_ps(m1, s + 16));
          _mm512_store_ps(d + 32, _mm512_maskz_loadu_ps(m2, s + 32));
        }
      }
    } else {  // op(B)(p, j) = b[j ld + p]: columns are contiguous; 16 x 16 blocks go through registers
      for (int jb = 0; jb < kNr; jb += 16) {
        const int cb = std::clamp(cols - jb, 0, 16);
        const float* s = b.data + (j0 + jp + jb) * b.ld + p0;
        int64_t p = 0;
        if (cb == 16)
          for (; p + 16 <= kc; p += 16) transpose16(s + p, b.ld, dst + p * kNr + jb, kNr);
        for (; p < kc; ++p)
          for (int j = 0; j < 16; ++j) dst[p * kNr + jb + j] = j < cb ? s[j * b.ld + p] : 0.f;
      }
    }
  }
}

// Where C lives: element (i, j) at c[i rs + j cs]. Row-major C has cs = 1;
// the transposed problem (see sgemm_avx512) writes with rs = 1.
struct Out {
  float* c;
  int64_t rs, cs;
};

// One tile of R <= kMr rows by kNr columns: acc = a_panel (kc, kMr)^T
// b_panel (kc, kNr) on the panel's first R rows, then C = acc + beta C on the
// R x cols that exist (beta 0: C is not read). A panel with fewer than kMr
// real rows (c_out = 1 for an output layer) runs only those: per row, the
// same speed as a full tile.
template <int R>
void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b, const Out& out, int cols,
                  float beta) {
  __m512 acc[R][3];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = acc[i][2] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; ++p, a += kMr, b += kNr) {
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16), b2 = _mm512_load_ps(b + 32);
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
      acc[i][2] = _mm512_fmadd_ps(ai, b2, acc[i][2]);
    }
  }
  if (cols == kNr && out.cs == 1) {
    const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      float* c = out.c + i * out.rs;
      for (int v = 0; v < 3; ++v) {
        __m512 r = acc[i][v];
        if (beta != 0.f) r = _mm512_fmadd_ps(vb, _mm512_loadu_ps(c + 16 * v), r);
        _mm512_storeu_ps(c + 16 * v, r);
      }
    }
    return;
  }
  alignas(64) float tile[R * kNr];
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < 3; ++v) _mm512_store_ps(tile + i * kNr + 16 * v, acc[i][v]);
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < cols; ++j) {
      float& c = out.c[i * out.rs + j * out.cs];
      c = beta == 0.f ? tile[i * kNr + j] : tile[i * kNr + j] + beta * c;
    }
  }
}

// The tile of `rows` rows (1 .. kMr).
void micro_tile(int rows, int64_t kc, const float* a, const float* b, const Out& out, int cols, float beta) {
  switch (rows) {
    case 1: micro_kernel<1>(kc, a, b, out, cols, beta); break;
    case 2: micro_kernel<2>(kc, a, b, out, cols, beta); break;
    case 3: micro_kernel<3>(kc, a, b, out, cols, beta); break;
    case 4: micro_kernel<4>(kc, a, b, out, cols, beta); break;
    case 5: micro_kernel<5>(kc, a, b, out, cols, beta); break;
    case 6: micro_kernel<6>(kc, a, b, out, cols, beta); break;
    case 7: micro_kernel<7>(kc, a, b, out, cols, beta); break;
    default: micro_kernel<kMr>(kc, a, b, out, cols, beta); break;
  }
}

// The im2col matrix of a chunk of images, packed straight from the images
// (never stored whole): op(B)(r, q) for the forward product, r = (c, ki, kj)
// a tap, q = (b, oy, ox) an output position; or op(B)(q, r) for the weight
// gradient (`transposed`). A tap reading padding gives 0. One element:
// x[pos(q) + tap(r)] with pos(q) = b img + (oy s - p) w + (ox s - p) and
// tap(r) = c plane + ki d w + kj d, read when the input row oy s - p + ki d
// and column ox s - p + kj d fall inside the image; 16 of them per masked
// gather.
struct Im2colPacker {
  const ConvGeometry& g;
  const float* x;  // (cnt, c_in, h, w)
  bool transposed;

  // Output positions q = (b, oy, ox) in order, decoded once and then stepped
  // (no division per step): the offset of the position's tap (0, 0, 0) and
  // the input row and column it reads there.
  struct Positions {
    const ConvGeometry& g;
    int64_t b;
    int oy, ox;
    Positions(const ConvGeometry& geo, int64_t q)
        : g(geo), b(q / ((int64_t)geo.ho * geo.wo)), oy((int)(q / geo.wo % geo.ho)), ox((int)(q % geo.wo)) {}
    void get(int32_t& off, int32_t& row, int32_t& col) const {
      row = oy * g.stride_h - g.pad_h;
      col = ox * g.stride_w - g.pad_w;
      off = (int32_t)(b * g.c_in * g.h * g.w + (int64_t)row * g.w + col);
    }
    void next() {
      if (++ox == g.wo) {
        ox = 0;
        if (++oy == g.ho) oy = 0, ++b;
      }
    }
  };
  // Taps r = (c, ki, kj) in order: offset from the position's tap (0, 0, 0),
  // and the row and column steps.
  struct Taps {
    const ConvGeometry& g;
    int c, ki, kj;
    Taps(const ConvGeometry& geo, int64_t r)
        : g(geo), c((int)(r / ((int64_t)geo.kh * geo.kw))), ki((int)(r / geo.kw % geo.kh)), kj((int)(r % geo.kw)) {}
    void get(int32_t& off, int32_t& row, int32_t& col) const {
      row = ki * g.dil_h;
      col = kj * g.dil_w;
      off = (int32_t)((int64_t)c * g.h * g.w + (int64_t)row * g.w + col);
    }
    void next() {
      if (++kj == g.kw) {
        kj = 0;
        if (++ki == g.kh) ki = 0, ++c;
      }
    }
  };

  // 16 elements: x[off + off_add] where row + row_add in [0, h) and col + col_add in [0, w), else 0.
  __m512 gather(__m512i off, __m512i row, __m512i col, int32_t off_add, int32_t row_add, int32_t col_add) const {
    const __m512i r = _mm512_add_epi32(row, _mm512_set1_epi32(row_add));
    const __m512i c = _mm512_add_epi32(col, _mm512_set1_epi32(col_add));
    // unsigned compares: a negative coordinate is a huge unsigned one
    const __mmask16 inside = _mm512_cmplt_epu32_mask(r, _mm512_set1_epi32(g.h)) &
                             _mm512_cmplt_epu32_mask(c, _mm512_set1_epi32(g.w));
    const __m512i idx = _mm512_add_epi32(off, _mm512_set1_epi32(off_add));
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), inside, idx, x, 4);
  }

  // Columns walked by ColWalk, k steps by RowWalk.
  template <class ColWalk, class RowWalk>
  void pack(int64_t j0, int64_t nc, int64_t p0, int64_t kc, float* dst) const {
    for (int64_t jp = 0; jp < nc; jp += kNr, dst += kc * kNr) {
      const int cols = (int)std::min<int64_t>(kNr, nc - jp);
      // The panel's columns; absent ones read row -2^30: never inside.
      alignas(64) int32_t off[kNr], row[kNr], col[kNr];
      ColWalk cw(g, j0 + jp);
      for (int j = 0; j < kNr; ++j) {
        off[j] = 0, row[j] = -(1 << 30), col[j] = 0;
        if (j < cols) cw.get(off[j], row[j], col[j]), cw.next();
      }
      __m512i voff[3], vrow[3], vcol[3];
      for (int v = 0; v < 3; ++v) {
        voff[v] = _mm512_load_si512(off + 16 * v);
        vrow[v] = _mm512_load_si512(row + 16 * v);
        vcol[v] = _mm512_load_si512(col + 16 * v);
      }
      RowWalk rw(g, p0);
      for (int64_t p = 0; p < kc; ++p, rw.next()) {
        int32_t o, r, c;
        rw.get(o, r, c);
        for (int v = 0; v < 3; ++v)
          _mm512_store_ps(dst + p * kNr + 16 * v, gather(voff[v], vrow[v], vcol[v], o, r, c));
      }
    }
  }

  void operator()(int64_t j0, int64_t nc, int64_t p0, int64_t kc, float* dst) const {
    if (transposed) {
      pack<Taps, Positions>(j0, nc, p0, kc, dst);
    } else {
      pack<Positions, Taps>(j0, nc, p0, kc, dst);
    }
  }
};

// The packer of an ordinary operand.
struct OperandPacker {
  Operand b;
  void operator()(int64_t j0, int64_t nc, int64_t p0, int64_t kc, float* dst) const {
    pack_b_operand(b, j0, nc, p0, kc, dst);
  }
};

// op(B)(k, j) of a BatchedRows operand (k a channel, j = (image, position)):
// dy as the data gradient's B. A run of 16 columns inside one image is one
// (masked) load; one that straddles two images is a gather.
struct BatchedRowsPacker {
  BatchedRows b;
  void operator()(int64_t j0, int64_t nc, int64_t p0, int64_t kc, float* dst) const {
    for (int64_t jp = 0; jp < nc; jp += kNr, dst += kc * kNr) {
      const int cols = (int)std::min<int64_t>(kNr, nc - jp);
      // Per vector: the offset of its first column, whether its columns are contiguous, its
      // mask (columns that exist) and, for a gather, every lane's offset (at channel 0).
      int64_t first[3];
      bool contiguous[3];
      __mmask16 mask[3];
      alignas(64) int32_t lane[3][16];
      for (int v = 0; v < 3; ++v) {
        const int n = std::clamp(cols - 16 * v, 0, 16);
        mask[v] = (__mmask16)((1u << n) - 1);
        const int64_t q = j0 + jp + 16 * v, s = q % b.hw;
        first[v] = q / b.hw * b.rows * b.hw + s;
        contiguous[v] = s + n <= b.hw;
        for (int l = 0; l < 16; ++l) {
          const int64_t ql = q + std::min(l, std::max(n - 1, 0));
          lane[v][l] = (int32_t)(ql / b.hw * b.rows * b.hw + ql % b.hw);
        }
      }
      for (int64_t p = 0; p < kc; ++p) {
        const int64_t ch = (p0 + p) * b.hw;  // channel k's offset within an image
        float* d = dst + p * kNr;
        for (int v = 0; v < 3; ++v) {
          __m512 x;
          if (contiguous[v]) {
            x = _mm512_maskz_loadu_ps(mask[v], b.data + first[v] + ch);
          } else {
            const __m512i idx = _mm512_add_epi32(_mm512_load_si512(lane[v]), _mm512_set1_epi32((int32_t)ch));
            x = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mask[v], idx, b.data, 4);
          }
          _mm512_store_ps(d + 16 * v, x);
        }
      }
    }
  }
};

// C columns [n0, n1) of the product, on the calling thread; op(B) comes
// through the packer.
template <class A, class PackB>
void gemm_slice(const A& a, const PackB& pack_b, int64_t m, int64_t n0, int64_t n1, int64_t k, float beta,
                const Out& out) {
  float* apack = thread_scratch(ScratchSlot::kPackA, kMc * kKc);
  float* bpack = thread_scratch(ScratchSlot::kPackB, kKc * kNc);
  for (int64_t jc = n0; jc < n1; jc += kNc) {
    const int64_t nc = std::min(kNc, n1 - jc);
    // k in equal blocks of at most kKc (288 = 2 x 144, not 128 + 128 + 32: a
    // short last block pays the C tile's loads and stores for little work)
    const int64_t k_step = (k + (k + kKc - 1) / kKc - 1) / ((k + kKc - 1) / kKc);
    for (int64_t pc = 0; pc < k; pc += k_step) {
      const int64_t kc = std::min(k_step, k - pc);
      const float blk_beta = pc == 0 ? beta : 1.f;  // later k blocks add onto the first
      pack_b(jc, nc, pc, kc, bpack);
      for (int64_t ic = 0; ic < m; ic += kMc) {
        const int64_t mc = std::min(kMc, m - ic);
        pack_a(a, ic, mc, pc, kc, apack);
        for (int64_t jr = 0; jr < nc; jr += kNr) {
          const int cols = (int)std::min<int64_t>(kNr, nc - jr);
          for (int64_t ir = 0; ir < mc; ir += kMr) {
            const int rows = (int)std::min<int64_t>(kMr, mc - ir);
            const Out tile{out.c + (ic + ir) * out.rs + (jc + jr) * out.cs, out.rs, out.cs};
            micro_tile(rows, kc, apack + ir * kc, bpack + jr * kc, tile, cols, blk_beta);
          }
        }
      }
    }
  }
}

// Runs the product on up to omp_get_max_threads() threads, each owning a
// slice of whole column panels.
template <class A, class PackB>
void gemm_parallel(const A& a, const PackB& pack_b, int64_t m, int64_t n, int64_t k, float beta,
                   const Out& out) {
  const int64_t panels = (n + kNr - 1) / kNr;
  int threads = (int)std::min<int64_t>(omp_get_max_threads(), panels);
  if (omp_in_parallel() || m * n * k < kParallelMinMacs) threads = 1;
  const auto slice = [&](int t, int nt) {
    const int64_t q0 = panels * t / nt, q1 = panels * (t + 1) / nt;
    if (q0 < q1) gemm_slice(a, pack_b, m, q0 * kNr, std::min(n, q1 * kNr), k, beta, out);
  };
  if (threads == 1) {
    slice(0, 1);
    return;
  }
  // An exception may not leave a parallel region: the first one (a failed
  // scratch allocation) is kept and rethrown after it.
  std::exception_ptr error;
#pragma omp parallel num_threads(threads)
  {
    try {
      slice(omp_get_thread_num(), omp_get_num_threads());
    } catch (...) {
#pragma omp critical(recon_sgemm_avx512_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace

void sgemm_avx512(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                  const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty sum
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.f ? 0.f : beta * c[i * ldc + j];
    return;
  }
  Operand opa{a, lda, trans_a}, opb{b, ldb, trans_b};
  Out out{c, ldc, 1};
  // The 48-wide tile side goes along the longer side of C: with fewer than
  // kNr columns and more rows, compute C^T = op(B)^T op(A)^T instead (the
  // conv weight gradient of a 1-channel input has 9 columns).
  if (n < kNr && m > n) {
    std::swap(m, n);
    opa = Operand{b, ldb, !trans_b};
    opb = Operand{a, lda, !trans_a};
    out = Out{c, 1, ldc};
  }
  gemm_parallel(opa, OperandPacker{opb}, m, n, k, beta, out);
}

void conv_forward_avx512(const ConvGeometry& g, const float* weight, const float* x, int64_t cnt, float* y) {
  ConvGeometry gc = g;
  gc.n = (int)cnt;
  const int64_t rows = conv_col_rows(g), cols = cnt * conv_col_cols(g);
  gemm_parallel(Operand{weight, rows, false}, Im2colPacker{gc, x, false}, g.c_out, cols, rows, 0.f,
                Out{y, cols, 1});
}

void conv_weight_grad_avx512(const ConvGeometry& g, const float* dy, const float* x, int64_t cnt, float beta,
                             float* dweight) {
  ConvGeometry gc = g;
  gc.n = (int)cnt;
  const int64_t rows = conv_col_rows(g), cols = cnt * conv_col_cols(g);
  gemm_parallel(BatchedRows{dy, g.c_out, conv_col_cols(g)}, Im2colPacker{gc, x, true}, g.c_out, rows, cols, beta,
                Out{dweight, rows, 1});
}

void conv_data_grad_avx512(const ConvGeometry& g, const float* weight, const float* dy, int64_t cnt, float* col) {
  const int64_t rows = conv_col_rows(g), cols = cnt * conv_col_cols(g);
  gemm_parallel(Operand{weight, rows, true}, BatchedRowsPacker{BatchedRows{dy, g.c_out, conv_col_cols(g)}}, rows, cols,
                g.c_out, 0.f, Out{col, cols, 1});
}

}  // namespace recon::cpu

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else  // not x86-64: cpu_has_avx512() is false, so this is never reached

#include "runtime/error.hpp"

namespace recon::cpu {

void sgemm_avx512(bool, bool, int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t, float, float*,
                  int64_t) {
  RECON_FAIL("sgemm_avx512: this build is not for x86-64");
}

void conv_forward_avx512(const ConvGeometry&, const float*, const float*, int64_t, float*) {
  RECON_FAIL("conv_forward_avx512: this build is not for x86-64");
}

void conv_weight_grad_avx512(const ConvGeometry&, const float*, const float*, int64_t, float, float*) {
  RECON_FAIL("conv_weight_grad_avx512: this build is not for x86-64");
}

void conv_data_grad_avx512(const ConvGeometry&, const float*, const float*, int64_t, float*) {
  RECON_FAIL("conv_data_grad_avx512: this build is not for x86-64");
}

}  // namespace recon::cpu
#endif
