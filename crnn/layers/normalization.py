"""``LayerNormalization`` and ``BatchNormalization`` over the last (features) axis, as Keras 3.

Notation: ``x_hat = (x - mean) / sqrt(var + epsilon)``, ``y = gamma * x_hat + beta``, with
``mean``/``var`` (biased) over the features of each position (LayerNormalization) or over all
positions of the batch for each feature (BatchNormalization).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from crnn import initializers
from crnn.layers.base import Layer, float_input

__all__ = ["LayerNormalization", "BatchNormalization"]


def _check_axis(axis):
    axis = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    if axis != [-1]:
        raise ValueError(f"crnn normalizes the last axis only: axis must be -1, received {axis!r}")
    return -1


def _check_epsilon(epsilon):
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon > 0:
        raise ValueError(f"epsilon must be a positive float, received {epsilon!r}")
    return float(epsilon)


_UNUSED_WHEN_OFF = ("beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint",
                    "renorm", "renorm_clipping", "renorm_momentum")


def _drop_unused(kwargs):
    """Keras configs list regularizers, constraints and renorm options even when off."""
    for key in _UNUSED_WHEN_OFF:
        if key in kwargs:
            value = kwargs.pop(key)
            if key != "renorm_momentum" and value:
                raise NotImplementedError(
                    f"{key}={value!r} is not supported by crnn's normalization layers")
    return kwargs


class _Normalization(Layer):
    """Shared machinery of the normalization layers: the ``gamma``/``beta`` affine part."""

    supports_masking = True

    def __init__(self, axis: int | Sequence[int], epsilon: float, center: bool, scale: bool,
                 beta_initializer: Any, gamma_initializer: Any, **kwargs: Any):
        super().__init__(**_drop_unused(kwargs))
        self.axis = _check_axis(axis)
        self.epsilon = _check_epsilon(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)

    def _build_affine(self, features):
        if self.scale:
            self.gamma = self.add_weight("gamma", (features,), self.gamma_initializer)
        if self.center:
            self.beta = self.add_weight("beta", (features,), self.beta_initializer)

    def _affine(self, x_hat):
        y = x_hat * self.gamma if self.scale else x_hat
        return y + self.beta if self.center else y

    def _affine_grads(self, x_hat, d_outputs):
        axes = tuple(range(d_outputs.ndim - 1))
        grads = []
        if self.scale:
            grads.append((d_outputs * x_hat).sum(axis=axes))
        if self.center:
            grads.append(d_outputs.sum(axis=axes))
        d_x_hat = d_outputs * self.gamma if self.scale else d_outputs
        return d_x_hat, grads

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(axis=self.axis, epsilon=self.epsilon, center=self.center, scale=self.scale,
                      beta_initializer=initializers.serialize(self.beta_initializer),
                      gamma_initializer=initializers.serialize(self.gamma_initializer))
        return config


class LayerNormalization(_Normalization):
    """Normalizes each position over its features, then scales and shifts.

    The same in training and inference (no moving statistics). The weights are
    ``gamma`` then ``beta``, each ``(features,)`` (those that ``scale``/``center`` keep).
    An incoming mask is passed on unchanged.

    Args:
        axis: -1 (the features; the only axis crnn supports, also as ``[-1]``). Default
            -1.
        epsilon: added to the variance, a positive float. Default 1e-3.
        center: learn ``beta``. Default True.
        scale: learn ``gamma``. Default True.
        rms_scaling: Keras's RMS normalization; only False (default) is supported.
        beta_initializer: initializer of ``beta``. Default ``"zeros"``.
        gamma_initializer: initializer of ``gamma``. Default ``"ones"``.
        **kwargs: base ``Layer`` arguments; Keras's ``beta_regularizer``,
            ``gamma_regularizer``, ``beta_constraint`` and ``gamma_constraint`` only when
            unset.

    Input shape:
        Any array ``(batch_size, ..., features)``.

    Output shape:
        The same as the input.

    Raises:
        ValueError: if ``axis`` is not -1, ``epsilon`` is not a positive number,
            ``rms_scaling`` is true, or an initializer is not recognized.
        NotImplementedError: for a set ``beta``/``gamma`` regularizer or constraint.
        TypeError: at call time, for non-numeric inputs.

    Example:
        >>> import numpy as np
        >>> from crnn.layers import LayerNormalization
        >>> LayerNormalization()(np.zeros((2, 5, 3), "float32")).shape
        (2, 5, 3)
        >>> y = LayerNormalization()(np.array([[1.0, 2.0, 3.0]]))
        >>> np.round(y.astype(float), 3).tolist()
        [[-1.224, 0.0, 1.224]]
    """

    def __init__(self, axis: int | Sequence[int] = -1, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, rms_scaling: bool = False,
                 beta_initializer: Any = "zeros", gamma_initializer: Any = "ones",
                 **kwargs: Any):
        if rms_scaling:
            raise ValueError("rms_scaling=True is not supported by crnn")
        super().__init__(axis, epsilon, center, scale, beta_initializer, gamma_initializer,
                         **kwargs)

    def build(self, input_shape: Sequence[int | None]) -> None:
        self._build_affine(input_shape[-1])
        super().build(input_shape)

    def forward(self, x: ArrayLike, training: bool = False,
                mask: ArrayLike | None = None) -> tuple[np.ndarray, Any]:
        x = float_input(self, x)
        mean = x.mean(axis=-1, keepdims=True)
        inv = 1.0 / np.sqrt(x.var(axis=-1, keepdims=True) + x.dtype.type(self.epsilon))
        x_hat = (x - mean) * inv
        return self._affine(x_hat), (x_hat, inv)

    def backward(self, cache: Any, d_outputs: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        x_hat, inv = cache
        d_x_hat, grads = self._affine_grads(x_hat, d_outputs)
        n = x_hat.shape[-1]
        dx = inv / n * (n * d_x_hat - d_x_hat.sum(axis=-1, keepdims=True)
                        - x_hat * (d_x_hat * x_hat).sum(axis=-1, keepdims=True))
        return dx.astype(d_outputs.dtype), self._grads_for_trainable(grads)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["rms_scaling"] = False
        return config


class BatchNormalization(_Normalization):
    """Normalizes each feature over the batch (and steps) in training, with moving statistics.

    Training (``fit``): the batch mean and (biased) variance of each feature, over every
    position (the unmasked ones when a mask arrives, as Keras), normalize the inputs, and
    ``moving = moving * momentum + batch * (1 - momentum)``. Inference (``predict``,
    ``evaluate``): the moving statistics normalize. Weights in Keras's order: ``gamma``,
    ``beta``, ``moving_mean``, ``moving_variance`` (the last two not trainable).

    Args:
        axis: -1 (the features; the only axis crnn supports, also as ``[-1]``). Default
            -1.
        momentum: of the moving statistics, a float in [0, 1]. Default 0.99.
        epsilon: added to the variance, a positive float. Default 1e-3.
        center: learn ``beta``. Default True.
        scale: learn ``gamma``. Default True.
        beta_initializer: initializer of ``beta``. Default ``"zeros"``.
        gamma_initializer: initializer of ``gamma``. Default ``"ones"``.
        moving_mean_initializer: initializer of ``moving_mean``. Default ``"zeros"``.
        moving_variance_initializer: initializer of ``moving_variance``. Default
            ``"ones"``.
        synchronized: Keras's cross-device statistics; only False (default) is
            supported.
        **kwargs: base ``Layer`` arguments; Keras's ``beta_regularizer``,
            ``gamma_regularizer``, ``beta_constraint``, ``gamma_constraint``, ``renorm``
            and ``renorm_clipping`` only when unset (``renorm_momentum`` is ignored).

    Call arguments:
        inputs: the input array, features last.
        training: normalize with the batch statistics and update the moving ones (True,
            as in ``fit``), or normalize with the moving statistics (False, default).
        mask: optional booleans of the input's shape without the features axis
            (``(batch, timesteps)`` for 3-D inputs): in training, only the True positions
            count in the batch statistics. Passed on unchanged.

    Input shape:
        Any array ``(batch_size, ..., features)``.

    Output shape:
        The same as the input.

    Raises:
        ValueError: if ``axis`` is not -1, ``momentum`` is not in [0, 1], ``epsilon`` is
            not a positive number, ``synchronized`` is true, or an initializer is not
            recognized.
        NotImplementedError: for a set ``beta``/``gamma`` regularizer or constraint, or
            ``renorm``.
        TypeError: at call time, for non-numeric inputs.

    Example:
        >>> import numpy as np
        >>> from crnn.layers import BatchNormalization
        >>> BatchNormalization()(np.zeros((2, 5, 3), "float32")).shape
        (2, 5, 3)
        >>> bn = BatchNormalization()
        >>> y = bn(np.array([[1.0], [3.0]]), training=True)
        >>> np.round(y.astype(float), 3).tolist()
        [[-1.0], [1.0]]
        >>> np.round(bn.moving_mean.astype(float), 3).tolist()      # 0.99 * 0 + 0.01 * 2
        [0.02]
    """

    def __init__(self, axis: int | Sequence[int] = -1, momentum: float = 0.99,
                 epsilon: float = 1e-3, center: bool = True, scale: bool = True,
                 beta_initializer: Any = "zeros", gamma_initializer: Any = "ones",
                 moving_mean_initializer: Any = "zeros",
                 moving_variance_initializer: Any = "ones", synchronized: bool = False,
                 **kwargs: Any):
        if synchronized:
            raise ValueError("synchronized=True is not supported by crnn")
        super().__init__(axis, epsilon, center, scale, beta_initializer, gamma_initializer,
                         **kwargs)
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) \
                or not 0 <= momentum <= 1:
            raise ValueError(f"momentum must be a float in [0, 1], received {momentum!r}")
        self.momentum = float(momentum)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)

    def build(self, input_shape: Sequence[int | None]) -> None:
        features = input_shape[-1]
        self._build_affine(features)
        self.moving_mean = self.add_weight("moving_mean", (features,), self.moving_mean_initializer,
                                           trainable=False)
        self.moving_variance = self.add_weight("moving_variance", (features,),
                                               self.moving_variance_initializer, trainable=False)
        super().build(input_shape)

    def forward(self, x: ArrayLike, training: bool = False,
                mask: ArrayLike | None = None) -> tuple[np.ndarray, Any]:
        x = float_input(self, x)
        dt = x.dtype.type
        if not training:
            inv = 1.0 / np.sqrt(self.moving_variance + dt(self.epsilon))
            x_hat = (x - self.moving_mean) * inv
            return self._affine(x_hat), (x_hat, inv, None)
        axes = tuple(range(x.ndim - 1))
        if mask is None:
            w = np.ones(x.shape[:-1] + (1,), dtype=x.dtype)
        else:
            w = np.asarray(mask, dtype=x.dtype).reshape(x.shape[:-1] + (1,))
        total = w.sum(axis=axes)
        mean = (w * x).sum(axis=axes) / total
        var = (w * np.square(x - mean)).sum(axis=axes) / total
        inv = 1.0 / np.sqrt(var + dt(self.epsilon))
        x_hat = (x - mean) * inv
        momentum = dt(self.momentum)
        self.moving_mean[...] = self.moving_mean * momentum + mean * (dt(1) - momentum)
        self.moving_variance[...] = self.moving_variance * momentum + var * (dt(1) - momentum)
        return self._affine(x_hat), (x_hat, inv, w / total)

    def backward(self, cache: Any, d_outputs: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        x_hat, inv, share = cache
        d_x_hat, grads = self._affine_grads(x_hat, d_outputs)
        if share is None:   # inference: the statistics are constants
            return (d_x_hat * inv).astype(d_outputs.dtype), self._grads_for_trainable(grads)
        axes = tuple(range(d_outputs.ndim - 1))
        # d x_k = inv * (g_k - w_k/W * sum(g) - w_k/W * x_hat_k * sum(g * x_hat))
        dx = inv * (d_x_hat - share * d_x_hat.sum(axis=axes)
                    - share * x_hat * (d_x_hat * x_hat).sum(axis=axes))
        return dx.astype(d_outputs.dtype), self._grads_for_trainable(grads)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            momentum=self.momentum,
            moving_mean_initializer=initializers.serialize(self.moving_mean_initializer),
            moving_variance_initializer=initializers.serialize(self.moving_variance_initializer),
            synchronized=False)
        return config
