# Python face of the shared cell code (crnn/_cells.pxd, crnn/_activations.pxd):
#   * ACTIVATION_CODES, the only source of activation codes for Python (crnn.ops,
#     crnn.streaming and the layers read it);
#   * whole-batch wrappers of each cell's row steps, run by the recurrent-dropout loop of
#     crnn.layers.recurrent (whose per-gate masks a fused sequence kernel cannot express);
#   * test hooks for the micro-kernels (the cell rows, the activations, the packed
#     per-step product), tested directly against NumPy in tests/test_kernels.py.
# Every wrapper checks shapes and works in place on C-contiguous arrays of one dtype.

import numpy as np

from cython cimport floating

from crnn._kernels cimport _activations as A
from crnn._kernels._blas cimport (crnn_gemm_blocked_f32, crnn_gemm_blocked_f64,
                                  crnn_transpose_f32, crnn_transpose_f64, gemm_big,
                                  gemm_big_sum,
                                  gemm_packed, pack_b, packed_size,
                                  sparse_gemm as _sparse_gemm)
from crnn._kernels._cells cimport (gru_backward_row, gru_finish_row, gru_gates_after_row,
                                   gru_gates_before_row, gru_reset_backward_row, lstm_backward_row,
                                   lstm_forward_row, simple_rnn_backward_row,
                                   simple_rnn_forward_row)
from crnn._kernels._common cimport check_shape

cdef extern from "_fastmath.h" nogil:
    int crnn_isa()
    int crnn_avx512_half_width()

ACTIVATION_CODES = {
    "linear": A.LINEAR, "tanh": A.TANH, "sigmoid": A.SIGMOID,
    "hard_sigmoid": A.HARD_SIGMOID, "relu": A.RELU, "softmax": A.SOFTMAX, "elu": A.ELU,
    "selu": A.SELU, "softplus": A.SOFTPLUS, "softsign": A.SOFTSIGN, "silu": A.SILU,
    "exponential": A.EXPONENTIAL, "relu6": A.RELU6, "leaky_relu": A.LEAKY_RELU,
    "gelu": A.GELU, "mish": A.MISH, "hard_silu": A.HARD_SILU, "log_softmax": A.LOG_SOFTMAX,
}
# The activations the recurrent cells run (activation and recurrent_activation).
RECURRENT_ACTIVATIONS = tuple(name for name, code in ACTIVATION_CODES.items()
                              if code < A.N_RECURRENT_ACTIVATIONS)


cdef int _rows(str name, tuple shape, Py_ssize_t batch, Py_ssize_t width) except -1:
    return check_shape(name, shape[:2], (batch, width))


cdef int _recurrent_code(int code) except -1:
    if not 0 <= code < A.N_RECURRENT_ACTIVATIONS:
        raise ValueError(f"activation code must be a recurrent one (0-"
                         f"{A.N_RECURRENT_ACTIVATIONS - 1}), received {code}")
    return code


# --------------------------------------------------------------------------- cell steps

def lstm_step(floating[:, ::1] z, floating[:, ::1] c, floating[:, ::1] h,
              floating[:, ::1] ac, int activation, int recurrent_activation):
    """One LSTM step for a batch, in place: z (B, 4U) pre-activations -> activated gates,
    c: c_tm1 -> c_t, ac <- act(c_t), h <- h_t."""
    cdef Py_ssize_t B = z.shape[0], U = c.shape[1], b
    _rows("z", z.shape, B, 4 * U)
    for name, a in (("c", c), ("h", h), ("ac", ac)):
        _rows(name, a.shape, B, U)
    _recurrent_code(activation)
    _recurrent_code(recurrent_activation)
    with nogil:
        for b in range(B):
            lstm_forward_row(U, &z[b, 0], &c[b, 0], &h[b, 0], &ac[b, 0], activation,
                             recurrent_activation)


def lstm_step_backward(const floating[:, ::1] gates, const floating[:, ::1] c_tm1,
                       const floating[:, ::1] ac, const floating[:, ::1] dh,
                       floating[:, ::1] dc, floating[:, ::1] dz, int activation,
                       int recurrent_activation):
    """Backward of lstm_step: dz (B, 4U) <- dL/dz; dc: dL/dc_t -> dL/dc_tm1 (direct)."""
    cdef Py_ssize_t B = gates.shape[0], U = dc.shape[1], b
    _rows("gates", gates.shape, B, 4 * U)
    _rows("dz", dz.shape, B, 4 * U)
    for name, a in (("c_tm1", c_tm1), ("ac", ac), ("dh", dh), ("dc", dc)):
        _rows(name, a.shape, B, U)
    _recurrent_code(activation)
    _recurrent_code(recurrent_activation)
    work_arr = np.empty(5 * U, np.float32 if floating is float else np.float64)
    cdef floating[::1] work = work_arr
    with nogil:
        for b in range(B):
            lstm_backward_row(U, &gates[b, 0], &c_tm1[b, 0], &ac[b, 0], &dh[b, 0], &dc[b, 0],
                              &dz[b, 0], &work[0], activation, recurrent_activation)


def gru_gates_after(floating[:, ::1] z, const floating[:, ::1] inner,
                    int recurrent_activation):
    """reset_after: z (B, 3U) += inner's z, r part, activated; z_h += r * inner_h."""
    cdef Py_ssize_t B = z.shape[0], U = z.shape[1] // 3, b
    _rows("z", z.shape, B, 3 * U)
    _rows("inner", inner.shape, B, 3 * U)
    _recurrent_code(recurrent_activation)
    with nogil:
        for b in range(B):
            gru_gates_after_row(U, &z[b, 0], &inner[b, 0], recurrent_activation)


def gru_gates_before(floating[:, ::1] z, const floating[:, ::1] h_r, floating[:, ::1] rh,
                     int recurrent_activation):
    """reset before: z[:, :2U] activated in place; rh <- r * h_r."""
    cdef Py_ssize_t B = z.shape[0], U = z.shape[1] // 3, b
    _rows("z", z.shape, B, 3 * U)
    _rows("h_r", h_r.shape, B, U)
    _rows("rh", rh.shape, B, U)
    _recurrent_code(recurrent_activation)
    with nogil:
        for b in range(B):
            gru_gates_before_row(U, &z[b, 0], &h_r[b, 0], &rh[b, 0], recurrent_activation)


def gru_finish(floating[:, ::1] z, floating[:, ::1] h, int activation):
    """Both modes: z_h -> hh = act(z_h) in place; h: h_tm1 -> h_t."""
    cdef Py_ssize_t B = z.shape[0], U = z.shape[1] // 3, b
    _rows("z", z.shape, B, 3 * U)
    _rows("h", h.shape, B, U)
    _recurrent_code(activation)
    with nogil:
        for b in range(B):
            gru_finish_row(U, &z[b, 0], &h[b, 0], &h[b, 0], NULL, activation)


def gru_step_backward(const floating[:, ::1] gates, const floating[:, ::1] h_tm1,
                      const floating[:, ::1] inner_h, floating[:, ::1] dh,
                      floating[:, ::1] dgx, floating[:, ::1] dgi, int activation,
                      int recurrent_activation, bint reset_after):
    """Backward of a GRU step (see gru_backward_row): dh: dL/dh_t -> dh * z; dgx, dgi
    (B, 3U) out (dgi and inner_h are read/written with reset_after only)."""
    cdef Py_ssize_t B = gates.shape[0], U = gates.shape[1] // 3, b
    _rows("gates", gates.shape, B, 3 * U)
    _rows("dgx", dgx.shape, B, 3 * U)
    for name, a in (("h_tm1", h_tm1), ("dh", dh)):
        _rows(name, a.shape, B, U)
    if reset_after:
        _rows("inner_h", inner_h.shape, B, U)
        _rows("dgi", dgi.shape, B, 3 * U)
    _recurrent_code(activation)
    _recurrent_code(recurrent_activation)
    work_arr = np.empty(3 * U, np.float32 if floating is float else np.float64)
    cdef floating[::1] work = work_arr
    with nogil:
        for b in range(B):
            gru_backward_row(U, &gates[b, 0], &h_tm1[b, 0],
                             &inner_h[b, 0] if reset_after else NULL, &dh[b, 0],
                             &dgx[b, 0], &dgi[b, 0] if reset_after else NULL, &work[0],
                             activation, recurrent_activation, reset_after)


def gru_reset_backward(const floating[:, ::1] gates, const floating[:, ::1] h_r,
                       const floating[:, ::1] d_rh, floating[:, ::1] dgx,
                       floating[:, ::1] dh_r, int recurrent_activation):
    """reset before: dgx[:, U:2U] <- dL/dz_r; dh_r += d_rh * r."""
    cdef Py_ssize_t B = gates.shape[0], U = gates.shape[1] // 3, b
    _rows("gates", gates.shape, B, 3 * U)
    _rows("dgx", dgx.shape, B, 3 * U)
    for name, a in (("h_r", h_r), ("d_rh", d_rh), ("dh_r", dh_r)):
        _rows(name, a.shape, B, U)
    _recurrent_code(recurrent_activation)
    work_arr = np.empty(U, np.float32 if floating is float else np.float64)
    cdef floating[::1] work = work_arr
    with nogil:
        for b in range(B):
            gru_reset_backward_row(U, &gates[b, 0], &h_r[b, 0], &d_rh[b, 0], &dgx[b, 0],
                                   &dh_r[b, 0], &work[0], recurrent_activation)


def simple_rnn_step(floating[:, ::1] z, floating[:, ::1] h, int activation):
    """z (B, U): pre-activation -> h_t; h <- h_t."""
    cdef Py_ssize_t B = z.shape[0], U = z.shape[1], b
    _rows("h", h.shape, B, U)
    _recurrent_code(activation)
    with nogil:
        for b in range(B):
            simple_rnn_forward_row(U, &z[b, 0], NULL, &h[b, 0], NULL, activation)


def simple_rnn_step_backward(const floating[:, ::1] y, const floating[:, ::1] dh,
                             floating[:, ::1] dz, int activation):
    """dz <- dh * act'(z), from y = h_t."""
    cdef Py_ssize_t B = y.shape[0], U = y.shape[1], b
    _rows("dh", dh.shape, B, U)
    _rows("dz", dz.shape, B, U)
    _recurrent_code(activation)
    with nogil:
        for b in range(B):
            simple_rnn_backward_row(U, &y[b, 0], &dh[b, 0], &dz[b, 0], activation)


def isa():
    """The instruction set the compiled kernels run: "avx512", "avx2" (AVX2+FMA) or
    "baseline" (x86-64 SSE2, or the portable C on other CPUs). ``CRNN_ISA=avx2`` or
    ``CRNN_ISA=baseline`` in the environment caps it (for testing)."""
    return ("baseline", "avx2", "avx512")[crnn_isa()]


def avx512_half_width():
    """True on an AVX-512 CPU whose 512-bit instructions run on 256-bit units (AMD Zen 4),
    where crnn's own whole-sequence GEMM beats OpenBLAS's AVX-512 kernel
    (``crnn.threads.use_own_gemm``); False elsewhere and when ``isa()`` is not "avx512"."""
    return crnn_avx512_half_width() != 0


# --------------------------------------------------------------------------- test hooks

def activate_span(floating[::1] x, int code):
    """Test hook: x = f(x) in place for activation ``code`` (any of ACTIVATION_CODES)."""
    if not 0 <= code < A.N_ACTIVATIONS:
        raise ValueError(f"unknown activation code {code}")
    with nogil:
        A.activate_any(&x[0], x.shape[0], code)


def packed_gemm(const floating[:, ::1] a, const floating[:, ::1] b, floating[:, ::1] c):
    """Test hook of the per-step micro-kernel: c += a @ b through pack_b + gemm_packed."""
    cdef int m = a.shape[0], k = a.shape[1], n = b.shape[1]
    check_shape("b", (b.shape[0], b.shape[1]), (k, n))
    check_shape("c", (c.shape[0], c.shape[1]), (m, n))
    packed_arr = np.empty(max(1, packed_size(k, n, floating is double)),
                          np.float32 if floating is float else np.float64)
    cdef floating[::1] packed = packed_arr
    with nogil:
        pack_b(k, n, &b[0, 0], n, &packed[0])
        gemm_packed(m, n, k, &a[0, 0], k, &packed[0], &c[0, 0], n)


def pack(const floating[:, ::1] b):
    """Hook of pack_b for timings (bench/, the per-step product's speed without its packing):
    B (k, n) in the panel layout that ``packed_product`` reads, as a 1-D array."""
    cdef int k = b.shape[0], n = b.shape[1]
    packed_arr = np.empty(max(1, packed_size(k, n, floating is double)),
                          np.float32 if floating is float else np.float64)
    cdef floating[::1] packed = packed_arr
    with nogil:
        pack_b(k, n, &b[0, 0], n, &packed[0])
    return packed_arr


def packed_product(const floating[:, ::1] a, const floating[::1] packed,
                   floating[:, ::1] c, bint blocked=False, Py_ssize_t repeat=1):
    """Hook of the packed kernels for timings: c += a @ B, ``repeat`` times, with B
    (a.shape[1], c.shape[1]) given as ``pack(B)`` (its length is checked: it must be what
    pack returns for that shape). gemm_packed, the per-step product; ``blocked``: the
    cache-blocked kernel of the input projection (_smallgemm.h's crnn_gemm_blocked, on the
    W a call packs once). ``repeat`` times in one call: a product of a microsecond timed
    alone would time the Python call."""
    cdef int m = a.shape[0], k = a.shape[1], n = c.shape[1]
    cdef Py_ssize_t _r
    check_shape("c", (c.shape[0], c.shape[1]), (m, n))
    check_shape("packed", (packed.shape[0],), (max(1, packed_size(k, n, floating is double)),))
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, received {repeat}")
    with nogil:
        for _r in range(repeat):
            if not blocked:
                gemm_packed(m, n, k, &a[0, 0], k, &packed[0], &c[0, 0], n)
            elif floating is float:
                crnn_gemm_blocked_f32(m, n, k, &a[0, 0], k, &packed[0], &c[0, 0], n)
            else:
                crnn_gemm_blocked_f64(m, n, k, &a[0, 0], k, &packed[0], &c[0, 0], n)


def whole_gemm(bint trans_a, bint trans_b, const floating[:, ::1] a, const floating[:, ::1] b,
               floating[:, ::1] c, floating beta, bint threaded=False):
    """Test hook of the whole-sequence product: c = op(a) @ op(b) + beta * c (beta 0 or 1),
    crnn's own kernel (``threaded=False``) or BLAS (``threaded=True``, as with several
    BLAS threads)."""
    cdef int m = c.shape[0], n = c.shape[1]
    cdef int k = a.shape[0] if trans_a else a.shape[1]
    check_shape("a", (a.shape[0], a.shape[1]), (k, m) if trans_a else (m, k))
    check_shape("b", (b.shape[0], b.shape[1]), (n, k) if trans_b else (k, n))
    if beta != 0 and beta != 1:
        raise ValueError(f"beta must be 0 or 1, received {beta}")
    with nogil:
        gemm_big(threaded, trans_a, trans_b, m, n, k, &a[0, 0], a.shape[1], &b[0, 0],
                 b.shape[1], beta, &c[0, 0], n)


def weight_gradient(const floating[:, ::1] a, const floating[:, ::1] b, floating[:, ::1] c,
                    floating[::1] colsum, bint threaded=False):
    """Test hook of gemm_big_sum (a weight gradient with its bias gradient): c = a^T @ b and
    colsum = b's rows summed in row order, on crnn's own kernel (``threaded=False``), BLAS
    (``threaded=True``), or the mostly-zero product when ``a`` is mostly zeros."""
    cdef int m = c.shape[0], n = c.shape[1], k = a.shape[0]
    check_shape("a", (a.shape[0], a.shape[1]), (k, m))
    check_shape("b", (b.shape[0], b.shape[1]), (k, n))
    check_shape("colsum", (colsum.shape[0],), (n,))
    with nogil:
        gemm_big_sum(threaded, m, n, k, &a[0, 0], m, &b[0, 0], n, &c[0, 0], n, &colsum[0])


def sparse_gemm(bint trans_a, const floating[:, ::1] a, const floating[:, ::1] b,
                floating[:, ::1] c, floating beta):
    """Test hook of the mostly-zero product (_blas.pxd's sparse_gemm): c = op(a) @ b +
    beta * c (beta 0 or 1) by a's non-zeros alone; returns True if it ran (a mostly zeros),
    False if it declined (c untouched)."""
    cdef int m = c.shape[0], n = c.shape[1]
    cdef int k = a.shape[0] if trans_a else a.shape[1]
    cdef bint done
    check_shape("a", (a.shape[0], a.shape[1]), (k, m) if trans_a else (m, k))
    check_shape("b", (b.shape[0], b.shape[1]), (k, n))
    if beta != 0 and beta != 1:
        raise ValueError(f"beta must be 0 or 1, received {beta}")
    with nogil:
        done = _sparse_gemm(trans_a, m, n, k, &a[0, 0], a.shape[1], &b[0, 0], n, beta,
                            &c[0, 0], n)
    return done


def transposed(const floating[:, :] a):
    """A C-contiguous copy of ``a`` transposed, in workspace memory (_workspace.py): the
    private R^T a training call's cache keeps. Through crnn_transpose (_smallgemm.h), by
    tiles: a strided copy of a large transpose misses cache at every element, and numpy's
    took 10% of LSTM training at (16, 25, 1024, 1024), with the page faults of a fresh
    array. (An ``a`` whose rows are not contiguous is copied to one that is first.)"""
    from crnn._kernels._workspace import empty
    cdef Py_ssize_t n = a.shape[0], m = a.shape[1]
    out = empty((m, n), np.float32 if floating is float else np.float64)
    if n == 0 or m == 0:
        return out
    if a.strides[1] != sizeof(floating):
        return transposed(np.ascontiguousarray(a))
    cdef floating[:, ::1] t = out
    cdef Py_ssize_t lda = a.strides[0] // <Py_ssize_t>sizeof(floating)
    with nogil:
        if floating is float:
            crnn_transpose_f32(<int>n, <int>m, &a[0, 0], lda, &t[0, 0], n)
        else:
            crnn_transpose_f64(<int>n, <int>m, &a[0, 0], lda, &t[0, 0], n)
    return out


def add_rows(floating[:, ::1] out, const Py_ssize_t[::1] indices,
             const floating[:, ::1] values):
    """out[indices[k]] += values[k] for k = 0, 1, ... in that order: ``np.add.at(out,
    indices, values)``'s sums in its order (bit-identical), as a loop: np.add.at's
    per-row cost dominated an Embedding-Bidirectional(LSTM(32)) classifier's gradient
    (bench/RESULTS.md, the fourth session's model pairs). Indices must lie in
    [0, out.shape[0]); checked before anything is written."""
    cdef Py_ssize_t n = out.shape[0], d = out.shape[1], rows = indices.shape[0], k, j, i
    check_shape("values", (values.shape[0], values.shape[1]), (rows, d))
    for k in range(rows):
        i = indices[k]
        if i < 0 or i >= n:
            raise IndexError(f"indices[{k}] = {i} is out of range for {n} rows")
    with nogil:
        for k in range(rows):
            i = indices[k]
            for j in range(d):
                out[i, j] += values[k, j]
