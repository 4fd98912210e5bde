# One-timestep inference through a chain of layers, batch 1: the compiled core of
# crnn.streaming.Streamer (which validates the model and builds the stage list).
#
# Notation (Keras 3 layouts, as in _lstm.pyx / _gru.pyx / _simple_rnn.pyx; F the stage's
# input width, U its units):
#   LSTM       z = b + x @ W + h_tm1 @ R (4U: i, f, c, o); c = f*c_tm1 + i*g; h = o*act(c)
#   GRU        reset_after: xz = x @ W + b_in, inner = h_tm1 @ R + b_rec,
#              z, r = ract(xz + inner)[:2U], hh = act(xz_h + r * inner_h)
#              reset before: z, r = ract(x @ W + b + h_tm1 @ R)[:2U],
#              hh = act(xz_h + (r * h_tm1) @ R_h)
#              h = z * h_tm1 + (1 - z) * hh
#   SimpleRNN  h = act(b + x @ W + h_tm1 @ R)
#   Dense      y = act(b + x @ W)
#   Activation y = act(x)
# The recurrent stages run the cells' row steps of _cells.pxd (the same code as the
# sequence kernels); all stages take their activations from _activations.pxd.
# A recurrent stage's output is its h. With one timestep per call, go_backwards makes no
# difference and masks do not arise, so a step is exactly what predict_on_batch computes
# for an input of shape (1, 1, features).
#
# The weights and the states are the layers' own arrays, read and written in place
# through pointers: training, set_weights and the model's predict calls stay consistent
# with the stream. A state list that the layer replaced (predict, reset_states) is
# adopted again at the next step.

import numpy as np

from cython cimport floating
from cpython.buffer cimport (PyBUF_FORMAT, PyBUF_STRIDES, PyBuffer_Release,
                             PyObject_CheckBuffer, PyObject_GetBuffer)
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy

from crnn._activations cimport activate_any, N_RECURRENT_ACTIVATIONS
from crnn._cells cimport (gru_finish_row, gru_gates_after_row, gru_gates_before_row,
                          lstm_forward_row, simple_rnn_forward_row)
from crnn._cells import ACTIVATION_CODES
from crnn._common cimport check_shape

# y[n] += x[k] @ W[k, n] (row stride ldw): the one-row products of a step. crnn._blas's
# kernels target whole batches (BLAS packs W on every call; the small GEMM blocks 4 rows);
# with a single row the work is a matrix-vector product, register-blocked over 4 vectors
# of columns with two accumulator sets (even and odd rows of W) to keep two FMA chains
# per register busy. Built per instruction set with _fastmath.h's CRNN_MULTIVERSION.
cdef extern from *:
    """
    #include "_fastmath.h"
    #define CRNN_STREAM_LOAD(v, ptr) memcpy(&(v), (ptr), 32)
    #define CRNN_STREAM_STORE(ptr, v) memcpy((ptr), &(v), 32)
    #define CRNN_DEFINE_STREAM_GEMV(NAME, T, VT)                                          \
    typedef T VT __attribute__((vector_size(32)));                                       \
    CRNN_INLINE void NAME##_body(int n, int k, const T *x, const T *w, int ldw, T *y) {  \
        const int v = (int)(32 / sizeof(T));                                             \
        int j0 = 0, j, p;                                                                \
        for (; j0 + 4 * v <= n; j0 += 4 * v) {                                           \
            VT a0, a1, a2, a3, b;                                                        \
            VT e0 = {0}, e1 = {0}, e2 = {0}, e3 = {0};                                   \
            CRNN_STREAM_LOAD(a0, y + j0); CRNN_STREAM_LOAD(a1, y + j0 + v);              \
            CRNN_STREAM_LOAD(a2, y + j0 + 2 * v); CRNN_STREAM_LOAD(a3, y + j0 + 3 * v);  \
            for (p = 0; p + 2 <= k; p += 2) {                                            \
                const T *r0 = w + (long)p * ldw + j0, *r1 = r0 + ldw;                    \
                T x0 = x[p], x1 = x[p + 1];                                              \
                CRNN_STREAM_LOAD(b, r0); a0 += x0 * b;                                   \
                CRNN_STREAM_LOAD(b, r0 + v); a1 += x0 * b;                               \
                CRNN_STREAM_LOAD(b, r0 + 2 * v); a2 += x0 * b;                           \
                CRNN_STREAM_LOAD(b, r0 + 3 * v); a3 += x0 * b;                           \
                CRNN_STREAM_LOAD(b, r1); e0 += x1 * b;                                   \
                CRNN_STREAM_LOAD(b, r1 + v); e1 += x1 * b;                               \
                CRNN_STREAM_LOAD(b, r1 + 2 * v); e2 += x1 * b;                           \
                CRNN_STREAM_LOAD(b, r1 + 3 * v); e3 += x1 * b;                           \
            }                                                                            \
            if (p < k) {                                                                 \
                const T *r0 = w + (long)p * ldw + j0;                                    \
                T x0 = x[p];                                                             \
                CRNN_STREAM_LOAD(b, r0); a0 += x0 * b;                                   \
                CRNN_STREAM_LOAD(b, r0 + v); a1 += x0 * b;                               \
                CRNN_STREAM_LOAD(b, r0 + 2 * v); a2 += x0 * b;                           \
                CRNN_STREAM_LOAD(b, r0 + 3 * v); a3 += x0 * b;                           \
            }                                                                            \
            a0 += e0; a1 += e1; a2 += e2; a3 += e3;                                      \
            CRNN_STREAM_STORE(y + j0, a0); CRNN_STREAM_STORE(y + j0 + v, a1);            \
            CRNN_STREAM_STORE(y + j0 + 2 * v, a2); CRNN_STREAM_STORE(y + j0 + 3 * v, a3);\
        }                                                                                \
        for (; j0 + v <= n; j0 += v) {                                                   \
            VT a0, b;                                                                    \
            CRNN_STREAM_LOAD(a0, y + j0);                                                \
            for (p = 0; p < k; p++) {                                                    \
                CRNN_STREAM_LOAD(b, w + (long)p * ldw + j0); a0 += x[p] * b;             \
            }                                                                            \
            CRNN_STREAM_STORE(y + j0, a0);                                               \
        }                                                                                \
        for (j = j0; j < n; j++) {                                                       \
            T s = y[j];                                                                  \
            for (p = 0; p < k; p++) s += x[p] * w[(long)p * ldw + j];                    \
            y[j] = s;                                                                    \
        }                                                                                \
    }                                                                                    \
    CRNN_MULTIVERSION(NAME, (int n, int k, const T *x, const T *w, int ldw, T *y),       \
                      (n, k, x, w, ldw, y))
    CRNN_DEFINE_STREAM_GEMV(crnn_stream_gemv_f32, float, crnn_stream_vec_f32)
    CRNN_DEFINE_STREAM_GEMV(crnn_stream_gemv_f64, double, crnn_stream_vec_f64)
    """
    void crnn_stream_gemv_f32(int n, int k, const float *x, const float *w, int ldw,
                              float *y) nogil
    void crnn_stream_gemv_f64(int n, int k, const double *x, const double *w, int ldw,
                              double *y) nogil


cdef inline void gemv_acc(int n, int k, const floating *x, const floating *w, int ldw,
                          floating *y) noexcept nogil:
    """y[:n] += x[:k] @ W[:k, :n], W with row stride ldw."""
    if floating is float:
        crnn_stream_gemv_f32(n, k, x, w, ldw, y)
    else:
        crnn_stream_gemv_f64(n, k, x, w, ldw, y)

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

cdef struct Stage:
    int kind
    int n_in            # input width F
    int units           # U (output width)
    int act
    int ract
    bint reset_after
    void *W             # (F, G)
    void *R             # (U, G)
    void *b             # (G,), or (2, G) for GRU with reset_after
    void *h             # (U,) the layer's state h (recurrent stages)
    void *c             # (U,) the layer's state c (LSTM)
    void *z             # work, 2G
    void *out           # (U,) output (Dense, Activation)


cdef const floating *_run_stage(Stage *s, const floating *x) noexcept nogil:
    """One timestep of one stage on input x (F,); returns its output (U,)."""
    cdef Py_ssize_t F = s.n_in, U = s.units
    cdef Py_ssize_t G
    cdef floating *z = <floating *> s.z
    cdef floating *h = <floating *> s.h
    cdef floating *c = <floating *> s.c
    cdef floating *out = <floating *> s.out
    cdef floating *inner
    cdef const floating *W = <const floating *> s.W
    cdef const floating *R = <const floating *> s.R
    cdef const floating *b = <const floating *> s.b
    if s.kind == S_LSTM:
        G = 4 * U
        # z = b + x @ W + h_tm1 @ R
        memcpy(z, b, G * sizeof(floating))
        gemv_acc(G, F, x, W, G, z)
        gemv_acc(G, U, h, R, G, z)
        lstm_forward_row(U, z, c, h, z + G, s.act, s.ract)
        return h
    if s.kind == S_GRU:
        G = 3 * U
        # z = b_in + x @ W
        memcpy(z, b, G * sizeof(floating))
        gemv_acc(G, F, x, W, G, z)
        inner = z + G
        if s.reset_after:
            # inner = b_rec + h_tm1 @ R
            memcpy(inner, b + G, G * sizeof(floating))
            gemv_acc(G, U, h, R, G, inner)
            gru_gates_after_row(U, z, inner, s.ract)
        else:
            # z[:2U] += h_tm1 @ R[:, :2U]; z[2U:] += (r * h_tm1) @ R[:, 2U:]
            gemv_acc(2 * U, U, h, R, G, z)
            gru_gates_before_row(U, z, h, inner, s.ract)   # inner = r * h_tm1
            gemv_acc(U, U, inner, R + 2 * U, G, z + 2 * U)
        gru_finish_row(U, z, h, s.act)
        return h
    if s.kind == S_SIMPLE_RNN:
        memcpy(z, b, U * sizeof(floating))
        gemv_acc(U, F, x, W, U, z)
        gemv_acc(U, U, h, R, U, z)
        simple_rnn_forward_row(U, z, h, s.act)
        return h
    if s.kind == S_DENSE:
        memcpy(out, b, U * sizeof(floating))
        gemv_acc(U, F, x, W, U, out)
        activate_any(out, U, s.act)
        return out
    # S_ACTIVATION: out of place, since x may be a recurrent layer's state.
    memcpy(out, x, U * sizeof(floating))
    activate_any(out, U, s.act)
    return out


cdef void _run_chain(Stage *stages, int n, const floating *x, floating *result) noexcept nogil:
    cdef int k
    cdef const floating *cur = x
    for k in range(n):
        cur = _run_stage(&stages[k], cur)
    memcpy(result, cur, stages[n - 1].units * sizeof(floating))


cdef class StreamChain:
    """Compiled state of a streaming chain: weight and state pointers, work buffers.

    Not for direct use: ``crnn.streaming.Streamer`` checks the model and builds it. Every
    array handed in is checked here again (dtype, shape, contiguity), so no call can read
    or write out of bounds.
    """

    cdef Stage *_stages
    cdef int _n_stages
    cdef int _n_features
    cdef bint _double
    cdef object _dtype
    cdef char _format
    cdef list _keep             # every array a pointer refers to, kept alive
    cdef list _rec_stages       # stage index of each recurrent layer
    cdef list _rec_layers       # the recurrent layers, whose ``_states`` we share
    cdef list _rec_states       # the state list adopted from each, for identity checks
    cdef list _rec_arrays       # the state arrays the pointers refer to, kept alive
    cdef bint _busy             # a step is running (possibly without the GIL)
    cdef object _xbuf           # (F,) input copy for inputs that need conversion
    cdef object _result         # output, shape as predict_on_batch returns
    cdef object _copy_result    # its bound .copy, looked up once
    cdef void *_xbuf_ptr
    cdef void *_result_ptr

    def __cinit__(self, *args, **kwargs):
        self._stages = NULL
        self._n_stages = 0

    def __dealloc__(self):
        free(self._stages)

    def _setup(self, dtype, int n_features, list stages, tuple output_shape):
        """Take the stage list built by Streamer.

        Args:
            dtype: np.float32 or np.float64.
            n_features: width of one timestep of input.
            stages: list of dicts with keys kind, units, act, ract, reset_after, kernel,
                recurrent_kernel, bias (None for no bias), layer (recurrent stages).
            output_shape: shape of the array step() returns; its size is the last stage's
                units.
        """
        dtype = np.dtype(dtype)
        if dtype != np.float32 and dtype != np.float64:
            raise ValueError(f"dtype must be float32 or float64, received {dtype}")
        if not stages:
            raise ValueError("a streaming chain needs at least one stage")
        if n_features <= 0:
            raise ValueError(f"n_features must be positive, received {n_features}")
        if self._stages != NULL:
            # Pointers may be in use by a step of another thread; a chain is set up once.
            raise RuntimeError("this chain is already set up; create a new Streamer instead")
        self._double = dtype == np.float64
        self._dtype = dtype
        self._format = b'd' if self._double else b'f'
        self._n_features = n_features
        self._keep = []
        self._rec_stages = []
        self._rec_layers = []
        self._rec_states = []
        self._rec_arrays = []
        # Filled in a local buffer, published in self._stages only once complete, so a
        # failed setup leaves a chain that step() refuses to run.
        cdef Stage *st = <Stage *> calloc(len(stages), sizeof(Stage))
        if st == NULL:
            raise MemoryError()
        try:
            self._fill(st, n_features, stages, output_shape)
        except BaseException:
            free(st)
            raise
        self._stages = st
        self._n_stages = len(stages)
        for i in range(len(self._rec_layers)):
            try:
                self._adopt(i)
            except BaseException:
                self._n_stages = 0
                raise

    cdef int _fill(self, Stage *st, int n_features, list stages,
                   tuple output_shape) except -1:
        dtype = self._dtype
        cdef int k, F = n_features, U, G
        for k, spec in enumerate(stages):
            kind = STAGE_KINDS[spec["kind"]]
            U = spec["units"]
            if U <= 0:
                raise ValueError(f"stage {k}: units must be positive, received {U}")
            if kind == S_ACTIVATION and U != F:
                raise ValueError(f"stage {k}: an activation keeps its width {F}, "
                                 f"received units {U}")
            G = _GATES[kind] * U
            st[k].kind = kind
            st[k].n_in = F
            st[k].units = U
            st[k].act = ACTIVATION_CODES[spec["act"]]
            st[k].ract = ACTIVATION_CODES[spec.get("ract", "sigmoid")]
            if kind <= S_SIMPLE_RNN and (st[k].act >= N_RECURRENT_ACTIVATIONS
                                         or st[k].ract >= N_RECURRENT_ACTIVATIONS):
                raise ValueError(f"stage {k}: the recurrent kernels support the "
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
                st[k].z = self._pointer("", np.zeros(2 * G, dtype), (2 * G,))
                self._rec_stages.append(k)
                self._rec_layers.append(spec["layer"])
                self._rec_states.append(None)
                self._rec_arrays.append(None)
            else:
                st[k].out = self._pointer("", np.zeros(U, dtype), (U,))
            F = U
        if int(np.prod(output_shape)) != F:
            raise ValueError(f"output_shape {output_shape} must hold {F} values")
        self._xbuf = np.zeros(n_features, dtype)
        self._xbuf_ptr = self._pointer("", self._xbuf, (n_features,))
        self._result = np.zeros(output_shape, dtype)
        self._copy_result = self._result.copy
        self._result_ptr = self._pointer("", self._result.reshape(-1), (F,))
        return 0

    cdef void *_pointer(self, str name, a, tuple shape, bint keep=True) except NULL:
        """Check that ``a`` is a C-contiguous array of our dtype and ``shape``; return its
        data pointer. ``keep``: hold a reference (state arrays are held by _rec_arrays)."""
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array, received {type(a).__name__}")
        if a.dtype != self._dtype:
            raise TypeError(f"{name} must have dtype {self._dtype}, received {a.dtype}")
        check_shape(name, a.shape, shape)
        if not a.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous")
        if keep:
            self._keep.append(a)
        return <void *> <size_t> a.ctypes.data

    cdef int _adopt(self, int i) except -1:
        """Point recurrent stage i at its layer's current state arrays (in place)."""
        layer = self._rec_layers[i]
        cdef Stage *s = &self._stages[<int> self._rec_stages[i]]
        cdef void *h
        cdef void *c = NULL
        n_states = 2 if s.kind == S_LSTM else 1
        states = layer._states
        if states is None:
            layer.reset_states()
            states = layer._states
        usable = (isinstance(states, list) and len(states) == n_states and all(
            isinstance(a, np.ndarray) and a.dtype == self._dtype and a.shape == (1, s.units)
            and a.flags.c_contiguous and a.flags.writeable for a in states))
        if not usable:
            # Same values in arrays we can write through; the layer keeps using them.
            if not isinstance(states, (list, tuple)) or len(states) != n_states:
                raise ValueError(f"layer {layer.name!r} must hold {n_states} state "
                                 f"array(s), holds {states!r}")
            states = [np.array(a, dtype=self._dtype, order="C") for a in states]
            for a in states:
                check_shape(f"states of layer {layer.name!r}", a.shape, (1, s.units))
            layer._states = states
        h = self._pointer("", states[0], (1, s.units), False)
        if n_states == 2:
            c = self._pointer("", states[1], (1, s.units), False)
        # Hold the arrays themselves: the list could have its items replaced.
        self._rec_arrays[i] = tuple(states)
        self._rec_states[i] = states
        s.h = h
        s.c = c
        return 0

    def step(self, x):
        """Run one timestep and return the model's output for it.

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
        """
        cdef Py_buffer view
        cdef bint fast = False, got
        cdef int i, d
        cdef void *xp
        if self._n_stages == 0:
            raise ValueError("this streamer was not set up; create it with "
                             "crnn.streaming.Streamer(model)")
        if self._busy:
            raise RuntimeError("Streamer.step is already running in another thread; a "
                               "Streamer (like the model's states) serves one stream: "
                               "use one model and Streamer per thread")
        for i in range(len(self._rec_layers)):
            if (<object> self._rec_layers[i])._states is not self._rec_states[i]:
                self._adopt(i)
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
        if fast:
            xp = view.buf
        else:
            self._convert(x)
            xp = self._xbuf_ptr
        self._busy = True
        try:
            with nogil:
                if self._double:
                    _run_chain(self._stages, self._n_stages, <const double *> xp,
                               <double *> self._result_ptr)
                else:
                    _run_chain(self._stages, self._n_stages, <const float *> xp,
                               <float *> self._result_ptr)
        finally:
            self._busy = False
            if fast:
                PyBuffer_Release(&view)
        return self._copy_result()

    cdef int _convert(self, x) except -1:
        """The slow path: check ``x`` and copy it, converted, into the input buffer."""
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
        self._xbuf[...] = a.reshape(F)
        return 0
