# The units split of an inference call (LSTM, GRU with reset_after): where a batch has too
# few rows to split, or its recurrent kernel R is too large for each thread to stream whole
# every step, the threads of crnn's pool (_pool.h) split the *units* instead. Part p owns
# units u0 .. u1 - 1 of every gate block: the columns g * U + u0 .. g * U + u1 - 1 of W and
# R (packed once per call, per part, per gate: each thread streams 1/n of W and R), its
# slice of the cell state, and the same slice of h_t and of the outputs. A step needs all of
# h_tm1, so the time loop runs on the calling thread and hands each step to the pool (a
# barrier per step, about a microsecond); h is double-buffered (parts read h_tm1 while they
# write their slices of h_t). The rows' maths is _cells.pxd's, on each part's slices.
#
# A part's pre-activations are kept gate-blocked, (rows, n_gates * Up): the layout of the
# row functions for a cell of Up units, so they run unchanged on the slice.

from cython cimport floating
from libc.string cimport memcpy

from crnn._kernels._blas cimport gemm_packed_big, pack_b, packed_size
from crnn._kernels._common cimport part_round

cdef enum:
    # Inner unit edges fall on multiples of this (a panel of the packed kernels).
    UNIT_ALIGN = 16
    # Each part gets at least this many units.
    UNITS_MIN_PER_PART = 64
    # The units split is used for an R (U x n_gates * U) of at least this many bytes (it no
    # longer stays in a core's L2: with the rows split, every thread would stream all of it
    # from L3 at each step) ...
    UNITS_MIN_R_BYTES = 4 << 20
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
                                   Py_ssize_t itemsize, Py_ssize_t n_threads) noexcept:
    """The number of parts of a units split of an inference call on ``n_threads`` threads,
    or 0 to split the rows (or not at all) instead."""
    cdef Py_ssize_t n = min(n_threads, U // UNITS_MIN_PER_PART)
    if n < 2 or B * U * n_gates * U < UNITS_MIN_STEP_WORK:
        return 0
    if U * n_gates * U * itemsize >= UNITS_MIN_R_BYTES or B < UNITS_MIN_ROWS_PER_PART * n:
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
    for r in range(n * a.B):
        for g in range(a.n_gates):
            memcpy(z + r * gp + g * up, bias + g * a.U + u0, up * sizeof(floating))
    for g in range(a.n_gates):
        gemm_packed_big(False, n * a.B, up, a.F, <const floating *>a.x + a.t_lo * a.B * a.F,
                        a.F, Wp + g * a.w_panel, NULL, 0, z + g * up, gp)


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
    each product: _lstm.pyx's CHUNK_BYTES, CHUNK_STEPS_MAX, W_BYTES_CACHED)."""
    cdef Py_ssize_t steps = (1 << 19) // max(1, B * width * itemsize)
    if F * width * itemsize > (1 << 20):
        steps = max(steps, (256 + B - 1) // B)
    return max(1, min(T, 64, steps))


cdef inline Py_ssize_t units_panel(Py_ssize_t k, list edges, bint double_precision):
    """Elements of one packed gate slice (k rows) of the widest part, line-aligned."""
    cdef Py_ssize_t widest = max([edges[i + 1] - edges[i] for i in range(len(edges) - 1)])
    return part_round(packed_size(k, widest, double_precision))
