/* C[m, n] += A[m, k] @ B[k, n] (row-major, leading dimensions lda/ldb/ldc) for the small
 * per-timestep products of the recurrent kernels.
 *
 * B (the recurrent kernel) is the same at every timestep, but a BLAS GEMM call packs it
 * into its panel layout again at each call: for small batches that packing is most of the
 * call, and for large ones still about a tenth. Here B is packed once per sequence
 * (crnn_pack_*), and each step's kernel streams the packed panels: a block of 4 rows x 2
 * vectors of columns of C stays in 8 registers while k runs. The vectors are GCC vector
 * extensions of 32 bytes (one ymm register with AVX2/AVX-512, two xmm on the baseline);
 * CRNN_MULTIVERSION compiles the body for each instruction set (see _fastmath.h).
 */
#ifndef CRNN_SMALLGEMM_H
#define CRNN_SMALLGEMM_H

#include <string.h>
#include "_fastmath.h"

#define CRNN_LOAD(v, ptr) memcpy(&(v), (ptr), 32)
#define CRNN_STORE(ptr, v) memcpy((ptr), &(v), 32)

/* Packed layout of B (k x n, row-major, leading dimension ldb): panels of PW = 2 vectors of
 * columns; panel q holds rows 0..k-1 of columns [q*PW, q*PW + PW) back to back, so the
 * kernel reads it sequentially. Columns past the last whole panel are not packed; the
 * kernel reads them from B itself. The recurrent kernels pack once per call and then run
 * every timestep's product on the packed copy. */
#define CRNN_DEFINE_SMALL_GEMM(SUFFIX, T, VT)                                                \
typedef T VT __attribute__((vector_size(32)));                                               \
enum { crnn_pw_##SUFFIX = (int)(64 / sizeof(T)) };                                           \
                                                                                             \
static void crnn_pack_##SUFFIX(int k, int n, const T *b, int ldb, T *packed) {               \
    const int pw = crnn_pw_##SUFFIX;                                                         \
    for (int j0 = 0; j0 + pw <= n; j0 += pw)                                                 \
        for (int p = 0; p < k; p++, packed += pw)                                            \
            memcpy(packed, b + (Py_ssize_t)p * ldb + j0, pw * sizeof(T));                    \
}                                                                                            \
                                                                                             \
CRNN_INLINE void crnn_packed_gemm_##SUFFIX##_body(int m, int n, int k, const T *a, int lda,  \
                                                  const T *packed, const T *b, int ldb,      \
                                                  T *c, int ldc) {                           \
    const int pw = crnn_pw_##SUFFIX, w = pw / 2;                                             \
    const T *packed_all = packed;                                                            \
    int i0 = 0, j0 = 0, i, j, p;                                                             \
    for (j0 = 0; j0 + pw <= n; j0 += pw, packed += (Py_ssize_t)pw * k) {                     \
        for (i0 = 0; i0 + 4 <= m; i0 += 4) {                                                 \
            VT c00, c01, c10, c11, c20, c21, c30, c31, b0, b1;                               \
            T *cr = c + (Py_ssize_t)i0 * ldc + j0;                                           \
            CRNN_LOAD(c00, cr); CRNN_LOAD(c01, cr + w); cr += ldc;                           \
            CRNN_LOAD(c10, cr); CRNN_LOAD(c11, cr + w); cr += ldc;                           \
            CRNN_LOAD(c20, cr); CRNN_LOAD(c21, cr + w); cr += ldc;                           \
            CRNN_LOAD(c30, cr); CRNN_LOAD(c31, cr + w);                                      \
            const T *a0 = a + (Py_ssize_t)i0 * lda, *a1 = a0 + lda, *a2 = a1 + lda;          \
            const T *a3 = a2 + lda, *bp = packed;                                            \
            for (p = 0; p < k; p++, bp += pw) {                                              \
                CRNN_LOAD(b0, bp); CRNN_LOAD(b1, bp + w);                                    \
                c00 += a0[p] * b0; c01 += a0[p] * b1;                                        \
                c10 += a1[p] * b0; c11 += a1[p] * b1;                                        \
                c20 += a2[p] * b0; c21 += a2[p] * b1;                                        \
                c30 += a3[p] * b0; c31 += a3[p] * b1;                                        \
            }                                                                                \
            cr = c + (Py_ssize_t)i0 * ldc + j0;                                              \
            CRNN_STORE(cr, c00); CRNN_STORE(cr + w, c01); cr += ldc;                         \
            CRNN_STORE(cr, c10); CRNN_STORE(cr + w, c11); cr += ldc;                         \
            CRNN_STORE(cr, c20); CRNN_STORE(cr + w, c21); cr += ldc;                         \
            CRNN_STORE(cr, c30); CRNN_STORE(cr + w, c31);                                    \
        }                                                                                    \
    }                                                                                        \
    /* Leftover rows (m % 4; all of a batch of 1), one at a time over 4 panels at once:     \
     * 8 independent accumulators, so the FMAs do not wait on each other. */                 \
    const int panels = n / pw, rows4 = m - m % 4;                                            \
    for (i = rows4; i < m; i++) {                                                            \
        const T *ai = a + (Py_ssize_t)i * lda;                                               \
        int q = 0;                                                                           \
        for (; q + 4 <= panels; q += 4) {                                                    \
            VT c0, c1, c2, c3, c4, c5, c6, c7, b0;                                           \
            T *cr = c + (Py_ssize_t)i * ldc + q * pw;                                        \
            const T *bp = packed_all + (Py_ssize_t)q * pw * k;                               \
            const Py_ssize_t ps = (Py_ssize_t)pw * k;   /* panel stride */                   \
            CRNN_LOAD(c0, cr); CRNN_LOAD(c1, cr + w); CRNN_LOAD(c2, cr + pw);                \
            CRNN_LOAD(c3, cr + pw + w); CRNN_LOAD(c4, cr + 2 * pw);                          \
            CRNN_LOAD(c5, cr + 2 * pw + w); CRNN_LOAD(c6, cr + 3 * pw);                      \
            CRNN_LOAD(c7, cr + 3 * pw + w);                                                  \
            for (p = 0; p < k; p++, bp += pw) {                                              \
                T av = ai[p];                                                                \
                CRNN_LOAD(b0, bp); c0 += av * b0;                                            \
                CRNN_LOAD(b0, bp + w); c1 += av * b0;                                        \
                CRNN_LOAD(b0, bp + ps); c2 += av * b0;                                       \
                CRNN_LOAD(b0, bp + ps + w); c3 += av * b0;                                   \
                CRNN_LOAD(b0, bp + 2 * ps); c4 += av * b0;                                   \
                CRNN_LOAD(b0, bp + 2 * ps + w); c5 += av * b0;                               \
                CRNN_LOAD(b0, bp + 3 * ps); c6 += av * b0;                                   \
                CRNN_LOAD(b0, bp + 3 * ps + w); c7 += av * b0;                               \
            }                                                                                \
            CRNN_STORE(cr, c0); CRNN_STORE(cr + w, c1); CRNN_STORE(cr + pw, c2);             \
            CRNN_STORE(cr + pw + w, c3); CRNN_STORE(cr + 2 * pw, c4);                        \
            CRNN_STORE(cr + 2 * pw + w, c5); CRNN_STORE(cr + 3 * pw, c6);                    \
            CRNN_STORE(cr + 3 * pw + w, c7);                                                 \
        }                                                                                    \
        for (; q < panels; q++) {                                                            \
            VT c0, c1, b0, b1;                                                               \
            T *cr = c + (Py_ssize_t)i * ldc + q * pw;                                        \
            const T *bp = packed_all + (Py_ssize_t)q * pw * k;                               \
            CRNN_LOAD(c0, cr); CRNN_LOAD(c1, cr + w);                                        \
            for (p = 0; p < k; p++, bp += pw) {                                              \
                CRNN_LOAD(b0, bp); CRNN_LOAD(b1, bp + w);                                    \
                c0 += ai[p] * b0; c1 += ai[p] * b1;                                          \
            }                                                                                \
            CRNN_STORE(cr, c0); CRNN_STORE(cr + w, c1);                                      \
        }                                                                                    \
    }                                                                                        \
    for (i = 0; i < m && j0 < n; i++) {   /* leftover columns, from B itself */              \
        T *ci = c + (Py_ssize_t)i * ldc;                                                     \
        for (p = 0; p < k; p++) {                                                            \
            const T *bp = b + (Py_ssize_t)p * ldb;                                           \
            T av = a[(Py_ssize_t)i * lda + p];                                               \
            for (j = j0; j < n; j++) ci[j] += av * bp[j];                                    \
        }                                                                                    \
    }                                                                                        \
}                                                                                            \
CRNN_MULTIVERSION(crnn_packed_gemm_##SUFFIX,                                                 \
                  (int m, int n, int k, const T *a, int lda, const T *packed, const T *b,    \
                   int ldb, T *c, int ldc),                                                  \
                  (m, n, k, a, lda, packed, b, ldb, c, ldc))

CRNN_DEFINE_SMALL_GEMM(f32, float, crnn_vec_f32)
CRNN_DEFINE_SMALL_GEMM(f64, double, crnn_vec_f64)

#endif
