"""Optimizers with Keras 3's update rules, defaults and gradient clipping.

An optimizer updates a fixed list of NumPy parameter arrays in place::

    opt = Adam(learning_rate=1e-3, clipnorm=1.0)
    opt.apply(params, grads)   # params[i] -= ... for every i

Its slot arrays (momentums, velocities, ...) are created on the first ``apply``,
one per parameter, in the parameter's dtype. Every later call must pass the same
number of arrays with the same shapes, in the same order.

Each ``apply`` first clips the gradients (at most one of ``clipnorm``,
``clipvalue`` and ``global_clipnorm``):

- ``clipnorm=c``: each gradient ``g`` becomes ``g * c / max(||g||, c)``, its own
  L2 norm, so each is clipped separately (Keras 3 semantics);
- ``global_clipnorm=c``: every gradient is multiplied by
  ``c / max(N, c)``, with ``N`` the L2 norm of all gradients together;
- ``clipvalue=c``: each element is clipped to ``[-c, c]``.

It then applies ``weight_decay`` if set (``p -= p * weight_decay * lr``), runs the
optimizer's update with ``t = iterations + 1`` and increments ``iterations``.

The learning rate is a float or a schedule from ``crnn.optimizers.schedules``
(``ExponentialDecay``, ``InverseTimeDecay``, ``PiecewiseConstantDecay``,
``CosineDecay``), evaluated at ``iterations`` before each update, as in Keras.

Sparse gradients: an ``IndexedSlices`` gradient (what ``Embedding`` produces) is
applied as Keras on TensorFlow applies it, row occurrence by row occurrence where
Keras's TensorFlow backend does (see ``IndexedSlices``).
"""

from __future__ import annotations

import math
import types
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from crnn._registry import class_config, config_repr, from_class_config, keras_config
from crnn._validation import check_bool
from crnn._validation import is_number as _is_number

__all__ = [
    "Optimizer", "IndexedSlices", "SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "Adamax", "Nadam",
    "LearningRateSchedule", "ExponentialDecay", "InverseTimeDecay", "PiecewiseConstantDecay",
    "CosineDecay", "schedules", "get", "serialize", "deserialize",
]




def _check_positive(name, value, allow_none=False):
    if value is None and allow_none:
        return None
    if not _is_number(value) or not np.isfinite(value) or value <= 0:
        raise ValueError(
            f"Argument `{name}` must be a positive finite float. Received: {name}={value!r}."
        )
    return float(value)


def _check_range(name, value, low, high, low_open=False, high_open=False):
    ok = _is_number(value) and np.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high
        )
    if not ok:
        interval = ("(" if low_open else "[") + f"{low}, {high}" + (")" if high_open else "]")
        raise ValueError(f"Argument `{name}` must be a float in {interval}. Received: {name}={value!r}.")
    return float(value)


def _via_float32(value, dtype):
    # Keras's ops.cast turns a Python float into a float32 tensor before casting
    # it to the variable's dtype; float64 parameters see the rounded value.
    return dtype(np.float32(value))


class IndexedSlices:
    """A sparse gradient: row ``values[k]`` adds to row ``indices[k]`` of the parameter.

    This is the gradient of a row gather, such as an ``Embedding`` lookup, in the
    form TensorFlow gives it to Keras optimizers. It matters only for clipping:
    Keras on TensorFlow applies ``clipnorm``, ``clipvalue`` and
    ``global_clipnorm`` to the rows *before* rows with the same index are summed
    (so a token seen three times contributes three rows to the norm). Passing a
    dense gradient instead gives the clipping of Keras's JAX and PyTorch
    backends, which sum first. Without clipping both are identical.

    Args:
        values: Array of shape ``(n, *dense_shape[1:])``.
        indices: Integer array of shape ``(n,)``, row indices into the parameter.
        dense_shape: Shape of the parameter.

    Raises:
        ValueError: If ``indices`` is not a 1-d integer array, ``values`` does not
            have the shape above, or an index is outside ``[0, dense_shape[0])``.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> g = crnn.optimizers.IndexedSlices(np.ones((3, 2)), np.array([1, 1, 0]), (4, 2))
    >>> g.to_dense().tolist()
    [[1.0, 1.0], [2.0, 2.0], [0.0, 0.0], [0.0, 0.0]]
    >>> w = np.zeros((4, 2))
    >>> crnn.optimizers.SGD(learning_rate=0.5).apply([w], [g])
    >>> w[:2]
    array([[-0.5, -0.5],
           [-1. , -1. ]])
    """

    def __init__(self, values: ArrayLike, indices: ArrayLike, dense_shape: Sequence[int]) -> None:
        self.values = np.asarray(values)
        self.indices = np.asarray(indices)
        self.dense_shape = tuple(int(d) for d in dense_shape)
        if self.indices.ndim != 1 or self.indices.dtype.kind not in "iu":
            raise ValueError(
                f"`indices` must be a 1-D integer array. Received shape {self.indices.shape}, "
                f"dtype {self.indices.dtype}."
            )
        if self.values.shape != (len(self.indices),) + self.dense_shape[1:]:
            raise ValueError(
                f"`values` must have shape {(len(self.indices),) + self.dense_shape[1:]} for "
                f"{len(self.indices)} indices and dense_shape={self.dense_shape}. Received: "
                f"{self.values.shape}."
            )
        if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= self.dense_shape[0]):
            raise ValueError(f"`indices` must lie in [0, {self.dense_shape[0]}).")

    def _densify(self, values, dtype):
        dense = np.zeros(self.dense_shape, dtype=dtype)
        _add_rows(dense, self.indices, values)
        return dense

    def to_dense(self, dtype: DTypeLike | None = None) -> np.ndarray:
        """Returns the dense gradient (repeated indices summed).

        Args:
            dtype: The result's dtype. Defaults to None (``values``'s dtype).

        Returns:
            An array of shape ``dense_shape``: zeros, plus ``values[k]`` summed
            into row ``indices[k]`` for every ``k``.
        """
        return self._densify(self.values, dtype or self.values.dtype)


class LearningRateSchedule:
    """Base class of learning-rate schedules: ``schedule(step)`` gives the rate.

    An optimizer created with a schedule as its ``learning_rate`` evaluates it at
    ``iterations`` (0 for the first update) before every update. As in Keras,
    the value is computed in float32.

    Subclasses implement ``__call__(step)`` and ``get_config()``. Only the
    built-in schedules can be restored from an optimizer's config (``get``,
    ``deserialize``, saved models).

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> class Halving(crnn.optimizers.LearningRateSchedule):
    ...     def __init__(self, rate):
    ...         self.rate = rate
    ...     def __call__(self, step):
    ...         return self.rate / 2 ** step
    ...     def get_config(self):
    ...         return {"rate": self.rate}
    >>> opt = crnn.optimizers.SGD(learning_rate=Halving(1.0))
    >>> w = np.zeros(1)
    >>> for _ in range(3):
    ...     opt.apply([w], [np.ones(1)])
    >>> w, opt.learning_rate
    (array([-1.75]), 0.125)
    """

    def __call__(self, step: float) -> float | np.floating:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """Returns the schedule's constructor arguments.

        Returns:
            Dict of the constructor's keyword arguments.

        Raises:
            NotImplementedError: In the base class; subclasses implement it.
        """
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LearningRateSchedule:
        """Creates the schedule from ``get_config()``'s output.

        Args:
            config: Dict of constructor keyword arguments.

        Returns:
            A new schedule of this class.

        Raises:
            TypeError: If ``config`` has a key the constructor does not take.
            ValueError: If a value is invalid (see the constructor).
        """
        return cls(**config)

    def __repr__(self):
        return config_repr(self, skip="name")


def _check_schedule_name(name, default):
    if name is None:
        return default
    if not isinstance(name, str):
        raise ValueError(f"Argument `name` must be a string. Received: name={name!r}.")
    return name


def _check_steps(name, value, allow_zero=False):
    if isinstance(value, (bool, np.bool_)) or not _is_number(value) or not np.isfinite(value) or (
        value < 0 if allow_zero else value <= 0
    ):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"Argument `{name}` must be a number {bound}. Received: {name}={value!r}.")
    return value


def _check_float(name, value):
    if not _is_number(value) or not np.isfinite(value):
        raise ValueError(f"Argument `{name}` must be a finite float. Received: {name}={value!r}.")
    return value


def _f32(value):
    return np.float32(value)


def _pow32(base, exponent):
    # Rounded from double precision: TensorFlow's float32 pow is correctly rounded
    # here, where NumPy's vectorized float32 power may be 1 ulp off.
    return np.float32(float(base) ** float(exponent))


class _PeriodDecay(LearningRateSchedule):
    """Base of the schedules that decay by ``decay_rate`` per period of ``decay_steps``."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase):
        self.initial_learning_rate = _check_float("initial_learning_rate", initial_learning_rate)
        self.decay_steps = _check_steps("decay_steps", decay_steps)
        self.decay_rate = _check_float("decay_rate", decay_rate)
        self.staircase = bool(staircase)

    def _periods(self, step):
        """``step / decay_steps`` in float32, floored when ``staircase``."""
        p = _f32(step) / _f32(self.decay_steps)
        if self.staircase:
            p = np.floor(p)
        return p

    def get_config(self) -> dict[str, Any]:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class ExponentialDecay(_PeriodDecay):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``.

    Args:
        initial_learning_rate: Float, the rate at step 0.
        decay_steps: Positive number of steps per decay period.
        decay_rate: Float, the factor per period.
        staircase: If True, ``step / decay_steps`` is floored (decay in
            discrete intervals). Defaults to False.
        name: Defaults to ``"ExponentialDecay"`` (also used for None).

    Raises:
        ValueError: If ``initial_learning_rate`` or ``decay_rate`` is not a
            finite number, ``decay_steps`` is not a positive one, or ``name`` is
            neither a string nor None.

    Example:

    >>> import crnn
    >>> schedule = crnn.optimizers.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    >>> [round(float(schedule(s)), 6) for s in (0, 10, 15)]
    [0.1, 0.05, 0.035355]
    >>> stairs = crnn.optimizers.ExponentialDecay(0.1, 10, 0.5, staircase=True)
    >>> round(float(stairs(15)), 6)
    0.05
    """

    def __init__(self, initial_learning_rate: float, decay_steps: float, decay_rate: float,
                 staircase: bool = False, name: str | None = "ExponentialDecay") -> None:
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase)
        self.name = _check_schedule_name(name, "ExponentialDecay")

    def __call__(self, step: float) -> np.float32:
        p = self._periods(step)
        return _f32(self.initial_learning_rate) * _pow32(_f32(self.decay_rate), p)


class InverseTimeDecay(_PeriodDecay):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``.

    Args:
        initial_learning_rate: Float, the rate at step 0.
        decay_steps: Positive number of steps per decay period.
        decay_rate: Float.
        staircase: If True, ``step / decay_steps`` is floored. Defaults to False.
        name: Defaults to ``"InverseTimeDecay"`` (also used for None).

    Raises:
        ValueError: If ``initial_learning_rate`` or ``decay_rate`` is not a
            finite number, ``decay_steps`` is not a positive one, or ``name`` is
            neither a string nor None.

    Example:

    >>> import crnn
    >>> schedule = crnn.optimizers.InverseTimeDecay(0.1, decay_steps=1, decay_rate=0.5)
    >>> [round(float(schedule(s)), 6) for s in (0, 2, 6)]
    [0.1, 0.05, 0.025]
    """

    def __init__(self, initial_learning_rate: float, decay_steps: float, decay_rate: float,
                 staircase: bool = False, name: str | None = "InverseTimeDecay") -> None:
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase)
        self.name = _check_schedule_name(name, "InverseTimeDecay")

    def __call__(self, step: float) -> np.float32:
        p = self._periods(step)
        return _f32(self.initial_learning_rate) / (_f32(1) + _f32(self.decay_rate) * p)


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` up to ``boundaries[0]`` (inclusive), ``values[1]`` up to ``boundaries[1]``...

    Args:
        boundaries: Strictly increasing list of step numbers.
        values: List of floats, one more than ``boundaries``.
        name: Defaults to ``"PiecewiseConstant"`` (also used for None).

    Raises:
        ValueError: If ``len(values) != len(boundaries) + 1``, a boundary or
            value is not a finite number, the boundaries are not strictly
            increasing, or ``name`` is neither a string nor None.

    Example:

    >>> import crnn
    >>> schedule = crnn.optimizers.PiecewiseConstantDecay([2, 4], [1.0, 0.5, 0.1])
    >>> [float(schedule(s)) for s in (2, 3, 5)]
    [1.0, 0.5, 0.10000000149011612]
    """

    def __init__(self, boundaries: Sequence[float], values: Sequence[float],
                 name: str | None = "PiecewiseConstant") -> None:
        boundaries, values = list(boundaries), list(values)
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                "The length of `values` must be one more than the length of `boundaries`. "
                f"Received: len(boundaries)={len(boundaries)}, len(values)={len(values)}."
            )
        for b in boundaries:
            _check_float("boundaries", b)
        for v in values:
            _check_float("values", v)
        if any(b >= c for b, c in zip(boundaries, boundaries[1:])):
            raise ValueError(f"`boundaries` must be strictly increasing. Received: boundaries={boundaries}.")
        self.boundaries = boundaries
        self.values = values
        self.name = _check_schedule_name(name, "PiecewiseConstant")

    def __call__(self, step: float) -> np.float32:
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return _f32(value)
        return _f32(self.values[-1])

    def get_config(self) -> dict[str, Any]:
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class CosineDecay(LearningRateSchedule):
    """Cosine decay, with an optional linear warmup before it.

    Without warmup (``warmup_target=None``), at ``s = min(step, decay_steps)``::

        lr = initial_learning_rate * ((1 - alpha) * 0.5 * (1 + cos(pi * s / decay_steps)) + alpha)

    With ``warmup_target``, the rate first rises linearly from
    ``initial_learning_rate`` to ``warmup_target`` over ``warmup_steps``, then
    decays from ``warmup_target`` as above over ``decay_steps``.

    Args:
        initial_learning_rate: Float, the rate at step 0.
        decay_steps: Positive number of steps to decay over.
        alpha: Minimum rate as a fraction of the decay's starting rate.
            Defaults to 0.0.
        name: Defaults to ``"CosineDecay"`` (also used for None).
        warmup_target: Float or None (no warmup). Defaults to None.
        warmup_steps: Non-negative number of warmup steps. Defaults to 0.

    Raises:
        ValueError: If ``initial_learning_rate``, ``alpha`` or ``warmup_target``
            (when given) is not a finite number, ``decay_steps`` is not a
            positive one, ``warmup_steps`` is negative (or not a number), or
            ``name`` is neither a string nor None.

    Example:

    >>> import crnn
    >>> schedule = crnn.optimizers.CosineDecay(0.0, 10, warmup_target=0.1, warmup_steps=5)
    >>> [round(float(schedule(s)), 6) for s in (0, 5, 10, 15)]
    [0.0, 0.1, 0.05, 0.0]
    """

    def __init__(self, initial_learning_rate: float, decay_steps: float, alpha: float = 0.0,
                 name: str | None = "CosineDecay", warmup_target: float | None = None,
                 warmup_steps: float = 0) -> None:
        self.initial_learning_rate = _check_float("initial_learning_rate", initial_learning_rate)
        self.decay_steps = _check_steps("decay_steps", decay_steps)
        self.alpha = _check_float("alpha", alpha)
        self.name = _check_schedule_name(name, "CosineDecay")
        self.warmup_target = None if warmup_target is None else _check_float("warmup_target", warmup_target)
        self.warmup_steps = _check_steps("warmup_steps", warmup_steps, allow_zero=True)

    def _decay(self, step, decay_from):
        fraction = step / _f32(self.decay_steps)
        cosine = _f32(0.5) * (_f32(1) + np.float32(math.cos(_f32(math.pi) * fraction)))
        decayed = _f32(1 - self.alpha) * cosine + _f32(self.alpha)
        return decay_from * decayed

    def __call__(self, step: float) -> np.float32:
        initial = _f32(self.initial_learning_rate)
        step = _f32(step)
        decay_steps = _f32(self.decay_steps)
        if self.warmup_target is None:
            return self._decay(min(step, decay_steps), initial)
        target = _f32(self.warmup_target)
        warmup_steps = _f32(self.warmup_steps)
        step = min(step, decay_steps + warmup_steps)
        if step < warmup_steps:
            return (target - initial) * (step / warmup_steps) + initial
        return self._decay(step - warmup_steps, target)

    def get_config(self) -> dict[str, Any]:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


_SCHEDULES = {cls.__name__: cls for cls in (
    ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay, CosineDecay)}

#: Keras's spelling: ``crnn.optimizers.schedules.ExponentialDecay`` and so on.
schedules = types.SimpleNamespace(LearningRateSchedule=LearningRateSchedule, **_SCHEDULES)


def _serialize_learning_rate(value):
    if isinstance(value, LearningRateSchedule):
        return keras_config(value, "keras.optimizers.schedules")
    return value


def _deserialize_learning_rate(value):
    if isinstance(value, dict):
        cls = _SCHEDULES.get(value.get("class_name"))
        if cls is None:
            raise ValueError(
                f"Unknown learning-rate schedule {value.get('class_name')!r}. Known: {sorted(_SCHEDULES)}."
            )
        return cls.from_config(dict(value.get("config") or {}))
    return value


def _add_rows(out, indices, values):
    """``np.add.at(out, indices, values)`` for a gradient's rows: out[indices[k]] +=
    values[k] in order, so bit-identical sums, in crnn's compiled loop where ``out`` is a
    C-contiguous float32/float64 2-D array (values of its dtype, indices in range), else
    np.add.at itself."""
    from crnn._kernels._cells import add_rows

    values = np.asarray(values)
    if (out.ndim == 2 and out.dtype in (np.float32, np.float64) and out.flags.c_contiguous
            and out.flags.writeable and values.dtype == out.dtype):
        indices = np.asarray(indices)
        if indices.ndim == 1 and np.issubdtype(indices.dtype, np.integer) \
                and values.shape == (len(indices), out.shape[1]) \
                and (len(indices) == 0 or (indices.min() >= 0 and indices.max() < len(out))):
            if len(indices):
                add_rows(out, np.ascontiguousarray(indices, np.intp),
                         np.ascontiguousarray(values))
            return
    np.add.at(out, indices, values)


def _squared(grad, rows, like):
    """``g**2`` as Keras on TensorFlow forms it: the sum of each row occurrence's square."""
    return np.square(grad) if rows is None else rows.sum(np.square(rows.values), like)


class _Rows:
    """The clipped rows of an ``IndexedSlices`` gradient, as the update steps use them."""

    def __init__(self, indices, values):
        self.indices = indices
        self.values = values

    def sum(self, values, like):
        """Dense array of ``like``'s shape: ``values[k]`` summed into row ``indices[k]``."""
        out = np.zeros_like(like)
        _add_rows(out, self.indices, values)
        return out


class Optimizer:
    """Base class: holds the learning rate, clipping, iteration count and slots.

    Subclasses declare their slot names in ``_slot_names()`` and implement
    ``_update(param, grad, slots, lr, step)``.

    Args:
        learning_rate: Positive float, or a ``LearningRateSchedule`` (or the
            ``{"class_name", "config"}`` dict of a built-in one, as
            ``get_config`` writes it).
        clipnorm: Optional positive float: clip each gradient to this L2 norm.
            Defaults to None.
        clipvalue: Optional positive float: clip each gradient element to
            ``[-clipvalue, clipvalue]``. Defaults to None.
        global_clipnorm: Optional positive float: scale all gradients together
            so that their joint L2 norm is at most this value. Defaults to None.
        name: Optional name. Defaults to None (the lower-case class name).
        weight_decay: Optional non-negative float: before each update,
            ``p -= p * weight_decay * lr`` (decoupled weight decay, as Keras).
            Defaults to None.

    Attributes:
        iterations: Number of ``apply`` calls so far (int).

    Raises:
        ValueError: If an argument is out of range or of the wrong type, a
            schedule dict names an unknown schedule, or more than one clipping
            option is set.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> opt = crnn.optimizers.SGD(learning_rate=0.1, clipnorm=1.0)
    >>> w = np.array([1.0, 1.0])
    >>> opt.apply([w], [np.array([3.0, 4.0])])  # the gradient's norm 5 is clipped to 1
    >>> w
    array([0.94, 0.92])
    >>> opt.iterations, opt.name
    (1, 'sgd')
    """

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule | dict[str, Any],
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        name: str | None = None,
        weight_decay: float | None = None,
    ) -> None:
        learning_rate = _deserialize_learning_rate(learning_rate)
        if not isinstance(learning_rate, LearningRateSchedule):
            learning_rate = _check_positive("learning_rate", learning_rate)
        clip_args = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        if sum(v is not None for v in clip_args.values()) > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. Received: "
                f"clipnorm={clipnorm}, clipvalue={clipvalue}, global_clipnorm={global_clipnorm}. "
                "Keep one and set the others to None."
            )
        self.clipnorm = _check_positive("clipnorm", clipnorm, allow_none=True)
        self.clipvalue = _check_positive("clipvalue", clipvalue, allow_none=True)
        self.global_clipnorm = _check_positive("global_clipnorm", global_clipnorm, allow_none=True)
        if weight_decay is not None and not (
            _is_number(weight_decay) and np.isfinite(weight_decay) and weight_decay >= 0
        ):
            raise ValueError(
                f"Argument `weight_decay` must be a non-negative float or None. Received: "
                f"weight_decay={weight_decay!r}."
            )
        self.weight_decay = None if weight_decay is None else float(weight_decay)
        if name is not None and not isinstance(name, str):
            raise ValueError(f"Argument `name` must be a string or None. Received: name={name!r}.")
        self.name = name if name is not None else type(self).__name__.lower()
        self._learning_rate = learning_rate
        self.iterations = 0
        self._shapes = None
        self._slots = None  # dict: slot name -> list of arrays, one per parameter

    @property
    def learning_rate(self) -> float:
        """The current learning rate (a schedule is evaluated at ``iterations``).

        Setting it (as ``ReduceLROnPlateau`` does) needs a positive float
        (else ``ValueError``) and an optimizer created with a float learning
        rate (else ``TypeError``).
        """
        if isinstance(self._learning_rate, LearningRateSchedule):
            return float(self._learning_rate(self.iterations))
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        if isinstance(self._learning_rate, LearningRateSchedule):
            raise TypeError(
                f"This optimizer was created with the schedule {self._learning_rate!r} as its "
                "learning_rate, so its learning rate can't be set; create the optimizer with a "
                "float learning_rate to set it."
            )
        if isinstance(value, LearningRateSchedule):
            raise TypeError("A schedule can only be given when the optimizer is created.")
        self._learning_rate = _check_positive("learning_rate", value)

    @property
    def learning_rate_schedule(self) -> LearningRateSchedule | None:
        """The ``LearningRateSchedule`` given as learning rate, or None."""
        return self._learning_rate if isinstance(self._learning_rate, LearningRateSchedule) else None

    # ----------------------------------------------------------------- hooks
    def _slot_names(self):
        """Names of the per-parameter state arrays, in saving order."""
        return []

    def _slot_initial_value(self, slot_name):
        return 0.0

    def _update(self, param, grad, slots, lr, step, rows=None):
        """Updates ``param`` in place; ``slots`` maps slot name to its array.

        ``grad`` is the dense gradient. ``rows`` is None for a dense gradient, or
        the clipped ``_Rows`` of an ``IndexedSlices`` one (``grad`` is then their
        sum), for the updates that Keras's TensorFlow backend applies per row.
        """
        raise NotImplementedError

    # ------------------------------------------------------------------- API
    @property
    def built(self) -> bool:
        """Whether the slots exist (after the first ``apply`` or ``set_state``)."""
        return self._shapes is not None

    def build(self, params: Sequence[np.ndarray]) -> None:
        """Creates the slot arrays for ``params`` (zeros, or Adagrad's initial value).

        ``apply`` calls this on its first call; call it yourself only to create the
        slots before loading a state.

        Args:
            params: List of NumPy arrays, the parameters to optimize.

        Raises:
            ValueError: If a parameter is not a writable floating NumPy array.
        """
        params = self._check_params(params)
        self._shapes = [(p.shape, p.dtype) for p in params]
        self._slots = {
            name: [np.full(p.shape, self._slot_initial_value(name), dtype=p.dtype) for p in params]
            for name in self._slot_names()
        }

    def apply(
        self,
        params: Sequence[np.ndarray],
        grads: Sequence[ArrayLike | IndexedSlices | None],
    ) -> None:
        """Clips ``grads`` and updates each ``params[i]`` in place.

        Args:
            params: List of writable floating NumPy arrays, always the same ones
                in the same order. They are modified in place.
            grads: List of arrays with the same shapes (``None`` entries are
                skipped, as Keras skips missing gradients), or ``IndexedSlices``
                for gathered parameters such as embeddings.

        Raises:
            ValueError: If the lists differ in length, a parameter is not a
                writable floating NumPy array, a shape (or an ``IndexedSlices``'s
                ``dense_shape``) differs from the parameter's or from the first
                call's, or every gradient is None.
        """
        params = list(params)
        grads = list(grads)
        if len(params) != len(grads):
            raise ValueError(
                f"`params` and `grads` must have the same length. Received: len(params)={len(params)}, "
                f"len(grads)={len(grads)}."
            )
        if not self.built:
            self.build(params)
        else:
            self._check_params(params)
            if len(params) != len(self._shapes):
                raise ValueError(
                    f"This optimizer was built for {len(self._shapes)} parameters; received "
                    f"{len(params)}. Use a new optimizer for a different set of parameters."
                )
            for i, (p, (shape, _)) in enumerate(zip(params, self._shapes)):
                if p.shape != shape:
                    raise ValueError(
                        f"Parameter {i} has shape {p.shape}, but this optimizer was built with shape "
                        f"{shape}. Pass the parameters in the same order on every call, or use a new "
                        "optimizer."
                    )
        pairs = []
        for i, (p, g) in enumerate(zip(params, grads)):
            if g is None:
                continue
            if isinstance(g, IndexedSlices):
                if g.dense_shape != p.shape:
                    raise ValueError(
                        f"Gradient {i} (IndexedSlices) has dense_shape {g.dense_shape}, but parameter "
                        f"{i} has shape {p.shape}."
                    )
                pairs.append((i, g, g.values.astype(p.dtype, copy=False)))
                continue
            g = np.asarray(g)
            if g.shape != p.shape:
                raise ValueError(
                    f"Gradient {i} has shape {g.shape}, but parameter {i} has shape {p.shape}. "
                    "Each gradient must have its parameter's shape."
                )
            pairs.append((i, None, g.astype(p.dtype, copy=False)))
        if not pairs:
            raise ValueError("No gradients provided for any parameter (all entries of `grads` are None).")
        # Like Keras on TensorFlow, clipping sees the rows of an IndexedSlices
        # gradient one by one, before repeated indices are summed.
        clipped = self._clip([values for _, _, values in pairs])
        dense = []
        for (i, slices, _), values in zip(pairs, clipped):
            dense.append(values if slices is None else slices._densify(values, params[i].dtype))
        step = self.iterations + 1
        # Keras keeps the learning rate in a float32 variable (a schedule computes
        # in float32), so float64 parameters see its float32-rounded value too.
        lr = float(np.float32(self.learning_rate))
        self._step_scalars = {}      # per dtype, filled by _scalars for this apply
        self._before_updates(params, lr)
        for (i, slices, _), values, g in zip(pairs, clipped, dense):
            if self.weight_decay is not None:
                # Keras: variable -= variable * wd * lr, before the update step.
                p = params[i]
                dt = p.dtype.type
                p -= p * _via_float32(self.weight_decay, dt) * dt(lr)
            slots = {name: arrays[i] for name, arrays in self._slots.items()}
            rows = None if slices is None else _Rows(slices.indices, values)
            self._update(params[i], g, slots, lr, step, rows)
        self.iterations += 1

    def _before_updates(self, params, lr):
        """Hook run once per ``apply``, before the per-parameter updates (Nadam)."""

    def _scalars(self, dt, lr, step):
        """This step's scalars in dtype ``dt``, computed once per ``apply`` and dtype."""
        cache = self.__dict__.setdefault("_step_scalars", {})
        scalars = cache.get(dt)
        if scalars is None:
            scalars = cache[dt] = self._compute_scalars(dt, lr, step)
        return scalars

    def _compute_scalars(self, dt, lr, step):
        """The scalars ``_update`` needs at this step, as ``dt`` values (see ``_scalars``)."""
        return dt(lr)

    def _check_params(self, params):
        params = list(params)
        for i, p in enumerate(params):
            if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
                raise ValueError(
                    f"Parameter {i} must be a floating NumPy array (updated in place). Received: "
                    f"{type(p).__name__} with dtype {getattr(p, 'dtype', None)}."
                )
            if not p.flags.writeable:
                raise ValueError(f"Parameter {i} is read-only; the optimizer updates parameters in place.")
        return params

    def _clip(self, grads):
        if self.clipnorm is not None:
            out = []
            for g in grads:
                norm = np.sqrt(np.sum(np.square(g)))
                out.append(g * g.dtype.type(self.clipnorm) / np.maximum(norm, g.dtype.type(self.clipnorm)))
            return out
        if self.global_clipnorm is not None:
            # Computed in the gradients' precision, in Keras's order, for parity.
            dt = np.result_type(*grads).type
            norm = np.sqrt(np.sum(np.stack([np.sum(np.square(g)) for g in grads]).astype(dt)))
            c = dt(self.global_clipnorm)
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = c * np.minimum(dt(1) / norm, dt(1) / c)
                # A non-finite norm makes every gradient NaN, as in Keras, rather
                # than silently applying an unclipped update.
                scale = scale + (norm - norm)
            return [g * scale.astype(g.dtype) for g in grads]
        if self.clipvalue is not None:
            return [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def get_config(self) -> dict[str, Any]:
        """Returns the constructor arguments as a JSON-serializable dict.

        A schedule is written in Keras's ``{"class_name", "config"}`` form.

        Returns:
            Dict of the constructor's keyword arguments (``name``,
            ``learning_rate``, ``weight_decay``, the clipping options and the
            subclass's own, such as ``beta_1``); no state.
        """
        return {
            "name": self.name,
            "learning_rate": _serialize_learning_rate(self._learning_rate),
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        """Creates an optimizer (without state) from ``get_config()``'s output.

        Args:
            config: Dict of constructor keyword arguments.

        Returns:
            A new optimizer of this class, not built.

        Raises:
            TypeError: If ``config`` has a key the constructor does not take.
            ValueError: If a value is invalid (see the constructor).
        """
        return cls(**config)

    def get_state(self) -> list[np.ndarray]:
        """Returns the optimizer state as a list of arrays.

        Returns:
            ``[np.array(iterations, dtype=int64)]`` followed by each slot's arrays,
            slot by slot in ``_slot_names()`` order, parameter by parameter.
            Before the first ``apply`` it is just the iteration count.
        """
        state = [np.array(self.iterations, dtype=np.int64)]
        if self.built:
            for name in self._slot_names():
                state.extend(a.copy() for a in self._slots[name])
        return state

    def set_state(self, state: Sequence[ArrayLike]) -> None:
        """Restores a state returned by ``get_state``.

        If the optimizer is not built yet, the slot shapes are taken from
        ``state`` (so it must come from an optimizer of the same class and
        configuration); otherwise they must match the current ones.

        Args:
            state: List of arrays as returned by ``get_state``.

        Raises:
            ValueError: If ``state`` is empty, its first array is not an integer
                iteration count, or the number of arrays or a shape does not
                match.
        """
        state = list(state)
        if not state:
            raise ValueError("`state` must start with the iteration count; received an empty list.")
        iterations = np.asarray(state[0])
        if iterations.ndim != 0 or iterations.dtype.kind not in "iuf" or int(iterations) != iterations:
            raise ValueError(f"state[0] must be the integer iteration count. Received: {state[0]!r}.")
        arrays = [np.asarray(a) for a in state[1:]]
        names = self._slot_names()
        if not arrays and not self.built:
            self.iterations = int(iterations)
            return
        if not self.built:
            if not names or len(arrays) % len(names):
                raise ValueError(
                    f"Cannot split {len(arrays)} slot arrays among the {len(names)} slots "
                    f"{names} of {type(self).__name__}. Was the state saved by another optimizer "
                    "or configuration?"
                )
            n = len(arrays) // len(names)
            self._shapes = [(a.shape, a.dtype if a.dtype.kind == "f" else np.dtype("float32")) for a in arrays[:n]]
        expected = len(names) * len(self._shapes)
        if len(arrays) != expected:
            raise ValueError(
                f"{type(self).__name__} expects {expected} slot arrays ({len(names)} slots "
                f"{names} x {len(self._shapes)} parameters); received {len(arrays)}. Was the state "
                "saved by another optimizer or configuration?"
            )
        slots = {}
        for k, name in enumerate(names):
            slot_list = []
            for i, (shape, dtype) in enumerate(self._shapes):
                a = arrays[k * len(self._shapes) + i]
                if a.shape != shape:
                    raise ValueError(
                        f"Slot {name!r} of parameter {i} has shape {a.shape} in `state`; expected {shape}."
                    )
                slot_list.append(np.array(a, dtype=dtype))
            slots[name] = slot_list
        self._slots = slots
        self.iterations = int(iterations)

    def __repr__(self):
        return config_repr(self, skip="name")


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    Keras 3's rule, with velocity ``m`` (zeros at first):

    - ``momentum == 0``: ``p -= lr * g``;
    - otherwise ``m = momentum * m - lr * g``, then ``p += m``, or with
      ``nesterov=True`` ``p += momentum * m - lr * g`` (using the new ``m``).

    Args:
        learning_rate: Positive float or ``LearningRateSchedule``. Defaults to
            0.01.
        momentum: Float in [0, 1]. Defaults to 0.0.
        nesterov: Whether to use Nesterov momentum. Defaults to False.
        clipnorm: Optional positive float; see ``Optimizer``. Defaults to None.
        clipvalue: Optional positive float; see ``Optimizer``. Defaults to None.
        global_clipnorm: Optional positive float; see ``Optimizer``. Defaults to
            None.
        name: Defaults to None (``"sgd"``).
        weight_decay: Optional non-negative float; see ``Optimizer``. Defaults
            to None.

    Raises:
        ValueError: If ``momentum`` is not in [0, 1], ``nesterov`` is not a
            bool, or a base argument is invalid (see ``Optimizer``).

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> w = np.array([1.0])
    >>> crnn.optimizers.SGD(learning_rate=0.1).apply([w], [np.array([2.0])])
    >>> w
    array([0.8])
    >>> w = np.array([1.0])
    >>> opt = crnn.optimizers.SGD(learning_rate=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.apply([w], [np.array([2.0])])
    >>> w  # velocity -0.2, then 0.9 * -0.2 - 0.2 = -0.38
    array([0.42])
    """

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule | dict[str, Any] = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        name: str | None = None,
        weight_decay: float | None = None,
    ) -> None:
        super().__init__(learning_rate, clipnorm, clipvalue, global_clipnorm, name, weight_decay)
        self.momentum = _check_range("momentum", momentum, 0.0, 1.0)
        self.nesterov = check_bool("nesterov", nesterov)

    def _slot_names(self):
        return ["momentum"] if self.momentum != 0 else []

    def _update(self, param, grad, slots, lr, step, rows=None):
        dt = param.dtype.type
        if rows is None:
            scaled = dt(lr) * grad
        else:
            scaled_rows = rows.values * dt(lr)
            if self.momentum == 0:
                # TensorFlow's scatter_sub: row occurrence by row occurrence.
                _add_rows(param, rows.indices, -scaled_rows)   # x - v == x + (-v)
                return
            scaled = rows.sum(scaled_rows, param)
        if self.momentum == 0:
            param -= scaled
            return
        m = slots["momentum"]
        momentum = _via_float32(self.momentum, dt)
        m *= momentum
        m -= scaled
        if self.nesterov:
            param += momentum * m - scaled
        else:
            param += m

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"momentum": self.momentum, "nesterov": self.nesterov})
        return config


class RMSprop(Optimizer):
    """RMSprop, Keras 3's variant (epsilon inside the square root).

    With velocity ``v`` (zeros at first)::

        v = rho * v + (1 - rho) * g**2
        centered: a = rho * a + (1 - rho) * g;  denominator = v - a**2 + epsilon
        otherwise: denominator = v + epsilon
        increment = lr * g / sqrt(denominator)
        momentum > 0: m = momentum * m + increment;  p -= m
        otherwise:    p -= increment

    Args:
        learning_rate: Positive float or ``LearningRateSchedule``. Defaults to
            0.001.
        rho: Discount factor in [0, 1). Defaults to 0.9.
        momentum: Float in [0, 1]. Defaults to 0.0.
        epsilon: Positive float. Defaults to 1e-7.
        centered: Whether to normalize by the gradient's estimated variance.
            Defaults to False.
        clipnorm: Optional positive float; see ``Optimizer``. Defaults to None.
        clipvalue: Optional positive float; see ``Optimizer``. Defaults to None.
        global_clipnorm: Optional positive float; see ``Optimizer``. Defaults to
            None.
        name: Defaults to None (``"rmsprop"``).
        weight_decay: Optional non-negative float; see ``Optimizer``. Defaults
            to None.

    Raises:
        ValueError: If ``rho`` is not in [0, 1), ``momentum`` not in [0, 1],
            ``epsilon`` not positive, ``centered`` not a bool, or a base argument
            is invalid (see ``Optimizer``).

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> w = np.array([1.0])
    >>> crnn.optimizers.RMSprop(learning_rate=0.1).apply([w], [np.array([2.0])])
    >>> w  # v = 0.1 * 2**2 = 0.4; w = 1 - 0.1 * 2 / sqrt(0.4 + 1e-7)
    array([0.68377227])
    """

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule | dict[str, Any] = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        name: str | None = None,
        weight_decay: float | None = None,
    ) -> None:
        super().__init__(learning_rate, clipnorm, clipvalue, global_clipnorm, name, weight_decay)
        self.rho = _check_range("rho", rho, 0.0, 1.0, high_open=True)
        self.momentum = _check_range("momentum", momentum, 0.0, 1.0)
        self.epsilon = _check_positive("epsilon", epsilon)
        self.centered = check_bool("centered", centered)

    def _slot_names(self):
        names = ["velocity"]
        if self.momentum > 0:
            names.append("momentum")
        if self.centered:
            names.append("average_gradient")
        return names

    def _compute_scalars(self, dt, lr, step):
        # Keras forms 1 - rho in double precision, then casts: kept for bitwise parity.
        return dt(self.rho), dt(1.0 - self.rho), dt(self.epsilon), dt(lr), dt(self.momentum)

    def _update(self, param, grad, slots, lr, step, rows=None):
        dt = param.dtype.type
        rho, one_minus_rho, epsilon, lr_dt, momentum = self._scalars(dt, lr, step)
        v = slots["velocity"]
        if rows is None:
            # v = rho * v + (1 - rho) * g**2, in place, in the same operation order
            work = np.square(grad)
            work *= one_minus_rho
            v *= rho
            v += work
        else:
            # TensorFlow squares and scales each row occurrence, then sums.
            v[...] = rho * v + rows.sum(one_minus_rho * np.square(rows.values), v)
        if self.centered:
            a = slots["average_gradient"]
            if rows is None:
                a *= rho
                a += one_minus_rho * grad
            else:
                a[...] = rho * a + rows.sum(one_minus_rho * rows.values, a)
            denominator = np.square(a)
            np.subtract(v, denominator, out=denominator)
            denominator += epsilon
        else:
            denominator = v + epsilon
        if rows is not None:
            increment_rows = lr_dt * rows.values / np.sqrt(denominator[rows.indices])
            if self.momentum == 0:
                _add_rows(param, rows.indices, -increment_rows)   # x - v == x + (-v)
                return
            increment = rows.sum(increment_rows, param)
        else:
            # increment = lr * g / sqrt(denominator)
            np.sqrt(denominator, out=denominator)
            increment = work
            np.multiply(grad, lr_dt, out=increment)
            increment /= denominator
        if self.momentum > 0:
            m = slots["momentum"]
            m *= momentum
            m += increment
            param -= m
        else:
            param -= increment

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon, "centered": self.centered}
        )
        return config


class _AdamFamily(Optimizer):
    """Base of Adam, Adamax and Nadam: the ``beta_1``, ``beta_2`` and ``epsilon`` they share.

    Its constructor is Adamax's and Nadam's (Adam adds ``amsgrad``); see ``Optimizer`` for
    the other arguments.
    """

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule | dict[str, Any] = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        name: str | None = None,
        weight_decay: float | None = None,
    ) -> None:
        super().__init__(learning_rate, clipnorm, clipvalue, global_clipnorm, name, weight_decay)
        self.beta_1 = _check_range("beta_1", beta_1, 0.0, 1.0, high_open=True)
        self.beta_2 = _check_range("beta_2", beta_2, 0.0, 1.0, high_open=True)
        self.epsilon = _check_positive("epsilon", epsilon)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return config


class Adam(_AdamFamily):
    """Adam, Keras 3's variant (epsilon outside the square root, "epsilon hat").

    At step ``t = iterations + 1``, with ``m`` and ``v`` zeros at first::

        alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m += (g - m) * (1 - beta_1)
        v += (g**2 - v) * (1 - beta_2)
        amsgrad: v_hat = max(v_hat, v), used in place of v below
        p -= alpha * m / (sqrt(v) + epsilon)

    Args:
        learning_rate: Positive float or ``LearningRateSchedule``. Defaults to
            0.001.
        beta_1: Float in [0, 1). Defaults to 0.9.
        beta_2: Float in [0, 1). Defaults to 0.999.
        epsilon: Positive float. Defaults to 1e-7.
        amsgrad: Whether to use the AMSGrad variant. Defaults to False.
        clipnorm: Optional positive float; see ``Optimizer``. Defaults to None.
        clipvalue: Optional positive float; see ``Optimizer``. Defaults to None.
        global_clipnorm: Optional positive float; see ``Optimizer``. Defaults to
            None.
        name: Defaults to None (``"adam"``).
        weight_decay: Optional non-negative float; see ``Optimizer``. Defaults
            to None.

    Raises:
        ValueError: If ``beta_1`` or ``beta_2`` is not in [0, 1), ``epsilon`` is
            not positive, ``amsgrad`` is not a bool, or a base argument is
            invalid (see ``Optimizer``).

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> w = np.array([1.0])
    >>> crnn.optimizers.Adam(learning_rate=0.1).apply([w], [np.array([3.0])])
    >>> w  # the first step is about learning_rate, whatever the gradient's size
    array([0.90000077])
    """

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule | dict[str, Any] = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        name: str | None = None,
        weight_decay: float | None = None,
    ) -> None:
        super().__init__(learning_rate, beta_1, beta_2, epsilon, clipnorm, clipvalue,
                         global_clipnorm, name, weight_decay)
        self.amsgrad = check_bool("amsgrad", amsgrad)

    def _slot_names(self):
        return ["momentum", "velocity"] + (["velocity_hat"] if self.amsgrad else [])

    def _compute_scalars(self, dt, lr, step):
        beta_1, beta_2 = _via_float32(self.beta_1, dt), _via_float32(self.beta_2, dt)
        # Keras computes the bias correction in the variable's dtype, and forms
        # 1 - beta in double precision, then casts.
        alpha = dt(lr) * np.sqrt(dt(1) - beta_2 ** dt(step)) / (dt(1) - beta_1 ** dt(step))
        return alpha, dt(1.0 - self.beta_1), dt(1.0 - self.beta_2), dt(self.epsilon)

    def _update(self, param, grad, slots, lr, step, rows=None):
        dt = param.dtype.type
        alpha, one_minus_beta_1, one_minus_beta_2, epsilon = self._scalars(dt, lr, step)
        m, v = slots["momentum"], slots["velocity"]
        # In place, in Keras's operation order (two work arrays instead of eight
        # temporaries): m += (g - m) * (1 - beta_1); v += (g**2 - v) * (1 - beta_2)
        work = np.subtract(grad, m)
        work *= one_minus_beta_1
        m += work
        if rows is None:
            np.square(grad, out=work)
        else:
            work = _squared(grad, rows, v)
        work -= v
        work *= one_minus_beta_2
        v += work
        if self.amsgrad:
            v_hat = slots["velocity_hat"]
            np.maximum(v_hat, v, out=v_hat)
            v = v_hat
        # p -= (m * alpha) / (sqrt(v) + epsilon)
        np.sqrt(v, out=work)
        work += epsilon
        step_ = np.multiply(m, alpha)
        step_ /= work
        param -= step_

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["amsgrad"] = self.amsgrad
        return config


class Adagrad(Optimizer):
    """Adagrad, Keras 3's variant.

    With accumulator ``acc`` starting at ``initial_accumulator_value``::

        acc += g**2
        p -= lr * g / sqrt(acc + epsilon)

    Args:
        learning_rate: Positive float or ``LearningRateSchedule``. Defaults to
            0.001.
        initial_accumulator_value: Non-negative float. Defaults to 0.1.
        epsilon: Positive float. Defaults to 1e-7.
        clipnorm: Optional positive float; see ``Optimizer``. Defaults to None.
        clipvalue: Optional positive float; see ``Optimizer``. Defaults to None.
        global_clipnorm: Optional positive float; see ``Optimizer``. Defaults to
            None.
        name: Defaults to None (``"adagrad"``).
        weight_decay: Optional non-negative float; see ``Optimizer``. Defaults
            to None.

    Raises:
        ValueError: If ``initial_accumulator_value`` is negative (or not a
            finite number), ``epsilon`` is not positive, or a base argument is
            invalid (see ``Optimizer``).

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> w = np.array([1.0])
    >>> crnn.optimizers.Adagrad(learning_rate=0.1).apply([w], [np.array([1.0])])
    >>> w  # acc = 0.1 + 1**2; w = 1 - 0.1 * 1 / sqrt(1.1 + 1e-7)
    array([0.90465374])
    """

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule | dict[str, Any] = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        name: str | None = None,
        weight_decay: float | None = None,
    ) -> None:
        super().__init__(learning_rate, clipnorm, clipvalue, global_clipnorm, name, weight_decay)
        if not _is_number(initial_accumulator_value) or not (
            np.isfinite(initial_accumulator_value) and initial_accumulator_value >= 0
        ):
            raise ValueError(
                "Argument `initial_accumulator_value` must be a non-negative float. Received: "
                f"initial_accumulator_value={initial_accumulator_value!r}."
            )
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = _check_positive("epsilon", epsilon)

    def _slot_names(self):
        return ["accumulator"]

    def _slot_initial_value(self, slot_name):
        # Keras's Constant initializer casts the value through float32.
        return float(np.float32(self.initial_accumulator_value))

    def _update(self, param, grad, slots, lr, step, rows=None):
        dt = param.dtype.type
        acc = slots["accumulator"]
        if rows is not None:
            # TensorFlow's scatter_add and scatter_sub, row occurrence by occurrence.
            _add_rows(acc, rows.indices, np.square(rows.values))
            denominator = np.sqrt(acc + dt(self.epsilon))[rows.indices]
            _add_rows(param, rows.indices, -(dt(lr) * rows.values / denominator))
            return
        acc += np.square(grad)
        param -= dt(lr) * grad / np.sqrt(acc + dt(self.epsilon))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {"initial_accumulator_value": self.initial_accumulator_value, "epsilon": self.epsilon}
        )
        return config


class AdamW(Adam):
    """Adam with decoupled weight decay (Keras 3's ``AdamW``).

    Before each Adam update, ``p -= p * weight_decay * lr``.

    Args:
        learning_rate: Positive float or ``LearningRateSchedule``. Defaults to
            0.001.
        weight_decay: Non-negative float (not None). Defaults to 0.004.
        beta_1: Float in [0, 1). Defaults to 0.9.
        beta_2: Float in [0, 1). Defaults to 0.999.
        epsilon: Positive float. Defaults to 1e-7.
        amsgrad: Whether to use the AMSGrad variant. Defaults to False.
        clipnorm: Optional positive float; see ``Optimizer``. Defaults to None.
        clipvalue: Optional positive float; see ``Optimizer``. Defaults to None.
        global_clipnorm: Optional positive float; see ``Optimizer``. Defaults to
            None.
        name: Defaults to None (``"adamw"``).

    Raises:
        ValueError: If ``weight_decay`` is None or negative, or another argument
            is invalid (see ``Adam``).

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> w = np.array([1.0])
    >>> opt = crnn.optimizers.AdamW(learning_rate=0.1, weight_decay=0.5)
    >>> opt.apply([w], [np.array([0.0])])
    >>> w  # a zero gradient: only the decay, 1 - 1 * 0.5 * 0.1
    array([0.95])
    """

    def __init__(
        self,
        learning_rate: float | LearningRateSchedule | dict[str, Any] = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        name: str | None = None,
    ) -> None:
        if weight_decay is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, clipnorm, clipvalue,
                         global_clipnorm, name, weight_decay)


class Adamax(_AdamFamily):
    """Adamax, Adam's variant on the infinity norm (Keras 3's rule).

    At step ``t``, with ``m`` and ``u`` zeros at first::

        m += (g - m) * (1 - beta_1)
        u = max(beta_2 * u, |g|)
        p -= lr * m / ((1 - beta_1**t) * (u + epsilon))

    Args:
        learning_rate: Positive float or ``LearningRateSchedule``. Defaults to
            0.001.
        beta_1: Float in [0, 1). Defaults to 0.9.
        beta_2: Float in [0, 1). Defaults to 0.999.
        epsilon: Positive float. Defaults to 1e-7.
        clipnorm: Optional positive float; see ``Optimizer``. Defaults to None.
        clipvalue: Optional positive float; see ``Optimizer``. Defaults to None.
        global_clipnorm: Optional positive float; see ``Optimizer``. Defaults to
            None.
        name: Defaults to None (``"adamax"``).
        weight_decay: Optional non-negative float; see ``Optimizer``. Defaults
            to None.

    Raises:
        ValueError: If ``beta_1`` or ``beta_2`` is not in [0, 1), ``epsilon`` is
            not positive, or a base argument is invalid (see ``Optimizer``).

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> w = np.array([1.0])
    >>> crnn.optimizers.Adamax(learning_rate=0.1).apply([w], [np.array([2.0])])
    >>> round(float(w[0]), 6)  # m = 0.2, u = 2: w = 1 - 0.1 * 0.2 / (0.1 * 2)
    0.9
    """

    def _slot_names(self):
        return ["momentum", "norm"]

    def _update(self, param, grad, slots, lr, step, rows=None):
        dt = param.dtype.type
        beta_1_power = _via_float32(self.beta_1, dt) ** dt(step)
        m, u = slots["momentum"], slots["norm"]
        m += (grad - m) * dt(1.0 - self.beta_1)
        # TensorFlow sums |row| over repeated indices (it densifies abs(g)).
        abs_grad = np.abs(grad) if rows is None else rows.sum(np.abs(rows.values), u)
        np.maximum(dt(self.beta_2) * u, abs_grad, out=u)
        param -= (dt(lr) * m) / ((dt(1) - beta_1_power) * (u + dt(self.epsilon)))


class Nadam(_AdamFamily):
    """Adam with Nesterov momentum (Keras 3's ``Nadam``, with its momentum schedule).

    At step ``t``, with ``mu(t) = beta_1 * (1 - 0.5 * 0.96**t)`` and
    ``P(t) = mu(1) * ... * mu(t)``::

        m += (g - m) * (1 - beta_1);  v += (g**2 - v) * (1 - beta_2)
        m_hat = mu(t+1) * m / (1 - P(t) * mu(t+1)) + (1 - mu(t)) * g / (1 - P(t))
        p -= lr * m_hat / (sqrt(v / (1 - beta_2**t)) + epsilon)

    ``P`` is kept in the first parameter's dtype, as Keras keeps it.

    Args:
        learning_rate: Positive float or ``LearningRateSchedule``. Defaults to
            0.001.
        beta_1: Float in [0, 1). Defaults to 0.9.
        beta_2: Float in [0, 1). Defaults to 0.999.
        epsilon: Positive float. Defaults to 1e-7.
        clipnorm: Optional positive float; see ``Optimizer``. Defaults to None.
        clipvalue: Optional positive float; see ``Optimizer``. Defaults to None.
        global_clipnorm: Optional positive float; see ``Optimizer``. Defaults to
            None.
        name: Defaults to None (``"nadam"``).
        weight_decay: Optional non-negative float; see ``Optimizer``. Defaults
            to None.

    Raises:
        ValueError: If ``beta_1`` or ``beta_2`` is not in [0, 1), ``epsilon`` is
            not positive, or a base argument is invalid (see ``Optimizer``).

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> w = np.array([1.0])
    >>> crnn.optimizers.Nadam(learning_rate=0.1).apply([w], [np.array([2.0])])
    >>> w
    array([0.89372122])
    """

    _u_product = None  # the momentum-schedule product, set by build and set_state

    def _slot_names(self):
        return ["momentum", "velocity"]

    def build(self, params: Sequence[np.ndarray]) -> None:
        super().build(params)
        params = list(params)
        self._u_product = (params[0].dtype if params else np.dtype("float32")).type(1.0)

    def _before_updates(self, params, lr):
        dt = type(self._u_product)
        decay = dt(0.96) ** dt(self.iterations + 1)
        self._u_product = dt(self._u_product * dt(self.beta_1) * (dt(1) - dt(0.5) * decay))

    def _update(self, param, grad, slots, lr, step, rows=None):
        dt = param.dtype.type
        decay = _via_float32(0.96, dt)
        beta_1, beta_2 = _via_float32(self.beta_1, dt), _via_float32(self.beta_2, dt)
        u_t = beta_1 * (dt(1) - dt(0.5) * decay ** dt(step))
        u_t_1 = beta_1 * (dt(1) - dt(0.5) * decay ** dt(step + 1))
        u_product_t = dt(self._u_product)
        u_product_t_1 = u_product_t * u_t_1
        beta_2_power = beta_2 ** dt(step)
        m, v = slots["momentum"], slots["velocity"]
        m += (grad - m) * (dt(1) - beta_1)
        v += (_squared(grad, rows, v) - v) * (dt(1) - beta_2)
        if rows is None:
            current = (dt(1) - u_t) * grad / (dt(1) - u_product_t)
        else:
            current = rows.sum((dt(1) - u_t) * rows.values / (dt(1) - u_product_t), param)
        m_hat = u_t_1 * m / (dt(1) - u_product_t_1) + current
        v_hat = v / (dt(1) - beta_2_power)
        param -= (m_hat * dt(lr)) / (np.sqrt(v_hat) + dt(self.epsilon))

    def get_state(self) -> list[np.ndarray]:
        """Returns the optimizer state as a list of arrays.

        Returns:
            As ``Optimizer.get_state``, followed (once built) by the scalar
            momentum-schedule product.
        """
        state = super().get_state()
        if self.built:
            state.append(np.array(self._u_product))
        return state

    def set_state(self, state: Sequence[ArrayLike]) -> None:
        """Restores a state returned by ``get_state``.

        Args:
            state: List of arrays as returned by ``Nadam.get_state``: the
                iteration count, the slot arrays, then the scalar
                momentum-schedule product (absent before the first update).

        Raises:
            ValueError: If the last array is not a scalar, or as
                ``Optimizer.set_state``.
        """
        state = list(state)
        if len(state) > 1:
            u_product = np.asarray(state[-1])
            if u_product.ndim != 0:
                raise ValueError(
                    "The last array of a built Nadam state must be the scalar momentum-schedule "
                    f"product; received shape {u_product.shape}."
                )
            super().set_state(state[:-1])
            self._u_product = u_product.dtype.type(u_product) if u_product.dtype.kind == "f" \
                else np.float32(u_product)
        else:
            super().set_state(state)


_CLASSES = {cls.__name__: cls for cls in (SGD, RMSprop, Adam, AdamW, Adagrad, Adamax, Nadam)}
_ALIASES = {name.lower(): cls for name, cls in _CLASSES.items()}


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    """Returns an optimizer's class name and configuration (no state).

    Args:
        optimizer: An ``Optimizer`` instance.

    Returns:
        ``{"class_name": ..., "config": optimizer.get_config()}``.

    Raises:
        ValueError: If ``optimizer`` is not an ``Optimizer``.

    Example:

    >>> import crnn
    >>> config = crnn.optimizers.serialize(crnn.optimizers.SGD(momentum=0.9))
    >>> config["class_name"], config["config"]["learning_rate"], config["config"]["momentum"]
    ('SGD', 0.01, 0.9)
    >>> sorted(config["config"])[:4]
    ['clipnorm', 'clipvalue', 'global_clipnorm', 'learning_rate']
    """
    if not isinstance(optimizer, Optimizer):
        raise ValueError(f"Expected a crnn Optimizer. Received: {optimizer!r}.")
    return class_config(optimizer)


def deserialize(config: dict[str, Any]) -> Optimizer:
    """Creates an optimizer from ``serialize``'s output.

    Args:
        config: Dict with ``"class_name"`` (e.g. ``"Adam"`` or ``"adam"``) and
            optionally ``"config"`` (constructor arguments).

    Returns:
        A new ``Optimizer`` without state.

    Raises:
        ValueError: If ``config`` is not a dict with a ``"class_name"``, the
            class name is unknown, or a constructor argument is invalid.
        TypeError: If ``"config"`` has a key the constructor does not take.

    Example:

    >>> import crnn
    >>> config = crnn.optimizers.serialize(crnn.optimizers.Adam(learning_rate=0.01))
    >>> opt = crnn.optimizers.deserialize(config)
    >>> type(opt).__name__, opt.learning_rate, opt.iterations
    ('Adam', 0.01, 0)
    """
    return from_class_config(config, "optimizer", _CLASSES,
                             lambda name: _CLASSES.get(name) or _ALIASES.get(str(name).lower()))


def get(identifier: str | dict[str, Any] | Optimizer) -> Optimizer:
    """Returns an optimizer from a name, a config dict or an instance.

    Args:
        identifier: ``"sgd"``, ``"rmsprop"``, ``"adam"``, ``"adamw"``,
            ``"adagrad"``, ``"adamax"`` or ``"nadam"`` (any case; Keras defaults), a
            ``{"class_name", "config"}`` dict, or an ``Optimizer`` instance (returned
            unchanged).

    Returns:
        An ``Optimizer``.

    Raises:
        ValueError: If the identifier is not recognized (or, for a dict, as
            ``deserialize``).

    Example:

    >>> import crnn
    >>> crnn.optimizers.get("Adam").epsilon
    1e-07
    >>> crnn.optimizers.get({"class_name": "SGD", "config": {"learning_rate": 0.5}}).learning_rate
    0.5
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        cls = _ALIASES.get(identifier.lower())
        if cls is None:
            raise ValueError(f"Unknown optimizer: {identifier!r}. Known names: {sorted(_ALIASES)}.")
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(
        f"Could not interpret optimizer identifier: {identifier!r}. Pass a name such as 'adam', "
        "a config dict, or an Optimizer instance."
    )
