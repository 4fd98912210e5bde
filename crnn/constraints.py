"""Weight constraints with Keras 3's formulas: ``MaxNorm``, ``NonNeg``, ``UnitNorm``,
``MinMaxNorm`` (and the ``max_norm``, ``non_neg``, ``unit_norm``, ``min_max_norm`` spellings).

``fit`` applies a layer's constraints to its weights after every optimizer update, as Keras
does (``w = constraint(w)``). The norms are taken over ``axis`` (0: each column of a
``Dense`` kernel, i.e. the incoming weights of each unit), with Keras's 1e-7 epsilon.
"""

import numpy as np

from crnn._validation import is_number

__all__ = ["Constraint", "MaxNorm", "NonNeg", "UnitNorm", "MinMaxNorm", "max_norm", "non_neg",
           "unit_norm", "min_max_norm", "get", "serialize", "deserialize"]

_EPSILON = 1e-7


def _check(name, value, minimum=0.0):
    if not is_number(value) or not np.isfinite(value) or value < minimum:
        raise ValueError(f"Argument `{name}` must be a float >= {minimum}. Received: {name}={value!r}.")
    return float(value)


def _norms(w, axis):
    axis = tuple(axis) if isinstance(axis, (list, tuple)) else axis
    return np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True))


class Constraint:
    """Base class: ``constraint(w)`` returns the projected weights."""

    def __call__(self, w):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        """Creates the constraint from ``get_config()``'s output."""
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class MaxNorm(Constraint):
    """Scales weights whose norm along ``axis`` exceeds ``max_value`` down to it.

    Args:
        max_value: largest norm. Defaults to 2.
        axis: axis (or axes) of the norm. Defaults to 0.

    Example:

    >>> MaxNorm(1.0)(np.array([[3.0], [4.0]])).round(6).tolist()
    [[0.6], [0.8]]
    """

    def __init__(self, max_value=2, axis=0):
        self.max_value = _check("max_value", max_value)
        self.axis = axis

    def __call__(self, w):
        dt = w.dtype.type
        norms = _norms(w, self.axis)
        desired = np.clip(norms, 0, dt(self.max_value))
        return w * (desired / (dt(_EPSILON) + norms))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Sets negative weights to zero.

    Example:

    >>> NonNeg()(np.array([-1.0, 2.0])).tolist()     # -0.0, as Keras (w * (w >= 0))
    [-0.0, 2.0]
    """

    def __call__(self, w):
        return w * (w >= 0).astype(w.dtype)


class UnitNorm(Constraint):
    """Scales the weights to norm 1 along ``axis``.

    Args:
        axis: axis (or axes) of the norm. Defaults to 0.

    Example:

    >>> UnitNorm()(np.array([[3.0], [4.0]])).round(6).tolist()
    [[0.6], [0.8]]
    """

    def __init__(self, axis=0):
        self.axis = axis

    def __call__(self, w):
        return w / (w.dtype.type(_EPSILON) + _norms(w, self.axis))

    def get_config(self):
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Moves the norm along ``axis`` into ``[min_value, max_value]``, by a fraction ``rate``.

    Args:
        min_value: smallest norm. Defaults to 0.0.
        max_value: largest norm. Defaults to 1.0.
        rate: 1.0 projects fully; smaller values move part of the way. Defaults to 1.0.
        axis: axis (or axes) of the norm. Defaults to 0.

    Example:

    >>> MinMaxNorm(1.0, 2.0)(np.array([[0.3], [0.4]])).round(6).tolist()
    [[0.6], [0.8]]
    """

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value = _check("min_value", min_value)
        self.max_value = _check("max_value", max_value, self.min_value)
        self.rate = _check("rate", rate)
        self.axis = axis

    def __call__(self, w):
        dt = w.dtype.type
        norms = _norms(w, self.axis)
        desired = dt(self.rate) * np.clip(norms, dt(self.min_value), dt(self.max_value)) \
            + (dt(1) - dt(self.rate)) * norms
        return w * (desired / (dt(_EPSILON) + norms))

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": self.axis}


max_norm = MaxNorm
non_neg = NonNeg
unit_norm = UnitNorm
min_max_norm = MinMaxNorm

_CLASSES = {cls.__name__: cls for cls in (MaxNorm, NonNeg, UnitNorm, MinMaxNorm)}
_NAMES = {"max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm, "min_max_norm": MinMaxNorm}


def serialize(constraint):
    """Keras's ``{"module", "class_name", "config", "registered_name"}`` form (None for None)."""
    if constraint is None:
        return None
    return {"module": "keras.constraints", "class_name": type(constraint).__name__,
            "config": constraint.get_config(), "registered_name": None}


def deserialize(config):
    """Creates a constraint from ``serialize``'s output."""
    name = config.get("class_name") if isinstance(config, dict) else None
    cls = _CLASSES.get(name)
    if cls is None:
        raise ValueError(f"Unknown constraint {name!r}; known: {sorted(_CLASSES)}.")
    return cls.from_config(dict(config.get("config") or {}))


def get(identifier):
    """A constraint from None, a name (``"max_norm"``, ``"non_neg"``...), a config dict or an
    instance.

    Example:

    >>> get("non_neg")
    NonNeg()
    """
    if identifier is None or isinstance(identifier, Constraint):
        return identifier
    if isinstance(identifier, str):
        cls = _NAMES.get(identifier.lower()) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(f"Unknown constraint {identifier!r}; known names: {sorted(_NAMES)}.")
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(f"Could not interpret constraint identifier: {identifier!r}.")
