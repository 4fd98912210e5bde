# One timestep for many streams at once through a chain of layers: the compiled core of
# crnn.streaming.StreamPool and crnn.streaming.Streamer (a pool of one).
#
# Notation (Keras 3 layouts; n the rows of a block, F a stage's input width, U its units,
# G its gate width):
#   LSTM       Z = b + X @ W + H @ R (n, 4U: i, f, c, o); c = f*c_tm1 + i*g; h = o*act(c)
#   GRU        reset_after: Z = b_in + X @ W, inner = b_rec + H @ R,
#              z, r = ract(Z + inner)[:, :2U], hh = act(Z_h + r * inner_h)
#              reset before: Z = b + X @ W, Z[:, :2U] += H @ R[:, :2U], z, r = ract(...),
#              Z_h += (r * H) @ R[:, 2U:], hh = act(Z_h)
#              h = z * h_tm1 + (1 - z) * hh
#   SimpleRNN  h = act(b + X @ W + H @ R)
#   Dense      Y = act(b + X @ W)
#   Activation Y = act(X)
# With one timestep per call, go_backwards makes no difference and masks do not arise, so
# row r of a step is exactly what a batch-1 model's predict_on_batch computes for stream r.
#
# States are slot-major: recurrent stage k keeps h (capacity, U) (and c for LSTM); a stream
# owns one slot, i.e. one row of each. A step takes the selected slots in blocks of
# BLOCK rows: a block whose slots are consecutive is computed in place in the state
# arrays; any other block is gathered into work rows, computed, and scattered back. The
# whole chain of one block runs without the GIL, so the rows of a block flow through every
# stage while they are in cache.

import threading

import numpy as np

from crnn.threads import use_own_gemm

from cython cimport floating
from cpython.buffer cimport (PyBUF_FORMAT, PyBUF_SIMPLE, PyBUF_STRIDES, PyBuffer_Release,
                             PyObject_CheckBuffer, PyObject_GetBuffer)
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy
from libc.stdint cimport int64_t, uint8_t

from crnn._kernels._activations cimport activate_any, N_ACTIVATIONS, N_RECURRENT_ACTIVATIONS
from crnn._kernels._blas cimport gemm_big
from crnn._kernels._cells cimport (gru_finish_row, gru_gates_after_row, gru_gates_before_row,
                                   lstm_forward_row, simple_rnn_forward_row)
from crnn._kernels._common cimport check_shape

_empty = np.empty

cdef extern from "_rowgemv.h" nogil:
    void crnn_row_gemv_f32(int n, int k, const float *x, const float *w, int ldw, float *y)
    void crnn_row_gemv_f64(int n, int k, const double *x, const double *w, int ldw,
                           double *y)

cdef enum:
    BLOCK = 256             # rows per block: a block's gates stay in L2
    SLOT_BITS = 32          # a stream id is (generation << SLOT_BITS) | slot

# Stage kinds.
cdef enum:
    S_LSTM = 0
    S_GRU = 1
    S_SIMPLE_RNN = 2
    S_DENSE = 3
    S_ACTIVATION = 4

STAGE_KINDS = {"lstm": S_LSTM, "gru": S_GRU, "simple_rnn": S_SIMPLE_RNN, "dense": S_DENSE,
               "activation": S_ACTIVATION}
_GATES = {S_LSTM: 4, S_GRU: 3, S_SIMPLE_RNN: 1, S_DENSE: 1, S_ACTIVATION: 1}
_N_STATES = {S_LSTM: 2, S_GRU: 1, S_SIMPLE_RNN: 1}


cdef struct Stage:
    int kind
    int n_in            # input width F
    int units           # U (output width)
    int act
    int ract
    bint reset_after
    const void *W       # (F, G)
    const void *R       # (U, G)
    const void *b       # (G,), or (2, G) for GRU with reset_after; zeros without bias
    void *h             # (capacity, U) states h, slot-major (recurrent stages)
    void *c             # (capacity, U) states c (LSTM)
    void *hw            # (BLOCK, U) gathered h rows
    void *cw            # (BLOCK, U) gathered c rows
    void *out           # (BLOCK, U) output rows (Dense, Activation)


cdef inline void _xw(int n, int g, int k, const floating *x, const floating *w, int ldw,
                     floating *z, int ldz, bint blas) noexcept nogil:
    """Z[:n, :g] += X[:n, :k] @ W[:k, :g] (X rows k apart, W rows ldw apart, Z rows ldz
    apart). A single row (the Streamer's step) is a matrix-vector product straight from
    W, which beats a GEMM call by about a tenth there; from two rows on (measured 1.3-2.4x
    faster at 2-8 rows) a GEMM: BLAS, or (``blas`` False) crnn's own kernel, the choice
    of ``crnn.threads.use_own_gemm`` for the loaded BLAS."""
    if n <= 0 or k <= 0:
        return
    if n == 1:
        if floating is float:
            crnn_row_gemv_f32(g, k, x, w, ldw, z)
        else:
            crnn_row_gemv_f64(g, k, x, w, ldw, z)
    else:
        gemm_big(blas, False, False, n, g, k, x, k, w, ldw, 1.0, z, ldz)


cdef inline void _rows_of(int n, int width, floating *dst, const floating *src) noexcept nogil:
    """Each of the n rows of dst (width apart) = src (width,)."""
    cdef int r
    for r in range(n):
        memcpy(dst + <Py_ssize_t> r * width, src, width * sizeof(floating))


cdef const floating *_stage_rows(const Stage *s, int n, const floating *x, floating *h,
                                 floating *c, floating *out, floating *z,
                                 floating *inner, bint blas) noexcept nogil:
    """One timestep of stage s for n rows: x (n, F) in, returns its output rows (n, U).
    h, c: the stage's state rows (n, U), updated in place; out: output rows of a
    feed-forward stage; z, inner: work of n * G values each. The products run here, over
    all n rows at once; the rest of each cell's step is its shared row function."""
    cdef int F = s.n_in, U = s.units, G, r
    cdef const floating *W = <const floating *> s.W
    cdef const floating *R = <const floating *> s.R
    cdef const floating *b = <const floating *> s.b
    if s.kind == S_LSTM:
        G = 4 * U
        # Z = b + X @ W + H @ R
        _rows_of(n, G, z, b)
        _xw(n, G, F, x, W, G, z, G, blas)
        _xw(n, G, U, h, R, G, z, G, blas)
        for r in range(n):
            lstm_forward_row(U, z + <Py_ssize_t> r * G, c + <Py_ssize_t> r * U,
                             h + <Py_ssize_t> r * U, inner, s.act, s.ract)
        return h
    if s.kind == S_GRU:
        G = 3 * U
        # Z = b_in + X @ W
        _rows_of(n, G, z, b)
        _xw(n, G, F, x, W, G, z, G, blas)
        if s.reset_after:
            # inner = b_rec + H @ R
            _rows_of(n, G, inner, b + G)
            _xw(n, G, U, h, R, G, inner, G, blas)
            for r in range(n):
                gru_gates_after_row(U, z + <Py_ssize_t> r * G, inner + <Py_ssize_t> r * G,
                                    s.ract)
        else:
            # Z[:, :2U] += H @ R[:, :2U]; then Z[:, 2U:] += (r * H) @ R[:, 2U:]
            _xw(n, 2 * U, U, h, R, G, z, G, blas)
            for r in range(n):
                gru_gates_before_row(U, z + <Py_ssize_t> r * G, h + <Py_ssize_t> r * U,
                                     inner + <Py_ssize_t> r * U, s.ract)
            _xw(n, U, U, inner, R + 2 * U, G, z + 2 * U, G, blas)
        for r in range(n):
            gru_finish_row(U, z + <Py_ssize_t> r * G, h + <Py_ssize_t> r * U,
                           h + <Py_ssize_t> r * U, NULL, s.act)
        return h
    if s.kind == S_SIMPLE_RNN:
        # Z = b + X @ W + H @ R
        _rows_of(n, U, z, b)
        _xw(n, U, F, x, W, U, z, U, blas)
        _xw(n, U, U, h, R, U, z, U, blas)
        for r in range(n):
            simple_rnn_forward_row(U, z + <Py_ssize_t> r * U, NULL, h + <Py_ssize_t> r * U, NULL,
                                   s.act)
        return h
    if s.kind == S_DENSE:
        # Y = act(b + X @ W)
        _rows_of(n, U, out, b)
        _xw(n, U, F, x, W, U, out, U, blas)
    else:
        # S_ACTIVATION, out of place: x may be a recurrent stage's states
        memcpy(out, x, <Py_ssize_t> n * U * sizeof(floating))
    for r in range(n):
        activate_any(out + <Py_ssize_t> r * U, U, s.act)
    return out


cdef void _run_block(const Stage *stages, int n_stages, int n, const int64_t *slots,
                     const floating *x, floating *y, floating *z, floating *inner,
                     bint blas) noexcept nogil:
    """The chain for n <= BLOCK rows: x (n, F) -> y (n, units of the last stage); row r
    is the stream in slot slots[r]."""
    cdef int k, r, U
    cdef bint consecutive = True
    cdef const Stage *s
    cdef const floating *cur = x
    cdef floating *h
    cdef floating *c
    cdef Py_ssize_t row
    for r in range(1, n):
        consecutive = consecutive and slots[r] == slots[0] + r
    for k in range(n_stages):
        s = &stages[k]
        U = s.units
        h = c = NULL
        if s.kind <= S_SIMPLE_RNN:
            if consecutive:
                # the slots' rows are already a block: step them in place
                h = <floating *> s.h + slots[0] * U
                if s.kind == S_LSTM:
                    c = <floating *> s.c + slots[0] * U
            else:
                h = <floating *> s.hw
                c = <floating *> s.cw
                for r in range(n):
                    row = slots[r] * U
                    memcpy(h + r * U, <floating *> s.h + row, U * sizeof(floating))
                    if s.kind == S_LSTM:
                        memcpy(c + r * U, <floating *> s.c + row, U * sizeof(floating))
        cur = _stage_rows(s, n, cur, h, c, <floating *> s.out, z, inner, blas)
        if s.kind <= S_SIMPLE_RNN and not consecutive:
            for r in range(n):
                row = slots[r] * U
                memcpy(<floating *> s.h + row, h + r * U, U * sizeof(floating))
                if s.kind == S_LSTM:
                    memcpy(<floating *> s.c + row, c + r * U, U * sizeof(floating))
    memcpy(y, cur, <Py_ssize_t> n * stages[n_stages - 1].units * sizeof(floating))


cdef void _run_rows(const Stage *stages, int n_stages, Py_ssize_t n, const int64_t *slots,
                    const floating *x, floating *y, floating *z, floating *inner,
                    bint blas) noexcept nogil:
    """The chain for n rows, block by block: x (n, F) -> y (n, units of the last stage)."""
    cdef Py_ssize_t r0 = 0, m
    cdef Py_ssize_t F = stages[0].n_in, V = stages[n_stages - 1].units
    while r0 < n:
        m = min(<Py_ssize_t> BLOCK, n - r0)
        _run_block(stages, n_stages, <int> m, slots + r0, x + r0 * F, y + r0 * V, z, inner,
                   blas)
        r0 += m


cdef void *_data(object a) except NULL:
    """Data pointer of C-contiguous array ``a`` (which the caller keeps alive): the buffer
    protocol, as ``a.ctypes.data`` costs a microsecond."""
    cdef Py_buffer view
    PyObject_GetBuffer(a, &view, PyBUF_SIMPLE)
    cdef void *p = view.buf
    PyBuffer_Release(&view)
    return p


cdef class StreamCore:
    """Compiled state of a stream pool: the chain's weight pointers, the slot-major states,
    the slots' bookkeeping and the work buffers.

    Not for direct use: ``crnn.streaming.StreamPool`` and ``Streamer`` check the model and
    set it up. Every array handed in is checked here again (dtype, shape, contiguity), so
    no call can read or write out of bounds.

    Ids: a stream id is ``(generation << 32) | slot``; a slot's generation goes up each
    time it is opened, so the id of a closed stream never comes back. The first stream of
    each slot has id == slot.

    Locking: every method that reads or writes states holds the pool's lock for its whole
    run. With ``serialize`` a call waits for the lock (without the GIL); without, a call
    that finds it taken raises RuntimeError at once, before it looks at its arguments.
    """

    cdef Stage *_stages
    cdef int _n_stages
    cdef int _n_features
    cdef int _n_out
    cdef bint _double
    cdef object _dtype
    cdef char _format
    cdef list _keep             # weights the stages point to, kept alive
    cdef list _rec              # stage index of each recurrent stage
    cdef list _states           # per recurrent stage: [h] or [h, c], each (capacity, U)
    cdef list _work             # work buffers the stages point to
    cdef object _z              # (BLOCK, max G) work
    cdef object _inner          # (BLOCK, max G) work
    cdef bint _owned            # the states are ours (a pool), not a model's (Streamer)
    cdef bint _grow
    cdef bint _serialize
    cdef bint _blas             # block products on BLAS (else crnn's own GEMM kernel)
    cdef object _acquire        # bound methods of the lock
    cdef object _release
    cdef Py_ssize_t _capacity
    cdef Py_ssize_t _n_open
    cdef object _next_gen       # (capacity,) uint32: generation the slot's next stream gets
    cdef object _open           # (capacity,) uint8: 1 open, 0 free (2 marks a slot in step)
    cdef object _free           # (capacity,) int32 stack of free slots, lowest on top
    cdef Py_ssize_t _n_free
    cdef object _slots          # int64 work: the slots of a step's ids
    cdef Py_ssize_t _n_slots    # its length
    cdef object _xbuf           # (1, F) input copy for Streamer inputs that need conversion
    cdef object _result         # (1, V) Streamer output, copied out on return
    cdef object _copy_result
    cdef unsigned int *_gen_p   # data of _next_gen and _open
    cdef uint8_t *_open_p
    cdef void *_zp              # data pointers of _z, _inner, _slots, _xbuf, _result
    cdef void *_ip
    cdef void *_sp
    cdef void *_xbufp
    cdef void *_resultp

    def __cinit__(self, *args, **kwargs):
        self._stages = NULL
        self._n_stages = 0
        lock = threading.Lock()
        self._acquire = lock.acquire
        self._release = lock.release

    def __dealloc__(self):
        free(self._stages)

    # ------------------------------------------------------------------ set-up

    def _setup(self, dtype, int n_features, list stages, int capacity, bint grow,
               bint serialize, list states=None, tuple result_shape=None):
        """Take the stage list built by crnn.streaming.

        Args:
            dtype: np.float32 or np.float64.
            n_features: width of one timestep of input.
            stages: list of dicts with keys kind, units, act, ract, reset_after, kernel,
                recurrent_kernel, bias (None for no bias).
            capacity: slots to allocate (>= 1).
            grow: double the capacity when a stream is opened in a full pool.
            serialize: concurrent calls wait (True) or raise RuntimeError (False).
            states: None (the core allocates and owns zero states and has no open
                stream), or, for capacity 1, per recurrent stage the list of its state
                arrays of shape (1, units), which the core updates in place; slot 0 is
                then open, with id 0.
            result_shape: shape of what ``_step_one`` returns (default (1, units)).
        """
        dtype = np.dtype(dtype)
        if dtype != np.float32 and dtype != np.float64:
            raise ValueError(f"dtype must be float32 or float64, received {dtype}")
        if not stages:
            raise ValueError("a streaming chain needs at least one stage")
        if n_features <= 0:
            raise ValueError(f"n_features must be positive, received {n_features}")
        if capacity < 1:
            raise ValueError(f"capacity must be a positive int, received {capacity}")
        if self._stages != NULL:
            raise RuntimeError("this chain is already set up; create a new one instead")
        self._double = dtype == np.float64
        self._dtype = dtype
        self._format = b'd' if self._double else b'f'
        self._n_features = n_features
        self._keep = []
        self._rec = []
        self._states = []
        self._work = []
        self._owned = states is None
        self._grow = grow
        self._serialize = serialize
        # Fixed for the pool's life: it depends on the CPU and the loaded BLAS kernel (and
        # CRNN_GEMM), and asking on every step would cost a microsecond.
        self._blas = not use_own_gemm()
        self._capacity = capacity
        cdef Stage *st = <Stage *> calloc(len(stages), sizeof(Stage))
        if st == NULL:
            raise MemoryError()
        try:
            self._fill(st, n_features, stages, states)
        except BaseException:
            free(st)
            raise
        self._next_gen = np.zeros(capacity, np.uint32)
        self._open = np.zeros(capacity, np.uint8)
        self._free = np.arange(capacity - 1, -1, -1, dtype=np.int32)
        self._gen_p = <unsigned int *> _data(self._next_gen)
        self._open_p = <uint8_t *> _data(self._open)
        self._n_free = capacity
        self._n_open = 0
        self._slots = np.zeros(1, np.int64)
        self._sp = _data(self._slots)
        self._n_slots = 1
        self._xbuf = np.zeros((1, n_features), dtype)
        if result_shape is None:
            result_shape = (1, self._n_out)
        if int(np.prod(result_shape)) != self._n_out:
            free(st)
            raise ValueError(f"result_shape {result_shape} must hold {self._n_out} values")
        self._result = np.zeros(result_shape, dtype)
        self._resultp = _data(self._result)
        self._xbufp = _data(self._xbuf)
        self._copy_result = self._result.copy
        # Published only once complete, so a failed setup leaves a core that refuses
        # to step.
        self._stages = st
        self._n_stages = len(stages)
        if not self._owned:
            # slot 0 is the model's stream, with the model's current states
            self._open_slot(False)

    cdef int _fill(self, Stage *st, int n_features, list stages, list states) except -1:
        dtype = self._dtype
        cdef int k, F = n_features, U, G, max_g = 1
        cdef int n_rec = 0
        for k, spec in enumerate(stages):
            kind = STAGE_KINDS[spec["kind"]]
            U = spec["units"]
            if U <= 0:
                raise ValueError(f"stage {k}: units must be positive, received {U}")
            if kind == S_ACTIVATION and U != F:
                raise ValueError(f"stage {k}: an activation keeps its width {F}, "
                                 f"received units {U}")
            G = _GATES[kind] * U
            max_g = max(max_g, G)
            st[k].kind = kind
            st[k].n_in = F
            st[k].units = U
            st[k].act = spec["act"]
            st[k].ract = spec.get("ract", 0)
            if not 0 <= st[k].act < N_ACTIVATIONS or not 0 <= st[k].ract < N_ACTIVATIONS:
                raise ValueError(f"stage {k}: unknown activation code")
            if kind <= S_SIMPLE_RNN and (st[k].act >= N_RECURRENT_ACTIVATIONS
                                         or st[k].ract >= N_RECURRENT_ACTIVATIONS):
                raise ValueError(f"stage {k}: the recurrent cells support the "
                                 f"activations linear/tanh/sigmoid/hard_sigmoid/relu only")
            st[k].reset_after = bool(spec.get("reset_after", False)) and kind == S_GRU
            if kind != S_ACTIVATION:
                st[k].W = self._pointer(f"stage {k} kernel", spec["kernel"], (F, G))
                if st[k].reset_after:
                    bias_shape = (2, G)
                else:
                    bias_shape = (G,)
                bias = spec["bias"]
                if bias is None:
                    bias = np.zeros(bias_shape, dtype)
                st[k].b = self._pointer(f"stage {k} bias", bias, bias_shape)
            if kind <= S_SIMPLE_RNN:
                st[k].R = self._pointer(f"stage {k} recurrent_kernel",
                                        spec["recurrent_kernel"], (U, G))
                n_states = _N_STATES[kind]
                if states is None:
                    arrays = [np.zeros((self._capacity, U), dtype) for _ in range(n_states)]
                else:
                    if self._capacity != 1:
                        raise ValueError("states given from outside need capacity 1")
                    if n_rec >= len(states):
                        raise ValueError(f"states: {len(states)} lists for more recurrent "
                                         f"stages")
                    arrays = list(states[n_rec])
                    if len(arrays) != n_states:
                        raise ValueError(f"stage {k} needs {n_states} state arrays, "
                                         f"received {len(arrays)}")
                    for a in arrays:
                        self._pointer(f"stage {k} state", a, (1, U), False, True)
                self._rec.append(k)
                self._states.append(arrays)
                st[k].hw = self._work_rows(U)
                if kind == S_LSTM:
                    st[k].cw = self._work_rows(U)
                n_rec += 1
            else:
                st[k].out = self._work_rows(U)
            F = U
        if states is not None and n_rec != len(states):
            raise ValueError(f"states: {len(states)} lists for {n_rec} recurrent stages")
        self._n_out = F
        self._z = np.zeros((BLOCK, max_g), dtype)
        self._inner = np.zeros((BLOCK, max_g), dtype)
        self._zp = _data(self._z)
        self._ip = _data(self._inner)
        self._point_states(st)
        return 0

    cdef void *_pointer(self, str name, a, tuple shape, bint keep=True,
                        bint writeable=False) except NULL:
        """Check that ``a`` is a C-contiguous array of our dtype and ``shape``; return its
        data pointer. ``keep``: hold a reference (work and states are held elsewhere)."""
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array, received {type(a).__name__}")
        if a.dtype != self._dtype:
            raise TypeError(f"{name} must have dtype {self._dtype}, received {a.dtype}")
        check_shape(name, a.shape, shape)
        if not a.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous")
        if writeable and not a.flags.writeable:
            raise ValueError(f"{name} must be writeable")
        if keep:
            self._keep.append(a)
        return _data(a)

    cdef void *_work_rows(self, int U) except NULL:
        a = np.zeros((BLOCK, U), self._dtype)
        self._work.append(a)
        return _data(a)

    cdef int _point_states(self, Stage *st) except -1:
        cdef int i, k
        for i in range(len(self._rec)):
            k = self._rec[i]
            arrays = self._states[i]
            st[k].h = _data(arrays[0])
            st[k].c = _data(arrays[1]) if len(arrays) == 2 else NULL
        return 0

    # ------------------------------------------------------------------ locking

    cdef int _lock(self) except -1:
        if not self._acquire(False):
            if not self._serialize:
                raise RuntimeError(
                    "Streamer.step is already running in another thread; a Streamer "
                    "(like the model's states) serves one stream: use one model and "
                    "Streamer per thread, or a StreamPool, which serializes its calls")
            self._acquire()     # waits without the GIL
        return 0

    # ------------------------------------------------------------------ slots

    cdef Py_ssize_t _slot_of(self, object sid, str name) except -1:
        """The slot of open stream ``sid``; ValueError/TypeError naming ``name`` if none."""
        cdef int64_t v
        cdef Py_ssize_t slot
        cdef unsigned int gen
        if isinstance(sid, bool) or not isinstance(sid, (int, np.integer)):
            raise TypeError(f"{name} must be a stream id (an int from open()), received "
                            f"{type(sid).__name__} {sid!r}")
        v = sid
        slot = v & 0xFFFFFFFF
        gen = <unsigned int> (v >> SLOT_BITS)
        cdef unsigned int *next_gen = self._gen_p
        cdef uint8_t *is_open = self._open_p
        if v >= 0 and slot < self._capacity and is_open[slot] and next_gen[slot] == gen + 1:
            return slot
        raise self._bad_id(v, name)

    cdef object _bad_id(self, int64_t v, str name):
        cdef Py_ssize_t slot = v & 0xFFFFFFFF
        cdef unsigned int *next_gen = self._gen_p
        cdef uint8_t *is_open = self._open_p
        if (v >= 0 and slot < self._capacity and (v >> SLOT_BITS) < next_gen[slot]):
            if is_open[slot] == 2 and (v >> SLOT_BITS) + 1 == next_gen[slot]:
                return ValueError(f"{name} = {v} appears more than once; each stream "
                                  f"steps at most once per call")
            return ValueError(f"{name} = {v} is a closed stream; open() a new one")
        return ValueError(f"{name} = {v} is not a stream of this pool (ids come from "
                          f"open())")

    cdef int64_t _open_slot(self, bint zero=True) except -1:
        cdef Py_ssize_t slot
        cdef unsigned int gen
        if self._n_free == 0:
            if not self._grow:
                raise RuntimeError(
                    f"the pool is full: all {self._capacity} streams are open; close() "
                    f"streams that ended, or create the pool with a larger capacity= "
                    f"(or grow=True)")
            self._resize(2 * self._capacity)
        cdef int[::1] free_slots = self._free
        cdef unsigned int[::1] next_gen = self._next_gen
        slot = free_slots[self._n_free - 1]
        gen = next_gen[slot]
        if gen == 0xFFFFFFFF:
            raise RuntimeError(f"slot {slot} has been reused 2**32 - 1 times; its ids "
                               f"are exhausted")
        if zero:
            for arrays in self._states:
                for a in arrays:
                    a[slot] = 0
        self._n_free -= 1
        next_gen[slot] = gen + 1
        self._open[slot] = 1
        self._n_open += 1
        return (<int64_t> gen << SLOT_BITS) | slot

    cdef int _resize(self, Py_ssize_t capacity) except -1:
        """Grow every per-slot array to ``capacity`` slots (new slots free, zero)."""
        cdef Py_ssize_t old = self._capacity
        if capacity > (1 << 31) - 1:
            raise RuntimeError(f"a pool holds at most 2**31 - 1 streams, asked for "
                               f"{capacity}")
        if capacity <= old:
            return 0
        states = []
        for arrays in self._states:
            grown = []
            for a in arrays:
                b = np.zeros((capacity, a.shape[1]), self._dtype)
                b[:old] = a
                grown.append(b)
            states.append(grown)
        next_gen = np.zeros(capacity, np.uint32)
        next_gen[:old] = self._next_gen
        is_open = np.zeros(capacity, np.uint8)
        is_open[:old] = self._open
        free_slots = np.zeros(capacity, np.int32)
        # new slots below the free ones, so the lowest free slot stays on top
        free_slots[:capacity - old] = np.arange(capacity - 1, old - 1, -1)
        free_slots[capacity - old:capacity - old + self._n_free] = self._free[:self._n_free]
        # all allocated: now switch over
        self._states = states
        self._next_gen = next_gen
        self._open = is_open
        self._free = free_slots
        self._gen_p = <unsigned int *> _data(next_gen)
        self._open_p = <uint8_t *> _data(is_open)
        self._n_free += capacity - old
        self._capacity = capacity
        self._point_states(self._stages)
        return 0

    def _open_stream(self):
        self._lock()
        try:
            return self._open_slot()
        finally:
            self._release()

    def _close_stream(self, sid):
        cdef Py_ssize_t slot
        self._lock()
        try:
            slot = self._slot_of(sid, "id")
            self._open[slot] = 0
            self._free[self._n_free] = slot
            self._n_free += 1
            self._n_open -= 1
        finally:
            self._release()

    def _reset_stream(self, sid):
        cdef Py_ssize_t slot
        self._lock()
        try:
            slot = self._slot_of(sid, "id")
            for arrays in self._states:
                for a in arrays:
                    a[slot] = 0
        finally:
            self._release()

    def _get_stream(self, sid):
        cdef Py_ssize_t slot
        self._lock()
        try:
            slot = self._slot_of(sid, "id")
            return [a[slot].copy() for arrays in self._states for a in arrays]
        finally:
            self._release()

    def _set_stream(self, sid, list values):
        """values: already checked and converted by the caller (shapes (units,))."""
        cdef Py_ssize_t slot
        self._lock()
        try:
            slot = self._slot_of(sid, "id")
            flat = [a for arrays in self._states for a in arrays]
            if len(values) != len(flat) or any(
                    np.shape(v) != (a.shape[1],) for v, a in zip(values, flat)):
                raise ValueError("internal: states not checked")
            for a, v in zip(flat, values):
                a[slot] = v
        finally:
            self._release()

    def _export(self):
        """(ids of the open streams in slot order, their state arrays (n_open, U) in
        layer order, next_gen) as copies, read under the lock."""
        self._lock()
        try:
            slots = np.flatnonzero(self._open[:self._capacity]).astype(np.int64)
            gens = self._next_gen[slots].astype(np.int64) - 1
            ids = (gens << SLOT_BITS) | slots
            arrays = [a[slots] for group in self._states for a in group]
            return ids, arrays, self._next_gen.copy()
        finally:
            self._release()

    def _import(self, ids, list arrays, next_gen):
        """Open the streams ``ids`` with states ``arrays`` (layer order, (len(ids), U)),
        in an empty pool; next_gen: the saved pool's per-slot generations. All checked by
        the caller (ids unique, in range of next_gen, generations consistent)."""
        self._lock()
        try:
            if self._n_open:
                raise RuntimeError("internal: _import needs an empty pool")
            ids = np.asarray(ids, np.int64)
            slots = ids & 0xFFFFFFFF
            self._resize(max(self._capacity, len(next_gen)))
            self._next_gen[:len(next_gen)] = next_gen
            flat = [a for group in self._states for a in group]
            for a, v in zip(flat, arrays):
                a[slots] = v
            self._open[slots] = 1
            self._n_open = len(ids)
            free_slots = np.flatnonzero(self._open == 0)[::-1].astype(np.int32)
            self._free[:len(free_slots)] = free_slots
            self._n_free = len(free_slots)
        finally:
            self._release()

    # ------------------------------------------------------------------ stepping

    cdef Py_ssize_t _take_ids(self, ids) except -1:
        """Put the slots of ``ids`` into self._slots; raise, changing nothing, unless they
        are distinct open streams. Returns their count."""
        cdef Py_ssize_t n, i, slot, done = 0
        cdef int64_t v
        cdef const int64_t[::1] view
        cdef bint is_array = isinstance(ids, np.ndarray)
        if is_array:
            if ids.ndim != 1 or (ids.dtype.kind not in "iu" and ids.size):
                raise TypeError(f"ids must be a 1-D sequence of stream ids (ints), "
                                f"received an array of dtype {ids.dtype} and shape "
                                f"{ids.shape}")
            view = np.ascontiguousarray(ids, np.int64)
            n = view.shape[0]
        elif type(ids) is list or type(ids) is tuple:
            n = len(ids)
        else:
            raise TypeError(f"ids must be a list, tuple or 1-D int array of stream ids, "
                            f"received {type(ids).__name__}")
        if self._n_slots < n:
            self._slots = np.empty(max(n, 2 * self._n_slots), np.int64)
            self._sp = _data(self._slots)
            self._n_slots = self._slots.shape[0]
        cdef int64_t *slots = <int64_t *> self._sp
        cdef unsigned int *next_gen = self._gen_p
        cdef uint8_t *is_open = self._open_p
        cdef Py_ssize_t capacity = self._capacity
        try:
            for i in range(n):
                if is_array:
                    v = view[i]
                else:
                    item = ids[i]
                    if type(item) is not int and (isinstance(item, bool) or not isinstance(
                            item, (int, np.integer))):
                        raise TypeError(f"ids[{i}] must be a stream id (an int from "
                                        f"open()), received {type(item).__name__} "
                                        f"{item!r}")
                    v = item
                slot = v & 0xFFFFFFFF
                if not (v >= 0 and slot < capacity and is_open[slot] == 1
                        and next_gen[slot] == <unsigned int> (v >> SLOT_BITS) + 1):
                    raise self._bad_id(v, f"ids[{i}]")
                is_open[slot] = 2
                slots[i] = slot
                done = i + 1
        finally:
            for i in range(done):
                is_open[slots[i]] = 1
        return n

    def step(self, ids, X):
        """Advance the streams ``ids`` by one timestep each and return their outputs.

        Args:
            ids: the streams to step: a list, tuple or 1-D int array of ids from
                ``open()``, any subset of the open streams in any order, each at most
                once.
            X: their inputs, row i for stream ``ids[i]``: shape ``(len(ids), features)``
                (or ``(len(ids), 1, features)``), any real dtype (converted to the
                model's dtype as ``predict_on_batch`` does).

        Returns:
            A new array of shape ``(len(ids), units)`` in the model's dtype: row i is
            what a batch-1 stateful copy of the model holding stream ``ids[i]``'s states
            returns from ``predict_on_batch(X[i].reshape(1, 1, features))``.

        Raises:
            TypeError: ``ids`` holds something other than ints, or ``X`` is not real
                numbers.
            ValueError: an id is unknown, closed or repeated, or ``X`` has the wrong
                shape. Nothing changes then.
        """
        cdef Py_ssize_t n
        self._lock()
        try:
            if self._n_stages == 0:
                raise ValueError("this pool was not set up; create it with "
                                 "crnn.streaming.StreamPool(model)")
            n = self._take_ids(ids)
            x = self._inputs(X, n)
            y = _empty((n, self._n_out), self._dtype)
            if n:
                self._run(n, <const int64_t *> self._sp, _data(x), _data(y))
            return y
        finally:
            self._release()

    cdef object _inputs(self, X, Py_ssize_t n):
        """X checked and, if needed, converted to a C-contiguous (n, F) array."""
        cdef int F = self._n_features
        cdef bint ready = (isinstance(X, np.ndarray) and X.dtype == self._dtype
                           and X.flags.c_contiguous)
        if not ready:
            X = np.asarray(X)
            if X.dtype.kind not in "fiub":
                raise TypeError(f"X must be real numbers (one row of {F} features per "
                                f"id), received dtype {X.dtype}")
        if X.shape != (n, F):
            if X.shape != (n, 1, F):
                raise ValueError(
                    f"X must have shape (len(ids), features) = ({n}, {F}): one timestep "
                    f"of {F} features for each of the {n} ids, received shape {X.shape}")
            X = X.reshape(n, F)
        return X if ready else np.ascontiguousarray(X, self._dtype)

    cdef int _run(self, Py_ssize_t n, const int64_t *slots, void *xp,
                  void *yp) except -1:
        cdef void *zp = self._zp
        cdef void *ip = self._ip
        with nogil:
            if self._double:
                _run_rows(self._stages, self._n_stages, n, slots, <const double *> xp,
                          <double *> yp, <double *> zp, <double *> ip, self._blas)
            else:
                _run_rows(self._stages, self._n_stages, n, slots, <const float *> xp,
                          <float *> yp, <float *> zp, <float *> ip, self._blas)
        return 0

    def _step_one(self, x):
        """Run one timestep and return the model's output for it (``Streamer.step``).

        Args:
            x: one timestep of input: shape ``(features,)``, ``(1, features)`` or
                ``(1, 1, features)``, any real dtype (converted to the model's dtype like
                ``predict_on_batch`` does; a C-contiguous array of the model's dtype
                takes the fast path, without any copy).

        Returns:
            A new array, what ``model.predict_on_batch(x.reshape(1, 1, features))``
            returns: shape ``(1, units)``, or ``(1, 1, units)`` when the last recurrent
            layer has ``return_sequences=True``.

        Raises:
            ValueError: ``x`` has a shape other than one timestep of ``features`` values.
            TypeError: ``x`` is not numeric.
            RuntimeError: another thread is in ``step`` of this Streamer.
        """
        cdef Py_buffer view
        cdef bint fast = False, got
        cdef int d
        cdef int64_t slot = 0
        cdef void *xp
        # The lock comes first: nothing below may run in two threads at once.
        self._lock()
        try:
            if self._n_stages == 0:
                raise ValueError("this streamer was not set up; create it with "
                                 "crnn.streaming.Streamer(model)")
            if PyObject_CheckBuffer(x):
                try:
                    got = PyObject_GetBuffer(x, &view, PyBUF_STRIDES | PyBUF_FORMAT) == 0
                except Exception:       # the slow path below says what is wrong
                    got = False
                if got:
                    # One timestep: leading axes of size 1, then F values one item apart.
                    fast = (view.format != NULL and view.format[0] == self._format
                            and view.format[1] == 0 and 1 <= view.ndim <= 3
                            and view.shape[view.ndim - 1] == self._n_features
                            and view.strides[view.ndim - 1] == view.itemsize)
                    for d in range(view.ndim - 1):
                        fast = fast and view.shape[d] == 1
                    if not fast:
                        PyBuffer_Release(&view)
            try:
                if fast:
                    xp = view.buf
                else:
                    self._convert(x)
                    xp = self._xbufp
                self._run(1, &slot, xp, self._resultp)
            finally:
                if fast:
                    PyBuffer_Release(&view)
            return self._copy_result()
        finally:
            self._release()

    cdef int _convert(self, x) except -1:
        """The Streamer's slow path: check ``x`` and copy it, converted, into _xbuf."""
        cdef int F = self._n_features
        a = np.asarray(x)
        if a.dtype.kind not in "fiub":
            raise TypeError(f"x must be a real numeric array (one timestep of {F} "
                            f"features), received dtype {a.dtype}")
        if a.shape not in ((F,), (1, F), (1, 1, F)):
            raise ValueError(
                f"x must be one timestep of shape ({F},), (1, {F}) or (1, 1, {F}) "
                f"(batch 1, {F} features as the model's input), received shape {a.shape}; "
                f"feed a sequence one step at a time, e.g. step(seq[:, t]) for t in "
                f"range(timesteps)")
        self._xbuf[...] = a.reshape(1, F)
        return 0

    def _open_ids(self):
        self._lock()
        try:
            slots = np.flatnonzero(self._open[:self._capacity])
            return ((self._next_gen[slots].astype(np.int64) - 1) << SLOT_BITS) | slots
        finally:
            self._release()

    @property
    def capacity(self):
        """Slots allocated: streams that can be open before the pool grows (or is full)."""
        return self._capacity

    @property
    def n_open(self):
        """The number of open streams."""
        return self._n_open
