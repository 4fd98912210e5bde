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
    Py_ssize_t crnn_packed_size_f32(int k, int n)
    Py_ssize_t crnn_packed_size_f64(int k, int n)
    void crnn_pack_f32(int k, int n, const float *b, int ldb, float *packed)
    void crnn_pack_f64(int k, int n, const double *b, int ldb, double *packed)
    void crnn_packed_gemm_f32(int m, int n, int k, const float *a, int lda,
                              const float *packed, float *c, int ldc)
    void crnn_packed_gemm_f64(int m, int n, int k, const double *a, int lda,
                              const double *packed, double *c, int ldc)
    void crnn_gemm_blocked_f32(int m, int n, int k, const float *a, int lda,
                               const float *packed, float *c, int ldc)
    void crnn_gemm_blocked_f64(int m, int n, int k, const double *a, int lda,
                               const double *packed, double *c, int ldc)
    void crnn_transpose_f32(int rows, int cols, const float *src, Py_ssize_t lds, float *dst,
                            Py_ssize_t ldd)
    void crnn_transpose_f64(int rows, int cols, const double *src, Py_ssize_t lds,
                            double *dst, Py_ssize_t ldd)
    int crnn_gemm_f32(int trans_a, int trans_b, int m, int n, int k, const float *a, int lda,
                      const float *b, int ldb, float beta, float *c, int ldc)
    int crnn_gemm_f64(int trans_a, int trans_b, int m, int n, int k, const double *a,
                      int lda, const double *b, int ldb, double beta, double *c, int ldc)
    int crnn_gemm_sum_f32(int trans_a, int trans_b, int m, int n, int k, const float *a,
                          int lda, const float *b, int ldb, float beta, float *c, int ldc,
                          float *colsum)
    int crnn_gemm_sum_f64(int trans_a, int trans_b, int m, int n, int k, const double *a,
                          int lda, const double *b, int ldb, double beta, double *c, int ldc,
                          double *colsum)
    void crnn_colsum_f32(int k, int n, const float *b, int ldb, float *colsum)
    void crnn_colsum_f64(int k, int n, const double *b, int ldb, double *colsum)
    int crnn_sparse_gemm_f32(int trans_a, int m, int n, int k, const float *a, int lda,
                             const float *b, int ldb, float beta, float *c, int ldc)
    int crnn_sparse_gemm_f64(int trans_a, int m, int n, int k, const double *a, int lda,
                             const double *b, int ldb, double beta, double *c, int ldc)


cdef inline Py_ssize_t packed_size(int k, int n, bint double_precision) noexcept nogil:
    """Length of the buffer that pack_b fills for a (k, n) B (panels zero-padded)."""
    if double_precision:
        return crnn_packed_size_f64(k, n)
    return crnn_packed_size_f32(k, n)


cdef inline void pack_b(int k, int n, const floating *b, int ldb,
                        floating *packed) noexcept nogil:
    """Copy B (k, n) into the panel layout that gemm_packed streams (see _smallgemm.h);
    ``packed`` holds packed_size(k, n) elements."""
    if floating is float:
        crnn_pack_f32(k, n, b, ldb, packed)
    else:
        crnn_pack_f64(k, n, b, ldb, packed)


cdef inline void gemm_packed(int m, int n, int k, const floating *a, int lda,
                             const floating *packed, floating *c, int ldc) noexcept nogil:
    """C[m, n] += A[m, k] @ B[k, n], with B given packed by pack_b: the per-timestep
    recurrent product."""
    if floating is float:
        crnn_packed_gemm_f32(m, n, k, a, lda, packed, c, ldc)
    else:
        crnn_packed_gemm_f64(m, n, k, a, lda, packed, c, ldc)


cdef inline bint sparse_gemm(bint trans_a, int m, int n, int k, const floating *a, int lda,
                             const floating *b, int ldb, floating beta, floating *c,
                             int ldc) noexcept nogil:
    """C[m, n] = op(A) @ B + beta * C (beta 0 or 1) by A's non-zeros alone, if A is mostly
    zeros (one-hot inputs; _smallgemm.h's CRNN_SPARSE_DENSITY): returns True then, else
    False with C untouched. The same sums in the same order as the packed kernels."""
    if floating is float:
        return crnn_sparse_gemm_f32(trans_a, m, n, k, a, lda, b, ldb, beta, c, ldc) != 0
    else:
        return crnn_sparse_gemm_f64(trans_a, m, n, k, a, lda, b, ldb, beta, c, ldc) != 0


cdef inline void gemm_packed_big(bint blas, int m, int n, int k, const floating *a,
                                 int lda, const floating *packed, const floating *b,
                                 int ldb, floating *c, int ldc) noexcept nogil:
    """C[m, n] += A[m, k] @ B[k, n] for a product with many rows (e.g. the input projection
    of a chunk of timesteps): by A's non-zeros alone where A is mostly zeros (sparse_gemm),
    else crnn's cache-blocked kernel on B packed once by pack_b, or BLAS on ``b`` itself
    when ``blas`` (several BLAS threads, or an AVX-512 BLAS kernel)."""
    if sparse_gemm(False, m, n, k, a, lda, b, ldb, 1.0, c, ldc):
        return
    if blas:
        gemm(False, False, m, n, k, 1.0, a, lda, b, ldb, 1.0, c, ldc)
    elif floating is float:
        crnn_gemm_blocked_f32(m, n, k, a, lda, packed, c, ldc)
    else:
        crnn_gemm_blocked_f64(m, n, k, a, lda, packed, c, ldc)


cdef enum:
    # A per-step product this large (multiply-adds) is worth sharing among BLAS threads.
    PARALLEL_STEP_WORK = 1 << 21


cdef inline void gemm_step(bint threaded, int m, int n, int k, const floating *a, int lda,
                           const floating *packed, const floating *b, int ldb,
                           floating *c, int ldc) noexcept nogil:
    """The per-timestep product C[m, n] += A[m, k] @ B[k, n]: crnn's packed kernel, or,
    when BLAS has several threads (``threaded``) and the product is large enough to share,
    the threaded BLAS (which then packs B itself)."""
    if threaded and <long> m * n * k >= PARALLEL_STEP_WORK:
        gemm(False, False, m, n, k, 1.0, a, lda, b, ldb, 1.0, c, ldc)
    else:
        gemm_packed(m, n, k, a, lda, packed, c, ldc)


cdef inline void gemm_big(bint threaded, bint trans_a, bint trans_b, int m, int n, int k,
                          const floating *a, int lda, const floating *b, int ldb,
                          floating beta, floating *c, int ldc) noexcept nogil:
    """A whole-sequence product C[m, n] = op(A) @ op(B) + beta * C, beta 0 or 1 (the input
    projection, the input and weight gradients): by A's non-zeros alone where A is mostly
    zeros and B is not transposed (sparse_gemm: a one-hot input's projection and weight
    gradient); else on one thread crnn's own cache-blocked packed kernel (_smallgemm.h),
    so the speed does not depend on which BLAS kernel is loaded; with several BLAS threads
    (``threaded``), for a C narrower than one panel, or if the kernel's work buffers cannot
    be allocated, BLAS."""
    cdef int done = -1
    if not trans_b and sparse_gemm(trans_a, m, n, k, a, lda, b, ldb, beta, c, ldc):
        return
    # fewer columns than one 128-byte panel (e.g. dx = dz @ W^T with 16 features): the
    # packed kernel would run all of C through its partial-panel tile (measured 1.5x
    # BLAS's time at (1600, 16, 256)); BLAS there
    if not threaded and n * <int> sizeof(floating) >= 128:
        if floating is float:
            done = crnn_gemm_f32(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc)
        else:
            done = crnn_gemm_f64(trans_a, trans_b, m, n, k, a, lda, b, ldb, beta, c, ldc)
    if done != 0:
        gemm(trans_a, trans_b, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc)


cdef inline void gemm_big_sum(bint threaded, int m, int n, int k, const floating *a, int lda,
                              const floating *b, int ldb, floating *c, int ldc,
                              floating *colsum) noexcept nogil:
    """A weight gradient and its bias gradient: C[m, n] = A^T @ B (A given as its (k, m)
    transpose) as gemm_big does it, and colsum[:n] = B's k rows summed, in row order. On
    crnn's own kernel the sums come from the pack of B (each element of B read once for
    both); on the other paths from crnn_colsum, with the same additions in the same order
    (the same bits either way)."""
    cdef int done = -1
    if not sparse_gemm(True, m, n, k, a, lda, b, ldb, 0.0, c, ldc):
        if not threaded and n * <int> sizeof(floating) >= 128:
            if floating is float:
                done = crnn_gemm_sum_f32(True, False, m, n, k, a, lda, b, ldb, 0.0, c, ldc,
                                         colsum)
            else:
                done = crnn_gemm_sum_f64(True, False, m, n, k, a, lda, b, ldb, 0.0, c, ldc,
                                         colsum)
        if done == 0:
            return
        gemm(True, False, m, n, k, 1.0, a, lda, b, ldb, 0.0, c, ldc)
    if floating is float:
        crnn_colsum_f32(k, n, b, ldb, colsum)
    else:
        crnn_colsum_f64(k, n, b, ldb, colsum)
