"""``Conv1D`` on ``(batch, steps, channels)``, compiled (``crnn/_kernels/_conv1d.pyx``: im2col and
col2im loops without the GIL, the products in SciPy's BLAS), as Keras 3's layer: padding
``"valid"``, ``"same"`` or ``"causal"``, ``strides``, ``dilation_rate``; kernel
``(kernel_size, channels, filters)`` then bias, Keras's layout and order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from crnn import initializers
from crnn._kernels import _conv1d
from crnn._validation import check_positive_int
from crnn.layers import activations
from crnn.layers.base import Layer, check_data_format, numeric_input

__all__ = ["Conv1D", "conv1d_geometry"]


def conv1d_geometry(steps: int, kernel_size: int, strides: int, padding: str,
                    dilation_rate: int) -> tuple[int, int]:
    """``(steps_out, pad_left)`` of a 1-D convolution, as TensorFlow pads.

    ``"valid"``: no padding; ``"causal"``: ``dilation * (kernel_size - 1)`` zeros on the left;
    ``"same"``: ``ceil(steps / strides)`` outputs, the padding split with the extra step on
    the right. The arguments are not checked (``Conv1D`` checks them).

    Args:
        steps: the input's number of steps.
        kernel_size: the window length.
        strides: the step between windows.
        padding: ``"valid"``, ``"causal"`` or ``"same"`` (any other value is taken as
            ``"same"``).
        dilation_rate: the spacing of the taps.

    Returns:
        ``(steps_out, pad_left)``: the number of output steps (0 when ``"valid"`` windows
        don't fit) and the zeros padded on the left.

    Example:
        >>> conv1d_geometry(10, 3, 1, "same", 1), conv1d_geometry(10, 3, 2, "causal", 2)
        ((10, 1), (5, 4))
        >>> conv1d_geometry(10, 3, 1, "valid", 1), conv1d_geometry(2, 3, 1, "valid", 1)
        ((8, 0), (0, 0))
    """
    span = dilation_rate * (kernel_size - 1) + 1
    if padding == "valid":
        return max((steps - span) // strides + 1, 0), 0
    if padding == "causal":
        return (steps - 1) // strides + 1, span - 1
    steps_out = -(-steps // strides)
    total = max((steps_out - 1) * strides + span - steps, 0)
    return steps_out, total // 2


def _one_int(name, value):
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    return check_positive_int(name, value)


class Conv1D(Layer):
    """1-D convolution over the steps axis: ``activation(conv(x, kernel) + bias)``.

    Args:
        filters: number of output channels, a positive int.
        kernel_size: window length, a positive int (or a 1-tuple, as Keras configs
            write it).
        strides: step between windows, a positive int (or a 1-tuple). Default 1.
        padding: ``"valid"`` (default), ``"same"`` or ``"causal"`` (output step t sees
            input steps <= t only; for forecasting models); case-insensitive.
        data_format: ``"channels_last"`` or None (default; the same).
        dilation_rate: spacing of the taps, a positive int (or a 1-tuple). Default 1.
            ``strides`` and ``dilation_rate`` can't both exceed 1 (as in Keras on
            TensorFlow).
        groups: 1 (default, the only value crnn supports).
        activation: activation name (see ``crnn.layers.activations``). Default None:
            linear.
        use_bias: add a bias. Default True.
        kernel_initializer: initializer of the ``(kernel_size, channels, filters)``
            kernel. Default ``"glorot_uniform"``.
        bias_initializer: initializer of the ``(filters,)`` bias. Default ``"zeros"``.
        **kwargs: base ``Layer`` arguments (``kernel_regularizer``,
            ``bias_constraint``...); Keras's ``lora_rank``/``lora_alpha`` only when
            unset (None or 0).

    Input shape:
        3-D array ``(batch_size, steps, channels)``.

    Output shape:
        3-D array ``(batch_size, new_steps, filters)``: ``new_steps`` is ``steps`` for
        ``"causal"``, ``ceil(steps / strides)`` for ``"same"``, and
        ``(steps - dilation_rate * (kernel_size - 1) - 1) // strides + 1`` for
        ``"valid"`` (see ``conv1d_geometry``). An incoming mask is not passed on.

    Raises:
        ValueError: if ``filters``, ``kernel_size``, ``strides`` or ``dilation_rate`` is
            not a positive int, ``strides`` and ``dilation_rate`` both exceed 1,
            ``padding``, ``data_format`` or ``groups`` has another value than above, or
            the activation or an initializer is not recognized; when built, if the input
            is not 3-D with known channels; at call time, if the channels differ from
            the built ones or ``"valid"`` windows don't fit in the steps.
        TypeError: at call time, for non-numeric inputs.
        NotImplementedError: for a nonzero ``lora_rank`` or ``lora_alpha``.

    Example:
        >>> import numpy as np
        >>> from crnn.layers import Conv1D
        >>> layer = Conv1D(4, 3, padding="causal")
        >>> layer(np.zeros((2, 5, 3), "float32")).shape
        (2, 5, 4)
        >>> layer.kernel.shape, layer.bias.shape
        ((3, 3, 4), (4,))
        >>> Conv1D(4, 3)(np.zeros((2, 5, 3), "float32")).shape   # "valid": 5 - 3 + 1 steps
        (2, 3, 4)
    """

    _regularizable = ("kernel", "bias")

    def __init__(self, filters: int, kernel_size: int | Sequence[int],
                 strides: int | Sequence[int] = 1, padding: str = "valid",
                 data_format: str | None = None, dilation_rate: int | Sequence[int] = 1,
                 groups: int = 1, activation: str | None = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 **kwargs: Any):
        for key in ("lora_rank", "lora_alpha"):
            if key in kwargs:
                value = kwargs.pop(key)
                if value:
                    raise NotImplementedError(f"Conv1D: {key}={value!r} is not supported by crnn")
        super().__init__(**kwargs)
        self.filters = check_positive_int("filters", filters)
        self.kernel_size = _one_int("kernel_size", kernel_size)
        self.strides = _one_int("strides", strides)
        self.dilation_rate = _one_int("dilation_rate", dilation_rate)
        if self.strides > 1 and self.dilation_rate > 1:
            raise ValueError(f"strides={self.strides} and dilation_rate={self.dilation_rate} can't "
                             "both be > 1 (as in Keras on TensorFlow)")
        padding = str(padding).lower()
        if padding not in ("valid", "same", "causal"):
            raise ValueError(f"padding must be 'valid', 'same' or 'causal', received {padding!r}")
        self.padding = padding
        self.data_format = check_data_format(data_format)
        if groups != 1:
            raise ValueError(f"groups must be 1 in crnn, received {groups!r}")
        self.groups = 1
        self.activation, _, _ = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, input_shape: Sequence[int | None]) -> None:
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"Conv1D {self.name!r} needs inputs (batch, steps, channels) with "
                             f"known channels, received input shape {tuple(input_shape)}")
        self.kernel = self.add_weight("kernel", (self.kernel_size, input_shape[-1], self.filters),
                                      self.kernel_initializer)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        steps = input_shape[1]
        out = None if steps is None else self._geometry(steps)[0]
        return (input_shape[0], out, self.filters)

    def compute_mask(self, inputs: ArrayLike, mask: ArrayLike | None = None) -> None:
        return None

    def _geometry(self, steps):
        return conv1d_geometry(steps, self.kernel_size, self.strides, self.padding,
                               self.dilation_rate)

    def forward(self, x: ArrayLike, training: bool = False,
                mask: ArrayLike | None = None) -> tuple[np.ndarray, Any]:
        x = numeric_input(self, x)
        if x.ndim != 3 or x.shape[2] != self.kernel.shape[1]:
            raise ValueError(f"Conv1D {self.name!r} was built for inputs (batch, steps, "
                             f"{self.kernel.shape[1]}), received shape {x.shape}")
        x = np.ascontiguousarray(x, dtype=self.dtype)
        b, t, c = x.shape
        t_out, pad_left = self._geometry(t)
        if t_out < 1:
            raise ValueError(f"Conv1D {self.name!r}: {t} steps are fewer than the kernel's span "
                             f"{self.dilation_rate * (self.kernel_size - 1) + 1} with "
                             f"padding='valid'")
        w = self.kernel.reshape(self.kernel_size * c, self.filters)
        z, cols = _conv1d.conv1d_forward(x, w, t_out, self.kernel_size, self.strides,
                                         self.dilation_rate, pad_left)
        if self.use_bias:
            z += self.bias
        z = z.reshape(b, t_out, self.filters)
        y = activations.apply(self.activation, z)
        return y, (cols, z, y, (b, t, c, t_out, pad_left))

    def backward(self, cache: Any, d_outputs: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        cols, z, y, (b, t, c, t_out, pad_left) = cache
        dz = activations.gradient(self.activation, z, y, d_outputs)
        dz2 = np.ascontiguousarray(dz.reshape(b * t_out, self.filters), dtype=self.dtype)
        w = self.kernel.reshape(self.kernel_size * c, self.filters)
        dx, d_w = _conv1d.conv1d_backward(cols, w, dz2, b, t, c, t_out, self.kernel_size,
                                          self.strides, self.dilation_rate, pad_left)
        grads = [d_w.reshape(self.kernel.shape)]
        if self.use_bias:
            grads.append(dz2.sum(axis=0))
        return dx, self._grads_for_trainable(grads)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                      padding=self.padding, data_format=self.data_format,
                      dilation_rate=self.dilation_rate, groups=self.groups,
                      activation=self.activation, use_bias=self.use_bias,
                      kernel_initializer=initializers.serialize(self.kernel_initializer),
                      bias_initializer=initializers.serialize(self.bias_initializer))
        return config
