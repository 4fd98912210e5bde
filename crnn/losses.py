"""Losses with Keras 3's formulas and its "sum_over_batch_size" reduction.

Each loss computes one value per sample and position (for example one per
``(sample, timestep)`` for sequence outputs), then averages all of them, which
is Keras's default reduction ``"sum_over_batch_size"``:

- ``mse``/``mae``: mean over the last axis of ``(y_pred - y_true)**2`` /
  ``|y_pred - y_true|``;
- ``binary_crossentropy``: mean over the last axis of the elementwise
  crossentropy;
- ``categorical_crossentropy``/``sparse_categorical_crossentropy``: sum over the
  class axis (the last one).

With ``from_logits=False`` the probabilities are clipped to
``[1e-7, 1 - 1e-7]`` as Keras does (and categorical ones are first divided by
their sum); the gradient is zero where the clip is active, as TensorFlow's.

``value_and_grad`` returns the loss and its exact gradient with respect to
``y_pred``, which the model back-propagates.

Example:

>>> import numpy as np
>>> import crnn
>>> loss = crnn.losses.get("mse")
>>> loss(np.array([[1.0], [2.0]]), np.array([[1.5], [2.0]]))
0.125
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from crnn._registry import class_config, config_repr, from_class_config
from crnn._validation import check_bool

__all__ = [
    "Loss",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "EPSILON",
    "get",
    "serialize",
    "deserialize",
    "logits_counterpart",
]

EPSILON = 1e-7  # keras.backend.epsilon()

_REDUCTIONS = ("sum_over_batch_size", "sum")


def _as_float_array(x, name):
    try:
        x = np.asarray(x)
    except Exception as e:  # noqa: BLE001 - re-raised with the argument's name
        raise ValueError(f"`{name}` could not be converted to an array: {e}") from None
    if x.dtype.kind not in "fiub":
        raise ValueError(f"`{name}` must be numeric. Received dtype {x.dtype}.")
    return x


def _squeeze_or_expand(y_true, y_pred):
    """Keras's rule for ranks that differ by one with a trailing axis of size 1.

    ``(batch,)`` vs ``(batch, 1)`` gets the rank-1 side expanded; otherwise the
    side with the trailing 1 is squeezed.
    """
    t_rank, p_rank = y_true.ndim, y_pred.ndim
    if t_rank == p_rank + 1 and y_true.shape[-1] == 1:
        if p_rank == 1:
            y_pred = y_pred[:, None]
        else:
            y_true = y_true[..., 0]
    elif p_rank == t_rank + 1 and y_pred.shape[-1] == 1:
        if t_rank == 1:
            y_true = y_true[:, None]
        else:
            y_pred = y_pred[..., 0]
    return y_true, y_pred


def _to_positions(name, weights, shape):
    """Weights of one value per sample (or per position) broadcast to the loss positions."""
    if weights.ndim and weights.shape[0] != shape[0]:
        raise ValueError(
            f"`{name}` must have one entry per sample: the batch has {shape[0]} samples, "
            f"{name} has shape {weights.shape}."
        )
    if weights.ndim > len(shape) and weights.shape[-1] == 1:
        weights = weights[..., 0]
    while weights.ndim < len(shape):
        weights = weights[..., None]
    try:
        return np.broadcast_to(weights, shape)
    except ValueError:
        raise ValueError(
            f"`{name}` of shape {weights.shape} does not fit the loss positions of shape {shape}: pass "
            "one weight per sample, or one per sample and timestep."
        ) from None


def _softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def _log_softmax(x):
    shifted = x - np.max(x, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _clip_mask(p, dtype):
    # tf.clip_by_value passes the gradient where lo <= p <= hi.
    lo, hi = dtype.type(EPSILON), dtype.type(1.0 - EPSILON)
    return np.clip(p, lo, hi), (p >= lo) & (p <= hi)


class Loss:
    """Base class of the losses.

    Subclasses implement ``_values_and_grad(y_true, y_pred, dtype, compute_grad)``,
    returning the per-position loss values and the gradient of their *sum* with
    respect to ``y_pred`` (None when ``compute_grad`` is False); the base class
    applies the sample weights, the mask and the reduction.

    Calling a loss, ``loss(y_true, y_pred, sample_weight=None)``, returns
    ``value_and_grad(y_true, y_pred, compute_grad=False, sample_weight=...)[0]``.

    Args:
        name: Name of the loss (each subclass has Keras's name as its default).
        reduction: ``"sum_over_batch_size"`` (the mean of the per-position
            values) or ``"sum"``. Defaults to ``"sum_over_batch_size"``.

    Call arguments:
        y_true: Targets.
        y_pred: Predictions, same shape as ``y_true`` (except for the sparse
            loss, and a trailing axis of size 1 that Keras squeezes or adds).
        sample_weight: Optional weights, as in ``value_and_grad``.

    Returns:
        The loss as a Python float (when called).

    Raises:
        ValueError: If ``reduction`` is not one of the two above or ``name`` is
            not a string.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> loss = crnn.losses.MeanSquaredError()
    >>> value, grad = loss.value_and_grad(np.array([[1.0, 2.0]]), np.array([[1.5, 2.0]]))
    >>> value
    0.125
    >>> grad
    array([[0.5, 0. ]])
    >>> crnn.losses.MeanSquaredError(reduction="sum")(np.zeros((2, 1)), np.ones((2, 1)))
    2.0
    """

    def __init__(self, name: str, reduction: str = "sum_over_batch_size") -> None:
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"Argument `reduction` must be one of {_REDUCTIONS}. Received: reduction={reduction!r}."
            )
        if not isinstance(name, str):
            raise ValueError(f"Argument `name` must be a string. Received: name={name!r}.")
        self.name = name
        self.reduction = reduction

    def __call__(self, y_true: ArrayLike, y_pred: ArrayLike,
                 sample_weight: ArrayLike | None = None) -> float:
        return self.value_and_grad(y_true, y_pred, compute_grad=False,
                                   sample_weight=sample_weight)[0]

    def value_and_grad(
        self,
        y_true: ArrayLike,
        y_pred: ArrayLike,
        compute_grad: bool = True,
        sample_weight: ArrayLike | None = None,
        mask: ArrayLike | None = None,
    ) -> tuple[float, np.ndarray | None]:
        """Returns the loss and its gradient with respect to ``y_pred``.

        Args:
            y_true: Targets (numeric).
            y_pred: Predictions (numeric).
            compute_grad: If False, the gradient is not computed (returned as
                None). Defaults to True.
            sample_weight: Optional weights, one per sample (broadcast over the
                timesteps of sequence outputs) or one per loss position, as Keras:
                the values are multiplied by them before the reduction, which still
                divides by the number of positions (``"sum_over_batch_size"``).
            mask: Optional boolean mask of the loss positions (a sequence output's
                mask, ``(batch, timesteps)``). As Keras, masked positions count 0 and
                with ``"sum_over_batch_size"`` the others are scaled by
                ``positions / (valid + 1e-7)``, so the loss is the mean over the
                valid positions.

        Returns:
            Tuple ``(loss, d_y_pred)``: the loss as a Python float and an array of
            ``y_pred``'s shape and dtype (float32 for an integer ``y_pred``), or
            None when ``compute_grad`` is False.

        Raises:
            ValueError: If ``y_true`` or ``y_pred`` is not numeric, the shapes are
                incompatible, the labels are invalid (sparse loss),
                ``sample_weight`` is not finite, or ``sample_weight`` or ``mask``
                does not fit the loss positions.
        """
        y_pred_in = _as_float_array(y_pred, "y_pred")
        dtype = y_pred_in.dtype if y_pred_in.dtype.kind == "f" else np.dtype("float32")
        y_pred_arr = y_pred_in.astype(dtype, copy=False)
        y_true_arr = _as_float_array(y_true, "y_true")
        values, grad = self._values_and_grad(y_true_arr, y_pred_arr, dtype, compute_grad)
        if sample_weight is not None or mask is not None:
            return self._weighted(values, grad, y_pred_arr.shape, dtype, sample_weight, mask)
        total = np.sum(values, dtype=np.float64)
        count = max(int(np.size(values)), 1)
        if self.reduction == "sum_over_batch_size":
            loss = total / count
            if grad is not None:
                grad = grad / dtype.type(count)
        else:
            loss = total
        if grad is not None:
            grad = np.ascontiguousarray(grad.reshape(y_pred_arr.shape), dtype=dtype)
        return float(loss), grad

    def _weighted(self, values, grad, pred_shape, dtype, sample_weight, mask):
        """Keras's reduce_weighted_values (with apply_mask) on per-position ``values``."""
        values = np.asarray(values, dtype=np.float64)
        weights = np.ones(values.shape)
        if mask is not None:
            m = _to_positions("mask", np.asarray(mask, dtype=np.float64), values.shape)
            if self.reduction == "sum_over_batch_size":
                m = m * (m.size / (np.sum(m) + 1e-7))
            weights = weights * m
        if sample_weight is not None:
            sw = np.asarray(sample_weight, dtype=np.float64)
            if not np.all(np.isfinite(sw)):
                raise ValueError("`sample_weight` must be finite.")
            weights = weights * _to_positions("sample_weight", sw, values.shape)
        total = np.sum(values * weights)
        count = max(int(np.size(values)), 1)
        loss = total / count if self.reduction == "sum_over_batch_size" else total
        if grad is not None:
            scale = weights / count if self.reduction == "sum_over_batch_size" else weights
            grad = grad.reshape(values.shape + (-1,)) * scale[..., None].astype(dtype)
            grad = np.ascontiguousarray(grad.reshape(pred_shape), dtype=dtype)
        return float(loss), grad

    def _check_same_shape(self, y_true, y_pred):
        y_true2, y_pred2 = _squeeze_or_expand(y_true, y_pred)
        if y_true2.shape != y_pred2.shape:
            raise ValueError(
                f"{type(self).__name__}: `y_true` and `y_pred` must have the same shape. Received: "
                f"y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}. Reshape the targets to "
                "the model's output shape."
            )
        return y_true2, y_pred2

    def _values_and_grad(self, y_true, y_pred, dtype, compute_grad):
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """Returns the constructor arguments as a JSON-serializable dict.

        Returns:
            Dict of the constructor's keyword arguments (``name``,
            ``reduction`` and the subclass's own, such as ``from_logits``).
        """
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        """Creates a loss from ``get_config()``'s output.

        Args:
            config: Dict of constructor keyword arguments.

        Returns:
            A new loss of this class.

        Raises:
            TypeError: If ``config`` has a key the constructor does not take.
            ValueError: If a value is invalid (see the constructor).
        """
        return cls(**config)

    def __repr__(self):
        return config_repr(self)


class MeanSquaredError(Loss):
    """Mean of ``(y_true - y_pred)**2`` over the last axis, then reduced over the rest.

    The per-position values (one per sample, or per sample and timestep) are
    averaged (``"sum_over_batch_size"``) or summed (``"sum"``).

    Args:
        reduction: ``"sum_over_batch_size"`` or ``"sum"`` (see ``Loss``).
            Defaults to ``"sum_over_batch_size"``.
        name: Defaults to ``"mean_squared_error"``.

    Raises:
        ValueError: If ``reduction`` or ``name`` is invalid (see ``Loss``).

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> loss = crnn.losses.MeanSquaredError()
    >>> loss(np.zeros((2, 2)), np.array([[1.0, 0.0], [0.0, 1.0]]))
    0.5
    """

    def __init__(self, reduction: str = "sum_over_batch_size",
                 name: str = "mean_squared_error") -> None:
        super().__init__(name, reduction)

    def _values_and_grad(self, y_true, y_pred, dtype, compute_grad):
        t, p = self._check_same_shape(y_true, y_pred)
        diff = p - t.astype(dtype)
        width = p.shape[-1] if p.ndim else 1
        values = np.mean(np.square(diff), axis=-1) if p.ndim else np.square(diff)
        grad = diff * dtype.type(2.0 / width) if compute_grad else None
        return values, grad


class MeanAbsoluteError(Loss):
    """Mean of ``|y_true - y_pred|`` over the last axis, then reduced over the rest.

    The gradient at ``y_pred == y_true`` is 0 (``sign(0)``), as in TensorFlow.

    Args:
        reduction: ``"sum_over_batch_size"`` or ``"sum"`` (see ``Loss``).
            Defaults to ``"sum_over_batch_size"``.
        name: Defaults to ``"mean_absolute_error"``.

    Raises:
        ValueError: If ``reduction`` or ``name`` is invalid (see ``Loss``).

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> loss = crnn.losses.MeanAbsoluteError()
    >>> loss(np.zeros((2, 2)), np.array([[1.0, 0.0], [0.0, -1.0]]))
    0.5
    """

    def __init__(self, reduction: str = "sum_over_batch_size",
                 name: str = "mean_absolute_error") -> None:
        super().__init__(name, reduction)

    def _values_and_grad(self, y_true, y_pred, dtype, compute_grad):
        t, p = self._check_same_shape(y_true, y_pred)
        diff = p - t.astype(dtype)
        width = p.shape[-1] if p.ndim else 1
        values = np.mean(np.abs(diff), axis=-1) if p.ndim else np.abs(diff)
        grad = np.sign(diff) * dtype.type(1.0 / width) if compute_grad else None
        return values, grad


def _check_label_smoothing(value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
        0.0 <= value <= 1.0
    ):
        raise ValueError(
            f"Argument `label_smoothing` must be a float in [0, 1]. Received: label_smoothing={value!r}."
        )
    return float(value)


class _SmoothedCrossentropy(Loss):
    """Base of the binary and categorical crossentropies: their ``from_logits`` and
    ``label_smoothing`` arguments."""

    def __init__(self, from_logits: bool, label_smoothing: float, reduction: str,
                 name: str) -> None:
        super().__init__(name, reduction)
        self.from_logits = check_bool("from_logits", from_logits)
        self.label_smoothing = _check_label_smoothing(label_smoothing)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"from_logits": self.from_logits, "label_smoothing": self.label_smoothing})
        return config


class BinaryCrossentropy(_SmoothedCrossentropy):
    """Binary crossentropy, averaged over the last axis and then over the rest.

    Per element, with ``t`` the target and ``p`` the clipped probability:
    ``-(t log p + (1 - t) log(1 - p))``. With ``from_logits=True``, ``y_pred``
    holds logits ``x`` and the stable form
    ``max(x, 0) - x t + log(1 + exp(-|x|))`` is used (TensorFlow's
    ``sigmoid_cross_entropy_with_logits``), without clipping.

    Args:
        from_logits: Whether ``y_pred`` holds logits. Defaults to False.
        label_smoothing: Float in [0, 1]; targets become
            ``t * (1 - label_smoothing) + 0.5 * label_smoothing``. Defaults to 0.0.
        reduction: ``"sum_over_batch_size"`` or ``"sum"`` (see ``Loss``).
            Defaults to ``"sum_over_batch_size"``.
        name: Defaults to ``"binary_crossentropy"``.

    Raises:
        ValueError: If ``from_logits`` is not a bool, ``label_smoothing`` is not
            a number in [0, 1], or ``reduction`` or ``name`` is invalid.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> loss = crnn.losses.BinaryCrossentropy()
    >>> round(loss(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]])), 6)
    0.693147
    >>> logits = crnn.losses.BinaryCrossentropy(from_logits=True)
    >>> round(logits(np.array([[1.0, 0.0]]), np.array([[0.0, 0.0]])), 6)
    0.693147
    """

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        reduction: str = "sum_over_batch_size",
        name: str = "binary_crossentropy",
    ) -> None:
        super().__init__(from_logits, label_smoothing, reduction, name)

    def _values_and_grad(self, y_true, y_pred, dtype, compute_grad):
        t, p = self._check_same_shape(y_true, y_pred)
        t = t.astype(dtype, copy=False)      # read only below
        if self.label_smoothing:
            t = t * dtype.type(1.0 - self.label_smoothing) + dtype.type(0.5 * self.label_smoothing)
        grad = None
        if self.from_logits:
            elementwise = np.maximum(p, 0) - p * t + np.log1p(np.exp(-np.abs(p)))
            if compute_grad:
                # sigmoid(x) - t, written to avoid overflow in exp.
                sig = np.where(p >= 0, 1 / (1 + np.exp(-np.abs(p))), np.exp(-np.abs(p)) / (1 + np.exp(-np.abs(p))))
                grad = sig.astype(dtype) - t
        else:
            pc, inside = _clip_mask(p, dtype)
            one = dtype.type(1)
            elementwise = -(t * np.log(pc) + (one - t) * np.log(one - pc))
            if compute_grad:
                grad = np.where(inside, -t / pc + (one - t) / (one - pc), dtype.type(0))
        width = p.shape[-1] if p.ndim else 1
        values = np.mean(elementwise, axis=-1) if p.ndim else elementwise
        if grad is not None:
            grad = grad * dtype.type(1.0 / width)
        return values, grad


class CategoricalCrossentropy(_SmoothedCrossentropy):
    """Crossentropy between one-hot (or soft) targets and class probabilities.

    Per position: ``-sum(t * log(q))`` over the last (class) axis, where
    ``q = clip(p / sum(p), 1e-7, 1 - 1e-7)``; with ``from_logits=True``,
    ``q = softmax(y_pred)`` computed stably and unclipped. ``y_true`` and
    ``y_pred`` must have the same shape ``(..., num_classes)``; a ``UserWarning``
    is issued when ``num_classes`` is 1 (the loss is then always 0).

    Args:
        from_logits: Whether ``y_pred`` holds logits. Defaults to False.
        label_smoothing: Float in [0, 1]; targets become
            ``t * (1 - label_smoothing) + label_smoothing / num_classes``.
            Defaults to 0.0.
        reduction: ``"sum_over_batch_size"`` or ``"sum"`` (see ``Loss``).
            Defaults to ``"sum_over_batch_size"``.
        name: Defaults to ``"categorical_crossentropy"``.

    Raises:
        ValueError: If ``from_logits`` is not a bool, ``label_smoothing`` is not
            a number in [0, 1], or ``reduction`` or ``name`` is invalid.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> loss = crnn.losses.CategoricalCrossentropy()
    >>> round(loss(np.array([[0.0, 1.0]]), np.array([[0.5, 0.5]])), 6)
    0.693147
    """

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        reduction: str = "sum_over_batch_size",
        name: str = "categorical_crossentropy",
    ) -> None:
        super().__init__(from_logits, label_smoothing, reduction, name)

    def _values_and_grad(self, y_true, y_pred, dtype, compute_grad):
        if y_true.shape != y_pred.shape or y_pred.ndim < 1:
            raise ValueError(
                "CategoricalCrossentropy: `y_true` (one-hot) and `y_pred` must have the same shape "
                f"(..., num_classes). Received: y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}. "
                "For integer labels use 'sparse_categorical_crossentropy'."
            )
        if y_pred.shape[-1] == 1:
            warnings.warn(
                "categorical_crossentropy expects y_pred of shape (..., num_classes) with "
                f"num_classes > 1; received y_pred.shape={y_pred.shape}. With one output unit the "
                "loss is always 0; use 'binary_crossentropy' for two classes.",
                stacklevel=3,
            )
        t = y_true.astype(dtype, copy=False)     # read only below
        if self.label_smoothing:
            num_classes = y_pred.shape[-1]
            t = t * dtype.type(1.0 - self.label_smoothing) + dtype.type(self.label_smoothing / num_classes)
        grad = None
        if self.from_logits:
            values = -np.sum(t * _log_softmax(y_pred), axis=-1)
            if compute_grad:
                grad = _softmax(y_pred) * np.sum(t, axis=-1, keepdims=True) - t
        else:
            total = np.sum(y_pred, axis=-1, keepdims=True)
            q = y_pred / total
            qc, inside = _clip_mask(q, dtype)
            values = -np.sum(t * np.log(qc), axis=-1)
            if compute_grad:
                d_q = np.where(inside, -t / qc, dtype.type(0))
                # q = p / sum(p): dL/dp_j = (dL/dq_j - sum_i dL/dq_i q_i) / sum(p).
                grad = (d_q - np.sum(d_q * q, axis=-1, keepdims=True)) / total
        return values, grad


class SparseCategoricalCrossentropy(Loss):
    """Categorical crossentropy with integer class labels.

    ``y_true`` holds class indices, of ``y_pred``'s shape without its last axis
    (e.g. ``(batch,)`` for ``y_pred`` of shape ``(batch, classes)``, or
    ``(batch, timesteps)`` for sequence outputs); a trailing axis of size 1 is
    also accepted. Per position: ``-log(q[label])`` with, as in Keras on
    TensorFlow, ``q = c / sum(c)`` and ``c = clip(p, 1e-7, 1 - 1e-7)``; with
    ``from_logits=True``, ``q = softmax(y_pred)``.

    Args:
        from_logits: Whether ``y_pred`` holds logits. Defaults to False.
        reduction: ``"sum_over_batch_size"`` or ``"sum"`` (see ``Loss``).
            Defaults to ``"sum_over_batch_size"``.
        name: Defaults to ``"sparse_categorical_crossentropy"``.

    Raises:
        ValueError: If ``from_logits`` is not a bool or ``reduction`` or ``name``
            is invalid; when called, if a label is not an integer in
            ``[0, num_classes)`` or the shapes do not fit.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> loss = crnn.losses.SparseCategoricalCrossentropy()
    >>> round(loss(np.array([1, 0]), np.array([[0.5, 0.5], [0.5, 0.5]])), 6)
    0.693147
    """

    def __init__(
        self,
        from_logits: bool = False,
        reduction: str = "sum_over_batch_size",
        name: str = "sparse_categorical_crossentropy",
    ) -> None:
        super().__init__(name, reduction)
        self.from_logits = check_bool("from_logits", from_logits)

    def _labels(self, y_true, y_pred):
        labels = y_true
        if labels.ndim == y_pred.ndim and labels.ndim > 0 and labels.shape[-1] == 1:
            labels = labels[..., 0]
        if y_pred.ndim < 1 or labels.shape != y_pred.shape[:-1]:
            raise ValueError(
                "SparseCategoricalCrossentropy: `y_true` must hold integer labels with the shape of "
                f"`y_pred` without its last (class) axis. Received: y_true.shape={y_true.shape}, "
                f"y_pred.shape={y_pred.shape}; expected y_true.shape={y_pred.shape[:-1]} (or with a "
                "trailing 1). For one-hot targets use 'categorical_crossentropy'."
            )
        num_classes = y_pred.shape[-1]
        if labels.dtype.kind == "f":
            if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
                raise ValueError(
                    "SparseCategoricalCrossentropy: `y_true` must hold integer class indices. Received "
                    "non-integer values; for one-hot or soft targets use 'categorical_crossentropy'."
                )
        labels = labels.astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            bad = labels[(labels < 0) | (labels >= num_classes)].ravel()[0]
            raise ValueError(
                f"SparseCategoricalCrossentropy: labels must be in [0, {num_classes}) for y_pred with "
                f"{num_classes} classes. Received a label {bad}."
            )
        return labels

    def _values_and_grad(self, y_true, y_pred, dtype, compute_grad):
        labels = self._labels(y_true, y_pred)
        onehot = (labels[..., None] == np.arange(y_pred.shape[-1])).astype(dtype)
        grad = None
        if self.from_logits:
            values = -np.sum(onehot * _log_softmax(y_pred), axis=-1)
            if compute_grad:
                grad = _softmax(y_pred) - onehot
        else:
            c, inside = _clip_mask(y_pred, dtype)
            total = np.sum(c, axis=-1, keepdims=True)
            values = -np.sum(onehot * np.log(c), axis=-1) + np.log(total[..., 0])
            if compute_grad:
                # L = -log c_y + log sum(c): dL/dc_j = 1/sum(c) - [j == y]/c_j.
                grad = np.where(inside, 1 / total - onehot / c, dtype.type(0))
        return values, grad

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"from_logits": self.from_logits})
        return config


_CLASSES = {
    cls.__name__: cls
    for cls in (
        MeanSquaredError,
        MeanAbsoluteError,
        BinaryCrossentropy,
        CategoricalCrossentropy,
        SparseCategoricalCrossentropy,
    )
}
_ALIASES = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}


def serialize(loss: Loss) -> dict[str, Any]:
    """Returns a loss's class name and configuration, Keras's serialized form.

    Args:
        loss: A ``Loss`` instance.

    Returns:
        ``{"class_name": ..., "config": loss.get_config()}``.

    Raises:
        ValueError: If ``loss`` is not a ``Loss``.

    Example:

    >>> import crnn
    >>> config = crnn.losses.serialize(crnn.losses.MeanAbsoluteError())
    >>> config["class_name"], config["config"]
    ('MeanAbsoluteError', {'name': 'mean_absolute_error', 'reduction': 'sum_over_batch_size'})
    """
    if not isinstance(loss, Loss):
        raise ValueError(f"Expected a crnn Loss. Received: {loss!r}.")
    return class_config(loss)


def deserialize(config: dict[str, Any]) -> Loss:
    """Creates a loss from ``serialize``'s output.

    Args:
        config: Dict with ``"class_name"`` (a class name such as
            ``"MeanSquaredError"``, or a name that ``get`` knows, such as
            ``"mse"``) and optionally ``"config"`` (constructor arguments).

    Returns:
        A new ``Loss``.

    Raises:
        ValueError: If ``config`` is not a dict with a ``"class_name"``, the
            class name is unknown, or a constructor argument is invalid.
        TypeError: If ``"config"`` has a key the constructor does not take.

    Example:

    >>> import crnn
    >>> config = crnn.losses.serialize(crnn.losses.BinaryCrossentropy(from_logits=True))
    >>> loss = crnn.losses.deserialize(config)
    >>> type(loss).__name__, loss.name, loss.from_logits
    ('BinaryCrossentropy', 'binary_crossentropy', True)
    """
    return from_class_config(config, "loss", _CLASSES,
                             lambda name: _CLASSES.get(name) or _ALIASES.get(name))


def get(identifier: str | dict[str, Any] | Loss | type[Loss]) -> Loss:
    """Returns a loss from a name, a class name, a config dict or an instance.

    Args:
        identifier: ``"mse"``, ``"mean_squared_error"``, ``"mae"``,
            ``"mean_absolute_error"``, ``"binary_crossentropy"``,
            ``"categorical_crossentropy"``, ``"sparse_categorical_crossentropy"``
            or a class name (``"MeanSquaredError"``), each giving the class with
            its defaults; a ``{"class_name", "config"}`` dict (see
            ``deserialize``); a ``Loss`` subclass (created with its defaults); or
            a ``Loss`` instance (returned unchanged).

    Returns:
        A ``Loss``.

    Raises:
        ValueError: If the identifier is not recognized (or, for a dict, as
            ``deserialize``).

    Example:

    >>> import crnn
    >>> crnn.losses.get("mse").name
    'mean_squared_error'
    >>> crnn.losses.get("SparseCategoricalCrossentropy").from_logits
    False
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        cls = _ALIASES.get(identifier) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(
                f"Unknown loss: {identifier!r}. Known names: {sorted(_ALIASES)} and class names "
                f"{sorted(_CLASSES)}."
            )
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    raise ValueError(
        f"Could not interpret loss identifier: {identifier!r}. Pass a name such as 'mse', a config "
        "dict or a Loss instance."
    )


def logits_counterpart(loss: Loss, activation: str | None) -> Loss | None:
    """Returns the ``from_logits=True`` twin of a probability crossentropy.

    Keras on TensorFlow computes a crossentropy on the logits when ``y_pred``
    comes straight from a ``sigmoid`` (binary) or ``softmax`` (categorical,
    sparse) activation, even with ``from_logits=False``: no clipping is
    applied, which changes values and gradients for saturated outputs. A model
    that wants the same numbers can evaluate this twin on the pre-activation
    output and back-propagate its gradient directly into the logits.

    Args:
        loss: A ``Loss``.
        activation: Name of the output layer's activation (e.g. ``"softmax"``).

    Returns:
        A new ``Loss`` with ``from_logits=True`` and the same name, reduction and
        label smoothing, or ``None`` if Keras would not switch to the logits:
        ``loss`` already takes logits or is not a crossentropy, or the
        activation is not the one that matches it (``"sigmoid"`` for
        ``BinaryCrossentropy``, ``"softmax"`` for the categorical ones).

    Example:

    >>> import crnn
    >>> bce = crnn.losses.get("binary_crossentropy")
    >>> crnn.losses.logits_counterpart(bce, "sigmoid").from_logits
    True
    >>> crnn.losses.logits_counterpart(bce, "softmax") is None
    True
    >>> crnn.losses.logits_counterpart(crnn.losses.get("mse"), "sigmoid") is None
    True
    """
    if getattr(loss, "from_logits", True):
        return None
    matches = (isinstance(loss, BinaryCrossentropy) and activation == "sigmoid") or (
        isinstance(loss, (CategoricalCrossentropy, SparseCategoricalCrossentropy)) and activation == "softmax"
    )
    if not matches:
        return None
    config = loss.get_config()
    config["from_logits"] = True
    return type(loss).from_config(config)
