# GRU forward and backward (BPTT) kernels, float32 and float64.
#
# Notation (Keras 3 layout; B batch, T timesteps, F features, U units, G = 3U, gate
# blocks z, r, h):
#   x_t @ W + b_in                                   (B, G) input projection
#   reset_after=True  (bias (2, G): b_in, b_rec):
#       inner = h_tm1 @ R + b_rec
#       z = ract(xz + inner_z); r = ract(xr + inner_r); hh = act(xh + r * inner_h)
#   reset_after=False (bias (G,) = b_in):
#       z = ract(xz + h_tm1 @ R_z); r = ract(xr + h_tm1 @ R_r)
#       hh = act(xh + (r * h_tm1) @ R_h)
#   h_t = z * h_tm1 + (1 - z) * hh
# Processing step s reads timestep t (t = s, or T-1-s with go_backwards) and writes
# outputs[:, s]. A masked (b, t) keeps h and repeats the previous output.
#
# Inside the kernels everything is time-major (see _lstm.pyx for why): gates[t, b, :]
# holds the input projection, then the activated z, r, hh. Training also keeps x (T, B, F),
# h_tm1 and `aux`: inner_h (reset_after=True) or r * h_tm1 (reset_after=False).
#
# The step maths of a row is _cells.pxd's (shared with streaming); this file owns the time
# loop, the products and the masks.

import numpy as np

from crnn._kernels import _pool
from crnn._kernels._workspace import empty as workspace_empty

from cython cimport floating
from libc.string cimport memcpy, memset

from crnn._kernels._blas cimport (gemm_big, gemm_big_sum, gemm_packed, gemm_step, pack_b,
                                  packed_size)
from crnn._kernels._cells cimport (add_span, gru_backward_step_row, gru_finish_row,
                                   gru_gates_after_row, gru_gates_before_row,
                                   gru_reset_backward_row)
from crnn._kernels._common cimport (batch_major, check_blas_size, check_shape, gate_stride,
                                    part_count, part_edges, part_round, rows_time_major,
                                    time_major)
from crnn._kernels._pool cimport pool_run
from crnn._kernels._units cimport (UnitBack, UnitSplit, split_backward, units_back_product,
                                   units_back_t, units_back_whole, units_d_out, units_forward,
                                   units_gather, units_pack, units_parts, units_project,
                                   units_save_gates, units_scatter)

# Whether this build runs the parts of n_threads > 1 on crnn's thread pool (else one after
# another on the calling thread: a platform without POSIX threads).
THREADED = _pool.THREADED

# Shape of the training-only arrays when they are not needed (their pointers are never
# read then).
_UNUSED = (1, 1, 1)

# The most bytes of W for which one-thread inference projects per chunk (see gru_forward).
CHUNKED_W_BYTES_MAX = 4 << 20

cdef enum:
    # Elements between two parts' slices of a shared scratch array (a 64-byte line of
    # doubles): no line is written by two parts.
    PART_PAD = 16


cdef void _pack_r(Py_ssize_t U, const floating *R, floating *R_packed,
                  bint reset_after) noexcept nogil:
    """R packed for the per-step products: whole, or as R[:, :2U] then R[:, 2U:]."""
    cdef Py_ssize_t G = 3 * U
    if reset_after:
        pack_b(U, G, R, G, R_packed)
    else:
        pack_b(U, 2 * U, R, G, R_packed)
        pack_b(U, U, R + 2 * U, G, R_packed + packed_size(U, 2 * U, floating is double))


cdef void _forward(Py_ssize_t B, Py_ssize_t Bs, Py_ssize_t T, Py_ssize_t F, Py_ssize_t U,
                   const floating *x, const floating *W, const floating *R,
                   const floating *bias, const unsigned char *mask, bint has_mask,
                   bint go_backwards, int act, int ract, bint reset_after,
                   floating *h, floating *gates, floating *outputs, floating *work,
                   floating *R_packed, bint pack, bint projected, bint training,
                   floating *h_tm1_all, floating *aux_all, bint threaded,
                   bint blas_whole) noexcept nogil:
    """``Bs``: the rows per timestep of x (time-major), ``gates`` and the training arrays
    (the batch's, where this call runs a part of its rows from their row 0; else B). R is
    packed here unless the caller did (``pack`` False); ``projected``: the caller filled
    ``gates`` with x @ W already."""
    cdef Py_ssize_t G = 3 * U
    # row strides: inference's gates and the work rows pad each row (gate_stride)
    cdef Py_ssize_t ldz = G if training else gate_stride(G, floating is double)
    cdef Py_ssize_t ldw = gate_stride(G, floating is double)
    cdef Py_ssize_t s, t, b
    cdef floating *z
    cdef floating *hb
    cdef floating *wb
    cdef floating *out
    cdef const floating *b_rec = bias + G
    # gates = x @ W, all timesteps at once (x is time-major here), or one product per
    # timestep for a part of the rows; b_in is added per row
    if projected:
        pass
    elif Bs == B:
        gemm_big(blas_whole, False, False, T * B, G, F, x, F, W, G, 0.0, gates, ldz)
    else:
        for t in range(T):
            gemm_big(blas_whole, False, False, B, G, F, x + t * Bs * F, F, W, G, 0.0,
                     gates + t * Bs * ldz, ldz)
    cdef floating *Rh_packed = R_packed + packed_size(U, 2 * U, floating is double)
    if pack:
        _pack_r(U, R, R_packed, reset_after)
    for s in range(T):
        t = T - 1 - s if go_backwards else s
        if reset_after:
            # work = b_rec + h_tm1 @ R   (B, G)
            for b in range(B):
                memcpy(work + b * ldw, b_rec, G * sizeof(floating))
            gemm_step(threaded, B, G, U, h, U, R_packed, R, G, work, ldw)
        else:
            # gates[t, :, :2U] += h_tm1 @ R[:, :2U]
            gemm_step(threaded, B, 2 * U, U, h, U, R_packed, R, G, gates + t * Bs * ldz, ldz)
        for b in range(B):
            z = gates + (t * Bs + b) * ldz
            hb = h + b * U
            if training:
                memcpy(h_tm1_all + (t * Bs + b) * U, hb, U * sizeof(floating))
            add_span(G, bias, z)
            if reset_after:
                wb = work + b * ldw
                gru_gates_after_row(U, z, wb, ract)
                if training:
                    memcpy(aux_all + (t * Bs + b) * U, wb + 2 * U, U * sizeof(floating))
            else:
                wb = work + b * U
                gru_gates_before_row(U, z, hb, wb, ract)       # wb = r * h_tm1
                if training:
                    memcpy(aux_all + (t * Bs + b) * U, wb, U * sizeof(floating))
        if not reset_after:
            # gates[t, :, 2U:] += (r * h_tm1) @ R[:, 2U:]
            gemm_step(threaded, B, U, U, work, U, Rh_packed, R + 2 * U, G,
                      gates + t * Bs * ldz + 2 * U, ldz)
        for b in range(B):
            z = gates + (t * Bs + b) * ldz
            hb = h + b * U
            out = outputs + (b * T + s) * U
            if has_mask and not mask[b * T + t]:
                if s == 0:
                    memset(out, 0, U * sizeof(floating))
                else:
                    memcpy(out, out - U, U * sizeof(floating))
                continue
            gru_finish_row(U, z, hb, hb, out, act)


cdef struct _Split:
    # A _forward_split call's arguments, for its parts on crnn's thread pool (float or
    # double arrays: is_double)
    const Py_ssize_t *edges
    Py_ssize_t B, T, F, U, r_stride
    const void *x
    const void *W
    const void *R
    const void *bias
    const unsigned char *mask
    bint has_mask, go_backwards, reset_after, blas_whole, is_double, training, project
    Py_ssize_t n_parts
    int act, ract
    void *xt
    void *h
    void *gates
    void *outputs
    void *work
    void *R_packed
    # training: the whole batch's saved arrays (xt and gates above too), each part its rows
    void *h_tm1_all
    void *aux_all


cdef void _forward_part(const _Split *a, int p, floating *tag) noexcept nogil:
    """Part ``p`` of the rows, edges[p] .. edges[p + 1] - 1 (``tag`` picks the type).
    Inference: its x copied time-major into its slice of xt, then _forward on its slices
    of the scratch arrays. Training: x time-major whole in xt, the part's rows of the whole
    batch's gates and saved arrays, R packed once by the caller."""
    cdef Py_ssize_t b0 = a.edges[p], rows = a.edges[p + 1] - a.edges[p]
    cdef Py_ssize_t T = a.T, F = a.F, U = a.U, G = 3 * a.U
    cdef const unsigned char *mask = a.mask + b0 * T if a.has_mask else a.mask
    cdef Py_ssize_t ldz = gate_stride(G, floating is double)     # (_forward's rows)
    cdef floating *work = <floating *>a.work + b0 * ldz + p * PART_PAD
    cdef Py_ssize_t n_rows = a.T * a.B, r0, r1
    if a.training and a.project:
        # the input projection of rows r0 .. r1 - 1 of (T * B), time-major
        r0, r1 = n_rows * p // a.n_parts, n_rows * (p + 1) // a.n_parts
        if r1 > r0:
            gemm_big(a.blas_whole, False, False, r1 - r0, G, F,
                     <const floating *>a.xt + r0 * F, F, <const floating *>a.W, G, 0.0,
                     <floating *>a.gates + r0 * G, G)
        return
    if a.training:
        _forward(rows, a.B, T, F, U, <const floating *>a.xt + b0 * F, <const floating *>a.W,
                 <const floating *>a.R, <const floating *>a.bias, mask, a.has_mask,
                 a.go_backwards, a.act, a.ract, a.reset_after, <floating *>a.h + b0 * U,
                 <floating *>a.gates + b0 * G, <floating *>a.outputs + b0 * T * U, work,
                 <floating *>a.R_packed, False, True, True, <floating *>a.h_tm1_all + b0 * U,
                 <floating *>a.aux_all + b0 * U, False, a.blas_whole)
        return
    rows_time_major(rows, T, F, <const floating *>a.x + b0 * T * F,
                    <floating *>a.xt + b0 * T * F)
    _forward(rows, rows, T, F, U, <const floating *>a.xt + b0 * T * F, <const floating *>a.W,
             <const floating *>a.R, <const floating *>a.bias, mask, a.has_mask,
             a.go_backwards, a.act, a.ract, a.reset_after, <floating *>a.h + b0 * U,
             <floating *>a.gates + part_round(b0 * T * ldz) + p * PART_PAD,
             <floating *>a.outputs + b0 * T * U, work,
             <floating *>a.R_packed + p * a.r_stride, True, False, False, work, work, False,
             a.blas_whole)


cdef void _run_part(void *ctx, int p) noexcept nogil:
    """Part ``p`` of a _forward_split call, on crnn's thread pool (``ctx``: its _Split)."""
    cdef const _Split *a = <const _Split *>ctx
    if a.is_double:
        _forward_part(a, p, <double *>NULL)
    else:
        _forward_part(a, p, <float *>NULL)


cdef object _forward_split(const floating[:, :, ::1] x, const floating[:, ::1] kernel,
                           const floating[:, ::1] recurrent_kernel, const floating[::1] bias,
                           const unsigned char[:, ::1] mask, bint has_mask, bint go_backwards,
                           int act, int ract, bint reset_after, floating[:, ::1] h,
                           floating[:, :, ::1] outputs, bint blas_whole, Py_ssize_t n_parts,
                           bint training):
    """The batch's rows split into ``n_parts`` parts, run on crnn's thread pool (_pool.h;
    serially where it has no threads): each part runs _forward on its rows, and never
    calls a threaded BLAS (the caller holds BLAS's pools at one thread where the parts may
    call BLAS: blas_whole). Inference: each part on its own scratch memory. Training: the
    parts write their rows of the whole batch's saved arrays, returned as gru_forward's
    (else None)."""
    cdef Py_ssize_t B = x.shape[0], T = x.shape[1], F = x.shape[2]
    cdef Py_ssize_t U = recurrent_kernel.shape[0], G = 3 * U
    cdef bint is_double = floating is double
    dtype = np.float32 if floating is float else np.float64
    cdef Py_ssize_t[::1] edges_v = np.array(part_edges(B, n_parts), np.intp)
    cdef Py_ssize_t r_stride = part_round(packed_size(U, 2 * U, is_double)
                                          + packed_size(U, U, is_double))
    xt_arr = time_major(x) if training else workspace_empty(B * T * F, dtype)
    cdef Py_ssize_t ldz = gate_stride(G, is_double)    # inference's gate rows (_forward)
    cdef object flat_size = part_round(B * T * ldz) + n_parts * PART_PAD   # parts' slices
    gates_arr = workspace_empty((T, B, G) if training else flat_size, dtype)
    saved_shape = (T, B, U) if training else _UNUSED
    h_tm1_arr = workspace_empty(saved_shape, dtype)
    aux_arr = workspace_empty(saved_shape, dtype)
    cdef const floating[:, :, ::1] xt = xt_arr.reshape(-1, 1, 1)
    cdef const floating[:, :, ::1] gates = gates_arr.reshape(-1, 1, 1)
    cdef floating[:, :, ::1] h_tm1_all = h_tm1_arr
    cdef floating[:, :, ::1] aux_all = aux_arr
    cdef floating[::1] work = workspace_empty(B * ldz + n_parts * PART_PAD, dtype)
    # training: R packed once, shared by the parts
    cdef floating[::1] packed = workspace_empty((1 if training else n_parts) * r_stride,
                                                dtype)
    cdef _Split a
    a.edges = &edges_v[0]
    a.B, a.T, a.F, a.U, a.r_stride = B, T, F, U, r_stride
    a.x = &x[0, 0, 0]
    a.W = &kernel[0, 0]
    a.R = &recurrent_kernel[0, 0]
    a.bias = &bias[0]
    a.mask = &mask[0, 0]
    a.has_mask, a.go_backwards, a.reset_after, a.blas_whole = (has_mask, go_backwards,
                                                               reset_after, blas_whole)
    a.is_double, a.training = is_double, training
    a.act, a.ract = act, ract
    a.xt = <void *>&xt[0, 0, 0]
    a.h = &h[0, 0]
    a.gates = <void *>&gates[0, 0, 0]
    a.outputs = &outputs[0, 0, 0]
    a.work = &work[0]
    a.R_packed = &packed[0]
    a.h_tm1_all = &h_tm1_all[0, 0, 0]
    a.aux_all = &aux_all[0, 0, 0]
    a.n_parts, a.project = n_parts, False
    with nogil:
        if training:
            # the input projection split by rows of (T * B) first, then the parts' loops
            _pack_r(U, &recurrent_kernel[0, 0], &packed[0], reset_after)
            a.project = True
            pool_run(<int>n_parts, _run_part, &a)
            a.project = False
        pool_run(<int>n_parts, _run_part, &a)
    if training:
        return dict(xt=xt_arr, gates=gates_arr, h_tm1=h_tm1_arr, aux=aux_arr)
    return None


cdef void _units_step(const UnitSplit *a, int p, floating *tag) noexcept nogil:
    """Part p's share of step a.s of a units split, reset_after (packing first, when
    a.pack): the chunk's projection at its first step, then inner = b_rec + h_tm1 @ R on
    the part's gate slices and the cell on its units of every row."""
    if a.pack:
        units_pack(a, p, tag)
        return
    cdef Py_ssize_t u0 = a.edges[p], up = a.edges[p + 1] - a.edges[p]
    cdef Py_ssize_t B = a.B, T = a.T, U = a.U, gp = 3 * up, g, b
    cdef Py_ssize_t s = a.s, t = a.T - 1 - a.s if a.go_backwards else a.s
    cdef Py_ssize_t n = min(a.chunk, T - a.s0)
    cdef const floating *h_cur = <const floating *>a.h_cur
    cdef floating *h_next = <floating *>a.h_next
    cdef floating *inner = <floating *>a.tmp + p * a.tmp_stride
    cdef const floating *b_rec = <const floating *>a.bias_rec
    cdef const floating *Rp = <const floating *>a.R_packed + p * 3 * a.r_panel
    cdef floating *z
    cdef floating *out
    if s == a.s0:
        units_project(a, p, n, tag)
    z = <floating *>a.z + p * a.z_stride + (t - a.t_lo) * B * gp
    if up == U:     # one part: its slices are whole rows
        for b in range(B):
            memcpy(inner + b * gp, b_rec, gp * sizeof(floating))
    else:
        for b in range(B):
            for g in range(3):
                memcpy(inner + b * gp + g * up, b_rec + g * U + u0, up * sizeof(floating))
    for g in range(3):
        gemm_packed(B, up, U, h_cur, U, Rp + g * a.r_panel, inner + g * up, gp)
    cdef Py_ssize_t row
    cdef bint training = a.gates_all != NULL
    for b in range(B):
        out = <floating *>a.outputs + (b * T + s) * U + u0
        row = t * B + b
        if training:
            memcpy(<floating *>a.h_tm1_all + row * U + u0, h_cur + b * U + u0,
                   up * sizeof(floating))
        if a.has_mask and not a.mask[b * T + t]:
            # the state passes through
            memcpy(h_next + b * U + u0, h_cur + b * U + u0, up * sizeof(floating))
            if s == 0:
                memset(out, 0, up * sizeof(floating))
            else:
                memcpy(out, out - U, up * sizeof(floating))
            continue
        gru_gates_after_row(up, z + b * gp, inner + b * gp, a.ract)
        if training:
            memcpy(<floating *>a.aux_all + row * U + u0, inner + b * gp + 2 * up,
                   up * sizeof(floating))
        gru_finish_row(up, z + b * gp, h_cur + b * U + u0, h_next + b * U + u0, out, a.act)
        if training:
            units_save_gates(a, u0, up, row, z + b * gp)


cdef void _run_units(void *ctx, int p) noexcept nogil:
    """Part ``p`` of a units split's hand-off, on crnn's thread pool (``ctx``: UnitSplit)."""
    cdef const UnitSplit *a = <const UnitSplit *>ctx
    if a.is_double:
        _units_step(a, p, <double *>NULL)
    else:
        _units_step(a, p, <float *>NULL)


cdef void _pack_rt(Py_ssize_t U, const floating *RT, floating *RT_packed,
                   bint reset_after) noexcept nogil:
    """R^T packed: whole, or as rows R^T[:2U] then R^T[2U:]."""
    if reset_after:
        pack_b(3 * U, U, RT, U, RT_packed)
    else:
        pack_b(2 * U, U, RT, U, RT_packed)
        pack_b(U, U, RT + 2 * U * U, U, RT_packed + packed_size(2 * U, U, floating is double))


cdef void _backward(Py_ssize_t B, Py_ssize_t Bs, Py_ssize_t T, Py_ssize_t F, Py_ssize_t U,
                    const floating *x, const floating *W,
                    const floating *RT, const unsigned char *mask, bint has_mask,
                    bint go_backwards, int act, int ract, bint reset_after,
                    const floating *gates,
                    const floating *h_tm1_all, const floating *aux_all,
                    const floating *d_outputs, bint last_only,
                    const floating *zero_row, floating *dh, floating *dgx,
                    floating *dgi, floating *d_rh, floating *carry, floating *deriv,
                    floating *RT_packed, bint pack, bint whole,
                    floating *dx, floating *dW, floating *dR, floating *db,
                    bint threaded, bint blas_whole) noexcept nogil:
    """BPTT over B rows. ``Bs``: the rows per timestep of the saved arrays, dgx and dgi
    (the batch's, where this call runs a part of its rows from their row 0; else B). R^T
    packed here unless the caller did (``pack`` False); the whole-sequence products only
    with ``whole`` (else the caller runs them)."""
    cdef Py_ssize_t G = 3 * U
    cdef Py_ssize_t s, t, b, j, row
    cdef const floating *d_out
    cdef floating *dxb
    cdef floating *cr
    cdef floating *RTh_packed = RT_packed + packed_size(2 * U, U, floating is double)
    if pack:
        _pack_rt(U, RT, RT_packed, reset_after)
    for s in range(T - 1, -1, -1):
        t = T - 1 - s if go_backwards else s
        for b in range(B):
            row = t * Bs + b
            dxb = dgx + row * G
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
                memset(dxb, 0, G * sizeof(floating))
                if reset_after:
                    memset(dgi + row * G, 0, G * sizeof(floating))
                continue
            # dh <- (dh + d_out + carry) * z, its direct path to h_tm1
            gru_backward_step_row(U, gates + row * G, h_tm1_all + row * U, aux_all + row * U,
                                  dh + b * U, d_out, cr, dxb,
                                  dgi + row * G if reset_after else NULL, deriv, act, ract,
                                  reset_after)
        if reset_after:
            # dh_tm1 += d_inner_t @ R^T
            gemm_step(threaded, B, U, G, dgi + t * Bs * G, G, RT_packed, RT, U, dh, U)
        else:
            # d(r * h_tm1) = dhh_pre @ R_h^T
            memset(d_rh, 0, B * U * sizeof(floating))
            gemm_step(threaded, B, U, U, dgx + t * Bs * G + 2 * U, G, RTh_packed,
                      RT + 2 * U * U, U, d_rh, U)
            for b in range(B):
                row = t * Bs + b
                if has_mask and not mask[b * T + t]:
                    continue
                gru_reset_backward_row(U, gates + row * G, h_tm1_all + row * U,
                                       d_rh + b * U, dgx + row * G, dh + b * U, deriv, ract)
            # dh_tm1 += [dz_pre, dr_pre] @ R[:, :2U]^T
            gemm_step(threaded, B, U, 2 * U, dgx + t * Bs * G, G, RT_packed, RT, U, dh, U)
    if not whole:
        return
    # Weight and input gradients as whole-sequence GEMMs.
    # dx = dgx @ W^T ; dW = x^T @ dgx ; db_in = sum(dgx)
    if dx != NULL:      # NULL: the caller does not need dx
        gemm_big(blas_whole, False, True, T * B, F, G, dgx, G, W, G, 0.0, dx, F)
    gemm_big_sum(blas_whole, F, G, T * B, x, F, dgx, G, dW, G, db)
    if reset_after:
        # dR = h_tm1^T @ d_inner ; db_rec = sum(d_inner)
        gemm_big_sum(blas_whole, U, G, T * B, h_tm1_all, U, dgi, G, dR, G, db + G)
    else:
        # dR[:, :2U] = h_tm1^T @ dgx[:, :2U] ; dR[:, 2U:] = (r * h_tm1)^T @ dgx[:, 2U:]
        gemm_big(blas_whole, True, False, U, 2 * U, T * B, h_tm1_all, U, dgx, G, 0.0, dR, G)
        gemm_big(blas_whole, True, False, U, U, T * B,
                 aux_all, U, dgx + 2 * U, G, 0.0, dR + 2 * U, G)


cdef void _rows_back_part(const UnitBack *a, int p, floating *tag) noexcept nogil:
    """Phase 4 of training's rows split (_units.pxd, split_backward): the time loop of BPTT
    on part ``p`` of the rows, on its rows of the whole batch's arrays (R^T packed in
    phase 3; the whole-sequence products in phase 2)."""
    cdef Py_ssize_t b0 = a.edges[p], rows = a.edges[p + 1] - a.edges[p]
    cdef Py_ssize_t T = a.T, U = a.U, G = 3 * a.U
    cdef bint reset_after = not a.reset_before
    _backward(rows, a.B, T, a.F, U, NULL, NULL, <const floating *>a.RT,
              a.mask + b0 * T if a.has_mask else a.mask, a.has_mask, a.go_backwards, a.act,
              a.ract, reset_after, <const floating *>a.gates + b0 * G,
              <const floating *>a.h_tm1 + b0 * U, <const floating *>a.aux + b0 * U,
              <const floating *>a.d_outputs + b0 * (U if a.last_only else T * U),
              a.last_only, <const floating *>a.zero_row, <floating *>a.dh + b0 * U,
              <floating *>a.dz + b0 * G,
              <floating *>a.dgi + b0 * G if reset_after else <floating *>a.dgi,
              <floating *>a.d_rh + b0 * U if not reset_after else <floating *>a.d_rh,
              <floating *>a.carry + b0 * U, <floating *>a.tmp + p * a.tmp_stride,
              <floating *>a.RT_packed, False, False, NULL, NULL, NULL, NULL, False, False)


cdef void _units_back_step(const UnitBack *a, int p, floating *tag) noexcept nogil:
    """Part p's share of a backward hand-off of the units split (reset_after) or the rows
    split (_units.pxd): phases 0 and 2 the generic pieces; 1 the product of the step
    before, then the rows of step T - 1 - a.k on the part's units; 3 R^T packed whole
    (either reset mode); 4 the part's rows."""
    if a.phase == 3:
        _pack_rt(a.U, <const floating *>a.RT, <floating *>a.RT_packed, not a.reset_before)
        return
    if a.phase == 4:
        _rows_back_part(a, p, tag)
        return
    if a.phase != 1:
        units_back_whole(a, p, tag)
        return
    if a.k > 0:
        units_back_product(a, p, tag)
    if a.k == a.T:
        return
    cdef Py_ssize_t u0 = a.edges[p], up = a.edges[p + 1] - a.edges[p]
    cdef Py_ssize_t B = a.B, T = a.T, U = a.U, G = 3 * U, b, j, row
    cdef Py_ssize_t s = T - 1 - a.k, t = units_back_t(a, T - 1 - a.k)
    cdef floating *gt = <floating *>a.tmp + p * a.tmp_stride     # gates, gate-blocked
    cdef floating *dgx_t = gt + 3 * up
    cdef floating *dgi_t = dgx_t + 3 * up
    cdef floating *deriv = dgi_t + 3 * up                         # 3 up
    cdef floating *dh = <floating *>a.dh
    cdef floating *cr
    cdef const floating *d_out
    for b in range(B):
        row = t * B + b
        d_out = units_d_out(a, b, s, u0, tag)
        cr = <floating *>a.carry + b * U + u0
        if a.has_mask and not a.mask[b * T + t]:
            for j in range(up):
                cr[j] += d_out[j]
            units_scatter(a, u0, up, <const floating *>NULL, <floating *>a.dz + row * G)
            units_scatter(a, u0, up, <const floating *>NULL, <floating *>a.dgi + row * G)
            continue
        units_gather(a, u0, up, <const floating *>a.gates + row * G, gt)
        gru_backward_step_row(up, gt, <const floating *>a.h_tm1 + row * U + u0,
                              <const floating *>a.aux + row * U + u0, dh + b * U + u0, d_out,
                              cr, dgx_t, dgi_t, deriv, a.act, a.ract, True)
        units_scatter(a, u0, up, dgx_t, <floating *>a.dz + row * G)
        units_scatter(a, u0, up, dgi_t, <floating *>a.dgi + row * G)


cdef void _run_units_back(void *ctx, int p) noexcept nogil:
    """Part ``p`` of a units-split backward hand-off, on crnn's thread pool."""
    cdef const UnitBack *a = <const UnitBack *>ctx
    if a.is_double:
        _units_back_step(a, p, <double *>NULL)
    else:
        _units_back_step(a, p, <float *>NULL)


def gru_forward(const floating[:, :, ::1] x, const floating[:, ::1] kernel,
                const floating[:, ::1] recurrent_kernel, const floating[::1] bias,
                const unsigned char[:, ::1] mask, bint has_mask, bint go_backwards,
                int activation, int recurrent_activation, bint reset_after,
                const floating[:, ::1] h0, bint training, bint threaded=False, bint own_gemm=True,
                out=None, Py_ssize_t n_threads=1, Py_ssize_t split_units=-1):
    """GRU over whole sequences. ``bias`` is flat: 6U values (input row, recurrent row)
    with reset_after, else 3U. Returns (outputs, h, saved); saved is None unless
    training, else a dict of the arrays gru_backward takes by these names. Arguments are
    checked by crnn.ops.gru; here only shapes are re-checked so that nothing out of bounds
    can happen. ``n_threads`` > 1 (inference only): the rows split into that many parts (at
    most one per row) run on crnn's thread pool, each on crnn's kernels or a one-thread BLAS
    (``threaded`` is ignored then: the caller must hold BLAS's pools at one thread), or,
    with reset_after, its units (_units.pxd) where units_parts says so; ``split_units``
    (tests): 0 never takes the units path, p > 0 takes it (reset_after) with min(p, U)
    parts whatever the sizes (1: on one thread). One-thread inference and training take it
    with one part where that is faster (the projection per chunk; see below)."""
    cdef Py_ssize_t B = x.shape[0], T = x.shape[1], F = x.shape[2]
    cdef Py_ssize_t U = recurrent_kernel.shape[0], G = 3 * U
    check_shape("kernel", (kernel.shape[0], kernel.shape[1]), (F, G))
    check_shape("recurrent_kernel", (recurrent_kernel.shape[0], recurrent_kernel.shape[1]), (U, G))
    check_shape("bias", (bias.shape[0],), (2 * G if reset_after else G,))
    check_shape("initial_state[0]", (h0.shape[0], h0.shape[1]), (B, U))
    if has_mask:
        check_shape("mask", (mask.shape[0], mask.shape[1]), (B, T))
    check_blas_size(B * T, max(F, G))
    if n_threads < 1:
        raise ValueError(f"n_threads must be at least 1, received {n_threads}")
    cdef Py_ssize_t n_units = 0 if not reset_after else (
        units_parts(B, U, 3, sizeof(floating), n_threads, training) if split_units < 0
        else min(split_units, U))
    # (training's rows split here too: the parts write their rows of the saved arrays)
    cdef Py_ssize_t n_parts = 1 if n_units > 1 or split_units > 0 else part_count(
        B, n_threads, False)
    cdef floating[:, ::1] h_split
    cdef floating[:, :, ::1] outputs_split
    dtype = np.float32 if floating is float else np.float64
    h_arr = np.array(h0, dtype=dtype)
    # One thread: the units path with one part projects the input per chunk of timesteps
    # (their gates stay in L2), where _forward projects the whole sequence first; measured
    # on an AVX-512 core, inference took 0.92x the time at (64, 100, 128, 256) and 0.97x
    # at (64, 50, 512, 512), but 1.09x with a W of 12 MB (streamed from L3 at each chunk)
    # and 1.03x with 16 features. Training's forward pass the same way: a training step at
    # (64, 100, 128, 256) took 119 ms against 121 ms (bench/ab.py pairs, bench/RESULTS.md,
    # seventh session). Inference and training then run the same sums, bit for bit.
    cdef bint chunked = (reset_after and not threaded and own_gemm
                         and split_units < 0 and n_parts == 1 and n_units <= 1 and F >= 64
                         and F * G * sizeof(floating) <= CHUNKED_W_BYTES_MAX)
    if n_units > 1 or chunked or split_units == 1:
        outputs_arr = workspace_empty((B, T, U), dtype) if out is None else out
        check_shape("out", tuple(outputs_arr.shape), (B, T, U))
        h_split = h_arr
        outputs_split = outputs_arr
        saved = units_forward(3, x, kernel, recurrent_kernel, bias, mask, has_mask,
                              go_backwards, activation, recurrent_activation, h_split, None,
                              outputs_split, 0, max(1, n_units), training, _run_units)
        return outputs_arr, h_arr, saved
    if n_parts > 1:
        outputs_arr = workspace_empty((B, T, U), dtype) if out is None else out
        check_shape("out", tuple(outputs_arr.shape), (B, T, U))
        h_split = h_arr
        outputs_split = outputs_arr
        saved = _forward_split(x, kernel, recurrent_kernel, bias, mask, has_mask,
                               go_backwards, activation, recurrent_activation, reset_after,
                               h_split, outputs_split, not own_gemm, n_parts, training)
        return outputs_arr, h_arr, saved
    # (a batch of one row is time-major as given: inference reads it in place)
    xt_arr = None if B == 1 and not training else time_major(x)
    outputs_arr = workspace_empty((B, T, U), dtype) if out is None else out
    # The call's scratch memory in one array (one allocation, one memoryview: a one-step
    # call spends more on those than on its step): the step's work rows, packed R and, in
    # inference, the gates (training keeps them: an array of their own).
    cdef Py_ssize_t ldz = gate_stride(G, floating is double)     # (_forward's rows)
    cdef Py_ssize_t n_work = part_round(B * ldz)
    cdef Py_ssize_t n_r = part_round(packed_size(U, 2 * U, floating is double)
                                     + packed_size(U, U, floating is double))
    cdef floating[::1] scratch = workspace_empty(
        n_work + n_r + (0 if training else T * B * ldz), dtype)
    gates_arr = workspace_empty((T, B, G), dtype) if training else None
    cdef floating[:, :, ::1] gates_saved
    cdef floating *gates_ptr
    if training:
        gates_saved = gates_arr
        gates_ptr = &gates_saved[0, 0, 0]
    else:
        gates_ptr = &scratch[n_work + n_r]
    cdef const floating[:, :, ::1] xt = x if xt_arr is None else xt_arr
    cdef floating[:, ::1] h = h_arr
    cdef floating[:, :, ::1] outputs = outputs_arr
    check_shape("out", (outputs.shape[0], outputs.shape[1], outputs.shape[2]), (B, T, U))
    # the training-only arrays (never touched in inference: NULL there)
    cdef floating[:, :, ::1] h_tm1_all
    cdef floating[:, :, ::1] aux_all
    cdef floating *h_tm1_ptr = NULL
    cdef floating *aux_ptr = NULL
    saved = None
    if training:
        saved = dict(xt=xt_arr, gates=gates_arr, h_tm1=workspace_empty((T, B, U), dtype),
                     aux=workspace_empty((T, B, U), dtype))
        h_tm1_all, aux_all = saved["h_tm1"], saved["aux"]
        h_tm1_ptr, aux_ptr = &h_tm1_all[0, 0, 0], &aux_all[0, 0, 0]
    with nogil:
        _forward(B, B, T, F, U, &xt[0, 0, 0], &kernel[0, 0], &recurrent_kernel[0, 0],
                 &bias[0], &mask[0, 0], has_mask, go_backwards, activation,
                 recurrent_activation, reset_after, &h[0, 0], gates_ptr,
                 &outputs[0, 0, 0], &scratch[0], &scratch[n_work], True, False, training,
                 h_tm1_ptr, aux_ptr, threaded, threaded or not own_gemm)
    return outputs_arr, h_arr, saved


def gru_backward(*, const floating[:, ::1] kernel, const floating[:, ::1] recurrent_kernel_t,
                 const unsigned char[:, ::1] mask, bint has_mask, bint go_backwards,
                 int activation, int recurrent_activation, bint reset_after,
                 const floating[:, :, ::1] xt, const floating[:, :, ::1] gates,
                 const floating[:, :, ::1] h_tm1, const floating[:, :, ::1] aux,
                 const floating[:, :, ::1] d_outputs, const floating[:, ::1] d_h,
                 bint threaded=False, bint own_gemm=True, bint need_dx=True,
                 Py_ssize_t n_threads=1, Py_ssize_t split_units=-1):
    """BPTT through gru_forward(training=True), all arguments by name: ``xt`` ... ``aux``
    are its saved arrays; ``kernel`` and ``recurrent_kernel_t`` (R transposed) the weights
    of that forward call. Returns (dx, dh0, d_kernel, d_recurrent_kernel, d_bias) with
    d_bias flat like the forward's ``bias``; dx is None with ``need_dx=False`` (its product is
    skipped). ``d_outputs`` may be (B, 1, U): the last output's gradient alone.
    ``n_threads`` > 1: the units split on crnn's thread pool where units_parts says so
    (reset_after), else the rows split (at most one part per row; ``threaded`` is ignored
    then, and the caller must hold BLAS's pools at one thread); ``split_units`` (tests) as
    gru_forward's."""
    cdef Py_ssize_t T = xt.shape[0], B = xt.shape[1], F = xt.shape[2]
    cdef Py_ssize_t U = recurrent_kernel_t.shape[1], G = 3 * U
    check_shape("kernel", (kernel.shape[0], kernel.shape[1]), (F, G))
    check_shape("recurrent_kernel_t", (recurrent_kernel_t.shape[0], recurrent_kernel_t.shape[1]),
                (G, U))
    check_shape("gates", (gates.shape[0], gates.shape[1], gates.shape[2]), (T, B, G))
    for name, saved in (("h_tm1", h_tm1), ("aux", aux)):
        check_shape(name, (saved.shape[0], saved.shape[1], saved.shape[2]), (T, B, U))
    # d_outputs (B, 1, U) with T > 1: the last output's gradient only (the others' zero)
    cdef bint last_only = d_outputs.shape[1] == 1
    check_shape("d_outputs", (d_outputs.shape[0], d_outputs.shape[1], d_outputs.shape[2]),
                (B, 1 if last_only else T, U))
    check_shape("d_final_states[0]", (d_h.shape[0], d_h.shape[1]), (B, U))
    if has_mask:
        check_shape("mask", (mask.shape[0], mask.shape[1]), (B, T))
    check_blas_size(B * T, max(F, G))
    dtype = np.float32 if floating is float else np.float64
    dh_arr = np.array(d_h, dtype=dtype)
    if n_threads < 1:
        raise ValueError(f"n_threads must be at least 1, received {n_threads}")
    cdef Py_ssize_t n_units = 0 if not reset_after else (
        units_parts(B, U, 3, sizeof(floating), n_threads, True) if split_units < 0
        else min(split_units, U))
    # the units split, else the rows split, else one thread (below)
    cdef Py_ssize_t n_parts = n_units if n_units > 1 or split_units > 0 else part_count(
        B, n_threads, False)
    cdef floating[:, ::1] dh_split
    if n_parts > 1:
        dh_split = dh_arr
        dx_arr, dW_arr, dR_arr, db_arr = split_backward(
            n_units > 1, 3, reset_after, kernel, recurrent_kernel_t, mask, has_mask,
            go_backwards, activation, recurrent_activation, xt, gates, h_tm1, None, aux,
            d_outputs, need_dx, dh_split, None, not own_gemm, n_parts, _run_units_back)
        return batch_major(dx_arr) if need_dx else None, dh_arr, dW_arr, dR_arr, db_arr
    dgx_arr = workspace_empty((T, B, G), dtype)
    dgi_arr = workspace_empty((T, B, G) if reset_after else _UNUSED, dtype)
    d_rh_arr = workspace_empty((B, U), dtype)
    carry_arr = np.zeros((B, U), dtype)
    zero_row_arr = np.zeros(U, dtype)
    deriv_arr = workspace_empty(G, dtype)
    packed_arr = workspace_empty(packed_size(G, U, floating is double), dtype)
    dx_arr = workspace_empty((T, B, F) if need_dx else _UNUSED, dtype)
    dW_arr = workspace_empty((F, G), dtype)
    dR_arr = workspace_empty((U, G), dtype)
    db_arr = workspace_empty(2 * G if reset_after else G, dtype)
    cdef floating[:, ::1] dh = dh_arr
    cdef floating[:, :, ::1] dgx = dgx_arr
    cdef floating[:, :, ::1] dgi = dgi_arr
    cdef floating[:, ::1] d_rh = d_rh_arr
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
        _backward(B, B, T, F, U, &xt[0, 0, 0], &kernel[0, 0], &recurrent_kernel_t[0, 0],
                  &mask[0, 0], has_mask, go_backwards, activation, recurrent_activation,
                  reset_after, &gates[0, 0, 0], &h_tm1[0, 0, 0], &aux[0, 0, 0],
                  &d_outputs[0, 0, 0], last_only, &zero_row[0], &dh[0, 0], &dgx[0, 0, 0],
                  &dgi[0, 0, 0], &d_rh[0, 0], &carry[0, 0], &deriv[0], &packed[0], True,
                  True, dx_ptr, &dW[0, 0], &dR[0, 0], &db[0], threaded,
                  threaded or not own_gemm)
    return batch_major(dx_arr) if need_dx else None, dh_arr, dW_arr, dR_arr, db_arr
