"""Seeding: crnn's one global random generator.

crnn draws every random number (weight initialization, shuffling, dropout masks) from one
global ``numpy.random.Generator``. ``set_random_seed`` re-seeds it (and NumPy's and
Python's global generators), which makes a whole training run reproducible. Public names
are re-exported by ``crnn.utils``.

Example:

>>> import crnn
>>> crnn.utils.set_random_seed(42)
>>> a = crnn.utils.get_rng().integers(1000)
>>> crnn.utils.set_random_seed(42)
>>> bool(a == crnn.utils.get_rng().integers(1000))
True
"""

from __future__ import annotations

import random

import numpy as np

from crnn._validation import is_int

__all__ = ["set_random_seed", "get_rng", "make_rng"]

_GLOBAL_RNG = np.random.default_rng()


def _check_seed(seed, name="seed"):
    # bool is an int subclass, but `seed=True` is almost certainly a mistake.
    if not is_int(seed):
        raise ValueError(
            f"Expected `{name}` to be a non-negative integer. Received: "
            f"{name}={seed!r} (type {type(seed).__name__}). "
            f"Pass an int such as {name}=42."
        )
    if seed < 0:
        raise ValueError(
            f"Expected `{name}` to be a non-negative integer. Received: "
            f"{name}={seed}. Pass a value >= 0."
        )
    return int(seed)


def set_random_seed(seed: int) -> None:
    """Seeds every random number generator crnn uses.

    Re-seeds crnn's global generator (used for initialization, shuffling and
    dropout), NumPy's legacy global generator (``np.random.seed``) and Python's
    ``random`` module, like ``keras.utils.set_random_seed``.

    Args:
        seed: Non-negative int (not a bool).

    Raises:
        ValueError: If ``seed`` is not a non-negative integer.

    Example:

    >>> import crnn
    >>> crnn.utils.set_random_seed(0)
    >>> a = crnn.utils.get_rng().normal()
    >>> crnn.utils.set_random_seed(0)
    >>> bool(a == crnn.utils.get_rng().normal())
    True
    """
    global _GLOBAL_RNG
    seed = _check_seed(seed)
    _GLOBAL_RNG = np.random.default_rng(seed)
    # np.random.seed only accepts 32-bit seeds.
    np.random.seed(seed % (2**32))
    random.seed(seed)


def get_rng() -> np.random.Generator:
    """Returns crnn's global ``numpy.random.Generator``.

    crnn draws weight initialization, shuffling and dropout masks from it.

    Returns:
        The generator that ``set_random_seed`` re-seeds. Do not cache it across a
        call to ``set_random_seed``: that call replaces it.

    Example:

    >>> import crnn
    >>> crnn.utils.set_random_seed(1)
    >>> rng = crnn.utils.get_rng()
    >>> crnn.utils.set_random_seed(1)
    >>> rng is crnn.utils.get_rng()    # replaced by set_random_seed
    False
    """
    return _GLOBAL_RNG


def make_rng(seed: int | None = None) -> np.random.Generator:
    """Returns a new generator, seeded or drawn from the global one.

    Args:
        seed: Optional non-negative int. When given, the result is
            ``np.random.default_rng(seed)`` and does not depend on the global
            generator. When ``None``, the new generator is seeded from the global
            generator, so it is reproducible after ``set_random_seed``.

    Returns:
        A ``numpy.random.Generator``.

    Raises:
        ValueError: If ``seed`` is not ``None`` or a non-negative integer.

    Example:

    >>> import crnn
    >>> rng = crnn.utils.make_rng(3)
    >>> int(rng.integers(10)) == int(crnn.utils.make_rng(3).integers(10))
    True
    """
    if seed is not None:
        return np.random.default_rng(_check_seed(seed))
    return np.random.default_rng(int(_GLOBAL_RNG.integers(0, 2**63 - 1)))
