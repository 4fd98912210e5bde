"""Weight initializers with Keras 3 semantics.

Each initializer is called as ``init(shape, dtype="float32", rng=None)`` and returns
a NumPy array. Fans follow Keras's ``compute_fans``: for a 2-D shape
``fan_in = shape[0]`` and ``fan_out = shape[1]``; a 1-D shape uses its length for
both; higher ranks treat the leading axes as a receptive field.

Randomness: an initializer built with ``seed=n`` returns the same values on every
call (as Keras does for an integer seed). Without a seed it draws from ``rng``
when given, else from crnn's global generator (``crnn.utils.get_rng()``), so
``crnn.utils.set_random_seed`` makes it reproducible.

Example:

>>> import numpy as np
>>> import crnn
>>> init = crnn.initializers.get("glorot_uniform")
>>> w = init((4, 6), rng=np.random.default_rng(0))
>>> w.shape, w.dtype
((4, 6), dtype('float32'))
>>> bool(np.all(np.abs(w) <= np.sqrt(6 / (4 + 6))))
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np
from numpy.typing import DTypeLike

from crnn import utils
from crnn._registry import class_config, config_repr, from_class_config
from crnn.utils import seeding

__all__ = [
    "Initializer",
    "Zeros",
    "Ones",
    "Constant",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "VarianceScaling",
    "GlorotUniform",
    "GlorotNormal",
    "HeNormal",
    "HeUniform",
    "LecunNormal",
    "LecunUniform",
    "Orthogonal",
    "Identity",
    "compute_fans",
    "get",
    "serialize",
    "deserialize",
]

# The standard deviation of a unit normal truncated to [-2, 2]; Keras divides by it
# so that the truncated distribution keeps the requested variance.
_TRUNCATED_STDDEV_FACTOR = 0.87962566103423978


def _check_shape(shape):
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        shape = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise ValueError(
            f"Expected `shape` to be a tuple of non-negative ints. Received: shape={shape!r}."
        ) from None
    if any(d < 0 for d in shape):
        raise ValueError(
            f"Expected `shape` to be a tuple of non-negative ints. Received: shape={shape!r}."
        )
    return shape


def _check_dtype(dtype):
    dtype = np.dtype("float32" if dtype is None else dtype)
    if dtype.kind != "f":
        raise ValueError(
            f"Expected a floating `dtype` such as 'float32' or 'float64'. Received: dtype={dtype}."
        )
    return dtype


def compute_fans(shape: Sequence[int]) -> tuple[int, int]:
    """Returns ``(fan_in, fan_out)`` for a weight shape, as Keras computes them.

    ``VarianceScaling`` and the Glorot, He and Lecun initializers scale their
    variance with these fans.

    Args:
        shape: Sequence of ints, the weight's shape.

    Returns:
        Tuple of two ints. ``()`` gives ``(1, 1)``; ``(n,)`` gives ``(n, n)``;
        ``(a, b)`` gives ``(a, b)``; ``(..., a, b)`` multiplies both by the product
        of the leading dimensions (the receptive field of a convolution kernel).

    Example:

    >>> import crnn
    >>> crnn.initializers.compute_fans((3, 4))
    (3, 4)
    >>> crnn.initializers.compute_fans((5, 3, 4))    # a Conv1D kernel of width 5
    (15, 20)
    """
    shape = tuple(shape)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return int(shape[0]), int(shape[0])
    if len(shape) == 2:
        return int(shape[0]), int(shape[1])
    receptive_field = int(np.prod(shape[:-2]))
    return int(shape[-2]) * receptive_field, int(shape[-1]) * receptive_field


class Initializer:
    """Base class of the initializers: ``init(shape, dtype, rng)`` returns a new array.

    A subclass implements ``_generate(shape, dtype, rng)``, which returns the values
    (any array that can be cast to ``dtype`` and reshaped to ``shape``), and
    ``get_config()`` if its constructor takes arguments. Calling an initializer
    checks ``shape`` and ``dtype`` first.

    Call arguments:
        shape: Int or sequence of non-negative ints, the shape of the array.
        dtype: Floating NumPy dtype (or name); ``None`` means ``"float32"``.
            Defaults to ``"float32"``.
        rng: Optional ``numpy.random.Generator`` used by the random initializers
            that have no seed of their own (ignored by the others).

    Call returns:
        A new C-contiguous ``np.ndarray`` of the given shape and dtype.

    Call raises:
        ValueError: If ``shape`` is not a sequence of non-negative ints, or
            ``dtype`` is not a floating dtype.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> class Arange(crnn.initializers.Initializer):
    ...     def _generate(self, shape, dtype, rng):
    ...         return np.arange(np.prod(shape))
    >>> Arange()((2, 3)).tolist()
    [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    """

    def __call__(self, shape: int | Sequence[int], dtype: DTypeLike = "float32",
                 rng: np.random.Generator | None = None) -> np.ndarray:
        shape = _check_shape(shape)
        dtype = _check_dtype(dtype)
        values = self._generate(shape, dtype, self._rng(rng))
        return np.ascontiguousarray(values, dtype=dtype).reshape(shape)

    def _rng(self, rng):
        return rng

    def _generate(self, shape, dtype, rng):
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """Returns the constructor arguments, for ``from_config`` and saving.

        Returns:
            A JSON-serializable dict (empty for an initializer without arguments).
        """
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Initializer:
        """Creates an initializer from ``get_config()``'s output.

        Args:
            config: Dict of constructor arguments.

        Returns:
            A new instance of this class.

        Raises:
            TypeError: If ``config`` holds an argument the constructor does not take.
        """
        return cls(**config)

    def __repr__(self):
        return config_repr(self)


class Zeros(Initializer):
    """Fills with 0.

    Example:

    >>> import crnn
    >>> crnn.initializers.Zeros()((2,)).tolist()
    [0.0, 0.0]
    """

    def _generate(self, shape, dtype, rng):
        return np.zeros(shape, dtype=dtype)


class Ones(Initializer):
    """Fills with 1.

    Example:

    >>> import crnn
    >>> crnn.initializers.Ones()((2,)).tolist()
    [1.0, 1.0]
    """

    def _generate(self, shape, dtype, rng):
        return np.ones(shape, dtype=dtype)


class Constant(Initializer):
    """Fills with a scalar value.

    Args:
        value: Scalar, stored as a Python float. Defaults to 0.0.

    Raises:
        ValueError: If ``value`` is not a scalar, or not a number.

    Example:

    >>> import crnn
    >>> crnn.initializers.Constant(0.5)((2,)).tolist()
    [0.5, 0.5]
    """

    def __init__(self, value: float = 0.0):
        if np.ndim(value) != 0:
            raise ValueError(
                "Expected `value` to be a scalar. Received: value with shape "
                f"{np.shape(value)}. Use a per-element array with set_weights() instead."
            )
        self.value = float(value)

    def _generate(self, shape, dtype, rng):
        return np.full(shape, self.value, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value}


class RandomInitializer(Initializer):
    """Base class of the random initializers; handles the ``seed`` argument.

    Args:
        seed: Non-negative int, or ``None``. With a seed, every call returns the
            same values (Keras 3 behaviour for an integer seed); without one, each
            call draws from the ``rng`` given to it, else from crnn's global
            generator. Defaults to ``None``.

    Raises:
        ValueError: If ``seed`` is not ``None`` or a non-negative int.
    """

    def __init__(self, seed: int | None = None):
        if seed is not None:
            seed = seeding._check_seed(seed)
        self.seed = seed

    def _rng(self, rng):
        if self.seed is not None:
            return np.random.default_rng(self.seed)
        return rng if rng is not None else utils.get_rng()

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}


def _truncated_normal(rng, shape, mean, stddev):
    # Draws outside two standard deviations are redrawn, as in Keras/TF.
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2.0
    while np.any(outside):
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return mean + stddev * values


class _NormalInitializer(RandomInitializer):
    # RandomNormal's and TruncatedNormal's arguments; subclasses implement ``_generate``.

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        self.mean = float(mean)
        self.stddev = float(stddev)

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomNormal(_NormalInitializer):
    """Normal distribution.

    Args:
        mean: Mean. Defaults to 0.0.
        stddev: Standard deviation. Defaults to 0.05.
        seed: Non-negative int, or ``None``: with a seed every call returns the
            same values; without, see the module notes. Defaults to ``None``.

    Raises:
        ValueError: If ``seed`` is not ``None`` or a non-negative int.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> init = crnn.initializers.RandomNormal(stddev=1.0, seed=0)
    >>> init((3, 2)).shape
    (3, 2)
    >>> bool(np.array_equal(init((3, 2)), init((3, 2))))    # seeded: same values each call
    True
    """

    def _generate(self, shape, dtype, rng):
        return rng.normal(self.mean, self.stddev, size=shape)


class TruncatedNormal(_NormalInitializer):
    """Normal distribution truncated to ``mean +- 2 * stddev`` (redrawn outside).

    Args:
        mean: Mean. Defaults to 0.0.
        stddev: Standard deviation before truncation. Defaults to 0.05.
        seed: Non-negative int, or ``None``: with a seed every call returns the
            same values; without, see the module notes. Defaults to ``None``.

    Raises:
        ValueError: If ``seed`` is not ``None`` or a non-negative int.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> w = crnn.initializers.TruncatedNormal(stddev=1.0, seed=0)((100,))
    >>> bool(np.all(np.abs(w) <= 2.0))
    True
    """

    def _generate(self, shape, dtype, rng):
        return _truncated_normal(rng, shape, self.mean, self.stddev)


class RandomUniform(RandomInitializer):
    """Uniform distribution on ``[minval, maxval)``.

    Args:
        minval: Lower bound. Defaults to -0.05.
        maxval: Upper bound. Defaults to 0.05.
        seed: Non-negative int, or ``None``: with a seed every call returns the
            same values; without, see the module notes. Defaults to ``None``.

    Raises:
        ValueError: If ``minval > maxval``, or ``seed`` is not ``None`` or a
            non-negative int.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> w = crnn.initializers.RandomUniform(0.0, 1.0, seed=0)((10,))
    >>> bool(np.all((w >= 0) & (w < 1)))
    True
    """

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        if not minval <= maxval:
            raise ValueError(
                "Expected `minval` <= `maxval`. Received: "
                f"minval={minval}, maxval={maxval}. Swap them."
            )
        self.minval = float(minval)
        self.maxval = float(maxval)

    def _generate(self, shape, dtype, rng):
        return rng.uniform(self.minval, self.maxval, size=shape)

    def get_config(self) -> dict[str, Any]:
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class VarianceScaling(RandomInitializer):
    """Scales the variance to the weight's fans.

    With ``n`` the fan given by ``mode`` (``fan_in``, ``fan_out`` or their mean,
    ``fan_avg``; at least 1), the target variance is ``scale / n``:

    - ``"truncated_normal"`` (or ``"normal"``): truncated normal with stddev
      ``sqrt(scale / n) / 0.8796...`` so the truncated variance is ``scale / n``;
    - ``"untruncated_normal"``: normal with stddev ``sqrt(scale / n)``;
    - ``"uniform"``: uniform on ``[-limit, limit]`` with ``limit = sqrt(3 scale / n)``.

    Args:
        scale: Positive float. Defaults to 1.0.
        mode: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"``. Defaults to
            ``"fan_in"``.
        distribution: ``"truncated_normal"`` (or ``"normal"``, its alias),
            ``"untruncated_normal"`` or ``"uniform"``, in any case. Defaults to
            ``"truncated_normal"``.
        seed: Non-negative int, or ``None``: with a seed every call returns the
            same values; without, see the module notes. Defaults to ``None``.

    Raises:
        ValueError: If ``scale`` is not positive, ``mode`` or ``distribution`` is
            unknown, or ``seed`` is not ``None`` or a non-negative int.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> w = crnn.initializers.VarianceScaling(2.0, "fan_in", "uniform", seed=0)((8, 4))
    >>> bool(np.all(np.abs(w) <= np.sqrt(3 * 2.0 / 8)))
    True
    """

    def __init__(self, scale: float = 1.0, mode: str = "fan_in",
                 distribution: str = "truncated_normal", seed: int | None = None):
        super().__init__(seed)
        if not scale > 0.0:
            raise ValueError(f"Argument `scale` must be a positive float. Received: scale={scale}.")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(
                "Argument `mode` must be one of 'fan_in', 'fan_out', 'fan_avg'. "
                f"Received: mode={mode!r}."
            )
        distribution = str(distribution).lower()
        if distribution == "normal":
            distribution = "truncated_normal"
        if distribution not in ("uniform", "truncated_normal", "untruncated_normal"):
            raise ValueError(
                "Argument `distribution` must be one of 'uniform', 'truncated_normal', "
                f"'untruncated_normal' (or 'normal'). Received: distribution={distribution!r}."
            )
        self.scale = float(scale)
        self.mode = mode
        self.distribution = distribution

    def _generate(self, shape, dtype, rng):
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        variance = self.scale / max(1.0, fan)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return rng.uniform(-limit, limit, size=shape)
        if self.distribution == "untruncated_normal":
            return rng.normal(0.0, math.sqrt(variance), size=shape)
        return _truncated_normal(rng, shape, 0.0, math.sqrt(variance) / _TRUNCATED_STDDEV_FACTOR)

    def get_config(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            "seed": self.seed,
        }


class _FixedVarianceScaling(VarianceScaling):
    # Subclasses fix (scale, mode, distribution); only the seed is configurable.
    _params = None

    def __init__(self, seed: int | None = None):
        super().__init__(*self._params, seed=seed)

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}


class GlorotUniform(_FixedVarianceScaling):
    """Uniform on ``[-limit, limit]``, ``limit = sqrt(6 / (fan_in + fan_out))``.

    Keras's default ``kernel_initializer``: ``VarianceScaling(1.0, "fan_avg",
    "uniform")``.

    Args:
        seed: Non-negative int, or ``None``: with a seed every call returns the
            same values; without, see the module notes. Defaults to ``None``.

    Raises:
        ValueError: If ``seed`` is not ``None`` or a non-negative int.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> w = crnn.initializers.GlorotUniform(seed=0)((3, 5))
    >>> bool(np.all(np.abs(w) <= np.sqrt(6 / 8)))
    True
    """

    _params = (1.0, "fan_avg", "uniform")


class GlorotNormal(_FixedVarianceScaling):
    """Truncated normal with variance ``2 / (fan_in + fan_out)``.

    ``VarianceScaling(1.0, "fan_avg", "truncated_normal")``: the values lie within
    two standard deviations of 0 (redrawn outside).

    Args:
        seed: Non-negative int, or ``None``: with a seed every call returns the
            same values; without, see the module notes. Defaults to ``None``.

    Raises:
        ValueError: If ``seed`` is not ``None`` or a non-negative int.

    Example:

    >>> import crnn
    >>> w = crnn.initializers.GlorotNormal(seed=0)((100, 300))
    >>> round(float(w.std()), 2)    # sqrt(2 / (100 + 300))
    0.07
    """

    _params = (1.0, "fan_avg", "truncated_normal")


class HeNormal(_FixedVarianceScaling):
    """Truncated normal with variance ``2 / fan_in``.

    ``VarianceScaling(2.0, "fan_in", "truncated_normal")``: the values lie within
    two standard deviations of 0 (redrawn outside).

    Args:
        seed: Non-negative int, or ``None``: with a seed every call returns the
            same values; without, see the module notes. Defaults to ``None``.

    Raises:
        ValueError: If ``seed`` is not ``None`` or a non-negative int.

    Example:

    >>> import crnn
    >>> w = crnn.initializers.HeNormal(seed=0)((200, 100))
    >>> round(float(w.std()), 2)    # sqrt(2 / 200)
    0.1
    """

    _params = (2.0, "fan_in", "truncated_normal")


class HeUniform(_FixedVarianceScaling):
    """Uniform on ``[-limit, limit]``, ``limit = sqrt(6 / fan_in)``.

    ``VarianceScaling(2.0, "fan_in", "uniform")``.

    Args:
        seed: Non-negative int, or ``None``: with a seed every call returns the
            same values; without, see the module notes. Defaults to ``None``.

    Raises:
        ValueError: If ``seed`` is not ``None`` or a non-negative int.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> w = crnn.initializers.HeUniform(seed=0)((6, 4))
    >>> bool(np.all(np.abs(w) <= np.sqrt(6 / 6)))
    True
    """

    _params = (2.0, "fan_in", "uniform")


class LecunNormal(_FixedVarianceScaling):
    """Truncated normal with variance ``1 / fan_in``.

    ``VarianceScaling(1.0, "fan_in", "truncated_normal")``: the values lie within
    two standard deviations of 0 (redrawn outside).

    Args:
        seed: Non-negative int, or ``None``: with a seed every call returns the
            same values; without, see the module notes. Defaults to ``None``.

    Raises:
        ValueError: If ``seed`` is not ``None`` or a non-negative int.

    Example:

    >>> import crnn
    >>> w = crnn.initializers.LecunNormal(seed=0)((100, 100))
    >>> round(float(w.std()), 2)    # sqrt(1 / 100)
    0.1
    """

    _params = (1.0, "fan_in", "truncated_normal")


class LecunUniform(_FixedVarianceScaling):
    """Uniform on ``[-limit, limit]``, ``limit = sqrt(3 / fan_in)``.

    ``VarianceScaling(1.0, "fan_in", "uniform")``.

    Args:
        seed: Non-negative int, or ``None``: with a seed every call returns the
            same values; without, see the module notes. Defaults to ``None``.

    Raises:
        ValueError: If ``seed`` is not ``None`` or a non-negative int.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> w = crnn.initializers.LecunUniform(seed=0)((3, 4))
    >>> bool(np.all(np.abs(w) <= np.sqrt(3 / 3)))
    True
    """

    _params = (1.0, "fan_in", "uniform")


class Orthogonal(RandomInitializer):
    """(Semi-)orthogonal matrix times ``gain``; Keras's default ``recurrent_initializer``.

    The shape is flattened to ``(prod(shape[:-1]), shape[-1])``. A normal matrix
    of shape ``(max(rows, cols), min(rows, cols))`` is QR-factorized and ``Q``'s
    columns are multiplied by the signs of ``R``'s diagonal (which makes ``Q``
    uniformly distributed); ``Q`` is transposed when there are fewer rows than
    columns. So the result has orthonormal columns (or rows, if wide).

    Args:
        gain: Multiplicative factor. Defaults to 1.0.
        seed: Non-negative int, or ``None``: with a seed every call returns the
            same values; without, see the module notes. Defaults to ``None``.

    Raises:
        ValueError: If ``seed`` is not ``None`` or a non-negative int; when
            called, if the shape has fewer than two dimensions.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> q = crnn.initializers.Orthogonal(seed=0)((4, 4))
    >>> bool(np.allclose(q.T @ q, np.eye(4), atol=1e-5))
    True
    """

    def __init__(self, gain: float = 1.0, seed: int | None = None):
        super().__init__(seed)
        self.gain = float(gain)

    def __call__(self, shape: int | Sequence[int], dtype: DTypeLike = "float32",
                 rng: np.random.Generator | None = None) -> np.ndarray:
        shape = _check_shape(shape)
        if len(shape) < 2:
            raise ValueError(
                "The array to initialize with Orthogonal must be at least two-dimensional. "
                f"Received: shape={shape} of rank {len(shape)}. Use e.g. 'zeros' for a bias."
            )
        return super().__call__(shape, dtype, rng)

    def _generate(self, shape, dtype, rng):
        rows = int(np.prod(shape[:-1]))
        cols = shape[-1]
        a = rng.standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return self.gain * q.reshape(shape)

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain, "seed": self.seed}



class Identity(Initializer):
    """``gain`` times the identity matrix, for 2-D weights (e.g. an IRNN's recurrent kernel).

    As in Keras 3, a non-square shape gets ones on the main diagonal (``numpy.eye``).

    Args:
        gain: Multiplicative factor. Defaults to 1.0.

    Raises:
        ValueError: When called, if the shape is not two-dimensional.

    Example:

    >>> import crnn
    >>> crnn.initializers.Identity(gain=2.0)((2, 3)).tolist()
    [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]]
    """

    def __init__(self, gain: float = 1.0):
        self.gain = float(gain)

    def __call__(self, shape: int | Sequence[int], dtype: DTypeLike = "float32",
                 rng: np.random.Generator | None = None) -> np.ndarray:
        shape = _check_shape(shape)
        if len(shape) != 2:
            raise ValueError(
                "Identity matrix initializer can only be used for 2D matrices. "
                f"Received: shape={shape} of rank {len(shape)}.")
        return super().__call__(shape, dtype, rng)

    def _generate(self, shape, dtype, rng):
        return self.gain * np.eye(*shape, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain}

_CLASSES = {
    cls.__name__: cls
    for cls in (
        Zeros,
        Ones,
        Constant,
        RandomNormal,
        RandomUniform,
        TruncatedNormal,
        VarianceScaling,
        GlorotUniform,
        GlorotNormal,
        HeNormal,
        HeUniform,
        LecunNormal,
        LecunUniform,
        Orthogonal,
        Identity,
    )
}

_ALIASES = {
    "zeros": Zeros,
    "ones": Ones,
    "constant": Constant,
    "random_normal": RandomNormal,
    "random_uniform": RandomUniform,
    "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal,
    "he_normal": HeNormal,
    "he_uniform": HeUniform,
    "lecun_normal": LecunNormal,
    "lecun_uniform": LecunUniform,
    "orthogonal": Orthogonal,
    "identity": Identity,
    "IdentityInitializer": Identity,
}


def serialize(initializer: Initializer) -> dict[str, Any]:
    """Returns ``{"class_name": ..., "config": {...}}`` for an initializer.

    Args:
        initializer: An ``Initializer`` instance.

    Returns:
        A JSON-serializable dict that ``deserialize`` and ``get`` accept.

    Raises:
        ValueError: If ``initializer`` is not an ``Initializer`` (e.g. a plain
            callable, which has no config).

    Example:

    >>> import crnn
    >>> crnn.initializers.serialize(crnn.initializers.Orthogonal(gain=2.0))
    {'class_name': 'Orthogonal', 'config': {'gain': 2.0, 'seed': None}}
    """
    if not isinstance(initializer, Initializer):
        raise ValueError(
            "Only crnn Initializer instances can be serialized. Received: "
            f"{initializer!r}. Use a name such as 'glorot_uniform' or an Initializer subclass."
        )
    return class_config(initializer)


def deserialize(config: dict[str, Any]) -> Initializer:
    """Creates an initializer from ``serialize``'s output.

    Args:
        config: Dict with a ``"class_name"`` (a class name such as
            ``"GlorotUniform"``, or a name such as ``"glorot_uniform"``) and an
            optional ``"config"`` of constructor arguments.

    Returns:
        A new ``Initializer``.

    Raises:
        ValueError: If ``config`` is not a dict with a ``"class_name"``, or the
            class name is unknown.
        TypeError: If ``"config"`` holds an argument the class does not take.

    Example:

    >>> import crnn
    >>> crnn.initializers.deserialize({"class_name": "Constant", "config": {"value": 0.5}})
    Constant(value=0.5)
    """
    return from_class_config(config, "initializer", _CLASSES,
                             lambda name: _CLASSES.get(name) or _ALIASES.get(name))


def get(
    identifier: str | dict[str, Any] | Initializer | type[Initializer] | Callable[..., Any],
) -> Initializer | Callable[..., Any]:
    """Returns an initializer from a name, a config dict, an instance or a callable.

    Args:
        identifier: One of: a name (``"glorot_uniform"``, ``"orthogonal"``,
            ``"zeros"``, ...) or class name (``"GlorotUniform"``), which gives an
            instance with the default arguments; a ``{"class_name", "config"}``
            dict (see ``deserialize``); an ``Initializer`` class, instantiated
            with the default arguments; or an ``Initializer`` instance or another
            callable ``fn(shape, dtype)``, returned unchanged.

    Returns:
        An ``Initializer``, or the callable given.

    Raises:
        ValueError: If the identifier is not recognized.
        TypeError: If a config dict holds an argument the class does not take.

    Example:

    >>> import crnn
    >>> crnn.initializers.get("orthogonal")
    Orthogonal(gain=1.0, seed=None)
    """
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        cls = _ALIASES.get(identifier) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(
                f"Unknown initializer: {identifier!r}. Known names: {sorted(_ALIASES)}."
            )
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(
        f"Could not interpret initializer identifier: {identifier!r}. Pass a name such as "
        "'glorot_uniform', a config dict, an Initializer, or a callable(shape, dtype)."
    )
