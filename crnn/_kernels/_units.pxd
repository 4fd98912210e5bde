# The units split of a call, inference or training (LSTM, GRU with reset_after): where a
# batch has too few rows to split, or its recurrent kernel R is too large for each thread to
# stream whole every step, the threads of crnn's pool (_pool.h) split the *units* instead
# (units_parts decides; units_forward and split_backward run it). Part p owns
# units u0 .. u1 - 1 of every gate block: the columns g * U + u0 .. g * U + u1 - 1 of W and
# R (packed once per call, per part, per gate: each thread streams 1/n of W and R), its
# slice of the cell state, and the same slice of h_t and of the outputs. A step needs all of
# h_tm1, so the time loop runs on the calling thread and hands each step to the pool (a
# barrier per step, about a microsecond); h is double-buffered (parts read h_tm1 while they
# write their slices of h_t). The rows' maths is _cells.pxd's, on each part's slices.
#
# A part's pre-activations are kept gate-blocked, (rows, n_gates * Up): the layout of the
# row functions for a cell of Up units, so they run unchanged on the slice.
#
# The backward pass of training's *rows* split runs here too (split_backward): its parts'
# time loops, then the whole-sequence products split across the threads as the units
# split's are (units_back_whole).

from cython cimport floating
from libc.string cimport memcpy, memset

from crnn._kernels._blas cimport (gemm_big, gemm_big_sum, gemm_packed, gemm_packed_big, pack_b,
                                  packed_size)
from crnn._kernels._common cimport part_edges, part_round, time_major
from crnn._kernels._pool cimport pool_fn, pool_run

cdef enum:
    # Inner unit edges fall on multiples of this (a panel of the packed kernels).
    UNIT_ALIGN = 16
    # Each part gets at least this many units.
    UNITS_MIN_PER_PART = 64
    # The units split is used for an R (U x n_gates * U) of at least this many bytes (it no
    # longer stays in a core's L2: with the rows split, every thread would stream all of it
    # from L3 at each step) ...
    UNITS_MIN_R_BYTES = 4 << 20
    # (GRU's inference: from this size. Its row parts project the whole sequence before
    # their steps, the units path per chunk of timesteps: measured, the units split 0.94x
    # the rows split's time at (64, 100, 128, 256), R of 768 KiB, where LSTM's is 1.04x.
    # Training keeps UNITS_MIN_R_BYTES: GRU training there 1.11x the rows split's time.)
    UNITS_MIN_R_BYTES_GRU = 1 << 19
    # ... or for fewer than this many rows per thread (rows split too thin) ...
    UNITS_MIN_ROWS_PER_PART = 8
    # ... where a step has this many multiply-adds at least (a hand-off per step costs
    # about a microsecond).
    UNITS_MIN_STEP_WORK = 1 << 18


cdef struct UnitSplit:
    # One units-split call's arguments and state, for its parts on the pool. Arrays are
    # float or double (is_double); ``step`` and the chunk fields change between hand-offs.
    const Py_ssize_t *edges      # unit edges of the parts (n_parts + 1)
    Py_ssize_t B, T, F, U, n_gates, chunk
    Py_ssize_t w_panel, r_panel  # elements per packed gate slice of W and of R
    Py_ssize_t z_stride          # elements per part of ``z`` (chunk x B x n_gates * Up)
    Py_ssize_t tmp_stride        # elements per part of ``tmp``
    const void *x                # (T, B, F), time-major
    const void *W
    const void *R
    const void *bias             # the input bias (n_gates * U)
    const void *bias_rec         # GRU's recurrent bias (n_gates * U), else NULL
    const unsigned char *mask
    bint has_mask, go_backwards, is_double, pack
    int act, ract
    void *W_packed               # per part: n_gates panels of w_panel elements
    void *R_packed               # per part: n_gates panels of r_panel elements
    void *z                      # per part: the chunk's pre-activations
    void *tmp                    # per part: scratch (LSTM: act(c); GRU: the inner product)
    void *h_cur                  # (B, U): h_tm1, read by every part
    void *h_next                 # (B, U): h_t, each part writes its slice
    void *c                      # (B, U): LSTM's cell state, each part its slice
    void *outputs                # (B, T, U)
    Py_ssize_t s, s0, t_lo       # the step; its chunk's first step and lowest timestep
    # training (else NULL): the whole batch's saved arrays, in the layout of the one-thread
    # forward, each part writing its units: gates (T, B, n_gates * U), activated; h_tm1 and
    # LSTM's c_tm1 (T, B, U); aux (T, B, U): LSTM's act(c_t), GRU's inner_h
    void *gates_all
    void *h_tm1_all
    void *c_tm1_all
    void *aux_all


cdef inline list unit_edges(Py_ssize_t U, Py_ssize_t n):
    """Unit edges [0, ..., U] of ``n`` non-empty parts (1 <= n <= U), inner edges on
    multiples of UNIT_ALIGN where that keeps every part non-empty, else plain shares."""
    cdef Py_ssize_t i
    cdef list aligned = [0] + [UNIT_ALIGN * ((U * i // n + UNIT_ALIGN // 2) // UNIT_ALIGN)
                               for i in range(1, n)] + [U]
    for i in range(n):
        if aligned[i + 1] <= aligned[i]:
            return [U * i // n for i in range(n + 1)]
    return aligned


cdef inline Py_ssize_t units_parts(Py_ssize_t B, Py_ssize_t U, Py_ssize_t n_gates,
                                   Py_ssize_t itemsize, Py_ssize_t n_threads,
                                   bint training) noexcept:
    """The number of parts of a units split of a call (``training`` or inference) on
    ``n_threads`` threads, or 0 to split the rows (or not at all) instead."""
    cdef Py_ssize_t n = min(n_threads, U // UNITS_MIN_PER_PART)
    if n < 2 or B * U * n_gates * U < UNITS_MIN_STEP_WORK:
        return 0
    cdef Py_ssize_t min_r_bytes = (UNITS_MIN_R_BYTES if n_gates == 4 or training
                                   else UNITS_MIN_R_BYTES_GRU)
    if U * n_gates * U * itemsize >= min_r_bytes or B < UNITS_MIN_ROWS_PER_PART * n:
        return n
    return 0


cdef inline void units_pack(const UnitSplit *a, int p, floating *tag) noexcept nogil:
    """Part p packs its gate slices of W and R (``tag`` only picks the type)."""
    cdef Py_ssize_t u0 = a.edges[p], up = a.edges[p + 1] - a.edges[p]
    cdef Py_ssize_t G = a.n_gates * a.U, g
    cdef floating *Wp = <floating *>a.W_packed + p * a.n_gates * a.w_panel
    cdef floating *Rp = <floating *>a.R_packed + p * a.n_gates * a.r_panel
    for g in range(a.n_gates):
        pack_b(a.F, up, <const floating *>a.W + g * a.U + u0, G, Wp + g * a.w_panel)
        pack_b(a.U, up, <const floating *>a.R + g * a.U + u0, G, Rp + g * a.r_panel)


cdef inline void units_project(const UnitSplit *a, int p, Py_ssize_t n,
                               floating *tag) noexcept nogil:
    """Part p's pre-activations of the chunk's ``n`` timesteps (from a.t_lo): its slices of
    the input bias plus x @ W, gate-blocked into its slice of ``z``."""
    cdef Py_ssize_t u0 = a.edges[p], up = a.edges[p + 1] - a.edges[p]
    cdef Py_ssize_t gp = a.n_gates * up, g, r
    cdef floating *z = <floating *>a.z + p * a.z_stride
    cdef const floating *bias = <const floating *>a.bias
    cdef const floating *Wp = <const floating *>a.W_packed + p * a.n_gates * a.w_panel
    if up == a.U:       # one part: its slices are whole rows
        for r in range(n * a.B):
            memcpy(z + r * gp, bias, gp * sizeof(floating))
    else:
        for r in range(n * a.B):
            for g in range(a.n_gates):
                memcpy(z + r * gp + g * up, bias + g * a.U + u0, up * sizeof(floating))
    for g in range(a.n_gates):
        gemm_packed_big(False, n * a.B, up, a.F, <const floating *>a.x + a.t_lo * a.B * a.F,
                        a.F, Wp + g * a.w_panel, <const floating *>a.W + g * a.U + u0,
                        a.n_gates * a.U, z + g * up, gp)


cdef inline void units_save_gates(const UnitSplit *a, Py_ssize_t u0, Py_ssize_t up,
                                  Py_ssize_t row, const floating *z) noexcept nogil:
    """Training: a part's gate-blocked row ``z`` (n_gates * up) into its columns of row
    ``row`` (t * B + b) of the saved gates."""
    cdef Py_ssize_t G = a.n_gates * a.U, g
    cdef floating *dst = <floating *>a.gates_all + row * G + u0
    for g in range(a.n_gates):
        memcpy(dst + g * a.U, z + g * up, up * sizeof(floating))


cdef inline Py_ssize_t units_chunk(Py_ssize_t B, Py_ssize_t T, Py_ssize_t F,
                                   Py_ssize_t width, Py_ssize_t itemsize) noexcept:
    """Timesteps per projection chunk of a part whose gate slices are ``width`` columns:
    its pre-activations in about 512 KiB (they stay in L2 until their steps), at most 64
    steps, and 256 rows at least where its W slice is over 1 MiB (it streams from L3 at
    each product, and up to 16 MiB of pre-activations where it is over 4 MiB: _lstm.pyx's
    CHUNK_BYTES, CHUNK_STEPS_MAX, W_BYTES_CACHED, W_BYTES_STREAMED)."""
    cdef Py_ssize_t steps = (1 << 19) // max(1, B * width * itemsize)
    if F * width * itemsize > (1 << 20):
        steps = max(steps, (256 + B - 1) // B)
    if F * width * itemsize > (4 << 20):
        steps = max(steps, (16 << 20) // max(1, B * width * itemsize))
    return max(1, min(T, 64, steps))


cdef inline Py_ssize_t units_panel(Py_ssize_t k, list edges, bint double_precision):
    """Elements of one packed gate slice (k rows) of the widest part, line-aligned."""
    cdef Py_ssize_t widest = max([edges[i + 1] - edges[i] for i in range(len(edges) - 1)])
    return part_round(packed_size(k, widest, double_precision))


# --------------------------------------------------------------------------- backward
# The backward pass of a units-split training call (the same rule, units_parts): part p
# owns units u0 .. u1 - 1 of dh, dc and the carry of masked steps, and the gate columns of
# those units in dz. Step s needs dh_t = (direct) + dz_{t+1} @ R^T for its units only, i.e.
# dz_{t+1} @ R^T[:, u0:u1] (R^T's columns of the part, packed once), which needs all of
# dz_{t+1}: so hand-off k runs the product of the step before (all parts wrote it in
# hand-off k - 1), then the step's rows; T + 1 hand-offs. Then the whole-sequence products
# split across the parts: dx by rows of (T * B), dW, dR and the biases by column ranges.

cdef struct UnitBack:
    const Py_ssize_t *edges      # unit edges of the parts (n_parts + 1)
    Py_ssize_t n_parts, B, T, F, U, n_gates, r_panel, tmp_stride
    const void *x                # (T, B, F), time-major
    const void *W                # (F, G)
    const void *RT               # (G, U)
    const unsigned char *mask
    bint has_mask, go_backwards, is_double, blas, need_dx
    bint reset_before            # GRU reset_after=False (the rows split only)
    # phase: 0 pack R^T's columns of the part, 1 a step (units split); 2 the whole-sequence
    # products (both splits); 3 pack R^T whole, 4 the part's time loop (rows split)
    int act, ract, phase
    Py_ssize_t k                 # the hand-off of phase 1 (0 .. T)
    const void *gates            # the forward's saved arrays (T, B, ...)
    const void *h_tm1
    const void *c_tm1            # LSTM's
    const void *aux              # LSTM's act(c_t), GRU's inner_h
    const void *d_outputs        # (B, T, U), or (B, 1, U): the last output's alone
    bint last_only               # d_outputs is (B, 1, U)
    const void *zero_row         # U zeros (the gradient of the outputs before the last)
    void *dh                     # (B, U): dL/dh_t in, dL/dh0 out
    void *dc                     # (B, U), LSTM's: dL/dc_t in, dL/dc0 out
    void *carry                  # (B, U): what masked steps passed through
    void *dz                     # (T, B, G): LSTM's dz, GRU's dgx
    void *dgi                    # (T, B, G): GRU's gradient of the inner product, else NULL
    void *RT_packed              # per part: packed R^T[:, u0:u1]; rows split: R^T whole
    void *tmp                    # per part: tmp_stride elements of scratch
    void *d_rh                   # (B, U): GRU reset_before's d(r * h_tm1) (rows split)
    void *dx                     # (T, B, F)
    void *dW                     # (F, G)
    void *dR                     # (U, G)
    void *db                     # (G,), or (2, G) for GRU


cdef inline Py_ssize_t units_back_t(const UnitBack *a, Py_ssize_t s) noexcept nogil:
    """The timestep of processing step ``s``."""
    return a.T - 1 - s if a.go_backwards else s


cdef inline const floating *units_d_out(const UnitBack *a, Py_ssize_t b, Py_ssize_t s,
                                        Py_ssize_t u0, floating *tag) noexcept nogil:
    """The gradient reaching output (b, s), from unit u0 on."""
    if not a.last_only:
        return <const floating *>a.d_outputs + (b * a.T + s) * a.U + u0
    if s == a.T - 1:
        return <const floating *>a.d_outputs + b * a.U + u0
    return <const floating *>a.zero_row + u0


cdef inline void units_back_product(const UnitBack *a, int p, floating *tag) noexcept nogil:
    """Phase 1, before the rows of hand-off a.k: dh[:, u0:u1] += d_{t+1} @ R^T[:, u0:u1] for
    the step of hand-off a.k - 1 (d: dz, or GRU's dgi)."""
    cdef Py_ssize_t u0 = a.edges[p], up = a.edges[p + 1] - a.edges[p]
    cdef Py_ssize_t G = a.n_gates * a.U
    cdef Py_ssize_t t_prev = units_back_t(a, a.T - a.k)
    cdef const floating *d = <const floating *>(a.dgi if a.dgi != NULL else a.dz)
    gemm_packed(a.B, up, G, d + t_prev * a.B * G, G,
                <const floating *>a.RT_packed + p * a.r_panel, <floating *>a.dh + u0, a.U)


cdef inline void units_gather(const UnitBack *a, Py_ssize_t u0, Py_ssize_t up,
                              const floating *src, floating *dst) noexcept nogil:
    """A row's gate columns of units u0 .. u0 + up - 1 (src: n_gates * U) -> gate-blocked
    dst (n_gates * up)."""
    cdef Py_ssize_t g
    for g in range(a.n_gates):
        memcpy(dst + g * up, src + g * a.U + u0, up * sizeof(floating))


cdef inline void units_scatter(const UnitBack *a, Py_ssize_t u0, Py_ssize_t up,
                               const floating *src, floating *dst) noexcept nogil:
    """The inverse of units_gather (src NULL: zeros)."""
    cdef Py_ssize_t g
    for g in range(a.n_gates):
        if src == NULL:
            memset(dst + g * a.U + u0, 0, up * sizeof(floating))
        else:
            memcpy(dst + g * a.U + u0, src + g * up, up * sizeof(floating))


cdef inline void units_back_whole(const UnitBack *a, int p, floating *tag) noexcept nogil:
    """Phase 0: part p packs its columns of R^T. Phase 2: its share of the whole-sequence
    products: dx = dz @ W^T on rows r0 .. r1 - 1 of (T * B); dW = x^T @ dz, dR = h_tm1^T @
    d_rec and the biases (column sums) on columns c0 .. c1 - 1 of G (d_rec: dz, or GRU's
    dgi; GRU's second bias row from dgi; GRU reset_before: dR's candidate block from
    aux = r * h_tm1)."""
    cdef Py_ssize_t u0 = a.edges[p], up = a.edges[p + 1] - a.edges[p]
    cdef Py_ssize_t G = a.n_gates * a.U, rows = a.T * a.B, n = a.n_parts
    cdef Py_ssize_t r0 = rows * p // n, r1 = rows * (p + 1) // n
    cdef Py_ssize_t c0 = G * p // n, c1 = G * (p + 1) // n, lo, hi
    cdef const floating *dz = <const floating *>a.dz
    cdef const floating *d_rec = <const floating *>(a.dgi if a.dgi != NULL else a.dz)
    cdef floating *db = <floating *>a.db
    if a.phase == 0:
        pack_b(G, up, <const floating *>a.RT + u0, a.U,
               <floating *>a.RT_packed + p * a.r_panel)
        return
    if a.need_dx and r1 > r0:
        gemm_big(a.blas, False, True, r1 - r0, a.F, G, dz + r0 * G, G, <const floating *>a.W,
                 G, 0.0, <floating *>a.dx + r0 * a.F, a.F)
    if c1 <= c0:
        return
    gemm_big_sum(a.blas, a.F, c1 - c0, rows, <const floating *>a.x, a.F, dz + c0, G,
                 <floating *>a.dW + c0, G, db + c0)
    if a.reset_before:
        # dR[:, :2U] = h_tm1^T @ dgx[:, :2U] ; dR[:, 2U:] = (r * h_tm1)^T @ dgx[:, 2U:]
        lo, hi = c0, min(c1, 2 * a.U)
        if hi > lo:
            gemm_big(a.blas, True, False, a.U, hi - lo, rows, <const floating *>a.h_tm1, a.U,
                     dz + lo, G, 0.0, <floating *>a.dR + lo, G)
        lo, hi = max(c0, 2 * a.U), c1
        if hi > lo:
            gemm_big(a.blas, True, False, a.U, hi - lo, rows, <const floating *>a.aux, a.U,
                     dz + lo, G, 0.0, <floating *>a.dR + lo, G)
    elif a.dgi != NULL:
        # GRU reset_after: dR = h_tm1^T @ d_inner, the recurrent bias from d_inner's sums
        gemm_big_sum(a.blas, a.U, c1 - c0, rows, <const floating *>a.h_tm1, a.U, d_rec + c0,
                     G, <floating *>a.dR + c0, G, db + G + c0)
    else:
        gemm_big(a.blas, True, False, a.U, c1 - c0, rows, <const floating *>a.h_tm1, a.U,
                 d_rec + c0, G, 0.0, <floating *>a.dR + c0, G)


# --------------------------------------------------------------------------- drivers
# The calls' set-up and time loops, shared by the cells (each passes its per-part step as
# ``fn``: _lstm.pyx's and _gru.pyx's _run_units / _run_units_back).

cdef inline object units_forward(int n_gates, const floating[:, :, ::1] x,
                                 const floating[:, ::1] kernel,
                                 const floating[:, ::1] recurrent_kernel,
                                 const floating[::1] bias, const unsigned char[:, ::1] mask,
                                 bint has_mask, bint go_backwards, int act, int ract,
                                 floating[:, ::1] h, object c, floating[:, :, ::1] outputs,
                                 Py_ssize_t chunk, Py_ssize_t n_parts, bint training,
                                 pool_fn fn):
    """The forward pass with the units split into ``n_parts`` parts: the time loop here,
    each step handed to crnn's thread pool (serially where it has no threads). LSTM
    (n_gates 4): ``c`` its cell state, ``bias`` (4U); GRU (3, reset_after): ``c`` None,
    ``bias`` (6U), the input row then the recurrent one. Returns the saved arrays of
    training by the backward entry's names, else None."""
    import numpy as np
    from crnn._kernels._workspace import empty
    cdef object unused = (1, 1, 1)       # the shape of an array that is not needed
    cdef Py_ssize_t B = x.shape[0], T = x.shape[1], F = x.shape[2]
    cdef Py_ssize_t U = recurrent_kernel.shape[0]
    cdef Py_ssize_t s, s0, n
    cdef bint is_double = floating is double
    dtype = np.float32 if floating is float else np.float64
    edges = unit_edges(U, n_parts)
    cdef Py_ssize_t widest = max([edges[i + 1] - edges[i] for i in range(n_parts)])
    chunk = (units_chunk(B, T, F, n_gates * widest, sizeof(floating)) if chunk <= 0
             else min(T, chunk))
    cdef Py_ssize_t[::1] edges_v = np.array(edges, np.intp)
    cdef Py_ssize_t w_panel = units_panel(F, edges, is_double)
    cdef Py_ssize_t r_panel = units_panel(U, edges, is_double)
    cdef Py_ssize_t z_stride = part_round(chunk * B * n_gates * widest)
    # per part: LSTM's act(c_t) (widest), GRU's inner product (B x 3 widest)
    cdef Py_ssize_t tmp_stride = part_round(widest if n_gates == 4 else B * n_gates * widest)
    xt_arr = time_major(x)
    cdef const floating[:, :, ::1] xt = xt_arr
    cdef floating[::1] w_packed = empty(n_parts * n_gates * w_panel, dtype)
    cdef floating[::1] r_packed = empty(n_parts * n_gates * r_panel, dtype)
    cdef floating[::1] z = empty(n_parts * z_stride, dtype)
    cdef floating[::1] tmp = empty(n_parts * tmp_stride, dtype)
    cdef floating[:, ::1] h_other = empty((B, U), dtype)
    saved_shape = (T, B, U) if training else unused
    gates_arr = empty((T, B, n_gates * U) if training else unused, dtype)
    h_tm1_arr = empty(saved_shape, dtype)
    c_tm1_arr = empty(saved_shape if n_gates == 4 else unused, dtype)
    aux_arr = empty(saved_shape, dtype)
    cdef floating[:, :, ::1] gates_all = gates_arr
    cdef floating[:, :, ::1] h_tm1_all = h_tm1_arr
    cdef floating[:, :, ::1] c_tm1_all = c_tm1_arr
    cdef floating[:, :, ::1] aux_all = aux_arr
    cdef floating[:, ::1] c_v
    cdef UnitSplit a
    a.gates_all = &gates_all[0, 0, 0] if training else NULL
    a.h_tm1_all = &h_tm1_all[0, 0, 0]
    a.c_tm1_all = &c_tm1_all[0, 0, 0]
    a.aux_all = &aux_all[0, 0, 0]
    a.edges = &edges_v[0]
    a.B, a.T, a.F, a.U, a.n_gates, a.chunk = B, T, F, U, n_gates, chunk
    a.w_panel, a.r_panel, a.z_stride, a.tmp_stride = w_panel, r_panel, z_stride, tmp_stride
    a.x = &xt[0, 0, 0]
    a.W = &kernel[0, 0]
    a.R = &recurrent_kernel[0, 0]
    a.bias = &bias[0]
    a.bias_rec = &bias[n_gates * U] if n_gates == 3 else NULL
    a.mask = &mask[0, 0]
    a.has_mask, a.go_backwards, a.is_double, a.pack = has_mask, go_backwards, is_double, True
    a.act, a.ract = act, ract
    a.W_packed = &w_packed[0]
    a.R_packed = &r_packed[0]
    a.z = &z[0]
    a.tmp = &tmp[0]
    a.h_cur = &h[0, 0]
    a.h_next = &h_other[0, 0]
    a.c = NULL
    if c is not None:
        c_v = c
        a.c = &c_v[0, 0]
    a.outputs = &outputs[0, 0, 0]
    with nogil:
        pool_run(<int>n_parts, fn, &a)
        a.pack = False
        s0 = 0
        while s0 < T:
            n = min(chunk, T - s0)
            a.s0 = s0
            a.t_lo = T - s0 - n if go_backwards else s0
            for s in range(s0, s0 + n):
                a.s = s
                pool_run(<int>n_parts, fn, &a)
                a.h_cur, a.h_next = a.h_next, a.h_cur
            s0 += n
        if a.h_cur != <void *>&h[0, 0]:
            memcpy(&h[0, 0], a.h_cur, B * U * sizeof(floating))
    if not training:
        return None
    if n_gates == 4:
        return dict(xt=xt_arr, gates=gates_arr, h_tm1=h_tm1_arr, c_tm1=c_tm1_arr,
                    act_c=aux_arr)
    return dict(xt=xt_arr, gates=gates_arr, h_tm1=h_tm1_arr, aux=aux_arr)


cdef inline object split_backward(bint by_units, int n_gates, bint reset_after,
                                  const floating[:, ::1] kernel,
                                  const floating[:, ::1] recurrent_kernel_t,
                                  const unsigned char[:, ::1] mask, bint has_mask,
                                  bint go_backwards, int act, int ract,
                                  const floating[:, :, ::1] xt,
                                  const floating[:, :, ::1] gates,
                                  const floating[:, :, ::1] h_tm1, object c_tm1,
                                  const floating[:, :, ::1] aux,
                                  const floating[:, :, ::1] d_outputs, bint need_dx,
                                  floating[:, ::1] dh, object dc, bint blas,
                                  Py_ssize_t n_parts, pool_fn fn):
    """BPTT of a training call split into ``n_parts`` parts on crnn's thread pool.
    ``by_units``: the units split (reset_after for GRU) - R^T's columns of each part packed
    (phase 0), then T + 1 hand-offs of a step each (phase 1). Else the rows split (the
    forward's parts wrote their rows of the whole batch's saved arrays): R^T packed once
    (phase 3, on the calling thread), each part's time loop on its rows (phase 4: the cell's
    _backward). Both then run the whole-sequence products split across the parts (phase 2).
    dh (and LSTM's dc; ``c_tm1`` and ``dc`` None for GRU), dL/d final states in, become
    dL/d initial states. ``aux``: LSTM's act(c_t), GRU's inner_h or r * h_tm1. Returns
    (dx time-major or None without ``need_dx``, dW, dR, db), GRU reset_after's db flat
    (2G)."""
    import numpy as np
    from crnn._kernels._workspace import empty
    cdef object unused = (1, 1, 1)       # the shape of an array that is not needed
    cdef object unused_2d = (1, 1)
    cdef Py_ssize_t T = xt.shape[0], B = xt.shape[1], F = xt.shape[2]
    cdef Py_ssize_t U = recurrent_kernel_t.shape[1], G = n_gates * U, k
    cdef bint is_double = floating is double
    cdef bint gru = n_gates == 3
    cdef bint reset_before = gru and not reset_after
    dtype = np.float32 if floating is float else np.float64
    cdef Py_ssize_t widest, r_panel, tmp_stride, packed_len
    if by_units:
        edges = unit_edges(U, n_parts)
        widest = max([edges[i + 1] - edges[i] for i in range(n_parts)])
        r_panel = units_panel(G, edges, is_double)
        packed_len = n_parts * r_panel
        # per part: gates and gradients gate-blocked, then the row's scratch (LSTM: 4 + 4
        # + 5 widest; GRU: 3 + 3 + 3 + 3)
        tmp_stride = part_round((12 if gru else 13) * widest)
    else:
        edges = part_edges(B, n_parts)
        r_panel = 0
        # R^T packed whole, or (GRU reset_before) as rows R^T[:2U] then R^T[2U:]
        packed_len = (packed_size(G, U, is_double) + packed_size(2 * U, U, is_double)
                      + packed_size(U, U, is_double))
        # per part: the row functions' scratch (LSTM 5U, GRU 3U)
        tmp_stride = part_round((3 if gru else 5) * U)
    cdef Py_ssize_t[::1] edges_v = np.array(edges, np.intp)
    cdef floating[::1] packed = empty(packed_len, dtype)
    cdef floating[::1] tmp = empty(n_parts * tmp_stride, dtype)
    carry_arr = np.zeros((B, U), dtype)
    zero_row_arr = np.zeros(U, dtype)
    dz_arr = empty((T, B, G), dtype)
    dgi_arr = empty((T, B, G) if gru and reset_after else unused, dtype)
    d_rh_arr = empty((B, U) if reset_before else unused_2d, dtype)
    dx_arr = empty((T, B, F) if need_dx else unused, dtype)
    dW_arr = empty((F, G), dtype)
    dR_arr = empty((U, G), dtype)
    db_arr = empty(2 * G if gru and reset_after else G, dtype)
    cdef floating[:, ::1] carry = carry_arr
    cdef const floating[::1] zero_row = zero_row_arr
    cdef floating[:, :, ::1] dz = dz_arr
    cdef floating[:, :, ::1] dgi = dgi_arr
    cdef floating[:, ::1] d_rh = d_rh_arr
    cdef floating[:, :, ::1] dx = dx_arr
    cdef floating[:, ::1] dW = dW_arr
    cdef floating[:, ::1] dR = dR_arr
    cdef floating[::1] db = db_arr
    cdef const floating[:, :, ::1] c_tm1_v
    cdef floating[:, ::1] dc_v
    cdef UnitBack a
    a.edges = &edges_v[0]
    a.n_parts, a.B, a.T, a.F, a.U, a.n_gates = n_parts, B, T, F, U, n_gates
    a.r_panel, a.tmp_stride = r_panel, tmp_stride
    a.x = &xt[0, 0, 0]
    a.W = &kernel[0, 0]
    a.RT = &recurrent_kernel_t[0, 0]
    a.mask = &mask[0, 0]
    a.has_mask, a.go_backwards, a.is_double, a.blas, a.need_dx = (has_mask, go_backwards,
                                                                  is_double, blas, need_dx)
    a.reset_before = reset_before
    a.last_only = d_outputs.shape[1] == 1 and T > 1
    a.zero_row = &zero_row[0]
    a.act, a.ract = act, ract
    a.gates = &gates[0, 0, 0]
    a.h_tm1 = &h_tm1[0, 0, 0]
    a.c_tm1 = NULL
    a.dc = NULL
    if c_tm1 is not None:
        c_tm1_v = c_tm1
        dc_v = dc
        a.c_tm1 = &c_tm1_v[0, 0, 0]
        a.dc = &dc_v[0, 0]
    a.aux = &aux[0, 0, 0]
    a.d_outputs = &d_outputs[0, 0, 0]
    a.dh = &dh[0, 0]
    a.carry = &carry[0, 0]
    a.dz = &dz[0, 0, 0]
    a.dgi = &dgi[0, 0, 0] if gru and reset_after else NULL
    a.d_rh = &d_rh[0, 0]
    a.RT_packed = &packed[0]
    a.tmp = &tmp[0]
    a.dx = &dx[0, 0, 0]
    a.dW = &dW[0, 0]
    a.dR = &dR[0, 0]
    a.db = &db[0]
    with nogil:
        if by_units:
            a.phase = 0
            pool_run(<int>n_parts, fn, &a)
            a.phase = 1
            for k in range(T + 1):
                a.k = k
                pool_run(<int>n_parts, fn, &a)
        else:
            a.phase = 3
            pool_run(1, fn, &a)
            a.phase = 4
            pool_run(<int>n_parts, fn, &a)
        a.phase = 2
        pool_run(<int>n_parts, fn, &a)
    return dx_arr if need_dx else None, dW_arr, dR_arr, db_arr
