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

>>> m = get("mae")
>>> m.update_state(np.array([[1.0], [2.0]]), np.array([[1.5], [2.0]]))
>>> m.result()
0.25
>>> m.name
'mae'
"""

import numpy as np

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


class Metric:
    """Base class: a running mean of per-sample values.

    Subclasses implement ``_values(y_true, y_pred)`` returning per-position values.

    Args:
        name: Key of the metric in the logs.

    Attributes:
        name: The log key.
        direction: ``"up"`` if larger is better, ``"down"`` otherwise (used by
            ``EarlyStopping``/``ModelCheckpoint`` in ``mode="auto"``).
    """

    direction = "down"

    def __init__(self, name):
        if not isinstance(name, str) or not name:
            raise ValueError(f"Argument `name` must be a non-empty string. Received: name={name!r}.")
        self.name = name
        self.reset_state()

    def reset_state(self):
        """Forgets every value seen so far."""
        self.total = 0.0
        self.count = 0

    def _accumulate(self, values):
        values = _per_sample(values)
        self.total += float(np.sum(values))
        self.count += int(values.size) if values.ndim else 1

    def update_state(self, y_true, y_pred):
        """Adds one batch.

        Args:
            y_true: Targets of the batch.
            y_pred: Predictions of the batch.
        """
        self._accumulate(self._values(_to_array(y_true, "y_true"), _to_array(y_pred, "y_pred")))

    def _values(self, y_true, y_pred):
        raise NotImplementedError

    def result(self):
        """Returns the running mean as a Python float (0.0 before any update)."""
        return self.total / self.count if self.count else 0.0

    def get_config(self):
        """Returns the constructor arguments as a JSON-serializable dict."""
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        """Creates a metric from ``get_config()``'s output."""
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

    Example:

    >>> m = Mean()
    >>> m.update_state(1.0, sample_weight=3)
    >>> m.update_state(2.0, sample_weight=1)
    >>> m.result()
    1.25
    """

    def __init__(self, name="mean"):
        super().__init__(name)

    def update_state(self, values, sample_weight=None):
        """Adds values.

        Args:
            values: Scalar or array; arrays count one sample per first-axis entry.
            sample_weight: Optional scalar weight for a scalar value (e.g. the
                number of samples a batch mean covers).
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

    Args:
        fn: Function returning an array of values.
        name: Log key.
        direction: ``"up"`` or ``"down"``.
    """

    def __init__(self, fn, name, direction="down"):
        self._fn = fn
        self.direction = direction
        super().__init__(name)

    def _values(self, y_true, y_pred):
        return self._fn(y_true, y_pred)

    def get_config(self):
        raise NotImplementedError("MeanMetricWrapper around an arbitrary function cannot be serialized.")


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """Per-element 1.0 where ``(y_pred > threshold)`` equals ``y_true``, else 0.0."""
    y_true, y_pred = _squeeze_or_expand(np.asarray(y_true), np.asarray(y_pred))
    if y_true.shape != y_pred.shape:
        raise ValueError(
            "binary accuracy: `y_true` and `y_pred` must have the same shape. Received: "
            f"y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}."
        )
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
    y_true, y_pred = _squeeze_or_expand(np.asarray(y_true), np.asarray(y_pred))
    if y_true.shape != y_pred.shape:
        raise ValueError(
            "mean_absolute_error: `y_true` and `y_pred` must have the same shape. Received: "
            f"y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}."
        )
    return np.mean(np.abs(y_pred.astype(np.float64) - y_true), axis=-1)


def mean_squared_error(y_true, y_pred):
    """Mean of ``(y_true - y_pred)**2`` over the last axis."""
    y_true, y_pred = _squeeze_or_expand(np.asarray(y_true), np.asarray(y_pred))
    if y_true.shape != y_pred.shape:
        raise ValueError(
            "mean_squared_error: `y_true` and `y_pred` must have the same shape. Received: "
            f"y_true.shape={y_true.shape}, y_pred.shape={y_pred.shape}."
        )
    return np.mean(np.square(y_pred.astype(np.float64) - y_true), axis=-1)


class BinaryAccuracy(Metric):
    """How often ``y_pred > threshold`` matches the 0/1 target.

    Args:
        name: Defaults to ``"binary_accuracy"``.
        threshold: Defaults to 0.5.

    Example:

    >>> m = BinaryAccuracy()
    >>> m.update_state([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]])
    >>> m.result()
    0.75
    """

    direction = "up"

    def __init__(self, name="binary_accuracy", threshold=0.5):
        self.threshold = float(threshold)
        super().__init__(name)

    def _values(self, y_true, y_pred):
        return binary_accuracy(y_true, y_pred, self.threshold)

    def get_config(self):
        return {"name": self.name, "threshold": self.threshold}


class CategoricalAccuracy(Metric):
    """How often ``argmax(y_pred)`` matches ``argmax(y_true)`` (one-hot targets).

    Args:
        name: Defaults to ``"categorical_accuracy"``.

    Example:

    >>> m = CategoricalAccuracy()
    >>> m.update_state([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
    >>> m.result()
    0.5
    """

    direction = "up"

    def __init__(self, name="categorical_accuracy"):
        super().__init__(name)

    def _values(self, y_true, y_pred):
        return categorical_accuracy(y_true, y_pred)


class SparseCategoricalAccuracy(Metric):
    """How often ``argmax(y_pred)`` equals the integer label.

    Args:
        name: Defaults to ``"sparse_categorical_accuracy"``.

    Example:

    >>> m = SparseCategoricalAccuracy()
    >>> m.update_state([[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]])
    >>> m.result()
    0.5
    """

    direction = "up"

    def __init__(self, name="sparse_categorical_accuracy"):
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
        name: ``"accuracy"`` (default) or ``"acc"``; the log key.
        kind: Optional ``"binary"``, ``"categorical"`` or ``"sparse"`` to fix the
            kind up front.

    Attributes:
        kind: The chosen kind, or ``None`` before the first batch.

    Example:

    >>> m = Accuracy()
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

    def __init__(self, name="accuracy", kind=None):
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

    def get_config(self):
        return {"name": self.name, "kind": self.kind}


class MeanAbsoluteError(Metric):
    """Mean absolute error (mean over the last axis, running mean over samples).

    Args:
        name: Defaults to ``"mean_absolute_error"`` (``get("mae")`` names it "mae").
    """

    def __init__(self, name="mean_absolute_error"):
        super().__init__(name)

    def _values(self, y_true, y_pred):
        return mean_absolute_error(y_true, y_pred)


class MeanSquaredError(Metric):
    """Mean squared error (mean over the last axis, running mean over samples).

    Args:
        name: Defaults to ``"mean_squared_error"`` (``get("mse")`` names it "mse").
    """

    def __init__(self, name="mean_squared_error"):
        super().__init__(name)

    def _values(self, y_true, y_pred):
        return mean_squared_error(y_true, y_pred)


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
}


def serialize(metric):
    """Returns ``{"class_name": ..., "config": {...}}`` for a metric."""
    if not isinstance(metric, Metric) or type(metric) not in _CLASSES.values():
        raise ValueError(f"Expected one of crnn's built-in metrics. Received: {metric!r}.")
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(config):
    """Creates a metric from ``serialize``'s output."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"Expected a dict with keys 'class_name' and 'config'. Received: {config!r}.")
    cls = _CLASSES.get(config["class_name"])
    if cls is None:
        raise ValueError(f"Unknown metric class_name={config['class_name']!r}. Known: {sorted(_CLASSES)}.")
    return cls.from_config(dict(config.get("config") or {}))


def get(identifier, loss=None):
    """Returns a metric from a name, a config dict or an instance.

    Args:
        identifier: ``"accuracy"``/``"acc"`` (kind chosen from the first batch's
            shapes, as Keras 3 does), ``"binary_accuracy"``,
            ``"categorical_accuracy"``, ``"sparse_categorical_accuracy"``,
            ``"mae"``/``"mean_absolute_error"``, ``"mse"``/``"mean_squared_error"``,
            a class name, a ``{"class_name", "config"}`` dict, or a ``Metric``
            instance (returned unchanged). A string keeps its spelling as the
            metric's name (the log key), as in Keras.
        loss: Optional compiled loss. Keras 3 ignores the loss when resolving
            "accuracy" and so does crnn; the argument exists so that callers can
            pass it without knowing that.

    Returns:
        A ``Metric``.

    Raises:
        ValueError: If the identifier is not recognized.

    Example:

    >>> get("acc").name
    'acc'
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
