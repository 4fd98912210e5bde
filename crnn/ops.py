"""Functional API: whole-sequence LSTM, GRU and SimpleRNN, forward and backward.

Each function checks its arguments, makes them C-contiguous, and hands them to the
compiled kernel of its cell family (``crnn/_kernels/_lstm.pyx``, ``_gru.pyx``,
``_simple_rnn.pyx``), which runs the time loop without the GIL; the step maths of each cell
is defined once, in ``crnn/_kernels/_cells.pxd``, and the activation codes in
``crnn/_kernels/_activations.pxd`` (exposed to Python as
``crnn._kernels._cells.ACTIVATION_CODES``). The maths and the weight layout are Keras 3's;
``crnn.reference`` holds the same maths in plain NumPy.

A training-mode call returns a cache that the matching ``*_grad`` consumes. The cache owns
everything the backward pass reads: the saved activations, and private copies of
``kernel``, ``recurrent_kernel`` (transposed, as the backward uses it) and ``mask``. So
changing the caller's arrays in place between the forward and the grad call (an optimizer
step, ``k += 0.5``) does not change the gradients: they are those of the forward call.

Example:
    >>> import numpy as np, crnn
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((8, 20, 3)).astype("float32")     # (batch, timesteps, features)
    >>> kernel = rng.standard_normal((3, 4 * 16)).astype("float32") * 0.1
    >>> recurrent_kernel = rng.standard_normal((16, 4 * 16)).astype("float32") * 0.1
    >>> outputs, (h, c), cache = crnn.ops.lstm(x, kernel, recurrent_kernel, training=True)
    >>> outputs.shape, h.shape
    ((8, 20, 16), (8, 16))
    >>> grads = crnn.ops.lstm_grad(cache, np.ones_like(outputs))
    >>> grads.dx.shape, grads.d_kernel.shape
    ((8, 20, 3), (3, 64))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from crnn._kernels import _gru, _lstm, _pool, _simple_rnn
from crnn._kernels._cells import ACTIVATION_CODES, RECURRENT_ACTIVATIONS, transposed
from crnn._kernels._workspace import empty as workspace_empty
from crnn.threads import (
    _SERIAL_BLAS,
    get_num_threads,
    held,
    run_parallel,
    use_own_gemm,
    use_own_gemm_for_gradients,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

__all__ = [
    "Gradients",
    "lstm",
    "lstm_grad",
    "gru",
    "gru_grad",
    "simple_rnn",
    "simple_rnn_grad",
    "ACTIVATIONS",
]

# The activations the recurrent kernels run, name -> code (the codes of
# crnn/_kernels/_activations.pxd).
ACTIVATIONS = {name: ACTIVATION_CODES[name] for name in RECURRENT_ACTIVATIONS}
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# The mask argument of a call without a mask (the kernels read it only with has_mask).
_NO_MASK = np.ones((1, 1), np.uint8)
_NO_MASK.flags.writeable = False


class Gradients(NamedTuple):
    """Gradients of a loss with respect to everything a recurrent op consumed.

    What ``lstm_grad``, ``gru_grad`` and ``simple_rnn_grad`` return: a named tuple, each
    gradient with the shape and dtype of what it is the gradient of.

    Attributes:
        dx: (batch, timesteps, features), the gradient w.r.t. ``x``; None when the grad
            call was made with ``need_dx=False``.
        d_initial_state: one array (batch, units) per state (``[dh0, dc0]`` for LSTM,
            ``[dh0]`` for GRU and SimpleRNN), the gradients w.r.t. the initial states.
        d_kernel: the gradient w.r.t. ``kernel``.
        d_recurrent_kernel: the gradient w.r.t. ``recurrent_kernel``.
        d_bias: the gradient w.r.t. ``bias``, in its shape; None when the forward pass had
            no bias.

    Example:
        >>> import numpy as np, crnn
        >>> x = np.ones((2, 3, 4), "float32")
        >>> kernel = np.full((4, 5), 0.1, "float32")
        >>> recurrent_kernel = np.full((5, 5), 0.1, "float32")
        >>> _, _, cache = crnn.ops.simple_rnn(x, kernel, recurrent_kernel, training=True)
        >>> grads = crnn.ops.simple_rnn_grad(cache, np.ones((2, 3, 5), "float32"))
        >>> grads.dx.shape, grads.d_initial_state[0].shape, grads.d_bias is None
        ((2, 3, 4), (2, 5), True)
    """

    dx: np.ndarray | None
    d_initial_state: list[np.ndarray]
    d_kernel: np.ndarray
    d_recurrent_kernel: np.ndarray
    d_bias: np.ndarray | None


class RNNCache:
    """What a training-mode forward pass keeps for its backward pass. Opaque to users.

    ``backward_args`` maps each argument name of the compiled backward entry
    (``_lstm.lstm_backward`` etc.) to its value: the forward's options, its saved arrays,
    and private copies of the weights and mask (see the module notes), so the backward
    takes them by name and its parameter order couples nothing.
    """

    __slots__ = ("cell", "dtype", "backward_args", "parts", "has_bias", "bias_shape",
                 "output_shape", "n_states")

    def __init__(self, cell, dtype, backward_args, parts, has_bias, bias_shape, output_shape,
                 n_states):
        self.cell = cell
        self.dtype = dtype
        self.backward_args = backward_args
        # None, or [(rows, saved arrays of those rows)] when the forward split the batch
        self.parts = parts
        self.has_bias = has_bias
        self.bias_shape = bias_shape
        self.output_shape = output_shape
        self.n_states = n_states


def _cache(cell, x, kernel, recurrent_kernel, mask, saved, has_bias, bias_shape, outputs,
           n_states, **options):
    """The cache of a training call: the backward's arguments by name, with the weights
    and the mask copied so that later in-place changes of the caller's arrays cannot
    reach the gradients."""
    kernel_copy = workspace_empty(kernel.shape, kernel.dtype)   # no fresh pages per call
    np.copyto(kernel_copy, kernel)
    args = dict(kernel=kernel_copy, recurrent_kernel_t=transposed(recurrent_kernel),
                mask=mask.copy(), **options)
    parts = None
    if isinstance(saved, dict):
        args.update(saved)
    else:
        parts = saved
    return RNNCache(cell, x.dtype, args, parts, has_bias, bias_shape, outputs.shape, n_states)


# --------------------------------------------------------------------------- threads

# crnn's threads split a batch's rows (run_parallel): each part runs its whole time loop on
# its own thread, as the rows of a recurrent layer never meet, with no synchronization
# per step. Only when each part has at least SPLIT_MIN_ROWS rows and the forward pass at
# least SPLIT_MIN_WORK multiply-adds: handing a part to a thread and back costs about 50 us
# (measured), more than it saves below that; e.g. at (32, 50, 16, 64) LSTM training was
# 1.4x slower split. Measured on 2 cores (AVX-512), LSTM inference: 1.8-1.9x at
# (64, 100, 128, 256) and (64, 50, 512, 512), where BLAS's own threads on the per-step
# products gave 1.1-1.6x.
SPLIT_MIN_ROWS = 4
SPLIT_MIN_WORK = 1 << 26
# Inference, and LSTM and GRU training, split the rows inside the compiled entries instead
# (their n_threads: crnn's own thread pool, crnn/_kernels/_pool.h, whose hand-off costs
# microseconds), from POOL_SPLIT_MIN_WORK multiply-adds, with every BLAS pool held at one
# thread meanwhile: LSTM training at (32, 50, 16, 64) on two threads takes 0.85 ms against
# 1.31 ms on one (run_parallel's split: 0.94 ms). (SimpleRNN's training, and a platform
# without POSIX threads, keep the split above.)
POOL_SPLIT_MIN_WORK = 1 << 20
# A batch too small to split by rows splits its units instead from this many units (two
# parts of 64: _units.pxd's UNITS_MIN_PER_PART).
UNITS_SPLIT_MIN_UNITS = 128
# An inference call that runs whole with several threads hands BLAS's threads its input
# projection from this many multiply-adds: below it, waking them costs more than they save
# (LSTM at (1, 100, 16, 64), 409,600 multiply-adds: 0.125 ms on two threads against
# 0.114 ms on one before this rule, bench/RESULTS.md's AVX-512 Zen 4 run).
BLAS_SPLIT_MIN_WORK = 1 << 21
_POOL_THREADED = _lstm.THREADED and _gru.THREADED and _simple_rnn.THREADED


def _row_parts(batch, work):
    """The batch's rows as one slice per thread, or None to run the batch whole. Inner
    edges fall on multiples of 8 rows (the micro-kernel's row block) where that keeps
    every part non-empty."""
    n = min(get_num_threads(), batch // SPLIT_MIN_ROWS)
    if n < 2 or work < SPLIT_MIN_WORK:
        return None
    edges = [batch * i // n for i in range(n + 1)]
    aligned = [0] + [8 * round(e / 8) for e in edges[1:-1]] + [batch]
    if all(b > a for a, b in zip(aligned, aligned[1:])):
        edges = aligned
    return [slice(a, b) for a, b in zip(edges, edges[1:])]


def _pool_parts(batch, work, units=0):
    """The number of threads of crnn's pool an inference call may use (its compiled entry's
    n_threads): 1 to run the batch whole (below POOL_SPLIT_MIN_WORK, or without POSIX
    threads). The entry splits the rows, SPLIT_MIN_ROWS at least per part, or, for a
    recurrent kernel too large for each thread to stream whole or a batch with too few
    rows (of a layer with UNITS_SPLIT_MIN_UNITS units or more), the units (see
    crnn/_kernels/_units.pxd)."""
    n = get_num_threads()
    if n < 2 or work < POOL_SPLIT_MIN_WORK or not _POOL_THREADED:
        return 1
    if batch // SPLIT_MIN_ROWS >= 2:
        return min(n, batch // SPLIT_MIN_ROWS)
    return n if units >= UNITS_SPLIT_MIN_UNITS else 1


def _units_threads(batch, units, gates, itemsize, work):
    """The threads of crnn's pool a training call splits its units across (its forward and
    backward entries' n_threads; crnn/_kernels/_units.pxd), or 1: a cell with ``gates``
    gate blocks (0: no units split for this cell) and R too large for each thread to stream
    whole, or too few rows to split."""
    n = get_num_threads()
    if (n < 2 or not gates or work < POOL_SPLIT_MIN_WORK or not _POOL_THREADED
            or _pool.units_split_parts(batch, units, gates, itemsize, n, True) < 2):
        return 1
    return n


def _run_forward(call, x, units, work, training, units_gates=0, kernel_rows=False):
    """_forward_parts with the BLAS pools at crnn's thread budget (crnn.threads.held: the
    compiled entries call BLAS for some products, which would otherwise run on as many
    threads as its pool has, whatever the budget); ``work``: the forward's multiply-adds."""
    with held(work):
        return _forward_parts(call, x, units, work, training, units_gates, kernel_rows)


def _forward_parts(call, x, units, work, training, units_gates=0, kernel_rows=False):
    """``call(rows, threaded, out, n_threads)`` runs a compiled forward entry on the batch's
    ``rows``, writing the outputs into ``out`` (None: a new array), its rows or units split
    across ``n_threads`` threads of crnn's pool; it returns (outputs, final states...,
    saved). Returns ([outputs, final states...], saved), saved a dict, or a list of
    (rows, dict) when the rows were split across crnn's threads (each part writes its rows
    of one outputs array). ``units_gates``: the cell's gate blocks where it has a units
    split (training: _units_threads), else 0. ``kernel_rows``: the cell's compiled entries
    split a training call's rows themselves (on crnn's thread pool, writing the whole
    batch's saved arrays), else run_parallel splits it here."""
    batch, timesteps = x.shape[:2]
    if not training:
        n_threads = _pool_parts(batch, work, units)
        if n_threads > 1:
            with _SERIAL_BLAS:
                *arrays, saved = call(slice(None), False, None, n_threads)
            return arrays, saved
    else:
        n_threads = _units_threads(batch, units, units_gates, x.dtype.itemsize, work)
        if n_threads == 1 and kernel_rows and _POOL_THREADED:
            n_threads = min(get_num_threads(), batch // SPLIT_MIN_ROWS)
            if work < POOL_SPLIT_MIN_WORK:
                n_threads = 1
        if n_threads > 1:
            with _SERIAL_BLAS:
                *arrays, saved = call(slice(None), False, None, n_threads)
            # the backward splits the same way (its n_threads)
            return arrays, dict(saved, n_threads=n_threads)
    parts = _row_parts(batch, work)
    if parts is None:
        threaded = get_num_threads() > 1
        if not training:
            # The threaded BLAS would run the input projection alone (the per-step products
            # of a batch this thin stay on one thread: _blas.pxd's PARALLEL_STEP_WORK):
            # only for a projection large enough to share.
            features = x.shape[2]
            threaded = threaded and work * features >= BLAS_SPLIT_MIN_WORK * (features + units)
        *arrays, saved = call(slice(None), threaded, None)
    else:
        outputs = workspace_empty((batch, timesteps, units), x.dtype)
        results = run_parallel([lambda rows=rows: call(rows, False, outputs[rows])
                                for rows in parts])
        arrays = [outputs] + [np.concatenate([r[i] for r in results])
                              for i in range(1, len(results[0]) - 1)]
        saved = [(rows, r[-1]) for rows, r in zip(parts, results)] if training else None
    return arrays, saved


def _run_backward(backward, cache, d_outputs, d_states, need_dx=True):
    """_backward_parts with the BLAS pools at crnn's thread budget (see _run_forward)."""
    batch, timesteps, units = cache.output_shape
    features, width = cache.backward_args["kernel"].shape
    with held(batch * timesteps * (features + units) * width):
        return _backward_parts(backward, cache, d_outputs, d_states, need_dx)


def _backward_parts(backward, cache, d_outputs, d_states, need_dx=True):
    """Run the compiled backward entry on the cache, whole or per part of the rows as the
    forward ran. Returns (dx, *d_initial_states, d_kernel, d_recurrent_kernel, d_bias);
    dx is None when not ``need_dx`` (the entry skips its product)."""
    names = ("d_h", "d_c")[:len(d_states)]
    need_dx = bool(need_dx)
    if cache.backward_args.get("n_threads", 1) > 1:     # the units split (_run_forward)
        with _SERIAL_BLAS:
            return backward(d_outputs=d_outputs, threaded=False,
                            own_gemm=use_own_gemm_for_gradients(), need_dx=need_dx,
                            **dict(zip(names, d_states)), **cache.backward_args)
    if cache.parts is None:
        return backward(d_outputs=d_outputs, threaded=get_num_threads() > 1,
                        own_gemm=use_own_gemm_for_gradients(), need_dx=need_dx,
                        **dict(zip(names, d_states)), **cache.backward_args)

    def part(rows, saved):
        args = dict(cache.backward_args, **saved)
        if args["has_mask"]:
            args["mask"] = args["mask"][rows]
        return backward(d_outputs=d_outputs[rows], threaded=False,
                        own_gemm=use_own_gemm_for_gradients(), need_dx=need_dx,
                        **{name: d[rows] for name, d in zip(names, d_states)}, **args)

    results = run_parallel([lambda rows=rows, saved=saved: part(rows, saved)
                            for rows, saved in cache.parts])
    n_rows = 1 + len(names)      # dx and the initial states' gradients have the batch first
    merged = [None if results[0][i] is None else np.concatenate([r[i] for r in results])
              for i in range(n_rows)]
    for i in range(n_rows, len(results[0])):     # weight gradients: sums over the parts
        total = np.array(results[0][i])
        for r in results[1:]:
            total += r[i]
        merged.append(total)
    return merged


# --------------------------------------------------------------------------- checks


def _float_array(name, value, dtype=None):
    """``value`` as a float32/float64 array (a view where possible), its dtype checked.

    No copy is made here: callers check every shape first and make the arrays contiguous
    (``_contiguous``) last, so that a wrong-shaped broadcast view (zero strides, little
    memory) fails on its shape instead of on allocating its full-size copy.
    """
    array = np.asarray(value)
    if dtype is None:
        if array.dtype not in _FLOAT_DTYPES:
            raise TypeError(
                f"{name} must be a float32 or float64 array, received dtype {array.dtype}; "
                f"convert it with {name}.astype('float32')"
            )
    elif array.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {array.dtype} but x has dtype {dtype}; all arrays of one "
            f"call must share a dtype (float32 or float64)"
        )
    return array


def _contiguous(*arrays):
    """The checked arrays, C-contiguous (copies only where needed)."""
    return [np.ascontiguousarray(a) for a in arrays]


def _check_shape(name, array, expected):
    if array.shape != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)}, received shape {array.shape}")


def _activation_code(name, value, allowed):
    value = "linear" if value is None else value
    if value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}, received {value!r}")
    return ACTIVATIONS[value]


def _prepare(cell, gates, n_states, x, kernel, recurrent_kernel, bias, bias_shape_fn,
             initial_state, mask):
    """Validate a call's arrays; return them contiguous, plus (units, has_mask)."""
    x = _float_array("x", x)
    if x.ndim != 3:
        raise ValueError(
            f"x must be 3-D (batch, timesteps, features), received shape {x.shape}"
        )
    if 0 in x.shape:
        raise ValueError(
            f"x must have non-zero batch, timesteps and features, received shape {x.shape}")
    batch, timesteps, features = x.shape
    dtype = x.dtype
    recurrent_kernel = _float_array("recurrent_kernel", recurrent_kernel, dtype)
    if recurrent_kernel.ndim != 2 or recurrent_kernel.shape[0] == 0:
        raise ValueError(
            f"recurrent_kernel must be 2-D (units, {gates} * units), received shape "
            f"{recurrent_kernel.shape}"
        )
    units = recurrent_kernel.shape[0]
    _check_shape("recurrent_kernel", recurrent_kernel, (units, gates * units))
    kernel = _float_array("kernel", kernel, dtype)
    _check_shape("kernel", kernel, (features, gates * units))
    bias_shape = bias_shape_fn(units)
    has_bias = bias is not None
    if has_bias:
        bias = _float_array("bias", bias, dtype)
        _check_shape("bias", bias, bias_shape)
    else:
        bias = np.zeros(bias_shape, dtype)
    if initial_state is None:
        states = [np.zeros((batch, units), dtype) for _ in range(n_states)]
    else:
        if isinstance(initial_state, np.ndarray) and n_states == 1:
            initial_state = [initial_state]
        is_list = isinstance(initial_state, (list, tuple))
        if not is_list or len(initial_state) != n_states:
            length = f" of length {len(initial_state)}" if is_list else ""
            raise ValueError(
                f"initial_state for {cell} must be a list of {n_states} array(s) of shape "
                f"{(batch, units)}, received {type(initial_state).__name__}{length}")
        states = []
        for k, state in enumerate(initial_state):
            state = _float_array(f"initial_state[{k}]", state, dtype)
            _check_shape(f"initial_state[{k}]", state, (batch, units))
            states.append(state)
    has_mask = mask is not None
    if has_mask:
        mask = np.asarray(mask)
        if mask.shape != (batch, timesteps):
            raise ValueError(
                f"mask must have shape (batch, timesteps) = {(batch, timesteps)}, "
                f"received shape {mask.shape}"
            )
        numeric = np.issubdtype(mask.dtype, np.integer) or np.issubdtype(mask.dtype, np.floating)
        if mask.dtype != np.bool_ and not (numeric and np.isin(mask, (0, 1)).all()):
            raise TypeError(
                f"mask must be boolean (or 0/1 values), received dtype {mask.dtype}")
        mask = np.ascontiguousarray(mask, dtype=np.uint8)
    else:
        mask = _NO_MASK
    x, kernel, recurrent_kernel, bias = _contiguous(x, kernel, recurrent_kernel, bias)
    states = _contiguous(*states)
    return x, kernel, recurrent_kernel, bias, has_bias, bias_shape, states, mask, has_mask


def _check_grad_inputs(cache, cell, d_outputs, d_final_states):
    if not isinstance(cache, RNNCache) or cache.cell != cell:
        raise TypeError(
            f"cache must be the cache returned by crnn.ops.{cell}(..., training=True), "
            f"received {type(cache).__name__}"
            + (f" from crnn.ops.{cache.cell}" if isinstance(cache, RNNCache) else "")
        )
    dtype = cache.dtype
    d_outputs = _float_array("d_outputs", d_outputs, dtype)
    state_shape = (cache.output_shape[0], cache.output_shape[2])
    if d_outputs.shape == state_shape:
        # The last output's gradient only: the compiled entries take it as (batch, 1,
        # units) and read no gradient for the outputs before it.
        d_outputs = d_outputs[:, None, :]
    else:
        _check_shape("d_outputs", d_outputs, cache.output_shape)
    if d_final_states is None:
        d_final_states = [None] * cache.n_states
    if isinstance(d_final_states, np.ndarray) and cache.n_states == 1:
        d_final_states = [d_final_states]
    if not isinstance(d_final_states, (list, tuple)) or len(d_final_states) != cache.n_states:
        raise ValueError(
            f"d_final_states for {cell} must be None or a list of {cache.n_states} array(s) "
            f"of shape {state_shape}"
        )
    states = []
    for k, d in enumerate(d_final_states):
        if d is None:
            states.append(np.zeros(state_shape, dtype))
            continue
        d = _float_array(f"d_final_states[{k}]", d, dtype)
        _check_shape(f"d_final_states[{k}]", d, state_shape)
        states.append(d)
    return np.ascontiguousarray(d_outputs), _contiguous(*states)


def _gradients(cache, dx, d_states, d_kernel, d_recurrent_kernel, d_bias):
    return Gradients(
        dx=dx,
        d_initial_state=list(d_states),
        d_kernel=d_kernel,
        d_recurrent_kernel=d_recurrent_kernel,
        d_bias=d_bias.reshape(cache.bias_shape) if cache.has_bias else None,
    )


# --------------------------------------------------------------------------- LSTM


def lstm(x: ArrayLike, kernel: ArrayLike, recurrent_kernel: ArrayLike,
         bias: ArrayLike | None = None, initial_state: Sequence[ArrayLike] | None = None, *,
         go_backwards: bool = False, mask: ArrayLike | None = None,
         activation: str | None = "tanh", recurrent_activation: str | None = "sigmoid",
         training: bool = False) -> tuple[np.ndarray, list[np.ndarray], RNNCache | None]:
    """Run an LSTM over whole sequences (Keras 3 maths and weight layout).

    All arrays of one call share x's dtype, float32 or float64; they are read, never
    written, and need not be contiguous.

    Args:
        x: (batch, timesteps, features) float32 or float64 array.
        kernel: (features, 4 * units), gates in order i, f, c, o.
        recurrent_kernel: (units, 4 * units).
        bias: (4 * units,), or None (the default) for no bias.
        initial_state: ``[h, c]``, each (batch, units), or None (the default) for zeros.
        go_backwards: process the sequence from the last timestep to the first. Defaults
            to False.
        mask: (batch, timesteps) booleans (or 0/1 numbers), or None (the default) for no
            mask. A masked step keeps the states and repeats the previous output (zeros
            before the sample's first unmasked step).
        activation: "tanh" (default), "relu", "sigmoid", "hard_sigmoid" or "linear" (None
            means "linear").
        recurrent_activation: "sigmoid" (default), "hard_sigmoid", or any of the above.
        training: keep what ``lstm_grad`` needs and return it as ``cache`` (the saved
            activations and private copies of the weights and mask, so the gradients are
            those of this call even if the caller's arrays change in place afterwards).
            Defaults to False.

    Returns:
        ``(outputs, [h, c], cache)``: outputs (batch, timesteps, units) in processing
        order (reversed with ``go_backwards``, as Keras returns them), the final states,
        and the cache (None unless ``training``).

    Raises:
        TypeError: if x is not a float32 or float64 array, if another array's dtype
            differs from x's, or if mask is neither boolean nor 0/1 values.
        ValueError: if x is not 3-D with non-zero sizes, if a weight, bias, state or mask
            has the wrong shape, if initial_state is not a list of 2 arrays, or if an
            activation is not one of the names above.

    Example:
        >>> import numpy as np, crnn
        >>> x = np.ones((2, 5, 3), "float32")
        >>> kernel = np.full((3, 4 * 8), 0.1, "float32")
        >>> recurrent_kernel = np.full((8, 4 * 8), 0.1, "float32")
        >>> outputs, (h, c), cache = crnn.ops.lstm(x, kernel, recurrent_kernel)
        >>> outputs.shape, h.shape, c.shape, cache is None
        ((2, 5, 8), (2, 8), (2, 8), True)
        >>> bool(np.array_equal(outputs[:, -1], h))
        True
    """
    x, kernel, recurrent_kernel, bias, has_bias, bias_shape, states, mask, has_mask = _prepare(
        "lstm", 4, 2, x, kernel, recurrent_kernel, bias, lambda u: (4 * u,), initial_state, mask)
    act = _activation_code("activation", activation, ACTIVATIONS)
    ract = _activation_code("recurrent_activation", recurrent_activation, ACTIVATIONS)
    batch, timesteps, features = x.shape
    units = recurrent_kernel.shape[0]

    def call(rows, threaded, out, n_threads=1):
        return _lstm.lstm_forward(
            x[rows], kernel, recurrent_kernel, bias, mask[rows] if has_mask else mask,
            has_mask, go_backwards, act, ract, states[0][rows], states[1][rows], training,
            threaded, use_own_gemm(), out=out, n_threads=n_threads)

    (outputs, h, c), saved = _run_forward(
        call, x, units, batch * timesteps * (features + units) * 4 * units, training, 4,
        kernel_rows=True)
    cache = None
    if training:
        cache = _cache("lstm", x, kernel, recurrent_kernel, mask, saved, has_bias, bias_shape,
                       outputs, 2, has_mask=has_mask, go_backwards=go_backwards,
                       activation=act, recurrent_activation=ract)
    return outputs, [h, c], cache


def lstm_grad(cache: RNNCache, d_outputs: ArrayLike,
              d_final_states: Sequence[ArrayLike | None] | None = None, *,
              need_dx: bool = True) -> Gradients:
    """Backpropagate through an ``lstm`` call made with ``training=True``.

    The cache may be used any number of times; the gradients are those of the forward
    call that made it.

    Args:
        cache: the third value returned by ``lstm(..., training=True)``.
        d_outputs: (batch, timesteps, units), gradient of the loss w.r.t. ``outputs``, in
            the forward call's dtype; or (batch, units), the gradient w.r.t.
            ``outputs[:, -1]`` only (the other outputs' gradients are zero: a layer that
            returns its last output), which spares making and reading a mostly-zero
            array.
        d_final_states: None (the default), or ``[dh, dc]`` (either may be None),
            gradients w.r.t. the final states.
        need_dx: compute ``dx``. False skips its matrix product (``(batch * timesteps,
            4 * units) @ (4 * units, features)``) and its copy to batch-major, and returns
            ``dx=None``: for an input that needs no gradient (a model's first layer). The
            other gradients are bit-identical either way. Defaults to True.

    Returns:
        ``Gradients(dx, d_initial_state=[dh0, dc0], d_kernel, d_recurrent_kernel, d_bias)``
        (``dx`` None with ``need_dx=False``).

    Raises:
        TypeError: if cache is not the cache of an ``lstm`` training call, or if a gradient
            is not an array of the forward call's dtype.
        ValueError: if a gradient has the wrong shape, or if d_final_states is not None or
            a list of 2.

    Example:
        >>> import numpy as np, crnn
        >>> x = np.ones((2, 5, 3), "float32")
        >>> kernel = np.full((3, 4 * 8), 0.1, "float32")
        >>> recurrent_kernel = np.full((8, 4 * 8), 0.1, "float32")
        >>> outputs, _, cache = crnn.ops.lstm(x, kernel, recurrent_kernel, training=True)
        >>> grads = crnn.ops.lstm_grad(cache, np.ones_like(outputs))
        >>> grads.dx.shape, grads.d_kernel.shape, len(grads.d_initial_state)
        ((2, 5, 3), (3, 32), 2)
    """
    d_outputs, d_states = _check_grad_inputs(cache, "lstm", d_outputs, d_final_states)
    dx, dh0, dc0, dk, drk, db = _run_backward(_lstm.lstm_backward, cache, d_outputs, d_states,
                                              need_dx)
    return _gradients(cache, dx, [dh0, dc0], dk, drk, db)


# --------------------------------------------------------------------------- GRU


def gru(x: ArrayLike, kernel: ArrayLike, recurrent_kernel: ArrayLike,
        bias: ArrayLike | None = None,
        initial_state: Sequence[ArrayLike] | np.ndarray | None = None, *,
        go_backwards: bool = False, mask: ArrayLike | None = None,
        activation: str | None = "tanh", recurrent_activation: str | None = "sigmoid",
        reset_after: bool = True,
        training: bool = False) -> tuple[np.ndarray, list[np.ndarray], RNNCache | None]:
    """Run a GRU over whole sequences (Keras 3 maths and weight layout).

    All arrays of one call share x's dtype, float32 or float64.

    Args:
        x: (batch, timesteps, features) float32 or float64 array.
        kernel: (features, 3 * units), gates in order z, r, h.
        recurrent_kernel: (units, 3 * units).
        bias: with ``reset_after=True`` (the default) shape (2, 3 * units): the input
            bias row, then the recurrent bias row; with ``reset_after=False`` (3 * units,).
            None (the default) for no bias.
        initial_state: ``[h]`` (or a bare h) with h (batch, units), or None (the default)
            for zeros.
        go_backwards: as for ``lstm``. Defaults to False.
        mask: as for ``lstm``. Defaults to None.
        activation: as for ``lstm``. Defaults to "tanh".
        recurrent_activation: as for ``lstm``. Defaults to "sigmoid".
        reset_after: apply the reset gate after the recurrent matrix product (Keras 3 and
            cuDNN convention) rather than before it. Defaults to True.
        training: as for ``lstm``; the cache is for ``gru_grad``. Defaults to False.

    Returns:
        ``(outputs, [h], cache)``, as for ``lstm``.

    Raises:
        TypeError: as for ``lstm``.
        ValueError: as for ``lstm`` (initial_state must hold 1 array).

    Example:
        >>> import numpy as np, crnn
        >>> x = np.ones((2, 5, 3), "float32")
        >>> kernel = np.full((3, 3 * 8), 0.1, "float32")
        >>> recurrent_kernel = np.full((8, 3 * 8), 0.1, "float32")
        >>> bias = np.zeros((2, 3 * 8), "float32")        # reset_after=True: two rows
        >>> outputs, [h], cache = crnn.ops.gru(x, kernel, recurrent_kernel, bias)
        >>> outputs.shape, h.shape
        ((2, 5, 8), (2, 8))
    """
    bias_shape_fn = (lambda u: (2, 3 * u)) if reset_after else (lambda u: (3 * u,))
    x, kernel, recurrent_kernel, bias, has_bias, bias_shape, states, mask, has_mask = _prepare(
        "gru", 3, 1, x, kernel, recurrent_kernel, bias, bias_shape_fn, initial_state, mask)
    act = _activation_code("activation", activation, ACTIVATIONS)
    ract = _activation_code("recurrent_activation", recurrent_activation, ACTIVATIONS)
    reset_after = bool(reset_after)
    batch, timesteps, features = x.shape
    units = recurrent_kernel.shape[0]
    flat_bias = bias.reshape(-1)

    def call(rows, threaded, out, n_threads=1):
        return _gru.gru_forward(
            x[rows], kernel, recurrent_kernel, flat_bias, mask[rows] if has_mask else mask,
            has_mask, go_backwards, act, ract, reset_after, states[0][rows], training,
            threaded, use_own_gemm(), out=out, n_threads=n_threads)

    (outputs, h), saved = _run_forward(
        call, x, units, batch * timesteps * (features + units) * 3 * units, training,
        3 if reset_after else 0, kernel_rows=True)
    cache = None
    if training:
        cache = _cache("gru", x, kernel, recurrent_kernel, mask, saved, has_bias, bias_shape,
                       outputs, 1, has_mask=has_mask, go_backwards=go_backwards,
                       activation=act, recurrent_activation=ract, reset_after=reset_after)
    return outputs, [h], cache


def gru_grad(cache: RNNCache, d_outputs: ArrayLike,
             d_final_states: Sequence[ArrayLike | None] | np.ndarray | None = None, *,
             need_dx: bool = True) -> Gradients:
    """Backpropagate through a ``gru`` call made with ``training=True``.

    As ``lstm_grad``, for the one-state GRU.

    Args:
        cache: the third value returned by ``gru(..., training=True)``.
        d_outputs: (batch, timesteps, units), gradient of the loss w.r.t. ``outputs``, in
            the forward call's dtype; or (batch, units), as for ``lstm_grad``.
        d_final_states: None (the default), or ``[dh]`` (or a bare dh), the gradient
            w.r.t. the final state.
        need_dx: as for ``lstm_grad``: False skips ``dx`` (returned as None). Defaults
            to True.

    Returns:
        ``Gradients(dx, d_initial_state=[dh0], d_kernel, d_recurrent_kernel, d_bias)``,
        ``d_bias`` in the bias's shape (None if the forward call had no bias).

    Raises:
        TypeError: if cache is not the cache of a ``gru`` training call, or if a gradient
            is not an array of the forward call's dtype.
        ValueError: if a gradient has the wrong shape, or if d_final_states is not None or
            a list of 1.

    Example:
        >>> import numpy as np, crnn
        >>> x = np.ones((2, 5, 3), "float32")
        >>> kernel = np.full((3, 3 * 8), 0.1, "float32")
        >>> recurrent_kernel = np.full((8, 3 * 8), 0.1, "float32")
        >>> bias = np.zeros((2, 3 * 8), "float32")
        >>> outputs, _, cache = crnn.ops.gru(x, kernel, recurrent_kernel, bias, training=True)
        >>> grads = crnn.ops.gru_grad(cache, np.ones_like(outputs))
        >>> grads.dx.shape, grads.d_bias.shape
        ((2, 5, 3), (2, 24))
    """
    d_outputs, d_states = _check_grad_inputs(cache, "gru", d_outputs, d_final_states)
    dx, dh0, dk, drk, db = _run_backward(_gru.gru_backward, cache, d_outputs, d_states,
                                         need_dx)
    return _gradients(cache, dx, [dh0], dk, drk, db)


# --------------------------------------------------------------------------- SimpleRNN


def simple_rnn(x: ArrayLike, kernel: ArrayLike, recurrent_kernel: ArrayLike,
               bias: ArrayLike | None = None,
               initial_state: Sequence[ArrayLike] | np.ndarray | None = None, *,
               go_backwards: bool = False, mask: ArrayLike | None = None,
               activation: str | None = "tanh", training: bool = False
               ) -> tuple[np.ndarray, list[np.ndarray], RNNCache | None]:
    """Run a fully connected RNN, ``h = activation(x @ kernel + h @ recurrent_kernel + bias)``.

    All arrays of one call share x's dtype, float32 or float64.

    Args:
        x: (batch, timesteps, features) float32 or float64 array.
        kernel: (features, units).
        recurrent_kernel: (units, units).
        bias: (units,), or None (the default) for no bias.
        initial_state: ``[h]`` (or a bare h) with h (batch, units), or None (the default)
            for zeros.
        go_backwards: as for ``lstm``. Defaults to False.
        mask: as for ``lstm``. Defaults to None.
        activation: as for ``lstm``. Defaults to "tanh".
        training: as for ``lstm``; the cache is for ``simple_rnn_grad``. Defaults to False.

    Returns:
        ``(outputs, [h], cache)``, as for ``lstm``.

    Raises:
        TypeError: as for ``lstm``.
        ValueError: as for ``lstm`` (initial_state must hold 1 array).

    Example:
        >>> import numpy as np, crnn
        >>> x = np.ones((1, 2, 1), "float32")
        >>> kernel = np.ones((1, 1), "float32")
        >>> recurrent_kernel = np.ones((1, 1), "float32")
        >>> outputs, [h], _ = crnn.ops.simple_rnn(x, kernel, recurrent_kernel,
        ...                                       activation="linear")
        >>> outputs.ravel().tolist(), h.ravel().tolist()      # h1 = 1, h2 = 1 + h1
        ([1.0, 2.0], [2.0])
    """
    x, kernel, recurrent_kernel, bias, has_bias, bias_shape, states, mask, has_mask = _prepare(
        "simple_rnn", 1, 1, x, kernel, recurrent_kernel, bias, lambda u: (u,), initial_state,
        mask)
    act = _activation_code("activation", activation, ACTIVATIONS)
    batch, timesteps, features = x.shape
    units = recurrent_kernel.shape[0]

    def call(rows, threaded, out, n_threads=1):
        return _simple_rnn.simple_rnn_forward(
            x[rows], kernel, recurrent_kernel, bias, mask[rows] if has_mask else mask,
            has_mask, go_backwards, act, states[0][rows], training, threaded, use_own_gemm(),
            out=out, n_threads=n_threads)

    (outputs, h), saved = _run_forward(
        call, x, units, batch * timesteps * (features + units) * units, training)
    cache = None
    if training:
        cache = _cache("simple_rnn", x, kernel, recurrent_kernel, mask, saved, has_bias,
                       bias_shape, outputs, 1, has_mask=has_mask, go_backwards=go_backwards,
                       activation=act)
    return outputs, [h], cache


def simple_rnn_grad(cache: RNNCache, d_outputs: ArrayLike,
                    d_final_states: Sequence[ArrayLike | None] | np.ndarray | None = None, *,
                    need_dx: bool = True) -> Gradients:
    """Backpropagate through a ``simple_rnn`` call made with ``training=True``.

    As ``lstm_grad``, for the one-state SimpleRNN.

    Args:
        cache: the third value returned by ``simple_rnn(..., training=True)``.
        d_outputs: (batch, timesteps, units), gradient of the loss w.r.t. ``outputs``, in
            the forward call's dtype; or (batch, units), as for ``lstm_grad``.
        d_final_states: None (the default), or ``[dh]`` (or a bare dh), the gradient
            w.r.t. the final state.
        need_dx: as for ``lstm_grad``: False skips ``dx`` (returned as None). Defaults
            to True.

    Returns:
        ``Gradients(dx, d_initial_state=[dh0], d_kernel, d_recurrent_kernel, d_bias)``.

    Raises:
        TypeError: if cache is not the cache of a ``simple_rnn`` training call, or if a
            gradient is not an array of the forward call's dtype.
        ValueError: if a gradient has the wrong shape, or if d_final_states is not None or
            a list of 1.

    Example:
        >>> import numpy as np, crnn
        >>> x = np.ones((1, 2, 1), "float32")
        >>> w = np.ones((1, 1), "float32")
        >>> outputs, _, cache = crnn.ops.simple_rnn(x, w, w, activation="linear",
        ...                                         training=True)
        >>> grads = crnn.ops.simple_rnn_grad(cache, np.ones_like(outputs))
        >>> grads.dx.ravel().tolist()       # d(h1 + h2)/dx1 = 2, d(h1 + h2)/dx2 = 1
        [2.0, 1.0]
    """
    d_outputs, d_states = _check_grad_inputs(cache, "simple_rnn", d_outputs, d_final_states)
    dx, dh0, dk, drk, db = _run_backward(_simple_rnn.simple_rnn_backward, cache, d_outputs,
                                         d_states, need_dx)
    return _gradients(cache, dx, [dh0], dk, drk, db)
