"""``Trainer``: the training and inference loops that ``Sequential`` inherits.

Keras 3 keeps a model's structure apart from its loops (``keras.Model`` inherits
``keras.src.trainers.Trainer``); crnn does the same. ``crnn.models.Sequential`` holds the
layers, weights, config and summary; this module holds everything that runs them on data:
``compile``, ``fit``, ``evaluate``, ``predict``, the ``*_on_batch`` methods, batching, the
data checks, callbacks and progress. A new training feature (sample weights, generators,
distributed steps) lands here, in one place.

Training runs forward through the layers (keeping each layer's cache), takes the loss and
its gradient from ``crnn.losses``, runs the layers' ``backward`` in reverse, and hands the
gradients to a ``crnn.optimizers`` optimizer, which updates the weight arrays in place.

Every public call (``fit``, ``evaluate``, ``predict``, the ``*_on_batch`` methods) runs
within crnn's thread budget (``within_budget``, see ``crnn.threads``): SciPy's BLAS pool at
the budget, NumPy's at one thread. ``predict_on_batch`` on one timestep of a stateful
batch-1 model skips the layer stack for a compiled streaming step (``_one_step``).

Stateful models (any stateful recurrent layer) follow Keras's rules, checked before any
work so that weights and states are untouched when a check fails: a fixed batch size
(declared with the input shape), sample counts divisible by it, and no shuffling unless
asked for.

What the trainer needs from the model it is mixed into: ``_layers`` (the layer list),
``_input_batch_shape()``, ``_build()`` and ``_build_shape`` (to build on first use),
``_forward(x, training)``, ``_backward(caches, d_outputs)``, ``_activity_loss(caches)``,
``trainable_weights``, ``_stateful_batch_size()``, ``_stateful_layers()`` and
``_declared_by()``.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import types
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from crnn import callbacks as callbacks_module
from crnn import losses as losses_module
from crnn import metrics as metrics_module
from crnn import optimizers as optimizers_module
from crnn import utils
from crnn._validation import check_positive_int, is_int, is_number
from crnn.layers.base import BUILD_LOCK
from crnn.threads import HELD

__all__ = ["Trainer"]

#: The batch size Keras uses when none is given.
DEFAULT_BATCH_SIZE = 32


def within_budget(method):
    """Run ``method`` with the BLAS pools at crnn's thread budget (``crnn.threads``)."""
    @functools.wraps(method)
    def run(*args, **kwargs):
        with HELD:
            return method(*args, **kwargs)
    return run


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


def _batches(n, batch_size, order=None):
    """``(step, index)`` for each batch of ``n`` samples; the last batch may be smaller.

    ``index`` is a slice, or the matching part of ``order`` (a permutation) when given.
    """
    for step in range(math.ceil(n / batch_size)):
        sl = slice(step * batch_size, min(n, (step + 1) * batch_size))
        yield step, (sl if order is None else order[sl])


class Trainer:
    """The training and inference API of a crnn model (Keras's ``Trainer``).

    Not used on its own: ``crnn.Sequential`` inherits it. See the module notes for what it
    needs from the model. The constructor takes no arguments; it starts uncompiled
    (``optimizer`` and ``loss`` are None until ``compile``).

    Example:
        >>> import numpy as np, crnn
        >>> model = crnn.Sequential([crnn.layers.Dense(1, input_shape=(2,),
        ...                                            kernel_initializer="zeros")])
        >>> isinstance(model, crnn.trainer.Trainer)
        True
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> x = np.ones((4, 2), "float32"); y = np.ones((4, 1), "float32")
        >>> model.train_on_batch(x, y)          # the loss before the step: (0 - 1) ** 2
        1.0
        >>> round(model.evaluate(x, y, verbose=0), 4)     # after one SGD step: (0.06 - 1) ** 2
        0.8836
    """

    def __init__(self):
        self.optimizer = None
        self.loss = None
        self.compiled_metrics = []
        self.weighted_metrics = []
        self._metric_names = []
        self._loss_weight = None
        self._compile_config = None
        self.stop_training = False
        self.history = None

    # ------------------------------------------------------------------ data checks

    def _to_array(self, x, name="x"):
        # np.asarray makes no copy of an array: a broadcast view stays a view until its
        # shape has been checked.
        x = np.asarray(x)
        if x.dtype == object:
            raise TypeError(f"{name} must be a numeric array, received an object array")
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be a real numeric array (bool, int or float), "
                            f"received dtype {x.dtype}")
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
            # Built once, under the build lock: concurrent first calls from several threads
            # must not each create weights (and run on weights another thread replaces).
            # The shape is published last, so a thread that sees it sees a built model.
            with BUILD_LOCK:
                declared = self._input_batch_shape()
                if declared is None:
                    declared = (None,) + x.shape[1:]
                    self._build(declared)
                    self._build_shape = declared
        # As in Keras, only the axes that size weights are fixed: the last one (features),
        # or none for Embedding indices. A model declared with 10 timesteps still runs on
        # 7 or 12, because the recurrent, Dense and TimeDistributed layers don't depend on
        # the sequence length.
        fixed = self._layers[0]._fixed_input_axes(x.ndim)
        if len(declared) != x.ndim or any(
                declared[k] is not None and declared[k] != x.shape[k] for k in fixed if k > 0):
            raise ValueError(
                f"{name} has shape {x.shape}, but the model expects inputs of shape "
                f"{declared} (None = any size; the timesteps may vary)"
            )
        return x

    def _check_y(self, y, x, name="y", against_loss=True):
        """Check the targets for inputs ``x`` before any work: dtype, count, and shape.

        With ``against_loss`` (``fit``/``evaluate``, whose batches commit one by one), all
        of ``y`` is also checked by the compiled loss and metrics themselves, on a stand-in
        for the predictions (a broadcast constant of the output shape that ``x`` gives, no
        forward pass), so that a ``y`` they would refuse (a wrong shape, a label out of
        range) fails here, before any state, weight or optimizer slot moves. One-batch
        calls skip it: their step is all or nothing (``_step_or_nothing``).
        """
        y = self._to_array(y, name)
        n = x.shape[0]
        if y.ndim == 0 or y.shape[0] != n:
            raise ValueError(
                f"{name} must have one target per sample: x has {n} samples, {name} has shape "
                f"{y.shape}"
            )
        if not against_loss:
            return y
        shape = tuple(x.shape)
        for layer in self._layers:
            shape = layer.compute_output_shape(shape)
        stand_in = np.broadcast_to(np.asarray(0.5, dtype=self._layers[-1].dtype), shape)
        try:
            with np.errstate(all="ignore"):
                self.loss.value_and_grad(y, stand_in, compute_grad=False)
                for _, metric, _ in self._named_metrics():
                    copy.deepcopy(metric).update_state(y, stand_in)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"{name} of shape {y.shape} and dtype {y.dtype} doesn't fit the model's output "
                f"of shape {shape} (loss {self.loss.name!r}): {error}"
            ) from None
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
                return DEFAULT_BATCH_SIZE
            return check_positive_int("batch_size", batch_size)
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

    def compile(self, optimizer: str | optimizers_module.Optimizer = "rmsprop",
                loss: str | losses_module.Loss | None = None,
                metrics: Sequence[str | metrics_module.Metric] | None = None,
                loss_weights: float | Sequence[float] | dict | None = None,
                weighted_metrics: Sequence[str | metrics_module.Metric] | dict | None = None,
                **kwargs: Any) -> None:
        """Configure training.

        Compiling again replaces the optimizer (and its state), loss and metrics.

        Args:
            optimizer: name (``"sgd"``, ``"rmsprop"``, ``"adam"``, ``"adagrad"``) or a
                ``crnn.optimizers`` instance. Default ``"rmsprop"``, as in Keras.
            loss: name (``"mse"``, ``"mae"``, ``"binary_crossentropy"``, ...) or a
                ``crnn.losses`` instance. Required.
            metrics: list of metric names or instances, e.g. ``["mae"]`` or
                ``["accuracy"]``. Default None (the loss only).
            loss_weights: the model's one output takes one weight, as in Keras 3: a float,
                or a one-element list/tuple/dict (the dict's key is not checked, as Keras's
                single-output rule). The loss is multiplied by it (the regularization
                penalties are not), and the reported loss is the weighted one. Default None
                (no weight).
            weighted_metrics: metrics (list, tuple or dict of them) that see the
                ``sample_weight``/``class_weight`` of ``fit``/``evaluate`` (``metrics`` don't);
                one that repeats a ``metrics`` name is reported as ``weighted_<name>``.
                Default None.
            **kwargs: Keras's ``run_eagerly``, ``jit_compile``, ``steps_per_execution`` and
                ``auto_scale_loss`` are accepted and ignored (they mean nothing here).

        Raises:
            ValueError: if ``loss`` is missing, a name is unknown, or ``loss_weights`` isn't one
                float (or a one-element list/dict of one).
            TypeError: if ``metrics`` or ``weighted_metrics`` is not a list, or for an unknown
                keyword.

        Example:
            >>> import crnn
            >>> model = crnn.Sequential([crnn.layers.Dense(1, input_shape=(3,))])
            >>> model.compile(optimizer="adam", loss="mse", metrics=["mae"])
            >>> model.metrics_names
            ['loss', 'mae']
        """
        # Keras switches with no meaning for crnn's one eager NumPy/Cython engine.
        for key in ("run_eagerly", "jit_compile", "steps_per_execution", "auto_scale_loss"):
            kwargs.pop(key, None)
        if kwargs:
            raise TypeError(f"compile() got unexpected keyword argument(s) {sorted(kwargs)}")
        if loss is None:
            raise ValueError("compile() needs a loss, e.g. loss='mse'")
        loss_weight = _check_loss_weights(loss_weights)
        if metrics is None:
            metrics = []
        if not isinstance(metrics, (list, tuple)):
            raise TypeError(f"metrics must be a list, received {type(metrics).__name__}")
        if isinstance(weighted_metrics, dict):       # one output: all of them apply to it
            weighted_metrics = [weighted_metrics[k] for k in sorted(weighted_metrics)]
        if weighted_metrics is None:
            weighted_metrics = []
        if not isinstance(weighted_metrics, (list, tuple)):
            raise TypeError(
                "weighted_metrics must be a list, tuple or dict, received "
                f"{type(weighted_metrics).__name__}: weighted_metrics={weighted_metrics!r}"
            )
        optimizer = optimizers_module.get(optimizer)
        loss = losses_module.get(loss)
        compiled = [metrics_module.get(m, loss=loss) for m in metrics]
        weighted = [metrics_module.get(m, loss=loss) for m in weighted_metrics]
        self.optimizer, self.loss, self._loss_weight = optimizer, loss, loss_weight
        self.compiled_metrics = compiled
        self.weighted_metrics = weighted
        self._metric_names = _keras_metric_names(compiled, weighted)
        self._compile_config = {
            "optimizer": optimizers_module.serialize(self.optimizer),
            "loss": _serialize_object(self.loss),
            "metrics": [m if isinstance(m, str) else getattr(m, "name", None)
                        for m in metrics],
        }
        if loss_weight is not None:
            self._compile_config["loss_weights"] = loss_weight
        if weighted:
            self._compile_config["weighted_metrics"] = [
                m if isinstance(m, str) else getattr(m, "name", None) for m in weighted_metrics]

    def _require_compiled(self, what):
        if self.optimizer is None or self.loss is None:
            raise RuntimeError(
                f"the model must be compiled before {what}; call "
                f"model.compile(optimizer=..., loss=...)"
            )

    @property
    def metrics_names(self) -> list[str]:
        """``["loss", *metric names]``: the order of ``evaluate``'s list result."""
        return ["loss"] + list(getattr(self, "_metric_names", [m.name for m in self.compiled_metrics]))

    def _named_metrics(self):
        """``(reported name, metric, weighted)`` for every compiled metric, in Keras's order."""
        names = getattr(self, "_metric_names", [m.name for m in self.compiled_metrics])
        weighted = getattr(self, "weighted_metrics", [])
        flags = [False] * len(self.compiled_metrics) + [True] * len(weighted)
        return list(zip(names, self.compiled_metrics + weighted, flags))

    # ------------------------------------------------------------------ steps

    def _reset_trackers(self):
        self._loss_total = 0.0
        self._loss_count = 0
        for _, metric, _ in self._named_metrics():
            metric.reset_state()

    def _logs(self):
        logs = {"loss": self._loss_total / max(self._loss_count, 1)}
        for name, metric, _ in self._named_metrics():
            logs[name] = float(metric.result())
        return logs

    def _track(self, loss, y, y_pred, mask=None, sample_weight=None):
        n = y_pred.shape[0]
        self._loss_total += float(loss) * n
        self._loss_count += n
        for _, metric, weighted in self._named_metrics():
            # As Keras: compiled metrics see the output's mask only; weighted metrics the
            # sample weights too (times the mask).
            weights = _times_mask(sample_weight if weighted else None, mask)
            if weights is None:
                metric.update_state(y, y_pred)
            else:
                metric.update_state(y, y_pred, sample_weight=weights)

    def _weight_rules(self):
        """``(array, regularizer, constraint)`` of the trainable weights that have one."""
        if not self.trainable:
            return []
        trainable = {id(w) for w in self.trainable_weights}
        return [rule for layer in self._layers for rule in layer._weight_rules()
                if id(rule[0]) in trainable]

    def _penalty(self, rules):
        # Keras adds the regularization losses of the trainable weights to the loss it
        # reports, in training and in evaluation.
        return sum(reg(w) for w, reg, _ in rules if reg is not None)

    def _train_step(self, x, y, sample_weight=None):
        y_pred, caches, mask = self._forward(x, training=True, return_mask=True)
        loss, d_pred = self.loss.value_and_grad(y, y_pred, sample_weight=sample_weight, mask=mask)
        if self._loss_weight is not None:
            loss, d_pred = loss * self._loss_weight, np.asarray(d_pred) * self._loss_weight
        rules = self._weight_rules()
        loss += self._penalty(rules) + self._activity_loss(caches)
        # Metrics before the update: one that refuses y fails before any weight moves.
        self._track(loss, y, y_pred, mask, sample_weight)
        grads = self._backward(caches, np.asarray(d_pred, dtype=y_pred.dtype))
        params = self.trainable_weights
        # Sparse rows (Embedding's IndexedSlices) go to the optimizer as they are.
        grads = [g if isinstance(g, optimizers_module.IndexedSlices) else np.asarray(g, dtype=p.dtype)
                 for p, g in zip(params, grads)]
        if rules:
            index = {id(p): i for i, p in enumerate(params)}
            for w, reg, _ in rules:
                if reg is not None:
                    i = index[id(w)]
                    g = grads[i]
                    # A dense penalty gradient makes an embedding's gradient dense, as in TF.
                    dense = g.to_dense(w.dtype) if isinstance(g, optimizers_module.IndexedSlices) else g
                    grads[i] = dense + reg.gradient(w)
        if params:
            self.optimizer.apply(params, grads)
        for w, _, constraint in rules:
            if constraint is not None:      # after the update, as Keras's optimizers do
                w[...] = constraint(w)

    @contextlib.contextmanager
    def _step_or_nothing(self):
        """Put the stateful layers' states back if the step inside fails.

        A step changes the weights and optimizer slots only in its last action
        (``optimizer.apply``); the RNN states move with the forward pass, so they are kept
        (the layers replace their state arrays, never write into them) and restored on
        any exception.
        """
        saved = [(layer, layer._state_arrays()) for layer in self._stateful_layers()]
        try:
            yield
        except BaseException:
            for layer, states in saved:
                layer._set_state_arrays(states)
            raise

    def _test_step(self, x, y, sample_weight=None):
        y_pred, caches, mask = self._forward(x, training=False, return_mask=True)
        loss, _ = self.loss.value_and_grad(y, y_pred, compute_grad=False, sample_weight=sample_weight,
                                           mask=mask)
        if self._loss_weight is not None:
            loss = loss * self._loss_weight
        loss += self._penalty(self._weight_rules()) + self._activity_loss(caches)
        self._track(loss, y, y_pred, mask, sample_weight)

    def _predict_step(self, x):
        return self._forward(x, training=False)[0]

    def _flatten_logs(self, logs, return_dict):
        if return_dict:
            return logs
        if not self.compiled_metrics:
            return logs["loss"]
        return [logs[name] for name in self.metrics_names]

    # ------------------------------------------------------------------ one batch

    @within_budget
    def train_on_batch(self, x: ArrayLike, y: ArrayLike | None = None,
                       sample_weight: ArrayLike | None = None,
                       class_weight: dict | None = None,
                       return_dict: bool = False) -> float | list[float] | dict[str, float]:
        """One gradient step on one batch.

        The data is checked before the step; if the step fails, the RNN states are put
        back (the weights and optimizer slots change only in its last action, the update).

        Args:
            x: the batch's inputs (a stateful model: exactly its declared batch size).
            y: the batch's targets (required: the default None, Keras's signature, is
                refused).
            sample_weight: optional weights, one per sample, or ``(samples, timesteps)``
                for sequence outputs: the loss positions are multiplied by them (the
                mean still divides by the number of positions, as Keras). Default None.
            class_weight: optional dict ``{class index: weight}``, turned into one
                weight per sample from ``y`` (argmax of one-hot targets), as Keras.
                Default None.
            return_dict: return ``{"loss": ..., metric: ...}``. Default False.

        Returns:
            The batch loss (measured before the step, as Keras reports it), ``[loss,
            *metrics]`` when metrics were compiled, or a dict with ``return_dict=True``.

        Raises:
            RuntimeError: if the model is not compiled.
            TypeError: if ``x`` or ``y`` is not real numeric data.
            ValueError: if ``x`` or ``y`` doesn't fit the model, or both ``sample_weight``
                and ``class_weight`` are given.
        """
        self._require_compiled("train_on_batch")
        x = self._check_x(x)
        y = self._check_y(y, x, against_loss=False)
        sw = _sample_weight_for(y, sample_weight, class_weight, "train_on_batch")
        self._check_direct_batch(x, "the batch passed to train_on_batch")
        self._reset_trackers()
        with self._step_or_nothing():
            self._train_step(x, y, sw)
        return self._flatten_logs(self._logs(), return_dict)

    @within_budget
    def test_on_batch(self, x: ArrayLike, y: ArrayLike | None = None,
                      sample_weight: ArrayLike | None = None,
                      return_dict: bool = False) -> float | list[float] | dict[str, float]:
        """Loss (and metrics) on one batch, without updating weights.

        A stateful model's states advance through the batch (and are put back if it
        fails).

        Args:
            x: the batch's inputs (a stateful model: exactly its declared batch size).
            y: the batch's targets (required: the default None is refused).
            sample_weight: optional weights (see ``train_on_batch``). Default None.
            return_dict: return ``{"loss": ..., metric: ...}``. Default False.

        Returns:
            The batch loss, ``[loss, *metrics]`` when metrics were compiled, or a dict
            with ``return_dict=True``.

        Raises:
            RuntimeError: if the model is not compiled.
            TypeError: if ``x`` or ``y`` is not real numeric data.
            ValueError: if ``x`` or ``y`` doesn't fit the model.
        """
        self._require_compiled("test_on_batch")
        x = self._check_x(x)
        y = self._check_y(y, x, against_loss=False)
        sw = _sample_weight_for(y, sample_weight, None, "test_on_batch")
        self._check_direct_batch(x, "the batch passed to test_on_batch")
        self._reset_trackers()
        with self._step_or_nothing():
            self._test_step(x, y, sw)
        return self._flatten_logs(self._logs(), return_dict)

    def predict_on_batch(self, x: ArrayLike) -> np.ndarray:
        """The outputs for one batch (stateful models: exactly the declared batch size).

        One timestep of a stateful batch-1 model, given as a C-contiguous array of
        shape ``(1, 1, features)`` in the model's dtype, runs as one compiled call
        (``crnn.streaming.Streamer``'s step: the same maths, whose sums may round
        differently in the last bit), in a few microseconds. Anything else, and every
        input that would fail a check, goes through the layers.

        Args:
            x: the batch's inputs.

        Returns:
            The outputs array.

        Raises:
            TypeError: if ``x`` is not real numeric data.
            ValueError: if ``x`` doesn't fit the model.
        """
        if type(x) is np.ndarray and x.ndim == 3:
            batch, timesteps, features = x.shape
            if batch == 1 and timesteps == 1:
                step = self._one_step()
                if step is not None and features == step.n_features \
                        and x.dtype == step.dtype and x.flags.c_contiguous:
                    try:
                        return step.step(x)
                    except RuntimeError:   # another thread's step is running: the slow path
                        pass
        return self._predict_on_batch(x)

    @within_budget
    def _predict_on_batch(self, x):
        x = self._check_x(x)
        self._check_direct_batch(x, "the batch passed to predict_on_batch")
        return self._predict_step(x)

    def _one_step(self):
        """The Streamer that runs one timestep of this model, or None if it can't.

        Made on first use and kept while the model has the same layers and weight array
        objects (``add``/``pop`` or a replaced weight array makes a new one; weights
        written in place, e.g. by ``fit`` or ``set_weights``, are read at each step).
        """
        cached = self.__dict__.get("_one_step_cache")
        layers = self._layers
        if cached is not None and cached[0] == layers:
            for owner, name, array in cached[1]:
                if getattr(owner, name) is not array:
                    break
            else:
                return cached[2]
        if not self.built:
            return None
        streamer = None
        refs = []
        if self._stateful_batch_size() == 1:
            from crnn.streaming import Streamer
            try:
                streamer = Streamer(self)
            except Exception:   # a model the step can't run: the layer stack runs it
                streamer = None
            for layer in layers:
                for owner in (layer, getattr(layer, "layer", None)):
                    for name in ("kernel", "recurrent_kernel", "bias"):
                        if owner is not None and isinstance(getattr(owner, name, None),
                                                            np.ndarray):
                            refs.append((owner, name, getattr(owner, name)))
        self._one_step_cache = (list(layers), refs, streamer)
        return streamer

    # ------------------------------------------------------------------ loops

    @within_budget
    def fit(self, x: ArrayLike | Iterable[tuple] | None = None, y: ArrayLike | None = None,
            batch_size: int | None = None,
            epochs: int = 1, verbose: int | str = "auto",
            callbacks: Sequence[callbacks_module.Callback] | None = None,
            validation_split: float = 0.0, validation_data: tuple | None = None,
            shuffle: bool | None = None, class_weight: dict | None = None,
            sample_weight: ArrayLike | None = None, initial_epoch: int = 0,
            steps_per_epoch: int | None = None, validation_steps: int | None = None,
            validation_batch_size: int | None = None, validation_freq: int | Sequence[int] = 1,
            **kwargs: Any) -> callbacks_module.History:
        """Train the model for ``epochs`` passes over ``(x, y)``.

        Args:
            x: inputs, e.g. (samples, timesteps, features); or a generator, iterator or
                iterable of batches ``(x, y)`` / ``(x, y, sample_weight)`` (then ``y``
                must be None), such as ``crnn.utils.timeseries_dataset_from_array``'s result.
            y: targets (None when ``x`` yields the batches).
            batch_size: samples per gradient step; default 32, or the declared batch size
                of a stateful model (any other value is an error there).
            epochs: index of the last epoch (training runs from ``initial_epoch``).
                Default 1.
            verbose: 0 silent, 1 (or "auto", the default) progress bar, 2 one line per
                epoch.
            callbacks: list of ``crnn.callbacks.Callback``. Default None.
            validation_split: fraction of the data (and of ``sample_weight``), taken from
                the end before any shuffling, to evaluate on after each epoch. Default 0.0
                (none).
            validation_data: ``(x_val, y_val)`` or ``(x_val, y_val, val_sample_weight)``,
                or an iterable of such batches, to evaluate on after each epoch. Default
                None; it wins over ``validation_split``.
            shuffle: shuffle the samples each epoch. Default: True for stateless models,
                False for stateful ones, whose samples continue each other from batch to
                batch; ``shuffle=True`` on a stateful model is allowed but warns.
            class_weight: dict ``{class index: weight}``: each sample's loss is weighted
                by its class's weight (Keras's rule; targets of rank <= 2). Default None.
            sample_weight: one weight per sample, or ``(samples, timesteps)`` for a
                sequence output: multiplies the loss positions (Keras's
                ``sum_over_batch_size``: the mean still divides by the positions). Default
                None.
            initial_epoch: epoch to start from (to resume training; a
                ``BackupAndRestore`` callback sets it from its backup). Default 0.
            steps_per_epoch: batches per epoch when ``x`` is an iterable of batches
                (default: until it runs out); not used with arrays.
            validation_steps: batches per validation when ``validation_data`` is an
                iterable (default: until it runs out).
            validation_batch_size: batch size of validation on arrays (default:
                ``batch_size``).
            validation_freq: validate every ``validation_freq`` epochs (an int), or after
                the listed 1-based epochs (a list). Default 1.
            **kwargs: refused: any keyword not named above raises TypeError.

        Returns:
            A ``History`` whose ``history`` dict maps ``"loss"``, metrics and ``"val_*"``
            to per-epoch lists.

        Raises:
            RuntimeError: if the model is not compiled.
            TypeError: for an unknown keyword argument, or data that is not real numeric.
            ValueError: for data that doesn't fit the model, a bad argument, or a stateful
                model's sample count that is not a multiple of its batch size (all checked
                before the first step on arrays; batches from an iterable are checked one
                by one, before each is used).

        Example:
            >>> import numpy as np, crnn
            >>> model = crnn.Sequential([crnn.layers.SimpleRNN(4, input_shape=(5, 1)),
            ...                          crnn.layers.Dense(1)])
            >>> model.compile(optimizer="sgd", loss="mse")
            >>> x = np.zeros((10, 5, 1), dtype="float32"); y = np.ones((10, 1), "float32")
            >>> history = model.fit(x, y, epochs=3, validation_split=0.2, verbose=0)
            >>> sorted(history.history), len(history.history["loss"])
            (['loss', 'val_loss'], 3)
        """
        # Data-parallel training (crnn.distributed): the optimizer carries the collective
        # calls. Every rank's checks are compared before the first step, so a failure or a
        # mismatch on one rank raises on all of them instead of leaving them waiting.
        sync = getattr(self.optimizer, "distributed", None)
        try:
            plan = self._prepare_fit(
                x, y, batch_size, epochs, verbose, validation_split, validation_data, shuffle,
                class_weight, sample_weight, initial_epoch, steps_per_epoch, validation_steps,
                validation_batch_size, validation_freq, kwargs)
            if sync is not None and (plan.source is not None or plan.val_source is not None):
                raise ValueError("distributed fit needs array data on every rank, not an "
                                 "iterable of batches")
        except Exception as error:
            if sync is not None:
                sync.fit_failed(error)
            raise
        x, y, sample_weight, source = plan.x, plan.y, plan.sample_weight, plan.source
        val, val_source, batch_size, verbose = plan.val, plan.val_source, plan.batch_size, plan.verbose
        steps, shuffle = plan.steps, plan.shuffle
        cb_list = list(callbacks or [])
        if sync is not None:
            cb_list, verbose = sync.start_fit(self, x, y, batch_size, steps, epochs, initial_epoch,
                                              None if val is None else val[:2], cb_list, verbose)
        history = callbacks_module.History()
        cb = callbacks_module.CallbackList(
            cb_list + [history], add_history=False, add_progbar=verbose != 0, model=self,
            verbose=verbose, epochs=epochs, steps=steps)
        self.stop_training = False
        self.history = history
        self._initial_epoch = None
        cb.on_train_begin()
        if self._initial_epoch is not None:  # set by BackupAndRestore from its backup
            initial_epoch = self._initial_epoch
        logs = {}
        rng = utils.get_rng()
        for epoch in range(initial_epoch, epochs):
            self._reset_trackers()
            cb.on_epoch_begin(epoch)
            if source is None:
                order = rng.permutation(x.shape[0]) if shuffle else None
                batches = ((step, x[idx], y[idx], None if sample_weight is None else sample_weight[idx])
                           for step, idx in _batches(x.shape[0], batch_size, order))
            else:
                batches = source.batches()
            ran = 0
            for step, bx, by, bw in batches:
                ran += 1
                if source is not None:
                    bx, by, bw = self._check_batch(bx, by, bw, plan.class_weight, "x")
                cb.on_train_batch_begin(step)
                self._train_step(bx, by, bw)
                logs = self._logs() if sync is None else sync.average_logs(self._logs())
                cb.on_train_batch_end(step, dict(logs))
                if self._stopping(sync):
                    break
            if source is not None and source.ran_out:
                warnings.warn(
                    "Your input ran out of data; interrupting training. Make sure that your "
                    "dataset or generator can generate at least `steps_per_epoch * epochs` "
                    "batches.", UserWarning, stacklevel=2)
                self.stop_training = True
                if not ran:  # nothing left for this epoch: it doesn't count
                    break
            epoch_logs = dict(logs)
            if (val is not None or val_source is not None) and _should_validate(epoch, plan.validation_freq):
                cb.on_test_begin()
                if val is not None:
                    val_logs = self._run_evaluate(val[0], val[1], plan.val_batch_size, cb, val[2])
                    if sync is not None:
                        val_logs = sync.average_logs(val_logs)
                else:
                    val_logs = self._run_evaluate_batches(val_source, cb)
                cb.on_test_end(dict(val_logs))
                epoch_logs.update({"val_" + k: v for k, v in val_logs.items()})
            cb.on_epoch_end(epoch, epoch_logs)
            logs = epoch_logs
            if self._stopping(sync):
                break
        cb.on_train_end(dict(logs))
        return history

    def _prepare_fit(self, x, y, batch_size, epochs, verbose, validation_split, validation_data,
                     shuffle, class_weight, sample_weight, initial_epoch, steps_per_epoch,
                     validation_steps, validation_batch_size, validation_freq, kwargs):
        """``fit``'s checks, all before any work; returns the plan as a namespace."""
        if kwargs:
            raise TypeError(f"fit() got unexpected keyword argument(s) {sorted(kwargs)}")
        self._require_compiled("fit")
        verbose = _check_verbose(verbose)
        if not is_int(epochs, minimum=0):
            raise ValueError(f"epochs must be a non-negative int, received {epochs!r}")
        if not is_int(initial_epoch, minimum=0):
            raise ValueError(f"initial_epoch must be a non-negative int, received "
                             f"{initial_epoch!r}")
        validation_freq = _check_validation_freq(validation_freq)
        if not isinstance(validation_split, (int, float)) or not 0 <= validation_split < 1:
            raise ValueError(
                f"validation_split must be a float in [0, 1), received {validation_split!r}"
            )
        stateful = self._stateful_batch_size() is not None
        source = None
        if _is_batch_iterable(x):
            if y is not None or sample_weight is not None:
                raise ValueError(
                    "when x is a generator or an iterable of batches, y and sample_weight must be "
                    "None: each batch carries them, as (x, y) or (x, y, sample_weight)"
                )
            if validation_split:
                raise ValueError("validation_split needs array data; with batches from an "
                                 "iterable, pass validation_data instead")
            if shuffle:
                raise ValueError("shuffle=True needs array data; an iterable yields its batches in "
                                 "its own order")
            if batch_size is not None:
                raise ValueError("batch_size must be None when x is an iterable of batches (the "
                                 "iterable sets the batch size)")
            source = _BatchSource(x, steps_per_epoch, "x")
            shuffle = False
        else:
            if steps_per_epoch is not None:
                raise ValueError(
                    "steps_per_epoch is for generators and iterables of batches; with arrays "
                    "every epoch runs over all of x (use fewer samples, or epochs)"
                )
            x = self._check_x(x)
            y = self._check_y(y, x)
            sample_weight = _sample_weight_for(y, sample_weight, class_weight)
            class_weight = None
        val = None
        val_source = None
        if validation_data is not None:
            if _is_batch_iterable(validation_data):
                val_source = _BatchSource(validation_data, validation_steps, "validation_data")
            else:
                if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                    raise ValueError(
                        "validation_data must be a tuple (x_val, y_val) or (x_val, y_val, "
                        f"val_sample_weight), received {type(validation_data).__name__}"
                        + (f" of length {len(validation_data)}"
                           if isinstance(validation_data, (tuple, list)) else "")
                    )
                vx = self._check_x(validation_data[0], "validation_data x")
                vy = self._check_y(validation_data[1], vx, "validation_data y")
                vw = validation_data[2] if len(validation_data) == 3 else None
                val = (vx, vy, _sample_weight_for(vy, vw, None))
        elif validation_split:
            split_at = int(math.floor(x.shape[0] * (1.0 - validation_split)))
            if split_at == 0 or split_at == x.shape[0]:
                raise ValueError(
                    f"validation_split={validation_split} leaves "
                    f"{'no training' if split_at == 0 else 'no validation'} samples out of "
                    f"{x.shape[0]}; use a split that keeps both non-empty"
                )
            val = (x[split_at:], y[split_at:],
                   None if sample_weight is None else sample_weight[split_at:])
            x, y = x[:split_at], y[:split_at]
            if sample_weight is not None:
                sample_weight = sample_weight[:split_at]
        if source is not None:
            if class_weight is not None:
                _class_weight_to_sample_weight(np.zeros(1), class_weight)  # checks it up front
            batch_size = self._stateful_batch_size()
            steps = source.known_steps()
        else:
            n = x.shape[0]
            # A stateful model's batch size is fixed; the sample count is checked below.
            batch_size = self._batch_size_for("fit", self._stateful_batch_size() if stateful else n,
                                              batch_size)
            steps = math.ceil(n / batch_size)
        # Batches from an iterable leave no batch size: array validation then runs in
        # Keras's default batches of 32 (as evaluate does).
        val_batch_size = 32 if batch_size is None else batch_size
        if val is not None:
            if stateful:
                if validation_batch_size not in (None, batch_size):
                    raise ValueError(
                        f"validation_batch_size={validation_batch_size!r}, but this stateful model "
                        f"runs batches of exactly {batch_size} ({self._declared_by()}); leave "
                        "validation_batch_size out"
                    )
                if val[0].shape[0] % batch_size:
                    what = "validation_data" if validation_data is not None else \
                        f"the validation split ({validation_split})"
                    raise _stateful_count_error(what, val[0].shape[0], batch_size,
                                                self._declared_by())
            elif validation_batch_size is not None:
                val_batch_size = check_positive_int("validation_batch_size", validation_batch_size)
        if source is None and stateful and x.shape[0] % batch_size:
            raise _stateful_count_error("x passed to fit (after the validation split)", x.shape[0],
                                        batch_size, self._declared_by())
        if shuffle is None:
            shuffle = not stateful
        elif shuffle and stateful:
            warnings.warn(
                "shuffle=True on a stateful model: each batch's states continue the previous "
                "batch's samples slot by slot, and shuffling breaks that sample-to-sample "
                "continuation. Pass shuffle=False (the default for stateful models) unless the "
                "samples are independent.",
                UserWarning, stacklevel=4,
            )

        return types.SimpleNamespace(
            x=x, y=y, sample_weight=sample_weight, class_weight=class_weight, source=source,
            val=val, val_source=val_source, batch_size=batch_size, val_batch_size=val_batch_size,
            shuffle=shuffle, verbose=verbose, steps=steps, validation_freq=validation_freq)

    def _stopping(self, sync):
        """Whether to stop training; with ``sync`` (distributed), true on every rank if a
        callback asked for it on any."""
        if sync is not None:
            self.stop_training = sync.any(self.stop_training)
        return self.stop_training

    def _check_batch(self, x, y, sample_weight, class_weight, what):
        """Checks one batch from an iterable, as the array path checks all data up front."""
        x = self._check_x(x, f"a batch of {what}")
        y = self._check_y(y, x, f"a batch's y from {what}")
        self._check_direct_batch(x, f"a batch from {what}")
        return x, y, _sample_weight_for(y, sample_weight, class_weight)

    def _run_evaluate(self, x, y, batch_size, cb=None, sample_weight=None):
        self._reset_trackers()
        for step, idx in _batches(x.shape[0], batch_size):
            if cb is not None:
                cb.on_test_batch_begin(step)
            self._test_step(x[idx], y[idx], None if sample_weight is None else sample_weight[idx])
            logs = self._logs()
            if cb is not None:
                cb.on_test_batch_end(step, dict(logs))
        return self._logs()

    def _run_evaluate_batches(self, source, cb=None):
        self._reset_trackers()
        for step, bx, by, bw in source.batches():
            bx, by, bw = self._check_batch(bx, by, bw, None, source.what)
            if cb is not None:
                cb.on_test_batch_begin(step)
            self._test_step(bx, by, bw)
            if cb is not None:
                cb.on_test_batch_end(step, self._logs())
        return self._logs()

    @within_budget
    def evaluate(self, x: ArrayLike | Iterable[tuple] | None = None,
                 y: ArrayLike | None = None, batch_size: int | None = None,
                 verbose: int | str = "auto", sample_weight: ArrayLike | None = None,
                 steps: int | None = None,
                 callbacks: Sequence[callbacks_module.Callback] | None = None,
                 return_dict: bool = False,
                 **kwargs: Any) -> float | list[float] | dict[str, float]:
        """Loss and metrics on ``(x, y)``, batch by batch (no weight updates).

        A stateful model's states advance through the batches, as in Keras.

        Args:
            x: inputs, or a generator/iterable of ``(x, y[, sample_weight])`` batches
                (then ``y`` must be None).
            y: targets.
            batch_size: samples per batch (default 32, or a stateful model's batch size).
            verbose: 0 silent, 1 (or "auto", the default) progress bar, 2 one line.
            sample_weight: optional weights, one per sample or ``(samples, timesteps)``
                (see ``fit``). Default None.
            steps: run only the first ``steps`` batches (None, the default: all), as Keras
                does.
            callbacks: list of ``crnn.callbacks.Callback`` (``on_test_*`` hooks fire).
                Default None.
            return_dict: return ``{"loss": ..., metric: ...}``. Default False.
            **kwargs: refused: any keyword raises TypeError.

        Returns:
            The loss, ``[loss, *metrics]`` when metrics were compiled, or a dict with
            ``return_dict=True``.

        Raises:
            RuntimeError: if the model is not compiled.
            TypeError: for an unknown keyword argument, or data that is not real numeric.
            ValueError: for data that doesn't fit the model or a bad argument.

        Example:
            >>> import numpy as np, crnn
            >>> model = crnn.Sequential([crnn.layers.Dense(1, input_shape=(2,),
            ...                                            kernel_initializer="ones")])
            >>> model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
            >>> x = np.ones((6, 2), "float32"); y = np.zeros((6, 1), "float32")
            >>> model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
            {'loss': 4.0, 'mae': 2.0}
        """
        if kwargs:
            raise TypeError(f"evaluate() got unexpected keyword argument(s) {sorted(kwargs)}")
        self._require_compiled("evaluate")
        verbose = _check_verbose(verbose)
        if _is_batch_iterable(x):
            if y is not None or sample_weight is not None:
                raise ValueError("when x is an iterable of batches, y and sample_weight must be None")
            source = _BatchSource(x, steps, "x")
            cb = callbacks_module.CallbackList(list(callbacks or []), add_progbar=verbose != 0,
                                               model=self, verbose=verbose, epochs=1,
                                               steps=source.known_steps())
            cb.on_test_begin()
            logs = self._run_evaluate_batches(source, cb)
            cb.on_test_end(dict(logs))
            return self._flatten_logs(logs, return_dict)
        x = self._check_x(x)
        y = self._check_y(y, x)
        sample_weight = _sample_weight_for(y, sample_weight, None, "evaluate")
        batch_size = self._batch_size_for("evaluate", x.shape[0], batch_size)
        n_steps = _limit_steps(steps, math.ceil(x.shape[0] / batch_size))
        x, y = x[:n_steps * batch_size], y[:n_steps * batch_size]
        if sample_weight is not None:
            sample_weight = sample_weight[:n_steps * batch_size]
        cb = callbacks_module.CallbackList(list(callbacks or []), add_progbar=verbose != 0,
                                           model=self, verbose=verbose, epochs=1, steps=n_steps)
        cb.on_test_begin()
        logs = self._run_evaluate(x, y, batch_size, cb, sample_weight)
        cb.on_test_end(dict(logs))
        return self._flatten_logs(logs, return_dict)

    @within_budget
    def predict(self, x: ArrayLike, batch_size: int | None = None, verbose: int | str = "auto",
                steps: int | None = None,
                callbacks: Sequence[callbacks_module.Callback] | None = None) -> np.ndarray:
        """Outputs for ``x``, computed batch by batch.

        A stateful model's states advance through the batches and stay advanced, as in
        Keras: two ``predict`` calls in a row differ until ``reset_states()``.

        Args:
            x: inputs.
            batch_size: samples per batch (default 32, or a stateful model's batch size);
                the last batch may be smaller.
            verbose: 0 silent, 1 (or "auto", the default) progress bar, 2 one line.
            steps: run only the first ``steps`` batches (None, the default: all), as Keras
                does.
            callbacks: list of ``crnn.callbacks.Callback``. Default None.

        Returns:
            The outputs of all batches, concatenated along the batch axis.

        Raises:
            TypeError: if ``x`` is not real numeric data.
            ValueError: for data that doesn't fit the model or a bad argument.

        Example:
            >>> import numpy as np, crnn
            >>> model = crnn.Sequential([crnn.layers.Dense(1, input_shape=(2,),
            ...                                            kernel_initializer="ones")])
            >>> model.predict(np.arange(6, dtype="float32").reshape(3, 2), verbose=0)
            array([[1.],
                   [5.],
                   [9.]], dtype=float32)
        """
        verbose = _check_verbose(verbose)
        x = self._check_x(x)
        batch_size = self._batch_size_for("predict", x.shape[0], batch_size)
        n_steps = _limit_steps(steps, math.ceil(x.shape[0] / batch_size))
        x = x[:n_steps * batch_size]
        cb = callbacks_module.CallbackList(list(callbacks or []), add_progbar=verbose != 0,
                                           model=self, verbose=verbose, epochs=1, steps=n_steps)
        cb.on_predict_begin()
        outputs = []
        for step, idx in _batches(x.shape[0], batch_size):
            cb.on_predict_batch_begin(step)
            outputs.append(self._predict_step(x[idx]))
            cb.on_predict_batch_end(step, {"outputs": outputs[-1]})
        cb.on_predict_end()
        return np.concatenate(outputs, axis=0)


def _serialize_object(obj):
    config = obj.get_config() if hasattr(obj, "get_config") else None
    return {"class_name": type(obj).__name__, "config": config}


def _limit_steps(steps, available):
    """Keras's ``steps`` on arrays: run at most that many batches (None: all of them)."""
    if steps is None:
        return available
    if not is_int(steps, minimum=1):
        raise ValueError(f"steps must be a positive int or None, received {steps!r}")
    return min(int(steps), available)


def _check_verbose(verbose):
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', received {verbose!r}")
    return int(verbose)


def _class_weight_to_sample_weight(y, class_weight):
    """Keras's class_weight_to_sample_weights: each sample weighs ``class_weight[class]``."""
    if not isinstance(class_weight, dict) or not all(is_int(k, minimum=0) for k in class_weight):
        raise ValueError(
            "class_weight must be a dict mapping class indices (ints >= 0) to weights, received "
            f"{class_weight!r}"
        )
    for k, w in class_weight.items():
        if not is_number(w) or not np.isfinite(w):
            raise ValueError(f"class_weight[{k}] must be a finite number, received {w!r}")
    y = np.asarray(y)
    if y.ndim > 2:
        raise ValueError(
            f"class_weight is not supported for targets of rank > 2 (received y of shape {y.shape}), "
            "as in Keras; pass a per-timestep sample_weight of shape (samples, timesteps) instead"
        )
    if y.ndim == 2:
        y = np.argmax(y, axis=-1) if y.shape[-1] != 1 else y[:, 0]
    classes = np.round(y).astype(np.int64)
    return np.array([float(class_weight.get(int(c), 1.0)) for c in classes])


def _check_loss_weights(loss_weights):
    """The one loss weight of a single-output model, by Keras 3's rules, or None."""
    if loss_weights is None:
        return None
    value = loss_weights
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise ValueError(
                f"`loss_weights` must match the number of losses, got 1 loss and {len(value)} "
                f"weights: loss_weights={loss_weights!r}"
            )
        value = value[0]
    elif not isinstance(value, float) and not (is_number(value) and value == 0):   # Keras lets 0 by
        raise ValueError(
            "Expected `loss_weights` argument to be a float (single output case) or a list, tuple, "
            f"or dict (multiple output case). Received instead: loss_weights={loss_weights!r} of "
            f"type {type(loss_weights).__name__}"
        )
    if not is_number(value) or not np.isfinite(value):
        raise ValueError(f"`loss_weights` must hold a finite number, received loss_weights={loss_weights!r}")
    return float(value)


def _keras_metric_names(metrics, weighted):
    """The names Keras 3 reports: repeats of a name get ``_1``, ``_2``...; a weighted metric
    whose name is taken becomes ``weighted_<name>`` (then numbered)."""
    seen, names = {}, []
    for metric in metrics:
        name = metric.name
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name] - 1}"
        else:
            seen[name] = 1
        names.append(name)
    for metric in weighted:
        name = metric.name
        if name not in seen:
            seen[name] = 1
        else:
            name = f"weighted_{name}"
            if name not in seen:
                seen[name] = 1
            else:
                seen[name] += 1
                name = f"{name}_{seen[name] - 1}"
        names.append(name)
    return names


def _times_mask(sample_weight, mask):
    """``sample_weight`` times the output's mask (either may be None)."""
    if sample_weight is None or mask is None:
        return mask if sample_weight is None else sample_weight
    sw = np.asarray(sample_weight, dtype=np.float64)
    mask = np.asarray(mask, dtype=np.float64)
    return (sw.reshape(sw.shape + (1,) * (mask.ndim - sw.ndim)) if sw.ndim < mask.ndim else sw) * mask


def compile_arguments(config: dict) -> dict:
    """``compile()``'s keyword arguments from a model's saved compile config."""
    args = {"optimizer": config["optimizer"], "loss": config["loss"],
            "metrics": [m for m in config.get("metrics", []) if m]}
    if config.get("loss_weights") is not None:
        args["loss_weights"] = config["loss_weights"]
    if config.get("weighted_metrics"):
        args["weighted_metrics"] = [m for m in config["weighted_metrics"] if m]
    return args


def _sample_weight_for(y, sample_weight, class_weight, what="fit"):
    """One weight per sample (or per sample and timestep) from sample_weight or class_weight."""
    if sample_weight is not None and class_weight is not None:
        raise ValueError(
            f"{what}() received both sample_weight and class_weight; pass one of them (Keras refuses "
            "both too): fold the class weights into sample_weight"
        )
    if class_weight is not None:
        return _class_weight_to_sample_weight(y, class_weight)
    if sample_weight is None:
        return None
    sw = np.asarray(sample_weight)
    if sw.dtype.kind not in "fiub":
        raise ValueError(f"sample_weight must be numeric, received dtype {sw.dtype}")
    sw = sw.astype(np.float64)
    if sw.ndim == 0 or sw.shape[0] != y.shape[0]:
        raise ValueError(
            f"sample_weight must have one entry per sample: y has {y.shape[0]} samples, "
            f"sample_weight has shape {sw.shape}"
        )
    if not np.all(np.isfinite(sw)):
        raise ValueError("sample_weight must be finite (received NaN or infinity)")
    return sw


def _should_validate(epoch, validation_freq):
    """Keras's rule: validate after (1-based) epoch ``e`` if ``e % freq == 0`` or ``e in freq``."""
    if isinstance(validation_freq, int):
        return (epoch + 1) % validation_freq == 0
    return (epoch + 1) in validation_freq


def _check_validation_freq(validation_freq):
    if is_int(validation_freq, minimum=1):
        return int(validation_freq)
    if isinstance(validation_freq, (list, tuple, set, range)) and all(
            is_int(e, minimum=1) for e in validation_freq):
        return set(int(e) for e in validation_freq)
    raise ValueError(
        "validation_freq must be a positive int or a list of (1-based) epochs, received "
        f"{validation_freq!r}"
    )


def _is_batch_iterable(x):
    """Generators, iterators and other iterables of batches (arrays and lists are data)."""
    if x is None or isinstance(x, (np.ndarray, list, tuple, str, bytes, dict)):
        return False
    return hasattr(x, "__next__") or hasattr(x, "__iter__") or (
        hasattr(x, "__getitem__") and hasattr(x, "__len__"))


def _unpack_batch(item, what):
    if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
        raise ValueError(
            f"each batch from {what} must be a tuple (x, y) or (x, y, sample_weight), received "
            f"{type(item).__name__}" + (f" of length {len(item)}" if isinstance(item, (tuple, list)) else "")
        )
    return item[0], item[1], (item[2] if len(item) == 3 else None)


class _BatchSource:
    """Batches ``(x, y[, sample_weight])`` drawn from a generator, an iterator or an iterable.

    A one-shot iterator (a generator) continues from epoch to epoch, as in Keras; a
    re-iterable (``timeseries_dataset_from_array``'s result, a ``Sequence``-like object
    with ``__getitem__`` and ``__len__``) starts over each epoch. ``steps`` caps the
    batches per epoch; without it an epoch ends when the data does.
    """

    def __init__(self, data, steps, what):
        if steps is not None and not is_int(steps, minimum=1):
            raise ValueError(f"steps for {what} must be a positive int or None, received {steps!r}")
        self.data = data
        self.what = what
        self.one_shot = hasattr(data, "__next__")
        self.steps = steps
        self.ran_out = False

    def known_steps(self):
        if self.steps is not None:
            return self.steps
        return len(self.data) if hasattr(self.data, "__len__") and not self.one_shot else None

    def _iterator(self):
        if self.one_shot:
            return self.data
        if hasattr(self.data, "__iter__"):
            return iter(self.data)
        return (self.data[k] for k in range(len(self.data)))

    def batches(self):
        iterator = self._iterator()
        step = 0
        while self.steps is None or step < self.steps:
            try:
                item = next(iterator)
            except StopIteration:
                if self.steps is not None or step == 0:
                    self.ran_out = True
                return
            yield (step,) + _unpack_batch(item, self.what)
            step += 1
