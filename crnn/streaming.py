"""Streaming inference: one timestep per call, for one stream or for many.

``model.predict_on_batch`` goes through the whole Python layer stack on every call (shape
checks, dtype conversions, one kernel call per layer), which costs tens of microseconds,
far more than the arithmetic of one timestep. Both classes here check the model once and
run each step as a single compiled call (``crnn._kernels._stream``) without the GIL:

* ``StreamPool`` serves many streams (users, sensors, symbols) with one model. It owns one
  state per stream; ``step(ids, X)`` advances any subset of them together, as one batched
  step through the whole layer chain.
* ``Streamer`` serves the one stream of a stateful batch-1 model: it is a pool of one
  whose state arrays are the model's own.

Both share the model's weights instead of copying them: weights are read in place, so
training (``fit``), ``set_weights`` and ``load_weights`` show up at the next step. Create
a new Streamer or pool after changing the model's structure (``add``/``pop``) or
replacing a weight array object (rather than writing into it).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING

import numpy as np

from crnn._kernels._cells import ACTIVATION_CODES
from crnn._kernels._stream import StreamCore
from crnn.layers.core import Activation, Dense, Dropout
from crnn.layers.recurrent import GRU, LSTM, SimpleRNN
from crnn.layers.wrappers import TimeDistributed
from crnn.saving import FORMAT, STREAM_STATES, VERSION, _Archive, _header_array, _write_atomically

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

    from crnn.models import Sequential

__all__ = ["StreamPool", "Streamer"]

_RECURRENT = {LSTM: "lstm", GRU: "gru", SimpleRNN: "simple_rnn"}
_SUPPORTED = "LSTM, GRU, SimpleRNN, Dense, Activation, Dropout, TimeDistributed(Dense)"
_STATES_KIND = STREAM_STATES


def _unsupported(who, layer, why):
    return NotImplementedError(
        f"{who} does not support layer {layer.name!r} ({type(layer).__name__}){why}; "
        f"it supports {_SUPPORTED}. Use model.predict_on_batch for this model"
    )


def _describe(model, who):
    """Check ``model`` for streaming and list its compute stages.

    Args:
        model: the model.
        who: ``"Streamer"`` (batch size 1, stateful recurrent layers) or ``"StreamPool"``
            (any batch size, stateful or not: the pool keeps its own states).

    Returns:
        ``(dtype, features, stages, output_shape, recurrent_layers)``: the stage dicts
        that ``StreamCore._setup`` takes, and the output shape ``predict_on_batch``
        gives for one timestep of batch 1.
    """
    layers = getattr(model, "layers", None)
    if layers is None or not hasattr(model, "input_shape"):
        raise TypeError(
            f"model must be a crnn Sequential model, received {type(model).__name__}")
    if not getattr(model, "built", False):
        raise ValueError(
            f"model {model.name!r} is not built; declare its input shape, e.g. "
            f"LSTM(units, stateful=True, batch_input_shape=(1, 1, features)) as the first "
            f"layer, before creating a {who}")
    shape = tuple(model.input_shape)
    if len(shape) != 3:
        raise ValueError(
            f"model input shape must be (batch, timesteps, features), received {shape}")
    if who == "Streamer" and shape[0] != 1:
        raise ValueError(
            f"Streamer needs a model with batch size 1, but model {model.name!r} has "
            f"input shape {shape} (batch size {shape[0]}); build the model with "
            f"batch_input_shape=(1, 1, {shape[2]}) (or crnn.Input(shape=(1, {shape[2]}), "
            f"batch_size=1)) and copy the weights over with "
            f"new_model.set_weights(model.get_weights()), or use a StreamPool, which "
            f"takes any batch size")
    # A wrapper computes in its inner layer's dtype; every other layer casts to its own.
    dtypes = {(layer.layer if type(layer) is TimeDistributed else layer).dtype
              for layer in layers}
    if len(dtypes) != 1:
        raise ValueError(
            f"{who} needs all layers of model {model.name!r} in one dtype, received "
            f"{sorted(dtypes)}; create the layers with the same dtype=")
    dtype = np.dtype(dtypes.pop())
    features = shape[2]
    stages, recurrent = [], []
    out_shape = (1, 1, features)
    width = features
    for layer in layers:
        kind = type(layer)
        inner = layer.layer if kind is TimeDistributed else layer
        if kind is TimeDistributed and type(inner) not in (Dense, Activation, Dropout):
            raise _unsupported(who, layer, f" around {type(inner).__name__}")
        if kind in _RECURRENT:
            if who == "Streamer" and not layer.stateful:
                raise ValueError(
                    f"Streamer needs stateful recurrent layers, but layer {layer.name!r} "
                    f"has stateful=False, so predict_on_batch would start every call "
                    f"from zero states; create it with stateful=True (and "
                    f"batch_input_shape=(1, 1, {features}) on the first layer)")
            recurrent.append(layer)
            stages.append({
                "kind": _RECURRENT[kind], "units": layer.units,
                "act": ACTIVATION_CODES[layer.activation],
                "ract": ACTIVATION_CODES[getattr(layer, "recurrent_activation", "sigmoid")],
                "reset_after": getattr(layer, "reset_after", False), "kernel": layer.kernel,
                "recurrent_kernel": layer.recurrent_kernel,
                "bias": layer.bias if layer.use_bias else None})
            width = layer.units
        elif type(inner) is Dense:
            if inner.activation not in ACTIVATION_CODES:
                raise _unsupported(who, layer, f" with activation {inner.activation!r}")
            stages.append({"kind": "dense", "units": inner.units,
                           "act": ACTIVATION_CODES[inner.activation], "kernel": inner.kernel,
                           "bias": inner.bias if inner.use_bias else None})
            width = inner.units
        elif type(inner) is Activation:
            if inner.activation not in ACTIVATION_CODES:
                raise _unsupported(who, layer, f" with activation {inner.activation!r}")
            if inner.activation != "linear":
                stages.append({"kind": "activation", "units": width,
                               "act": ACTIVATION_CODES[inner.activation]})
        elif type(inner) is not Dropout:
            raise _unsupported(who, layer, "")
        out_shape = tuple(layer.compute_output_shape(out_shape))
    if not recurrent:
        raise ValueError(
            f"model {model.name!r} has no recurrent layer; {who} is for recurrent models "
            f"(use model.predict_on_batch for feed-forward models)")
    out_shape = (1,) + tuple(out_shape[1:])
    return dtype, features, stages, out_shape, recurrent


class Streamer(StreamCore):
    """Fast one-timestep inference for a stateful, batch-1 ``Sequential`` model.

    ``streamer.step(x)`` returns what ``model.predict_on_batch(x.reshape(1, 1, -1))``
    returns, and advances the model's recurrent states the same way, in a few
    microseconds instead of tens. It is a ``StreamPool`` of one stream whose states are
    the recurrent layers' own state arrays (``layer.live_states()``), updated in place:
    ``layer.states``, ``model.predict``, ``model.save`` and ``model.reset_states()`` all
    see and act on the streamed state.

    Supported layers: ``LSTM``, ``GRU`` (both ``reset_after`` modes) and ``SimpleRNN``
    with ``stateful=True`` (any activations the recurrent kernels support, with or without
    bias, ``go_backwards`` either way: with one timestep it makes no difference); ``Dense``
    and ``Activation`` with any Keras activation crnn knows; ``Dropout`` (the identity at
    inference); ``TimeDistributed`` around ``Dense``, ``Activation`` or ``Dropout``.

    Thread safety: a Streamer serves one stream. A ``step`` called while another thread
    is inside ``step`` of the same Streamer raises ``RuntimeError`` (checked before it
    looks at its input), and the running step is not disturbed. Use one model and
    Streamer per thread, or a ``StreamPool``, whose calls wait for each other.

    Args:
        model: a built ``crnn.Sequential`` whose input shape is ``(1, timesteps,
            features)`` and whose recurrent layers are all ``stateful=True``.

    Raises:
        TypeError: ``model`` is not a crnn ``Sequential``.
        ValueError: the model is not built, its input is not 3-D, its batch size is not 1,
            it has no recurrent layer, a recurrent layer is not stateful, or its layers mix
            dtypes.
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

    def __init__(self, model: Sequential):
        self.model = model
        self.dtype, self.n_features, stages, self.output_shape, recurrent = _describe(
            model, "Streamer")
        self._recurrent = recurrent
        self._setup(self.dtype, self.n_features, stages, 1, False, False,
                    [list(layer.live_states()) for layer in recurrent], self.output_shape)

    step = StreamCore._step_one

    def reset_states(self) -> None:
        """Reset the model's recurrent states to zeros (as ``model.reset_states()``)."""
        self.model.reset_states()

    @property
    def states(self):
        """Copies of the current states, one list per recurrent layer (``[h, c]`` for
        LSTM, ``[h]`` otherwise), each array of shape ``(1, units)``."""
        return [layer.states for layer in self._recurrent]

    def __repr__(self):
        return (f"<Streamer model={self.model.name!r} features={self.n_features} "
                f"output_shape={self.output_shape} dtype={self.dtype.name}>")


class StreamPool(StreamCore):
    """Many streams through one model: one state per stream, stepped together.

    A server holds one state per user session, sensor or market symbol, steps whichever
    streams have new data, resets a stream when it ends, and keeps the states across
    restarts. ``StreamPool`` does this for a recurrent ``Sequential`` model: ``open()``
    gives a stream with zero states, ``step(ids, X)`` advances any subset of the open
    streams by one timestep (in any order) as one batched compiled step without the GIL,
    and ``close(id)`` frees its slot.

    Each stream gets exactly what it would get alone from a batch-1 stateful copy of the
    model fed with ``predict_on_batch`` one timestep at a time.

    The pool shares the model's weights (training, ``set_weights`` and ``load_weights``
    take effect at the next step) but owns its states: ``model.predict`` and the model's
    own stateful states neither see nor disturb them. The states are kept slot-major, one
    row of each recurrent layer's ``(capacity, units)`` arrays per stream: an open stream
    costs its state arrays (plus 9 bytes of bookkeeping per slot).

    Stream ids are ints. The first stream in each slot gets the slot number (so the first
    ``capacity`` opens of a new pool return 0, 1, 2, ...); a reused slot gives a new id,
    so the id of a closed stream never refers to another stream. Ids survive
    ``save_states``/``load_states``.

    Thread safety: every method holds the pool's lock while it runs, so concurrent calls
    from several threads are serialized (a waiting thread does not hold the GIL) and
    never mix states. Stepping is not reentrant per stream: serve each stream's steps in
    order.

    Args:
        model: a built ``crnn.Sequential`` of the layers ``Streamer`` supports, any batch
            size, its recurrent layers stateful or not (the pool keeps its own states).
        capacity: the number of streams to allocate for (default 64).
        grow: when a stream is opened in a full pool, double the capacity (default True);
            False raises ``RuntimeError`` instead.

    Raises:
        TypeError: ``model`` is not a crnn ``Sequential``, or ``grow`` is not a bool.
        ValueError: the model is not built, its input is not 3-D, it has no recurrent
            layer, or it mixes dtypes; ``capacity`` is not a positive int.
        NotImplementedError: the model has a layer that the pool cannot run.

    Example:
        >>> import numpy as np
        >>> from crnn import Sequential
        >>> from crnn.layers import LSTM, Dense
        >>> from crnn.streaming import StreamPool
        >>> model = Sequential([LSTM(8, batch_input_shape=(None, None, 3)), Dense(1)])
        >>> pool = StreamPool(model, capacity=4)
        >>> a, b = pool.open(), pool.open()
        >>> pool.step([b, a], np.ones((2, 3), np.float32)).shape
        (2, 1)
        >>> pool.close(a)
        >>> len(pool)
        1
    """

    def __init__(self, model: Sequential, capacity: int = 64, grow: bool = True):
        if (isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer))
                or capacity < 1):
            raise ValueError(f"capacity must be a positive int, received {capacity!r}")
        if not isinstance(grow, bool):
            raise TypeError(f"grow must be True or False, received {grow!r}")
        self.model = model
        self.dtype, self.n_features, stages, output_shape, recurrent = _describe(
            model, "StreamPool")
        self.n_outputs = int(output_shape[-1])
        # per stream: h (and c for LSTM) of each recurrent layer, in model order
        self._state_shapes = [(layer.units,) for layer in recurrent
                              for _ in range(2 if isinstance(layer, LSTM) else 1)]
        self.fingerprint = _fingerprint(self.dtype, self.n_features, stages)
        self._setup(self.dtype, self.n_features, stages, int(capacity), grow, True)

    def open(self) -> int:
        """Open a new stream with zero states.

        Returns:
            Its id, an int to pass to ``step``, ``reset``, ``close``...

        Raises:
            RuntimeError: the pool is full and was created with ``grow=False``.
        """
        return self._open_stream()

    def close(self, sid: int) -> None:
        """Close stream ``sid`` and free its slot (its id is never valid again).

        Args:
            sid: an open stream's id, as ``open`` returned it.

        Raises:
            ValueError: ``sid`` is not an open stream of this pool.
            TypeError: ``sid`` is not an int.
        """
        self._close_stream(sid)

    def reset(self, sid: int) -> None:
        """Set the states of stream ``sid`` to zeros (a new sequence on the same stream).

        Args:
            sid: an open stream's id.

        Raises:
            ValueError: ``sid`` is not an open stream of this pool.
            TypeError: ``sid`` is not an int.
        """
        self._reset_stream(sid)

    def get_state(self, sid: int) -> list[np.ndarray]:
        """A copy of the states of stream ``sid``.

        Args:
            sid: an open stream's id.

        Returns:
            A list of arrays of shape ``(units,)``, the recurrent layers in model order
            (``h, c`` for LSTM, ``h`` otherwise): the same order as the model's
            ``layer.states``.

        Raises:
            ValueError: ``sid`` is not an open stream of this pool.
            TypeError: ``sid`` is not an int.
        """
        return self._get_stream(sid)

    def set_state(self, sid: int, states: Sequence[ArrayLike]) -> None:
        """Set the states of stream ``sid`` (as ``get_state`` returns them).

        Args:
            sid: an open stream.
            states: a list of arrays, one per state in ``get_state``'s order, each of
                shape ``(units,)`` or ``(1, units)``, real numbers.

        Raises:
            ValueError: ``sid`` is not an open stream, or ``states`` has the wrong
                length or shapes. Nothing changes then.
            TypeError: ``sid`` is not an int, or a state is not real numbers.
        """
        if not isinstance(states, (list, tuple)) or len(states) != len(self._state_shapes):
            got = (f"a {type(states).__name__} of length {len(states)}"
                   if isinstance(states, (list, tuple)) else type(states).__name__)
            raise ValueError(
                f"states must be a list of {len(self._state_shapes)} arrays of shapes "
                f"{self._state_shapes} (as get_state returns), received {got}")
        values = []
        for k, (state, shape) in enumerate(zip(states, self._state_shapes)):
            a = np.asarray(state)
            if a.dtype.kind not in "fiub":
                raise TypeError(f"states[{k}] must be real numbers, received dtype {a.dtype}")
            if a.shape not in (shape, (1,) + shape):
                raise ValueError(f"states[{k}] must have shape {shape} (or {(1,) + shape}), "
                                 f"received shape {a.shape}")
            values.append(a.reshape(shape).astype(self.dtype))
        self._set_stream(sid, values)

    @property
    def ids(self) -> list:
        """The ids of the open streams, in slot order."""
        return self._open_ids().tolist()

    def __len__(self):
        return self.n_open

    def save_states(self, filepath: str | os.PathLike, overwrite: bool = True) -> None:
        """Save the states and ids of all open streams to one file.

        The file is a pickle-free ``.npz`` archive (crnn's file conventions, see
        ``crnn.saving``), written to a temporary file and moved into place, so a crash
        mid-save leaves any earlier file intact. It carries a fingerprint of the model's
        architecture, which ``load_states`` checks.

        Args:
            filepath: where to write.
            overwrite: replace an existing file (default True).

        Raises:
            FileExistsError: the file exists and ``overwrite`` is False.
            FileNotFoundError: the destination folder does not exist.
            IsADirectoryError: ``filepath`` is a folder.

        Example:
            >>> import os, tempfile
            >>> import numpy as np, crnn
            >>> from crnn.streaming import StreamPool
            >>> model = crnn.Sequential([crnn.layers.GRU(4, input_shape=(None, 2))])
            >>> pool = StreamPool(model, capacity=2)
            >>> sid = pool.open()
            >>> _ = pool.step([sid], np.ones((1, 2), "float32"))
            >>> path = os.path.join(tempfile.mkdtemp(), "streams.npz")
            >>> pool.save_states(path)
            >>> again = StreamPool.load_states(path, model)      # e.g. after a restart
            >>> again.ids == [sid], np.array_equal(again.get_state(sid)[0], pool.get_state(sid)[0])
            (True, True)
        """
        filepath = os.fspath(filepath)
        if not overwrite and os.path.exists(filepath):
            raise FileExistsError(f"{filepath!r} exists and overwrite=False; pass "
                                  f"overwrite=True or choose another path")
        ids, states, next_gen = self._export()
        header = {"format": FORMAT, "version": VERSION, "kind": _STATES_KIND,
                  "fingerprint": self.fingerprint, "dtype": self.dtype.name,
                  "n_streams": len(ids), "n_slots": len(next_gen),
                  "state_shapes": [list(s) for s in self._state_shapes]}
        arrays = {"stream_ids": ids, "stream_generations": next_gen}
        arrays.update({f"state_{k:05d}": s for k, s in enumerate(states)})
        arrays["crnn_header"] = _header_array(header)
        _write_atomically(filepath, arrays, overwrite)

    @classmethod
    def load_states(cls, filepath: str | os.PathLike, model: Sequential,
                    capacity: int | None = None, grow: bool = True) -> StreamPool:
        """A new pool on ``model`` holding the streams saved by ``save_states``.

        ``save_states``'s example loads its file back with this method.

        Args:
            filepath: a file written by ``save_states``.
            model: a model with the same architecture (layers, units, activations,
                dtype) as the one whose pool was saved; its weights may differ.
            capacity: slots to allocate (default None: as many as the saved pool had).
            grow: as for ``StreamPool`` (default True).

        Returns:
            A ``StreamPool`` whose open streams are the saved ones, with the same ids.

        Raises:
            ValueError: the file is not a crnn stream-states file, is damaged, or was
                saved from a model of another architecture; or ``capacity`` is not a
                positive int or is too small for the saved streams' slots.
            FileNotFoundError: no such file.
            TypeError: as for ``StreamPool``.
            NotImplementedError: as for ``StreamPool``.
        """
        archive = _Archive(filepath)
        try:
            header = archive.header
            path = archive.path
            if header.get("kind") != _STATES_KIND:
                raise ValueError(f"{path!r} is a crnn {header.get('kind')!r} file, not "
                                 f"stream states; load it with crnn.load_model or "
                                 f"load_weights")
            ids = archive.read("stream_ids")
            next_gen = archive.read("stream_generations")
            shapes = header.get("state_shapes")
            if not isinstance(shapes, list):
                # a damaged file is a ValueError, whatever is wrong in it (crnn.saving)
                raise ValueError(  # noqa: TRY004
                    f"{path!r} has a damaged header: no state_shapes list")
            states = [archive.read(f"state_{k:05d}") for k in range(len(shapes))]
        finally:
            archive.close()
        pool = cls(model, capacity=1, grow=grow)
        if header.get("fingerprint") != pool.fingerprint:
            raise ValueError(
                f"the states in {path!r} were saved from a model of another architecture "
                f"(state shapes {[tuple(s) for s in shapes]}, dtype {header.get('dtype')}) "
                f"than model {model.name!r} (state shapes {pool._state_shapes}, dtype "
                f"{pool.dtype.name}); load them with the model they were saved from")
        n = len(ids)
        if (ids.ndim != 1 or ids.dtype != np.int64 or next_gen.ndim != 1
                or next_gen.dtype != np.uint32 or header.get("n_streams") != n):
            raise ValueError(f"{path!r} is damaged: its stream ids do not match its header")
        slots = ids & 0xFFFFFFFF
        if n and (ids.min() < 0 or slots.max() >= len(next_gen)
                  or len(np.unique(slots)) != n
                  or np.any(next_gen[slots].astype(np.int64) - 1 != ids >> 32)):
            raise ValueError(f"{path!r} is damaged: its stream ids are inconsistent")
        for k, (s, shape) in enumerate(zip(states, pool._state_shapes)):
            if s.shape != (n,) + shape or s.dtype != pool.dtype:
                raise ValueError(f"{path!r} is damaged: state {k} has shape {s.shape} and "
                                 f"dtype {s.dtype}, expected {(n,) + shape} {pool.dtype}")
        if capacity is None:
            capacity = max(1, len(next_gen))
        if (isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer))
                or capacity < 1):
            raise ValueError(f"capacity must be a positive int, received {capacity!r}")
        if n and capacity <= slots.max():
            raise ValueError(f"capacity={capacity} is too small for the saved streams, "
                             f"which use slots up to {slots.max()}; pass capacity="
                             f"{slots.max() + 1} or more (or None)")
        pool = cls(model, capacity=int(capacity), grow=grow)
        pool._import(ids, states, next_gen)
        return pool

    def __repr__(self):
        return (f"<StreamPool model={self.model.name!r} streams={self.n_open} "
                f"capacity={self.capacity} features={self.n_features} "
                f"outputs={self.n_outputs} dtype={self.dtype.name}>")


def _fingerprint(dtype, features, stages):
    """A hash of what the states mean: the compute chain's kinds, sizes and activations."""
    chain = [[s["kind"], s["units"], s["act"], s.get("ract", 0),
              bool(s.get("reset_after", False)), s.get("bias") is not None]
             for s in stages]
    text = json.dumps([np.dtype(dtype).name, features, chain])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
