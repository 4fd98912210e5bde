"""Weight regularizers with Keras 3's formulas: ``L1``, ``L2``, ``L1L2`` (and the ``l1``,
``l2``, ``l1_l2`` spellings).

A regularizer maps a weight array to a penalty that ``fit`` adds to the loss (and reports in
it, as Keras does), and gives the penalty's gradient::

    reg = L2(0.01)
    reg(w)            # 0.01 * sum(w**2), a Python float
    reg.gradient(w)   # 0.02 * w

Layers take them as ``kernel_regularizer``, ``recurrent_regularizer``, ``bias_regularizer``
(``Dense``, ``Conv1D``, ``LSTM``, ``GRU``, ``SimpleRNN``) and ``embeddings_regularizer``
(``Embedding``); every layer of a model takes an ``activity_regularizer``, a penalty of its
outputs divided by the batch size (Keras 3's rule).
"""

import numpy as np

from crnn._validation import is_number

__all__ = ["Regularizer", "L1", "L2", "L1L2", "l1", "l2", "l1_l2", "get", "serialize", "deserialize"]


def _check_factor(name, value):
    if not is_number(value) or not np.isfinite(value) or value < 0:
        raise ValueError(f"Argument `{name}` must be a non-negative float. Received: {name}={value!r}.")
    return float(value)


class Regularizer:
    """Base class: ``__call__(w)`` is the penalty, ``gradient(w)`` its gradient."""

    def __call__(self, w):
        raise NotImplementedError

    def gradient(self, w):
        """The gradient of the penalty with respect to ``w`` (same shape and dtype)."""
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        """Creates the regularizer from ``get_config()``'s output."""
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class L1L2(Regularizer):
    """``l1 * sum(|w|) + l2 * sum(w**2)``.

    Args:
        l1: L1 factor. Defaults to 0.0.
        l2: L2 factor. Defaults to 0.0.

    Example:

    >>> L1L2(l1=0.5, l2=0.25)(np.array([1.0, -2.0]))
    2.75
    """

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _check_factor("l1", l1)
        self.l2 = _check_factor("l2", l2)

    def __call__(self, w):
        w = np.asarray(w, dtype=np.float64)
        penalty = 0.0
        if self.l1:
            penalty += self.l1 * float(np.sum(np.abs(w)))
        if self.l2:
            penalty += self.l2 * float(np.sum(np.square(w)))
        return penalty

    def gradient(self, w):
        dt = w.dtype.type
        g = np.zeros_like(w)
        if self.l1:
            g += dt(self.l1) * np.sign(w)
        if self.l2:
            g += dt(2.0 * self.l2) * w
        return g

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """``l1 * sum(|w|)``; the gradient at 0 is 0 (``sign(0)``), as TensorFlow's.

    Args:
        l1: factor. Defaults to 0.01.

    Example:

    >>> L1(0.1)(np.array([1.0, -2.0]))
    0.30000000000000004
    """

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 * sum(w**2)``.

    Args:
        l2: factor. Defaults to 0.01.

    Example:

    >>> L2(0.5)(np.array([1.0, -2.0]))
    2.5
    """

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


def l1(l1=0.01):  # noqa: D103 - Keras's function spelling
    return L1(l1)


def l2(l2=0.01):  # noqa: D103
    return L2(l2)


def l1_l2(l1=0.01, l2=0.01):
    """Keras's ``l1_l2``: both factors default to 0.01 here (``L1L2`` defaults to 0)."""
    return L1L2(l1=l1, l2=l2)


_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}
_NAMES = {"l1": L1, "l2": L2, "l1_l2": lambda: L1L2(0.01, 0.01), "l1l2": lambda: L1L2(0.01, 0.01)}


def serialize(regularizer):
    """Keras's ``{"module", "class_name", "config", "registered_name"}`` form (None for None)."""
    if regularizer is None:
        return None
    return {"module": "keras.regularizers", "class_name": type(regularizer).__name__,
            "config": regularizer.get_config(), "registered_name": None}


def deserialize(config):
    """Creates a regularizer from ``serialize``'s output."""
    name = config.get("class_name") if isinstance(config, dict) else None
    cls = _CLASSES.get(name)
    if cls is None:
        raise ValueError(f"Unknown regularizer {name!r}; known: {sorted(_CLASSES)}.")
    return cls.from_config(dict(config.get("config") or {}))


def get(identifier):
    """A regularizer from None, a name (``"l1"``, ``"l2"``, ``"l1_l2"``), a config dict or an
    instance.

    Raises:
        ValueError: For anything else.

    Example:

    >>> get("l2").l2
    0.01
    """
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        make = _NAMES.get(identifier.lower())
        if make is None:
            raise ValueError(f"Unknown regularizer {identifier!r}; known names: {sorted(_NAMES)}.")
        return make()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(f"Could not interpret regularizer identifier: {identifier!r}.")
