/* C[m, n] += A[m, k] @ B[k, n] (row-major, leading dimensions lda/ldc) on a B packed once:
 * the per-timestep products of the recurrent kernels.
 *
 * B (the recurrent kernel) is the same at every timestep, but a BLAS GEMM call packs it
 * into its panel layout again at each call: for small batches that packing is most of the
 * call, and for large ones still about a tenth. Here B is packed once per sequence
 * (crnn_pack_*), and each step's kernel streams the packed panels.
 *
 * Packed layout: panels of PW = 128 bytes of columns (32 floats, 16 doubles); panel q holds
 * rows 0..k-1 of columns [q*PW, q*PW + PW) back to back, the last panel zero-padded, so
 * the kernel reads each panel sequentially and never needs B itself. crnn_packed_size
 * gives the buffer length.
 *
 * Register blocks, sized per instruction set (GCC vector extensions; CRNN_MULTIVERSION-style
 * dispatch at run time, see _fastmath.h):
 *   AVX-512 (32 zmm): 8 rows x 2 zmm (one whole panel row) = 16 accumulators, then a
 *                     4-row block; a single row runs over 4 panels at once (8 accumulators).
 *   AVX2+FMA (16 ymm) and the portable path: 4 rows x 2 ymm on each half panel; a single
 *                     row runs over 2 panels at once (8 accumulators).
 * 8 independent accumulators at least, so the FMAs do not wait on each other's latency.
 * A partial last panel goes through a small zero-padded tile of C.
 */
#ifndef CRNN_SMALLGEMM_H
#define CRNN_SMALLGEMM_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "_fastmath.h"

#define CRNN_PANEL_BYTES 128
/* Columns of B per block of the whole products, in bytes per row: at 256 rows (KC) a block
 * of B is 1 MiB, which stays in L2. */
#define CRNN_GEMM_NC_BYTES (1 << 12)

/* Packing B (crnn_pack_*): rows of B per block (on AMD Zen 4, for a B of 1024 x 4096 floats,
 * blocks of 8 rows packed faster than row by row, and blocks of 32 rows or more lost the
 * gain again). A packed B of CRNN_PACK_STREAM_BYTES or more (a recurrent kernel of 1024
 * units, 12-16 MiB) is written with non-temporal stores: it cannot stay in L2 anyway, and
 * ordinary stores read every line before writing it; streamed, the pack took well under
 * half the time, which more than pays for its first reading coming from memory (LSTM and
 * GRU at S5 of bench/run.py, before/after pairs in bench/RESULTS.md). Smaller packs (every
 * cache block of the whole products included) keep ordinary stores, so the product finds
 * them in cache. */
#define CRNN_PACK_ROWS 8
#define CRNN_PACK_STREAM_BYTES ((size_t)8 << 20)
#if defined(__x86_64__) || defined(_M_X64)
#include <emmintrin.h>
static inline int crnn_pack_streams(size_t bytes, const void *packed) {
    return bytes >= CRNN_PACK_STREAM_BYTES && ((uintptr_t)packed & 15) == 0;
}
/* one 128-byte piece of a panel row; dst 16-byte aligned when streaming */
static inline void crnn_copy_panel_row(void *dst, const void *src, int stream) {
    if (stream) {
        for (int e = 0; e < CRNN_PANEL_BYTES; e += 16)
            _mm_stream_si128((__m128i *)((char *)dst + e),
                             _mm_loadu_si128((const __m128i *)((const char *)src + e)));
    } else {
        memcpy(dst, src, CRNN_PANEL_BYTES);
    }
}
/* streamed stores are weakly ordered: fence them before another thread reads the pack */
static inline void crnn_pack_stream_end(int stream) {
    if (stream) _mm_sfence();
}
#else
static inline int crnn_pack_streams(size_t bytes, const void *packed) {
    (void)bytes; (void)packed; return 0;
}
static inline void crnn_copy_panel_row(void *dst, const void *src, int stream) {
    (void)stream; memcpy(dst, src, CRNN_PANEL_BYTES);
}
static inline void crnn_pack_stream_end(int stream) { (void)stream; }
#endif

/* Transposition, dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols: the private
 * R^T of a training call's cache, and the transposed operands of the whole products
 * (crnn_gemm_*). Element by element, a transpose of rows 4-16 KiB apart (power-of-two
 * strides: every element of a column in the same cache set) ran at a few GB/s; on AVX-512
 * whole 16 x 16 tiles (8 x 8 doubles) go through the registers, each line read and
 * written whole; other machines and the edges run 16 x 16 tiles element by element. */
#define CRNN_DEFINE_TRANSPOSE_BODY(SUFFIX, T)                                                 \
CRNN_INLINE void crnn_transpose_tile_##SUFFIX(int rows, int cols, const T *src, Py_ssize_t lds,\
                                             T *dst, Py_ssize_t ldd) {                       \
    for (int j = 0; j < cols; j++)                                                            \
        for (int i = 0; i < rows; i++) dst[(Py_ssize_t)j * ldd + i] = src[(Py_ssize_t)i * lds + j]; \
}                                                                                             \
CRNN_INLINE void crnn_transpose_##SUFFIX##_body(int rows, int cols, const T *src,             \
                                               Py_ssize_t lds, T *dst, Py_ssize_t ldd) {     \
    for (int i0 = 0; i0 < rows; i0 += 16)                                                     \
        for (int j0 = 0; j0 < cols; j0 += 16)                                                 \
            crnn_transpose_tile_##SUFFIX(rows - i0 < 16 ? rows - i0 : 16,                     \
                                         cols - j0 < 16 ? cols - j0 : 16,                     \
                                         src + (Py_ssize_t)i0 * lds + j0, lds,                \
                                         dst + (Py_ssize_t)j0 * ldd + i0, ldd);               \
}
CRNN_DEFINE_TRANSPOSE_BODY(f32, float)
CRNN_DEFINE_TRANSPOSE_BODY(f64, double)

#ifdef CRNN_HAVE_AVX512
/* 16 x 16 floats: 32-bit, then 64-bit interleaves within 128-bit lanes, then two rounds of
 * 128-bit lane shuffles (0x88: lanes 0, 2 of each source; 0xdd: lanes 1, 3) */
CRNN_AVX512 void crnn_transpose16_f32(const float *src, Py_ssize_t lds, float *dst,
                                      Py_ssize_t ldd) {
    __m512 r[16], t[16], u[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * lds);
    for (int k = 0; k < 8; k++) {
        t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    for (int k = 0; k < 4; k++) {
        __m512d a = _mm512_castps_pd(t[4 * k]), b = _mm512_castps_pd(t[4 * k + 1]);
        __m512d c = _mm512_castps_pd(t[4 * k + 2]), d = _mm512_castps_pd(t[4 * k + 3]);
        u[4 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[4 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[4 * k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[4 * k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    /* u[4g + m], lane L: column 4L + m of rows 4g..4g+3 */
    for (int m = 0; m < 4; m++) {
        __m512 s0 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88);
        __m512 s1 = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xdd);
        __m512 s2 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88);
        __m512 s3 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xdd);
        _mm512_storeu_ps(dst + m * ldd, _mm512_shuffle_f32x4(s0, s2, 0x88));
        _mm512_storeu_ps(dst + (4 + m) * ldd, _mm512_shuffle_f32x4(s1, s3, 0x88));
        _mm512_storeu_ps(dst + (8 + m) * ldd, _mm512_shuffle_f32x4(s0, s2, 0xdd));
        _mm512_storeu_ps(dst + (12 + m) * ldd, _mm512_shuffle_f32x4(s1, s3, 0xdd));
    }
}

/* 8 x 8 doubles: 64-bit interleaves, then two rounds of 128-bit lane shuffles */
CRNN_AVX512 void crnn_transpose8_f64(const double *src, Py_ssize_t lds, double *dst,
                                     Py_ssize_t ldd) {
    __m512d r[8], t[8];
    for (int i = 0; i < 8; i++) r[i] = _mm512_loadu_pd(src + i * lds);
    for (int k = 0; k < 4; k++) {
        t[2 * k] = _mm512_unpacklo_pd(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_pd(r[2 * k], r[2 * k + 1]);
    }
    /* t[2g + m], lane L: column 2L + m of rows 2g, 2g+1 */
    for (int m = 0; m < 2; m++) {
        __m512d s0 = _mm512_shuffle_f64x2(t[m], t[2 + m], 0x88);
        __m512d s1 = _mm512_shuffle_f64x2(t[m], t[2 + m], 0xdd);
        __m512d s2 = _mm512_shuffle_f64x2(t[4 + m], t[6 + m], 0x88);
        __m512d s3 = _mm512_shuffle_f64x2(t[4 + m], t[6 + m], 0xdd);
        _mm512_storeu_pd(dst + m * ldd, _mm512_shuffle_f64x2(s0, s2, 0x88));
        _mm512_storeu_pd(dst + (2 + m) * ldd, _mm512_shuffle_f64x2(s1, s3, 0x88));
        _mm512_storeu_pd(dst + (4 + m) * ldd, _mm512_shuffle_f64x2(s0, s2, 0xdd));
        _mm512_storeu_pd(dst + (6 + m) * ldd, _mm512_shuffle_f64x2(s1, s3, 0xdd));
    }
}

#define CRNN_DEFINE_TRANSPOSE512(SUFFIX, T, W, TILE)                                          \
__attribute__((target("avx512f,fma"))) static void crnn_transpose_##SUFFIX##_avx512(          \
        int rows, int cols, const T *src, Py_ssize_t lds, T *dst, Py_ssize_t ldd) {           \
    const int rf = rows / W * W, cf = cols / W * W;                                           \
    for (int i0 = 0; i0 < rf; i0 += W)                                                        \
        for (int j0 = 0; j0 < cf; j0 += W)                                                    \
            TILE(src + (Py_ssize_t)i0 * lds + j0, lds, dst + (Py_ssize_t)j0 * ldd + i0, ldd); \
    if (cf < cols)      /* the last columns of every row */                                   \
        crnn_transpose_##SUFFIX##_body(rows, cols - cf, src + cf, lds,                        \
                                       dst + (Py_ssize_t)cf * ldd, ldd);                      \
    if (rf < rows)      /* the last rows' first cf columns */                                 \
        crnn_transpose_##SUFFIX##_body(rows - rf, cf, src + (Py_ssize_t)rf * lds, lds,        \
                                       dst + rf, ldd);                                        \
}
CRNN_DEFINE_TRANSPOSE512(f32, float, 16, crnn_transpose16_f32)
CRNN_DEFINE_TRANSPOSE512(f64, double, 8, crnn_transpose8_f64)
#endif
CRNN_MULTIVERSION_OWN512(crnn_transpose_f32, (int rows, int cols, const float *src,
                         Py_ssize_t lds, float *dst, Py_ssize_t ldd),
                         (rows, cols, src, lds, dst, ldd))
CRNN_MULTIVERSION_OWN512(crnn_transpose_f64, (int rows, int cols, const double *src,
                         Py_ssize_t lds, double *dst, Py_ssize_t ldd),
                         (rows, cols, src, lds, dst, ldd))

/* acc[r][v] += A[r, :k] @ Bpanel[:, off + v*VW ...] for R rows and V vectors; b rows are
 * PS elements apart (the panel width). */
#define CRNN_DEFINE_BLOCK(NAME, T, VT, R, V)                                                  \
CRNN_INLINE void NAME(int k, const T *a, int lda, const T *bp, int ps, T *c, int ldc) {       \
    const int vw = (int)(sizeof(VT) / sizeof(T));                                             \
    VT acc[R][V], bv[V];                                                                      \
    _Pragma("GCC unroll 8") for (int r = 0; r < R; r++)                                       \
        _Pragma("GCC unroll 4") for (int v = 0; v < V; v++)                                   \
            memcpy(&acc[r][v], c + (Py_ssize_t)r * ldc + v * vw, sizeof(VT));                 \
    for (int p = 0; p < k; p++, bp += ps) {                                                   \
        /* B comes from L3 on a block's first pass: fetch 8 rows ahead (both its lines) */    \
        __builtin_prefetch(bp + 8 * ps);                                                      \
        __builtin_prefetch(bp + 8 * ps + 64 / sizeof(T));                                     \
        _Pragma("GCC unroll 4") for (int v = 0; v < V; v++)                                   \
            memcpy(&bv[v], bp + v * vw, sizeof(VT));                                          \
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {                                 \
            T av = a[(Py_ssize_t)r * lda + p];                                                \
            _Pragma("GCC unroll 4") for (int v = 0; v < V; v++) acc[r][v] += av * bv[v];      \
        }                                                                                     \
    }                                                                                         \
    _Pragma("GCC unroll 8") for (int r = 0; r < R; r++)                                       \
        _Pragma("GCC unroll 4") for (int v = 0; v < V; v++)                                   \
            memcpy(c + (Py_ssize_t)r * ldc + v * vw, &acc[r][v], sizeof(VT));                 \
}

/* R rows (2-3: a batch of 2 or 3 rows) over two sub-panels of 2 vectors at once, b0 and b1
 * (their rows PS elements apart), whose columns are consecutive in C: 4R accumulators
 * where one sub-panel's 2R are too few to hide the FMAs' latency. */
#define CRNN_DEFINE_BLOCK2(NAME, T, VT, R)                                                    \
CRNN_INLINE void NAME(int k, const T *a, int lda, const T *b0, const T *b1, int ps, T *c,    \
                      int ldc) {                                                              \
    const int vw = (int)(sizeof(VT) / sizeof(T));                                             \
    VT acc[R][4], bv[4];                                                                      \
    _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                       \
        _Pragma("GCC unroll 4") for (int v = 0; v < 4; v++)                                   \
            memcpy(&acc[r][v], c + (Py_ssize_t)r * ldc + v * vw, sizeof(VT));                 \
    for (int p = 0; p < k; p++, b0 += ps, b1 += ps) {                                         \
        __builtin_prefetch(b0 + 8 * ps);                                                      \
        __builtin_prefetch(b1 + 8 * ps);                                                      \
        memcpy(&bv[0], b0, sizeof(VT));                                                       \
        memcpy(&bv[1], b0 + vw, sizeof(VT));                                                  \
        memcpy(&bv[2], b1, sizeof(VT));                                                       \
        memcpy(&bv[3], b1 + vw, sizeof(VT));                                                  \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {                                 \
            T av = a[(Py_ssize_t)r * lda + p];                                                \
            _Pragma("GCC unroll 4") for (int v = 0; v < 4; v++) acc[r][v] += av * bv[v];      \
        }                                                                                     \
    }                                                                                         \
    _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                       \
        _Pragma("GCC unroll 4") for (int v = 0; v < 4; v++)                                   \
            memcpy(c + (Py_ssize_t)r * ldc + v * vw, &acc[r][v], sizeof(VT));                 \
}

/* One row of C over NP consecutive full panels (pstride elements apart) at once. */
#define CRNN_DEFINE_ROW_BLOCK(NAME, T, VT, NP, V)                                             \
CRNN_INLINE void NAME(int k, const T *a, const T *bp, int pw, Py_ssize_t pstride, T *c) {    \
    const int vw = (int)(sizeof(VT) / sizeof(T));                                             \
    VT acc[NP][V], bv;                                                                        \
    _Pragma("GCC unroll 4") for (int q = 0; q < NP; q++)                                      \
        _Pragma("GCC unroll 4") for (int v = 0; v < V; v++)                                   \
            memcpy(&acc[q][v], c + q * pw + v * vw, sizeof(VT));                              \
    for (int p = 0; p < k; p++, bp += pw) {                                                   \
        T av = a[p];                                                                          \
        _Pragma("GCC unroll 4") for (int q = 0; q < NP; q++)                                  \
            _Pragma("GCC unroll 4") for (int v = 0; v < V; v++) {                             \
                memcpy(&bv, bp + q * pstride + v * vw, sizeof(VT));                           \
                acc[q][v] += av * bv;                                                         \
            }                                                                                 \
    }                                                                                         \
    _Pragma("GCC unroll 4") for (int q = 0; q < NP; q++)                                      \
        _Pragma("GCC unroll 4") for (int v = 0; v < V; v++)                                   \
            memcpy(c + q * pw + v * vw, &acc[q][v], sizeof(VT));                             \
}

/* The driver, for one vector width VB (bytes): RB-row blocks of 2 vectors over each
 * sub-panel (a panel row is HV = PW / VW vectors), then the r rows left over: after a full
 * block, 2-3 rows (and, where RB is 8, one row) make the last RB + r rows two blocks of
 * about half (a block of fewer than 4 rows has too few accumulators to hide the FMAs'
 * latency); other counts one block of r rows; a batch of 2 or 3 rows runs over two
 * sub-panels at once (CRNN_DEFINE_BLOCK2); one row alone (a batch of one row, or one
 * after 4-row blocks) runs over NP panels at once. The partial last panel goes through a
 * tile. (The rows left over went one at a time over all the panels before, each reading
 * the whole B again from L2 or L3: LSTM and GRU inference at (10, 50, 20, 300) now take
 * 0.83x the time, and batches of 2-3 rows 0.61-0.79x; bench/ab.py pairs, bench/RESULTS.md,
 * seventh session.) Every block makes the same sums in the same order, so a row's result
 * does not depend on its block. */
#define CRNN_DEFINE_PACKED_GEMM_BODY(NAME, T, VB, RB, NP)                                     \
typedef T NAME##_vt __attribute__((vector_size(VB)));                                         \
enum { NAME##_pw = CRNN_PANEL_BYTES / (int)sizeof(T), NAME##_vw = VB / (int)sizeof(T),        \
       NAME##_hv = NAME##_pw / NAME##_vw };                                                   \
CRNN_DEFINE_BLOCK(NAME##_blk_main, T, NAME##_vt, RB, 2)                                       \
CRNN_DEFINE_BLOCK(NAME##_blk_r1, T, NAME##_vt, 1, 2)                                          \
CRNN_DEFINE_BLOCK(NAME##_blk_r2, T, NAME##_vt, 2, 2)                                          \
CRNN_DEFINE_BLOCK(NAME##_blk_r3, T, NAME##_vt, 3, 2)                                          \
CRNN_DEFINE_BLOCK(NAME##_blk_4, T, NAME##_vt, 4, 2)                                           \
CRNN_DEFINE_BLOCK(NAME##_blk_r5, T, NAME##_vt, 5, 2)                                          \
CRNN_DEFINE_BLOCK(NAME##_blk_r6, T, NAME##_vt, 6, 2)                                          \
CRNN_DEFINE_BLOCK(NAME##_blk_r7, T, NAME##_vt, 7, 2)                                          \
CRNN_DEFINE_BLOCK(NAME##_blk_1, T, NAME##_vt, 1, NAME##_hv)                                   \
CRNN_DEFINE_BLOCK2(NAME##_blk2_r2, T, NAME##_vt, 2)                                           \
CRNN_DEFINE_BLOCK2(NAME##_blk2_r3, T, NAME##_vt, 3)                                           \
CRNN_DEFINE_ROW_BLOCK(NAME##_row, T, NAME##_vt, NP, NAME##_hv)                                \
/* a block of r rows, 1 <= r <= 7 (blocks of 5-7 rows only where RB is 8) */                 \
CRNN_INLINE void NAME##_blk_rows(int r, int k, const T *a, int lda, const T *bp, int ps,      \
                                 T *c, int ldc) {                                             \
    switch (r) {                                                                              \
        case 1: NAME##_blk_r1(k, a, lda, bp, ps, c, ldc); break;                              \
        case 2: NAME##_blk_r2(k, a, lda, bp, ps, c, ldc); break;                              \
        case 3: NAME##_blk_r3(k, a, lda, bp, ps, c, ldc); break;                              \
        case 4: NAME##_blk_4(k, a, lda, bp, ps, c, ldc); break;                               \
        case 5: if (RB > 5) NAME##_blk_r5(k, a, lda, bp, ps, c, ldc); break;                  \
        case 6: if (RB > 6) NAME##_blk_r6(k, a, lda, bp, ps, c, ldc); break;                  \
        case 7: if (RB > 7) NAME##_blk_r7(k, a, lda, bp, ps, c, ldc); break;                  \
        default: break;                                                                       \
    }                                                                                         \
}                                                                                             \
CRNN_INLINE void NAME(int m, int n, int k, const T *a, int lda, const T *packed, int kp,      \
                      T *c, int ldc) {                                                        \
    const int pw = NAME##_pw, vw = NAME##_vw;                                                 \
    const Py_ssize_t ps = (Py_ssize_t)pw * kp;   /* panel stride */                           \
    const int full = n / pw, panels = (n + pw - 1) / pw, cols = n - full * pw;                \
    /* RB-row blocks, then the rest: r rows, or two blocks of the last RB + r (tail2), or  \
     * one row alone (below) */                                                             \
    const int r = m % RB;                                                                     \
    const int tail2 = m > RB && ((r >= 2 && r <= 3) || (r == 1 && RB >= 8));                  \
    const int main_rows = tail2 ? m - RB - r : m - r, half = (RB + r) / 2;                    \
    int i, q, s;                                                                              \
    /* a batch of 2 or 3 rows: two sub-panels at once (j: sub-panels of 2 vectors, in     \
     * order; a sub-panel's columns in C are j * 2 * vw on), the last odd one below */       \
    const int spp = pw / (2 * vw), sub = full * spp;       /* sub-panels: per panel, all */ \
    int j = 0;                                                                                \
    if (m == 2 || m == 3)                                                                     \
        for (; j + 1 < sub; j += 2) {                                                         \
            const T *b0 = packed + (j / spp) * ps + (j % spp) * 2 * vw;                       \
            const T *b1 = packed + ((j + 1) / spp) * ps + ((j + 1) % spp) * 2 * vw;           \
            if (m == 2)                                                                       \
                NAME##_blk2_r2(k, a, lda, b0, b1, pw, c + j * 2 * vw, ldc);                   \
            else                                                                              \
                NAME##_blk2_r3(k, a, lda, b0, b1, pw, c + j * 2 * vw, ldc);                   \
        }                                                                                     \
    /* whole panels, blocks of rows: panel outside, so its B stays in L1 across rows */      \
    for (q = j / spp; q < full && m > 1; q++) {                                               \
        const T *bp = packed + q * ps;                                                        \
        for (s = 0; s < pw; s += 2 * vw) {                                                    \
            T *cq = c + q * pw + s;                                                           \
            for (i = 0; i < main_rows; i += RB)                                               \
                NAME##_blk_main(k, a + (Py_ssize_t)i * lda, lda, bp + s, pw,                  \
                                cq + (Py_ssize_t)i * ldc, ldc);                               \
            if (tail2) {                                                                      \
                NAME##_blk_rows(half, k, a + (Py_ssize_t)i * lda, lda, bp + s, pw,            \
                                cq + (Py_ssize_t)i * ldc, ldc);                               \
                i += half;                                                                    \
                NAME##_blk_rows(RB + r - half, k, a + (Py_ssize_t)i * lda, lda, bp + s, pw,   \
                                cq + (Py_ssize_t)i * ldc, ldc);                               \
            } else if (r > 1) {                                                               \
                NAME##_blk_rows(r, k, a + (Py_ssize_t)i * lda, lda, bp + s, pw,               \
                                cq + (Py_ssize_t)i * ldc, ldc);                               \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
    /* one row alone (a batch of one row, or one left over after RB = 4-row blocks, where \
     * a block of 2 or 3 rows has too few accumulators): over the whole panels, NP at once */\
    if (r == 1 && !tail2) {                                                                   \
        const T *al = a + (Py_ssize_t)(m - 1) * lda;                                          \
        T *cl = c + (Py_ssize_t)(m - 1) * ldc;                                                \
        for (q = 0; q + NP <= full; q += NP)                                                  \
            NAME##_row(k, al, packed + q * ps, pw, ps, cl + q * pw);                          \
        for (; q < full; q++)                                                                 \
            NAME##_blk_1(k, al, lda, packed + q * ps, pw, cl + q * pw, ldc);                  \
    }                                                                                         \
    /* the partial last panel: through a zero-padded tile of 4 rows (a block of its rows, \
     * or one row over the panel's vectors) */                                              \
    if (panels > full) {                                                                      \
        T tile[4 * (CRNN_PANEL_BYTES / sizeof(T))];                                           \
        const T *bp = packed + full * ps;                                                     \
        const int j0 = full * pw;                                                             \
        for (i = 0; i < m; i += 4) {                                                          \
            int rows = m - i < 4 ? m - i : 4, r;                                              \
            memset(tile, 0, sizeof tile);                                                     \
            for (r = 0; r < rows; r++)                                                        \
                memcpy(tile + r * pw, c + (Py_ssize_t)(i + r) * ldc + j0, cols * sizeof(T));  \
            if (rows > 1) {                                                                   \
                for (s = 0; s < cols; s += 2 * vw)                                            \
                    NAME##_blk_rows(rows, k, a + (Py_ssize_t)i * lda, lda, bp + s, pw,        \
                                    tile + s, pw);                                            \
            } else {                                                                          \
                for (r = 0; r < rows; r++)                                                    \
                    NAME##_blk_1(k, a + (Py_ssize_t)(i + r) * lda, lda, bp, pw,               \
                                 tile + r * pw, pw);                                          \
            }                                                                                 \
            for (r = 0; r < rows; r++)                                                        \
                memcpy(c + (Py_ssize_t)(i + r) * ldc + j0, tile + r * pw, cols * sizeof(T));  \
        }                                                                                     \
    }                                                                                         \
}

/* C += A @ B on a B packed whole (all k rows, panels of kp = k rows), cache-blocked: NC
 * columns of B by KC rows (a KC x NC block of B, at most 1 MiB, stays in L2; a KC x 128-byte
 * panel slice in L1) by MC rows of A (an MC x KC slice of A stays in L2). PG is the packed
 * kernel of one vector width. */
#define CRNN_DEFINE_GEMM_BLOCKED(NAME, PG, T)                                                 \
CRNN_INLINE void NAME(int m, int n, int k, const T *a, int lda, const T *packed, T *c,        \
                      int ldc) {                                                              \
    const int pw = CRNN_PANEL_BYTES / (int)sizeof(T), KC = 256, MC = 96;                      \
    const int NC = CRNN_GEMM_NC_BYTES / (int)sizeof(T);                                       \
    for (int n0 = 0; n0 < n; n0 += NC)                                                        \
        for (int p0 = 0; p0 < k; p0 += KC)                                                    \
            for (int i0 = 0; i0 < m; i0 += MC)                                                \
                PG(m - i0 < MC ? m - i0 : MC, n - n0 < NC ? n - n0 : NC,                      \
                   k - p0 < KC ? k - p0 : KC, a + (Py_ssize_t)i0 * lda + p0, lda,             \
                   packed + (Py_ssize_t)n0 * k + (Py_ssize_t)p0 * pw, k,                      \
                   c + (Py_ssize_t)i0 * ldc + n0, ldc);                                       \
}

#define CRNN_DEFINE_SMALL_GEMM(SUFFIX, T)                                                     \
static Py_ssize_t crnn_packed_size_##SUFFIX(int k, int n) {                                   \
    const int pw = CRNN_PANEL_BYTES / (int)sizeof(T);                                         \
    return (Py_ssize_t)k * ((n + pw - 1) / pw) * pw;                                          \
}                                                                                             \
static void crnn_pack_sum_##SUFFIX(int k, int n, const T *b, int ldb, T *packed, T *colsum);  \
static void crnn_pack_##SUFFIX(int k, int n, const T *b, int ldb, T *packed) {                \
    crnn_pack_sum_##SUFFIX(k, n, b, ldb, packed, NULL);                                       \
}                                                                                             \
/* ... and, unless colsum is NULL, colsum[j] += B[p, j] for p = 0, 1, ... in that order (the \
 * sums of a bias gradient, on rows the whole product packs anyway) */                       \
CRNN_INLINE void crnn_pack_sum_##SUFFIX##_body(int k, int n, const T *b, int ldb, T *packed,  \
                                               T *colsum) {                                   \
    /* CRNN_PACK_ROWS rows of B at a time, panel by panel within them: the reads run along \
     * that many rows of B (read panel by panel over all k rows, a B of 16 KiB rows missed \
     * the TLB at every row), the writes fill one panel's consecutive bytes (row by row,  \
     * every row wrote to all n / PW panels at once). Each 128-byte piece is a            \
     * constant-size copy (inlined vector moves), or streamed past the caches when the    \
     * packed B is too large for them (crnn_copy_panel_row). */                           \
    const int pw = CRNN_PANEL_BYTES / (int)sizeof(T), full = n / pw, cols = n - full * pw; \
    const Py_ssize_t ps = (Py_ssize_t)pw * k;                                                 \
    const int stream = crnn_pack_streams((size_t)crnn_packed_size_##SUFFIX(k, n) * sizeof(T), \
                                         packed);                                           \
    for (int p0 = 0; p0 < k; p0 += CRNN_PACK_ROWS) {                                          \
        const int rows = k - p0 < CRNN_PACK_ROWS ? k - p0 : CRNN_PACK_ROWS;                   \
        for (int q = 0; q < full; q++) {                                                      \
            const T *src = b + (Py_ssize_t)p0 * ldb + q * pw;                                 \
            T *dst = packed + q * ps + (Py_ssize_t)p0 * pw;                                   \
            for (int p = 0; p < rows; p++, src += ldb, dst += pw)                            \
                crnn_copy_panel_row(dst, src, stream);                                        \
            if (colsum) {     /* in registers across the rows (a local copy: no aliasing) */ \
                T acc[CRNN_PANEL_BYTES / sizeof(T)];                                          \
                memcpy(acc, colsum + q * pw, CRNN_PANEL_BYTES);                               \
                src = b + (Py_ssize_t)p0 * ldb + q * pw;                                      \
                for (int p = 0; p < rows; p++, src += ldb)                                    \
                    for (int j = 0; j < pw; j++) acc[j] += src[j];                            \
                memcpy(colsum + q * pw, acc, CRNN_PANEL_BYTES);                               \
            }                                                                                 \
        }                                                                                     \
        if (cols)                                                                             \
            for (int p = p0; p < p0 + rows; p++) {                                            \
                T *dst = packed + full * ps + (Py_ssize_t)p * pw;                             \
                const T *src = b + (Py_ssize_t)p * ldb + full * pw;                           \
                memcpy(dst, src, cols * sizeof(T));                                           \
                memset(dst + cols, 0, (pw - cols) * sizeof(T));                               \
                if (colsum)                                                                   \
                    for (int j = 0; j < cols; j++) colsum[full * pw + j] += src[j];           \
            }                                                                                 \
    }                                                                                         \
    crnn_pack_stream_end(stream);                                                             \
}                                                                                             \
/* (built for each ISA: the panel rows' copies and sums in the widest vectors, 64-byte      \
 * moves on AVX-512 where the baseline build made 16-byte ones) */                          \
CRNN_MULTIVERSION(crnn_pack_sum_##SUFFIX,                                                     \
                  (int k, int n, const T *b, int ldb, T *packed, T *colsum),                  \
                  (k, n, b, ldb, packed, colsum))                                             \
CRNN_DEFINE_PACKED_GEMM_BODY(crnn_pg32_##SUFFIX, T, 32, 4, 2)                                 \
CRNN_DEFINE_PACKED_GEMM_BODY(crnn_pg64_##SUFFIX, T, 64, 8, 4)                                 \
CRNN_DEFINE_GEMM_BLOCKED(crnn_gemm_blocked_##SUFFIX##_512, crnn_pg64_##SUFFIX, T)           \
CRNN_DEFINE_GEMM_BLOCKED(crnn_gemm_blocked_##SUFFIX##_256, crnn_pg32_##SUFFIX, T)           \
CRNN_INLINE void crnn_pg64_##SUFFIX##_whole(int m, int n, int k, const T *a, int lda,         \
                                           const T *packed, T *c, int ldc) {                 \
    crnn_pg64_##SUFFIX(m, n, k, a, lda, packed, k, c, ldc);                                   \
}                                                                                             \
CRNN_INLINE void crnn_pg32_##SUFFIX##_whole(int m, int n, int k, const T *a, int lda,         \
                                           const T *packed, T *c, int ldc) {                 \
    crnn_pg32_##SUFFIX(m, n, k, a, lda, packed, k, c, ldc);                                   \
}                                                                                             \
CRNN_MULTIVERSION2(crnn_packed_gemm_##SUFFIX, crnn_pg64_##SUFFIX##_whole,                     \
                   crnn_pg32_##SUFFIX##_whole,                                                \
                   (int m, int n, int k, const T *a, int lda, const T *packed, T *c, int ldc),\
                   (m, n, k, a, lda, packed, c, ldc))                                         \
CRNN_MULTIVERSION2(crnn_gemm_blocked_##SUFFIX, crnn_gemm_blocked_##SUFFIX##_512,              \
                   crnn_gemm_blocked_##SUFFIX##_256,                                          \
                   (int m, int n, int k, const T *a, int lda, const T *packed, T *c, int ldc),\
                   (m, n, k, a, lda, packed, c, ldc))

/* Like CRNN_MULTIVERSION, but the AVX-512 build runs a different body (64-byte vectors)
 * than the AVX2 and portable builds (32-byte vectors). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CRNN_MULTIVERSION2(NAME, BODY512, BODY, PARAMS, ARGS)                                 \
    __attribute__((target("avx512f,fma"))) static void NAME##_avx512 PARAMS { BODY512 ARGS; } \
    __attribute__((target("avx2,fma"))) static void NAME##_avx2 PARAMS { BODY ARGS; }         \
    static void NAME##_base PARAMS { BODY ARGS; }                                             \
    static void NAME PARAMS {                                                                 \
        switch (crnn_isa()) {                                                                 \
            case 2: NAME##_avx512 ARGS; return;                                               \
            case 1: NAME##_avx2 ARGS; return;                                                 \
            default: NAME##_base ARGS; return;                                                \
        }                                                                                     \
    }
#else
#define CRNN_MULTIVERSION2(NAME, BODY512, BODY, PARAMS, ARGS) static void NAME PARAMS { BODY ARGS; }
#endif

/* Whole-sequence products (input projection, input and weight gradients) on crnn's own
 * kernel, so their speed does not depend on which BLAS kernel is loaded:
 * C[m, n] = op(A) @ op(B) + beta * C with beta 0 or 1, row-major, op = transpose when
 * trans_*. As GotoBLAS does, k runs in blocks of CRNN_GEMM_KC rows and n in blocks of
 * CRNN_GEMM_NC_BYTES of columns: each block of B is packed into panels (transposing on the
 * way when trans_b) into a buffer that stays in L2 (256 KiB-1 MiB), and a
 * transposed A's block is copied row-major (crnn_transpose_*). The buffers belong to the calling thread and are kept between
 * calls (no page faults of fresh memory at each call; they grow to the largest product
 * seen). Returns -1 (nothing done) if they cannot be allocated; the caller then uses
 * BLAS. */
#define CRNN_GEMM_KC 256
#if defined(_MSC_VER)
#define CRNN_TLS __declspec(thread)
#else
#define CRNN_TLS __thread
#endif
#define CRNN_DEFINE_OWN_GEMM(SUFFIX, T)                                                       \
static CRNN_TLS T *crnn_gemm_buf_##SUFFIX = NULL;                                             \
static CRNN_TLS size_t crnn_gemm_cap_##SUFFIX = 0;                                            \
static T *crnn_gemm_buffer_##SUFFIX(size_t count) {                                          \
    if (count > crnn_gemm_cap_##SUFFIX) {                                                     \
        T *grown = (T *)malloc(count * sizeof(T) + 64);                                       \
        if (grown == NULL) return NULL;                                                       \
        free(crnn_gemm_buf_##SUFFIX);                                                         \
        crnn_gemm_buf_##SUFFIX = grown;                                                       \
        crnn_gemm_cap_##SUFFIX = count;                                                       \
    }                                                                                         \
    return crnn_gemm_buf_##SUFFIX;                                                            \
}                                                                                             \
static int crnn_gemm_sum_##SUFFIX(int trans_a, int trans_b, int m, int n, int k, const T *a,  \
                                  int lda, const T *b, int ldb, T beta, T *c, int ldc,        \
                                  T *colsum) {                                                \
    const int pw = CRNN_PANEL_BYTES / (int)sizeof(T), KC = CRNN_GEMM_KC;                      \
    const int NC = CRNN_GEMM_NC_BYTES / (int)sizeof(T);      /* a multiple of pw */           \
    const int kc_max = k < KC ? k : KC;                                                       \
    const size_t packed_len = (size_t)crnn_packed_size_##SUFFIX(kc_max, n < NC ? n : NC);     \
    /* the packed block, then (trans_a) the block of A transposed, 64-byte aligned */        \
    const size_t at_off = (packed_len + 15) & ~(size_t)15;                                    \
    T *buf = crnn_gemm_buffer_##SUFFIX(at_off + (trans_a ? (size_t)m * kc_max : 0) + 16);     \
    if (buf == NULL) return -1;                                                               \
    T *packed = (T *)(((uintptr_t)buf + 63) & ~(uintptr_t)63);                                \
    T *at = packed + at_off;                                                                  \
    if (beta == 0)                                                                            \
        for (int i = 0; i < m; i++) memset(c + (Py_ssize_t)i * ldc, 0, (size_t)n * sizeof(T));\
    if (trans_b) colsum = NULL;      /* (no caller asks for it) */                         \
    if (colsum) memset(colsum, 0, (size_t)n * sizeof(T));                                     \
    for (int p0 = 0; p0 < k; p0 += KC) {                                                      \
        const int kc = k - p0 < KC ? k - p0 : KC;                                             \
        const T *ablk;                                                                        \
        int ldab;                                                                             \
        if (trans_a) {    /* A[i, p] = a[p * lda + i]: rows p0.. of a, transposed */        \
            crnn_transpose_##SUFFIX(kc, m, a + (Py_ssize_t)p0 * lda, lda, at, kc);            \
            ablk = at;                                                                        \
            ldab = kc;                                                                        \
        } else {                                                                              \
            ablk = a + p0;                                                                    \
            ldab = lda;                                                                       \
        }                                                                                     \
        for (int n0 = 0; n0 < n; n0 += NC) {                                                  \
            const int nc = n - n0 < NC ? n - n0 : NC;                                         \
            if (trans_b) {    /* B[p, j] = b[j * ldb + p] */                                  \
                for (int j0 = 0; j0 < nc; j0 += pw) {                                         \
                    T *panel = packed + (Py_ssize_t)j0 * kc;                                  \
                    int w = nc - j0 < pw ? nc - j0 : pw;                                      \
                    if (w < pw) memset(panel, 0, (size_t)kc * pw * sizeof(T));                \
                    crnn_transpose_##SUFFIX(w, kc, b + (Py_ssize_t)(n0 + j0) * ldb + p0, ldb, \
                                            panel, pw);                                       \
                }                                                                             \
            } else {                                                                          \
                crnn_pack_sum_##SUFFIX(kc, nc, b + (Py_ssize_t)p0 * ldb + n0, ldb, packed,    \
                                       colsum ? colsum + n0 : NULL);                          \
            }                                                                                 \
            crnn_gemm_blocked_##SUFFIX(m, nc, kc, ablk, ldab, packed, c + n0, ldc);           \
        }                                                                                     \
    }                                                                                         \
    return 0;                                                                                 \
}                                                                                             \
static int crnn_gemm_##SUFFIX(int trans_a, int trans_b, int m, int n, int k, const T *a,      \
                              int lda, const T *b, int ldb, T beta, T *c, int ldc) {          \
    return crnn_gemm_sum_##SUFFIX(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc,    \
                                  NULL);                                                      \
}                                                                                             \
/* colsum[j] = B[0, j] + B[1, j] + ... in that order, for the k rows of a B (k, n): the sums \
 * crnn_gemm_sum makes while packing, where another kernel ran the product */              \
static void crnn_colsum_##SUFFIX(int k, int n, const T *b, int ldb, T *colsum) {              \
    memset(colsum, 0, (size_t)n * sizeof(T));                                                 \
    for (int p = 0; p < k; p++)                                                               \
        for (int j = 0; j < n; j++) colsum[j] += b[(Py_ssize_t)p * ldb + j];                  \
}

/* Products whose A is mostly zeros: one-hot inputs (a character model's input projection
 * x @ W and its weight gradient x^T @ dz), zero-padded timesteps. Each non-zero A[i, p]
 * adds A[i, p] * B[p, :] to C[i, :], for p in increasing order: the same fused
 * multiply-adds, in the same order, as the packed kernels' dense sums (a zero term only
 * adds +-0), so the result is theirs (up to the sign of a zero) at a cost in proportion
 * to A's non-zeros: for one-hot windows of 75 characters, 1/75 of the dense product.
 * crnn_sparse_gemm_* runs it when at most 1 in CRNN_SPARSE_DENSITY of A's entries is
 * non-zero (NaN counts as non-zero and propagates as in the dense product) and B has
 * rows of at least CRNN_SPARSE_MIN_N elements, and returns 1; else it returns 0 with C
 * untouched. Deciding reads at most the first 1/CRNN_SPARSE_DENSITY of A's entries
 * beyond its zeros, so a dense A costs a small fraction of its product to reject.
 * (A zero A[i, p] times an infinite or NaN B[p, j] is skipped here, where a dense
 * product would make C[i, j] NaN.) trans_a: A[i, p] = a[p * lda + i]; B is row-major. */
#define CRNN_SPARSE_DENSITY 8
#define CRNN_SPARSE_MIN_N 16
/* AVX-512: a row of ``a`` is searched for its non-zeros a vector at a time (a compare to a
 * bit mask, then its set bits in increasing order): the scalar search, a compare and a
 * branch per entry, took most of the product's time for one-hot rows (75 entries, one
 * non-zero). The same non-zeros in the same order, so the same sums. */
#ifdef CRNN_HAVE_AVX512
#define CRNN_DEFINE_SPARSE_ROWS512(SUFFIX, T, V, W, MT)                                        \
__attribute__((target("avx512f,fma"))) static void crnn_sparse_rows_##SUFFIX##_avx512(        \
        int trans_a, int m, int n, int k, const T *a, int lda, const T *b, int ldb, T *c,     \
        int ldc) {                                                                            \
    const int rows = trans_a ? k : m, len = trans_a ? m : k;                                  \
    for (int r = 0; r < rows; r++) {                                                          \
        const T *ar = a + (Py_ssize_t)r * lda;                                                \
        for (int j0 = 0; j0 < len; j0 += W) {                                                 \
            const int w = len - j0 < W ? len - j0 : W;                                        \
            const MT live = (MT)(w == W ? (MT)-1 : (MT)((1u << w) - 1u));                     \
            unsigned bits = (unsigned)_mm512_mask_cmp_##V##_mask(                             \
                live, _mm512_maskz_loadu_##V(live, ar + j0), _mm512_setzero_##V(),            \
                _CMP_NEQ_UQ);     /* NaN is a non-zero */                                     \
            while (bits) {                                                                    \
                const int j = j0 + __builtin_ctz(bits);                                       \
                bits &= bits - 1;                                                             \
                /* trans_a: A[j, r] (row r of a is column r of A); else A[r, j] */            \
                if (trans_a)                                                                  \
                    crnn_axpy_##SUFFIX(n, ar[j], b + (Py_ssize_t)r * ldb,                     \
                                       c + (Py_ssize_t)j * ldc);                              \
                else                                                                          \
                    crnn_axpy_##SUFFIX(n, ar[j], b + (Py_ssize_t)j * ldb,                     \
                                       c + (Py_ssize_t)r * ldc);                              \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
}
#define CRNN_SPARSE_ROWS512_f32 CRNN_DEFINE_SPARSE_ROWS512(f32, float, ps, 16, __mmask16)
#define CRNN_SPARSE_ROWS512_f64 CRNN_DEFINE_SPARSE_ROWS512(f64, double, pd, 8, __mmask8)
#else
#define CRNN_SPARSE_ROWS512_f32
#define CRNN_SPARSE_ROWS512_f64
#endif
#define CRNN_DEFINE_SPARSE_GEMM(SUFFIX, T)                                                    \
static int crnn_mostly_zero_##SUFFIX(int trans_a, int m, int k, const T *a, int lda) {       \
    const int rows = trans_a ? k : m, cols = trans_a ? m : k;                                 \
    const Py_ssize_t limit = (Py_ssize_t)m * k / CRNN_SPARSE_DENSITY;                         \
    Py_ssize_t count = 0;                                                                     \
    for (int r = 0; r < rows; r++) {                                                          \
        const T *ar = a + (Py_ssize_t)r * lda;                                                \
        int nonzero = 0;                                                                      \
        for (int j = 0; j < cols; j++) nonzero += ar[j] != 0;                                 \
        count += nonzero;                                                                     \
        if (count > limit) return 0;                                                          \
    }                                                                                         \
    return 1;                                                                                 \
}                                                                                             \
CRNN_INLINE void crnn_axpy_##SUFFIX(int n, T v, const T *restrict x, T *restrict y) {        \
    for (int j = 0; j < n; j++) y[j] += v * x[j];                                             \
}                                                                                             \
CRNN_INLINE void crnn_sparse_rows_##SUFFIX##_body(int trans_a, int m, int n, int k,           \
                                                  const T *a, int lda, const T *b, int ldb,   \
                                                  T *c, int ldc) {                            \
    if (trans_a) {              /* row p of a holds column p of A */                          \
        for (int p = 0; p < k; p++)                                                           \
            for (int i = 0; i < m; i++)                                                       \
                if (a[(Py_ssize_t)p * lda + i] != 0)                                          \
                    crnn_axpy_##SUFFIX(n, a[(Py_ssize_t)p * lda + i], b + (Py_ssize_t)p * ldb,\
                                       c + (Py_ssize_t)i * ldc);                              \
    } else {                                                                                  \
        for (int i = 0; i < m; i++)                                                           \
            for (int p = 0; p < k; p++)                                                       \
                if (a[(Py_ssize_t)i * lda + p] != 0)                                          \
                    crnn_axpy_##SUFFIX(n, a[(Py_ssize_t)i * lda + p], b + (Py_ssize_t)p * ldb,\
                                       c + (Py_ssize_t)i * ldc);                              \
    }                                                                                         \
}                                                                                             \
CRNN_SPARSE_ROWS512_##SUFFIX                                                                  \
CRNN_MULTIVERSION_OWN512(crnn_sparse_rows_##SUFFIX,                                           \
                         (int trans_a, int m, int n, int k, const T *a, int lda, const T *b,  \
                          int ldb, T *c, int ldc),                                            \
                         (trans_a, m, n, k, a, lda, b, ldb, c, ldc))                          \
static int crnn_sparse_gemm_##SUFFIX(int trans_a, int m, int n, int k, const T *a, int lda,   \
                                     const T *b, int ldb, T beta, T *c, int ldc) {            \
    if (m <= 0 || k <= 0 || n < CRNN_SPARSE_MIN_N                                             \
            || !crnn_mostly_zero_##SUFFIX(trans_a, m, k, a, lda))                             \
        return 0;                                                                             \
    if (beta == 0)                                                                            \
        for (int i = 0; i < m; i++) memset(c + (Py_ssize_t)i * ldc, 0, (size_t)n * sizeof(T));\
    crnn_sparse_rows_##SUFFIX(trans_a, m, n, k, a, lda, b, ldb, c, ldc);                      \
    return 1;                                                                                 \
}

CRNN_DEFINE_SMALL_GEMM(f32, float)
CRNN_DEFINE_SMALL_GEMM(f64, double)
CRNN_DEFINE_OWN_GEMM(f32, float)
CRNN_DEFINE_OWN_GEMM(f64, double)
CRNN_DEFINE_SPARSE_GEMM(f32, float)
CRNN_DEFINE_SPARSE_GEMM(f64, double)

#endif
