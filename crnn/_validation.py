"""Argument checks shared across crnn (internal; the one place for them).

Each check either answers a yes/no question (``is_int``, ``is_number``), so that the
caller keeps its own message, or raises the house message itself (``check_positive_int``):
a ``ValueError`` naming the argument, what was expected and what was received.

``bool`` is an ``int`` subclass in Python, but ``units=True`` or ``patience=False`` is
almost certainly a mistake, so neither check accepts booleans (NumPy's included).

Example:
    >>> is_int(3), is_int(np.int64(3)), is_int(True), is_int(3.0)
    (True, True, False, False)
    >>> is_int(0, minimum=1)
    False
    >>> check_positive_int("units", np.int32(8))
    8
    >>> check_positive_int("units", 0)
    Traceback (most recent call last):
    ...
    ValueError: units must be a positive int, received 0
"""

import numpy as np

__all__ = ["is_int", "is_number", "check_positive_int", "check_bool"]


def is_int(value: object, minimum: "int | None" = None) -> bool:
    """Whether ``value`` is an int (Python or NumPy, not bool), at least ``minimum``.

    Args:
        value: anything.
        minimum: the smallest value accepted (default None: any int).

    Returns:
        True or False.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        return False
    return minimum is None or value >= minimum


def is_number(value: object) -> bool:
    """Whether ``value`` is a real number (Python or NumPy int or float, not bool).

    Args:
        value: anything.

    Returns:
        True or False. NaN and infinities are numbers here; check finiteness apart.
    """
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` as an int if it is a positive int, else raise.

    Args:
        name: the argument's name, for the message.
        value: the value received.

    Returns:
        ``int(value)``.

    Raises:
        ValueError: ``"{name} must be a positive int, received {value!r}"``.
    """
    if not is_int(value, minimum=1):
        raise ValueError(f"{name} must be a positive int, received {value!r}")
    return int(value)


def check_bool(name: str, value: object) -> bool:
    """``bool(value)`` if ``value`` is a bool (Python or NumPy), else raise.

    ``name`` is the argument's name; the ``ValueError`` reads
    ``"Argument `{name}` must be a bool. Received: {name}={value!r}."``.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"Argument `{name}` must be a bool. Received: {name}={value!r}.")
    return bool(value)
