"""Shape layers: ``RepeatVector``, ``Flatten``, ``Reshape`` (Keras 3 semantics, no weights)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from crnn._validation import check_positive_int
from crnn.layers.base import Layer, check_data_format, float_input

__all__ = ["RepeatVector", "Flatten", "Reshape"]


class RepeatVector(Layer):
    """Repeats a ``(batch, features)`` input ``n`` times: ``(batch, n, features)``.

    The LSTM autoencoder's bridge: ``LSTM(32)`` -> ``RepeatVector(timesteps)`` ->
    ``LSTM(32, return_sequences=True)``.

    Args:
        n: number of repetitions, a positive int.
        **kwargs: base ``Layer`` arguments.

    Input shape:
        2-D array ``(batch_size, features)``.

    Output shape:
        3-D array ``(batch_size, n, features)``.

    Raises:
        ValueError: if ``n`` is not a positive int, or the inputs are not 2-D.
        TypeError: at call time, for non-numeric inputs.

    Example:
        >>> import numpy as np
        >>> from crnn.layers import RepeatVector
        >>> RepeatVector(5)(np.zeros((2, 3), "float32")).shape
        (2, 5, 3)
    """

    def __init__(self, n: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.n = check_positive_int("n", n)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        if len(input_shape) != 2:
            raise ValueError(f"RepeatVector {self.name!r} needs 2-D inputs (batch, features), "
                             f"received shape {tuple(input_shape)}")
        return (input_shape[0], self.n, input_shape[1])

    def forward(self, x: ArrayLike, training: bool = False,
                mask: ArrayLike | None = None) -> tuple[np.ndarray, Any]:
        x = float_input(self, x)
        if x.ndim != 2:
            raise ValueError(f"RepeatVector {self.name!r} needs 2-D inputs (batch, features), "
                             f"received shape {x.shape}")
        return np.repeat(x[:, None, :], self.n, axis=1), None

    def backward(self, cache: Any, d_outputs: np.ndarray) -> tuple[np.ndarray, list[Any]]:
        return d_outputs.sum(axis=1), []

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["n"] = self.n
        return config


class Flatten(Layer):
    """Flattens every axis but the batch: ``(batch, a, b)`` -> ``(batch, a * b)``.

    Args:
        data_format: ``"channels_last"`` (the only layout crnn uses) or None (default;
            the same).
        **kwargs: base ``Layer`` arguments.

    Input shape:
        ``(batch_size, ...)``, any rank.

    Output shape:
        2-D array ``(batch_size, product of the other axes)``.

    Raises:
        ValueError: if ``data_format`` is not ``"channels_last"`` or None.
        TypeError: at call time, for non-numeric inputs.

    Example:
        >>> import numpy as np
        >>> from crnn.layers import Flatten
        >>> Flatten()(np.zeros((2, 5, 3), "float32")).shape
        (2, 15)
    """

    def __init__(self, data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.data_format = check_data_format(data_format)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        rest = input_shape[1:]
        size = None if any(d is None for d in rest) else int(np.prod(rest, dtype=np.int64))
        return (input_shape[0], size)

    def _fixed_input_axes(self, ndim):
        return tuple(range(1, ndim))

    def forward(self, x: ArrayLike, training: bool = False,
                mask: ArrayLike | None = None) -> tuple[np.ndarray, Any]:
        x = float_input(self, x)
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, cache: Any, d_outputs: np.ndarray) -> tuple[np.ndarray, list[Any]]:
        return d_outputs.reshape(cache), []

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["data_format"] = self.data_format
        return config


class Reshape(Layer):
    """Reshapes each sample to ``target_shape`` (one entry may be -1, inferred).

    Args:
        target_shape: the new shape without the batch axis, a tuple of positive ints with
            at most one -1, e.g. ``(4, 3)`` or ``(-1, 2)``.
        **kwargs: base ``Layer`` arguments.

    Input shape:
        ``(batch_size, ...)``, any rank.

    Output shape:
        ``(batch_size,) + target_shape``, the -1 resolved.

    Raises:
        ValueError: if ``target_shape`` is not a tuple of positive ints with at most one
            -1, or (when built or called) the input's size per sample doesn't fit it.
        TypeError: at call time, for non-numeric inputs.

    Example:
        >>> import numpy as np
        >>> from crnn.layers import Reshape
        >>> Reshape((15,))(np.zeros((2, 5, 3), "float32")).shape
        (2, 15)
        >>> Reshape((-1, 5))(np.zeros((2, 5, 3), "float32")).shape
        (2, 3, 5)
    """

    def __init__(self, target_shape: Sequence[int], **kwargs: Any):
        super().__init__(**kwargs)
        try:
            shape = tuple(int(d) for d in target_shape)
        except (TypeError, ValueError):
            raise ValueError(
                f"target_shape must be a tuple of ints, received {target_shape!r}") from None
        if sum(d == -1 for d in shape) > 1 or any(d == 0 or d < -1 for d in shape):
            raise ValueError(
                f"target_shape must hold positive ints and at most one -1, received "
                f"{target_shape!r}"
            )
        self.target_shape = shape

    def _resolve(self, input_shape):
        size = int(np.prod(input_shape[1:], dtype=np.int64))
        known = int(np.prod([d for d in self.target_shape if d != -1], dtype=np.int64))
        if -1 in self.target_shape:
            if size % known:
                raise ValueError(f"Reshape {self.name!r}: input of shape {tuple(input_shape)} "
                                 f"can't be reshaped to {self.target_shape}")
            return tuple(size // known if d == -1 else d for d in self.target_shape)
        if known != size:
            raise ValueError(
                f"Reshape {self.name!r}: total size of the new array must be unchanged, input "
                f"shape {tuple(input_shape)}, target_shape {self.target_shape}"
            )
        return self.target_shape

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        if any(d is None for d in input_shape[1:]):
            return (input_shape[0],) + tuple(None if d == -1 else d for d in self.target_shape)
        return (input_shape[0],) + self._resolve(input_shape)

    def _fixed_input_axes(self, ndim):
        return tuple(range(1, ndim))

    def forward(self, x: ArrayLike, training: bool = False,
                mask: ArrayLike | None = None) -> tuple[np.ndarray, Any]:
        x = float_input(self, x)
        return x.reshape((x.shape[0],) + self._resolve(x.shape)), x.shape

    def backward(self, cache: Any, d_outputs: np.ndarray) -> tuple[np.ndarray, list[Any]]:
        return d_outputs.reshape(cache), []

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["target_shape"] = list(self.target_shape)
        return config
