"""``Sequential``: a linear stack of layers, its weights, config, summary and saving.

The model holds the structure; the loops that run it on data (``compile``, ``fit``,
``evaluate``, ``predict``, the ``*_on_batch`` methods, batching, data checks, callbacks)
are in ``crnn.trainer.Trainer``, which ``Sequential`` inherits, as ``keras.Model``
inherits Keras's ``Trainer``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Callable

import numpy as np
from numpy.typing import ArrayLike

from crnn import saving
from crnn._validation import is_int
from crnn.layers import InputLayer, Layer, deserialize, serialize
from crnn.layers.base import assign_weights, backward_call, check_numeric, unique_name
from crnn.trainer import Trainer, compile_arguments, within_budget

__all__ = ["Sequential", "from_bytes", "load_model"]


@saving.register_model_class
class Sequential(Trainer):
    """A linear stack of layers, with Keras's ``compile``/``fit``/``evaluate``/``predict``.

    The model builds (creates its weights) as soon as its input shape is known: declared
    on the first layer (``input_shape=``/``batch_input_shape=``), by a leading
    ``crnn.Input``, by ``build(input_shape)``, or on the first data it sees. The loops
    (``compile``, ``fit``, ``evaluate``, ``predict``, the ``*_on_batch`` methods) are
    ``crnn.trainer.Trainer``'s.

    Args:
        layers: optional list of layers to add, in order, as ``add`` does (an
            ``Input``/``InputLayer`` may come first). Default None (an empty model).
        name: model name. Default None: a unique ``"sequential"``, ``"sequential_1"``...
        trainable: whether ``fit`` updates the weights. Default True.

    Raises:
        TypeError: if an entry of ``layers`` is not a crnn layer.
        ValueError: if a layer's name repeats another's, a layer returns several arrays,
            or an ``Input`` comes after a layer (see ``add``).

    Example:
        >>> import numpy as np
        >>> from crnn.models import Sequential
        >>> from crnn.layers import LSTM, Dense
        >>> x = np.random.default_rng(0).normal(size=(16, 10, 1)).astype("float32")
        >>> y = x.mean(axis=1)                                  # (16, 1)
        >>> model = Sequential([LSTM(8, input_shape=(10, 1)), Dense(1)])
        >>> model.compile(optimizer="adam", loss="mse")
        >>> history = model.fit(x, y, epochs=2, verbose=0)
        >>> model.predict(x[:3], verbose=0).shape
        (3, 1)

        Stateful, with the batch size declared the Keras 2 way:

        >>> model = Sequential([LSTM(8, stateful=True, batch_input_shape=(4, 10, 1)),
        ...                     Dense(1)])
        >>> model.predict(x[:8], verbose=0).shape               # two batches of 4
        (8, 1)
    """

    def __init__(self, layers: Sequence[Layer] | None = None, name: str | None = None,
                 trainable: bool = True):
        self.name = name if name is not None else unique_name("sequential")
        self.trainable = bool(trainable)
        self._layers = []
        self._input_layer = None
        self._build_shape = None
        self.built = False
        Trainer.__init__(self)
        for layer in layers or []:
            self.add(layer)

    # ------------------------------------------------------------------ structure

    def add(self, layer: Layer) -> None:
        """Append a layer (or set the input with an ``Input``/``InputLayer``).

        The model builds as soon as its input shape is known.

        Args:
            layer: a crnn layer instance.

        Raises:
            TypeError: if ``layer`` is not a crnn layer.
            ValueError: if the layer returns several arrays (``return_state=True``,
                ``merge_mode=None``), its name is taken, or an ``Input`` comes after a layer.
            NotImplementedError: if an ``Input`` or a layer inside a ``TimeDistributed``
                has an ``activity_regularizer`` (Keras ignores it there).

        Example:
            >>> from crnn.models import Sequential
            >>> from crnn.layers import GRU, Dense
            >>> model = Sequential()
            >>> model.add(GRU(4, input_shape=(6, 2)))
            >>> model.add(Dense(1))
            >>> model.output_shape
            (None, 1)
        """
        # Keras 3's TimeDistributed runs its layer's call() and skips that layer's activity
        # regularizer; crnn refuses it rather than ignore it (Bidirectional takes it).
        nested = [layer] if isinstance(layer, InputLayer) else \
            (layer._inner_layers() if hasattr(layer, "_inner_layers")
             and not hasattr(layer, "_nested_activity_penalty") else [])
        for inner in nested:
            if getattr(inner, "activity_regularizer", None) is not None:
                raise NotImplementedError(
                    f"layer {inner.name!r}: activity_regularizer is not supported on an Input or "
                    f"inside {type(layer).__name__} (Keras ignores it there); put it on the "
                    f"{type(layer).__name__} instead"
                )
        if isinstance(layer, InputLayer):
            if self._layers or self._input_layer is not None:
                raise ValueError(
                    "an Input/InputLayer can only be the first layer of a Sequential model"
                )
            self._input_layer = layer
            self._build()
            return
        if not isinstance(layer, Layer):
            raise TypeError(
                f"Sequential.add expects a crnn layer instance, received {type(layer).__name__}"
            )
        if not layer._single_output:
            raise ValueError(
                f"layer {layer.name!r} returns several arrays (return_state=True or "
                f"merge_mode=None); Sequential layers must return one array"
            )
        if any(existing.name == layer.name for existing in self._layers):
            raise ValueError(
                f"layer names must be unique within a model; {layer.name!r} is already used "
                f"(pass name=... to the layer)"
            )
        if not self._layers and self._input_layer is None \
                and layer._batch_input_shape is not None:
            self._input_layer = InputLayer(batch_shape=layer._batch_input_shape)
        self._layers.append(layer)
        self._build()

    def pop(self) -> None:
        """Remove the last layer.

        Raises:
            ValueError: if the model has no layer.
        """
        if not self._layers:
            raise ValueError("there is no layer to pop: the model is empty")
        self._layers.pop()

    @property
    def layers(self) -> list[Layer]:
        """The model's layers (without the input layer, as in Keras); a new list."""
        return list(self._layers)

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by name or by index (``index`` wins when both are given).

        Args:
            name: the layer's name.
            index: its position in ``layers``.

        Returns:
            The layer.

        Raises:
            ValueError: if no layer has that name.
            IndexError: if ``index`` is out of range.
        """
        if index is not None:
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r}; layers: {[l.name for l in self._layers]}")

    def _input_batch_shape(self):
        if self._input_layer is not None:
            return self._input_layer.batch_shape
        return self._build_shape

    def _build(self, input_shape=None):
        shape = self._input_batch_shape() if input_shape is None else tuple(input_shape)
        if shape is None:
            return
        for layer in self._layers:
            if not layer.built:
                layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.built = bool(self._layers)

    def build(self, input_shape: Sequence[int | None] | None = None) -> None:
        """Create the weights for inputs of ``input_shape``.

        Args:
            input_shape: the input shape with the batch axis first (which may be None),
                e.g. ``(None, 10, 3)``. Ignored when the model already has an input shape.

        Raises:
            ValueError: if neither ``input_shape`` nor a declared input shape is known.
        """
        if input_shape is not None and self._input_batch_shape() is None:
            self._build_shape = tuple(input_shape)
        if self._input_batch_shape() is None:
            raise ValueError(
                "the model has no input shape; pass build(input_shape), declare "
                "input_shape=/batch_input_shape= on the first layer, or add crnn.Input(...)"
            )
        self._build()

    @property
    def input_shape(self) -> tuple | None:
        """The input shape, batch axis first (None until it is declared or seen)."""
        return self._input_batch_shape()

    @property
    def output_shape(self) -> tuple:
        """The output shape, batch axis first.

        Raises:
            ValueError: if the input shape isn't known yet or the model has no layer.
        """
        shape = self._input_batch_shape()
        if shape is None or not self._layers:
            raise ValueError("the model has no known input shape yet, so no output shape")
        for layer in self._layers:
            shape = layer.compute_output_shape(shape)
        return tuple(shape)

    # ------------------------------------------------------------------ weights

    @property
    def weights(self) -> list[np.ndarray]:
        """All weight arrays (the live arrays, not copies), in Keras's order."""
        return [w for layer in self._layers for w in layer.weights]

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        """The weight arrays that ``fit`` updates (none when ``trainable`` is False)."""
        if not self.trainable:
            return []
        return [w for layer in self._layers for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self) -> list[np.ndarray]:
        """The weight arrays that ``fit`` leaves alone."""
        if not self.trainable:
            return self.weights
        return [w for layer in self._layers for w in layer.non_trainable_weights]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of all weights, layer by layer, in Keras's order.

        Returns:
            A list of arrays, which ``set_weights`` (here or on a Keras model of the same
            architecture) accepts.
        """
        return [np.array(w) for w in self.weights]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Set all weights from a list in ``get_weights`` order.

        Every array is checked (count, shapes) before any is copied, so a failed call
        changes nothing.

        Args:
            weights: arrays in ``get_weights`` order, e.g. a Keras model's ``get_weights()``.

        Raises:
            ValueError: if the model isn't built, or the count or a shape differs.
        """
        self._require_built("set_weights")
        assign_weights(f"model {self.name!r}", self.weights, weights)

    def count_params(self) -> int:
        """The number of weights (scalars) in the model.

        Returns:
            The total size of all weight arrays, trainable or not.

        Raises:
            ValueError: if the model isn't built.
        """
        self._require_built("count_params")
        return int(sum(w.size for w in self.weights))

    def _require_built(self, what):
        if not self.built:
            raise ValueError(
                f"model {self.name!r} is not built, so {what} can't run yet; declare the input "
                f"shape (input_shape=..., batch_input_shape=... or crnn.Input) or call the "
                f"model on data first"
            )

    # ------------------------------------------------------------------ states

    def _stateful_layers(self):
        return [layer for layer in self._layers if layer._has_states]

    def _stateful_batch_size(self):
        if not self._stateful_layers():
            return None
        return self._input_batch_shape()[0]

    def _declared_by(self):
        return f"the model's input shape {self._input_batch_shape()}"

    def reset_states(self) -> None:
        """Reset the states of every stateful layer to zeros (stateless models: no-op)."""
        for layer in self._stateful_layers():
            layer.reset_states()

    # ---------------------------------------------- deployment helpers (issue 8)

    def get_states(self) -> list[np.ndarray]:
        """Copies of every stateful layer's states, layer by layer.

        Returns:
            A list of ``(batch, units)`` arrays: ``[h, c]`` per LSTM, ``[h]`` per GRU or
            SimpleRNN, forward then backward for a ``Bidirectional``. Empty for a model
            without stateful layers.

        Example:
            >>> import numpy as np, crnn
            >>> model = crnn.Sequential([crnn.Input(batch_shape=(2, 5, 1)),
            ...                          crnn.layers.GRU(3, stateful=True)])
            >>> saved = model.get_states()          # e.g. before a what-if prediction
            >>> [s.shape for s in saved]
            [(2, 3)]
            >>> _ = model.predict(np.ones((2, 5, 1)), verbose=0)
            >>> model.set_states(saved)             # ...and back
        """
        return [s for layer in self._stateful_layers() for s in layer._state_arrays()]

    def set_states(self, states: Sequence[ArrayLike]) -> None:
        """Set every stateful layer's states from a list in ``get_states()`` order.

        Args:
            states: the arrays, as ``get_states()`` returns them.

        Raises:
            TypeError: if ``states`` is not a list of arrays, or an array is not real
                numeric (nothing is changed then).
            ValueError: if the model isn't built, or the count or a shape differs
                (nothing is changed then).
        """
        self._require_built("set_states")
        current = self.get_states()
        if not hasattr(states, "__iter__") or isinstance(states, (str, bytes, dict)):
            raise TypeError(f"states must be a list of arrays (as get_states() returns), "
                            f"received {type(states).__name__}")
        states = list(states)
        if len(states) != len(current):
            raise ValueError(f"model {self.name!r} has {len(current)} state arrays, received "
                             f"{len(states)}; expected shapes {[s.shape for s in current]}")
        # Every array checked here, before the first layer's states change.
        checked = [check_numeric(f"state {k} of model {self.name!r}", s)
                   for k, s in enumerate(states)]
        for k, (own, new) in enumerate(zip(current, checked)):
            if new.shape != own.shape:
                raise ValueError(f"state {k} of model {self.name!r} must have shape "
                                 f"{own.shape}, received shape {new.shape}")
        for layer in self._stateful_layers():
            n = len(layer._state_arrays())
            layer._set_state_arrays(checked[:n])
            checked = checked[n:]

    def with_batch_size(self, batch_size: int | None) -> Sequential:
        """A copy of this model declared with another batch size, with the same weights.

        The usual way to deploy a stateful model trained on batches of ``B`` sequences
        one stream at a time: ``model.with_batch_size(1)``. The copy is compiled like this
        model (fresh optimizer slots); its states start at zero.

        Args:
            batch_size: the new batch size (a positive int), or None for any batch size
                (stateful models need an int).

        Returns:
            A new ``Sequential``.

        Raises:
            ValueError: if the model isn't built, ``batch_size`` is not a positive int or
                None, or it is None and the model is stateful.

        Example:
            >>> import numpy as np, crnn
            >>> model = crnn.Sequential([crnn.Input(batch_shape=(16, 10, 1)),
            ...                          crnn.layers.LSTM(8, stateful=True),
            ...                          crnn.layers.Dense(1)])
            >>> online = model.with_batch_size(1)
            >>> online.predict(np.zeros((1, 10, 1)), verbose=0).shape
            (1, 1)
        """
        self._require_built("with_batch_size")
        if batch_size is not None and not is_int(batch_size, minimum=1):
            raise ValueError(f"batch_size must be a positive int or None, received "
                             f"{batch_size!r}")
        config = self.get_config()
        shape = list(self._input_batch_shape())
        shape[0] = None if batch_size is None else int(batch_size)
        first = config["layers"][0]
        if first["class_name"] == "InputLayer":
            first["config"]["batch_shape"] = shape
        config["build_input_shape"] = shape
        model = type(self).from_config(config)
        model.set_weights(self.get_weights())
        if self._compile_config is not None:
            model.compile(**compile_arguments(self._compile_config))
        return model

    # ------------------------------------------------------------------ running

    def _forward(self, x, training, return_mask=False):
        mask = None
        caches = []
        for layer in self._layers:
            out_mask = layer.compute_mask(x, mask)
            x, cache = layer.forward(x, training=training, mask=mask)
            # A layer with an activity regularizer keeps its outputs for the penalty.
            caches.append((cache, x if layer.activity_regularizer is not None else None))
            mask = out_mask
        # The output's mask (a sequence output after Embedding(mask_zero)/Masking) weights
        # the loss and metrics in the trainer, as in Keras.
        return (x, caches, mask) if return_mask else (x, caches)

    def _backward(self, caches, d_outputs):
        """The gradients of ``trainable_weights``: ``d_outputs`` backpropagated through the
        layers in reverse, down to the first layer with trainable weights only. The model's
        input needs no gradient, so that layer is asked to skip its ``dx`` (``need_dx=False``,
        where its ``backward`` takes it) and the layers before it (no weights to update)
        are not run."""
        if not self.trainable:
            return []
        layers = self._layers
        first = next((i for i, layer in enumerate(layers) if layer.trainable_weights),
                     len(layers))
        grads = []
        for i in range(len(layers) - 1, first - 1, -1):
            layer, (cache, outputs) = layers[i], caches[i]
            if outputs is not None:
                d_outputs = d_outputs + layer._activity_gradient(outputs)
            d_outputs, layer_grads = backward_call(layer, cache, d_outputs, i > first)
            grads.append(layer_grads)
        return [g for layer_grads in reversed(grads) for g in layer_grads]

    def _activity_loss(self, caches):
        """The layers' activity penalties for the outputs kept in ``caches`` (Keras adds
        them to the loss, in training and evaluation)."""
        total = 0.0
        for layer, (cache, outputs) in zip(self._layers, caches):
            if outputs is not None:
                total += layer._activity_penalty(outputs)
            nested = getattr(layer, "_nested_activity_penalty", None)   # Bidirectional's directions
            if nested is not None:
                total += nested(cache)
        return total

    @within_budget
    def __call__(self, x: ArrayLike, training: bool = False) -> np.ndarray:
        """Run the model on ``x`` in one batch and return the outputs array.

        Args:
            x: inputs, e.g. ``(samples, timesteps, features)``.
            training: run in training mode (dropout on).

        Returns:
            The last layer's outputs.

        Raises:
            ValueError: if ``x`` doesn't fit the declared input shape, or a stateful model
                gets another batch size than the declared one.
        """
        x = self._check_x(x)
        self._check_direct_batch(x, "the input")
        y, _ = self._forward(x, training=bool(training))
        return y

    # ------------------------------------------------------------------ config

    def get_config(self) -> dict:
        """The model's architecture as a JSON-friendly dict (no weights).

        Returns:
            ``{"name", "trainable", "layers": [...], "build_input_shape"}``.
        """
        layers = []
        if self._input_layer is not None:
            layers.append(serialize(self._input_layer))
        for layer in self._layers:
            entry = serialize(layer)
            if self._input_layer is not None:
                entry["config"].pop("batch_input_shape", None)
            layers.append(entry)
        shape = self._input_batch_shape()
        return {"name": self.name, "trainable": self.trainable, "layers": layers,
                "build_input_shape": None if shape is None else list(shape)}

    @classmethod
    def from_config(cls, config: dict) -> Sequential:
        """Rebuild a model (with new weights) from ``get_config``'s output.

        Keras 3's ``Sequential.get_config()`` output works too.

        Args:
            config: the dict.

        Returns:
            A new model.

        Raises:
            ValueError: if ``config`` is not a Sequential config.

        Example:
            >>> from crnn.models import Sequential
            >>> from crnn.layers import LSTM
            >>> model = Sequential([LSTM(3, input_shape=(5, 2))])
            >>> Sequential.from_config(model.get_config()).count_params() == model.count_params()
            True
        """
        if not isinstance(config, dict) or "layers" not in config:
            raise ValueError("a Sequential config must be a dict with a 'layers' list")
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        for entry in config["layers"]:
            model.add(deserialize(entry))
        shape = config.get("build_input_shape")
        if not model.built and shape is not None and model._layers:
            model.build(tuple(shape))
        return model

    # ------------------------------------------------------------------ summary

    def summary(self, line_length: int | None = None, positions: Sequence[float] | None = None,
                print_fn: Callable[[str], object] | None = None, **kwargs: Any) -> None:
        """Print a table of the layers, their output shapes and parameter counts, as Keras.

        Args:
            line_length: accepted for Keras compatibility (the table sizes itself).
            positions: accepted for Keras compatibility (ignored).
            print_fn: called with each line (default None: ``print``).
            **kwargs: Keras's other options (``expand_nested``...), ignored.

        Example:
            >>> import crnn
            >>> model = crnn.Sequential([crnn.layers.Dense(2, input_shape=(3,), name="d")])
            >>> lines = []
            >>> model.summary(print_fn=lines.append)
            >>> lines[0], lines[-3]
            ('Model: "sequential..."', ' Total params: 8 (32.00 B)')
        """
        print_fn = print_fn or print
        rows = []
        shape = self._input_batch_shape()
        for layer in self._layers:
            if shape is not None:
                shape = layer.compute_output_shape(shape)
                out = str(tuple(shape))
                params = f"{layer.count_params():,}"
            else:
                out, params = "?", "0 (unbuilt)"
            rows.append((f"{layer.name} ({type(layer).__name__})", out, params))
        widths = [max(31, *(len(r[0]) + 2 for r in rows)) if rows else 31,
                  max(22, *(len(r[1]) + 2 for r in rows)) if rows else 22, 13]
        line_length = line_length or sum(widths) + 4
        lines = [f'Model: "{self.name}"']
        lines.append("┏" + "┳".join("━" * (w + 2) for w in widths) + "┓")
        header = ("Layer (type)", "Output Shape", "Param #")
        lines.append("┃ " + header[0].ljust(widths[0]) + " ┃ " + header[1].ljust(widths[1])
                     + " ┃ " + header[2].rjust(widths[2]) + " ┃")
        lines.append("┡" + "╇".join("━" * (w + 2) for w in widths) + "┩")
        for k, row in enumerate(rows):
            lines.append("│ " + row[0].ljust(widths[0]) + " │ " + row[1].ljust(widths[1])
                         + " │ " + row[2].rjust(widths[2]) + " │")
            if k < len(rows) - 1:
                lines.append("├" + "┼".join("─" * (w + 2) for w in widths) + "┤")
        lines.append("└" + "┴".join("─" * (w + 2) for w in widths) + "┘")
        if self.built:
            total = sum(w.size * w.itemsize for w in self.weights)
            n_total = self.count_params()
            n_train = int(sum(w.size for w in self.trainable_weights))
            n_frozen = n_total - n_train
            lines.append(f" Total params: {n_total:,} ({_format_bytes(total)})")
            lines.append(f" Trainable params: {n_train:,} "
                         f"({_format_bytes(sum(w.nbytes for w in self.trainable_weights))})")
            lines.append(f" Non-trainable params: {n_frozen:,} "
                         f"({_format_bytes(total - sum(w.nbytes for w in self.trainable_weights))})")
            if self.optimizer is not None and self.optimizer.built:
                state = self.optimizer.get_state()
                size = sum(a.nbytes for a in state[1:])
                lines.append(f" Optimizer params: {sum(a.size for a in state[1:]):,} "
                             f"({_format_bytes(size)})")
        else:
            lines.append(" Total params: 0 (unbuilt: declare an input shape or call the model)")
        for line in lines:
            print_fn(line)

    # ------------------------------------------------------------------ saving

    def save(self, filepath: str | os.PathLike, overwrite: bool = True,
             include_optimizer: bool = True) -> None:
        """Save config, weights, optimizer state and stateful layers' states to one file.

        See ``crnn.saving`` for the format and ``crnn.load_model`` to read it back.

        Args:
            filepath: destination (``.crnn`` is customary); written atomically.
            overwrite: replace an existing file. Default True.
            include_optimizer: also save the optimizer state, so training resumes exactly.
                Default True.

        Raises:
            ValueError: if the model isn't built.
            FileExistsError: if the file exists and ``overwrite`` is False.
            FileNotFoundError: if the destination folder does not exist.
            IsADirectoryError: if ``filepath`` is a folder.

        Example:
            >>> import os, tempfile
            >>> import crnn
            >>> model = crnn.Sequential([crnn.layers.Dense(2, input_shape=(3,))])
            >>> path = os.path.join(tempfile.mkdtemp(), "model.crnn")
            >>> model.save(path)
            >>> crnn.load_model(path).count_params()
            8
        """
        saving.save_model(self, filepath, overwrite=overwrite,
                          include_optimizer=include_optimizer)

    def save_weights(self, filepath: str | os.PathLike, overwrite: bool = True) -> None:
        """Save only the weights (``load_weights`` restores them into a same-shaped model).

        Args:
            filepath: destination; written atomically.
            overwrite: replace an existing file. Default True.

        Raises:
            ValueError: if the model isn't built.
            FileExistsError: if the file exists and ``overwrite`` is False.
            FileNotFoundError: if the destination folder does not exist.
            IsADirectoryError: if ``filepath`` is a folder.
        """
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath: str | os.PathLike) -> None:
        """Load weights saved by ``save_weights`` (or ``save``) into this model.

        Args:
            filepath: the file.

        Raises:
            FileNotFoundError: if there is no such file.
            ValueError: if the model isn't built, or the file is damaged or its weights
                don't fit this model (checked before any weight changes).

        Example:
            >>> import os, tempfile
            >>> import numpy as np, crnn
            >>> model = crnn.Sequential([crnn.layers.Dense(2, input_shape=(3,))])
            >>> path = os.path.join(tempfile.mkdtemp(), "weights.crnn")
            >>> model.save_weights(path)
            >>> twin = crnn.Sequential([crnn.layers.Dense(2, input_shape=(3,))])
            >>> twin.load_weights(path)
            >>> all(np.array_equal(a, b) for a, b in zip(twin.get_weights(), model.get_weights()))
            True
        """
        saving.load_weights(self, filepath)

    def to_bytes(self, include_optimizer: bool = True) -> bytes:
        """The model in crnn's pickle-free file format, as bytes.

        What ``save`` would write, for sending a model to another process (Dask workers,
        MPI ranks); ``crnn.models.from_bytes`` reads it back.

        Args:
            include_optimizer: also include the optimizer state. Default True.

        Returns:
            The bytes of a ``.crnn`` file.

        Raises:
            ValueError: if the model isn't built.
        """
        return saving.to_bytes(self, include_optimizer=include_optimizer)

    def __repr__(self):
        return f"<Sequential name={self.name!r} layers={[l.name for l in self._layers]}>"


def from_bytes(data: bytes | bytearray | memoryview, compile: bool = True) -> Sequential:
    """Rebuild a model from ``model.to_bytes()`` (or a saved file's bytes).

    Args:
        data: the bytes (``bytes``, ``bytearray`` or ``memoryview``).
        compile: recompile with the saved optimizer state, loss and metrics. Default True.

    Returns:
        The model, as ``crnn.load_model`` returns it.

    Raises:
        TypeError: if ``data`` is not bytes-like.
        ValueError: if ``data`` is not a crnn model.

    Example:
        >>> import crnn
        >>> model = crnn.Sequential([crnn.layers.Dense(2, input_shape=(3,))])
        >>> crnn.models.from_bytes(model.to_bytes()).count_params()
        8
    """
    return saving.from_bytes(data, compile=compile)


def _format_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024


def load_model(filepath: str | os.PathLike, compile: bool = True) -> Sequential:
    """Keras's spelling, ``keras.models.load_model``: the same as ``crnn.load_model``.

    Reads crnn files, and Keras ``.keras``/``.h5`` files (with h5py), as
    ``crnn.saving.load_model`` does.

    Args:
        filepath: a file written by ``model.save`` (or a Keras model file).
        compile: recompile with the saved optimizer (and its state), loss and metrics.
            Default True.

    Returns:
        The ``Sequential`` model.

    Raises:
        FileNotFoundError: if there is no such file.
        ValueError: if the file is damaged, truncated, hostile, or not a model file.
        ImportError: if it is a Keras file and h5py is not installed.

    Example:
        >>> import os, tempfile
        >>> import crnn
        >>> model = crnn.Sequential([crnn.layers.LSTM(4, input_shape=(5, 2))])
        >>> path = os.path.join(tempfile.mkdtemp(), "model.crnn")
        >>> model.save(path)
        >>> crnn.models.load_model(path).get_config() == model.get_config()
        True
    """
    from crnn import saving

    return saving.load_model(filepath, compile=compile)
