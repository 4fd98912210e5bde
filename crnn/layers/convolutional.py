"""``Conv1D`` on ``(batch, steps, channels)``, compiled (``crnn/_kernels/_conv1d.pyx``: im2col and
col2im loops without the GIL, the products in SciPy's BLAS), as Keras 3's layer: padding
``"valid"``, ``"same"`` or ``"causal"``, ``strides``, ``dilation_rate``; kernel
``(kernel_size, channels, filters)`` then bias, Keras's layout and order."""

import numpy as np

from crnn import initializers
from crnn._kernels import _conv1d
from crnn._validation import check_positive_int
from crnn.layers import activations
from crnn.layers.base import Layer

__all__ = ["Conv1D", "conv1d_geometry"]


def conv1d_geometry(steps, kernel_size, strides, padding, dilation_rate):
    """``(steps_out, pad_left)`` of a 1-D convolution, as TensorFlow pads.

    ``"valid"``: no padding; ``"causal"``: ``dilation * (kernel_size - 1)`` zeros on the left;
    ``"same"``: ``ceil(steps / strides)`` outputs, the padding split with the extra step on
    the right.

    Example:
        >>> conv1d_geometry(10, 3, 1, "same", 1), conv1d_geometry(10, 3, 2, "causal", 2)
        ((10, 1), (5, 4))
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
        filters: number of output channels.
        kernel_size: window length.
        strides: step between windows. Default 1.
        padding: ``"valid"`` (default), ``"same"`` or ``"causal"`` (output step t sees
            input steps <= t only; for forecasting models).
        data_format: ``"channels_last"`` (default) or None.
        dilation_rate: spacing of the taps. Default 1. ``strides`` and ``dilation_rate``
            can't both exceed 1 (as in Keras on TensorFlow).
        groups: 1 (the only value crnn supports).
        activation: activation name (default None: linear).
        use_bias: add a bias. Default True.
        kernel_initializer: default ``"glorot_uniform"``.
        bias_initializer: default ``"zeros"``.
        **kwargs: base ``Layer`` arguments.

    Example:
        >>> Conv1D(4, 3, padding="causal")(np.ones((2, 10, 3))).shape
        (2, 10, 4)
    """

    _regularizable = ("kernel", "bias")

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
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
        if data_format not in (None, "channels_last"):
            raise ValueError(f"data_format must be 'channels_last' or None, received {data_format!r}")
        self.data_format = "channels_last"
        if groups != 1:
            raise ValueError(f"groups must be 1 in crnn, received {groups!r}")
        self.groups = 1
        self.activation, _, _ = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"Conv1D {self.name!r} needs inputs (batch, steps, channels) with known "
                             f"channels, received input shape {tuple(input_shape)}")
        self.kernel = self.add_weight("kernel", (self.kernel_size, input_shape[-1], self.filters),
                                      self.kernel_initializer)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        steps = input_shape[1]
        out = None if steps is None else self._geometry(steps)[0]
        return (input_shape[0], out, self.filters)

    def compute_mask(self, inputs, mask=None):
        return None

    def _geometry(self, steps):
        return conv1d_geometry(steps, self.kernel_size, self.strides, self.padding, self.dilation_rate)

    def forward(self, x, training=False, mask=None):
        x = np.asarray(x)
        if x.dtype.kind not in "fiub":
            raise TypeError(f"layer {self.name!r} needs numeric input, received dtype {x.dtype}")
        if x.ndim != 3 or x.shape[2] != self.kernel.shape[1]:
            raise ValueError(f"Conv1D {self.name!r} was built for inputs (batch, steps, "
                             f"{self.kernel.shape[1]}), received shape {x.shape}")
        x = np.ascontiguousarray(x, dtype=self.dtype)
        b, t, c = x.shape
        t_out, pad_left = self._geometry(t)
        if t_out < 1:
            raise ValueError(f"Conv1D {self.name!r}: {t} steps are fewer than the kernel's span "
                             f"{self.dilation_rate * (self.kernel_size - 1) + 1} with padding='valid'")
        w = self.kernel.reshape(self.kernel_size * c, self.filters)
        z, cols = _conv1d.conv1d_forward(x, w, t_out, self.kernel_size, self.strides,
                                         self.dilation_rate, pad_left)
        if self.use_bias:
            z += self.bias
        z = z.reshape(b, t_out, self.filters)
        y = activations.apply(self.activation, z)
        return y, (cols, z, y, (b, t, c, t_out, pad_left))

    def backward(self, cache, d_outputs):
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

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                      padding=self.padding, data_format=self.data_format,
                      dilation_rate=self.dilation_rate, groups=self.groups,
                      activation=self.activation, use_bias=self.use_bias,
                      kernel_initializer=initializers.serialize(self.kernel_initializer),
                      bias_initializer=initializers.serialize(self.bias_initializer))
        return config
