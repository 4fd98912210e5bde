# SimpleRNN forward and backward (BPTT) kernels, float32 and float64.
#
# Notation (Keras 3 layout; B batch, T timesteps, F features, U units):
#   h_t = activation(x_t @ W + h_tm1 @ R + b)
# Processing step s reads timestep t (t = s, or T-1-s with go_backwards) and writes
# outputs[:, s]. A masked (b, t) keeps h and repeats the previous output.
#
# Inside the kernels everything is time-major (see _lstm.pyx for why): gates[t, b, :]
# holds the pre-activation, then h_t itself. Training also keeps x (T, B, F) and h_tm1.
# The step maths of a row is _cells.pxd's (shared with streaming).

import numpy as np

from crnn._kernels import _pool
from crnn._kernels._workspace import empty as workspace_empty

from cython cimport floating
from libc.string cimport memcpy, memset

from crnn._kernels._blas cimport gemm_big, gemm_big_sum, gemm_step, pack_b, packed_size
from crnn._kernels._cells cimport (gather_dh, simple_rnn_backward_row,
                                   simple_rnn_forward_row)
from crnn._kernels._common cimport (batch_major, check_blas_size, check_shape, part_count,
                                    part_edges, part_round, rows_time_major, time_major)
from crnn._kernels._pool cimport pool_run

# Whether this build runs the parts of n_threads > 1 on crnn's thread pool (else one after
# another on the calling thread: a platform without POSIX threads).
THREADED = _pool.THREADED

# Shape of the training-only arrays when they are not needed (their pointers are never
# read then).
_UNUSED = (1, 1, 1)

cdef enum:
    # Elements between two parts' slices of a shared scratch array (a 64-byte line of
    # doubles): no line is written by two parts.
    PART_PAD = 16


cdef void _forward(Py_ssize_t B, Py_ssize_t T, Py_ssize_t F, Py_ssize_t U,
                   const floating *x, const floating *W, const floating *R,
                   const floating *bias, const unsigned char *mask, bint has_mask,
                   bint go_backwards, int act, floating *h, floating *gates,
                   floating *outputs, floating *R_packed, bint training,
                   floating *h_tm1_all, bint threaded,
                   bint blas_whole) noexcept nogil:
    cdef Py_ssize_t s, t, b
    cdef floating *z
    cdef floating *out
    # gates = x @ W, all timesteps at once (x is time-major here); b is added per row below
    gemm_big(blas_whole, False, False, T * B, U, F, x, F, W, U, 0.0, gates, U)
    pack_b(U, U, R, U, R_packed)
    for s in range(T):
        t = T - 1 - s if go_backwards else s
        # gates[t] += h_tm1 @ R
        gemm_step(threaded, B, U, U, h, U, R_packed, R, U, gates + t * B * U, U)
        for b in range(B):
            z = gates + (t * B + b) * U
            out = outputs + (b * T + s) * U
            if training:
                memcpy(h_tm1_all + (t * B + b) * U, h + b * U, U * sizeof(floating))
            if has_mask and not mask[b * T + t]:
                if s == 0:
                    memset(out, 0, U * sizeof(floating))
                else:
                    memcpy(out, out - U, U * sizeof(floating))
                continue
            simple_rnn_forward_row(U, z, bias, h + b * U, out, act)


cdef void _forward_part(Py_ssize_t p, const Py_ssize_t *edges, Py_ssize_t T, Py_ssize_t F,
                        Py_ssize_t U, const floating *x, const floating *W, const floating *R,
                        const floating *bias, const unsigned char *mask, bint has_mask,
                        bint go_backwards, int act, floating *xt, floating *h,
                        floating *gates, floating *outputs, floating *R_packed,
                        Py_ssize_t r_stride, bint blas_whole) noexcept nogil:
    """Inference on part ``p`` of the rows, edges[p] .. edges[p + 1] - 1: its x copied
    time-major into its slice of xt, then _forward on its slices of the scratch arrays."""
    cdef Py_ssize_t b0 = edges[p], rows = edges[p + 1] - edges[p]
    rows_time_major(rows, T, F, x + b0 * T * F, xt + b0 * T * F)
    _forward(rows, T, F, U, xt + b0 * T * F, W, R, bias, mask + b0 * T if has_mask else mask,
             has_mask, go_backwards, act, h + b0 * U,
             gates + part_round(b0 * T * U) + p * PART_PAD, outputs + b0 * T * U,
             R_packed + p * r_stride, False, R_packed, False, blas_whole)


cdef struct _Split:
    # A _forward_split call's arguments, for its parts on crnn's thread pool (float or
    # double arrays: is_double)
    const Py_ssize_t *edges
    Py_ssize_t T, F, U, r_stride
    const void *x
    const void *W
    const void *R
    const void *bias
    const unsigned char *mask
    bint has_mask, go_backwards, blas_whole, is_double
    int act
    void *xt
    void *h
    void *gates
    void *outputs
    void *R_packed


cdef void _run_part(void *ctx, int p) noexcept nogil:
    """Part ``p`` of a _forward_split call, on crnn's thread pool (``ctx``: its _Split)."""
    cdef const _Split *a = <const _Split *>ctx
    if a.is_double:
        _forward_part(p, a.edges, a.T, a.F, a.U, <const double *>a.x, <const double *>a.W,
                      <const double *>a.R, <const double *>a.bias, a.mask, a.has_mask,
                      a.go_backwards, a.act, <double *>a.xt, <double *>a.h, <double *>a.gates,
                      <double *>a.outputs, <double *>a.R_packed, a.r_stride, a.blas_whole)
    else:
        _forward_part(p, a.edges, a.T, a.F, a.U, <const float *>a.x, <const float *>a.W,
                      <const float *>a.R, <const float *>a.bias, a.mask, a.has_mask,
                      a.go_backwards, a.act, <float *>a.xt, <float *>a.h, <float *>a.gates,
                      <float *>a.outputs, <float *>a.R_packed, a.r_stride, a.blas_whole)


cdef object _forward_split(const floating[:, :, ::1] x, const floating[:, ::1] kernel,
                           const floating[:, ::1] recurrent_kernel, const floating[::1] bias,
                           const unsigned char[:, ::1] mask, bint has_mask, bint go_backwards,
                           int act, floating[:, ::1] h, floating[:, :, ::1] outputs,
                           bint blas_whole, Py_ssize_t n_parts):
    """Inference with the batch's rows split into ``n_parts`` parts, run on crnn's thread
    pool (_pool.h; serially where it has no threads): each part runs _forward on its rows
    with its own scratch memory, and never calls a threaded BLAS (the caller holds BLAS's
    pools at one thread where the parts may call BLAS: blas_whole)."""
    cdef Py_ssize_t B = x.shape[0], T = x.shape[1], F = x.shape[2]
    cdef Py_ssize_t U = recurrent_kernel.shape[0]
    dtype = np.float32 if floating is float else np.float64
    cdef Py_ssize_t[::1] edges_v = np.array(part_edges(B, n_parts), np.intp)
    cdef Py_ssize_t r_stride = part_round(packed_size(U, U, floating is double))
    cdef floating[::1] xt = workspace_empty(B * T * F, dtype)
    cdef floating[::1] gates = workspace_empty(part_round(B * T * U) + n_parts * PART_PAD,
                                               dtype)
    cdef floating[::1] packed = workspace_empty(n_parts * r_stride, dtype)
    cdef _Split a
    a.edges = &edges_v[0]
    a.T, a.F, a.U, a.r_stride = T, F, U, r_stride
    a.x = &x[0, 0, 0]
    a.W = &kernel[0, 0]
    a.R = &recurrent_kernel[0, 0]
    a.bias = &bias[0]
    a.mask = &mask[0, 0]
    a.has_mask, a.go_backwards, a.blas_whole = has_mask, go_backwards, blas_whole
    a.is_double = floating is double
    a.act = act
    a.xt = &xt[0]
    a.h = &h[0, 0]
    a.gates = &gates[0]
    a.outputs = &outputs[0, 0, 0]
    a.R_packed = &packed[0]
    with nogil:
        pool_run(<int>n_parts, _run_part, &a)
    return None


cdef void _backward(Py_ssize_t B, Py_ssize_t T, Py_ssize_t F, Py_ssize_t U,
                    const floating *x, const floating *W, const floating *RT,
                    const unsigned char *mask, bint has_mask,
                    bint go_backwards, int act,
                    const floating *gates, const floating *h_tm1_all,
                    const floating *d_outputs, bint last_only,
                    const floating *zero_row, floating *dh, floating *dz,
                    floating *carry, floating *deriv, floating *RT_packed, floating *dx,
                    floating *dW, floating *dR, floating *db, bint threaded,
                    bint blas_whole) noexcept nogil:
    cdef Py_ssize_t s, t, b, j, row
    cdef const floating *d_out
    cdef floating *dzb
    cdef floating *cr
    pack_b(U, U, RT, U, RT_packed)
    for s in range(T - 1, -1, -1):
        t = T - 1 - s if go_backwards else s
        for b in range(B):
            row = t * B + b
            dzb = dz + row * U
            if not last_only:
                d_out = d_outputs + (b * T + s) * U
            elif s == T - 1:
                d_out = d_outputs + b * U
            else:       # the outputs before the last have no gradient
                d_out = zero_row
            cr = carry + b * U
            if has_mask and not mask[b * T + t]:
                # h passes through; this output was a copy of the previous one.
                for j in range(U):
                    cr[j] += d_out[j]
                memset(dzb, 0, U * sizeof(floating))
                continue
            gather_dh(U, dh + b * U, d_out, cr)
            simple_rnn_backward_row(U, gates + row * U, dh + b * U, dzb, act)
            # h_tm1 reaches h_t only through z_t (the GEMM below)
            memset(dh + b * U, 0, U * sizeof(floating))
        # dh_tm1 += dz_t @ R^T
        gemm_step(threaded, B, U, U, dz + t * B * U, U, RT_packed, RT, U, dh, U)
    # dx = dz @ W^T ; dW = x^T @ dz ; dR = h_tm1^T @ dz ; db = sum(dz)
    if dx != NULL:      # NULL: the caller does not need dx
        gemm_big(blas_whole, False, True, T * B, F, U, dz, U, W, U, 0.0, dx, F)
    gemm_big_sum(blas_whole, F, U, T * B, x, F, dz, U, dW, U, db)
    gemm_big(blas_whole, True, False, U, U, T * B, h_tm1_all, U, dz, U, 0.0, dR, U)


def simple_rnn_forward(const floating[:, :, ::1] x, const floating[:, ::1] kernel,
                       const floating[:, ::1] recurrent_kernel, const floating[::1] bias,
                       const unsigned char[:, ::1] mask, bint has_mask, bint go_backwards,
                       int activation, const floating[:, ::1] h0, bint training,
                       bint threaded=False, bint own_gemm=True, out=None,
                       Py_ssize_t n_threads=1):
    """SimpleRNN over whole sequences. Returns (outputs, h, saved); saved is None unless
    training, else a dict of the arrays simple_rnn_backward takes by these names.
    Arguments are checked by crnn.ops.simple_rnn; here only shapes are
    re-checked so that nothing out of bounds can happen. ``out``: a C-contiguous (B, T, U)
    array to write the outputs into (default: a new one). ``n_threads`` > 1 (inference
    only): the rows split into that many parts (at most one per row) run on crnn's
    thread pool, each on crnn's kernels or a one-thread BLAS (``threaded`` is ignored
    then: the caller must hold BLAS's pools at one thread)."""
    cdef Py_ssize_t B = x.shape[0], T = x.shape[1], F = x.shape[2]
    cdef Py_ssize_t U = recurrent_kernel.shape[0]
    check_shape("kernel", (kernel.shape[0], kernel.shape[1]), (F, U))
    check_shape("recurrent_kernel", (recurrent_kernel.shape[0], recurrent_kernel.shape[1]), (U, U))
    check_shape("bias", (bias.shape[0],), (U,))
    check_shape("initial_state[0]", (h0.shape[0], h0.shape[1]), (B, U))
    if has_mask:
        check_shape("mask", (mask.shape[0], mask.shape[1]), (B, T))
    check_blas_size(B * T, max(F, U))
    cdef Py_ssize_t n_parts = part_count(B, n_threads, training)
    cdef floating[:, ::1] h_split
    cdef floating[:, :, ::1] outputs_split
    dtype = np.float32 if floating is float else np.float64
    h_arr = np.array(h0, dtype=dtype)
    if n_parts > 1:
        outputs_arr = workspace_empty((B, T, U), dtype) if out is None else out
        check_shape("out", tuple(outputs_arr.shape), (B, T, U))
        h_split = h_arr
        outputs_split = outputs_arr
        _forward_split(x, kernel, recurrent_kernel, bias, mask, has_mask, go_backwards,
                       activation, h_split, outputs_split, not own_gemm, n_parts)
        return outputs_arr, h_arr, None
    # (a batch of one row is time-major as given: inference reads it in place)
    xt_arr = None if B == 1 and not training else time_major(x)
    outputs_arr = workspace_empty((B, T, U), dtype) if out is None else out
    # The call's scratch memory in one array (one allocation, one memoryview): packed R
    # and, in inference, the gates (training keeps them: an array of their own).
    cdef Py_ssize_t n_r = part_round(packed_size(U, U, floating is double))
    cdef floating[::1] scratch = workspace_empty(n_r + (0 if training else T * B * U), dtype)
    gates_arr = workspace_empty((T, B, U), dtype) if training else None
    cdef floating[:, :, ::1] gates_saved
    cdef floating *gates_ptr
    if training:
        gates_saved = gates_arr
        gates_ptr = &gates_saved[0, 0, 0]
    else:
        gates_ptr = &scratch[n_r]
    cdef const floating[:, :, ::1] xt = x if xt_arr is None else xt_arr
    cdef floating[:, ::1] h = h_arr
    cdef floating[:, :, ::1] outputs = outputs_arr
    check_shape("out", (outputs.shape[0], outputs.shape[1], outputs.shape[2]), (B, T, U))
    # the training-only array (never touched in inference: NULL there)
    cdef floating[:, :, ::1] h_tm1_all
    cdef floating *h_tm1_ptr = NULL
    saved = None
    if training:
        saved = dict(xt=xt_arr, gates=gates_arr, h_tm1=workspace_empty((T, B, U), dtype))
        h_tm1_all = saved["h_tm1"]
        h_tm1_ptr = &h_tm1_all[0, 0, 0]
    with nogil:
        _forward(B, T, F, U, &xt[0, 0, 0], &kernel[0, 0], &recurrent_kernel[0, 0], &bias[0],
                 &mask[0, 0], has_mask, go_backwards, activation, &h[0, 0],
                 gates_ptr, &outputs[0, 0, 0], &scratch[0], training,
                 h_tm1_ptr, threaded, threaded or not own_gemm)
    return outputs_arr, h_arr, saved


def simple_rnn_backward(*, const floating[:, ::1] kernel,
                        const floating[:, ::1] recurrent_kernel_t,
                        const unsigned char[:, ::1] mask, bint has_mask, bint go_backwards,
                        int activation, const floating[:, :, ::1] xt,
                        const floating[:, :, ::1] gates, const floating[:, :, ::1] h_tm1,
                        const floating[:, :, ::1] d_outputs, const floating[:, ::1] d_h,
                        bint threaded=False, bint own_gemm=True,
                        bint need_dx=True):
    """BPTT through simple_rnn_forward(training=True), all arguments by name: ``xt``,
    ``gates`` and ``h_tm1`` are its saved arrays; ``kernel`` and ``recurrent_kernel_t``
    (R transposed) the weights of that forward call. Returns (dx, dh0, d_kernel,
    d_recurrent_kernel, d_bias); dx is None with ``need_dx=False`` (its product is
    skipped). ``d_outputs`` may be (B, 1, U): the last output's gradient alone."""
    cdef Py_ssize_t T = xt.shape[0], B = xt.shape[1], F = xt.shape[2]
    cdef Py_ssize_t U = recurrent_kernel_t.shape[0]
    check_shape("kernel", (kernel.shape[0], kernel.shape[1]), (F, U))
    check_shape("recurrent_kernel_t", (recurrent_kernel_t.shape[0], recurrent_kernel_t.shape[1]),
                (U, U))
    for name, saved in (("gates", gates), ("h_tm1", h_tm1)):
        check_shape(name, (saved.shape[0], saved.shape[1], saved.shape[2]), (T, B, U))
    # d_outputs (B, 1, U) with T > 1: the last output's gradient only (the others' zero)
    cdef bint last_only = d_outputs.shape[1] == 1
    check_shape("d_outputs", (d_outputs.shape[0], d_outputs.shape[1], d_outputs.shape[2]),
                (B, 1 if last_only else T, U))
    check_shape("d_final_states[0]", (d_h.shape[0], d_h.shape[1]), (B, U))
    if has_mask:
        check_shape("mask", (mask.shape[0], mask.shape[1]), (B, T))
    check_blas_size(B * T, max(F, U))
    dtype = np.float32 if floating is float else np.float64
    dh_arr = np.array(d_h, dtype=dtype)
    dz_arr = workspace_empty((T, B, U), dtype)
    carry_arr = np.zeros((B, U), dtype)
    zero_row_arr = np.zeros(U, dtype)
    deriv_arr = workspace_empty(U, dtype)
    packed_arr = workspace_empty(packed_size(U, U, floating is double), dtype)
    dx_arr = workspace_empty((T, B, F) if need_dx else _UNUSED, dtype)
    dW_arr = workspace_empty((F, U), dtype)
    dR_arr = workspace_empty((U, U), dtype)
    db_arr = workspace_empty(U, dtype)
    cdef floating[:, ::1] dh = dh_arr
    cdef floating[:, :, ::1] dz = dz_arr
    cdef floating[:, ::1] carry = carry_arr
    cdef const floating[::1] zero_row = zero_row_arr
    cdef floating[::1] deriv = deriv_arr
    cdef floating[::1] packed = packed_arr
    cdef floating[:, :, ::1] dx = dx_arr
    cdef floating *dx_ptr = &dx[0, 0, 0] if need_dx else NULL
    cdef floating[:, ::1] dW = dW_arr
    cdef floating[:, ::1] dR = dR_arr
    cdef floating[::1] db = db_arr
    with nogil:
        _backward(B, T, F, U, &xt[0, 0, 0], &kernel[0, 0], &recurrent_kernel_t[0, 0],
                  &mask[0, 0], has_mask, go_backwards, activation, &gates[0, 0, 0],
                  &h_tm1[0, 0, 0], &d_outputs[0, 0, 0], last_only, &zero_row[0], &dh[0, 0],
                  &dz[0, 0, 0],
                  &carry[0, 0], &deriv[0], &packed[0], dx_ptr, &dW[0, 0], &dR[0, 0],
                  &db[0], threaded, threaded or not own_gemm)
    return batch_major(dx_arr) if need_dx else None, dh_arr, dW_arr, dR_arr, db_arr
