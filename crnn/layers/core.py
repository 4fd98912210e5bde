"""Feed-forward layers: ``Dense``, ``Dropout``, ``Activation``, ``Embedding``, ``Masking``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from crnn import initializers, utils
from crnn._validation import check_positive_int
from crnn.layers import activations
from crnn.layers.base import Layer, check_rate, numeric_input
from crnn.optimizers import IndexedSlices, _add_rows

__all__ = ["Dense", "Dropout", "Activation", "Embedding", "Masking"]


def _as_float(layer, x, last_axis=None):
    """``x`` in the layer's dtype, its dtype and (optionally) last axis checked first.

    The shape is checked before the conversion, so that a wrong-shaped broadcast view
    (zero strides, little memory) fails on its shape rather than on its full-size copy.
    """
    x = numeric_input(layer, x)
    if last_axis is not None:
        _check_last_axis(layer, x, last_axis)
    return x.astype(layer.dtype, copy=False)


def _check_last_axis(layer, x, expected):
    if x.ndim < 1 or x.shape[-1] != expected:
        raise ValueError(
            f"layer {layer.name!r} was built for inputs with last axis {expected}, "
            f"received input of shape {x.shape}"
        )


def _noise_shape(value):
    """A Dropout ``noise_shape``: a tuple of positive ints or None (checked, as Keras's)."""
    try:
        entries = tuple(value)
    except TypeError:
        raise ValueError(f"noise_shape must be a tuple of positive ints or None (one per input "
                         f"axis), received {value!r}") from None
    for v in entries:
        if v is not None and (isinstance(v, (bool, np.bool_)) or not isinstance(
                v, (int, np.integer)) or v <= 0):
            raise ValueError(f"noise_shape must be a tuple of positive ints or None (one per "
                             f"input axis), received {value!r}")
    return tuple(None if v is None else int(v) for v in entries)


class Dense(Layer):
    """Densely connected layer on the last axis: ``activation(x @ kernel + bias)``.

    Works on inputs of any rank of at least 2 (``(batch, features)``,
    ``(batch, timesteps, features)``...), on the last axis, as in Keras. The weights are
    ``kernel`` ``(features, units)`` then ``bias`` ``(units,)``. An incoming mask is passed
    on unchanged.

    Args:
        units: output size, a positive int.
        activation: activation name (see ``crnn.layers.activations``). Default None:
            linear.
        use_bias: whether to add a bias. Default True.
        kernel_initializer: initializer of the kernel. Default ``"glorot_uniform"``.
        bias_initializer: initializer of the bias. Default ``"zeros"``.
        **kwargs: base ``Layer`` arguments (``name``, ``input_shape``,
            ``batch_input_shape``, ``dtype``, ``kernel_regularizer``,
            ``bias_constraint``...).

    Input shape:
        N-D array ``(batch_size, ..., features)``, N >= 2.

    Output shape:
        N-D array ``(batch_size, ..., units)``.

    Raises:
        ValueError: if ``units`` is not a positive int, the activation or an initializer
            is not recognized, or (when built) the input's last axis is unknown or,
            at call time, differs from the one it was built for.
        TypeError: at call time, for non-numeric inputs.

    Example:
        >>> import numpy as np
        >>> from crnn.layers import Dense
        >>> layer = Dense(4, activation="relu")
        >>> y = layer(np.zeros((2, 5, 3), "float32"))
        >>> y.shape, layer.kernel.shape, layer.bias.shape
        ((2, 5, 4), (3, 4), (4,))
    """

    supports_masking = True
    _regularizable = ("kernel", "bias")

    def __init__(self, units: int, activation: str | None = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        self.activation, _, _ = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, input_shape: Sequence[int | None]) -> None:
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(
                f"Dense layer {self.name!r} needs inputs with a known last axis, "
                f"received input shape {tuple(input_shape)}"
            )
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units),
                                      self.kernel_initializer)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.units,), self.bias_initializer)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return tuple(input_shape[:-1]) + (self.units,)

    def forward(self, x: ArrayLike, training: bool = False,
                mask: ArrayLike | None = None) -> tuple[np.ndarray, Any]:
        x = _as_float(self, x, last_axis=self.kernel.shape[0])
        z = x @ self.kernel
        if self.use_bias:
            z += self.bias      # in place: z is the product's new array
        y = activations.apply(self.activation, z)
        return y, (x, z, y)

    def backward(self, cache: Any, d_outputs: np.ndarray, *,
                 need_dx: bool = True) -> tuple[np.ndarray | None, list[Any]]:
        x, z, y = cache
        dz = activations.gradient(self.activation, z, y, d_outputs)
        dz2 = dz.reshape(-1, self.units)
        grads = [x.reshape(-1, x.shape[-1]).T @ dz2]
        if self.use_bias:
            grads.append(dz2.sum(axis=0))
        return (dz @ self.kernel.T if need_dx else None), self._grads_for_trainable(grads)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(units=self.units, activation=self.activation, use_bias=self.use_bias,
                      kernel_initializer=initializers.serialize(self.kernel_initializer),
                      bias_initializer=initializers.serialize(self.bias_initializer))
        return config


class Activation(Layer):
    """Applies an activation function element-wise (``softmax`` and ``log_softmax`` on
    the last axis). An incoming mask is passed on unchanged.

    Args:
        activation: activation name, e.g. ``"relu"``, ``"tanh"``, ``"softmax"`` (see
            ``crnn.layers.activations``), or None for linear.
        **kwargs: base ``Layer`` arguments.

    Input shape:
        Any array.

    Output shape:
        The same as the input.

    Raises:
        ValueError: if the activation is not recognized.
        TypeError: at call time, for non-numeric inputs.

    Example:
        >>> import numpy as np
        >>> from crnn.layers import Activation
        >>> Activation("relu")(np.zeros((2, 5, 3), "float32")).shape
        (2, 5, 3)
        >>> Activation("relu")(np.array([[-1.0, 2.0]]))
        array([[0., 2.]], dtype=float32)
    """

    supports_masking = True

    def __init__(self, activation: str | None, **kwargs: Any):
        super().__init__(**kwargs)
        self.activation, _, _ = activations.get(activation)

    def forward(self, x: ArrayLike, training: bool = False,
                mask: ArrayLike | None = None) -> tuple[np.ndarray, Any]:
        z = _as_float(self, x)
        y = activations.apply(self.activation, z)
        return y, (z, y)

    def backward(self, cache: Any, d_outputs: np.ndarray) -> tuple[np.ndarray, list[Any]]:
        z, y = cache
        return activations.gradient(self.activation, z, y, d_outputs), []

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["activation"] = self.activation
        return config


class Dropout(Layer):
    """Randomly zeroes a fraction ``rate`` of the inputs during training.

    Kept values are scaled by ``1 / (1 - rate)`` so that the expected sum is unchanged;
    at inference the layer is the identity. An incoming mask is passed on unchanged.

    Args:
        rate: fraction of the inputs to drop, a float in [0, 1).
        noise_shape: shape of the binary mask, broadcast against the input (None entries
            take the input's size), e.g. ``(None, 1, None)`` to drop the same features at
            every timestep. Default None: the input's shape.
        seed: seed of the layer's own random generator, a non-negative int. Default
            None: drawn from ``crnn.utils``'s global generator.
        **kwargs: base ``Layer`` arguments.

    Call arguments:
        inputs: the input array.
        training: drop only when True (``fit``). Default False: the identity.

    Input shape:
        Any array.

    Output shape:
        The same as the input.

    Raises:
        ValueError: if ``rate`` is not in [0, 1), ``noise_shape`` is not a tuple of
            positive ints or None (or, at call time, has not one entry per input axis),
            or ``seed`` is not a non-negative int.
        TypeError: at call time, for non-numeric inputs.

    Example:
        >>> import numpy as np
        >>> from crnn.layers import Dropout
        >>> layer = Dropout(0.5, seed=1)
        >>> x = np.ones((2, 5, 3), "float32")
        >>> bool((layer(x) == x).all())        # inference: the identity
        True
        >>> y = layer(x, training=True)
        >>> y.shape, bool(np.isin(y, [0.0, 2.0]).all())    # dropped, or kept * 2
        ((2, 5, 3), True)
    """

    supports_masking = True

    def __init__(self, rate: float, noise_shape: Sequence[int | None] | None = None,
                 seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.rate = check_rate("rate", rate)
        self.noise_shape = None if noise_shape is None else _noise_shape(noise_shape)
        self.seed = seed
        self._rng = utils.make_rng(seed)

    def forward(self, x: ArrayLike, training: bool = False,
                mask: ArrayLike | None = None) -> tuple[np.ndarray, Any]:
        x = _as_float(self, x)
        if not training or self.rate == 0:
            return x, None
        shape = x.shape
        if self.noise_shape is not None:
            if len(self.noise_shape) != x.ndim:
                raise ValueError(
                    f"noise_shape {self.noise_shape} of layer {self.name!r} must have one "
                    f"entry per input axis; input shape {x.shape}"
                )
            shape = tuple(s if n is None else n for n, s in zip(self.noise_shape, x.shape))
        keep = (self._rng.random(shape) >= self.rate).astype(x.dtype) / (1 - self.rate)
        return x * keep, keep

    def backward(self, cache: Any, d_outputs: np.ndarray) -> tuple[np.ndarray, list[Any]]:
        if cache is None:
            return d_outputs, []
        return d_outputs * cache, []

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(rate=self.rate, noise_shape=None if self.noise_shape is None
                      else list(self.noise_shape), seed=self.seed)
        return config


class Embedding(Layer):
    """Turns integer indices into dense vectors: ``embeddings[x]``.

    Args:
        input_dim: vocabulary size, a positive int (indices must be in
            ``[0, input_dim)``).
        output_dim: size of each vector, a positive int.
        embeddings_initializer: initializer of the ``(input_dim, output_dim)`` table.
            Default ``"uniform"`` (Keras's ``RandomUniform(-0.05, 0.05)``).
        mask_zero: treat index 0 as padding and emit a mask, which the recurrent layers
            downstream use to skip those timesteps. Index 0 then can't be a real token,
            so ``input_dim`` should be the vocabulary size + 1. Default False.
        input_length: accepted for Keras 2 compatibility (the timesteps): sets
            ``input_shape=(input_length,)`` when no input shape is given. Default None.
        sparse_gradient: how the embeddings' gradient reaches the optimizer.
            True (default): as Keras on TensorFlow, one row per looked-up index
            (a ``crnn.optimizers.IndexedSlices``), which Adam, RMSprop, Adagrad,
            Adamax and Nadam apply row occurrence by row occurrence (a token seen
            twice adds two squared rows to Adam's second moment) and clipping sees
            row by row. False: the rows of repeated indices are summed first into
            a dense gradient, as Keras on JAX and PyTorch. Not part of Keras's
            config (written only when False).
        **kwargs: base ``Layer`` arguments (``embeddings_regularizer``,
            ``embeddings_constraint``...).

    Input shape:
        Integer indices of any shape, usually ``(batch_size, sequence_length)`` (floats
        with integral values are accepted).

    Output shape:
        The input shape plus ``(output_dim,)``: ``(batch_size, sequence_length,
        output_dim)``.

    Raises:
        ValueError: if ``input_dim`` or ``output_dim`` is not a positive int,
            ``sparse_gradient`` is not a bool, the initializer is not recognized, or, at
            call time, an index is outside ``[0, input_dim)`` or not an integer.
        TypeError: at call time, for inputs that are not numbers.

    Example:
        >>> import numpy as np
        >>> from crnn.layers import Embedding
        >>> layer = Embedding(10, 4, mask_zero=True)
        >>> x = np.array([[1, 2, 0], [4, 0, 0]])
        >>> layer(x).shape, layer.embeddings.shape
        ((2, 3, 4), (10, 4))
        >>> layer.compute_mask(x)
        array([[ True,  True, False],
               [ True, False, False]])
    """

    _regularizable = ("embeddings",)

    def __init__(self, input_dim: int, output_dim: int, embeddings_initializer: Any = "uniform",
                 mask_zero: bool = False, input_length: int | None = None,
                 sparse_gradient: bool = True, **kwargs: Any):
        if input_length is not None and "input_shape" not in kwargs \
                and "batch_input_shape" not in kwargs:
            kwargs["input_shape"] = (input_length,)
        super().__init__(**kwargs)
        self.input_dim = check_positive_int("input_dim", input_dim)
        self.output_dim = check_positive_int("output_dim", output_dim)
        if embeddings_initializer == "uniform":
            embeddings_initializer = {"class_name": "RandomUniform",
                                      "config": {"minval": -0.05, "maxval": 0.05}}
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero
        if not isinstance(sparse_gradient, (bool, np.bool_)):
            raise ValueError(f"sparse_gradient must be True or False, received {sparse_gradient!r}")
        self.sparse_gradient = bool(sparse_gradient)

    def build(self, input_shape: Sequence[int | None]) -> None:
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          self.embeddings_initializer)
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return tuple(input_shape) + (self.output_dim,)

    def _fixed_input_axes(self, ndim):
        # Indices: no input axis sizes a weight (the vocabulary sizes the table).
        return ()

    def _indices(self, x):
        x = np.asarray(x)
        if x.dtype.kind == "f":
            if not np.all(np.isfinite(x)) or not np.all(x == np.round(x)):
                raise ValueError(f"Embedding {self.name!r} needs integer indices, received "
                                 f"non-integer values")
        elif x.dtype.kind not in "iub":
            raise TypeError(
                f"Embedding {self.name!r} needs integer indices, received dtype {x.dtype}")
        x = x.astype(np.int64)
        if x.size and (x.min() < 0 or x.max() >= self.input_dim):
            raise ValueError(
                f"Embedding {self.name!r} has input_dim={self.input_dim}, so indices must be in "
                f"[0, {self.input_dim - 1}]; received indices from {x.min()} to {x.max()}. "
                f"Increase input_dim or fix the data"
            )
        return x

    def compute_mask(self, inputs: ArrayLike,
                     mask: ArrayLike | None = None) -> np.ndarray | None:
        if not self.mask_zero:
            return None
        return np.asarray(inputs) != 0

    def forward(self, x: ArrayLike, training: bool = False,
                mask: ArrayLike | None = None) -> tuple[np.ndarray, Any]:
        idx = self._indices(x)
        return self.embeddings[idx], idx

    def backward(self, cache: Any, d_outputs: np.ndarray, *,
                 need_dx: bool = True) -> tuple[np.ndarray | None, list[Any]]:
        rows = np.asarray(d_outputs, dtype=self.embeddings.dtype).reshape(-1, self.output_dim)
        if self.sparse_gradient:
            d_embeddings = IndexedSlices(rows, cache.reshape(-1), self.embeddings.shape)
        else:
            d_embeddings = np.zeros_like(self.embeddings)
            _add_rows(d_embeddings, cache.reshape(-1), rows)
        # Integer inputs have no gradient; return zeros of the index shape (None when
        # the caller needs none).
        dx = np.zeros(cache.shape, self.dtype) if need_dx else None
        return dx, self._grads_for_trainable([d_embeddings])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(input_dim=self.input_dim, output_dim=self.output_dim,
                      embeddings_initializer=initializers.serialize(self.embeddings_initializer),
                      mask_zero=self.mask_zero)
        if not self.sparse_gradient:
            config["sparse_gradient"] = False
        return config


class Masking(Layer):
    """Masks timesteps whose features all equal ``mask_value``.

    Downstream recurrent layers skip the masked timesteps (keeping their states); the
    masked timesteps' features are set to zero, as in Keras.

    Args:
        mask_value: the padding value, a number. Default 0.0.
        **kwargs: base ``Layer`` arguments.

    Input shape:
        ``(batch_size, timesteps, features)``.

    Output shape:
        The same as the input; the mask it emits is ``(batch_size, timesteps)``.

    Raises:
        ValueError: if ``mask_value`` is not a number.

    Example:
        >>> import numpy as np
        >>> from crnn.layers import Masking
        >>> x = np.zeros((2, 5, 3), "float32")
        >>> x[0, :2] = 1.0
        >>> layer = Masking(mask_value=0.0)
        >>> layer(x).shape
        (2, 5, 3)
        >>> layer.compute_mask(x)
        array([[ True,  True, False, False, False],
               [False, False, False, False, False]])
    """

    supports_masking = True

    def __init__(self, mask_value: float = 0.0, **kwargs: Any):
        if isinstance(mask_value, (bool, np.bool_)) or not isinstance(
                mask_value, (int, float, np.integer, np.floating)):
            raise ValueError(f"mask_value must be a number, received {mask_value!r} of type "
                             f"{type(mask_value).__name__}")
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def compute_mask(self, inputs: ArrayLike, mask: ArrayLike | None = None) -> np.ndarray:
        return np.any(np.asarray(inputs) != self.mask_value, axis=-1)

    def forward(self, x: ArrayLike, training: bool = False,
                mask: ArrayLike | None = None) -> tuple[np.ndarray, Any]:
        x = _as_float(self, x)
        keep = self.compute_mask(x)[..., None].astype(x.dtype)
        return x * keep, keep

    def backward(self, cache: Any, d_outputs: np.ndarray) -> tuple[np.ndarray, list[Any]]:
        return d_outputs * cache, []

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["mask_value"] = self.mask_value
        return config
