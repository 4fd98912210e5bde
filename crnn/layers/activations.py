"""Element-wise activations used by ``Dense`` and ``Activation``, with their derivatives.

Each entry maps a Keras activation name to ``(forward, backward)``: ``forward(z)`` gives
``y``, and ``backward(z, y, dy)`` gives ``dz`` (both are given so that each derivative can
use whichever is cheaper). The recurrent layers do not use this module: their activations
run inside the compiled kernels (see ``crnn.ops.ACTIVATIONS``). Every activation here also
runs compiled in ``crnn.streaming`` (codes in ``crnn._kernels._cells.ACTIVATION_CODES``, one table
in ``crnn/_kernels/_activations.pxd``; a test keeps the two name sets equal).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import special

__all__ = ["get", "serialize", "NAMES"]

_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


def _sigmoid(z):
    # Split by sign so that exp never overflows.
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def _softmax(z):
    # In place on the one new array: the same operations as exp(z - max) / sum.
    e = z - z.max(axis=-1, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=-1, keepdims=True)
    return e


def _softmax_grad(z, y, dy):
    # y * (dy - sum(dy * y)), in place on the new array where its dtype holds the product
    dz = dy - (dy * y).sum(axis=-1, keepdims=True)
    if dz.dtype != np.result_type(dz, y):
        return y * dz
    dz *= y
    return dz


def _elu(z):
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))


def _selu(z):
    return _SELU_SCALE * np.where(z > 0, z, _SELU_ALPHA * np.expm1(np.minimum(z, 0)))


def _softplus(z):
    return np.logaddexp(0, z).astype(z.dtype)


def _hard_sigmoid(z):
    # Keras 3: relu6(x + 3) / 6.
    return np.clip(z / 6.0 + 0.5, 0.0, 1.0).astype(z.dtype)


def _log_softmax(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _gelu(z):
    # Keras's default is the exact form (approximate=False), via erf.
    return 0.5 * z * (1.0 + special.erf(z / np.sqrt(2.0)))


def _gelu_grad(z, y, dy):
    return dy * (0.5 * (1.0 + special.erf(z / np.sqrt(2.0)))
                 + z * np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi))


def _mish_grad(z, y, dy):
    t = np.tanh(_softplus(z))
    return dy * (t + z * _sigmoid(z) * (1 - t * t))


# Keras's leaky_relu activation (the function, not the layer) uses negative_slope=0.2.
_LEAKY_SLOPE = 0.2

_TABLE = {
    "linear": (lambda z: z, lambda z, y, dy: dy),
    "relu": (lambda z: np.maximum(z, 0).astype(z.dtype), lambda z, y, dy: dy * (z > 0)),
    "tanh": (np.tanh, lambda z, y, dy: dy * (1 - y * y)),
    "sigmoid": (_sigmoid, lambda z, y, dy: dy * y * (1 - y)),
    "hard_sigmoid": (_hard_sigmoid, lambda z, y, dy: dy * ((z > -3) & (z < 3)) / 6.0),
    "softmax": (_softmax, _softmax_grad),
    "elu": (_elu, lambda z, y, dy: dy * np.where(z > 0, 1.0, y + 1.0)),
    "selu": (_selu,
             lambda z, y, dy: dy * np.where(z > 0, _SELU_SCALE, y + _SELU_SCALE * _SELU_ALPHA)),
    "softplus": (_softplus, lambda z, y, dy: dy * _sigmoid(z)),
    "softsign": (lambda z: z / (1 + np.abs(z)), lambda z, y, dy: dy / (1 + np.abs(z)) ** 2),
    "silu": (lambda z: z * _sigmoid(z),
             lambda z, y, dy: dy * (_sigmoid(z) * (1 + z * (1 - _sigmoid(z))))),
    "exponential": (np.exp, lambda z, y, dy: dy * y),
    "relu6": (lambda z: np.clip(z, 0, 6).astype(z.dtype),
              lambda z, y, dy: dy * ((z > 0) & (z < 6))),
    "leaky_relu": (lambda z: np.where(z > 0, z, _LEAKY_SLOPE * z),
                   lambda z, y, dy: dy * np.where(z > 0, 1.0, _LEAKY_SLOPE)),
    "gelu": (_gelu, _gelu_grad),
    "mish": (lambda z: z * np.tanh(_softplus(z)), _mish_grad),
    "hard_silu": (lambda z: z * _hard_sigmoid(z),
                  lambda z, y, dy: dy * (_hard_sigmoid(z) + z * ((z > -3) & (z < 3)) / 6.0)),
    "log_softmax": (_log_softmax,
                    lambda z, y, dy: dy - np.exp(y) * dy.sum(axis=-1, keepdims=True)),
}
_ALIASES = {None: "linear", "swish": "silu", "hard_swish": "hard_silu"}
ALL_NAMES = tuple(sorted(_TABLE))
NAMES = ALL_NAMES     # the older name of the same list


def get(
        identifier: str | None,
) -> tuple[str, Callable[..., np.ndarray], Callable[..., np.ndarray]]:
    """Resolve an activation name to its canonical name and ``(forward, backward)`` pair.

    Args:
        identifier: a Keras activation name such as ``"relu"`` or ``"softmax"`` (one of
            ``ALL_NAMES``, or the aliases ``"swish"`` and ``"hard_swish"``), or None for
            ``"linear"``.

    Returns:
        ``(name, forward, backward)``: the canonical name, ``forward(z)`` giving the
        activation ``y``, and ``backward(z, y, dy)`` giving ``d loss / d z``.

    Raises:
        ValueError: if ``identifier`` is not a known activation name or None.

    Example:
        >>> import numpy as np
        >>> name, forward, backward = get("relu")
        >>> name, forward(np.array([-1.0, 2.0]))
        ('relu', array([0., 2.]))
        >>> get("swish")[0], get(None)[0]
        ('silu', 'linear')
    """
    name = _ALIASES.get(identifier, identifier)
    if not isinstance(name, str) or name not in _TABLE:
        raise ValueError(
            f"activation must be one of {list(ALL_NAMES)} (or None for linear), "
            f"received {identifier!r}"
        )
    forward, backward = _TABLE[name]
    return name, forward, backward


def apply(name: str, z: np.ndarray) -> np.ndarray:
    """Run activation ``name`` on ``z``, keeping z's dtype.

    Args:
        name: a canonical activation name (``get``'s first result).
        z: the pre-activations.

    Returns:
        The activations, in ``z``'s dtype.
    """
    return np.asarray(_TABLE[name][0](z), dtype=z.dtype)


def gradient(name: str, z: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """``d loss / d z`` for activation ``name``, given its input, output and ``dy``.

    Args:
        name: a canonical activation name (``get``'s first result).
        z: the activation's input.
        y: its output, ``apply(name, z)``.
        dy: the gradient of the loss with respect to ``y``.

    Returns:
        The gradient with respect to ``z``, in ``z``'s dtype.
    """
    return np.asarray(_TABLE[name][1](z, y, dy), dtype=z.dtype)


def serialize(name: str) -> str:
    """An activation's config entry, as Keras writes it in a layer config: its name.

    Args:
        name: a canonical activation name (``get``'s first result).

    Returns:
        ``name`` itself.

    Example:
        >>> serialize(get("swish")[0])
        'silu'
    """
    return name
