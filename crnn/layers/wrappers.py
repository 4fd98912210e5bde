"""Layer wrappers: ``TimeDistributed`` and ``Bidirectional``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from crnn._registry import keras_config
from crnn.layers.base import Layer, backward_call
from crnn.threads import get_num_threads, run_parallel

__all__ = ["TimeDistributed", "Bidirectional"]


def _check_layer(name, layer):
    if not isinstance(layer, Layer):
        raise TypeError(f"{name} must be a crnn layer instance, received {type(layer).__name__}")


class _Wrapper(Layer):
    """Shared machinery of the wrappers: the weights and states are the inner layers'."""

    def _inner_layers(self):
        raise NotImplementedError

    def _all_weight_entries(self):
        return [e for inner in self._inner_layers() for e in inner._all_weight_entries()]

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        """The inner layers' trainable weights (none when ``trainable`` is False)."""
        if not self.trainable:
            return []
        return [w for inner in self._inner_layers() for w in inner.trainable_weights]

    @property
    def non_trainable_weights(self) -> list[np.ndarray]:
        """The inner layers' weights that training leaves alone (all of them when
        ``trainable`` is False)."""
        if not self.trainable:
            return self.weights
        return [w for inner in self._inner_layers() for w in inner.non_trainable_weights]

    @property
    def _has_states(self):
        return any(inner._has_states for inner in self._inner_layers())

    def reset_states(self, states: Sequence[ArrayLike] | np.ndarray | None = None) -> None:
        """Reset the stateful inner layers' states to zeros, or to ``states``.

        Args:
            states: None (default) for zeros, or the inner stateful layers' states in
                order (for ``Bidirectional``, the forward layer's then the backward
                layer's), each ``(batch, units)``; all are checked before any is set.

        Raises:
            ValueError: if ``states`` has the wrong number of arrays or a wrong shape, or
                an inner layer is not built yet.
            TypeError: if a state array is not numeric.
        """
        inners = [layer for layer in self._inner_layers() if getattr(layer, "stateful", False)]
        if states is None:
            for layer in inners:
                layer.reset_states()
            return
        states = [states] if isinstance(states, np.ndarray) else list(states)
        expected = sum(layer._n_states for layer in inners)
        if len(states) != expected:
            raise ValueError(
                f"states of layer {self.name!r} must list {expected} array(s) (the inner "
                f"layers' states in order: {[layer.name for layer in inners]}), received "
                f"{len(states)}"
            )
        # All checked before any is set, so a bad last array leaves every state unchanged.
        checked = []
        for layer in inners:
            if not layer.built:
                raise ValueError(f"layer {self.name!r} is not built yet, so it has no states")
            n = layer._n_states
            checked.append(layer._check_states("states", states[:n], layer.input_shape[0]))
            states = states[n:]
        for layer, values in zip(inners, checked):
            layer._states = values

    def reset_state(self) -> None:
        """Keras 3's name for ``reset_states()``: zero the stateful inner layers' states."""
        self.reset_states()

    def _state_arrays(self):
        return [s for layer in self._inner_layers() for s in layer._state_arrays()]

    def _set_state_arrays(self, arrays):
        arrays = list(arrays)
        if arrays or any(getattr(layer, "stateful", False) for layer in self._inner_layers()):
            self.reset_states(arrays)


class TimeDistributed(_Wrapper):
    """Applies ``layer`` to every timestep (axis 1) of the input independently.

    The timesteps are folded into the batch axis, the wrapped layer runs once on
    ``(batch * timesteps, ...)``, and its outputs are unfolded again. The weights are the
    wrapped layer's (shared by all timesteps).

    Args:
        layer: the layer to apply, a crnn layer instance, e.g. ``Dense(1)``. An input
            shape declared on it moves to the wrapper.
        **kwargs: base ``Layer`` arguments.

    Call arguments:
        inputs: an array of at least 3 dimensions, ``(batch, timesteps, ...)``.
        training: passed on to the wrapped layer. Default False.
        mask: not used by the wrapped layer; passed on unchanged to the next layer.

    Input shape:
        ``(batch_size, timesteps) + inner_input_shape``, at least 3-D.

    Output shape:
        ``(batch_size, timesteps) + inner_output_shape``.

    Raises:
        TypeError: if ``layer`` is not a crnn layer.
        ValueError: if the inputs have fewer than 3 dimensions, or, at call time, a shape
            that the wrapped layer was not built for.

    Example:
        >>> import numpy as np
        >>> from crnn.layers import Dense, TimeDistributed
        >>> layer = TimeDistributed(Dense(4))
        >>> layer(np.zeros((2, 5, 3), "float32")).shape
        (2, 5, 4)
        >>> layer.layer.kernel.shape
        (3, 4)
    """

    supports_masking = True

    def __init__(self, layer: Layer, **kwargs: Any):
        _check_layer("layer", layer)
        if layer._batch_input_shape is not None and "batch_input_shape" not in kwargs \
                and "input_shape" not in kwargs:
            kwargs["batch_input_shape"] = layer._batch_input_shape
            layer._batch_input_shape = None
        super().__init__(**kwargs)
        self.layer = layer

    def _inner_layers(self):
        return [self.layer]

    def build(self, input_shape: Sequence[int | None]) -> None:
        if len(input_shape) < 3:
            raise ValueError(
                f"TimeDistributed layer {self.name!r} needs input of at least 3 dimensions "
                f"(batch, timesteps, ...), received input shape {tuple(input_shape)}"
            )
        if not self.layer.built:
            self.layer.build((None,) + tuple(input_shape[2:]))
        super().build(input_shape)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        inner = self.layer.compute_output_shape((None,) + tuple(input_shape[2:]))
        return (input_shape[0], input_shape[1]) + tuple(inner[1:])

    def forward(self, x: ArrayLike, training: bool = False,
                mask: ArrayLike | None = None) -> tuple[np.ndarray, Any]:
        x = np.asarray(x)
        if x.ndim < 3:
            raise ValueError(f"TimeDistributed layer {self.name!r} needs input of at least 3 "
                             f"dimensions, received shape {x.shape}")
        inner = self.layer.input_shape
        if inner is not None and (len(inner) != x.ndim - 1 or any(
                d is not None and d != v for d, v in zip(inner[1:], x.shape[2:]))):
            # Checked before the reshape, which copies a non-contiguous (e.g. broadcast) view.
            raise ValueError(
                f"TimeDistributed layer {self.name!r} expects input of shape (batch, "
                f"timesteps) + {tuple(inner[1:])}, received shape {x.shape}")
        batch, timesteps = x.shape[:2]
        y, cache = self.layer.forward(x.reshape((batch * timesteps,) + x.shape[2:]),
                                      training=training)
        return y.reshape((batch, timesteps) + y.shape[1:]), (cache, x.shape)

    def backward(self, cache: Any, d_outputs: Any, *,
                 need_dx: bool = True) -> tuple[np.ndarray | None, list[Any]]:
        inner_cache, x_shape = cache
        batch, timesteps = x_shape[:2]
        d_flat = d_outputs.reshape((batch * timesteps,) + d_outputs.shape[2:])
        dx, grads = backward_call(self.layer, inner_cache, d_flat, need_dx)
        dx = dx.reshape(x_shape) if need_dx else None
        return dx, grads if self.trainable else []

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["layer"] = _nested_config(self.layer)
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Layer:
        from crnn.layers import deserialize
        config = dict(config)
        config["layer"] = deserialize(config["layer"])
        return super().from_config(config)


def _nested_config(layer):
    """A wrapped layer's config in Keras 3's serialized form (``module``, ``class_name``,
    ``config``, ``registered_name``), so that ``keras.Sequential.from_config`` rebuilds it."""
    return keras_config(layer, "keras.layers")


_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(_Wrapper):
    """Runs a recurrent layer forwards and a copy of it backwards, and merges the outputs.

    The weights are the forward layer's followed by the backward layer's. With
    ``return_sequences=True`` the backward outputs are re-reversed so that both
    directions line up in time, and masked timesteps output zeros (Keras forces
    ``zero_output_for_mask`` on both directions).

    Args:
        layer: an ``LSTM``, ``GRU`` or ``SimpleRNN`` instance (the forward direction; it
            is copied from its config, so the instance itself is not used).
        merge_mode: ``"concat"`` (default), ``"sum"``, ``"mul"``, ``"ave"``, or None to
            return ``[forward_output, backward_output]``.
        weights: optional initial weights, in ``get_weights`` order, set when the layer
            is built. Default None.
        backward_layer: optional explicit backward layer, an ``LSTM``, ``GRU`` or
            ``SimpleRNN`` instance with the opposite ``go_backwards`` and the same
            ``return_sequences``, ``return_state`` and ``stateful``. Default None: a copy
            of ``layer`` with ``go_backwards`` flipped.
        **kwargs: base ``Layer`` arguments (an input shape declared on ``layer`` is used
            when none is given here).

    Call arguments:
        inputs: a 3-D array ``(batch, timesteps, features)``.
        mask: optional ``(batch, timesteps)`` booleans, passed to both directions.
        training: passed to both directions (dropout). Default False.
        initial_state: optional list of the forward layer's initial states followed by
            the backward layer's (``[h_f, c_f, h_b, c_b]`` for LSTM). Default None.

    Input shape:
        3-D array ``(batch_size, timesteps, features)``.

    Output shape:
        The wrapped layer's, with the last axis doubled for ``merge_mode="concat"``;
        with ``merge_mode=None``, the two directions' outputs as a list; with
        ``return_state``, followed by the forward then the backward final states.

    Raises:
        TypeError: if ``layer`` or ``backward_layer`` is not an ``LSTM``, ``GRU`` or
            ``SimpleRNN`` instance.
        ValueError: if ``merge_mode`` is not one of the above, or ``backward_layer``
            doesn't match ``layer`` as described; at call time, if ``initial_state`` has
            the wrong number of arrays.

    Example:
        >>> import numpy as np
        >>> from crnn.layers import GRU, LSTM, Bidirectional
        >>> x = np.zeros((2, 5, 3), "float32")
        >>> layer = Bidirectional(LSTM(4, return_sequences=True))
        >>> layer(x).shape
        (2, 5, 8)
        >>> [w.shape for w in layer.get_weights()][:3]      # the forward LSTM's
        [(3, 16), (4, 16), (16,)]
        >>> Bidirectional(GRU(4), merge_mode="sum")(x).shape
        (2, 4)
    """

    def __init__(self, layer: Layer, merge_mode: str | None = "concat",
                 weights: Sequence[ArrayLike] | None = None,
                 backward_layer: Layer | None = None, **kwargs: Any):
        from crnn.layers.recurrent import _RNN
        if not isinstance(layer, _RNN):
            raise TypeError(
                f"layer must be an LSTM, GRU or SimpleRNN instance, received "
                f"{type(layer).__name__}"
            )
        if merge_mode not in _MERGE_MODES:
            raise ValueError(
                f"merge_mode must be one of {list(_MERGE_MODES)}, received {merge_mode!r}"
            )
        if layer._batch_input_shape is not None and "batch_input_shape" not in kwargs \
                and "input_shape" not in kwargs:
            kwargs["batch_input_shape"] = layer._batch_input_shape
        super().__init__(**kwargs)
        config = layer.get_config()
        config.pop("batch_input_shape", None)
        config["name"] = "forward_" + layer.name.replace("forward_", "", 1) \
            if layer.name.startswith("forward_") else "forward_" + layer.name
        self.forward_layer = type(layer).from_config(config)
        if backward_layer is None:
            config = dict(config)
            config["go_backwards"] = not layer.go_backwards
            config["name"] = "backward_" + layer.name
            backward_layer = type(layer).from_config(config)
        else:
            if not isinstance(backward_layer, _RNN):
                raise TypeError(
                    f"backward_layer must be an LSTM, GRU or SimpleRNN instance, received "
                    f"{type(backward_layer).__name__}"
                )
            for attr in ("return_sequences", "return_state", "stateful"):
                if getattr(backward_layer, attr) != getattr(layer, attr):
                    raise ValueError(
                        f"backward_layer.{attr} must equal layer.{attr}: received "
                        f"{getattr(backward_layer, attr)} and {getattr(layer, attr)}"
                    )
            if backward_layer.go_backwards == layer.go_backwards:
                raise ValueError(
                    f"backward_layer.go_backwards must be the opposite of layer.go_backwards, "
                    f"both are {layer.go_backwards}"
                )
        self.backward_layer = backward_layer
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.stateful = layer.stateful
        for inner in (self.forward_layer, self.backward_layer):
            inner.zero_output_for_mask = self.return_sequences
        self.supports_masking = True
        self._initial_weights = weights

    def _inner_layers(self):
        return [self.forward_layer, self.backward_layer]

    @property
    def _single_output(self):
        return not self.return_state and self.merge_mode is not None

    def build(self, input_shape: Sequence[int | None]) -> None:
        self.forward_layer.build(input_shape)
        self.backward_layer.build(input_shape)
        super().build(input_shape)
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        out = self.forward_layer.compute_output_shape(input_shape)
        if self.merge_mode == "concat":
            out = tuple(out[:-1]) + (2 * out[-1],)
        return out

    def compute_mask(self, inputs: ArrayLike,
                     mask: ArrayLike | None = None) -> np.ndarray | None:
        return mask if self.return_sequences else None

    def forward(self, x: ArrayLike, training: bool = False, mask: ArrayLike | None = None,
                initial_state: Sequence[ArrayLike] | None = None) -> tuple[Any, Any]:
        """Run both directions and merge their outputs.

        Args:
            x: the inputs, ``(batch, timesteps, features)``.
            training: passed to both directions (dropout). Default False.
            mask: optional ``(batch, timesteps)`` booleans, passed to both directions.
            initial_state: optional list of the forward layer's initial states followed
                by the backward layer's. Default None.

        Returns:
            ``(outputs, cache)``: the merged outputs (a list with ``merge_mode=None`` or
            ``return_state``), and the cache for ``backward`` (None unless ``training``
            or an inner layer has an activity regularizer).

        Raises:
            ValueError: if ``initial_state`` doesn't list both directions' states.
        """
        init_f = init_b = None
        if initial_state is not None:
            n = self.forward_layer._n_states
            initial_state = list(initial_state)
            if len(initial_state) != 2 * n:
                raise ValueError(
                    f"initial_state of Bidirectional layer {self.name!r} must list {n} forward "
                    f"then {n} backward state arrays, received {len(initial_state)} arrays"
                )
            init_f, init_b = initial_state[:n], initial_state[n:]
        (y_f, cache_f), (y_b, cache_b) = self._both(
            lambda: self.forward_layer.forward(x, training, mask, initial_state=init_f),
            lambda: self.backward_layer.forward(x, training, mask, initial_state=init_b),
            training)
        states = []
        if self.return_state:
            y_f, states_f = y_f[0], y_f[1:]
            y_b, states_b = y_b[0], y_b[1:]
            states = states_f + states_b
        if self.return_sequences:
            y_b = y_b[:, ::-1]
        if self.merge_mode == "concat":
            y = np.concatenate([y_f, y_b], axis=-1)
        elif self.merge_mode == "sum":
            y = y_f + y_b
        elif self.merge_mode == "mul":
            y = y_f * y_b
        elif self.merge_mode == "ave":
            y = (y_f + y_b) / 2
        else:
            y = [y_f, y_b]
        # The directions' outputs also carry their activity penalties (Keras calls both).
        inner_activity = any(inner.activity_regularizer is not None
                             for inner in self._inner_layers())
        cache = (cache_f, cache_b, y_f, y_b) if training or inner_activity else None
        if self.return_state:
            y = (y if isinstance(y, list) else [y]) + states
        return y, cache

    def backward(self, cache: Any, d_outputs: Any, *,
                 need_dx: bool = True) -> tuple[np.ndarray | None, list[Any]]:
        cache_f, cache_b, y_f, y_b = cache
        if self.merge_mode == "concat":
            units = y_f.shape[-1]
            d_f, d_b = d_outputs[..., :units], d_outputs[..., units:]
        elif self.merge_mode == "sum":
            d_f = d_b = d_outputs
        elif self.merge_mode == "mul":
            d_f, d_b = d_outputs * y_b, d_outputs * y_f
        elif self.merge_mode == "ave":
            d_f = d_b = d_outputs / 2
        else:
            d_f, d_b = d_outputs
        if self.forward_layer.activity_regularizer is not None:
            d_f = d_f + self.forward_layer._activity_gradient(y_f)
        if self.backward_layer.activity_regularizer is not None:      # elementwise: y_b's order
            d_b = d_b + self.backward_layer._activity_gradient(y_b)
        if self.return_sequences:
            d_b = d_b[:, ::-1]
        d_f, d_b = np.ascontiguousarray(d_f), np.ascontiguousarray(d_b)
        (dx_f, g_f), (dx_b, g_b) = self._both(
            lambda: backward_call(self.forward_layer, cache_f, d_f, need_dx),
            lambda: backward_call(self.backward_layer, cache_b, d_b, need_dx), False)
        dx = dx_f + dx_b if need_dx else None
        return dx, (g_f + g_b) if self.trainable else []

    def _both(self, run_forward, run_backward, training):
        """The two directions' calls: at the same time, one thread each, where crnn's
        budget has two threads or more (``crnn.threads.run_parallel``: the directions never
        meet, and a direction's kernels on one thread scale better than its rows split in
        two, a batch of 64 x LSTM(32) above all); else one after the other. A direction
        that draws random numbers (dropout in training) keeps them in order: then one
        after the other too."""
        draws = training and any(getattr(inner, "dropout", 0) or
                                 getattr(inner, "recurrent_dropout", 0)
                                 for inner in self._inner_layers())
        if draws or get_num_threads() < 2:
            return run_forward(), run_backward()
        return tuple(run_parallel([run_forward, run_backward]))

    def _nested_activity_penalty(self, cache):
        """The two directions' activity penalties, from ``forward``'s cache."""
        if cache is None:
            return 0.0
        return (self.forward_layer._activity_penalty(cache[2])
                + self.backward_layer._activity_penalty(cache[3]))

    def __call__(self, inputs: ArrayLike, training: bool = False,
                 mask: ArrayLike | None = None,
                 initial_state: Sequence[ArrayLike] | None = None) -> Any:
        """Run the layer on ``inputs`` (building it on first use).

        Args:
            inputs: ``(batch, timesteps, features)`` array.
            training: apply dropout. Default False.
            mask: optional ``(batch, timesteps)`` booleans.
            initial_state: optional forward then backward initial states.

        Returns:
            The merged outputs (see ``forward``).
        """
        return super().__call__(inputs, training=training, mask=mask,
                                initial_state=initial_state)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["layer"] = _nested_config(self.forward_layer)
        config["layer"]["config"]["name"] = self.forward_layer.name[len("forward_"):]
        config["backward_layer"] = _nested_config(self.backward_layer)
        config["merge_mode"] = self.merge_mode
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Layer:
        from crnn.layers import deserialize
        config = dict(config)
        config["layer"] = deserialize(config["layer"])
        if config.get("backward_layer") is not None:
            config["backward_layer"] = deserialize(config["backward_layer"])
        return super().from_config(config)
