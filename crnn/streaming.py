"""Streaming inference: one timestep per call through a stateful batch-1 model.

``model.predict_on_batch`` goes through the whole Python layer stack on every call (shape
checks, dtype conversions, one kernel call per layer), which costs tens of microseconds,
far more than the arithmetic of one timestep. ``Streamer`` checks the model once and runs
each step as a single compiled call (``crnn._stream``) without the GIL.

The Streamer shares the model's arrays instead of copying them:

* weights are read in place, so training (``fit``), ``set_weights`` and ``load_weights``
  show up at the next step;
* states are the recurrent layers' own state arrays, updated in place, so
  ``layer.states``, ``model.predict`` and ``model.save`` see the streamed state, and a
  ``model.reset_states()`` or ``model.predict`` between steps is picked up by the next step.

Create a new Streamer after changing the model's structure (``add``/``pop``) or replacing
a weight array object (rather than writing into it). A Streamer is not thread-safe: use one
per thread (and one model per stream).
"""

import numpy as np

from crnn._cells import ACTIVATION_CODES
from crnn._stream import StreamChain
from crnn.layers.core import Activation, Dense, Dropout
from crnn.layers.recurrent import GRU, LSTM, SimpleRNN
from crnn.layers.wrappers import TimeDistributed

__all__ = ["Streamer"]

_RECURRENT = {LSTM: "lstm", GRU: "gru", SimpleRNN: "simple_rnn"}
_SUPPORTED = "LSTM, GRU, SimpleRNN, Dense, Activation, Dropout, TimeDistributed(Dense)"


def _unsupported(layer, why):
    return NotImplementedError(
        f"Streamer does not support layer {layer.name!r} ({type(layer).__name__}){why}; "
        f"it supports {_SUPPORTED}. Use model.predict_on_batch for this model"
    )


class Streamer(StreamChain):
    """Fast one-timestep inference for a stateful, batch-1 ``Sequential`` model.

    ``streamer.step(x)`` returns what ``model.predict_on_batch(x.reshape(1, 1, -1))``
    returns, and advances the model's recurrent states the same way, in a few
    microseconds instead of tens.

    Supported layers: ``LSTM``, ``GRU`` (both ``reset_after`` modes) and ``SimpleRNN``
    with ``stateful=True`` (any activations the recurrent kernels support, with or without
    bias, ``go_backwards`` either way: with one timestep it makes no difference); ``Dense``
    and ``Activation`` with any Keras activation crnn knows; ``Dropout`` (the identity at
    inference); ``TimeDistributed`` around ``Dense``, ``Activation`` or ``Dropout``.

    The model shares its weights and states with the Streamer (see the module notes):
    stepping moves the model's states forward, and training or ``reset_states`` on the
    model takes effect at the next step.

    Args:
        model: a built ``crnn.Sequential`` whose input shape is ``(1, timesteps,
            features)`` and whose recurrent layers are all ``stateful=True``.

    Raises:
        ValueError: the model is not built, its batch size is not 1, a recurrent layer is
            not stateful, or its layers mix dtypes.
        NotImplementedError: the model has a layer that the Streamer cannot run.

    Example:
        >>> import numpy as np
        >>> from crnn import Sequential
        >>> from crnn.layers import LSTM, Dense
        >>> from crnn.streaming import Streamer
        >>> model = Sequential([LSTM(64, stateful=True, batch_input_shape=(1, 1, 16)),
        ...                     Dense(1)])
        >>> streamer = Streamer(model)
        >>> x = np.zeros(16, np.float32)
        >>> streamer.step(x).shape
        (1, 1)
        >>> streamer.reset_states()             # same as model.reset_states()
    """

    def __init__(self, model):
        self.model = model
        self.dtype, self.n_features, stages, self.output_shape = self._describe(model)
        self._setup(self.dtype, self.n_features, stages, self.output_shape)

    @staticmethod
    def _describe(model):
        layers = getattr(model, "layers", None)
        if layers is None or not hasattr(model, "input_shape"):
            raise TypeError(
                f"model must be a crnn Sequential model, received {type(model).__name__}")
        if not getattr(model, "built", False):
            raise ValueError(
                f"model {model.name!r} is not built; declare its input shape, e.g. "
                f"LSTM(units, stateful=True, batch_input_shape=(1, 1, features)) as the first "
                f"layer, before creating a Streamer")
        shape = tuple(model.input_shape)
        if len(shape) != 3:
            raise ValueError(
                f"model input shape must be (batch, timesteps, features), received {shape}")
        if shape[0] != 1:
            raise ValueError(
                f"Streamer needs a model with batch size 1, but model {model.name!r} has "
                f"input shape {shape} (batch size {shape[0]}); build the model with "
                f"batch_input_shape=(1, 1, {shape[2]}) (or crnn.Input(shape=(1, {shape[2]}), "
                f"batch_size=1)) and copy the weights over with "
                f"new_model.set_weights(model.get_weights())")
        # A wrapper computes in its inner layer's dtype; every other layer casts to its own.
        dtypes = {(layer.layer if type(layer) is TimeDistributed else layer).dtype
                  for layer in layers}
        if len(dtypes) != 1:
            raise ValueError(
                f"Streamer needs all layers of model {model.name!r} in one dtype, received "
                f"{sorted(dtypes)}; create the layers with the same dtype=")
        dtype = np.dtype(dtypes.pop())
        features = shape[2]
        stages = []
        out_shape = (1, 1, features)
        width = features
        has_recurrent = False
        for layer in layers:
            kind = type(layer)
            inner = layer.layer if kind is TimeDistributed else layer
            if kind is TimeDistributed and type(inner) not in (Dense, Activation, Dropout):
                raise _unsupported(layer, f" around {type(inner).__name__}")
            if kind in _RECURRENT:
                if not layer.stateful:
                    raise ValueError(
                        f"Streamer needs stateful recurrent layers, but layer {layer.name!r} "
                        f"has stateful=False, so predict_on_batch would start every call "
                        f"from zero states; create it with stateful=True (and "
                        f"batch_input_shape=(1, 1, {features}) on the first layer)")
                has_recurrent = True
                spec = dict(kind=_RECURRENT[kind], units=layer.units, act=layer.activation,
                            ract=getattr(layer, "recurrent_activation", "sigmoid"),
                            reset_after=getattr(layer, "reset_after", False),
                            kernel=layer.kernel, recurrent_kernel=layer.recurrent_kernel,
                            bias=layer.bias if layer.use_bias else None, layer=layer)
                stages.append(spec)
                width = layer.units
            elif type(inner) is Dense:
                if inner.activation not in ACTIVATION_CODES:
                    raise _unsupported(layer, f" with activation {inner.activation!r}")
                stages.append(dict(kind="dense", units=inner.units, act=inner.activation,
                                   kernel=inner.kernel,
                                   bias=inner.bias if inner.use_bias else None))
                width = inner.units
            elif type(inner) is Activation:
                if inner.activation not in ACTIVATION_CODES:
                    raise _unsupported(layer, f" with activation {inner.activation!r}")
                if inner.activation != "linear":
                    stages.append(dict(kind="activation", units=width, act=inner.activation))
            elif type(inner) is not Dropout:
                raise _unsupported(layer, "")
            out_shape = tuple(layer.compute_output_shape(out_shape))
        if not has_recurrent:
            raise ValueError(
                f"model {model.name!r} has no recurrent layer; Streamer is for stateful "
                f"recurrent models (use model.predict_on_batch for feed-forward models)")
        out_shape = (1,) + tuple(out_shape[1:])
        return dtype, features, stages, out_shape

    def reset_states(self):
        """Reset the model's recurrent states to zeros (as ``model.reset_states()``)."""
        self.model.reset_states()

    @property
    def states(self):
        """Copies of the current states, one list per recurrent layer (``[h, c]`` for
        LSTM, ``[h]`` otherwise), each array of shape ``(1, units)``."""
        return [layer.states for layer in self.model.layers if type(layer) in _RECURRENT]

    def __repr__(self):
        return (f"<Streamer model={self.model.name!r} features={self.n_features} "
                f"output_shape={self.output_shape} dtype={self.dtype.name}>")
