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

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from crnn._registry import KerasFamily, config_repr
from crnn._validation import is_number

__all__ = ["Regularizer", "L1", "L2", "L1L2", "l1", "l2", "l1_l2", "get", "serialize",
           "deserialize"]


def _check_factor(name, value):
    if not is_number(value) or not np.isfinite(value) or value < 0:
        raise ValueError(
            f"Argument `{name}` must be a non-negative float. Received: {name}={value!r}.")
    return float(value)


class Regularizer:
    """Base class of the weight regularizers: ``__call__(w)`` is the penalty.

    A subclass implements ``__call__(w)``, which returns the penalty of a weight
    array as a Python float, ``gradient(w)``, its gradient (an array of the shape
    and dtype of ``w``), and ``get_config()``, the constructor arguments that
    ``from_config`` takes.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> class Sum(crnn.regularizers.Regularizer):
    ...     def __call__(self, w):
    ...         return 0.1 * float(np.sum(w))
    ...     def gradient(self, w):
    ...         return np.full_like(w, 0.1)
    ...     def get_config(self):
    ...         return {}
    >>> Sum()(np.array([1.0, 2.0]))
    0.30000000000000004
    """

    def __call__(self, w: ArrayLike) -> float:
        raise NotImplementedError

    def gradient(self, w: np.ndarray) -> np.ndarray:
        """Returns the gradient of the penalty with respect to ``w``.

        Args:
            w: The weight array.

        Returns:
            An array of the same shape and dtype as ``w``.

        Raises:
            NotImplementedError: In the base class.
        """
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """Returns the constructor arguments, for ``from_config`` and saving.

        Returns:
            A JSON-serializable dict.

        Raises:
            NotImplementedError: In the base class.
        """
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Regularizer:
        """Creates the regularizer from ``get_config()``'s output.

        Args:
            config: Dict of constructor arguments.

        Returns:
            A new instance of this class.
        """
        return cls(**config)

    def __repr__(self):
        return config_repr(self)


class L1L2(Regularizer):
    """Penalty ``l1 * sum(|w|) + l2 * sum(w**2)``.

    The penalty is computed in float64 and returned as a Python float; its
    gradient is ``l1 * sign(w) + 2 * l2 * w``, in the dtype of ``w`` (so 0 at
    ``w = 0`` for the L1 part, as TensorFlow's).

    Args:
        l1: L1 factor, a number >= 0. Defaults to 0.0.
        l2: L2 factor, a number >= 0. Defaults to 0.0.

    Raises:
        ValueError: If ``l1`` or ``l2`` is not a finite number >= 0.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> reg = crnn.regularizers.L1L2(l1=0.5, l2=0.25)
    >>> reg(np.array([1.0, -2.0]))
    2.75
    >>> reg.gradient(np.array([1.0, -2.0])).tolist()
    [1.0, -1.5]
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = _check_factor("l1", l1)
        self.l2 = _check_factor("l2", l2)

    def __call__(self, w: ArrayLike) -> float:
        w = np.asarray(w, dtype=np.float64)
        penalty = 0.0
        if self.l1:
            penalty += self.l1 * float(np.sum(np.abs(w)))
        if self.l2:
            penalty += self.l2 * float(np.sum(np.square(w)))
        return penalty

    def gradient(self, w: np.ndarray) -> np.ndarray:
        dt = w.dtype.type
        g = np.zeros_like(w)
        if self.l1:
            g += dt(self.l1) * np.sign(w)
        if self.l2:
            g += dt(2.0 * self.l2) * w
        return g

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """Penalty ``l1 * sum(|w|)``; the gradient at 0 is 0 (``sign(0)``), as TensorFlow's.

    Args:
        l1: Factor, a number >= 0. Defaults to 0.01.

    Raises:
        ValueError: If ``l1`` is not a finite number >= 0.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> crnn.regularizers.L1(0.1)(np.array([1.0, -2.0]))
    0.30000000000000004
    """

    def __init__(self, l1: float = 0.01):
        super().__init__(l1=l1)

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1}


class L2(L1L2):
    """Penalty ``l2 * sum(w**2)``.

    Args:
        l2: Factor, a number >= 0. Defaults to 0.01.

    Raises:
        ValueError: If ``l2`` is not a finite number >= 0.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> crnn.regularizers.L2(0.5)(np.array([1.0, -2.0]))
    2.5
    """

    def __init__(self, l2: float = 0.01):
        super().__init__(l2=l2)

    def get_config(self) -> dict[str, Any]:
        return {"l2": self.l2}


def l1(l1: float = 0.01) -> L1:
    """Returns an ``L1`` regularizer (Keras's function spelling).

    Args:
        l1: Factor, a number >= 0. Defaults to 0.01.

    Returns:
        ``L1(l1)``.

    Raises:
        ValueError: If ``l1`` is not a finite number >= 0.

    Example:

    >>> import crnn
    >>> crnn.regularizers.l1(0.001)
    L1(l1=0.001)
    """
    return L1(l1)


def l2(l2: float = 0.01) -> L2:
    """Returns an ``L2`` regularizer (Keras's function spelling).

    Args:
        l2: Factor, a number >= 0. Defaults to 0.01.

    Returns:
        ``L2(l2)``.

    Raises:
        ValueError: If ``l2`` is not a finite number >= 0.

    Example:

    >>> import crnn
    >>> crnn.regularizers.l2(0.001)
    L2(l2=0.001)
    """
    return L2(l2)


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:
    """Returns an ``L1L2`` regularizer; both factors default to 0.01 here.

    Keras 2's ``l1_l2`` function, with its defaults (``L1L2`` itself defaults to 0).

    Args:
        l1: L1 factor, a number >= 0. Defaults to 0.01.
        l2: L2 factor, a number >= 0. Defaults to 0.01.

    Returns:
        ``L1L2(l1=l1, l2=l2)``.

    Raises:
        ValueError: If ``l1`` or ``l2`` is not a finite number >= 0.

    Example:

    >>> import crnn
    >>> crnn.regularizers.l1_l2()
    L1L2(l1=0.01, l2=0.01)
    """
    return L1L2(l1=l1, l2=l2)


_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}
_NAMES = {"l1": L1, "l2": L2, "l1_l2": lambda: L1L2(0.01, 0.01), "l1l2": lambda: L1L2(0.01, 0.01)}
_FAMILY = KerasFamily("regularizer", "keras.regularizers", Regularizer, _CLASSES, _NAMES)


def serialize(regularizer: Regularizer | None) -> dict[str, Any] | None:
    """Returns a regularizer's config in Keras's serialized form.

    The form is ``{"module", "class_name", "config", "registered_name"}``, as
    ``keras.regularizers.serialize`` writes it, which ``deserialize`` and ``get``
    accept.

    Args:
        regularizer: A ``Regularizer`` (anything with ``get_config()``), or ``None``.

    Returns:
        The dict, or ``None`` for ``None``.

    Raises:
        AttributeError: If ``regularizer`` has no ``get_config`` method.

    Example:

    >>> import crnn
    >>> crnn.regularizers.serialize(crnn.regularizers.L2(0.5))["config"]
    {'l2': 0.5}
    """
    return _FAMILY.serialize(regularizer)


def deserialize(config: dict[str, Any]) -> Regularizer:
    """Creates a regularizer from ``serialize``'s output.

    Args:
        config: Dict with a ``"class_name"`` (``"L1"``, ``"L2"`` or ``"L1L2"``)
            and an optional ``"config"`` of constructor arguments.

    Returns:
        A new ``Regularizer``.

    Raises:
        ValueError: If ``config`` is not a dict or its ``class_name`` is unknown,
            or (from the constructor) a factor is not a finite number >= 0.

    Example:

    >>> import crnn
    >>> crnn.regularizers.deserialize({"class_name": "L2", "config": {"l2": 0.5}})
    L2(l2=0.5)
    """
    return _FAMILY.deserialize(config)


def get(identifier: str | dict[str, Any] | Regularizer | None) -> Regularizer | None:
    """Returns a regularizer from ``None``, a name, a config dict or an instance.

    Args:
        identifier: ``None`` or a ``Regularizer`` instance (returned as is); a name
            (``"l1"``, ``"l2"``, ``"l1_l2"``, in any case, so also the class names
            ``"L1"``, ``"L2"``, ``"L1L2"``), which gives an instance with factors
            of 0.01; or a ``serialize`` dict.

    Returns:
        A ``Regularizer``, or ``None`` for ``None``.

    Raises:
        ValueError: If the name or dict is unknown, or ``identifier`` is of
            another type.

    Example:

    >>> import crnn
    >>> crnn.regularizers.get("l2")
    L2(l2=0.01)
    """
    return _FAMILY.get(identifier)
