"""Temporal pooling: ``GlobalAveragePooling1D`` (mask-aware), ``GlobalMaxPooling1D``,
``MaxPooling1D`` and ``AveragePooling1D`` on ``(batch, steps, features)`` inputs, as Keras 3
(``data_format="channels_last"``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from crnn._validation import check_positive_int
from crnn.layers.base import Layer, check_data_format, numeric_input

__all__ = ["GlobalAveragePooling1D", "GlobalMaxPooling1D", "MaxPooling1D", "AveragePooling1D"]


def _check_3d(layer, x):
    x = numeric_input(layer, x)
    if x.ndim != 3:
        raise ValueError(f"layer {layer.name!r} needs 3-D inputs (batch, steps, features), "
                         f"received shape {x.shape}")
    return x.astype(layer.dtype, copy=False)


class _GlobalPooling1D(Layer):
    """Shared machinery of the global pooling layers (arguments: see
    ``GlobalAveragePooling1D``)."""

    def __init__(self, data_format: str | None = None, keepdims: bool = False,
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.data_format = check_data_format(data_format)
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        if self.keepdims:
            return (input_shape[0], 1, input_shape[-1])
        return (input_shape[0], input_shape[-1])

    def compute_mask(self, inputs: ArrayLike, mask: ArrayLike | None = None) -> None:
        return None

    def _shape_out(self, y):
        return y[:, None, :] if self.keepdims else y

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(data_format=self.data_format, keepdims=self.keepdims)
        return config


class GlobalAveragePooling1D(_GlobalPooling1D):
    """Mean over the steps axis; with a mask, the mean over the unmasked steps (as Keras).

    Args:
        data_format: ``"channels_last"`` or None (default; the same).
        keepdims: keep the steps axis (length 1). Default False.
        **kwargs: base ``Layer`` arguments.

    Call arguments:
        inputs: a 3-D array ``(batch, steps, features)``.
        mask: optional ``(batch, steps)`` booleans: the mean is over the True steps (a
            sample with none gives NaN, as in Keras). The mask is not passed on.

    Input shape:
        3-D array ``(batch_size, steps, features)``.

    Output shape:
        ``(batch_size, features)``, or ``(batch_size, 1, features)`` with ``keepdims``.

    Raises:
        ValueError: if ``data_format`` is not ``"channels_last"`` or None; at call time,
            if the inputs are not 3-D or the mask doesn't fit them.
        TypeError: at call time, for non-numeric inputs.

    Example:
        >>> import numpy as np
        >>> from crnn.layers import GlobalAveragePooling1D
        >>> x = np.zeros((2, 5, 3), "float32")
        >>> GlobalAveragePooling1D()(x).shape, GlobalAveragePooling1D(keepdims=True)(x).shape
        ((2, 3), (2, 1, 3))
        >>> x = np.array([[[1.0], [3.0], [9.0]]])
        >>> GlobalAveragePooling1D()(x, mask=np.array([[True, True, False]])).tolist()
        [[2.0]]
    """

    supports_masking = True

    def forward(self, x: ArrayLike, training: bool = False,
                mask: ArrayLike | None = None) -> tuple[np.ndarray, Any]:
        x = _check_3d(self, x)
        if mask is None:
            return self._shape_out(x.mean(axis=1)), (None, x.shape)
        m = np.asarray(mask, dtype=bool)
        if m.shape != x.shape[:2]:
            raise ValueError(f"mask of shape {m.shape} doesn't fit input of shape {x.shape}")
        w = m.astype(x.dtype)[:, :, None]
        count = w.sum(axis=1)           # a fully masked sample divides 0 by 0 (NaN), as Keras
        with np.errstate(invalid="ignore", divide="ignore"):
            y = np.where(m[:, :, None], x, 0).sum(axis=1) / count
        return self._shape_out(y), (w / count[:, None, :], x.shape)

    def backward(self, cache: Any, d_outputs: np.ndarray) -> tuple[np.ndarray, list[Any]]:
        weights, shape = cache
        d = d_outputs.reshape(shape[0], 1, shape[2])
        if weights is None:
            return np.broadcast_to(d / shape[1], shape).astype(d_outputs.dtype), []
        return (d * weights).astype(d_outputs.dtype), []


class GlobalMaxPooling1D(_GlobalPooling1D):
    """Max over the steps axis. As in Keras 3, a mask is not used (masked steps count).

    Args:
        data_format: ``"channels_last"`` or None (default; the same).
        keepdims: keep the steps axis (length 1). Default False.
        **kwargs: base ``Layer`` arguments.

    Input shape:
        3-D array ``(batch_size, steps, features)``.

    Output shape:
        ``(batch_size, features)``, or ``(batch_size, 1, features)`` with ``keepdims``.

    Raises:
        ValueError: if ``data_format`` is not ``"channels_last"`` or None; at call time,
            if the inputs are not 3-D.
        TypeError: at call time, for non-numeric inputs.

    Example:
        >>> import numpy as np
        >>> from crnn.layers import GlobalMaxPooling1D
        >>> GlobalMaxPooling1D()(np.zeros((2, 5, 3), "float32")).shape
        (2, 3)
        >>> GlobalMaxPooling1D()(np.array([[[1.0], [3.0], [2.0]]])).tolist()
        [[3.0]]
    """

    def forward(self, x: ArrayLike, training: bool = False,
                mask: ArrayLike | None = None) -> tuple[np.ndarray, Any]:
        x = _check_3d(self, x)
        arg = x.argmax(axis=1)          # ties: the first maximum gets the gradient
        return self._shape_out(x.max(axis=1)), (arg, x.shape)

    def backward(self, cache: Any, d_outputs: np.ndarray) -> tuple[np.ndarray, list[Any]]:
        arg, shape = cache
        d = d_outputs.reshape(shape[0], shape[2])
        dx = np.zeros(shape, dtype=d_outputs.dtype)
        b, f = np.meshgrid(np.arange(shape[0]), np.arange(shape[2]), indexing="ij")
        dx[b, arg, f] = d
        return dx, []


def _one_int(name, value):
    # Keras writes (2,) or [2] in its configs.
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    return check_positive_int(name, value)


class _Pooling1D(Layer):
    """Shared machinery of the windowed pooling layers (arguments: see ``MaxPooling1D``)."""

    def __init__(self, pool_size: int | Sequence[int] = 2,
                 strides: int | Sequence[int] | None = None, padding: str = "valid",
                 data_format: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.pool_size = _one_int("pool_size", pool_size)
        self.strides = self.pool_size if strides is None else _one_int("strides", strides)
        padding = str(padding).lower()
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', received {padding!r}")
        self.padding = padding
        self.data_format = check_data_format(data_format)

    def _out_steps(self, steps):
        if self.padding == "valid":
            return (steps - self.pool_size) // self.strides + 1
        return -(-steps // self.strides)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        steps = input_shape[1]
        out = None if steps is None else self._out_steps(steps)
        return (input_shape[0], out, input_shape[2])

    def _windows(self, steps):
        """Start and end of each window; 'same' pads as TensorFlow (more at the end)."""
        n_out = self._out_steps(steps)
        if n_out < 1:
            raise ValueError(f"layer {self.name!r}: {steps} steps are fewer than pool_size="
                             f"{self.pool_size} with padding='valid'")
        pad = 0
        if self.padding == "same":
            pad = max((n_out - 1) * self.strides + self.pool_size - steps, 0) // 2
        starts = np.arange(n_out) * self.strides - pad
        return np.maximum(starts, 0), np.minimum(starts + self.pool_size, steps)

    def _prepare(self, x):
        """The checked input, its windows' starts and ends, and an empty output for them."""
        x = _check_3d(self, x)
        starts, ends = self._windows(x.shape[1])
        return x, starts, ends, np.empty((x.shape[0], len(starts), x.shape[2]), dtype=x.dtype)

    def compute_mask(self, inputs: ArrayLike, mask: ArrayLike | None = None) -> None:
        return None

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(pool_size=self.pool_size, strides=self.strides, padding=self.padding,
                      data_format=self.data_format)
        return config


class MaxPooling1D(_Pooling1D):
    """Max over windows of ``pool_size`` steps, every ``strides`` steps.

    Args:
        pool_size: window length, a positive int (or a 1-tuple). Default 2.
        strides: step between windows, a positive int (or a 1-tuple). Default None:
            ``pool_size``.
        padding: ``"valid"`` (default) or ``"same"`` (``ceil(steps / strides)`` outputs;
            the padding is ignored, as in Keras); case-insensitive.
        data_format: ``"channels_last"`` or None (default; the same).
        **kwargs: base ``Layer`` arguments.

    Input shape:
        3-D array ``(batch_size, steps, features)``.

    Output shape:
        3-D array ``(batch_size, new_steps, features)``: ``new_steps`` is
        ``(steps - pool_size) // strides + 1`` for ``"valid"``, ``ceil(steps / strides)``
        for ``"same"``. An incoming mask is not passed on.

    Raises:
        ValueError: if ``pool_size`` or ``strides`` is not a positive int, or ``padding``
            or ``data_format`` has another value than above; at call time, if the inputs
            are not 3-D or have fewer steps than ``pool_size`` with ``"valid"``.
        TypeError: at call time, for non-numeric inputs.

    Example:
        >>> import numpy as np
        >>> from crnn.layers import MaxPooling1D
        >>> MaxPooling1D(2)(np.zeros((2, 5, 3), "float32")).shape
        (2, 2, 3)
        >>> MaxPooling1D(2, padding="same")(np.zeros((2, 5, 3), "float32")).shape
        (2, 3, 3)
        >>> MaxPooling1D(2)(np.arange(6.0).reshape(1, 6, 1))[0, :, 0].tolist()
        [1.0, 3.0, 5.0]
    """

    def forward(self, x: ArrayLike, training: bool = False,
                mask: ArrayLike | None = None) -> tuple[np.ndarray, Any]:
        x, starts, ends, out = self._prepare(x)
        arg = np.empty(out.shape, dtype=np.int64)
        for k, (s, e) in enumerate(zip(starts, ends)):
            window = x[:, s:e, :]
            idx = window.argmax(axis=1)
            arg[:, k, :] = s + idx
            out[:, k, :] = np.take_along_axis(window, idx[:, None, :], axis=1)[:, 0, :]
        return out, (arg, x.shape)

    def backward(self, cache: Any, d_outputs: np.ndarray) -> tuple[np.ndarray, list[Any]]:
        arg, shape = cache
        dx = np.zeros(shape, dtype=d_outputs.dtype)
        b = np.arange(shape[0])[:, None, None]
        f = np.arange(shape[2])[None, None, :]
        np.add.at(dx, (np.broadcast_to(b, arg.shape), arg, np.broadcast_to(f, arg.shape)),
                  d_outputs)
        return dx, []


class AveragePooling1D(_Pooling1D):
    """Mean over windows of ``pool_size`` steps, every ``strides`` steps.

    Args:
        pool_size: window length, a positive int (or a 1-tuple). Default 2.
        strides: step between windows, a positive int (or a 1-tuple). Default None:
            ``pool_size``.
        padding: ``"valid"`` (default) or ``"same"`` (the padded steps are not counted in
            the mean, as in Keras on TensorFlow); case-insensitive.
        data_format: ``"channels_last"`` or None (default; the same).
        **kwargs: base ``Layer`` arguments.

    Input shape:
        3-D array ``(batch_size, steps, features)``.

    Output shape:
        3-D array ``(batch_size, new_steps, features)``: ``new_steps`` is
        ``(steps - pool_size) // strides + 1`` for ``"valid"``, ``ceil(steps / strides)``
        for ``"same"``. An incoming mask is not passed on.

    Raises:
        ValueError: if ``pool_size`` or ``strides`` is not a positive int, or ``padding``
            or ``data_format`` has another value than above; at call time, if the inputs
            are not 3-D or have fewer steps than ``pool_size`` with ``"valid"``.
        TypeError: at call time, for non-numeric inputs.

    Example:
        >>> import numpy as np
        >>> from crnn.layers import AveragePooling1D
        >>> AveragePooling1D(2, strides=1)(np.zeros((2, 5, 3), "float32")).shape
        (2, 4, 3)
        >>> AveragePooling1D(2)(np.arange(4.0).reshape(1, 4, 1))[0, :, 0].tolist()
        [0.5, 2.5]
    """

    def forward(self, x: ArrayLike, training: bool = False,
                mask: ArrayLike | None = None) -> tuple[np.ndarray, Any]:
        x, starts, ends, out = self._prepare(x)
        for k, (s, e) in enumerate(zip(starts, ends)):
            out[:, k, :] = x[:, s:e, :].mean(axis=1)
        return out, (starts, ends, x.shape)

    def backward(self, cache: Any, d_outputs: np.ndarray) -> tuple[np.ndarray, list[Any]]:
        starts, ends, shape = cache
        dx = np.zeros(shape, dtype=d_outputs.dtype)
        for k, (s, e) in enumerate(zip(starts, ends)):
            dx[:, s:e, :] += d_outputs[:, k:k + 1, :] / (e - s)
        return dx, []
