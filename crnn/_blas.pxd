# Row-major GEMM over scipy.linalg.cython_blas, for float32 and float64 (fused type).
#
# BLAS is column-major; a row-major matrix is its transpose in column-major eyes, so
# C = op(A) @ op(B) is computed as C^T = op(B)^T @ op(A)^T by swapping the operands.
# This is the only place in crnn that thinks about Fortran order.

from cython cimport floating
from scipy.linalg.cython_blas cimport dgemm, sgemm


cdef inline void gemm(bint trans_a, bint trans_b, int m, int n, int k,
                      floating alpha, const floating *a, int lda,
                      const floating *b, int ldb,
                      floating beta, floating *c, int ldc) noexcept nogil:
    """C[m, n] = alpha * op(A)[m, k] @ op(B)[k, n] + beta * C; lda/ldb/ldc are row strides."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    if floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float *> b, &ldb, <float *> a, &lda,
              &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double *> b, &ldb, <double *> a, &lda,
              &beta, c, &ldc)


cdef extern from "_smallgemm.h" nogil:
    void crnn_small_gemm_f32(int m, int n, int k, const float *a, int lda, const float *b,
                             int ldb, float *c, int ldc)
    void crnn_small_gemm_f64(int m, int n, int k, const double *a, int lda,
                             const double *b, int ldb, double *c, int ldc)
    # Products of at most this many multiply-adds go to the small kernel (see bench/).
    long CRNN_SMALL_GEMM_MAX_WORK


cdef inline void gemm_acc(int m, int n, int k, const floating *a, int lda,
                          const floating *b, int ldb, floating *c, int ldc) noexcept nogil:
    """C[m, n] += A[m, k] @ B[k, n]: the per-timestep recurrent product.

    Small products go to _smallgemm.h, which reads B in place instead of packing it on
    every call as BLAS does; larger ones go to BLAS (threaded, cache-blocked)."""
    if <long> m * n * k <= CRNN_SMALL_GEMM_MAX_WORK:
        if floating is float:
            crnn_small_gemm_f32(m, n, k, a, lda, b, ldb, c, ldc)
        else:
            crnn_small_gemm_f64(m, n, k, a, lda, b, ldb, c, ldc)
    else:
        gemm(False, False, m, n, k, 1.0, a, lda, b, ldb, 1.0, c, ldc)
