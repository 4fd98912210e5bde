"""Weight constraints with Keras 3's formulas: ``MaxNorm``, ``NonNeg``, ``UnitNorm``,
``MinMaxNorm`` (and the ``max_norm``, ``non_neg``, ``unit_norm``, ``min_max_norm`` spellings).

``fit`` applies a layer's constraints to its weights after every optimizer update, as Keras
does (``w = constraint(w)``). The norms are taken over ``axis`` (0: each column of a
``Dense`` kernel, i.e. the incoming weights of each unit), with Keras's 1e-7 epsilon.

Example:

>>> import numpy as np
>>> import crnn
>>> layer = crnn.layers.Dense(4, kernel_constraint=crnn.constraints.MaxNorm(1.0))
>>> crnn.constraints.UnitNorm()(np.array([[3.0], [4.0]])).round(6).tolist()
[[0.6], [0.8]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from crnn._registry import KerasFamily, config_repr
from crnn._validation import is_number

__all__ = ["Constraint", "MaxNorm", "NonNeg", "UnitNorm", "MinMaxNorm", "max_norm", "non_neg",
           "unit_norm", "min_max_norm", "get", "serialize", "deserialize"]

_EPSILON = 1e-7


def _check(name, value, minimum=0.0):
    if not is_number(value) or not np.isfinite(value) or value < minimum:
        raise ValueError(
            f"Argument `{name}` must be a float >= {minimum}. Received: {name}={value!r}.")
    return float(value)


def _norms(w, axis):
    axis = tuple(axis) if isinstance(axis, (list, tuple)) else axis
    return np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True))


class Constraint:
    """Base class of the weight constraints: ``constraint(w)`` returns the projected weights.

    A subclass implements ``__call__(w)``, which takes a weight array and returns
    an array of the same shape and dtype, and ``get_config()`` if its constructor
    takes arguments (``from_config`` calls the constructor with them). Layers take
    constraints as ``kernel_constraint``, ``recurrent_constraint``,
    ``bias_constraint`` (and ``embeddings_constraint``); ``fit`` applies them after
    every optimizer update.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> class Clip(crnn.constraints.Constraint):
    ...     def __call__(self, w):
    ...         return np.clip(w, -1.0, 1.0)
    >>> Clip()(np.array([-2.0, 0.5])).tolist()
    [-1.0, 0.5]
    """

    def __call__(self, w: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """Returns the constructor arguments, for ``from_config`` and saving.

        Returns:
            A JSON-serializable dict (empty for a constraint without arguments).
        """
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Constraint:
        """Creates the constraint from ``get_config()``'s output.

        Args:
            config: Dict of constructor arguments.

        Returns:
            A new instance of this class.
        """
        return cls(**config)

    def __repr__(self):
        return config_repr(self)


class MaxNorm(Constraint):
    """Scales weights whose norm along ``axis`` exceeds ``max_value`` down to it.

    Computes ``w * clip(norms, 0, max_value) / (1e-7 + norms)``, as Keras does.
    ``max_norm`` is the same class.

    Args:
        max_value: Largest norm, a number >= 0. Defaults to 2.
        axis: Axis (or list of axes) of the norm. Defaults to 0.

    Raises:
        ValueError: If ``max_value`` is not a finite number >= 0.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> crnn.constraints.MaxNorm(1.0)(np.array([[3.0], [4.0]])).round(6).tolist()
    [[0.6], [0.8]]
    """

    def __init__(self, max_value: float = 2, axis: int | Sequence[int] = 0):
        self.max_value = _check("max_value", max_value)
        self.axis = axis

    def __call__(self, w: np.ndarray) -> np.ndarray:
        dt = w.dtype.type
        norms = _norms(w, self.axis)
        desired = np.clip(norms, 0, dt(self.max_value))
        return w * (desired / (dt(_EPSILON) + norms))

    def get_config(self) -> dict[str, Any]:
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Sets negative weights to zero.

    Computes ``w * (w >= 0)``, as Keras does (so a negative weight becomes
    ``-0.0``). ``non_neg`` is the same class.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> crnn.constraints.NonNeg()(np.array([-1.0, 2.0])).tolist()
    [-0.0, 2.0]
    """

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return w * (w >= 0).astype(w.dtype)


class UnitNorm(Constraint):
    """Scales the weights to norm 1 along ``axis``.

    Computes ``w / (1e-7 + norms)``, as Keras does. ``unit_norm`` is the same
    class.

    Args:
        axis: Axis (or list of axes) of the norm. Defaults to 0.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> crnn.constraints.UnitNorm()(np.array([[3.0], [4.0]])).round(6).tolist()
    [[0.6], [0.8]]
    """

    def __init__(self, axis: int | Sequence[int] = 0):
        self.axis = axis

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return w / (w.dtype.type(_EPSILON) + _norms(w, self.axis))

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Moves the norm along ``axis`` into ``[min_value, max_value]``, by a fraction ``rate``.

    Computes ``w * desired / (1e-7 + norms)`` with ``desired = rate *
    clip(norms, min_value, max_value) + (1 - rate) * norms``, as Keras does.
    ``min_max_norm`` is the same class.

    Args:
        min_value: Smallest norm, a number >= 0. Defaults to 0.0.
        max_value: Largest norm, a number >= ``min_value``. Defaults to 1.0.
        rate: 1.0 projects fully; smaller values move part of the way (a number
            >= 0). Defaults to 1.0.
        axis: Axis (or list of axes) of the norm. Defaults to 0.

    Raises:
        ValueError: If ``min_value`` or ``rate`` is not a finite number >= 0, or
            ``max_value`` is not a finite number >= ``min_value``.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> crnn.constraints.MinMaxNorm(1.0, 2.0)(np.array([[0.3], [0.4]])).round(6).tolist()
    [[0.6], [0.8]]
    """

    def __init__(self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0,
                 axis: int | Sequence[int] = 0):
        self.min_value = _check("min_value", min_value)
        self.max_value = _check("max_value", max_value, self.min_value)
        self.rate = _check("rate", rate)
        self.axis = axis

    def __call__(self, w: np.ndarray) -> np.ndarray:
        dt = w.dtype.type
        norms = _norms(w, self.axis)
        desired = dt(self.rate) * np.clip(norms, dt(self.min_value), dt(self.max_value)) \
            + (dt(1) - dt(self.rate)) * norms
        return w * (desired / (dt(_EPSILON) + norms))

    def get_config(self) -> dict[str, Any]:
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": self.axis}


max_norm = MaxNorm
non_neg = NonNeg
unit_norm = UnitNorm
min_max_norm = MinMaxNorm

_CLASSES = {cls.__name__: cls for cls in (MaxNorm, NonNeg, UnitNorm, MinMaxNorm)}
_NAMES = {"max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm,
          "min_max_norm": MinMaxNorm}
_FAMILY = KerasFamily("constraint", "keras.constraints", Constraint, _CLASSES, _NAMES,
                      find=lambda name: _NAMES.get(name.lower()) or _CLASSES.get(name))


def serialize(constraint: Constraint | None) -> dict[str, Any] | None:
    """Returns a constraint's config in Keras's serialized form.

    The form is ``{"module", "class_name", "config", "registered_name"}``, as
    ``keras.constraints.serialize`` writes it, which ``deserialize`` and ``get``
    accept.

    Args:
        constraint: A ``Constraint`` (anything with ``get_config()``), or ``None``.

    Returns:
        The dict, or ``None`` for ``None``.

    Raises:
        AttributeError: If ``constraint`` has no ``get_config`` method.

    Example:

    >>> import crnn
    >>> crnn.constraints.serialize(crnn.constraints.MaxNorm(3.0))["config"]
    {'max_value': 3.0, 'axis': 0}
    """
    return _FAMILY.serialize(constraint)


def deserialize(config: dict[str, Any]) -> Constraint:
    """Creates a constraint from ``serialize``'s output.

    Args:
        config: Dict with a ``"class_name"`` (``"MaxNorm"``, ``"NonNeg"``,
            ``"UnitNorm"`` or ``"MinMaxNorm"``) and an optional ``"config"`` of
            constructor arguments.

    Returns:
        A new ``Constraint``.

    Raises:
        ValueError: If ``config`` is not a dict or its ``class_name`` is unknown,
            or (from the constructor) an argument is out of range.

    Example:

    >>> import crnn
    >>> crnn.constraints.deserialize({"class_name": "MaxNorm", "config": {"max_value": 3.0}})
    MaxNorm(max_value=3.0, axis=0)
    """
    return _FAMILY.deserialize(config)


def get(identifier: str | dict[str, Any] | Constraint | None) -> Constraint | None:
    """Returns a constraint from ``None``, a name, a config dict or an instance.

    Args:
        identifier: ``None`` or a ``Constraint`` instance (returned as is); a name
            (``"max_norm"``, ``"non_neg"``, ``"unit_norm"``, ``"min_max_norm"``,
            in any case, or a class name such as ``"MaxNorm"``), which gives an
            instance with the default arguments; or a ``serialize`` dict.

    Returns:
        A ``Constraint``, or ``None`` for ``None``.

    Raises:
        ValueError: If the name or dict is unknown, or ``identifier`` is of
            another type.

    Example:

    >>> import crnn
    >>> crnn.constraints.get("non_neg")
    NonNeg()
    """
    return _FAMILY.get(identifier)
