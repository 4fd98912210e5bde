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

from crnn._kernels._workspace import empty as workspace_empty

from cython cimport floating
from libc.string cimport memcpy, memset

from crnn._kernels._blas cimport gemm_big, gemm_step, pack_b, packed_size
from crnn._kernels._cells cimport (add_span, gather_dh, sum_rows, simple_rnn_backward_row,
                                   simple_rnn_forward_row)
from crnn._kernels._common cimport batch_major, check_blas_size, check_shape, time_major

# Shape of the training-only arrays when they are not needed (their pointers are never
# read then).
_UNUSED = (1, 1, 1)


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
            add_span(U, bias, z)
            simple_rnn_forward_row(U, z, h + b * U, act)
            memcpy(out, z, U * sizeof(floating))


cdef void _backward(Py_ssize_t B, Py_ssize_t T, Py_ssize_t F, Py_ssize_t U,
                    const floating *x, const floating *W, const floating *RT,
                    const unsigned char *mask, bint has_mask,
                    bint go_backwards, int act,
                    const floating *gates, const floating *h_tm1_all,
                    const floating *d_outputs, floating *dh, floating *dz,
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
            d_out = d_outputs + (b * T + s) * U
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
    gemm_big(blas_whole, False, True, T * B, F, U, dz, U, W, U, 0.0, dx, F)
    gemm_big(blas_whole, True, False, F, U, T * B, x, F, dz, U, 0.0, dW, U)
    gemm_big(blas_whole, True, False, U, U, T * B, h_tm1_all, U, dz, U, 0.0, dR, U)
    sum_rows(T * B, U, dz, db)


def simple_rnn_forward(const floating[:, :, ::1] x, const floating[:, ::1] kernel,
                       const floating[:, ::1] recurrent_kernel, const floating[::1] bias,
                       const unsigned char[:, ::1] mask, bint has_mask, bint go_backwards,
                       int activation, const floating[:, ::1] h0, bint training,
                       bint threaded=False, bint own_gemm=True, out=None):
    """SimpleRNN over whole sequences. Returns (outputs, h, saved); saved is None unless
    training, else a dict of the arrays simple_rnn_backward takes by these names.
    Arguments are checked by crnn.ops.simple_rnn; here only shapes are
    re-checked so that nothing out of bounds can happen. ``out``: a C-contiguous (B, T, U)
    array to write the outputs into (default: a new one)."""
    cdef Py_ssize_t B = x.shape[0], T = x.shape[1], F = x.shape[2]
    cdef Py_ssize_t U = recurrent_kernel.shape[0]
    check_shape("kernel", (kernel.shape[0], kernel.shape[1]), (F, U))
    check_shape("recurrent_kernel", (recurrent_kernel.shape[0], recurrent_kernel.shape[1]), (U, U))
    check_shape("bias", (bias.shape[0],), (U,))
    check_shape("initial_state[0]", (h0.shape[0], h0.shape[1]), (B, U))
    if has_mask:
        check_shape("mask", (mask.shape[0], mask.shape[1]), (B, T))
    check_blas_size(B * T, max(F, U))
    dtype = np.float32 if floating is float else np.float64
    xt_arr = time_major(x)
    h_arr = np.array(h0, dtype=dtype)
    gates_arr = workspace_empty((T, B, U), dtype)
    outputs_arr = workspace_empty((B, T, U), dtype) if out is None else out
    packed_arr = workspace_empty(packed_size(U, U, floating is double), dtype)
    h_tm1_arr = workspace_empty((T, B, U) if training else _UNUSED, dtype)
    cdef const floating[:, :, ::1] xt = xt_arr
    cdef floating[:, ::1] h = h_arr
    cdef floating[:, :, ::1] gates = gates_arr
    cdef floating[:, :, ::1] outputs = outputs_arr
    check_shape("out", (outputs.shape[0], outputs.shape[1], outputs.shape[2]), (B, T, U))
    cdef floating[::1] packed = packed_arr
    cdef floating[:, :, ::1] h_tm1_all = h_tm1_arr
    with nogil:
        _forward(B, T, F, U, &xt[0, 0, 0], &kernel[0, 0], &recurrent_kernel[0, 0], &bias[0],
                 &mask[0, 0], has_mask, go_backwards, activation, &h[0, 0],
                 &gates[0, 0, 0], &outputs[0, 0, 0], &packed[0], training,
                 &h_tm1_all[0, 0, 0], threaded, threaded or not own_gemm)
    saved = dict(xt=xt_arr, gates=gates_arr, h_tm1=h_tm1_arr) if training else None
    return outputs_arr, h_arr, saved


def simple_rnn_backward(*, const floating[:, ::1] kernel,
                        const floating[:, ::1] recurrent_kernel_t,
                        const unsigned char[:, ::1] mask, bint has_mask, bint go_backwards,
                        int activation, const floating[:, :, ::1] xt,
                        const floating[:, :, ::1] gates, const floating[:, :, ::1] h_tm1,
                        const floating[:, :, ::1] d_outputs, const floating[:, ::1] d_h,
                        bint threaded=False, bint own_gemm=True):
    """BPTT through simple_rnn_forward(training=True), all arguments by name: ``xt``,
    ``gates`` and ``h_tm1`` are its saved arrays; ``kernel`` and ``recurrent_kernel_t``
    (R transposed) the weights of that forward call. Returns (dx, dh0, d_kernel,
    d_recurrent_kernel, d_bias)."""
    cdef Py_ssize_t T = xt.shape[0], B = xt.shape[1], F = xt.shape[2]
    cdef Py_ssize_t U = recurrent_kernel_t.shape[0]
    check_shape("kernel", (kernel.shape[0], kernel.shape[1]), (F, U))
    check_shape("recurrent_kernel_t", (recurrent_kernel_t.shape[0], recurrent_kernel_t.shape[1]),
                (U, U))
    for name, saved in (("gates", gates), ("h_tm1", h_tm1)):
        check_shape(name, (saved.shape[0], saved.shape[1], saved.shape[2]), (T, B, U))
    check_shape("d_outputs", (d_outputs.shape[0], d_outputs.shape[1], d_outputs.shape[2]),
                (B, T, U))
    check_shape("d_final_states[0]", (d_h.shape[0], d_h.shape[1]), (B, U))
    if has_mask:
        check_shape("mask", (mask.shape[0], mask.shape[1]), (B, T))
    check_blas_size(B * T, max(F, U))
    dtype = np.float32 if floating is float else np.float64
    dh_arr = np.array(d_h, dtype=dtype)
    dz_arr = workspace_empty((T, B, U), dtype)
    carry_arr = np.zeros((B, U), dtype)
    deriv_arr = workspace_empty(U, dtype)
    packed_arr = workspace_empty(packed_size(U, U, floating is double), dtype)
    dx_arr = workspace_empty((T, B, F), dtype)
    dW_arr = workspace_empty((F, U), dtype)
    dR_arr = workspace_empty((U, U), dtype)
    db_arr = workspace_empty(U, dtype)
    cdef floating[:, ::1] dh = dh_arr
    cdef floating[:, :, ::1] dz = dz_arr
    cdef floating[:, ::1] carry = carry_arr
    cdef floating[::1] deriv = deriv_arr
    cdef floating[::1] packed = packed_arr
    cdef floating[:, :, ::1] dx = dx_arr
    cdef floating[:, ::1] dW = dW_arr
    cdef floating[:, ::1] dR = dR_arr
    cdef floating[::1] db = db_arr
    with nogil:
        _backward(B, T, F, U, &xt[0, 0, 0], &kernel[0, 0], &recurrent_kernel_t[0, 0],
                  &mask[0, 0], has_mask, go_backwards, activation, &gates[0, 0, 0],
                  &h_tm1[0, 0, 0], &d_outputs[0, 0, 0], &dh[0, 0], &dz[0, 0, 0],
                  &carry[0, 0], &deriv[0], &packed[0], &dx[0, 0, 0], &dW[0, 0], &dR[0, 0],
                  &db[0], threaded, threaded or not own_gemm)
    return batch_major(dx_arr), dh_arr, dW_arr, dR_arr, db_arr
