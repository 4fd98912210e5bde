# LSTM forward and backward (BPTT) kernels, float32 and float64.
#
# Notation (Keras 3 layout; B batch, T timesteps, F features, U units, G = 4U):
#   z_t   = x_t @ W + h_tm1 @ R + b              (B, G), gate blocks i, f, c, o
#   i, f, o = recurrent_activation(z_i, z_f, z_o);  g = activation(z_c)
#   c_t   = f * c_tm1 + i * g;   h_t = o * activation(c_t)
# Processing step s reads timestep t (t = s, or T-1-s with go_backwards) and writes
# outputs[:, s]. A masked (b, t) keeps h and c and repeats the previous output.
#
# Memory layout: inside the kernels everything is time-major. gates[t, b, :] holds z_t for
# sample b, so the input projection of a run of timesteps is one GEMM over x transposed to
# (T, B, F), and step t's block is contiguous (B, G) for the per-step recurrent GEMM.
# (A batch-major block would have rows T*G apart: a multiple of 4 KiB that thrashes cache
# sets.) Outputs are written straight into the (B, T, U) array users see. Training keeps,
# per (t, b): the activated gates, h_tm1, c_tm1 and activation(c_t).
#
# The step maths of a row is _cells.pxd's (shared with streaming); this file owns the time
# loop, the products and the masks.

import numpy as np

from crnn._kernels import _pool
from crnn._kernels._workspace import empty as workspace_empty

from cython cimport floating
from libc.string cimport memcpy, memset

from crnn._kernels._blas cimport (gemm_big, gemm_big_sum, gemm_packed, gemm_packed_big,
                                  gemm_step, pack_b, packed_size)
from crnn._kernels._cells cimport lstm_backward_step_row, lstm_forward_row
from crnn._kernels._common cimport (batch_major, check_blas_size, check_shape, gate_stride,
                                    part_count, part_edges, part_round, rows_time_major,
                                    time_major)
from crnn._kernels._pool cimport pool_run
from crnn._kernels._units cimport (UnitBack, UnitSplit, split_backward, units_back_product,
                                   units_back_t, units_back_whole, units_d_out, units_forward,
                                   units_gather, units_pack, units_parts, units_project,
                                   units_save_gates, units_scatter)

cdef extern from "_fastmath.h" nogil:
    int crnn_isa()    # 2 on an AVX-512 CPU

# Whether this build runs the parts of n_threads > 1 on crnn's thread pool (else one after
# another on the calling thread: a platform without POSIX threads).
THREADED = _pool.THREADED

# Shape of the training-only arrays when they are not needed (their pointers are never
# read then).
_UNUSED = (1, 1, 1)

# On one thread, the forward pass projects the input per chunk of timesteps, each chunk
# just before its steps, into about this many bytes of gates (they stay in L2 between the
# projection and the steps; inference reuses one such buffer instead of a (T, B, 4U)
# array), with crnn's blocked kernel on W packed once per call. Measured for inference on
# an AVX-512 core against one whole-sequence projection by OpenBLAS's AVX-512 kernel:
# 0.87x the time at (64, 100, 128, 256), but 1.02x at (64, 50, 512, 512) and 1.08x at
# (16, 25, 1024, 1024), where W no longer stays in cache, and 1.15x at (32, 50, 16, 64)
# (16 features: the products are mostly output traffic); BLAS per chunk would repack W at
# every chunk (1.3x). So with an AVX-512 BLAS kernel and a W larger than W_BYTES_CACHED or
# under 64 features, or with several BLAS threads, BLAS projects the whole sequence.
CHUNK_BYTES = 1 << 19
# ... and at most this many timesteps (small layers: enough rows for the blocked GEMM).
CHUNK_STEPS_MAX = 64
# A packed W larger than this (it then streams from L3 at each product) is projected for
# at least CHUNK_ROWS_MIN rows (batch x timesteps) at a time, whatever the gates' size.
W_BYTES_CACHED = 1 << 20
CHUNK_ROWS_MIN = 256
# A packed W larger than this streams from L3 or memory at each chunk: its gates are
# projected in chunks of up to CHUNK_BYTES_STREAMED (at (16, 25, 1024, 1024), one chunk of
# 25 steps against 16 + 9: 0.95-0.98x the time, one thread or two).
W_BYTES_STREAMED = 4 << 20
CHUNK_BYTES_STREAMED = 16 << 20


# Training computes a chunk's gates in the chunk buffer, its rows padded, as inference does,
# and copies each step's activated gates on into the saved (T, B, G) array when a row of
# gates takes TRAIN_COPY_BYTES or more (4 KiB rows put a product's 8-row register block in
# one L1 set; see gate_stride): a training step took 0.97x the time at (64, 50, 512, 512)
# and (16, 25, 1024, 1024) (bench/ab.py pairs, bench/RESULTS.md, seventh session).
# Smaller rows are computed in place in the saved array, where the copy costs more than
# the padding saves.
cdef enum:
    TRAIN_COPY_BYTES = 4096


cdef inline bint _train_in_place(Py_ssize_t G, bint double_precision) noexcept nogil:
    """Whether training's forward pass computes the gates in place in the saved array (rows
    under TRAIN_COPY_BYTES) rather than in the padded chunk buffer."""
    return G * (8 if double_precision else 4) < TRAIN_COPY_BYTES


def inference_chunk(Py_ssize_t batch, Py_ssize_t units, Py_ssize_t features,
                    bint double_precision):
    """Timesteps per projection chunk of the forward pass for these sizes."""
    cdef Py_ssize_t size = 8 if double_precision else 4
    cdef Py_ssize_t steps = CHUNK_BYTES // max(1, batch * 4 * units * size)
    if features * 4 * units * size > W_BYTES_CACHED:
        steps = max(steps, (CHUNK_ROWS_MIN + batch - 1) // max(1, batch))
    if features * 4 * units * size > W_BYTES_STREAMED:
        steps = max(steps, CHUNK_BYTES_STREAMED // max(1, batch * 4 * units * size))
    return max(1, min(CHUNK_STEPS_MAX, steps))


cdef void _forward(Py_ssize_t B, Py_ssize_t Bs, Py_ssize_t T, Py_ssize_t F, Py_ssize_t U,
                   Py_ssize_t chunk, const floating *x, const floating *W, const floating *R,
                   const floating *bias, const unsigned char *mask, bint has_mask,
                   bint go_backwards, int act, int ract, Py_ssize_t x_t, Py_ssize_t x_b,
                   floating *h, floating *c, floating *gates, floating *outputs,
                   floating *act_c_tmp, floating *R_packed, floating *W_packed, bint pack,
                   bint projected, bint training, floating *gates_all, floating *h_tm1_all,
                   floating *c_tm1_all, floating *act_c_all, bint threaded,
                   bint blas_proj) noexcept nogil:
    """The input projection runs per chunk of ``chunk`` timesteps, just before their steps,
    into rows pre-filled with the bias (so neither a zero pass nor a bias pass is needed),
    of a reused (chunk, B, ldz) buffer ``gates`` whose rows are padded (gate_stride);
    training copies each step's activated gates on into ``gates_all`` (T, Bs, G), or
    computes them there in place (_train_in_place; ``gates`` unused then). W is
    packed once (unless BLAS does the projection, ``blas_proj``), and R, here unless the
    caller did (``pack`` False). Training and inference run the same sums in the same
    order. x[t, b] is at x + t * x_t + b * x_b: time-major (x_t = B * x_b) projects a chunk
    in one product, else one per timestep. ``Bs``: the rows per timestep of the training
    arrays (the batch's, where this call runs a part of its rows from row 0 of
    ``gates_all``, ``h_tm1_all``...; else B). ``projected`` (training): the caller filled
    ``gates_all`` with the bias plus x @ W already (and packed R); the steps then run on
    it in place (``gates`` unused)."""
    cdef Py_ssize_t G = 4 * U
    cdef bint in_place = training and (projected or _train_in_place(G, floating is double))
    cdef Py_ssize_t Bz = Bs if in_place else B
    # gate rows' stride: the chunk buffer pads each row (gate_stride: with rows of 4 KiB,
    # a register block's 8 rows fell in one L1 set)
    cdef Py_ssize_t ldz = G if in_place else gate_stride(G, floating is double)
    cdef Py_ssize_t s, s0, n, t, t_lo, b, tt
    cdef floating *zc
    cdef floating *z
    cdef floating *hb
    cdef floating *cb
    cdef floating *out
    if pack:
        pack_b(U, G, R, G, R_packed)
        if not blas_proj and not projected:
            pack_b(F, G, W, G, W_packed)
    s0 = 0
    while s0 < T:
        n = min(chunk, T - s0)
        # the chunk's timesteps are t_lo .. t_lo + n - 1 in either direction
        t_lo = T - s0 - n if go_backwards else s0
        zc = gates_all + t_lo * Bz * G if in_place else gates
        if projected:
            pass
        elif x_t == B * x_b and Bz == B:     # (time-major x, all the rows)
            for tt in range(n * B):
                memcpy(zc + tt * ldz, bias, G * sizeof(floating))
            gemm_packed_big(blas_proj, n * B, G, F, x + t_lo * x_t, x_b, W_packed, W, G, zc,
                            ldz)
        else:
            for t in range(t_lo, t_lo + n):
                for b in range(B):
                    memcpy(zc + ((t - t_lo) * Bz + b) * ldz, bias, G * sizeof(floating))
                gemm_packed_big(blas_proj, B, G, F, x + t * x_t, x_b, W_packed, W, G,
                                zc + (t - t_lo) * Bz * ldz, ldz)
        for s in range(s0, s0 + n):
            t = T - 1 - s if go_backwards else s
            z = zc + (t - t_lo) * Bz * ldz
            # z += h_tm1 @ R
            gemm_step(threaded, B, G, U, h, U, R_packed, R, G, z, ldz)
            for b in range(B):
                hb = h + b * U
                cb = c + b * U
                out = outputs + (b * T + s) * U
                if training:
                    memcpy(h_tm1_all + (t * Bs + b) * U, hb, U * sizeof(floating))
                    memcpy(c_tm1_all + (t * Bs + b) * U, cb, U * sizeof(floating))
                if has_mask and not mask[b * T + t]:
                    if s == 0:
                        memset(out, 0, U * sizeof(floating))
                    else:
                        memcpy(out, out - U, U * sizeof(floating))
                    continue
                lstm_forward_row(U, z + b * ldz, cb, hb,
                                 act_c_all + (t * Bs + b) * U if training else act_c_tmp,
                                 act, ract, out)
                if training and not in_place:
                    memcpy(gates_all + (t * Bs + b) * G, z + b * ldz, G * sizeof(floating))
        s0 += n


cdef struct _Split:
    # A _forward_split call's arguments, for its parts on crnn's thread pool (float or
    # double arrays: is_double)
    const Py_ssize_t *edges
    const Py_ssize_t *chunks
    const Py_ssize_t *offsets
    Py_ssize_t B, T, F, U, r_stride, w_stride
    const void *x
    const void *W
    const void *R
    const void *bias
    const unsigned char *mask
    bint has_mask, go_backwards, x_as_given, blas_proj, is_double, training, project
    Py_ssize_t n_parts
    int act, ract
    void *xt
    void *h
    void *c
    void *gates
    void *outputs
    void *act_c_tmp
    void *R_packed
    void *W_packed
    # training: the whole batch's saved arrays (gates above too), each part its rows
    void *h_tm1_all
    void *c_tm1_all
    void *act_c_all


cdef void _forward_part(const _Split *a, int p, floating *tag) noexcept nogil:
    """Part ``p`` of the rows, edges[p] .. edges[p + 1] - 1 (``tag`` picks the type).
    Inference: on this part's slices of the scratch arrays, x read where it is
    (x_as_given) or copied time-major into xt's slice of the part, R and W packed into the
    part's own buffers. Training: x time-major whole in xt, the part's rows of the whole
    batch's gates and saved arrays, R and W packed once by the caller."""
    cdef Py_ssize_t b0 = a.edges[p], rows = a.edges[p + 1] - a.edges[p]
    cdef Py_ssize_t T = a.T, F = a.F, U = a.U, G = 4 * a.U
    cdef const floating *xp = <const floating *>a.x + b0 * T * F
    cdef const unsigned char *mask = a.mask + b0 * T if a.has_mask else a.mask
    cdef floating *act_c_tmp = <floating *>a.act_c_tmp + p * part_round(U)
    cdef Py_ssize_t x_t = F, x_b = T * F
    cdef Py_ssize_t n_rows = a.T * a.B, r0, r1, r
    if a.training and a.project:
        # the input projection of rows r0 .. r1 - 1 of (T * B), time-major
        r0, r1 = n_rows * p // a.n_parts, n_rows * (p + 1) // a.n_parts
        for r in range(r0, r1):
            memcpy(<floating *>a.gates + r * G, a.bias, G * sizeof(floating))
        if r1 > r0:
            gemm_packed_big(a.blas_proj, r1 - r0, G, F, <const floating *>a.xt + r0 * F, F,
                            <const floating *>a.W_packed, <const floating *>a.W, G,
                            <floating *>a.gates + r0 * G, G)
        return
    if a.training:
        _forward(rows, a.B, T, F, U, T, <const floating *>a.xt + b0 * F,
                 <const floating *>a.W, <const floating *>a.R, <const floating *>a.bias,
                 mask, a.has_mask, a.go_backwards, a.act, a.ract, a.B * F, F,
                 <floating *>a.h + b0 * U, <floating *>a.c + b0 * U, act_c_tmp,
                 <floating *>a.outputs + b0 * T * U, act_c_tmp, <floating *>a.R_packed,
                 <floating *>a.W_packed, False, True, True, <floating *>a.gates + b0 * G,
                 <floating *>a.h_tm1_all + b0 * U, <floating *>a.c_tm1_all + b0 * U,
                 <floating *>a.act_c_all + b0 * U, False, a.blas_proj)
        return
    if not a.x_as_given:
        rows_time_major(rows, T, F, xp, <floating *>a.xt + b0 * T * F)
        xp = <floating *>a.xt + b0 * T * F
        x_t = rows * F
        x_b = F
    _forward(rows, rows, T, F, U, a.chunks[p], xp, <const floating *>a.W,
             <const floating *>a.R, <const floating *>a.bias, mask, a.has_mask,
             a.go_backwards, a.act, a.ract, x_t, x_b, <floating *>a.h + b0 * U,
             <floating *>a.c + b0 * U, <floating *>a.gates + a.offsets[p],
             <floating *>a.outputs + b0 * T * U, act_c_tmp,
             <floating *>a.R_packed + p * a.r_stride, <floating *>a.W_packed + p * a.w_stride,
             True, False, False, act_c_tmp, act_c_tmp, act_c_tmp, act_c_tmp, False,
             a.blas_proj)


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
                           int act, int ract, floating[:, ::1] h, floating[:, ::1] c,
                           floating[:, :, ::1] outputs, Py_ssize_t chunk, bint blas_proj,
                           bint x_as_given, Py_ssize_t n_parts, bint training):
    """The batch's rows split into ``n_parts`` parts, run on crnn's thread pool (_pool.h;
    serially where it has no threads): each part runs _forward on its rows, and never
    calls a threaded BLAS (the caller holds BLAS's pools at one thread where its kernel may
    call BLAS: blas_proj). Inference: each part on its own scratch memory. Training: the
    parts write their rows of the whole batch's saved arrays, returned as lstm_forward's
    (else None)."""
    cdef Py_ssize_t B = x.shape[0], T = x.shape[1], F = x.shape[2]
    cdef Py_ssize_t U = recurrent_kernel.shape[0], G = 4 * U
    cdef Py_ssize_t p
    cdef bint is_double = floating is double
    dtype = np.float32 if floating is float else np.float64
    edges = part_edges(B, n_parts)
    chunks, gate_offsets, total = [], [], 0
    for p in range(n_parts):
        rows = edges[p + 1] - edges[p]
        steps = chunk if chunk > 0 else (
            T if blas_proj else inference_chunk(rows, U, F, is_double))
        steps = max(1, min(T, steps))
        chunks.append(steps)
        gate_offsets.append(total)
        total += part_round(steps * rows * gate_stride(G, is_double))
    cdef Py_ssize_t[::1] edges_v = np.array(edges, np.intp)
    cdef Py_ssize_t[::1] chunks_v = np.array(chunks, np.intp)
    cdef Py_ssize_t[::1] offsets_v = np.array(gate_offsets, np.intp)
    # training: R and W packed once, shared by the parts
    cdef Py_ssize_t n_packed = 1 if training else n_parts
    cdef Py_ssize_t r_stride = part_round(packed_size(U, G, is_double))
    cdef Py_ssize_t w_stride = 1 if blas_proj else part_round(packed_size(F, G, is_double))
    gates_arr = workspace_empty((T, B, G) if training else total, dtype)
    saved_shape = (T, B, U) if training else _UNUSED
    h_tm1_arr = workspace_empty(saved_shape, dtype)
    c_tm1_arr = workspace_empty(saved_shape, dtype)
    act_c_arr = workspace_empty(saved_shape, dtype)
    xt_arr = time_major(x) if training else workspace_empty(
        1 if x_as_given else B * T * F, dtype)
    cdef const floating[:, :, ::1] gates = gates_arr.reshape(-1, 1, 1)
    cdef floating[:, :, ::1] h_tm1_all = h_tm1_arr
    cdef floating[:, :, ::1] c_tm1_all = c_tm1_arr
    cdef floating[:, :, ::1] act_c_all = act_c_arr
    cdef const floating[:, :, ::1] xt = xt_arr.reshape(-1, 1, 1)
    cdef floating[::1] act_c_tmp = workspace_empty(n_parts * part_round(U), dtype)
    cdef floating[::1] packed = workspace_empty(n_packed * r_stride, dtype)
    cdef floating[::1] w_packed = workspace_empty(n_packed * w_stride, dtype)
    cdef _Split a
    a.edges = &edges_v[0]
    a.chunks = &chunks_v[0]
    a.offsets = &offsets_v[0]
    a.B, a.T, a.F, a.U, a.r_stride, a.w_stride = B, T, F, U, r_stride, w_stride
    a.x = &x[0, 0, 0]
    a.W = &kernel[0, 0]
    a.R = &recurrent_kernel[0, 0]
    a.bias = &bias[0]
    a.mask = &mask[0, 0]
    a.has_mask, a.go_backwards, a.x_as_given, a.blas_proj = (has_mask, go_backwards,
                                                             x_as_given, blas_proj)
    a.is_double, a.training = is_double, training
    a.act, a.ract = act, ract
    a.xt = <void *>&xt[0, 0, 0]
    a.h = &h[0, 0]
    a.c = &c[0, 0]
    a.gates = <void *>&gates[0, 0, 0]
    a.outputs = &outputs[0, 0, 0]
    a.act_c_tmp = &act_c_tmp[0]
    a.R_packed = &packed[0]
    a.W_packed = &w_packed[0]
    a.h_tm1_all = &h_tm1_all[0, 0, 0]
    a.c_tm1_all = &c_tm1_all[0, 0, 0]
    a.act_c_all = &act_c_all[0, 0, 0]
    a.n_parts, a.project = n_parts, False
    with nogil:
        if training:
            # the input projection split by rows of (T * B) first, then the parts' loops
            pack_b(U, G, &recurrent_kernel[0, 0], G, &packed[0])
            if not blas_proj:
                pack_b(F, G, &kernel[0, 0], G, &w_packed[0])
            a.project = True
            pool_run(<int>n_parts, _run_part, &a)
            a.project = False
        pool_run(<int>n_parts, _run_part, &a)
    if training:
        return dict(xt=xt_arr, gates=gates_arr, h_tm1=h_tm1_arr, c_tm1=c_tm1_arr,
                    act_c=act_c_arr)
    return None


cdef void _units_step(const UnitSplit *a, int p, floating *tag) noexcept nogil:
    """Part p's share of step a.s of a units split (packing first, when a.pack): the
    chunk's projection at its first step, then z += h_tm1 @ R on the part's gate slices
    and the cell on its units of every row."""
    if a.pack:
        units_pack(a, p, tag)
        return
    cdef Py_ssize_t u0 = a.edges[p], up = a.edges[p + 1] - a.edges[p]
    cdef Py_ssize_t B = a.B, T = a.T, U = a.U, gp = 4 * up, g, b
    cdef Py_ssize_t s = a.s, t = a.T - 1 - a.s if a.go_backwards else a.s
    cdef Py_ssize_t n = min(a.chunk, T - a.s0)
    cdef const floating *h_cur = <const floating *>a.h_cur
    cdef floating *h_next = <floating *>a.h_next
    cdef floating *c = <floating *>a.c
    cdef floating *ac = <floating *>a.tmp + p * a.tmp_stride
    cdef const floating *Rp = <const floating *>a.R_packed + p * 4 * a.r_panel
    cdef floating *z
    cdef floating *out
    if s == a.s0:
        units_project(a, p, n, tag)
    z = <floating *>a.z + p * a.z_stride + (t - a.t_lo) * B * gp
    for g in range(4):
        gemm_packed(B, up, U, h_cur, U, Rp + g * a.r_panel, z + g * up, gp)
    cdef Py_ssize_t row
    cdef bint training = a.gates_all != NULL
    for b in range(B):
        out = <floating *>a.outputs + (b * T + s) * U + u0
        row = t * B + b
        if training:
            memcpy(<floating *>a.h_tm1_all + row * U + u0, h_cur + b * U + u0,
                   up * sizeof(floating))
            memcpy(<floating *>a.c_tm1_all + row * U + u0, c + b * U + u0,
                   up * sizeof(floating))
        if a.has_mask and not a.mask[b * T + t]:
            memcpy(h_next + b * U + u0, h_cur + b * U + u0, up * sizeof(floating))
            if s == 0:
                memset(out, 0, up * sizeof(floating))
            else:
                memcpy(out, out - U, up * sizeof(floating))
            continue
        lstm_forward_row(up, z + b * gp, c + b * U + u0, h_next + b * U + u0,
                         <floating *>a.aux_all + row * U + u0 if training else ac, a.act,
                         a.ract, out)
        if training:
            units_save_gates(a, u0, up, row, z + b * gp)


cdef void _run_units(void *ctx, int p) noexcept nogil:
    """Part ``p`` of a units split's hand-off, on crnn's thread pool (``ctx``: UnitSplit)."""
    cdef const UnitSplit *a = <const UnitSplit *>ctx
    if a.is_double:
        _units_step(a, p, <double *>NULL)
    else:
        _units_step(a, p, <float *>NULL)


cdef void _backward(Py_ssize_t B, Py_ssize_t Bs, Py_ssize_t T, Py_ssize_t F, Py_ssize_t U,
                    const floating *x, const floating *W, const floating *RT,
                    const unsigned char *mask, bint has_mask,
                    bint go_backwards, int act, int ract, const floating *gates,
                    const floating *h_tm1_all,
                    const floating *c_tm1_all, const floating *act_c_all,
                    const floating *d_outputs, bint last_only,
                    const floating *zero_row, floating *dh, floating *dc,
                    floating *dz, floating *carry, floating *deriv, floating *RT_packed,
                    bint pack, bint whole, floating *dx, floating *dW, floating *dR,
                    floating *db, bint threaded, bint blas_whole) noexcept nogil:
    """BPTT over B rows. ``Bs``: the rows per timestep of the saved arrays and dz (the
    batch's, where this call runs a part of its rows from row 0 of ``gates``, ``dz``...;
    else B). R^T packed here unless the caller did (``pack`` False); the whole-sequence
    products only with ``whole`` (else the caller runs them)."""
    cdef Py_ssize_t G = 4 * U
    cdef Py_ssize_t s, t, b, j, row
    cdef const floating *d_out
    cdef floating *dzb
    cdef floating *cr
    if pack:
        pack_b(G, U, RT, U, RT_packed)
    for s in range(T - 1, -1, -1):
        t = T - 1 - s if go_backwards else s
        for b in range(B):
            row = t * Bs + b
            dzb = dz + row * G
            if not last_only:
                d_out = d_outputs + (b * T + s) * U
            elif s == T - 1:
                d_out = d_outputs + b * U
            else:       # the outputs before the last have no gradient
                d_out = zero_row
            cr = carry + b * U
            if has_mask and not mask[b * T + t]:
                # States pass through; this output was a copy of the previous one.
                for j in range(U):
                    cr[j] += d_out[j]
                memset(dzb, 0, G * sizeof(floating))
                continue
            # (dh zeroed after: h_tm1 reaches h_t only through z_t, the GEMM below)
            lstm_backward_step_row(U, gates + row * G, c_tm1_all + row * U,
                                   act_c_all + row * U, dh + b * U, d_out, cr, dc + b * U, dzb,
                                   deriv, act, ract)
        # dh_tm1 += dz_t @ R^T (masked rows of dz_t are zero, so their dh passes through)
        gemm_step(threaded, B, U, G, dz + t * Bs * G, G, RT_packed, RT, U, dh, U)
    if not whole:
        return
    # Weight and input gradients as whole-sequence GEMMs.
    # dx = dz @ W^T ; dW = x^T @ dz ; dR = h_tm1^T @ dz ; db = sum(dz)
    if dx != NULL:      # NULL: the caller does not need dx
        gemm_big(blas_whole, False, True, T * B, F, G, dz, G, W, G, 0.0, dx, F)
    gemm_big_sum(blas_whole, F, G, T * B, x, F, dz, G, dW, G, db)
    gemm_big(blas_whole, True, False, U, G, T * B, h_tm1_all, U, dz, G, 0.0, dR, G)


cdef void _rows_back_part(const UnitBack *a, int p, floating *tag) noexcept nogil:
    """Phase 4 of training's rows split (_units.pxd, split_backward): the time loop of BPTT
    on part ``p`` of the rows, on its rows of the whole batch's arrays (R^T packed in
    phase 3; the whole-sequence products in phase 2)."""
    cdef Py_ssize_t b0 = a.edges[p], rows = a.edges[p + 1] - a.edges[p]
    cdef Py_ssize_t T = a.T, U = a.U, G = 4 * a.U
    _backward(rows, a.B, T, a.F, U, NULL, NULL, <const floating *>a.RT,
              a.mask + b0 * T if a.has_mask else a.mask, a.has_mask, a.go_backwards, a.act,
              a.ract, <const floating *>a.gates + b0 * G,
              <const floating *>a.h_tm1 + b0 * U, <const floating *>a.c_tm1 + b0 * U,
              <const floating *>a.aux + b0 * U,
              <const floating *>a.d_outputs + b0 * (U if a.last_only else T * U),
              a.last_only, <const floating *>a.zero_row, <floating *>a.dh + b0 * U,
              <floating *>a.dc + b0 * U, <floating *>a.dz + b0 * G,
              <floating *>a.carry + b0 * U, <floating *>a.tmp + p * a.tmp_stride,
              <floating *>a.RT_packed, False, False, NULL, NULL, NULL, NULL, False, False)


cdef void _units_back_step(const UnitBack *a, int p, floating *tag) noexcept nogil:
    """Part p's share of a backward hand-off of the units or rows split (_units.pxd):
    phases 0 and 2 the generic pieces; 1 the product of the step before, then the rows of
    step T - 1 - a.k on the part's units; 3 R^T packed whole; 4 the part's rows."""
    if a.phase == 3:
        pack_b(4 * a.U, a.U, <const floating *>a.RT, a.U, <floating *>a.RT_packed)
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
    cdef Py_ssize_t B = a.B, T = a.T, U = a.U, G = 4 * U, b, j, row
    cdef Py_ssize_t s = T - 1 - a.k, t = units_back_t(a, T - 1 - a.k)
    cdef floating *gt = <floating *>a.tmp + p * a.tmp_stride     # gates, gate-blocked
    cdef floating *dzt = gt + 4 * up                              # dz, gate-blocked
    cdef floating *deriv = dzt + 4 * up                           # 5 up
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
            continue
        units_gather(a, u0, up, <const floating *>a.gates + row * G, gt)
        lstm_backward_step_row(up, gt, <const floating *>a.c_tm1 + row * U + u0,
                               <const floating *>a.aux + row * U + u0, dh + b * U + u0,
                               d_out, cr, <floating *>a.dc + b * U + u0, dzt, deriv, a.act,
                               a.ract)
        units_scatter(a, u0, up, dzt, <floating *>a.dz + row * G)


cdef void _run_units_back(void *ctx, int p) noexcept nogil:
    """Part ``p`` of a units-split backward hand-off, on crnn's thread pool."""
    cdef const UnitBack *a = <const UnitBack *>ctx
    if a.is_double:
        _units_back_step(a, p, <double *>NULL)
    else:
        _units_back_step(a, p, <float *>NULL)


def lstm_forward(const floating[:, :, ::1] x, const floating[:, ::1] kernel,
                 const floating[:, ::1] recurrent_kernel, const floating[::1] bias,
                 const unsigned char[:, ::1] mask, bint has_mask, bint go_backwards,
                 int activation, int recurrent_activation,
                 const floating[:, ::1] h0, const floating[:, ::1] c0, bint training,
                 bint threaded=False, bint own_gemm=True, Py_ssize_t chunk=0,
                 out=None, Py_ssize_t n_threads=1, Py_ssize_t split_units=-1):
    """LSTM over whole sequences. Returns (outputs, h, c, saved); saved is None unless
    training, else a dict of the arrays lstm_backward takes by these names. Arguments are
    checked by crnn.ops.lstm; here only shapes are re-checked so that nothing out of
    bounds can happen. ``chunk``: timesteps per input-projection chunk (0: inference_chunk's
    choice). ``n_threads`` > 1 (inference only): the rows split into that many parts (at
    most one per row) run on crnn's thread pool, each on crnn's kernels or a one-thread BLAS
    (``threaded`` is ignored then: the caller must hold BLAS's pools at one thread), or
    its units (_units.pxd) where units_parts says so; ``split_units`` (tests): 0 never
    splits the units, p > 0 runs the units path with min(p, U) parts whatever the sizes
    (1: on one thread)."""
    cdef Py_ssize_t B = x.shape[0], T = x.shape[1], F = x.shape[2]
    cdef Py_ssize_t U = recurrent_kernel.shape[0], G = 4 * U
    check_shape("kernel", (kernel.shape[0], kernel.shape[1]), (F, G))
    check_shape("recurrent_kernel", (recurrent_kernel.shape[0], recurrent_kernel.shape[1]), (U, G))
    check_shape("bias", (bias.shape[0],), (G,))
    check_shape("initial_state[0]", (h0.shape[0], h0.shape[1]), (B, U))
    check_shape("initial_state[1]", (c0.shape[0], c0.shape[1]), (B, U))
    if has_mask:
        check_shape("mask", (mask.shape[0], mask.shape[1]), (B, T))
    check_blas_size(B * T, max(F, G))
    if n_threads < 1:
        raise ValueError(f"n_threads must be at least 1, received {n_threads}")
    cdef Py_ssize_t n_units = (units_parts(B, U, 4, sizeof(floating), n_threads, training)
                               if split_units < 0 else min(split_units, U))
    # (training's rows split here too: the parts write their rows of the saved arrays)
    cdef Py_ssize_t n_parts = 1 if n_units > 1 or split_units > 0 else part_count(
        B, n_threads, False)
    cdef floating[:, ::1] h_split
    cdef floating[:, ::1] c_split
    cdef floating[:, :, ::1] outputs_split
    if n_parts > 1:
        threaded = False
    dtype = np.float32 if floating is float else np.float64
    h_arr = np.array(h0, dtype=dtype)
    c_arr = np.array(c0, dtype=dtype)
    # The projection runs on crnn's kernel on one thread and AVX-512 even where BLAS does
    # the whole-sequence products of the backward pass (see CHUNK_BYTES).
    # (for a W that stays in cache and enough features: otherwise BLAS whole, measured faster)
    blas_proj = threaded or not (own_gemm or (
        crnn_isa() == 2 and F >= 64 and F * G * sizeof(floating) <= W_BYTES_CACHED))
    # Training keeps x time-major for the backward pass's products; inference on crnn's
    # kernel reads the (B, T, F) input where it is, one product per timestep.
    # (only for a W that stays in cache, and features enough that a product of B rows is
    # not dominated by reading and writing its output)
    cdef bint x_as_given = not (training or blas_proj) and F >= 64 and (
        F * G * sizeof(floating) <= W_BYTES_CACHED)
    if n_units > 1 or split_units == 1:
        outputs_arr = workspace_empty((B, T, U), dtype) if out is None else out
        check_shape("out", tuple(outputs_arr.shape), (B, T, U))
        h_split = h_arr
        c_split = c_arr
        outputs_split = outputs_arr
        saved = units_forward(4, x, kernel, recurrent_kernel, bias, mask, has_mask,
                              go_backwards, activation, recurrent_activation, h_split, c_arr,
                              outputs_split, chunk, max(1, n_units), training, _run_units)
        return outputs_arr, h_arr, c_arr, saved
    if n_parts > 1:
        outputs_arr = workspace_empty((B, T, U), dtype) if out is None else out
        check_shape("out", tuple(outputs_arr.shape), (B, T, U))
        h_split = h_arr
        c_split = c_arr
        outputs_split = outputs_arr
        saved = _forward_split(x, kernel, recurrent_kernel, bias, mask, has_mask,
                               go_backwards, activation, recurrent_activation, h_split, c_split,
                               outputs_split, chunk, blas_proj, x_as_given, n_parts, training)
        return outputs_arr, h_arr, c_arr, saved
    if chunk <= 0:
        chunk = T if blas_proj else inference_chunk(B, U, F, floating is double)
    chunk = max(1, min(T, chunk))
    # (a batch of one row is time-major as given: inference reads it in place)
    x_arr = None if x_as_given or (B == 1 and not training) else time_major(x)
    cdef Py_ssize_t x_t = F if x_as_given else B * F
    cdef Py_ssize_t x_b = T * F if x_as_given else F
    outputs_arr = workspace_empty((B, T, U), dtype) if out is None else out
    # The call's scratch memory in one array (one allocation, one memoryview: a one-step
    # call spends more on those than on its step): act(c)'s row, packed R and W, and the
    # chunk's gates (training copies them on into an array of their own).
    cdef Py_ssize_t n_act = part_round(U)
    cdef Py_ssize_t n_r = part_round(packed_size(U, G, floating is double))
    cdef Py_ssize_t n_w = part_round(1 if blas_proj else packed_size(F, G, floating is double))
    cdef Py_ssize_t n_gates = 0 if training and _train_in_place(G, floating is double) else (
        chunk * B * gate_stride(G, floating is double))
    cdef floating[::1] scratch = workspace_empty(n_act + n_r + n_w + n_gates, dtype)
    gates_arr = workspace_empty((T, B, G), dtype) if training else None
    cdef floating[:, :, ::1] gates_saved
    # the chunk's gates (unused when training computes in place: no buffer then), and
    # training's saved gates (unused in inference)
    cdef floating *chunk_ptr = &scratch[n_act + n_r + n_w] if n_gates else &scratch[0]
    cdef floating *gates_ptr = &scratch[0]
    if training:
        gates_saved = gates_arr
        gates_ptr = &gates_saved[0, 0, 0]
    cdef const floating[:, :, ::1] xt = x if x_arr is None else x_arr
    cdef floating[:, ::1] h = h_arr
    cdef floating[:, ::1] c = c_arr
    cdef floating[:, :, ::1] outputs = outputs_arr
    check_shape("out", (outputs.shape[0], outputs.shape[1], outputs.shape[2]), (B, T, U))
    # the training-only arrays (never touched in inference: NULL there)
    cdef floating[:, :, ::1] h_tm1_all
    cdef floating[:, :, ::1] c_tm1_all
    cdef floating[:, :, ::1] act_c_all
    cdef floating *h_tm1_ptr = NULL
    cdef floating *c_tm1_ptr = NULL
    cdef floating *act_c_ptr = NULL
    saved = None
    if training:
        saved = dict(xt=x_arr, gates=gates_arr, h_tm1=workspace_empty((T, B, U), dtype),
                     c_tm1=workspace_empty((T, B, U), dtype),
                     act_c=workspace_empty((T, B, U), dtype))
        h_tm1_all, c_tm1_all, act_c_all = saved["h_tm1"], saved["c_tm1"], saved["act_c"]
        h_tm1_ptr, c_tm1_ptr = &h_tm1_all[0, 0, 0], &c_tm1_all[0, 0, 0]
        act_c_ptr = &act_c_all[0, 0, 0]
    with nogil:
        _forward(B, B, T, F, U, chunk, &xt[0, 0, 0], &kernel[0, 0], &recurrent_kernel[0, 0],
                 &bias[0], &mask[0, 0], has_mask, go_backwards, activation,
                 recurrent_activation, x_t, x_b, &h[0, 0], &c[0, 0],
                 chunk_ptr, &outputs[0, 0, 0], &scratch[0], &scratch[n_act],
                 &scratch[n_act + n_r], True, False, training, gates_ptr, h_tm1_ptr,
                 c_tm1_ptr, act_c_ptr, threaded, blas_proj)
    return outputs_arr, h_arr, c_arr, saved


def lstm_backward(*, const floating[:, ::1] kernel, const floating[:, ::1] recurrent_kernel_t,
                  const unsigned char[:, ::1] mask, bint has_mask, bint go_backwards,
                  int activation, int recurrent_activation, const floating[:, :, ::1] xt,
                  const floating[:, :, ::1] gates, const floating[:, :, ::1] h_tm1,
                  const floating[:, :, ::1] c_tm1, const floating[:, :, ::1] act_c,
                  const floating[:, :, ::1] d_outputs, const floating[:, ::1] d_h,
                  const floating[:, ::1] d_c, bint threaded=False, bint own_gemm=True,
                  bint need_dx=True, Py_ssize_t n_threads=1, Py_ssize_t split_units=-1):
    """BPTT through lstm_forward(training=True), all arguments by name: ``xt`` ...
    ``act_c`` are its saved arrays; ``kernel`` and ``recurrent_kernel_t`` (R transposed)
    the weights of that forward call. Returns (dx, dh0, dc0, d_kernel, d_recurrent_kernel,
    d_bias); dx is None with ``need_dx=False`` (its product is skipped). ``d_outputs`` may
    be (B, 1, U): the last output's gradient alone. ``n_threads`` > 1: the units split on
    crnn's thread pool where units_parts says so, else the rows split (at most one part per
    row; ``threaded`` is ignored then, and the caller must hold BLAS's pools at one
    thread); ``split_units`` (tests) as lstm_forward's."""
    cdef Py_ssize_t T = xt.shape[0], B = xt.shape[1], F = xt.shape[2]
    cdef Py_ssize_t U = recurrent_kernel_t.shape[1], G = 4 * U
    check_shape("kernel", (kernel.shape[0], kernel.shape[1]), (F, G))
    check_shape("recurrent_kernel_t", (recurrent_kernel_t.shape[0], recurrent_kernel_t.shape[1]),
                (G, U))
    check_shape("gates", (gates.shape[0], gates.shape[1], gates.shape[2]), (T, B, G))
    for name, saved in (("h_tm1", h_tm1), ("c_tm1", c_tm1), ("act_c", act_c)):
        check_shape(name, (saved.shape[0], saved.shape[1], saved.shape[2]), (T, B, U))
    # d_outputs (B, 1, U) with T > 1: the last output's gradient only (the others' zero)
    cdef bint last_only = d_outputs.shape[1] == 1
    check_shape("d_outputs", (d_outputs.shape[0], d_outputs.shape[1], d_outputs.shape[2]),
                (B, 1 if last_only else T, U))
    check_shape("d_final_states[0]", (d_h.shape[0], d_h.shape[1]), (B, U))
    check_shape("d_final_states[1]", (d_c.shape[0], d_c.shape[1]), (B, U))
    if has_mask:
        check_shape("mask", (mask.shape[0], mask.shape[1]), (B, T))
    check_blas_size(B * T, max(F, G))
    dtype = np.float32 if floating is float else np.float64
    dh_arr = np.array(d_h, dtype=dtype)
    dc_arr = np.array(d_c, dtype=dtype)
    if n_threads < 1:
        raise ValueError(f"n_threads must be at least 1, received {n_threads}")
    cdef Py_ssize_t n_units = (units_parts(B, U, 4, sizeof(floating), n_threads, True)
                               if split_units < 0 else min(split_units, U))
    # the units split, else the rows split, else one thread (below)
    cdef Py_ssize_t n_parts = n_units if n_units > 1 or split_units > 0 else part_count(
        B, n_threads, False)
    cdef floating[:, ::1] dh_split
    if n_parts > 1:
        dh_split = dh_arr
        dx_arr, dW_arr, dR_arr, db_arr = split_backward(
            n_units > 1, 4, True, kernel, recurrent_kernel_t, mask, has_mask, go_backwards,
            activation, recurrent_activation, xt, gates, h_tm1, c_tm1, act_c, d_outputs,
            need_dx, dh_split, dc_arr, not own_gemm, n_parts, _run_units_back)
        return (batch_major(dx_arr) if need_dx else None, dh_arr, dc_arr, dW_arr, dR_arr,
                db_arr)
    dz_arr = workspace_empty((T, B, G), dtype)
    carry_arr = np.zeros((B, U), dtype)
    zero_row_arr = np.zeros(U, dtype)
    deriv_arr = workspace_empty(5 * U, dtype)
    packed_arr = workspace_empty(packed_size(G, U, floating is double), dtype)
    dx_arr = workspace_empty((T, B, F) if need_dx else _UNUSED, dtype)
    dW_arr = workspace_empty((F, G), dtype)
    dR_arr = workspace_empty((U, G), dtype)
    db_arr = workspace_empty(G, dtype)
    cdef floating[:, ::1] dh = dh_arr
    cdef floating[:, ::1] dc = dc_arr
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
        _backward(B, B, T, F, U, &xt[0, 0, 0], &kernel[0, 0], &recurrent_kernel_t[0, 0],
                  &mask[0, 0], has_mask, go_backwards, activation, recurrent_activation,
                  &gates[0, 0, 0], &h_tm1[0, 0, 0], &c_tm1[0, 0, 0], &act_c[0, 0, 0],
                  &d_outputs[0, 0, 0], last_only, &zero_row[0], &dh[0, 0], &dc[0, 0],
                  &dz[0, 0, 0], &carry[0, 0], &deriv[0], &packed[0], True, True, dx_ptr,
                  &dW[0, 0], &dR[0, 0], &db[0], threaded, threaded or not own_gemm)
    return batch_major(dx_arr) if need_dx else None, dh_arr, dc_arr, dW_arr, dR_arr, db_arr
