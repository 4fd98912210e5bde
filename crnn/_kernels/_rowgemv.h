/* y[n] += x[k] @ W[k, n] (W row-major, row stride ldw): the one-row products of a
 * streaming step (crnn/_stream.pyx). BLAS and crnn's packed GEMM (_smallgemm.h) target
 * blocks of rows and pack W first; with a single row the work is a matrix-vector
 * product straight from W, register-blocked over 4 vectors of columns with two
 * accumulator sets (even and odd rows of W) to keep two FMA chains per register busy.
 * Built per instruction set with _fastmath.h's CRNN_MULTIVERSION.
 */
#ifndef CRNN_ROWGEMV_H
#define CRNN_ROWGEMV_H

#include <string.h>
#include "_fastmath.h"

#define CRNN_ROW_LOAD(v, ptr) memcpy(&(v), (ptr), 32)
#define CRNN_ROW_STORE(ptr, v) memcpy((ptr), &(v), 32)
#define CRNN_DEFINE_ROW_GEMV(NAME, T, VT)                                               \
typedef T VT __attribute__((vector_size(32)));                                          \
CRNN_INLINE void NAME##_body(int n, int k, const T *x, const T *w, int ldw, T *y) {     \
    const int v = (int)(32 / sizeof(T));                                                \
    int j0 = 0, j, p;                                                                   \
    for (; j0 + 4 * v <= n; j0 += 4 * v) {                                              \
        VT a0, a1, a2, a3, b;                                                           \
        VT e0 = {0}, e1 = {0}, e2 = {0}, e3 = {0};                                      \
        CRNN_ROW_LOAD(a0, y + j0); CRNN_ROW_LOAD(a1, y + j0 + v);                       \
        CRNN_ROW_LOAD(a2, y + j0 + 2 * v); CRNN_ROW_LOAD(a3, y + j0 + 3 * v);           \
        for (p = 0; p + 2 <= k; p += 2) {                                               \
            const T *r0 = w + (long)p * ldw + j0, *r1 = r0 + ldw;                       \
            T x0 = x[p], x1 = x[p + 1];                                                 \
            CRNN_ROW_LOAD(b, r0); a0 += x0 * b;                                         \
            CRNN_ROW_LOAD(b, r0 + v); a1 += x0 * b;                                     \
            CRNN_ROW_LOAD(b, r0 + 2 * v); a2 += x0 * b;                                 \
            CRNN_ROW_LOAD(b, r0 + 3 * v); a3 += x0 * b;                                 \
            CRNN_ROW_LOAD(b, r1); e0 += x1 * b;                                         \
            CRNN_ROW_LOAD(b, r1 + v); e1 += x1 * b;                                     \
            CRNN_ROW_LOAD(b, r1 + 2 * v); e2 += x1 * b;                                 \
            CRNN_ROW_LOAD(b, r1 + 3 * v); e3 += x1 * b;                                 \
        }                                                                               \
        if (p < k) {                                                                    \
            const T *r0 = w + (long)p * ldw + j0;                                       \
            T x0 = x[p];                                                                \
            CRNN_ROW_LOAD(b, r0); a0 += x0 * b;                                         \
            CRNN_ROW_LOAD(b, r0 + v); a1 += x0 * b;                                     \
            CRNN_ROW_LOAD(b, r0 + 2 * v); a2 += x0 * b;                                 \
            CRNN_ROW_LOAD(b, r0 + 3 * v); a3 += x0 * b;                                 \
        }                                                                               \
        a0 += e0; a1 += e1; a2 += e2; a3 += e3;                                         \
        CRNN_ROW_STORE(y + j0, a0); CRNN_ROW_STORE(y + j0 + v, a1);                     \
        CRNN_ROW_STORE(y + j0 + 2 * v, a2); CRNN_ROW_STORE(y + j0 + 3 * v, a3);         \
    }                                                                                   \
    for (; j0 + v <= n; j0 += v) {                                                      \
        VT a0, b;                                                                       \
        CRNN_ROW_LOAD(a0, y + j0);                                                      \
        for (p = 0; p < k; p++) {                                                       \
            CRNN_ROW_LOAD(b, w + (long)p * ldw + j0); a0 += x[p] * b;                   \
        }                                                                               \
        CRNN_ROW_STORE(y + j0, a0);                                                     \
    }                                                                                   \
    for (j = j0; j < n; j++) {                                                          \
        T s = y[j];                                                                     \
        for (p = 0; p < k; p++) s += x[p] * w[(long)p * ldw + j];                       \
        y[j] = s;                                                                       \
    }                                                                                   \
}                                                                                       \
CRNN_MULTIVERSION(NAME, (int n, int k, const T *x, const T *w, int ldw, T *y),          \
                  (n, k, x, w, ldw, y))

CRNN_DEFINE_ROW_GEMV(crnn_row_gemv_f32, float, crnn_row_vec_f32)
CRNN_DEFINE_ROW_GEMV(crnn_row_gemv_f64, double, crnn_row_vec_f64)

#endif
