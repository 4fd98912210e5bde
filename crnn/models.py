"""``Sequential``: a linear stack of layers with Keras's training API.

Training runs forward through the layers (keeping each layer's cache), takes the loss and
its gradient from ``crnn.losses``, runs the layers' ``backward`` in reverse, and hands the
gradients to a ``crnn.optimizers`` optimizer, which updates the weight arrays in place.

Stateful models (any stateful recurrent layer) follow Keras's rules, checked before any
work so that weights and states are untouched when a check fails: a fixed batch size
(declared with the input shape), sample counts divisible by it, and no shuffling unless
asked for.
"""

import math
import warnings

import numpy as np

from crnn import callbacks as callbacks_module
from crnn import losses as losses_module
from crnn import metrics as metrics_module
from crnn import optimizers as optimizers_module
from crnn import utils
from crnn.layers import InputLayer, Layer, deserialize, serialize
from crnn.layers.base import assign_weights, unique_name

__all__ = ["Sequential"]


def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def _stateful_count_error(what, n, batch, declared_by):
    lower = (n // batch) * batch
    options = [c for c in (lower, lower + batch) if c > 0]
    divisors = _divisors(n)
    return ValueError(
        f"{what} has {n} samples, which is not divisible by the stateful batch size {batch} "
        f"(declared by {declared_by}). A stateful model carries one state per sample slot "
        f"from batch to batch, so the number of samples must be a multiple of {batch}: use "
        f"{' or '.join(str(c) for c in options)} samples (trim or pad the data), or declare a "
        f"batch size that divides {n}, one of {divisors}"
    )


class Sequential:
    """A linear stack of layers, with Keras's ``compile``/``fit``/``evaluate``/``predict``.

    Args:
        layers: optional list of layers to add (an ``Input``/``InputLayer`` may come first).
        name: model name (default ``"sequential"``, ``"sequential_1"``...).
        trainable: whether ``fit`` updates the weights.

    Example:
        >>> model = Sequential([LSTM(8, input_shape=(10, 1)), Dense(1)])
        >>> model.compile(optimizer="adam", loss="mse")
        >>> history = model.fit(x, y, epochs=2, verbose=0)        # x: (n, 10, 1), y: (n, 1)
        >>> model.predict(x[:3], verbose=0).shape
        (3, 1)

        Stateful, with the batch size declared the Keras 2 way:

        >>> model = Sequential([LSTM(8, stateful=True, batch_input_shape=(4, 10, 1)),
        ...                     Dense(1)])
    """

    def __init__(self, layers=None, name=None, trainable=True):
        self.name = name if name is not None else unique_name("sequential")
        self.trainable = bool(trainable)
        self._layers = []
        self._input_layer = None
        self._build_shape = None
        self.optimizer = None
        self.loss = None
        self.compiled_metrics = []
        self._compile_config = None
        self.stop_training = False
        self.history = None
        self.built = False
        for layer in layers or []:
            self.add(layer)

    # ------------------------------------------------------------------ structure

    def add(self, layer):
        """Append a layer (or set the input with an ``Input``/``InputLayer``).

        Args:
            layer: a crnn layer instance.
        """
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
        if getattr(layer, "return_state", False) or getattr(layer, "merge_mode", "") is None:
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

    def pop(self):
        """Remove the last layer."""
        if not self._layers:
            raise ValueError("there is no layer to pop: the model is empty")
        self._layers.pop()

    @property
    def layers(self):
        """The model's layers (without the input layer, as in Keras)."""
        return list(self._layers)

    def get_layer(self, name=None, index=None):
        """A layer by name or index."""
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

    def build(self, input_shape=None):
        """Create the weights for inputs of ``input_shape`` (batch axis first, may be None)."""
        if input_shape is not None and self._input_batch_shape() is None:
            self._build_shape = tuple(input_shape)
        if self._input_batch_shape() is None:
            raise ValueError(
                "the model has no input shape; pass build(input_shape), declare "
                "input_shape=/batch_input_shape= on the first layer, or add crnn.Input(...)"
            )
        self._build()

    @property
    def input_shape(self):
        return self._input_batch_shape()

    @property
    def output_shape(self):
        shape = self._input_batch_shape()
        if shape is None or not self._layers:
            raise ValueError("the model has no known input shape yet, so no output shape")
        for layer in self._layers:
            shape = layer.compute_output_shape(shape)
        return tuple(shape)

    # ------------------------------------------------------------------ weights

    @property
    def weights(self):
        return [w for layer in self._layers for w in layer.weights]

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        return [w for layer in self._layers for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self):
        if not self.trainable:
            return self.weights
        return [w for layer in self._layers for w in layer.non_trainable_weights]

    def get_weights(self):
        """Copies of all weights, layer by layer, in Keras's order."""
        return [np.array(w) for w in self.weights]

    def set_weights(self, weights):
        """Set all weights from a list in ``get_weights`` order (all checked before any copy)."""
        self._require_built("set_weights")
        assign_weights(f"model {self.name!r}", self.weights, weights)

    def count_params(self):
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
        return [layer for layer in self._layers if getattr(layer, "stateful", False)
                or getattr(getattr(layer, "layer", None), "stateful", False)]

    def _stateful_batch_size(self):
        if not self._stateful_layers():
            return None
        return self._input_batch_shape()[0]

    def _declared_by(self):
        return f"the model's input shape {self._input_batch_shape()}"

    def reset_states(self):
        """Reset the states of every stateful layer to zeros."""
        for layer in self._stateful_layers():
            layer.reset_states()

    # ---------------------------------------------- deployment helpers (issue 8)

    def get_states(self):
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

    def set_states(self, states):
        """Set every stateful layer's states from a list in ``get_states()`` order.

        Args:
            states: the arrays, as ``get_states()`` returns them.

        Raises:
            ValueError: if the count or a shape differs (nothing is changed then).
        """
        self._require_built("set_states")
        current = self.get_states()
        states = list(states)
        if len(states) != len(current):
            raise ValueError(f"model {self.name!r} has {len(current)} state arrays, received "
                             f"{len(states)}; expected shapes {[s.shape for s in current]}")
        checked = [np.asarray(s) for s in states]
        for k, (own, new) in enumerate(zip(current, checked)):
            if new.shape != own.shape:
                raise ValueError(f"state {k} of model {self.name!r} must have shape "
                                 f"{own.shape}, received shape {new.shape}")
        for layer in self._stateful_layers():
            n = len(layer._state_arrays())
            layer._set_state_arrays(checked[:n])
            checked = checked[n:]

    def with_batch_size(self, batch_size):
        """A copy of this model declared with another batch size, with the same weights.

        The usual way to deploy a stateful model trained on batches of ``B`` sequences
        one stream at a time: ``model.with_batch_size(1)``. The copy is compiled like this
        model (fresh optimizer slots); its states start at zero.

        Args:
            batch_size: the new batch size (a positive int), or None for any batch size
                (stateful models need an int).

        Returns:
            A new ``Sequential``.

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
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(
                batch_size, (int, np.integer)) or batch_size <= 0):
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
            model.compile(optimizer=self._compile_config["optimizer"],
                          loss=self._compile_config["loss"],
                          metrics=[m for m in self._compile_config["metrics"] if m])
        return model

    # ------------------------------------------------------------------ running

    def _to_array(self, x, name="x"):
        if isinstance(x, (list, tuple)):
            x = np.asarray(x)
        if not isinstance(x, np.ndarray):
            x = np.asarray(x)
        if x.dtype == object:
            raise TypeError(f"{name} must be a numeric array, received an object array")
        return x

    def _check_x(self, x, name="x"):
        """Build on first use and check the data shape against the declared one."""
        x = self._to_array(x, name)
        if not self._layers:
            raise ValueError("the model has no layers; add some with model.add(...)")
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(f"{name} must hold at least one sample, received shape {x.shape}")
        declared = self._input_batch_shape()
        if declared is None:
            self._build_shape = (None,) + x.shape[1:]
            self._build()
            declared = self._build_shape
        # As in Keras, only the axes that size weights are fixed: the last one (features),
        # or none for Embedding indices. A model declared with 10 timesteps still runs on
        # 7 or 12, because the recurrent, Dense and TimeDistributed layers don't depend on
        # the sequence length.
        from crnn.layers import Embedding
        fixed = () if isinstance(self._layers[0], Embedding) else (x.ndim - 1,)
        if len(declared) != x.ndim or any(
                declared[k] is not None and declared[k] != x.shape[k] for k in fixed if k > 0):
            raise ValueError(
                f"{name} has shape {x.shape}, but the model expects inputs of shape "
                f"{declared} (None = any size; the timesteps may vary)"
            )
        return x

    def _check_y(self, y, n, name="y"):
        y = self._to_array(y, name)
        if y.ndim == 0 or y.shape[0] != n:
            raise ValueError(
                f"{name} must have one target per sample: x has {n} samples, {name} has shape "
                f"{y.shape}"
            )
        return y

    def _forward(self, x, training):
        mask = None
        caches = []
        for layer in self._layers:
            out_mask = layer.compute_mask(x, mask)
            x, cache = layer.forward(x, training=training, mask=mask)
            caches.append(cache)
            mask = out_mask
        return x, caches

    def _backward(self, caches, d_outputs):
        grads = []
        for layer, cache in zip(reversed(self._layers), reversed(caches)):
            d_outputs, layer_grads = layer.backward(cache, d_outputs)
            grads.append(layer_grads)
        return [g for layer_grads in reversed(grads) for g in layer_grads] \
            if self.trainable else []

    def __call__(self, x, training=False):
        """Run the model on ``x`` and return the outputs array."""
        x = self._check_x(x)
        self._check_direct_batch(x, "the input")
        y, _ = self._forward(x, training=bool(training))
        return y

    def _check_direct_batch(self, x, what):
        batch = self._stateful_batch_size()
        if batch is not None and x.shape[0] != batch:
            raise ValueError(
                f"{what} has {x.shape[0]} samples, but this stateful model was declared with "
                f"batch size {batch} ({self._declared_by()}); call it with exactly {batch} "
                f"samples, or use predict(x), which splits x into batches of {batch}"
            )

    def _batch_size_for(self, what, n, batch_size):
        """Resolve the batch size; for stateful models check it and the sample count."""
        stateful = self._stateful_batch_size()
        if stateful is None:
            if batch_size is None:
                return 32
            if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                    or batch_size <= 0:
                raise ValueError(f"batch_size must be a positive int, received {batch_size!r}")
            return int(batch_size)
        if batch_size is not None and batch_size != stateful:
            raise ValueError(
                f"batch_size={batch_size} was passed to {what}, but this stateful model was "
                f"declared with batch size {stateful} ({self._declared_by()}); a stateful model "
                f"must always be fed batches of exactly {stateful} samples: pass "
                f"batch_size={stateful} or leave batch_size out"
            )
        if n % stateful:
            raise _stateful_count_error(f"x passed to {what}", n, stateful, self._declared_by())
        return stateful

    # ------------------------------------------------------------------ compile

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, **kwargs):
        """Configure training.

        Args:
            optimizer: name (``"sgd"``, ``"rmsprop"``, ``"adam"``, ``"adagrad"``) or a
                ``crnn.optimizers`` instance. Default ``"rmsprop"``, as in Keras.
            loss: name (``"mse"``, ``"mae"``, ``"binary_crossentropy"``, ...) or a
                ``crnn.losses`` instance.
            metrics: list of metric names or instances, e.g. ``["mae"]`` or
                ``["accuracy"]``.
        """
        for key in ("loss_weights", "weighted_metrics", "run_eagerly", "jit_compile",
                    "steps_per_execution", "auto_scale_loss"):
            kwargs.pop(key, None)
        if kwargs:
            raise TypeError(f"compile() got unexpected keyword argument(s) {sorted(kwargs)}")
        if loss is None:
            raise ValueError("compile() needs a loss, e.g. loss='mse'")
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = losses_module.get(loss)
        if metrics is None:
            metrics = []
        if not isinstance(metrics, (list, tuple)):
            raise TypeError(f"metrics must be a list, received {type(metrics).__name__}")
        self.compiled_metrics = [metrics_module.get(m, loss=self.loss) for m in metrics]
        self._compile_config = {
            "optimizer": optimizers_module.serialize(self.optimizer),
            "loss": _serialize_object(self.loss),
            "metrics": [m if isinstance(m, str) else getattr(m, "name", None)
                        for m in metrics],
        }

    def _require_compiled(self, what):
        if self.optimizer is None or self.loss is None:
            raise RuntimeError(
                f"the model must be compiled before {what}; call "
                f"model.compile(optimizer=..., loss=...)"
            )

    @property
    def metrics_names(self):
        return ["loss"] + [m.name for m in self.compiled_metrics]

    # ------------------------------------------------------------------ steps

    def _reset_trackers(self):
        self._loss_total = 0.0
        self._loss_count = 0
        for metric in self.compiled_metrics:
            metric.reset_state()

    def _logs(self):
        logs = {"loss": self._loss_total / max(self._loss_count, 1)}
        for metric in self.compiled_metrics:
            logs[metric.name] = float(metric.result())
        return logs

    def _track(self, loss, y, y_pred):
        n = y_pred.shape[0]
        self._loss_total += float(loss) * n
        self._loss_count += n
        for metric in self.compiled_metrics:
            metric.update_state(y, y_pred)

    def _train_step(self, x, y):
        y_pred, caches = self._forward(x, training=True)
        loss, d_pred = self.loss.value_and_grad(y, y_pred)
        grads = self._backward(caches, np.asarray(d_pred, dtype=y_pred.dtype))
        params = self.trainable_weights
        grads = [np.asarray(g, dtype=p.dtype) for p, g in zip(params, grads)]
        if params:
            self.optimizer.apply(params, grads)
        self._track(loss, y, y_pred)

    def _test_step(self, x, y):
        y_pred, _ = self._forward(x, training=False)
        self._track(self.loss(y, y_pred), y, y_pred)

    def _flatten_logs(self, logs, return_dict):
        if return_dict:
            return logs
        if not self.compiled_metrics:
            return logs["loss"]
        return [logs[name] for name in self.metrics_names]

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       return_dict=False):
        """One gradient step on one batch.

        Returns:
            The batch loss, ``[loss, *metrics]`` when metrics were compiled, or a dict
            with ``return_dict=True``.
        """
        _no_weights(sample_weight, class_weight)
        self._require_compiled("train_on_batch")
        x = self._check_x(x)
        y = self._check_y(y, x.shape[0])
        self._check_direct_batch(x, "the batch passed to train_on_batch")
        self._reset_trackers()
        self._train_step(x, y)
        return self._flatten_logs(self._logs(), return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """Loss (and metrics) on one batch, without updating weights."""
        _no_weights(sample_weight, None)
        self._require_compiled("test_on_batch")
        x = self._check_x(x)
        y = self._check_y(y, x.shape[0])
        self._check_direct_batch(x, "the batch passed to test_on_batch")
        self._reset_trackers()
        self._test_step(x, y)
        return self._flatten_logs(self._logs(), return_dict)

    def predict_on_batch(self, x):
        """The outputs for one batch (stateful models: exactly the declared batch size)."""
        x = self._check_x(x)
        self._check_direct_batch(x, "the batch passed to predict_on_batch")
        return self._forward(x, training=False)[0]

    # ------------------------------------------------------------------ loops

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=None, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, **kwargs):
        """Train the model for ``epochs`` passes over ``(x, y)``.

        Args:
            x: inputs, e.g. (samples, timesteps, features).
            y: targets.
            batch_size: samples per gradient step; default 32, or the declared batch size
                of a stateful model (any other value is an error there).
            epochs: index of the last epoch (training runs from ``initial_epoch``).
            verbose: 0 silent, 1 (or "auto") progress bar, 2 one line per epoch.
            callbacks: list of ``crnn.callbacks.Callback``.
            validation_split: fraction of the data, taken from the end before any
                shuffling, to evaluate on after each epoch.
            validation_data: ``(x_val, y_val)`` to evaluate on after each epoch.
            shuffle: shuffle the samples each epoch. Default: True for stateless models,
                False for stateful ones, whose samples continue each other from batch to
                batch; ``shuffle=True`` on a stateful model is allowed but warns.
            initial_epoch: epoch to start from (to resume training).

        Returns:
            A ``History`` whose ``history`` dict maps ``"loss"``, metrics and ``"val_*"``
            to per-epoch lists.
        """
        if kwargs:
            raise TypeError(f"fit() got unexpected keyword argument(s) {sorted(kwargs)}")
        if steps_per_epoch is not None:
            raise NotImplementedError("steps_per_epoch is not supported; pass all of x")
        _no_weights(sample_weight, class_weight)
        self._require_compiled("fit")
        verbose = _check_verbose(verbose)
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative int, received {epochs!r}")
        if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, (int, np.integer)) \
                or initial_epoch < 0:
            raise ValueError(f"initial_epoch must be a non-negative int, received "
                             f"{initial_epoch!r}")
        x = self._check_x(x)
        y = self._check_y(y, x.shape[0])
        if not isinstance(validation_split, (int, float)) or not 0 <= validation_split < 1:
            raise ValueError(
                f"validation_split must be a float in [0, 1), received {validation_split!r}"
            )
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError(
                    "validation_data must be a tuple (x_val, y_val), received "
                    f"{type(validation_data).__name__}"
                    + (f" of length {len(validation_data)}"
                       if isinstance(validation_data, (tuple, list)) else "")
                )
            vx = self._check_x(validation_data[0], "validation_data x")
            val = (vx, self._check_y(validation_data[1], vx.shape[0], "validation_data y"))
        elif validation_split:
            split_at = int(math.floor(x.shape[0] * (1.0 - validation_split)))
            if split_at == 0 or split_at == x.shape[0]:
                raise ValueError(
                    f"validation_split={validation_split} leaves "
                    f"{'no training' if split_at == 0 else 'no validation'} samples out of "
                    f"{x.shape[0]}; use a split that keeps both non-empty"
                )
            val = (x[split_at:], y[split_at:])
            x, y = x[:split_at], y[:split_at]
        n = x.shape[0]
        batch_size = self._batch_size_for("fit", n, batch_size)
        stateful = self._stateful_batch_size() is not None
        if val is not None and stateful and val[0].shape[0] % batch_size:
            what = "validation_data" if validation_data is not None else \
                f"the validation split ({validation_split})"
            raise _stateful_count_error(what, val[0].shape[0], batch_size, self._declared_by())
        if stateful and n % batch_size:
            raise _stateful_count_error("x passed to fit (after the validation split)", n,
                                        batch_size, self._declared_by())
        if shuffle is None:
            shuffle = not stateful
        elif shuffle and stateful:
            warnings.warn(
                "shuffle=True on a stateful model: each batch's states continue the previous "
                "batch's samples slot by slot, and shuffling breaks that sample-to-sample "
                "continuation. Pass shuffle=False (the default for stateful models) unless the "
                "samples are independent.",
                UserWarning, stacklevel=2,
            )

        steps = math.ceil(n / batch_size)
        history = callbacks_module.History()
        cb_list = list(callbacks or [])
        cb = callbacks_module.CallbackList(
            cb_list + [history], add_history=False, add_progbar=verbose != 0, model=self,
            verbose=verbose, epochs=epochs, steps=steps)
        self.stop_training = False
        self.history = history
        cb.on_train_begin()
        logs = {}
        rng = utils.get_rng()
        for epoch in range(initial_epoch, epochs):
            self._reset_trackers()
            cb.on_epoch_begin(epoch)
            order = rng.permutation(n) if shuffle else None
            for step in range(steps):
                sl = slice(step * batch_size, min(n, (step + 1) * batch_size))
                idx = order[sl] if order is not None else sl
                cb.on_train_batch_begin(step)
                self._train_step(x[idx], y[idx])
                logs = self._logs()
                cb.on_train_batch_end(step, dict(logs))
                if self.stop_training:
                    break
            epoch_logs = dict(logs)
            if val is not None:
                val_logs = self._run_evaluate(val[0], val[1], batch_size)
                epoch_logs.update({"val_" + k: v for k, v in val_logs.items()})
            cb.on_epoch_end(epoch, epoch_logs)
            logs = epoch_logs
            if self.stop_training:
                break
        cb.on_train_end(dict(logs))
        return history

    def _run_evaluate(self, x, y, batch_size, cb=None):
        self._reset_trackers()
        n = x.shape[0]
        steps = math.ceil(n / batch_size)
        for step in range(steps):
            sl = slice(step * batch_size, min(n, (step + 1) * batch_size))
            if cb is not None:
                cb.on_test_batch_begin(step)
            self._test_step(x[sl], y[sl])
            logs = self._logs()
            if cb is not None:
                cb.on_test_batch_end(step, dict(logs))
        return self._logs()

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False, **kwargs):
        """Loss and metrics on ``(x, y)``, batch by batch (no weight updates).

        Returns:
            The loss, ``[loss, *metrics]`` when metrics were compiled, or a dict with
            ``return_dict=True``.
        """
        if kwargs:
            raise TypeError(f"evaluate() got unexpected keyword argument(s) {sorted(kwargs)}")
        _no_weights(sample_weight, None)
        self._require_compiled("evaluate")
        verbose = _check_verbose(verbose)
        x = self._check_x(x)
        y = self._check_y(y, x.shape[0])
        batch_size = self._batch_size_for("evaluate", x.shape[0], batch_size)
        n_steps = _limit_steps(steps, math.ceil(x.shape[0] / batch_size))
        x, y = x[:n_steps * batch_size], y[:n_steps * batch_size]
        cb = callbacks_module.CallbackList(list(callbacks or []), add_progbar=verbose != 0,
                                           model=self, verbose=verbose, epochs=1, steps=n_steps)
        cb.on_test_begin()
        logs = self._run_evaluate(x, y, batch_size, cb)
        cb.on_test_end(dict(logs))
        return self._flatten_logs(logs, return_dict)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for ``x``, computed batch by batch.

        A stateful model's states advance through the batches and stay advanced, as in
        Keras: two ``predict`` calls in a row differ until ``reset_states()``.

        Args:
            x: inputs.
            batch_size: samples per batch (default 32, or a stateful model's batch size);
                the last batch may be smaller.
            verbose: 0 silent, 1 (or "auto") progress bar, 2 one line.
            steps: run only the first ``steps`` batches (None: all), as Keras does.
            callbacks: list of ``crnn.callbacks.Callback``.
        """
        verbose = _check_verbose(verbose)
        x = self._check_x(x)
        batch_size = self._batch_size_for("predict", x.shape[0], batch_size)
        n_steps = _limit_steps(steps, math.ceil(x.shape[0] / batch_size))
        x = x[:n_steps * batch_size]
        n = x.shape[0]
        cb = callbacks_module.CallbackList(list(callbacks or []), add_progbar=verbose != 0,
                                           model=self, verbose=verbose, epochs=1, steps=n_steps)
        cb.on_predict_begin()
        outputs = []
        for step in range(n_steps):
            cb.on_predict_batch_begin(step)
            sl = slice(step * batch_size, min(n, (step + 1) * batch_size))
            outputs.append(self._forward(x[sl], training=False)[0])
            cb.on_predict_batch_end(step, {"outputs": outputs[-1]})
        cb.on_predict_end()
        return np.concatenate(outputs, axis=0)

    # ------------------------------------------------------------------ config

    def get_config(self):
        """``{"name", "trainable", "layers": [...], "build_input_shape"}``, JSON-friendly."""
        layers = []
        if self._input_layer is not None:
            layers.append(serialize(self._input_layer))
        for k, layer in enumerate(self._layers):
            entry = serialize(layer)
            if self._input_layer is not None:
                entry["config"].pop("batch_input_shape", None)
            layers.append(entry)
        shape = self._input_batch_shape()
        return {"name": self.name, "trainable": self.trainable, "layers": layers,
                "build_input_shape": None if shape is None else list(shape)}

    @classmethod
    def from_config(cls, config):
        """Rebuild a model (new weights) from ``get_config``'s output."""
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

    def summary(self, line_length=None, positions=None, print_fn=None, **kwargs):
        """Print a table of the layers, their output shapes and parameter counts."""
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

    def save(self, filepath, overwrite=True, include_optimizer=True):
        """Save config, weights, optimizer state and stateful layers' states to one file.

        See ``crnn.saving.save_model``.
        """
        from crnn import saving
        saving.save_model(self, filepath, overwrite=overwrite,
                          include_optimizer=include_optimizer)

    def save_weights(self, filepath, overwrite=True):
        """Save only the weights (``load_weights`` restores them into a same-shaped model)."""
        from crnn import saving
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath):
        """Load weights saved by ``save_weights`` (or ``save``) into this model."""
        from crnn import saving
        saving.load_weights(self, filepath)

    def __repr__(self):
        return f"<Sequential name={self.name!r} layers={[l.name for l in self._layers]}>"


def _serialize_object(obj):
    config = obj.get_config() if hasattr(obj, "get_config") else None
    return {"class_name": type(obj).__name__, "config": config}


def _format_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024


def _limit_steps(steps, available):
    """Keras's ``steps`` on arrays: run at most that many batches (None: all of them)."""
    if steps is None:
        return available
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps <= 0:
        raise ValueError(f"steps must be a positive int or None, received {steps!r}")
    return min(int(steps), available)


def _check_verbose(verbose):
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', received {verbose!r}")
    return int(verbose)


def _no_weights(sample_weight, class_weight):
    if sample_weight is not None:
        raise NotImplementedError("sample_weight is not supported by crnn yet; pass None")
    if class_weight is not None:
        raise NotImplementedError("class_weight is not supported by crnn yet; pass None")
