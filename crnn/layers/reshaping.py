"""Shape layers: ``RepeatVector``, ``Flatten``, ``Reshape`` (Keras 3 semantics, no weights)."""

import numpy as np

from crnn._validation import check_positive_int
from crnn.layers.base import Layer

__all__ = ["RepeatVector", "Flatten", "Reshape"]


def _as_float(layer, x):
    x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise TypeError(f"layer {layer.name!r} needs numeric input, received dtype {x.dtype}")
    return x.astype(layer.dtype, copy=False)


class RepeatVector(Layer):
    """Repeats a ``(batch, features)`` input ``n`` times: ``(batch, n, features)``.

    The LSTM autoencoder's bridge: ``LSTM(32)`` -> ``RepeatVector(timesteps)`` ->
    ``LSTM(32, return_sequences=True)``.

    Args:
        n: number of repetitions, a positive int.
        **kwargs: base ``Layer`` arguments.

    Example:
        >>> RepeatVector(3)(np.ones((2, 4))).shape
        (2, 3, 4)
    """

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = check_positive_int("n", n)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"RepeatVector {self.name!r} needs 2-D inputs (batch, features), "
                             f"received shape {tuple(input_shape)}")
        return (input_shape[0], self.n, input_shape[1])

    def forward(self, x, training=False, mask=None):
        x = _as_float(self, x)
        if x.ndim != 2:
            raise ValueError(f"RepeatVector {self.name!r} needs 2-D inputs (batch, features), "
                             f"received shape {x.shape}")
        return np.repeat(x[:, None, :], self.n, axis=1), None

    def backward(self, cache, d_outputs):
        return d_outputs.sum(axis=1), []

    def get_config(self):
        config = super().get_config()
        config["n"] = self.n
        return config


class Flatten(Layer):
    """Flattens every axis but the batch: ``(batch, a, b)`` -> ``(batch, a * b)``.

    Args:
        data_format: ``"channels_last"`` (default, the only layout crnn uses) or None.
        **kwargs: base ``Layer`` arguments.

    Example:
        >>> Flatten()(np.ones((2, 3, 4))).shape
        (2, 12)
    """

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"data_format must be 'channels_last' or None, received {data_format!r}")
        self.data_format = "channels_last"

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        size = None if any(d is None for d in rest) else int(np.prod(rest, dtype=np.int64))
        return (input_shape[0], size)

    def _fixed_input_axes(self, ndim):
        return tuple(range(1, ndim))

    def forward(self, x, training=False, mask=None):
        x = _as_float(self, x)
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, cache, d_outputs):
        return d_outputs.reshape(cache), []

    def get_config(self):
        config = super().get_config()
        config["data_format"] = self.data_format
        return config


class Reshape(Layer):
    """Reshapes each sample to ``target_shape`` (one entry may be -1, inferred).

    Args:
        target_shape: the new shape without the batch axis, e.g. ``(4, 3)`` or ``(-1, 2)``.
        **kwargs: base ``Layer`` arguments.

    Example:
        >>> Reshape((3, 2))(np.ones((5, 6))).shape
        (5, 3, 2)
    """

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        try:
            shape = tuple(int(d) for d in target_shape)
        except (TypeError, ValueError):
            raise ValueError(f"target_shape must be a tuple of ints, received {target_shape!r}") from None
        if sum(d == -1 for d in shape) > 1 or any(d == 0 or d < -1 for d in shape):
            raise ValueError(
                f"target_shape must hold positive ints and at most one -1, received {target_shape!r}"
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

    def compute_output_shape(self, input_shape):
        if any(d is None for d in input_shape[1:]):
            return (input_shape[0],) + tuple(None if d == -1 else d for d in self.target_shape)
        return (input_shape[0],) + self._resolve(input_shape)

    def _fixed_input_axes(self, ndim):
        return tuple(range(1, ndim))

    def forward(self, x, training=False, mask=None):
        x = _as_float(self, x)
        return x.reshape((x.shape[0],) + self._resolve(x.shape)), x.shape

    def backward(self, cache, d_outputs):
        return d_outputs.reshape(cache), []

    def get_config(self):
        config = super().get_config()
        config["target_shape"] = list(self.target_shape)
        return config
