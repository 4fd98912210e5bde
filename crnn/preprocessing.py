"""Data utilities: ``to_categorical``, ``pad_sequences``, ``timeseries_dataset_from_array``,
and the stateful-data helpers ``stateful_batches`` and ``check_stateful_order``.

All are re-exported from ``crnn.utils`` (Keras's spelling: ``crnn.utils.pad_sequences``).
They work on NumPy arrays only.

The stateful rule: a stateful recurrent layer carries sample slot ``i``'s final states into
slot ``i`` of the next batch, so row ``i`` of batch ``k + 1`` must continue row ``i`` of
batch ``k``. ``stateful_batches`` cuts series into exactly that order;
``check_stateful_order`` tells whether given data follows it.

Example:

>>> import numpy as np
>>> import crnn
>>> crnn.preprocessing.to_categorical([0, 2]).tolist()
[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
>>> x, y, steps = crnn.preprocessing.stateful_batches(np.arange(41.0), batch_size=2, timesteps=4)
>>> crnn.preprocessing.check_stateful_order(x, batch_size=2).ok
True
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from crnn._validation import is_int as _is_int

__all__ = [
    "to_categorical", "pad_sequences", "timeseries_dataset_from_array", "TimeseriesBatches",
    "stateful_batches", "check_stateful_order", "StatefulOrderReport",
]


def _check_int(name, value, minimum):
    if not _is_int(value, minimum):
        raise ValueError(
            f"Argument `{name}` must be an int >= {minimum}. Received: {name}={value!r}.")
    return int(value)


# --------------------------------------------------------------------- Keras utilities


def to_categorical(x: ArrayLike, num_classes: int | None = None) -> np.ndarray:
    """One-hot encodes class indices, as ``keras.utils.to_categorical``.

    Args:
        x: Array-like of non-negative integer class indices. A trailing axis of
            size 1 (shape ``(..., 1)``, rank > 1) is dropped first, as Keras does.
        num_classes: Number of classes, a positive int, or ``None`` for
            ``max(x) + 1``. Defaults to ``None``.

    Returns:
        A float64 array of shape ``x.shape + (num_classes,)`` (Keras's NumPy path
        returns float64 too).

    Raises:
        ValueError: If ``x`` holds non-integers or negative values, or a value
            ``>= num_classes``, or ``num_classes`` is not ``None`` or a positive
            int.

    Example:

    >>> import crnn
    >>> crnn.preprocessing.to_categorical([0, 2, 1]).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    """
    arr = np.asarray(x)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError("`x` must hold integer class indices; received non-integer values.")
    elif arr.dtype.kind not in "iub":
        raise ValueError(f"`x` must hold integer class indices; received dtype {arr.dtype}.")
    arr = arr.astype(np.int64)
    if num_classes is not None and not _is_int(num_classes, 1):
        raise ValueError(
            "Argument `num_classes` must be a positive int or None. Received: "
            f"num_classes={num_classes!r}."
        )
    shape = arr.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    flat = arr.reshape(-1)
    if flat.size and flat.min() < 0:
        raise ValueError(f"`x` must hold non-negative class indices; received {flat.min()}.")
    if num_classes is None:
        num_classes = int(flat.max()) + 1 if flat.size else 0
    if flat.size and flat.max() >= num_classes:
        raise ValueError(
            f"`x` holds class index {flat.max()}, which needs num_classes > {flat.max()}; received "
            f"num_classes={num_classes}. Increase num_classes or leave it out."
        )
    out = np.zeros((flat.size, int(num_classes)))
    out[np.arange(flat.size), flat] = 1.0
    return out.reshape(shape + (int(num_classes),))


def pad_sequences(sequences: Sequence[ArrayLike], maxlen: int | None = None,
                  dtype: DTypeLike = "int32", padding: str = "pre", truncating: str = "pre",
                  value: Any = 0.0) -> np.ndarray:
    """Pads (and truncates) sequences to one length, as ``keras.utils.pad_sequences``.

    Args:
        sequences: List of sequences (lists or arrays; each element may itself
            be an array of a common shape).
        maxlen: Output length, an int >= 0, or ``None`` for the length of the
            longest sequence. Defaults to ``None``.
        dtype: Output dtype. Defaults to ``"int32"``. Use ``object`` for
            variable-length strings.
        padding: ``"pre"`` or ``"post"``: pad before or after. Defaults to
            ``"pre"``.
        truncating: ``"pre"`` or ``"post"``: drop values at the start or at the
            end of sequences longer than ``maxlen``. Defaults to ``"pre"``.
        value: Padding value (cast to ``dtype``). Defaults to 0.0.

    Returns:
        Array of shape ``(len(sequences), maxlen) + sample_shape``.

    Raises:
        ValueError: For an unknown ``padding``/``truncating``, a ``sequences``
            without a length, a non-iterable entry, a ``maxlen`` that is not
            ``None`` or an int >= 0, a string ``value`` with a non-string
            ``dtype``, or a sequence whose element shape differs from the first
            non-empty one's.

    Example:

    >>> import crnn
    >>> crnn.preprocessing.pad_sequences([[1, 2, 3], [4]], maxlen=2).tolist()
    [[2, 3], [0, 4]]
    >>> crnn.preprocessing.pad_sequences([[1, 2, 3], [4]], padding="post", truncating="post",
    ...                                  maxlen=2).tolist()
    [[1, 2], [4, 0]]
    """
    if padding not in ("pre", "post"):
        raise ValueError(f'Padding type "{padding}" not understood: use padding="pre" or "post".')
    if truncating not in ("pre", "post"):
        raise ValueError(
            f'Truncating type "{truncating}" not understood: use truncating="pre" or "post".')
    if not hasattr(sequences, "__len__"):
        raise ValueError("`sequences` must be iterable (a list of sequences).")
    if maxlen is not None and not _is_int(maxlen, 0):
        raise ValueError(
            f"Argument `maxlen` must be an int >= 0 or None. Received: maxlen={maxlen!r}.")
    lengths, sample_shape, found = [], (), False
    for s in sequences:
        try:
            lengths.append(len(s))
        except TypeError:
            raise ValueError(
                f"`sequences` must be a list of iterables. Found non-iterable: {s!r}") from None
        if not found and len(s):
            sample_shape = np.asarray(s).shape[1:]
            found = True
    if maxlen is None:
        maxlen = max(lengths) if lengths else 0
    is_str_dtype = np.issubdtype(np.dtype(dtype), np.str_) \
        or np.issubdtype(np.dtype(dtype), np.bytes_)
    if isinstance(value, str) and dtype is not object and not is_str_dtype:
        raise ValueError(
            f"`dtype` {dtype} is not compatible with `value`'s type: {type(value)}; set "
            "dtype=object for variable-length strings."
        )
    rows = []
    for idx, s in enumerate(sequences):
        if not len(s) or maxlen == 0:
            rows.append(None)
            continue
        trunc = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        trunc = np.asarray(trunc, dtype=dtype)
        if trunc.shape[1:] != sample_shape:
            raise ValueError(
                f"Shape of sample {trunc.shape[1:]} of sequence at position {idx} is different "
                f"from expected shape {sample_shape}."
            )
        rows.append(trunc)
    out = np.full((len(lengths), maxlen) + sample_shape, value, dtype=dtype)
    for idx, trunc in enumerate(rows):
        if trunc is None:
            continue
        if padding == "post":
            out[idx, : len(trunc)] = trunc
        else:
            out[idx, -len(trunc):] = trunc
    return out


class TimeseriesBatches:
    """The batches of ``timeseries_dataset_from_array``: an iterable that can be re-iterated.

    Iterating yields ``(x_batch, y_batch)`` tuples, or ``x_batch`` alone when
    there are no targets; ``len()`` is the number of batches. ``x`` and ``y``
    hold all windows at once (``y`` is None without targets). With
    ``batch_size=None`` it yields single windows, as Keras does. ``fit``,
    ``evaluate`` and ``validation_data`` accept it as an iterable of batches.

    Args:
        x: Array of all windows, one per row.
        y: Array of their targets, one per row, or ``None``.
        batch_size: Windows per batch (the last batch may be smaller), or
            ``None`` for single windows.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> batches = crnn.preprocessing.TimeseriesBatches(np.zeros((5, 3)), np.arange(5), 2)
    >>> len(batches)
    3
    >>> [y.tolist() for _, y in batches]
    [[0, 1], [2, 3], [4]]
    """

    def __init__(self, x: np.ndarray, y: np.ndarray | None, batch_size: int | None):
        self.x = x
        self.y = y
        self.batch_size = batch_size

    def __len__(self):
        if self.batch_size is None:
            return len(self.x)
        return -(-len(self.x) // self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        if self.batch_size is None:
            # Keras yields single windows when batch_size is None.
            for k in range(len(self.x)):
                yield self.x[k] if self.y is None else (self.x[k], self.y[k])
            return
        for start in range(0, len(self.x), self.batch_size):
            xb = self.x[start:start + self.batch_size]
            yield xb if self.y is None else (xb, self.y[start:start + self.batch_size])

    def __repr__(self):
        return f"<TimeseriesBatches windows={len(self.x)} batches={len(self)}>"


def timeseries_dataset_from_array(data: ArrayLike, targets: ArrayLike | None,
                                  sequence_length: int, sequence_stride: int = 1,
                                  sampling_rate: int = 1, batch_size: int | None = 128,
                                  shuffle: bool = False, seed: int | None = None,
                                  start_index: int | None = None,
                                  end_index: int | None = None) -> TimeseriesBatches:
    """Sliding windows over a series, as ``keras.utils.timeseries_dataset_from_array``.

    Window ``i`` starts at ``start_index + p_i`` with ``p_i = i * sequence_stride``
    and holds ``data[start + k * sampling_rate]`` for ``k < sequence_length``; its
    target is ``targets[start_index + p_i]`` (so pass ``targets=data[sequence_length:]``
    to predict the value that follows each window). There are
    ``end_index - start_index - (sequence_length - 1) * sampling_rate`` candidate
    starts (at most ``len(targets)``).

    Keras returns a ``tf.data.Dataset``; crnn returns a ``TimeseriesBatches``,
    a plain re-iterable of NumPy batches that ``fit`` accepts, with the arrays of
    all windows in its ``x`` and ``y`` attributes.

    Args:
        data: Array of shape ``(n, ...)``, time on the first axis.
        targets: Array with one target per timestep, or None.
        sequence_length: Window length, a positive int.
        sequence_stride: Step between window starts, a positive int lower than
            ``n``. Defaults to 1.
        sampling_rate: Step between the timesteps of a window, a positive int
            lower than ``n``. Defaults to 1.
        batch_size: Windows per batch (the last batch may be smaller), or None
            for single windows. Defaults to 128.
        shuffle: Whether to shuffle the windows (once, with
            ``np.random.RandomState(seed)`` as Keras; Keras's TensorFlow path
            then shuffles again within a buffer, which crnn does not).
            Defaults to False.
        seed: Shuffling seed, or ``None`` for one drawn from NumPy's global
            generator (which ``crnn.utils.set_random_seed`` seeds). Defaults
            to ``None``.
        start_index: First timestep used (an int in ``[0, n)``), or ``None``
            for 0. Defaults to ``None``.
        end_index: Timestep where the data used ends (exclusive; an int in
            ``(start_index, n)``), or ``None`` for ``n``: only
            ``data[start_index:end_index]`` is used. Defaults to ``None``.

    Returns:
        A ``TimeseriesBatches``.

    Raises:
        ValueError: For out-of-range indices, strides, rates, lengths or batch
            sizes (Keras's checks).

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> batches = crnn.preprocessing.timeseries_dataset_from_array(
    ...     np.arange(10), np.arange(3, 10), 3, batch_size=4)
    >>> [(x.tolist(), y.tolist()) for x, y in batches][1]
    ([[4, 5, 6], [5, 6, 7], [6, 7, 8]], [7, 8, 9])
    """
    data = np.asarray(data)
    n = len(data)
    sequence_length = _check_int("sequence_length", sequence_length, 1)
    if start_index:
        if start_index < 0:
            raise ValueError(
                f"`start_index` must be 0 or greater. Received: start_index={start_index}")
        if start_index >= n:
            raise ValueError(
                f"`start_index` must be lower than the length of the data. Received: "
                f"start_index={start_index}, for data of length {n}"
            )
    if end_index:
        if start_index and end_index <= start_index:
            raise ValueError(
                "`end_index` must be higher than `start_index`. Received: "
                f"start_index={start_index}, and end_index={end_index}"
            )
        if end_index >= n:
            raise ValueError(
                f"`end_index` must be lower than the length of the data. Received: "
                f"end_index={end_index}, for data of length {n}"
            )
        if end_index <= 0:
            raise ValueError(f"`end_index` must be higher than 0. Received: end_index={end_index}")
    for name, value in (("sampling_rate", sampling_rate), ("sequence_stride", sequence_stride)):
        _check_int(name, value, 1)
        if value >= n:
            raise ValueError(
                f"`{name}` must be lower than the length of the data. Received: {name}={value}, "
                f"for data of length {n}"
            )
    if batch_size is not None:
        _check_int("batch_size", batch_size, 1)
    start_index = start_index or 0
    end_index = end_index or n
    num_seqs = end_index - start_index - (sequence_length - 1) * sampling_rate
    if targets is not None:
        targets = np.asarray(targets)
        num_seqs = min(num_seqs, len(targets))
    starts = np.arange(0, max(num_seqs, 0), sequence_stride)
    if shuffle:
        if seed is None:
            seed = np.random.randint(1e6)
        np.random.RandomState(seed).shuffle(starts)
    window = start_index + starts[:, None] + sampling_rate * np.arange(sequence_length)[None, :]
    x = data[window] if len(starts) else np.empty((0, sequence_length) + data.shape[1:], data.dtype)
    y = None if targets is None else targets[start_index + starts]
    return TimeseriesBatches(x, y, batch_size)


# --------------------------------------------------------------------- stateful data

_REMAINDERS = ("trim_start", "trim_end", "pad_start", "error")
_TARGETS = ("next", "next_sequence")


def _as_series(name, s):
    s = np.asarray(s)
    if s.dtype.kind not in "fiub":
        raise ValueError(f"`{name}` must be numeric; received dtype {s.dtype}.")
    if s.ndim == 1:
        s = s[:, None]
    if s.ndim != 2:
        raise ValueError(
            f"`{name}` must have shape (n,) or (n, features); received shape {s.shape}.")
    return s


def stateful_batches(series: ArrayLike | Sequence[ArrayLike], batch_size: int, timesteps: int,
                     targets: str | ArrayLike | Sequence[ArrayLike] | None = "next",
                     remainder: str = "trim_start", pad_value: float = 0.0
                     ) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Cuts series into batches in stateful order.

    In stateful order, row ``i`` of batch ``k+1`` continues row ``i`` of batch ``k``.

    Each series is split into ``lanes = batch_size / len(series)`` contiguous
    lanes of equal length; lane ``i`` is cut into consecutive, non-overlapping
    windows of ``timesteps`` steps; batch ``k`` holds window ``k`` of every lane.
    A stateful model fed ``x`` with this ``batch_size`` and ``shuffle=False``
    therefore sees every lane as one uninterrupted sequence.

    Args:
        series: One numeric array of shape ``(n,)`` or ``(n, features)``, or a
            list (or tuple) of them (several series, e.g. one per sensor;
            ``batch_size`` must be a multiple of their number, and they must have
            the same features).
        batch_size: The stateful model's batch size, a positive int.
        timesteps: Steps per window (the model's input length), a positive int.
        targets: ``"next"`` (default): ``y`` is the value that follows each
            window, shape ``(rows, features)``, for ``return_sequences=False``;
            ``"next_sequence"``: ``y`` is the window shifted by one step, shape
            ``(rows, timesteps, features)``, for ``return_sequences=True``; an
            array (or list of arrays, one per series) aligned with the series:
            ``y`` is its value at each window's last step; None: no ``y``.
        remainder: What to do when a lane's length is not a multiple of
            ``timesteps`` (or a series does not split evenly):
            ``"trim_start"`` (default) drops the oldest values, keeping the most
            recent; ``"trim_end"`` drops the newest; ``"pad_start"`` prepends
            ``pad_value`` so that nothing is dropped (the padding lands in the
            first windows of the first lane of each series); ``"error"`` raises.
        pad_value: Padding value for ``remainder="pad_start"``. Defaults to 0.

    Returns:
        ``(x, y, steps_per_epoch)``: ``x`` of shape
        ``(steps_per_epoch * batch_size, timesteps, features)``, ``y`` as
        described under ``targets`` (None without targets), and the number of
        batches.

    Raises:
        ValueError: For a bad argument, or series too short for one window per
            lane (the message says the minimum length).

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> x, y, steps = crnn.preprocessing.stateful_batches(np.arange(17.0), batch_size=2,
    ...                                                   timesteps=4)
    >>> steps
    2
    >>> x[:, :, 0].tolist()
    [[0.0, 1.0, 2.0, 3.0], [8.0, 9.0, 10.0, 11.0], [4.0, 5.0, 6.0, 7.0], [12.0, 13.0, 14.0, 15.0]]
    >>> y[:, 0].tolist()
    [4.0, 12.0, 8.0, 16.0]
    """
    batch_size = _check_int("batch_size", batch_size, 1)
    timesteps = _check_int("timesteps", timesteps, 1)
    if remainder not in _REMAINDERS:
        raise ValueError(
            f"Argument `remainder` must be one of {_REMAINDERS}. Received: "
            f"remainder={remainder!r}.")
    several = isinstance(series, (list, tuple))
    series_list = [_as_series("series", s) for s in (series if several else [series])]
    if not series_list:
        raise ValueError("`series` is an empty list; pass at least one series.")
    if len({s.shape[1] for s in series_list}) != 1:
        raise ValueError(
            "All series must have the same number of features; received "
            f"{[s.shape[1] for s in series_list]}."
        )
    if batch_size % len(series_list):
        raise ValueError(
            f"batch_size={batch_size} must be a multiple of the number of series "
            f"({len(series_list)}), so that each series gets the same number of lanes."
        )
    lanes = batch_size // len(series_list)
    if isinstance(targets, str):
        if targets not in _TARGETS:
            raise ValueError(
                "Argument `targets` must be 'next', 'next_sequence', an array or None. Received: "
                f"{targets!r}."
            )
        target_list = None
    elif targets is None:
        target_list = None
    else:
        raw = targets if several else [targets]
        if not isinstance(raw, (list, tuple)) or len(raw) != len(series_list):
            raise ValueError(
                "With several series, `targets` must be a list with one array per series.")
        target_list = [_as_series("targets", t) for t in raw]
        for s, t in zip(series_list, target_list):
            if len(t) != len(s):
                raise ValueError(
                    f"`targets` must have one value per timestep of its series: received {len(t)} "
                    f"targets for a series of length {len(s)}."
                )
    shift = 1 if isinstance(targets, str) else 0  # "next" targets need one value past the inputs
    # Every lane gets the same number of windows: that of the shortest series.
    usable = [len(s) - shift for s in series_list]
    windows = min(u // lanes for u in usable) // timesteps
    if remainder == "pad_start":
        windows = -(-max(usable) // (lanes * timesteps))
    if windows < 1:
        need = lanes * timesteps + shift
        raise ValueError(
            f"A series of length {min(len(s) for s in series_list)} is too short for {lanes} "
            f"lane(s) of at least one window of {timesteps} steps: it needs at least {need} values"
            + (" (one more for the 'next' targets)" if shift else "")
            + ". Use a smaller batch_size or timesteps."
        )
    lane_len = windows * timesteps
    need = lanes * lane_len + shift
    xs, ys = [], []
    for k, s in enumerate(series_list):
        t = None if target_list is None else target_list[k]
        extra = len(s) - need
        if extra < 0:
            if remainder != "pad_start":
                raise AssertionError("unreachable: windows were sized to fit")
            s = np.concatenate([np.full((-extra, s.shape[1]), pad_value,
                                        dtype=np.result_type(s, pad_value)), s])
            if t is not None:
                t = np.concatenate([np.full((-extra, t.shape[1]), pad_value,
                                            dtype=np.result_type(t, pad_value)), t])
            extra = 0
        if extra and remainder == "error":
            raise ValueError(
                f"Series {k} has {len(s)} values; {need} split evenly into {lanes} lane(s) of "
                f"{windows} window(s) of {timesteps} steps"
                + (" plus one target" if shift else "")
                + f". Drop {extra} value(s) or pass remainder='trim_start', 'trim_end' or "
                "'pad_start'."
            )
        offset = extra if remainder in ("trim_start", "pad_start") else 0
        # lane j covers inputs offset + j*lane_len ... offset + (j+1)*lane_len - 1
        idx = offset + np.arange(lanes)[:, None, None] * lane_len \
            + np.arange(windows)[None, :, None] * timesteps + np.arange(timesteps)[None, None, :]
        xs.append(s[idx])                                   # (lanes, windows, timesteps, f)
        mode = targets if isinstance(targets, str) else None
        if mode == "next":
            ys.append(s[idx[:, :, -1] + 1])                  # (lanes, windows, f)
        elif mode == "next_sequence":
            ys.append(s[idx + 1])
        elif t is not None:
            ys.append(t[idx[:, :, -1]])
    # (series*lanes, windows, ...) -> windows-major: batch k holds window k of every lane.
    x = np.concatenate(xs, axis=0).swapaxes(0, 1)
    x = x.reshape((windows * batch_size,) + x.shape[2:])
    y = None
    if ys:
        y = np.concatenate(ys, axis=0).swapaxes(0, 1)
        y = y.reshape((windows * batch_size,) + y.shape[2:])
    return x, y, windows


StatefulOrderReport = namedtuple("StatefulOrderReport", ["ok", "layout", "stride", "message"])
StatefulOrderReport.__doc__ = """What ``check_stateful_order`` found.

Attributes:
    ok: True when the rows follow the stateful order (exactly, or plausibly).
    layout: ``"sliding"`` (each row overlaps the previous one, with window
        stride ``stride``: positions are known, so the verdict is exact; it
        holds only when ``batch_size * stride == timesteps``),
        ``"overlapping"`` (wrong: row i of batch k+1 repeats steps that row i
        of batch k already fed to the states), ``"continuous"`` (plausible:
        non-overlapping windows whose boundaries between batches are as smooth
        as the steps inside them), ``"sequential"`` (wrong: non-overlapping
        windows in time order, row after row), or ``"unknown"``.
    stride: The window stride found for overlapping layouts, else None.
    message: A sentence saying what was found and how to fix it.

Example:

>>> import numpy as np
>>> import crnn
>>> windows = np.stack([np.arange(20.0)[i:i + 4] for i in range(0, 16, 2)])  # stride 2
>>> report = crnn.preprocessing.check_stateful_order(windows, batch_size=2)
>>> report.ok, report.layout, report.stride
(True, 'sliding', 2)
"""


def _overlap_stride(a, b, timesteps, atol, share=1.0):
    """Smallest s in [1, timesteps) with b[:, :T-s] == a[:, s:] for at least ``share`` of the
    row pairs; returns ``(s, matches)`` (``matches`` per pair), or ``(None, None)``."""
    for s in range(1, timesteps):
        close = np.isclose(b[:, : timesteps - s], a[:, s:], rtol=0, atol=atol, equal_nan=True)
        matches = close.all(axis=(1, 2))
        if matches.mean() >= share:
            return s, matches
    return None, None


def check_stateful_order(x: ArrayLike, batch_size: int, atol: float = 0.0
                         ) -> StatefulOrderReport:
    """Checks that row ``i`` of batch ``k+1`` continues row ``i`` of batch ``k``.

    "Continues" means it starts at the step right after the one where row ``i``
    of batch ``k`` ended, so that the states carried between the batches are
    those of the preceding steps. Overlapping windows are checked exactly: their
    overlaps give each row's position in the series. Non-overlapping windows can
    only be checked plausibly: the jump from each row's last step to the first
    step of the same row in the next batch is compared with the typical step
    inside the windows, and with the jump to the next row (the common mistake:
    windows cut in time order, row after row).

    Args:
        x: Array of shape ``(rows, timesteps)`` or ``(rows, timesteps, features)``.
        batch_size: The stateful model's batch size, a positive int.
        atol: Absolute tolerance of the exact overlap comparisons. Defaults to 0.0.

    Returns:
        A ``StatefulOrderReport`` (``ok``, ``layout``, ``stride``, ``message``).

    Raises:
        ValueError: If ``x`` has the wrong rank, ``rows`` is not a multiple of
            ``batch_size``, or ``batch_size`` is not a positive int.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> x, _, _ = crnn.preprocessing.stateful_batches(np.arange(40.0), batch_size=2, timesteps=4)
    >>> crnn.preprocessing.check_stateful_order(x, batch_size=2).ok
    True
    >>> windows = np.stack([np.arange(40.0)[i:i + 4] for i in range(0, 36, 4)])[:8]
    >>> crnn.preprocessing.check_stateful_order(windows, batch_size=2).layout
    'sequential'
    """
    batch_size = _check_int("batch_size", batch_size, 1)
    x = np.asarray(x)
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3:
        raise ValueError(
            f"`x` must have shape (rows, timesteps[, features]); received shape {x.shape}.")
    rows, timesteps = x.shape[:2]
    if rows % batch_size:
        raise ValueError(
            f"`x` has {rows} rows, not a multiple of batch_size={batch_size}; a stateful model "
            f"needs whole batches: use {rows - rows % batch_size} or "
            f"{rows - rows % batch_size + batch_size} rows."
        )
    x = x.reshape(rows, timesteps, -1).astype(np.float64)
    fix = ("cut the series with crnn.utils.stateful_batches(series, batch_size, timesteps), which "
           "puts window k of lane i in row i of batch k")
    if rows < 2 * batch_size:
        return StatefulOrderReport(True, "unknown", None,
                                   "Only one batch: there is no batch-to-batch continuity to "
                                   "check.")
    prev, nxt = x[:-batch_size], x[batch_size:]
    if timesteps > 1:
        # Mostly sliding windows (a few misplaced rows still count as a sliding layout).
        stride, matches = _overlap_stride(x[:-1], x[1:], timesteps, atol, share=0.75)
        if stride is not None and not matches.all():
            bad = np.flatnonzero(~matches)[:5] + 1
            return StatefulOrderReport(
                False, "sliding", stride,
                f"The rows are sliding windows with stride {stride}, but row(s) {bad.tolist()} do "
                "not continue the row before them: some rows are out of order. Rebuild the "
                f"windows in order, or {fix}.")
        if stride is not None:
            if stride * batch_size == timesteps:
                return StatefulOrderReport(
                    True, "sliding", stride,
                    f"Sliding windows with stride {stride} and batch_size={batch_size}: row i of "
                    "each batch starts right where row i of the previous batch ended (exact).")
            return StatefulOrderReport(
                False, "sliding", stride,
                f"Each row overlaps the previous row (sliding windows, stride {stride}), so row i "
                f"of batch k+1 starts {stride * batch_size} steps after row i of batch k, not "
                f"{timesteps}: the states carried between batches do not belong to the steps just "
                f"before. Use a stride of timesteps / batch_size, or {fix}.")
        stride, _ = _overlap_stride(prev, nxt, timesteps, atol)
        if stride is not None:
            return StatefulOrderReport(
                False, "overlapping", stride,
                f"Row i of each batch repeats the last {timesteps - stride} steps of row i of the "
                "previous batch, which the carried states have already seen. Use windows that "
                f"don't overlap within a lane: {fix}.")
    # Non-overlapping windows: compare boundary jumps with the steps inside the windows.
    # Root-mean-square jumps: robust to the occasional small jump of a random walk.
    typical = float(np.sqrt(np.mean(np.square(np.diff(x, axis=1))))) if timesteps > 1 else None
    across = float(np.sqrt(np.mean(np.square(nxt[:, 0] - prev[:, -1]))))
    seq = float(np.sqrt(np.mean(np.square(x[1:, 0] - x[:-1, -1]))))
    if typical is None:
        return StatefulOrderReport(True, "unknown", None,
                                   "Windows of one step: continuity can't be judged.")
    scale = max(typical, 1e-12)
    if batch_size > 1 and seq <= 2 * scale < across:
        return StatefulOrderReport(
            False, "sequential", None,
            "The windows are in time order row after row (the jump from a row's end to the next "
            f"row's start is {seq:.3g}, like a step inside a window, {typical:.3g}; to the same "
            f"row of the next batch it is {across:.3g}). With batch_size={batch_size} the states "
            f"carried between batches belong to other windows. To fix it, {fix}.")
    if across <= 2 * scale:
        return StatefulOrderReport(
            True, "continuous", None,
            f"The jump from each row's end to the same row of the next batch ({across:.3g}) is "
            f"like a step inside a window ({typical:.3g}): the stateful order is plausible "
            "(windows don't overlap, so this can't be checked exactly).")
    return StatefulOrderReport(
        False, "unknown", None,
        "No continuity found: the jump from each row's end to the same row of the next batch is "
        f"{across:.3g}, against {typical:.3g} inside windows. If these rows are independent "
        "sequences, reset the states between them (crnn.callbacks.ResetStatesCallback); otherwise "
        f"{fix}.")
