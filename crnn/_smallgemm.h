/* C[m, n] += A[m, k] @ B[k, n] (row-major, leading dimensions lda/ldb/ldc) for the small
 * per-timestep products of the recurrent kernels.
 *
 * For a batch of 1 to a few dozen rows, a BLAS GEMM call spends most of its time packing
 * B (the recurrent kernel) into its panel layout, again at every timestep. This kernel
 * reads B in place: a block of 4 rows x 2 vectors of columns of C stays in 8 registers
 * while k runs, so B is streamed once per 4 rows of A. The vectors are GCC vector
 * extensions of 32 bytes (one ymm register with AVX2/AVX-512, two xmm on the baseline);
 * CRNN_MULTIVERSION compiles the body for each instruction set (see _fastmath.h).
 */
#ifndef CRNN_SMALLGEMM_H
#define CRNN_SMALLGEMM_H

#include <string.h>
#include "_fastmath.h"

/* Products of at most this many multiply-adds use this kernel; larger ones go to BLAS,
 * whose packing pays off and which can use several threads. */
#ifndef CRNN_SMALL_GEMM_MAX_WORK
#define CRNN_SMALL_GEMM_MAX_WORK (1L << 21)
#endif

#define CRNN_LOAD(v, ptr) memcpy(&(v), (ptr), 32)
#define CRNN_STORE(ptr, v) memcpy((ptr), &(v), 32)

#define CRNN_DEFINE_SMALL_GEMM(NAME, T, VT)                                                  \
typedef T VT __attribute__((vector_size(32)));                                               \
CRNN_INLINE void NAME##_body(int m, int n, int k, const T *a, int lda, const T *b, int ldb,  \
                             T *c, int ldc) {                                                \
    const int w = (int)(32 / sizeof(T));   /* columns per vector */                          \
    int i0 = 0, j0 = 0, i, j, p;                                                             \
    for (j0 = 0; j0 + 2 * w <= n; j0 += 2 * w) {                                             \
        for (i0 = 0; i0 + 4 <= m; i0 += 4) {                                                 \
            VT c00, c01, c10, c11, c20, c21, c30, c31, b0, b1;                               \
            T *cr = c + i0 * ldc + j0;                                                       \
            CRNN_LOAD(c00, cr); CRNN_LOAD(c01, cr + w); cr += ldc;                           \
            CRNN_LOAD(c10, cr); CRNN_LOAD(c11, cr + w); cr += ldc;                           \
            CRNN_LOAD(c20, cr); CRNN_LOAD(c21, cr + w); cr += ldc;                           \
            CRNN_LOAD(c30, cr); CRNN_LOAD(c31, cr + w);                                      \
            const T *a0 = a + i0 * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;      \
            for (p = 0; p < k; p++) {                                                        \
                const T *bp = b + p * ldb + j0;                                              \
                CRNN_LOAD(b0, bp); CRNN_LOAD(b1, bp + w);                                    \
                c00 += a0[p] * b0; c01 += a0[p] * b1;                                        \
                c10 += a1[p] * b0; c11 += a1[p] * b1;                                        \
                c20 += a2[p] * b0; c21 += a2[p] * b1;                                        \
                c30 += a3[p] * b0; c31 += a3[p] * b1;                                        \
            }                                                                                \
            cr = c + i0 * ldc + j0;                                                          \
            CRNN_STORE(cr, c00); CRNN_STORE(cr + w, c01); cr += ldc;                         \
            CRNN_STORE(cr, c10); CRNN_STORE(cr + w, c11); cr += ldc;                         \
            CRNN_STORE(cr, c20); CRNN_STORE(cr + w, c21); cr += ldc;                         \
            CRNN_STORE(cr, c30); CRNN_STORE(cr + w, c31);                                    \
        }                                                                                    \
        for (; i0 < m; i0++) {   /* leftover rows, one at a time */                          \
            VT c00, c01, b0, b1;                                                             \
            T *cr = c + i0 * ldc + j0;                                                       \
            const T *a0 = a + i0 * lda;                                                      \
            CRNN_LOAD(c00, cr); CRNN_LOAD(c01, cr + w);                                      \
            for (p = 0; p < k; p++) {                                                        \
                const T *bp = b + p * ldb + j0;                                              \
                CRNN_LOAD(b0, bp); CRNN_LOAD(b1, bp + w);                                    \
                c00 += a0[p] * b0; c01 += a0[p] * b1;                                        \
            }                                                                                \
            CRNN_STORE(cr, c00); CRNN_STORE(cr + w, c01);                                    \
        }                                                                                    \
    }                                                                                        \
    for (i = 0; i < m && j0 < n; i++) {   /* leftover columns */                             \
        T *ci = c + i * ldc;                                                                 \
        for (p = 0; p < k; p++) {                                                            \
            const T *bp = b + p * ldb;                                                       \
            T av = a[i * lda + p];                                                           \
            for (j = j0; j < n; j++) ci[j] += av * bp[j];                                    \
        }                                                                                    \
    }                                                                                        \
}                                                                                            \
CRNN_MULTIVERSION(NAME, (int m, int n, int k, const T *a, int lda, const T *b, int ldb,      \
                         T *c, int ldc), (m, n, k, a, lda, b, ldb, c, ldc))

CRNN_DEFINE_SMALL_GEMM(crnn_small_gemm_f32, float, crnn_vec_f32)
CRNN_DEFINE_SMALL_GEMM(crnn_small_gemm_f64, double, crnn_vec_f64)

#endif
