"""Recurrent layers: ``LSTM``, ``GRU`` and ``SimpleRNN``.

Each layer runs the whole sequence through one fused ``crnn.ops`` call (compiled kernel,
time loop without the GIL) and backpropagates with the matching ``crnn.ops.*_grad``.

``recurrent_dropout`` is the exception. Keras applies its mask to the previous hidden
state *inside* each step (and, like Keras 3, then draws a separate mask per gate for both
the inputs and the hidden state), which a fused whole-sequence kernel cannot express.
During training with ``recurrent_dropout > 0`` the layer therefore runs a per-timestep
loop (``_DropoutLoop``) for Keras 3's "implementation 1" cells: the per-gate matrix
products in NumPy, the step's gate maths and its backward in the compiled cell code that
the fused kernels run too (``crnn._kernels._cells``). It is slower; inference never uses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from crnn import initializers, ops, utils
from crnn._kernels import _cells
from crnn._validation import check_positive_int, is_int
from crnn.layers.base import Layer, check_numeric, check_rate, numeric_input, restoring

__all__ = ["LSTM", "GRU", "SimpleRNN"]

# Regularizers and constraints (activity_regularizer too) are taken by the base Layer
# (see _regularizable).
_UNSUPPORTED = ()


def _check_activation(name, value, allowed):
    value = "linear" if value is None else value
    if value not in allowed:
        raise ValueError(
            f"{name} must be one of {sorted(allowed)} for the recurrent kernels, "
            f"received {value!r}"
        )
    return value


class _RNN(Layer):
    """Shared machinery of the three recurrent layers (see ``LSTM`` for the arguments)."""

    _cell = None        # "lstm" | "gru" | "simple_rnn"
    _gates = 1
    _n_states = 1

    _regularizable = ("kernel", "recurrent", "bias")

    def __init__(self, units: int, activation: str | None = "tanh",
                 recurrent_activation: str = "sigmoid", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, unroll: bool = False,
                 zero_output_for_mask: bool = False, seed: int | None = None, **kwargs: Any):
        for key in _UNSUPPORTED:
            if kwargs.pop(key, None) is not None:
                raise NotImplementedError(
                    f"{key} is not supported by crnn's {type(self).__name__}; pass {key}=None"
                )
        # Keras backend switches with no meaning on crnn's single CPU implementation.
        kwargs.pop("use_cudnn", None)
        kwargs.pop("implementation", None)
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        self.activation = _check_activation("activation", activation, ops.ACTIVATIONS)
        self.recurrent_activation = _check_activation(
            "recurrent_activation", recurrent_activation, ("sigmoid", "hard_sigmoid"))
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.dropout = check_rate("dropout", dropout)
        self.recurrent_dropout = check_rate("recurrent_dropout", recurrent_dropout)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        if seed is not None and not is_int(seed):
            raise ValueError(f"seed must be an int or None, received {seed!r}")
        self.seed = seed
        self._rng = utils.make_rng(seed)
        self.supports_masking = True
        self._states = None

    # ------------------------------------------------------------------ building

    def _bias_shape(self):
        return (self._gates * self.units,)

    def _bias_value(self):
        return self.bias_initializer(self._bias_shape(), dtype=self.dtype)

    def build(self, input_shape: Sequence[int | None]) -> None:
        input_shape = tuple(input_shape)
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r} expects 3-D input "
                f"(batch, timesteps, features) with known features, received input shape "
                f"{input_shape}"
            )
        if self.stateful and input_shape[0] is None:
            raise ValueError(
                f"{type(self).__name__} layer {self.name!r} has stateful=True, which needs a "
                f"fixed batch size, but the input shape {input_shape} has none. Declare it on "
                f"the first layer with batch_input_shape=(batch_size, timesteps, features), or "
                f"start the model with crnn.Input(shape=(timesteps, features), "
                f"batch_size=batch_size)"
            )
        features = input_shape[-1]
        width = self._gates * self.units
        self.kernel = self.add_weight("kernel", (features, width), self.kernel_initializer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, width),
                                                self.recurrent_initializer)
        if self.use_bias:
            # A callable, so that nothing is computed when the weights come from a file.
            self.bias = self.add_weight("bias", self._bias_shape(),
                                        lambda shape, dtype: self._bias_value())
        super().build(input_shape)
        if self.stateful and not restoring():
            # When loading, the file's states follow: no (batch, units) zeros before them.
            self.reset_states()

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        batch, timesteps = input_shape[0], input_shape[1]
        if self.return_sequences:
            out = (batch, timesteps, self.units)
        else:
            out = (batch, self.units)
        return out

    def compute_mask(self, inputs: ArrayLike,
                     mask: ArrayLike | None = None) -> np.ndarray | None:
        return mask if self.return_sequences else None

    # ------------------------------------------------------------------ states

    @property
    def _single_output(self):
        return not self.return_state

    @property
    def _has_states(self):
        return self.stateful

    @property
    def states(self) -> list[np.ndarray] | None:
        """Copies of the current states of a stateful layer (``[h, c]`` for LSTM, ``[h]``
        otherwise), each ``(batch, units)``; None before a stateful layer is built and for a
        layer that is not stateful."""
        return None if self._states is None else [np.array(s) for s in self._states]

    def _check_states(self, name, states, batch):
        if isinstance(states, np.ndarray) and self._n_states == 1:
            states = [states]
        if not isinstance(states, (list, tuple)) or len(states) != self._n_states:
            raise ValueError(
                f"{name} of layer {self.name!r} must be a list of {self._n_states} array(s) of "
                f"shape {(batch, self.units)}, received {type(states).__name__}"
                + (f" of length {len(states)}" if isinstance(states, (list, tuple)) else "")
            )
        checked = []
        for k, s in enumerate(states):
            s = check_numeric(f"{name}[{k}] of layer {self.name!r}", s)
            if s.shape != (batch, self.units):
                raise ValueError(
                    f"{name}[{k}] of layer {self.name!r} must have shape "
                    f"{(batch, self.units)} (batch, units), received shape {s.shape}"
                )
            checked.append(s)
        # Converted only once all are checked: a bad last array leaves nothing half-done.
        return [np.array(s, dtype=self.dtype) for s in checked]

    def reset_states(self, states: Sequence[ArrayLike] | np.ndarray | None = None) -> None:
        """Reset a stateful layer's states to zeros, or to ``states`` (shape-checked).

        The values are written into the layer's state arrays in place (see
        ``live_states``).

        Args:
            states: None (default) for zeros, or a list of arrays of shape
                ``(batch, units)`` (one for GRU/SimpleRNN, ``[h, c]`` for LSTM; a single
                array is accepted for one state).

        Raises:
            AttributeError: if the layer is not stateful.
            ValueError: if the layer is not built yet, or ``states`` has the wrong number
                of arrays or a wrong shape.
            TypeError: if a state array is not numeric.
        """
        if not self.stateful:
            raise AttributeError(
                f"layer {self.name!r} is not stateful; reset_states() only applies to layers "
                f"created with stateful=True"
            )
        if not self.built:
            raise ValueError(f"layer {self.name!r} is not built yet, so it has no states")
        batch = self.input_shape[0]
        if states is not None:
            states = self._check_states("states", states, batch)
        self._write_states(states, batch)

    def _write_states(self, values, batch):
        """Copy ``values`` (None: zeros) into the state arrays, which are created once and
        then kept: code that streams through them (``live_states``) always sees the
        current state. A tuple, so that they can be written into but not swapped."""
        shape = (batch, self.units)
        if self._states is None or self._states[0].shape != shape:
            self._states = tuple(np.zeros(shape, self.dtype) for _ in range(self._n_states))
        for k, target in enumerate(self._states):
            target[...] = 0 if values is None else values[k]

    def live_states(self) -> tuple[np.ndarray, ...]:
        """The state arrays of a stateful layer themselves, not copies.

        They stay the same arrays for the layer's life and every call (``predict``,
        ``fit``, ``reset_states``, loading a model) updates them in place, so code that
        steps the layer through them, like ``crnn.streaming.Streamer``, and the layer
        always agree. Writing into them sets the layer's states. For a copy, use
        ``states``.

        Returns:
            A tuple of C-contiguous arrays of shape ``(batch, units)``: ``(h, c)`` for
            LSTM, ``(h,)`` otherwise.

        Raises:
            AttributeError: if the layer is not stateful.
            ValueError: if the layer is not built yet.
        """
        if not self.stateful:
            raise AttributeError(f"layer {self.name!r} is not stateful, so it keeps no states")
        if not self.built:
            raise ValueError(f"layer {self.name!r} is not built yet, so it has no states")
        return self._states

    def reset_state(self) -> None:
        """Keras 3's name for ``reset_states()``: zero the states of a stateful layer.

        Raises:
            AttributeError: if the layer is not stateful.
            ValueError: if the layer is not built yet.
        """
        self.reset_states()

    def _state_arrays(self):
        if not self.stateful or self._states is None:
            return []
        return [np.array(s) for s in self._states]

    def _set_state_arrays(self, arrays):
        if not self.stateful:
            super()._set_state_arrays(arrays)
        else:
            self.reset_states(list(arrays))

    # ------------------------------------------------------------------ running

    def _op(self, x, initial_state, mask, training):
        """The cell's fused kernel over ``x``: ``ops.lstm``, ``ops.gru`` or ``ops.simple_rnn``."""
        return getattr(ops, self._cell)(
            x, self.kernel, self.recurrent_kernel, self.bias if self.use_bias else None,
            initial_state, go_backwards=self.go_backwards, mask=mask,
            activation=self.activation, training=training, **self._op_options())

    def _op_options(self):
        """The keyword arguments of the cell's own ``ops`` function beyond the common ones."""
        return {"recurrent_activation": self.recurrent_activation}

    def _op_grad(self, core, d_outputs, d_states, need_dx=True):
        return getattr(ops, self._cell + "_grad")(core, d_outputs, d_states, need_dx=need_dx)

    def _check_input(self, x):
        x = numeric_input(self, x)
        expected = self.input_shape
        if x.ndim != 3 or x.shape[2] != expected[2]:
            raise ValueError(
                f"layer {self.name!r} expects input of shape (batch, timesteps, {expected[2]}), "
                f"received shape {x.shape}"
            )
        if self.stateful and x.shape[0] != expected[0]:
            raise ValueError(
                f"stateful layer {self.name!r} was declared with batch size {expected[0]}, "
                f"received a batch of {x.shape[0]} samples; stateful layers keep one state "
                f"per sample slot, so every call must use exactly {expected[0]} samples "
                f"(declare a different batch size with batch_input_shape=(batch_size, "
                f"timesteps, features) to change it)"
            )
        # Converted after the shape checks: a wrong-shaped broadcast view (zero strides,
        # little memory) must fail on its shape, not on allocating its full-size copy.
        return x.astype(self.dtype, copy=False)

    def forward(self, x: ArrayLike, training: bool = False, mask: ArrayLike | None = None,
                initial_state: Sequence[ArrayLike] | np.ndarray | None = None,
                ) -> tuple[Any, Any]:
        """Run the built layer over whole sequences.

        Args:
            x: the inputs, ``(batch, timesteps, features)``.
            training: whether to apply ``dropout`` and ``recurrent_dropout`` (and keep
                what ``backward`` needs). Default False.
            mask: optional ``(batch, timesteps)`` booleans; False timesteps are skipped.
            initial_state: optional list of ``(batch, units)`` arrays (``[h, c]`` for LSTM,
                ``[h]`` otherwise). Default None: zeros, or a stateful layer's states.

        Returns:
            ``(outputs, cache)``: the outputs (``[outputs, *final_states]`` with
            ``return_state=True``), and the cache for ``backward`` (None unless
            ``training``).

        Raises:
            ValueError: if ``x``, ``mask`` or ``initial_state`` has the wrong shape, or a
                stateful layer gets another batch size than it was built for.
            TypeError: if ``x`` or a state is not numeric.
        """
        x = self._check_input(x)
        batch, timesteps, features = x.shape
        if initial_state is not None:
            initial_state = self._check_states("initial_state", initial_state, batch)
        elif self.stateful:
            initial_state = self._states
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != (batch, timesteps):
                raise ValueError(
                    f"mask for layer {self.name!r} must have shape (batch, timesteps) = "
                    f"{(batch, timesteps)}, received shape {mask.shape}"
                )
            mask = mask.astype(bool)
        training = bool(training)
        if training and self.recurrent_dropout > 0:
            loop = _DropoutLoop(self, x, initial_state, mask)
            outputs, states, core = loop.outputs, loop.states, loop
            dp = None
        else:
            dp = None
            x_in = x
            if training and self.dropout > 0:
                # One mask per sample, shared by all timesteps, as Keras does.
                dp = _dropout_mask(self._rng, (batch, features), self.dropout, x.dtype)
                x_in = x * dp[:, None, :]
            outputs, states, core = self._op(x_in, initial_state, mask, training)
        out_mask = None
        if self.zero_output_for_mask and mask is not None:
            out_mask = (mask[:, ::-1] if self.go_backwards else mask)[..., None].astype(x.dtype)
            outputs = outputs * out_mask
        if self.stateful:
            # In place, after the op (which copied its initial state).
            self._write_states(states, batch)
        result = outputs if self.return_sequences else outputs[:, -1]
        cache = (core, dp, out_mask, x.shape) if training else None
        if self.return_state:
            return [result] + [np.array(s) for s in states], cache
        return result, cache

    def backward(self, cache: Any, d_outputs: np.ndarray,
                 d_states: Sequence[np.ndarray | None] | None = None, *,
                 need_dx: bool = True) -> tuple[np.ndarray | None, list[np.ndarray]]:
        """Backpropagate through the sequence.

        Args:
            cache: the cache of ``forward(..., training=True)``.
            d_outputs: the gradient of the loss with respect to the (main) output.
            d_states: optional gradients with respect to the final states (a list, one
                entry per state, each an array or None). Default None.
            need_dx: compute the inputs' gradient. False skips it (``dx`` is None; the
                weights' gradients are bit-identical). Default True.

        Returns:
            ``(dx, grads)``: the gradient with respect to the inputs (None with
            ``need_dx=False``), and those of ``kernel``, ``recurrent_kernel`` and
            ``bias`` (if used), aligned with ``trainable_weights`` (empty when not
            trainable).

        Raises:
            ValueError: if ``cache`` is None (``forward`` ran without ``training``).
        """
        if cache is None:
            raise ValueError(f"layer {self.name!r}: backward needs a forward(..., training=True)")
        core, dp, out_mask, (batch, timesteps, _) = cache
        d_outputs = np.asarray(d_outputs)
        if self.return_sequences:
            d_seq = np.array(d_outputs, dtype=self.dtype)
            if out_mask is not None:
                d_seq *= out_mask
        elif isinstance(core, _DropoutLoop):
            d_seq = np.zeros((batch, timesteps, self.units), self.dtype)
            d_seq[:, -1] = d_outputs
            if out_mask is not None:
                d_seq *= out_mask
        else:
            # The last output's gradient alone: the ops read no zeros for the others.
            d_seq = np.array(d_outputs, dtype=self.dtype)
            if out_mask is not None:
                d_seq *= out_mask[:, -1]
        if isinstance(core, _DropoutLoop):
            grads = core.backward(d_seq, d_states, need_dx=need_dx)
        else:
            grads = self._op_grad(core, d_seq, d_states, need_dx=need_dx)
        dx = grads.dx if dp is None or grads.dx is None else grads.dx * dp[:, None, :]
        weight_grads = [grads.d_kernel, grads.d_recurrent_kernel]
        if self.use_bias:
            weight_grads.append(grads.d_bias)
        return dx, self._grads_for_trainable(weight_grads)

    def __call__(self, inputs: ArrayLike, training: bool = False,
                 mask: ArrayLike | None = None,
                 initial_state: Sequence[ArrayLike] | np.ndarray | None = None) -> Any:
        """Run the layer on ``inputs`` (building it on first use).

        Args:
            inputs: (batch, timesteps, features) array.
            training: apply dropout. Default False.
            mask: optional (batch, timesteps) booleans; False steps are skipped.
            initial_state: optional list of initial state arrays (batch, units).

        Returns:
            The outputs array, or ``[outputs, *states]`` with ``return_state=True``.
        """
        return super().__call__(inputs, training=training, mask=mask,
                                initial_state=initial_state)

    # ------------------------------------------------------------------ config

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            units=self.units, activation=self.activation,
            recurrent_activation=self.recurrent_activation, use_bias=self.use_bias,
            kernel_initializer=initializers.serialize(self.kernel_initializer),
            recurrent_initializer=initializers.serialize(self.recurrent_initializer),
            bias_initializer=initializers.serialize(self.bias_initializer),
            dropout=self.dropout, recurrent_dropout=self.recurrent_dropout,
            return_sequences=self.return_sequences, return_state=self.return_state,
            go_backwards=self.go_backwards, stateful=self.stateful, unroll=self.unroll,
            zero_output_for_mask=self.zero_output_for_mask, seed=self.seed,
        )
        return config


def _dropout_mask(rng, shape, rate, dtype):
    return ((rng.random(shape) >= rate) / (1.0 - rate)).astype(dtype)


class LSTM(_RNN):
    """Long Short-Term Memory layer (Hochreiter & Schmidhuber, 1997), Keras 3 maths.

    The weights, in Keras's layout and order: ``kernel`` ``(features, 4 * units)``,
    ``recurrent_kernel`` ``(units, 4 * units)`` and ``bias`` ``(4 * units,)``, the gates in
    the order input, forget, cell, output.

    Args:
        units: dimensionality of the output space, a positive int.
        activation: the output activation: ``"tanh"`` (default), ``"relu"``,
            ``"sigmoid"``, ``"hard_sigmoid"`` or ``"linear"`` (or None).
        recurrent_activation: the gates' activation: ``"sigmoid"`` (default) or
            ``"hard_sigmoid"``.
        use_bias: whether to add a bias. Default True.
        kernel_initializer: initializer of the input kernel. Default ``"glorot_uniform"``.
        recurrent_initializer: initializer of the recurrent kernel. Default
            ``"orthogonal"``.
        bias_initializer: initializer of the bias. Default ``"zeros"``.
        unit_forget_bias: initialize the forget gate's bias to ones (the other gates' from
            ``bias_initializer``), as Keras. Default True.
        dropout: fraction of the inputs to drop during training (one mask per sample,
            shared by all timesteps), a float in [0, 1). Default 0.
        recurrent_dropout: fraction of the previous hidden state to drop during training,
            a float in [0, 1). Default 0 (runs a slower per-step loop while training; see
            the module notes).
        return_sequences: return the whole output sequence rather than the last output.
            Default False.
        return_state: also return the final states: ``[output, h, c]``. Default False.
        go_backwards: process the sequence backwards (and return it reversed). Default
            False.
        stateful: keep each sample slot's final states as the next batch's initial
            states. Needs a fixed batch size (``batch_input_shape`` or
            ``Input(batch_size=)``). Default False.
        unroll: accepted for Keras compatibility; has no effect. Default False.
        zero_output_for_mask: output zeros at masked timesteps instead of repeating the
            previous output. Default False.
        seed: seed for the dropout masks, a non-negative int. Default None: drawn from
            ``crnn.utils``'s global generator.
        **kwargs: base ``Layer`` arguments (``name``, ``dtype``, ``input_shape``,
            ``batch_input_shape``, ``kernel_regularizer``, ``recurrent_constraint``...);
            Keras's ``implementation`` and ``use_cudnn`` are accepted and ignored.

    Call arguments:
        inputs: a 3-D array ``(batch, timesteps, features)``.
        mask: optional ``(batch, timesteps)`` booleans; False timesteps are skipped (the
            states carry over, the output repeats the previous one or, with
            ``zero_output_for_mask``, is zero).
        training: whether to apply ``dropout`` and ``recurrent_dropout``. Default False.
        initial_state: optional list of ``(batch, units)`` arrays, ``[h, c]``. Default
            None: zeros, or a stateful layer's states.

    Input shape:
        3-D array ``(batch_size, timesteps, features)``.

    Output shape:
        ``(batch_size, timesteps, units)`` with ``return_sequences``, else
        ``(batch_size, units)``; with ``return_state``, a list of that and the final
        states, each ``(batch_size, units)``.

    Raises:
        ValueError: if ``units`` is not a positive int, ``activation`` is not one of
            "linear" (or None), "tanh", "sigmoid", "hard_sigmoid", "relu",
            ``recurrent_activation`` is not "sigmoid" or "hard_sigmoid", ``dropout`` or
            ``recurrent_dropout`` is not in [0, 1), ``seed`` is not a non-negative int or
            an initializer is not recognized; when built, if the input is not 3-D with
            known features or a stateful layer has no fixed batch size; at call time,
            if the inputs, ``mask`` or ``initial_state`` have the wrong shape.
        TypeError: for an unknown keyword argument, or non-numeric inputs or states.

    Example:
        >>> import numpy as np
        >>> from crnn.layers import LSTM
        >>> x = np.zeros((2, 5, 3), "float32")
        >>> LSTM(4)(x).shape
        (2, 4)
        >>> layer = LSTM(4, return_sequences=True, return_state=True)
        >>> outputs, h, c = layer(x)
        >>> outputs.shape, h.shape, c.shape
        ((2, 5, 4), (2, 4), (2, 4))
        >>> [w.shape for w in layer.get_weights()]
        [(3, 16), (4, 16), (16,)]
    """

    _cell = "lstm"
    _gates = 4
    _n_states = 2

    def __init__(self, units: int, activation: str | None = "tanh",
                 recurrent_activation: str = "sigmoid", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 unit_forget_bias: bool = True, **kwargs: Any):
        super().__init__(units, activation=activation,
                         recurrent_activation=recurrent_activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    def _bias_value(self):
        if not self.unit_forget_bias:
            return super()._bias_value()
        u = self.units
        return np.concatenate([self.bias_initializer((u,), dtype=self.dtype),
                               np.ones((u,), self.dtype),
                               self.bias_initializer((2 * u,), dtype=self.dtype)])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["unit_forget_bias"] = self.unit_forget_bias
        return config


class GRU(_RNN):
    """Gated Recurrent Unit layer (Cho et al., 2014), Keras 3 maths.

    The weights, in Keras's layout and order: ``kernel`` ``(features, 3 * units)``,
    ``recurrent_kernel`` ``(units, 3 * units)`` and ``bias``, the gates in the order
    update, reset, candidate.

    Args:
        units: dimensionality of the output space, a positive int.
        activation: the output activation: ``"tanh"`` (default), ``"relu"``,
            ``"sigmoid"``, ``"hard_sigmoid"`` or ``"linear"`` (or None).
        recurrent_activation: the gates' activation: ``"sigmoid"`` (default) or
            ``"hard_sigmoid"``.
        use_bias: whether to add a bias. Default True.
        kernel_initializer: initializer of the input kernel. Default ``"glorot_uniform"``.
        recurrent_initializer: initializer of the recurrent kernel. Default
            ``"orthogonal"``.
        bias_initializer: initializer of the bias. Default ``"zeros"``.
        reset_after: apply the reset gate after the recurrent matrix product (default
            True, Keras 3's and cuDNN's convention; the bias is then ``(2, 3 * units)``:
            an input row and a recurrent row). False gives the original formulation with
            a ``(3 * units,)`` bias.
        dropout: fraction of the inputs to drop during training (one mask per sample,
            shared by all timesteps), a float in [0, 1). Default 0.
        recurrent_dropout: fraction of the previous hidden state to drop during training,
            a float in [0, 1). Default 0 (runs a slower per-step loop while training; see
            the module notes).
        return_sequences: return the whole output sequence rather than the last output.
            Default False.
        return_state: also return the final states: ``[output, h]``. Default False.
        go_backwards: process the sequence backwards (and return it reversed). Default
            False.
        stateful: keep each sample slot's final states as the next batch's initial
            states. Needs a fixed batch size (``batch_input_shape`` or
            ``Input(batch_size=)``). Default False.
        unroll: accepted for Keras compatibility; has no effect. Default False.
        zero_output_for_mask: output zeros at masked timesteps instead of repeating the
            previous output. Default False.
        seed: seed for the dropout masks, a non-negative int. Default None: drawn from
            ``crnn.utils``'s global generator.
        **kwargs: base ``Layer`` arguments (``name``, ``dtype``, ``input_shape``,
            ``batch_input_shape``, ``kernel_regularizer``, ``recurrent_constraint``...);
            Keras's ``implementation`` and ``use_cudnn`` are accepted and ignored.

    Call arguments:
        inputs: a 3-D array ``(batch, timesteps, features)``.
        mask: optional ``(batch, timesteps)`` booleans; False timesteps are skipped (the
            states carry over, the output repeats the previous one or, with
            ``zero_output_for_mask``, is zero).
        training: whether to apply ``dropout`` and ``recurrent_dropout``. Default False.
        initial_state: optional list of ``(batch, units)`` arrays, ``[h]``. Default None:
            zeros, or a stateful layer's states.

    Input shape:
        3-D array ``(batch_size, timesteps, features)``.

    Output shape:
        ``(batch_size, timesteps, units)`` with ``return_sequences``, else
        ``(batch_size, units)``; with ``return_state``, a list of that and the final
        states, each ``(batch_size, units)``.

    Raises:
        ValueError: if ``units`` is not a positive int, ``activation`` is not one of
            "linear" (or None), "tanh", "sigmoid", "hard_sigmoid", "relu",
            ``recurrent_activation`` is not "sigmoid" or "hard_sigmoid", ``dropout`` or
            ``recurrent_dropout`` is not in [0, 1), ``seed`` is not a non-negative int or
            an initializer is not recognized; when built, if the input is not 3-D with
            known features or a stateful layer has no fixed batch size; at call time,
            if the inputs, ``mask`` or ``initial_state`` have the wrong shape.
        TypeError: for an unknown keyword argument, or non-numeric inputs or states.

    Example:
        >>> import numpy as np
        >>> from crnn.layers import GRU
        >>> x = np.zeros((2, 5, 3), "float32")
        >>> layer = GRU(4, return_sequences=True)
        >>> layer(x).shape
        (2, 5, 4)
        >>> [w.shape for w in layer.get_weights()]
        [(3, 12), (4, 12), (2, 12)]
        >>> mask = np.array([[True] * 5, [True, True, True, False, False]])
        >>> GRU(4)(x, mask=mask).shape
        (2, 4)
    """

    _cell = "gru"
    _gates = 3
    _n_states = 1

    def __init__(self, units: int, activation: str | None = "tanh",
                 recurrent_activation: str = "sigmoid", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 reset_after: bool = True, **kwargs: Any):
        self.reset_after = bool(reset_after)
        super().__init__(units, activation=activation,
                         recurrent_activation=recurrent_activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, **kwargs)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _op_options(self):
        return {**super()._op_options(), "reset_after": self.reset_after}

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["reset_after"] = self.reset_after
        return config


class SimpleRNN(_RNN):
    """Fully connected RNN: ``h_t = activation(x_t @ kernel + h_tm1 @ recurrent_kernel + bias)``.

    The output at each step is ``h_t``. The weights, in Keras's layout and order:
    ``kernel`` ``(features, units)``, ``recurrent_kernel`` ``(units, units)`` and ``bias``
    ``(units,)``.

    Args:
        units: dimensionality of the output space, a positive int.
        activation: the output activation: ``"tanh"`` (default), ``"relu"``,
            ``"sigmoid"``, ``"hard_sigmoid"`` or ``"linear"`` (or None).
        use_bias: whether to add a bias. Default True.
        kernel_initializer: initializer of the input kernel. Default ``"glorot_uniform"``.
        recurrent_initializer: initializer of the recurrent kernel. Default
            ``"orthogonal"``.
        bias_initializer: initializer of the bias. Default ``"zeros"``.
        dropout: fraction of the inputs to drop during training (one mask per sample,
            shared by all timesteps), a float in [0, 1). Default 0.
        recurrent_dropout: fraction of the previous hidden state to drop during training,
            a float in [0, 1). Default 0 (runs a slower per-step loop while training; see
            the module notes).
        return_sequences: return the whole output sequence rather than the last output.
            Default False.
        return_state: also return the final states: ``[output, h]``. Default False.
        go_backwards: process the sequence backwards (and return it reversed). Default
            False.
        stateful: keep each sample slot's final states as the next batch's initial
            states. Needs a fixed batch size (``batch_input_shape`` or
            ``Input(batch_size=)``). Default False.
        unroll: accepted for Keras compatibility; has no effect. Default False.
        zero_output_for_mask: output zeros at masked timesteps instead of repeating the
            previous output. Default False.
        seed: seed for the dropout masks, a non-negative int. Default None: drawn from
            ``crnn.utils``'s global generator.
        **kwargs: base ``Layer`` arguments (``name``, ``dtype``, ``input_shape``,
            ``batch_input_shape``, ``kernel_regularizer``, ``recurrent_constraint``...);
            Keras's ``implementation`` and ``use_cudnn`` are accepted and ignored.

    Call arguments:
        inputs: a 3-D array ``(batch, timesteps, features)``.
        mask: optional ``(batch, timesteps)`` booleans; False timesteps are skipped (the
            states carry over, the output repeats the previous one or, with
            ``zero_output_for_mask``, is zero).
        training: whether to apply ``dropout`` and ``recurrent_dropout``. Default False.
        initial_state: optional list of ``(batch, units)`` arrays, ``[h]``. Default None:
            zeros, or a stateful layer's states.

    Input shape:
        3-D array ``(batch_size, timesteps, features)``.

    Output shape:
        ``(batch_size, timesteps, units)`` with ``return_sequences``, else
        ``(batch_size, units)``; with ``return_state``, a list of that and the final
        states, each ``(batch_size, units)``.

    Raises:
        ValueError: if ``units`` is not a positive int, ``activation`` is not one of
            "linear" (or None), "tanh", "sigmoid", "hard_sigmoid", "relu",
            ``dropout`` or ``recurrent_dropout`` is not in [0, 1), ``seed`` is not a
            non-negative int or an initializer is not recognized; when built, if the input
            is not 3-D with known features or a stateful layer has no fixed batch size; at
            call time, if the inputs, ``mask`` or ``initial_state`` have the wrong shape.
        TypeError: for an unknown keyword argument, or non-numeric inputs or states.

    Example:
        >>> import numpy as np
        >>> from crnn.layers import SimpleRNN
        >>> x = np.zeros((2, 5, 3), "float32")
        >>> layer = SimpleRNN(4, return_state=True)
        >>> output, h = layer(x, initial_state=[np.zeros((2, 4), "float32")])
        >>> output.shape, h.shape
        ((2, 4), (2, 4))
    """

    _cell = "simple_rnn"

    def __init__(self, units: int, activation: str | None = "tanh", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 **kwargs: Any):
        super().__init__(units, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, **kwargs)

    def _op_options(self):
        return {}      # no recurrent_activation

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("recurrent_activation")
        return config


# --------------------------------------------------------------------------- recurrent dropout


class _DropoutLoop:
    """Per-timestep NumPy forward/backward for training with ``recurrent_dropout``.

    Implements Keras 3's "implementation 1" cells, which Keras switches to whenever
    ``recurrent_dropout > 0``: LSTM and GRU draw a separate input mask and a separate
    hidden-state mask for each gate (SimpleRNN one of each); the masks are drawn once per
    batch and shared by all timesteps; the dropped hidden state only feeds the matrix
    products, never the carried state. Masked timesteps keep states and repeat the
    previous output, as in the fused kernels.
    """

    def __init__(self, layer, x, initial_state, mask, input_masks=None, recurrent_masks=None):
        self.layer = layer
        self.x = x
        self.mask = mask
        batch, timesteps, features = x.shape
        u = layer.units
        n_masks = 1 if layer._cell == "simple_rnn" else layer._gates
        dtype = x.dtype
        if input_masks is None:
            input_masks = [
                _dropout_mask(layer._rng, (batch, features), layer.dropout, dtype)
                if layer.dropout > 0 else np.ones((batch, features), dtype)
                for _ in range(n_masks)]
        if recurrent_masks is None:
            recurrent_masks = [
                _dropout_mask(layer._rng, (batch, u), layer.recurrent_dropout, dtype)
                for _ in range(n_masks)]
        if n_masks == 1:
            input_masks = input_masks * layer._gates
            recurrent_masks = recurrent_masks * layer._gates
        self.dm, self.rm = input_masks, recurrent_masks
        self.act = ops.ACTIVATIONS[layer.activation]
        self.ract = ops.ACTIVATIONS[layer.recurrent_activation]
        kernel, rk = layer.kernel, layer.recurrent_kernel
        self.K = [kernel[:, g * u:(g + 1) * u] for g in range(layer._gates)]
        self.R = [rk[:, g * u:(g + 1) * u] for g in range(layer._gates)]
        if layer.use_bias:
            bias = layer.bias
        else:
            bias = np.zeros(layer._bias_shape(), dtype)
        if bias.ndim == 2:
            self.b = [bias[0, g * u:(g + 1) * u] for g in range(3)]
            self.rb = [bias[1, g * u:(g + 1) * u] for g in range(3)]
        else:
            self.b = [bias[g * u:(g + 1) * u] for g in range(layer._gates)]
            self.rb = None
        if initial_state is None:
            initial_state = [np.zeros((batch, u), dtype) for _ in range(layer._n_states)]
        self.initial_state = [np.asarray(s, dtype) for s in initial_state]
        self._run()

    def _steps(self):
        timesteps = self.x.shape[1]
        for s in range(timesteps):
            yield s, (timesteps - 1 - s if self.layer.go_backwards else s)

    def _run(self):
        x = self.x
        batch, timesteps, _ = x.shape
        states = [s.copy() for s in self.initial_state]
        out_prev = np.zeros_like(states[0])
        self.outputs = np.zeros((batch, timesteps, self.layer.units), x.dtype)
        self.tape = []
        for s, t in self._steps():
            m = (np.ones((batch, 1), x.dtype) if self.mask is None
                 else self.mask[:, t, None].astype(x.dtype))
            xs = [x[:, t] * d for d in self.dm]
            hs = [states[0] * r for r in self.rm]
            new_states, saved = getattr(self, "_" + self.layer._cell)(xs, hs, states)
            self.tape.append((t, m, xs, hs, states, saved))
            h_new = new_states[0]
            states = [m * n + (1 - m) * o for n, o in zip(new_states, states)]
            out_prev = m * h_new + (1 - m) * out_prev
            self.outputs[:, s] = out_prev
        self.states = states

    # One step of each cell: returns (new_states, what the backward step needs). The
    # products are per gate (each gate has its own dropout masks); the rest is compiled.

    def _lstm(self, xs, hs, states):
        z = np.concatenate([xs[g] @ self.K[g] + hs[g] @ self.R[g] + self.b[g]
                            for g in range(4)], axis=1)
        c = np.array(states[1], order="C")
        h, act_c = np.empty_like(c), np.empty_like(c)
        _cells.lstm_step(z, c, h, act_c, self.act, self.ract)     # z: activated gates
        return [h, c], (z, act_c)

    def _gru(self, xs, hs, states):
        u = self.layer.units
        z = np.concatenate([xs[g] @ self.K[g] + self.b[g] for g in range(3)], axis=1)
        h = np.array(states[0], order="C")
        if self.rb is not None:
            inner = np.concatenate([hs[g] @ self.R[g] + self.rb[g] for g in range(3)], axis=1)
            _cells.gru_gates_after(z, inner, self.ract)
            saved = (z, np.ascontiguousarray(inner[:, 2 * u:]), None)
        else:
            z[:, :2 * u] += np.concatenate([hs[g] @ self.R[g] for g in range(2)], axis=1)
            rh = np.empty_like(h)
            _cells.gru_gates_before(z, np.ascontiguousarray(hs[2]), rh, self.ract)
            z[:, 2 * u:] += rh @ self.R[2]
            saved = (z, None, rh)
        _cells.gru_finish(z, h, self.act)                          # z: activated z, r, hh
        return [h], saved

    def _simple_rnn(self, xs, hs, states):
        h = np.ascontiguousarray(xs[0] @ self.K[0] + hs[0] @ self.R[0] + self.b[0])
        _cells.simple_rnn_step(h, np.empty_like(h), self.act)
        return [h], (h,)

    def backward(self, d_outputs, d_states=None, need_dx=True):
        layer = self.layer
        x = self.x
        u = layer.units
        G = layer._gates
        dK = [np.zeros_like(k) for k in self.K]
        dR = [np.zeros_like(r) for r in self.R]
        db = [np.zeros(u, x.dtype) for _ in range(G)]
        drb = [np.zeros(u, x.dtype) for _ in range(G)]
        dx = np.zeros_like(x) if need_dx else None
        if d_states is None:
            d_states = [None] * layer._n_states
        ds = [np.zeros_like(s) if d is None else np.array(d, x.dtype)
              for s, d in zip(self.initial_state, d_states)]
        d_out_carry = np.zeros_like(ds[0])
        for s in reversed(range(x.shape[1])):
            t, m, xs, hs, states, saved = self.tape[s]
            d_out = d_outputs[:, s] + d_out_carry
            d_out_carry = (1 - m) * d_out
            d_new = [m * (ds[0] + d_out)] + [m * d for d in ds[1:]]
            d_prev = [(1 - m) * d for d in ds]
            # d_x_side[g]: gradient at x_t * dm[g] @ K[g]; d_h_side[g]: at hs[g] @ R[g].
            d_x_side, d_h_side, d_prev_direct = getattr(self, "_d_" + layer._cell)(
                d_new, xs, hs, states, saved, dR)
            for k, d in enumerate(d_prev_direct):
                d_prev[k] = d_prev[k] + d
            for g in range(G):
                if d_x_side[g] is not None:
                    dK[g] += xs[g].T @ d_x_side[g]
                    if need_dx:
                        dx[:, t] += (d_x_side[g] @ self.K[g].T) * self.dm[g]
                    db[g] += d_x_side[g].sum(axis=0)
                if d_h_side[g] is not None:
                    dR[g] += hs[g].T @ d_h_side[g]
                    d_prev[0] = d_prev[0] + (d_h_side[g] @ self.R[g].T) * self.rm[g]
                    drb[g] += d_h_side[g].sum(axis=0)
            ds = d_prev
        if self.rb is not None:
            d_bias = np.stack([np.concatenate(db), np.concatenate(drb)])
        else:
            d_bias = np.concatenate(db)
        return ops.Gradients(dx=dx, d_initial_state=ds, d_kernel=np.concatenate(dK, axis=1),
                             d_recurrent_kernel=np.concatenate(dR, axis=1),
                             d_bias=d_bias if layer.use_bias else None)

    def _split(self, a):
        u = self.layer.units
        return [a[:, g * u:(g + 1) * u] for g in range(a.shape[1] // u)]

    def _d_lstm(self, d_new, xs, hs, states, saved, dR):
        z, act_c = saved
        dh = np.ascontiguousarray(d_new[0])
        dc = np.array(d_new[1], order="C")
        dz = np.empty_like(z)
        _cells.lstm_step_backward(z, np.ascontiguousarray(states[1]), act_c, dh, dc, dz,
                                  self.act, self.ract)                 # dc -> dc * f
        dz = self._split(dz)
        return dz, dz, [np.zeros_like(dh), dc]

    def _d_gru(self, d_new, xs, hs, states, saved, dR):
        z, inner_h, rh = saved
        dh = np.array(d_new[0], order="C")
        h_tm1 = np.ascontiguousarray(states[0])
        dgx = np.empty_like(z)
        reset_after = inner_h is not None
        dgi = np.empty_like(z) if reset_after else dgx
        _cells.gru_step_backward(z, h_tm1, inner_h if reset_after else h_tm1, dh, dgx, dgi,
                                 self.act, self.ract, reset_after)     # dh -> dh * z
        if reset_after:
            return self._split(dgx), self._split(dgi), [dh]
        # reset before: hh = act(x_h + (r * hs[2]) @ R_h)
        u = self.layer.units
        dR[2] += rh.T @ dgx[:, 2 * u:]
        d_rh = np.ascontiguousarray(dgx[:, 2 * u:] @ self.R[2].T)
        dh_r = np.zeros_like(dh)
        _cells.gru_reset_backward(z, np.ascontiguousarray(hs[2]), d_rh, dgx, dh_r, self.ract)
        dgx = self._split(dgx)
        return dgx, [dgx[0], dgx[1], None], [dh + dh_r * self.rm[2]]

    def _d_simple_rnn(self, d_new, xs, hs, states, saved, dR):
        (h,) = saved
        dz = np.empty_like(h)
        _cells.simple_rnn_step_backward(h, np.ascontiguousarray(d_new[0]), dz, self.act)
        return [dz], [dz], [np.zeros_like(dz)]
