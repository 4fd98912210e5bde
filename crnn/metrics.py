"""Metrics with Keras 3's formulas, names and running-mean semantics.

A metric turns each batch into one value per sample (averaging over any other
axes), and ``result()`` is the mean of all per-sample values seen since the last
``reset_state()``: a running mean weighted by sample count, as Keras's
``MeanMetricWrapper``.

``get("accuracy")`` (or ``"acc"``) follows Keras 3's ``compile`` rule, which looks
at the shapes of the first batch: a last ``y_pred`` axis of size 1 means binary
accuracy; ``y_true`` of lower rank than ``y_pred``, or with a last axis of 1
while ``y_pred``'s is larger, means sparse categorical accuracy; anything else is
categorical accuracy. The metric keeps the name it was asked for ("accuracy" or
"acc"), which is its key in the training logs.

Example:

>>> import numpy as np
>>> import crnn
>>> m = crnn.metrics.get("mae")
>>> m.update_state(np.array([[1.0], [2.0]]), np.array([[1.5], [2.0]]))
>>> m.result()
0.25
>>> m.name
'mae'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np
from numpy.typing import ArrayLike

from crnn._registry import class_config, from_class_config
from crnn._validation import is_int, is_number
from crnn.losses import _squeeze_or_expand

__all__ = [
    "Metric",
    "Mean",
    "MeanMetricWrapper",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "SparseCategoricalAccuracy",
    "Accuracy",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "RootMeanSquaredError",
    "MeanAbsolutePercentageError",
    "TopKCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "Precision",
    "Recall",
    "AUC",
    "get",
    "serialize",
    "deserialize",
]


def _to_array(x, name):
    x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise ValueError(f"`{name}` must be numeric. Received dtype {x.dtype}.")
    return x


def _per_sample(values):
    # Average every axis but the first, as Keras's reduce_to_samplewise_values.
    values = np.asarray(values, dtype=np.float64)
    if values.ndim > 1:
        values = values.reshape(values.shape[0], -1).mean(axis=1)
    return values


def _weighted_per_sample(values, sample_weight):
    """Keras's reduce_to_samplewise_values with weights: ``(sum of weighted values, sum of weights)``.

    Values are first averaged down to the weights' rank, then weighted; both are
    then averaged over every axis but the first.
    """
    values = np.asarray(values, dtype=np.float64)
    sw = np.asarray(sample_weight, dtype=np.float64)
    if not np.all(np.isfinite(sw)):
        raise ValueError("`sample_weight` must be finite.")
    values, sw = _squeeze_or_expand(values, sw)
    if values.ndim > sw.ndim:
        values = values.mean(axis=tuple(range(sw.ndim, values.ndim)))
    try:
        sw = np.broadcast_to(sw, values.shape)
    except ValueError:
        raise ValueError(
            f"`sample_weight` of shape {np.shape(sample_weight)} does not broadcast to the values of "
            f"shape {values.shape}; pass one weight per sample (shape ({values.shape[0] if values.ndim else 1},))."
        ) from None
    values = values * sw
    if sw.ndim > 1:
        sw = sw.reshape(sw.shape[0], -1).mean(axis=1)
    return _per_sample(values), sw


class Metric:
    """Base class: a running mean of per-sample values.

    Subclasses implement ``_values(y_true, y_pred)``, which gets both as NumPy
    arrays and returns per-position values (one per sample, or per sample and
    timestep...); ``update_state`` averages them per sample and ``result()`` is
    the mean over all samples since the last ``reset_state()``.

    Args:
        name: Key of the metric in the logs (a non-empty string).

    Attributes:
        name: The log key.
        direction: ``"up"`` if larger is better, ``"down"`` otherwise (used by
            ``EarlyStopping``/``ModelCheckpoint`` in ``mode="auto"``).

    Raises:
        ValueError: If ``name`` is not a non-empty string.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> class MaxError(crnn.metrics.Metric):
    ...     def _values(self, y_true, y_pred):
    ...         return np.max(np.abs(y_pred - y_true), axis=-1)
    >>> m = MaxError("max_error")
    >>> m.update_state(np.zeros((2, 2)), np.array([[1.0, 3.0], [0.0, 1.0]]))
    >>> m.result()
    2.0
    >>> m.reset_state()
    >>> m.result()
    0.0
    """

    direction = "down"

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"Argument `name` must be a non-empty string. Received: name={name!r}.")
        self.name = name
        self.reset_state()

    def reset_state(self) -> None:
        """Forgets every value seen so far."""
        self.total = 0.0
        self.count = 0

    def _accumulate(self, values, sample_weight=None):
        if sample_weight is not None:
            values, weights = _weighted_per_sample(values, sample_weight)
            self.total += float(np.sum(values))
            self.count += float(np.sum(weights))
            return
        values = _per_sample(values)
        self.total += float(np.sum(values))
        self.count += int(values.size) if values.ndim else 1

    def update_state(self, y_true: ArrayLike, y_pred: ArrayLike,
                     sample_weight: ArrayLike | None = None) -> None:
        """Adds one batch.

        Args:
            y_true: Targets of the batch (numeric).
            y_pred: Predictions of the batch (numeric).
            sample_weight: Optional weights, one per sample (or per position,
                e.g. a timestep mask), as Keras: the result becomes
                ``sum(w * value) / sum(w)``. Defaults to None (all 1).

        Raises:
            ValueError: If ``y_true`` or ``y_pred`` is not numeric, their shapes
                do not fit the metric, or ``sample_weight`` is not finite or does
                not broadcast to the values.
        """
        self._accumulate(self._values(_to_array(y_true, "y_true"), _to_array(y_pred, "y_pred")),
                         sample_weight)

    def _values(self, y_true, y_pred):
        raise NotImplementedError

    def result(self) -> float:
        """Returns the metric's value.

        Returns:
            The running mean as a Python float (0.0 before any update, or when
            the weights seen so far sum to 0).
        """
        return self.total / self.count if self.count else 0.0

    def get_config(self) -> dict[str, Any]:
        """Returns the constructor arguments.

        Returns:
            Dict of the constructor's keyword arguments (``name`` and the
            subclass's own, such as ``threshold``), JSON-serializable when they
            were given as plain Python values.
        """
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        """Creates a metric from ``get_config()``'s output.

        Args:
            config: Dict of constructor keyword arguments.

        Returns:
            A new metric of this class, with no values seen.

        Raises:
            TypeError: If ``config`` has a key the constructor does not take.
            ValueError: If a value is invalid (see the constructor).
        """
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


class Mean(Metric):
    """Running mean of given values, weighted by sample count (Keras's ``Mean``).

    ``update_state(values, sample_weight=None)`` takes the values themselves;
    values of rank > 1 are first averaged per sample. Models use it to track the
    epoch's loss from per-batch means: ``update_state(batch_loss,
    sample_weight=batch_size)``.

    Args:
        name: Defaults to ``"mean"``.

    Raises:
        ValueError: If ``name`` is not a non-empty string.

    Example:

    >>> import crnn
    >>> m = crnn.metrics.Mean()
    >>> m.update_state(1.0, sample_weight=3)
    >>> m.update_state(2.0, sample_weight=1)
    >>> m.result()
    1.25
    >>> m.update_state([4.0, 4.0, 4.0, 4.0])
    >>> m.result()
    2.625
    """

    def __init__(self, name: str = "mean") -> None:
        super().__init__(name)

    def update_state(self, values: ArrayLike, sample_weight: float | None = None) -> None:
        """Adds values.

        Args:
            values: Scalar or array; a scalar counts as one sample, an array as
                one sample per first-axis entry (averaged over its other axes).
            sample_weight: Optional scalar weight for a scalar value (e.g. the
                number of samples a batch mean covers). Defaults to None.

        Raises:
            ValueError: If ``sample_weight`` is given with an array value, is not
                a scalar, or is negative (or NaN).
        """
        values = np.asarray(values, dtype=np.float64)
        if sample_weight is not None:
            if np.ndim(sample_weight) != 0 or values.ndim != 0:
                raise ValueError(
                    "Mean.update_state supports a scalar `sample_weight` with a scalar value only. "
                    f"Received values.shape={values.shape}, sample_weight={sample_weight!r}."
                )
            if not sample_weight >= 0:
                raise ValueError(f"`sample_weight` must be >= 0. Received: sample_weight={sample_weight!r}.")
            self.total += float(values) * float(sample_weight)
            self.count += float(sample_weight)
            return
        self._accumulate(values)


class MeanMetricWrapper(Metric):
    """Wraps ``fn(y_true, y_pred) -> per-position values`` in a running mean.

    ``fn`` gets ``y_true`` and ``y_pred`` as NumPy arrays. Such a metric can't
    be serialized (``get_config`` raises ``NotImplementedError``).

    Args:
        fn: Function returning an array of values, one per sample or per
            position (averaged per sample).
        name: Log key (a non-empty string).
        direction: ``"up"`` if larger is better, ``"down"`` otherwise (used by
            callbacks in ``mode="auto"``; not checked). Defaults to ``"down"``.

    Raises:
        ValueError: If ``name`` is not a non-empty string.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> m = crnn.metrics.MeanMetricWrapper(lambda t, p: np.abs(p - t), name="abs_error")
    >>> m.update_state(np.array([[1.0], [2.0]]), np.array([[1.5], [2.0]]))
    >>> m.result()
    0.25
    """

    def __init__(self, fn: Callable[[np.ndarray, np.ndarray], ArrayLike], name: str,
                 direction: str = "down") -> None:
        self._fn = fn
        self.direction = direction
        super().__init__(name)

    def _values(self, y_true, y_pred):
        return self._fn(y_true, y_pred)

    def get_config(self) -> NoReturn:
        """Always raises: a wrapped function can't be serialized.

        Raises:
            NotImplementedError: Always.
        """
        raise NotImplementedError("MeanMetricWrapper around an arbitrary function cannot be serialized.")


def _same_shape(y_true, y_pred, what):
    """``y_true`` and ``y_pred`` as arrays, after ``_squeeze_or_expand``; a ValueError naming
    ``what`` if their shapes still differ."""
    y_true, y_pred = _squeeze_or_expand(np.asarray(y_true), np.asarray(y_pred))
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{what}: `y_true` and `y_pred` must have the same shape. Received: "
            f"y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}."
        )
    return y_true, y_pred


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Per-element 1.0 where ``(y_pred > threshold)`` equals ``y_true``, else 0.0."""
    y_true, y_pred = _same_shape(y_true, y_pred, "binary accuracy")
    return (y_true == (y_pred > threshold).astype(y_true.dtype)).astype(np.float64)


def categorical_accuracy(y_true, y_pred):
    """Per-position 1.0 where ``argmax(y_true) == argmax(y_pred)`` on the last axis."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            "categorical accuracy: `y_true` (one-hot) and `y_pred` must have the same shape. "
            f"Received: y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}. For integer "
            "labels use 'sparse_categorical_accuracy'."
        )
    return (np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)).astype(np.float64)


def sparse_categorical_accuracy(y_true, y_pred):
    """Per-position 1.0 where the integer label equals ``argmax(y_pred)``."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = y_true
    if labels.ndim == y_pred.ndim and labels.ndim > 0 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if labels.shape != y_pred.shape[:-1]:
        raise ValueError(
            "sparse categorical accuracy: `y_true` must hold integer labels with the shape of "
            f"`y_pred` without its last axis. Received: y_true.shape={y_true.shape}, "
            f"y_pred.shape={y_pred.shape}."
        )
    return (labels == np.argmax(y_pred, axis=-1)).astype(np.float64)


def mean_absolute_error(y_true, y_pred):
    """Mean of ``|y_true - y_pred|`` over the last axis."""
    y_true, y_pred = _same_shape(y_true, y_pred, "mean_absolute_error")
    return np.mean(np.abs(y_pred.astype(np.float64) - y_true), axis=-1)


def mean_squared_error(y_true, y_pred):
    """Mean of ``(y_true - y_pred)**2`` over the last axis."""
    y_true, y_pred = _same_shape(y_true, y_pred, "mean_squared_error")
    return np.mean(np.square(y_pred.astype(np.float64) - y_true), axis=-1)


class BinaryAccuracy(Metric):
    """How often ``y_pred > threshold`` matches the 0/1 target.

    Args:
        name: Defaults to ``"binary_accuracy"``.
        threshold: A prediction above it counts as 1. Defaults to 0.5.

    Raises:
        ValueError: If ``name`` is not a non-empty string.
        TypeError: If ``threshold`` can't be converted to a float (e.g. None).

    Example:

    >>> import crnn
    >>> m = crnn.metrics.BinaryAccuracy()
    >>> m.update_state([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]])
    >>> m.result()
    0.75
    """

    direction = "up"

    def __init__(self, name: str = "binary_accuracy", threshold: float = 0.5) -> None:
        self.threshold = float(threshold)
        super().__init__(name)

    def _values(self, y_true, y_pred):
        return binary_accuracy(y_true, y_pred, self.threshold)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "threshold": self.threshold}


class CategoricalAccuracy(Metric):
    """How often ``argmax(y_pred)`` matches ``argmax(y_true)`` (one-hot targets).

    Args:
        name: Defaults to ``"categorical_accuracy"``.

    Raises:
        ValueError: If ``name`` is not a non-empty string.

    Example:

    >>> import crnn
    >>> m = crnn.metrics.CategoricalAccuracy()
    >>> m.update_state([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
    >>> m.result()
    0.5
    """

    direction = "up"

    def __init__(self, name: str = "categorical_accuracy") -> None:
        super().__init__(name)

    def _values(self, y_true, y_pred):
        return categorical_accuracy(y_true, y_pred)


class SparseCategoricalAccuracy(Metric):
    """How often ``argmax(y_pred)`` equals the integer label.

    Args:
        name: Defaults to ``"sparse_categorical_accuracy"``.

    Raises:
        ValueError: If ``name`` is not a non-empty string.

    Example:

    >>> import crnn
    >>> m = crnn.metrics.SparseCategoricalAccuracy()
    >>> m.update_state([[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]])
    >>> m.result()
    0.5
    """

    direction = "up"

    def __init__(self, name: str = "sparse_categorical_accuracy") -> None:
        super().__init__(name)

    def _values(self, y_true, y_pred):
        return sparse_categorical_accuracy(y_true, y_pred)


def _accuracy_kind(y_true, y_pred):
    # Keras 3's compile_utils.is_binary_or_sparse_categorical.
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    t_last = y_true.shape[-1] if y_true.ndim else 1
    p_last = y_pred.shape[-1] if y_pred.ndim else 1
    if p_last == 1:
        return "binary"
    if y_true.ndim < y_pred.ndim or (t_last == 1 and p_last > 1):
        return "sparse"
    return "categorical"


class Accuracy(Metric):
    """``"accuracy"``/``"acc"``: binary, categorical or sparse, chosen on first use.

    The kind is chosen from the first batch's shapes with Keras 3's rule (see
    the module docstring) and kept for the metric's lifetime (``reset_state``
    does not forget it), as Keras builds the metric once.

    Args:
        name: The log key, usually ``"accuracy"`` or ``"acc"``. Defaults to
            ``"accuracy"``.
        kind: ``"binary"``, ``"categorical"`` or ``"sparse"`` to fix the kind up
            front. Defaults to None (chosen from the first batch).

    Attributes:
        kind: The chosen kind, or ``None`` before the first batch.

    Raises:
        ValueError: If ``kind`` is not one of the above or None, or ``name`` is
            not a non-empty string.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> m = crnn.metrics.Accuracy()
    >>> m.update_state(np.array([0, 2]), np.array([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5]]))
    >>> m.kind, m.result()
    ('sparse', 1.0)
    """

    direction = "up"
    _FUNCTIONS = {
        "binary": binary_accuracy,
        "categorical": categorical_accuracy,
        "sparse": sparse_categorical_accuracy,
    }

    def __init__(self, name: str = "accuracy", kind: str | None = None) -> None:
        if kind is not None and kind not in self._FUNCTIONS:
            raise ValueError(
                f"Argument `kind` must be one of {sorted(self._FUNCTIONS)} or None. Received: kind={kind!r}."
            )
        self.kind = kind
        super().__init__(name)

    def _values(self, y_true, y_pred):
        if self.kind is None:
            self.kind = _accuracy_kind(y_true, y_pred)
        return self._FUNCTIONS[self.kind](y_true, y_pred)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind}


class MeanAbsoluteError(Metric):
    """Mean absolute error (mean over the last axis, running mean over samples).

    Args:
        name: Defaults to ``"mean_absolute_error"`` (``get("mae")`` names it "mae").

    Raises:
        ValueError: If ``name`` is not a non-empty string.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> m = crnn.metrics.MeanAbsoluteError()
    >>> m.update_state(np.array([[0.0, 1.0], [0.0, 0.0]]), np.array([[1.0, 1.0], [1.0, 0.0]]))
    >>> m.result()
    0.5
    """

    def __init__(self, name: str = "mean_absolute_error") -> None:
        super().__init__(name)

    def _values(self, y_true, y_pred):
        return mean_absolute_error(y_true, y_pred)


class MeanSquaredError(Metric):
    """Mean squared error (mean over the last axis, running mean over samples).

    Args:
        name: Defaults to ``"mean_squared_error"`` (``get("mse")`` names it "mse").

    Raises:
        ValueError: If ``name`` is not a non-empty string.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> m = crnn.metrics.MeanSquaredError()
    >>> m.update_state(np.array([[0.0, 1.0], [0.0, 0.0]]), np.array([[2.0, 1.0], [1.0, 0.0]]))
    >>> m.result()
    1.25
    """

    def __init__(self, name: str = "mean_squared_error") -> None:
        super().__init__(name)

    def _values(self, y_true, y_pred):
        return mean_squared_error(y_true, y_pred)


class RootMeanSquaredError(Metric):
    """``sqrt`` of the running mean of squared errors (Keras's ``RootMeanSquaredError``).

    Args:
        name: Defaults to ``"root_mean_squared_error"``.

    Raises:
        ValueError: If ``name`` is not a non-empty string.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> m = crnn.metrics.RootMeanSquaredError()
    >>> m.update_state(np.array([[0.0, 1.0]]), np.array([[1.0, 1.0]]))
    >>> round(m.result(), 6)
    0.707107
    """

    def __init__(self, name: str = "root_mean_squared_error") -> None:
        super().__init__(name)

    def _values(self, y_true, y_pred):
        y_true, y_pred = _squeeze_or_expand(y_true, y_pred)
        return np.square(y_pred.astype(np.float64) - y_true)

    def result(self) -> float:
        """Returns the square root of the running mean of squared errors.

        Returns:
            A Python float (0.0 before any update).
        """
        return float(np.sqrt(super().result()))


def mean_absolute_percentage_error(y_true, y_pred):
    """``100 * mean(|y_true - y_pred| / max(|y_true|, 1e-7))`` over the last axis."""
    y_true, y_pred = _squeeze_or_expand(np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64))
    diff = np.abs((y_true - y_pred) / np.maximum(np.abs(y_true), 1e-7))
    return 100.0 * np.mean(diff, axis=-1)


class MeanAbsolutePercentageError(Metric):
    """Mean absolute percentage error (Keras's ``MeanAbsolutePercentageError``).

    Per position: ``100 * mean(|y_true - y_pred| / max(|y_true|, 1e-7))`` over
    the last axis.

    Args:
        name: Defaults to ``"mean_absolute_percentage_error"``.

    Raises:
        ValueError: If ``name`` is not a non-empty string.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> m = crnn.metrics.MeanAbsolutePercentageError()
    >>> m.update_state(np.array([[2.0, 4.0]]), np.array([[1.0, 5.0]]))
    >>> m.result()
    37.5
    """

    def __init__(self, name: str = "mean_absolute_percentage_error") -> None:
        super().__init__(name)

    def _values(self, y_true, y_pred):
        return mean_absolute_percentage_error(y_true, y_pred)


def _in_top_k(targets, predictions, k):
    """TensorFlow's ``in_top_k``: the target's score has fewer than ``k`` strictly larger scores
    (ties at the boundary count as in); non-finite target scores are never in."""
    predictions = np.asarray(predictions, np.float64)
    target_scores = np.take_along_axis(predictions, targets[:, None], axis=1)
    larger = np.sum(predictions > target_scores, axis=1)
    return (larger < k) & np.isfinite(target_scores[:, 0])


def _check_k(k):
    if not is_int(k, minimum=1):
        raise ValueError(f"Argument `k` must be a positive int. Received: k={k!r}.")
    return int(k)


class _TopK(Metric):
    """Base of the top-``k`` accuracies: how often the target is among the ``k`` highest
    predictions."""

    direction = "up"

    def __init__(self, k: int, name: str) -> None:
        self.k = _check_k(k)
        super().__init__(name)

    def _in_top_k(self, targets, y_pred):
        """1.0 where ``targets`` (class indices, ``y_pred``'s shape without its last axis) is
        in the top ``k`` of ``y_pred``, else 0.0."""
        flat = _in_top_k(targets.reshape(-1), y_pred.reshape(-1, y_pred.shape[-1]), self.k)
        return flat.reshape(targets.shape).astype(np.float64)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "k": self.k}


class TopKCategoricalAccuracy(_TopK):
    """How often the one-hot target is among the ``k`` highest predictions.

    A target whose score ties the ``k``-th highest counts as in the top ``k``
    (TensorFlow's ``in_top_k``); a non-finite target score never does.

    Args:
        k: Number of top predictions. Defaults to 5.
        name: Defaults to ``"top_k_categorical_accuracy"``.

    Raises:
        ValueError: If ``k`` is not a positive int or ``name`` is not a
            non-empty string.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> m = crnn.metrics.TopKCategoricalAccuracy(k=1)
    >>> m.update_state(np.array([[0, 0, 1], [0, 1, 0]]),
    ...                np.array([[0.1, 0.9, 0.8], [0.05, 0.95, 0]]))
    >>> m.result()
    0.5
    """

    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy") -> None:
        super().__init__(k, name)

    def _values(self, y_true, y_pred):
        return self._in_top_k(np.argmax(y_true, axis=-1), y_pred)


class SparseTopKCategoricalAccuracy(_TopK):
    """How often the integer target is among the ``k`` highest predictions.

    Ties count as in ``TopKCategoricalAccuracy``.

    Args:
        k: Number of top predictions. Defaults to 5.
        name: Defaults to ``"sparse_top_k_categorical_accuracy"``.

    Raises:
        ValueError: If ``k`` is not a positive int or ``name`` is not a
            non-empty string.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> m = crnn.metrics.SparseTopKCategoricalAccuracy(k=2)
    >>> m.update_state(np.array([2, 2]), np.array([[0.1, 0.9, 0.8], [0.05, 0.95, 0.0]]))
    >>> m.result()
    0.5
    """

    def __init__(self, k: int = 5, name: str = "sparse_top_k_categorical_accuracy") -> None:
        super().__init__(k, name)

    def _values(self, y_true, y_pred):
        y_true = np.asarray(y_true)
        if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
            y_true = y_true[..., 0]
        return self._in_top_k(y_true.astype(np.int64), y_pred)


def _check_thresholds(thresholds, default):
    if thresholds is None:
        return [default], False
    single = not isinstance(thresholds, (list, tuple, np.ndarray))
    values = [thresholds] if single else list(thresholds)
    for t in values:
        if not is_number(t) or not 0 <= t <= 1:
            raise ValueError(f"Threshold values must be in [0, 1]. Received: thresholds={thresholds!r}.")
    return [float(t) for t in values], not single


class _ConfusionCounts(Metric):
    """Weighted true/false positive/negative counts at each threshold (Keras's confusion
    metrics): a prediction above the threshold is a positive; a non-zero label is a positive."""

    direction = "up"

    def __init__(self, thresholds: list[float], top_k: int | None = None,
                 class_id: int | None = None, name: str | None = None) -> None:
        if top_k is not None and not is_int(top_k, minimum=1):
            raise ValueError(f"Argument `top_k` must be a positive int or None. Received: top_k={top_k!r}.")
        if class_id is not None and not is_int(class_id, minimum=0):
            raise ValueError(f"Argument `class_id` must be an int >= 0 or None. Received: class_id={class_id!r}.")
        self.top_k = top_k
        self.class_id = class_id
        self._thresholds = np.asarray(thresholds, dtype=np.float64)
        super().__init__(name)

    def reset_state(self) -> None:
        n = len(self._thresholds)
        self.true_positives = np.zeros(n)
        self.false_positives = np.zeros(n)
        self.true_negatives = np.zeros(n)
        self.false_negatives = np.zeros(n)

    def _prepare(self, y_pred):
        return y_pred

    def update_state(self, y_true: ArrayLike, y_pred: ArrayLike,
                     sample_weight: ArrayLike | None = None) -> None:
        """Adds one batch's counts.

        Args:
            y_true: Labels (non-zero is a positive), of ``y_pred``'s shape (a
                trailing axis of size 1 may differ).
            y_pred: Predictions (a value above a threshold is a positive).
            sample_weight: Optional weights of each sample's counts (one per
                sample, or per element). Defaults to None (all 1).

        Raises:
            ValueError: If ``y_true`` or ``y_pred`` is not numeric, the shapes
                differ, ``sample_weight`` does not broadcast to ``y_pred``, or
                ``class_id`` is out of range for ``y_pred``'s last axis.
        """
        y_true = _to_array(y_true, "y_true").astype(np.float64)
        y_pred = self._prepare(_to_array(y_pred, "y_pred").astype(np.float64))
        y_pred, y_true = _squeeze_or_expand(y_pred, y_true)
        if y_true.shape != y_pred.shape:
            raise ValueError(
                f"`y_true` and `y_pred` must have the same shape. Received: y_true.shape={y_true.shape}, "
                f"y_pred.shape={y_pred.shape}."
            )
        weights = np.ones_like(y_pred)
        if sample_weight is not None:
            sw = np.asarray(sample_weight, dtype=np.float64)
            _, sw = _squeeze_or_expand(y_true, sw[..., None] if sw.ndim else sw)
            try:
                weights = np.broadcast_to(sw, y_pred.shape)
            except ValueError:
                raise ValueError(
                    f"`sample_weight` of shape {np.shape(sample_weight)} does not broadcast to "
                    f"y_pred's shape {y_pred.shape}."
                ) from None
        if self.top_k is not None:
            order = np.argsort(-y_pred, axis=-1, kind="stable")[..., : self.top_k]
            keep = np.zeros(y_pred.shape, dtype=bool)
            np.put_along_axis(keep, order, True, axis=-1)
            y_pred = np.where(keep, y_pred, -np.inf)
        if self.class_id is not None:
            if y_pred.ndim < 2 or self.class_id >= y_pred.shape[-1]:
                raise ValueError(
                    f"class_id={self.class_id} needs y_pred of shape (samples, classes) with more than "
                    f"{self.class_id} classes; received shape {y_pred.shape}."
                )
            y_true, y_pred = y_true[..., self.class_id], y_pred[..., self.class_id]
            weights = weights[..., self.class_id]
        self._count(y_true, y_pred, weights)

    def _count(self, y_true, y_pred, weights):
        labels = y_true.reshape(-1) != 0
        preds = y_pred.reshape(-1)
        w = weights.reshape(-1)
        above = preds[None, :] > self._thresholds[:, None]
        self.true_positives += (above & labels) @ w
        self.false_positives += (above & ~labels) @ w
        self.false_negatives += (~above & labels) @ w
        self.true_negatives += (~above & ~labels) @ w


class _ThresholdCounts(_ConfusionCounts):
    """Base of ``Precision`` and ``Recall``: the counts at the ``thresholds`` given (0.5 by
    default, or every one of the ``top_k`` predictions)."""

    def __init__(self, thresholds: float | list[float] | None, top_k: int | None,
                 class_id: int | None, name: str) -> None:
        values, self._many = _check_thresholds(thresholds, 0.5 if top_k is None else -np.inf)
        self._config_thresholds = thresholds
        super().__init__(values, top_k, class_id, name)

    def _per_threshold(self, num, den):
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)
        return float(out[0]) if not self._many else out

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "thresholds": self._config_thresholds, "top_k": self.top_k,
                "class_id": self.class_id}


class Precision(_ThresholdCounts):
    """``true_positives / (true_positives + false_positives)`` (Keras's ``Precision``).

    Args:
        thresholds: Float in [0, 1] or a list of them; a prediction above it is
            a positive. With a list (or tuple, or array), ``result()`` is an array
            with one value per threshold. Defaults to None: 0.5, or with
            ``top_k`` no threshold (each of the ``top_k`` predictions is a
            positive).
        top_k: Only the ``top_k`` highest predictions of each sample count as
            candidates. Defaults to None.
        class_id: Only this class (last axis) is evaluated. Defaults to None.
        name: Defaults to ``"precision"``.

    Raises:
        ValueError: If a threshold is not a number in [0, 1], ``top_k`` is not
            a positive int, ``class_id`` is not an int >= 0, or ``name`` is not a
            non-empty string.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> m = crnn.metrics.Precision()
    >>> m.update_state(np.array([0, 1, 1, 1]), np.array([1.0, 1.0, 1.0, 0.0]))
    >>> round(m.result(), 6)
    0.666667
    """

    def __init__(self, thresholds: float | list[float] | None = None, top_k: int | None = None,
                 class_id: int | None = None, name: str = "precision") -> None:
        super().__init__(thresholds, top_k, class_id, name)

    def result(self) -> float | np.ndarray:
        """Returns the precision at each threshold.

        Returns:
            A Python float, or an array with one value per threshold when
            ``thresholds`` was a list; 0.0 where nothing was predicted positive.
        """
        return self._per_threshold(self.true_positives, self.true_positives + self.false_positives)


class Recall(_ThresholdCounts):
    """``true_positives / (true_positives + false_negatives)`` (Keras's ``Recall``).

    Args:
        thresholds: Float in [0, 1] or a list of them (see ``Precision``).
            Defaults to None: 0.5, or with ``top_k`` no threshold.
        top_k: Only the ``top_k`` highest predictions of each sample count as
            candidates. Defaults to None.
        class_id: Only this class (last axis) is evaluated. Defaults to None.
        name: Defaults to ``"recall"``.

    Raises:
        ValueError: If a threshold is not a number in [0, 1], ``top_k`` is not
            a positive int, ``class_id`` is not an int >= 0, or ``name`` is not a
            non-empty string.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> m = crnn.metrics.Recall()
    >>> m.update_state(np.array([0, 1, 1, 1]), np.array([1.0, 0.0, 1.0, 1.0]))
    >>> round(m.result(), 6)
    0.666667
    """

    def __init__(self, thresholds: float | list[float] | None = None, top_k: int | None = None,
                 class_id: int | None = None, name: str = "recall") -> None:
        super().__init__(thresholds, top_k, class_id, name)

    def result(self) -> float | np.ndarray:
        """Returns the recall at each threshold.

        Returns:
            A Python float, or an array with one value per threshold when
            ``thresholds`` was a list; 0.0 where no label was positive.
        """
        return self._per_threshold(self.true_positives, self.true_positives + self.false_negatives)


class AUC(_ConfusionCounts):
    """Area under the ROC or precision-recall curve, from confusion counts at thresholds.

    Keras's ``AUC``. With ``multi_label=False`` (default) predictions and labels are
    flattened into one curve; with ``multi_label=True`` they must be
    ``(samples, labels)`` and each label gets its own curve, the result being the mean
    of the labels' AUCs (weighted by ``label_weights`` when given). The thresholds
    are ``num_thresholds`` evenly spaced points with ``-1e-7`` and ``1 + 1e-7`` as end
    points, or the given ``thresholds`` plus those end points.

    Args:
        num_thresholds: Int > 1. Defaults to 200.
        curve: ``"ROC"`` (default) or ``"PR"``.
        summation_method: ``"interpolation"`` (default; for PR, Davis and
            Goadrich's interpolation, as Keras), ``"minoring"`` or ``"majoring"``.
        name: Defaults to ``"auc"``.
        dtype: Ignored (accepted for Keras compatibility; counts are kept in
            float64). Defaults to None.
        thresholds: Optional list of thresholds in [0, 1] (overrides
            ``num_thresholds``). Defaults to None.
        multi_label: One curve per label (column) instead of one over all values.
            Defaults to False.
        num_labels: The number of labels with ``multi_label=True`` (otherwise taken
            from the first batch). Defaults to None.
        label_weights: Non-negative weights, one per label: with ``multi_label=True``
            the weights of the labels' AUCs in their average; otherwise they weight
            each label's counts (as Keras). Defaults to None.
        from_logits: Whether ``y_pred`` are logits (a sigmoid is applied first).
            Defaults to False.

    Raises:
        ValueError: For bad arguments: ``num_labels`` without ``multi_label=True``
            or not a positive int, ``label_weights`` not a 1-d list of
            non-negative numbers (or not ``num_labels`` long), an unknown
            ``curve`` or ``summation_method``, ``num_thresholds`` not an int > 1,
            a threshold outside [0, 1], or ``name`` not a non-empty string.
            When updated: for ``multi_label`` data that is not 2-d or has
            another number of labels, or ``label_weights`` that do not match the
            number of labels (besides ``Precision.update_state``'s errors).

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> m = crnn.metrics.AUC()
    >>> m.update_state(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    >>> round(m.result(), 4)
    0.75
    """

    def __init__(
        self,
        num_thresholds: int = 200,
        curve: str = "ROC",
        summation_method: str = "interpolation",
        name: str = "auc",
        dtype: Any = None,
        thresholds: list[float] | None = None,
        multi_label: bool = False,
        num_labels: int | None = None,
        label_weights: ArrayLike | None = None,
        from_logits: bool = False,
    ) -> None:
        if num_labels is not None and not multi_label:
            raise ValueError(
                f"`num_labels` is needed only when `multi_label` is True. Received: num_labels={num_labels!r}, "
                f"multi_label={multi_label!r}."
            )
        if num_labels is not None and not is_int(num_labels, minimum=1):
            raise ValueError(
                f"Argument `num_labels` must be a positive int or None. Received: num_labels={num_labels!r}."
            )
        if label_weights is not None:
            try:
                lw = np.asarray(label_weights, dtype=np.float64)
            except (TypeError, ValueError):
                lw = None
            if lw is None or lw.ndim != 1 or not lw.size or not np.all(np.isfinite(lw)) or np.any(lw < 0):
                raise ValueError(
                    "Argument `label_weights` must be a 1-d list of non-negative numbers, one per label. "
                    f"Received: label_weights={label_weights!r}."
                )
            if num_labels is not None and lw.size != num_labels:
                raise ValueError(
                    f"`label_weights` has {lw.size} entries but num_labels={num_labels}. "
                    f"Received: label_weights={label_weights!r}."
                )
            label_weights = lw
        self.multi_label = bool(multi_label)
        self.num_labels = None if num_labels is None else int(num_labels)
        self.label_weights = label_weights
        if str(curve).upper() not in ("ROC", "PR"):
            raise ValueError(f'Argument `curve` must be "ROC" or "PR". Received: curve={curve!r}.')
        if str(summation_method).lower() not in ("interpolation", "minoring", "majoring"):
            raise ValueError(
                "Argument `summation_method` must be 'interpolation', 'minoring' or 'majoring'. "
                f"Received: summation_method={summation_method!r}."
            )
        if thresholds is not None:
            inner = sorted(_check_thresholds(list(thresholds), 0.5)[0])
            num_thresholds = len(inner) + 2
        else:
            if not is_int(num_thresholds, minimum=2):
                raise ValueError(
                    f"Argument `num_thresholds` must be an integer > 1. Received: num_thresholds={num_thresholds!r}."
                )
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        self.num_thresholds = int(num_thresholds)
        self.curve = str(curve).upper()
        self.summation_method = str(summation_method).lower()
        self.from_logits = bool(from_logits)
        self._given_thresholds = None if thresholds is None else [float(t) for t in thresholds]
        super().__init__([0.0 - 1e-7] + inner + [1.0 + 1e-7], name=name)

    @property
    def thresholds(self) -> list[float]:
        """The thresholds, end points included."""
        return self._thresholds.tolist()

    def _prepare(self, y_pred):
        return 1.0 / (1.0 + np.exp(-y_pred)) if self.from_logits else y_pred

    def reset_state(self) -> None:
        if not self.multi_label:
            return super().reset_state()
        shape = None if self.num_labels is None else (len(self._thresholds), self.num_labels)
        shape = getattr(self, "_count_shape", None) or shape
        zeros = (lambda: None) if shape is None else (lambda: np.zeros(shape))
        self.true_positives, self.false_positives = zeros(), zeros()
        self.true_negatives, self.false_negatives = zeros(), zeros()

    def _count(self, y_true, y_pred, weights):
        lw = self.label_weights
        if lw is not None and lw.size != y_pred.shape[-1]:
            raise ValueError(
                f"`label_weights` has {lw.size} entries but y_pred has {y_pred.shape[-1]} labels "
                f"(shape {y_pred.shape})."
            )
        if not self.multi_label:
            return super()._count(y_true, y_pred, weights if lw is None else weights * lw)
        expected = self.num_labels if self.true_positives is None else self.true_positives.shape[1]
        if y_pred.ndim != 2 or (expected is not None and y_pred.shape[1] != expected):
            raise ValueError(
                "`y_pred` must have shape (samples, labels) when `multi_label=True`"
                + (f", with {expected} labels" if expected is not None else "")
                + f". Received: y_pred.shape={y_pred.shape}."
            )
        if self.true_positives is None:
            self._count_shape = (len(self._thresholds), y_pred.shape[1])
            self.reset_state()
        labels = y_true != 0
        above = y_pred[None, :, :] > self._thresholds[:, None, None]
        self.true_positives += np.einsum("tnl,nl->tl", above & labels, weights)
        self.false_positives += np.einsum("tnl,nl->tl", above & ~labels, weights)
        self.false_negatives += np.einsum("tnl,nl->tl", ~above & labels, weights)
        self.true_negatives += np.einsum("tnl,nl->tl", ~above & ~labels, weights)

    def _average(self, per_label):
        """One AUC from the per-threshold increments (summed over thresholds, then over
        labels as Keras: plain or ``label_weights``-weighted mean)."""
        by_label = np.sum(per_label, axis=0)
        if not self.multi_label:
            return float(by_label)
        if self.label_weights is None:
            return float(np.mean(by_label))
        total = float(np.sum(self.label_weights))
        return float(np.sum(by_label * self.label_weights)) / total if total else 0.0

    def _interpolate_pr_auc(self):
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        with np.errstate(divide="ignore", invalid="ignore"):
            dtp = tp[:-1] - tp[1:]
            p = tp + fp
            dp = np.maximum(p[:-1] - p[1:], 0)
            slope = np.where(dp > 0, dtp / np.where(dp > 0, dp, 1), 0.0)
            intercept = tp[1:] - slope * p[1:]
            ratio = np.where((p[:-1] > 0) & (p[1:] > 0), p[:-1] / np.where(p[1:] > 0, p[1:], 1), 1.0)
            den = np.maximum(tp[1:] + fn[1:], 0)
            num = slope * (dtp + intercept * np.log(ratio))
            return self._average(np.where(den > 0, num / np.where(den > 0, den, 1), 0.0))

    def result(self) -> float:
        """Returns the area under the curve.

        Returns:
            A Python float: with ``multi_label=True`` the (weighted) mean of the
            labels' AUCs; 0.0 before any update with ``multi_label=True``.
        """
        if self.true_positives is None:         # multi_label, no batch seen yet
            return 0.0
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolate_pr_auc()
        tp, fp, tn, fn = self.true_positives, self.false_positives, self.true_negatives, self.false_negatives

        def ratio(a, b):
            return np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)

        recall = ratio(tp, tp + fn)
        if self.curve == "ROC":
            x, y = ratio(fp, fp + tn), recall
        else:
            x, y = recall, ratio(tp, tp + fp)
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return self._average((x[:-1] - x[1:]) * heights)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "num_thresholds": self.num_thresholds, "curve": self.curve,
                "summation_method": self.summation_method, "thresholds": self._given_thresholds,
                "multi_label": self.multi_label, "num_labels": self.num_labels,
                "label_weights": None if self.label_weights is None else self.label_weights.tolist(),
                "from_logits": self.from_logits}


_CLASSES = {
    cls.__name__: cls
    for cls in (
        Mean,
        Accuracy,
        BinaryAccuracy,
        CategoricalAccuracy,
        SparseCategoricalAccuracy,
        MeanAbsoluteError,
        MeanSquaredError,
        RootMeanSquaredError,
        MeanAbsolutePercentageError,
        TopKCategoricalAccuracy,
        SparseTopKCategoricalAccuracy,
        Precision,
        Recall,
        AUC,
    )
}
_NAMES = {
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mape": MeanAbsolutePercentageError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "root_mean_squared_error": RootMeanSquaredError,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "precision": Precision,
    "recall": Recall,
    "auc": AUC,
}


def serialize(metric: Metric) -> dict[str, Any]:
    """Returns a built-in metric's class name and configuration.

    Args:
        metric: An instance of one of crnn's built-in metric classes (not a
            ``MeanMetricWrapper`` or a custom subclass).

    Returns:
        ``{"class_name": ..., "config": metric.get_config()}``.

    Raises:
        ValueError: If ``metric`` is not an instance of a built-in metric class.

    Example:

    >>> import crnn
    >>> crnn.metrics.serialize(crnn.metrics.BinaryAccuracy(threshold=0.7))
    {'class_name': 'BinaryAccuracy', 'config': {'name': 'binary_accuracy', 'threshold': 0.7}}
    """
    if not isinstance(metric, Metric) or type(metric) not in _CLASSES.values():
        raise ValueError(f"Expected one of crnn's built-in metrics. Received: {metric!r}.")
    return class_config(metric)


def deserialize(config: dict[str, Any]) -> Metric:
    """Creates a metric from ``serialize``'s output.

    Args:
        config: Dict with ``"class_name"`` (a built-in class name such as
            ``"AUC"``) and optionally ``"config"`` (constructor arguments).

    Returns:
        A new ``Metric``, with no values seen.

    Raises:
        ValueError: If ``config`` is not a dict with a ``"class_name"``, the
            class name is unknown, or a constructor argument is invalid.
        TypeError: If ``"config"`` has a key the constructor does not take.

    Example:

    >>> import crnn
    >>> m = crnn.metrics.deserialize({"class_name": "TopKCategoricalAccuracy",
    ...                               "config": {"k": 3}})
    >>> m.name, m.k
    ('top_k_categorical_accuracy', 3)
    """
    return from_class_config(config, "metric", _CLASSES)


def get(identifier: str | dict[str, Any] | Metric | type[Metric], loss: Any = None) -> Metric:
    """Returns a metric from a name, a config dict or an instance.

    Args:
        identifier: ``"accuracy"``/``"acc"`` (any case; kind chosen from the
            first batch's shapes, as Keras 3 does), ``"binary_accuracy"``,
            ``"categorical_accuracy"``, ``"sparse_categorical_accuracy"``,
            ``"mae"``/``"mean_absolute_error"``, ``"mse"``/``"mean_squared_error"``,
            ``"mape"``/``"mean_absolute_percentage_error"``,
            ``"root_mean_squared_error"``, ``"top_k_categorical_accuracy"``,
            ``"sparse_top_k_categorical_accuracy"``, ``"precision"``,
            ``"recall"``, ``"auc"`` or a class name (``"AUC"``), each giving the
            class with its defaults; a ``{"class_name", "config"}`` dict (see
            ``deserialize``); a ``Metric`` subclass (created with its defaults);
            or a ``Metric`` instance (returned unchanged). A string keeps its
            spelling as the metric's name (the log key), as in Keras.
        loss: Optional compiled loss. Keras 3 ignores the loss when resolving
            "accuracy" and so does crnn; the argument exists so that callers can
            pass it without knowing that.

    Returns:
        A ``Metric``.

    Raises:
        ValueError: If the identifier is not recognized.

    Example:

    >>> import crnn
    >>> crnn.metrics.get("acc").name
    'acc'
    >>> crnn.metrics.get("mse")
    MeanSquaredError(name='mse')
    """
    del loss  # Keras 3 resolves "accuracy" from shapes only (see module docstring).
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier.lower() in ("accuracy", "acc"):
            return Accuracy(name=identifier)
        cls = _NAMES.get(identifier) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(
                f"Unknown metric: {identifier!r}. Known names: {sorted(_NAMES) + ['accuracy', 'acc']}."
            )
        return cls(name=identifier)
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    raise ValueError(
        f"Could not interpret metric identifier: {identifier!r}. Pass a name such as 'accuracy' "
        "or 'mae', a config dict or a Metric instance."
    )
