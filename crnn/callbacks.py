"""Training callbacks with Keras 3's hooks and semantics.

``fit`` calls, in order: ``on_train_begin``; per epoch ``on_epoch_begin``,
``on_train_batch_begin``/``on_train_batch_end`` per batch, then validation
(``on_test_begin``, ``on_test_batch_*``, ``on_test_end``) and
``on_epoch_end(epoch, logs)`` with the epoch's logs (``"loss"``, metrics and
their ``"val_"`` versions); finally ``on_train_end``. Epochs and batches are
0-based, as in Keras; messages and file names use 1-based epochs.

A callback reaches the model through ``self.model``; crnn's ``Sequential``
provides ``stop_training``, ``history``, ``get_weights()``, ``set_weights()``,
``save(path)``, ``save_weights(path)``, ``reset_states()`` and ``metrics``.

Example:

>>> stop = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
>>> # model.fit(x, y, validation_split=0.2, epochs=100, callbacks=[stop])
"""

import math
import os
import warnings

import numpy as np

from crnn._validation import is_int
from crnn._validation import is_number as _is_number
from crnn.utils import Progbar

__all__ = [
    "Callback",
    "CallbackList",
    "History",
    "ProgbarLogger",
    "EarlyStopping",
    "ModelCheckpoint",
    "LambdaCallback",
    "TerminateOnNaN",
    "ResetStatesCallback",
    "LearningRateScheduler",
    "ReduceLROnPlateau",
    "CSVLogger",
    "BackupAndRestore",
]


class Callback:
    """Base class of the callbacks: every hook does nothing.

    ``on_train_batch_begin``/``on_train_batch_end`` call ``on_batch_begin``/
    ``on_batch_end``, their backward-compatible aliases, so overriding either
    works.

    Attributes:
        model: The model being trained (set by ``set_model``).
        params: Dict of training parameters (``"epochs"``, ``"steps"``,
            ``"verbose"``), set by ``set_params``.
    """

    def __init__(self):
        self.model = None
        self.params = {}

    def set_params(self, params):
        """Stores the training parameters."""
        self.params = params

    def set_model(self, model):
        """Stores the model."""
        self.model = model

    def on_batch_begin(self, batch, logs=None):
        """Alias of ``on_train_batch_begin``."""

    def on_batch_end(self, batch, logs=None):
        """Alias of ``on_train_batch_end``."""

    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of epoch ``epoch`` (0-based)."""

    def on_epoch_end(self, epoch, logs=None):
        """Called at the end of an epoch with its logs (incl. ``val_`` entries)."""

    def on_train_batch_begin(self, batch, logs=None):
        """Called before training batch ``batch`` (0-based within the epoch)."""
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        """Called after a training batch with the running logs of the epoch."""
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        """Called before a batch of ``evaluate`` or validation."""

    def on_test_batch_end(self, batch, logs=None):
        """Called after a batch of ``evaluate`` or validation."""

    def on_predict_batch_begin(self, batch, logs=None):
        """Called before a batch of ``predict``."""

    def on_predict_batch_end(self, batch, logs=None):
        """Called after a batch of ``predict``."""

    def on_train_begin(self, logs=None):
        """Called at the start of ``fit``."""

    def on_train_end(self, logs=None):
        """Called at the end of ``fit`` (also after an early stop)."""

    def on_test_begin(self, logs=None):
        """Called at the start of ``evaluate`` or of a validation pass."""

    def on_test_end(self, logs=None):
        """Called at the end of ``evaluate`` or of a validation pass."""

    def on_predict_begin(self, logs=None):
        """Called at the start of ``predict``."""

    def on_predict_end(self, logs=None):
        """Called at the end of ``predict``."""


def _python_logs(logs):
    # Callbacks and History should see plain floats, not 0-d NumPy arrays.
    if logs is None:
        return {}
    out = {}
    for key, value in logs.items():
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value.item()
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


_HOOKS_WITH_INDEX = (
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
    "on_batch_begin",
    "on_batch_end",
)
_HOOKS_WITHOUT_INDEX = (
    "on_train_begin",
    "on_train_end",
    "on_test_begin",
    "on_test_end",
    "on_predict_begin",
    "on_predict_end",
)


class CallbackList:
    """Calls every hook on every callback, in order.

    Args:
        callbacks: Optional list of ``Callback`` instances.
        add_history: Whether to append a ``History`` if none is in the list.
        add_progbar: Whether to append a ``ProgbarLogger`` if none is in the list.
        model: Optional model given to every callback.
        **params: Training parameters given to every callback (``epochs``,
            ``steps``, ``verbose``).

    Attributes:
        callbacks: The list of callbacks (including the added ones).
        history: The ``History`` callback if there is one, else ``None``.

    Example:

    >>> cbs = CallbackList([TerminateOnNaN()], add_history=True, epochs=1, steps=4, verbose=0)
    >>> [type(c).__name__ for c in cbs.callbacks]
    ['TerminateOnNaN', 'History']
    """

    def __init__(self, callbacks=None, add_history=False, add_progbar=False, model=None, **params):
        if callbacks is None:
            callbacks = []
        elif isinstance(callbacks, Callback):
            callbacks = [callbacks]
        self.callbacks = list(callbacks)
        for i, cb in enumerate(self.callbacks):
            if not isinstance(cb, Callback):
                raise ValueError(
                    f"`callbacks[{i}]` must be a crnn.callbacks.Callback instance. Received: {cb!r}. "
                    "Wrap a function with LambdaCallback."
                )
        self.history = next((cb for cb in self.callbacks if isinstance(cb, History)), None)
        if self.history is None and add_history:
            self.history = History()
            self.callbacks.append(self.history)
        has_progbar = any(isinstance(cb, ProgbarLogger) for cb in self.callbacks)
        if add_progbar and not has_progbar:
            self.callbacks.append(ProgbarLogger())
        self.model = None
        self.params = {}
        self.set_model(model)
        self.set_params(params)

    def append(self, callback):
        """Adds a callback at the end."""
        self.callbacks.append(callback)

    def set_model(self, model):
        """Gives ``model`` to every callback (``None`` is ignored)."""
        if model is None:
            return
        self.model = model
        if self.history is not None:
            model.history = self.history
        for cb in self.callbacks:
            cb.set_model(model)

    def set_params(self, params):
        """Gives the training parameters to every callback (empty is ignored)."""
        self.params = params
        if params:
            for cb in self.callbacks:
                cb.set_params(params)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self):
        return len(self.callbacks)


def _make_dispatcher(hook, with_index):
    if with_index:

        def dispatch(self, index, logs=None):
            logs = _python_logs(logs)
            for cb in self.callbacks:
                getattr(cb, hook)(index, logs)

    else:

        def dispatch(self, logs=None):
            logs = _python_logs(logs)
            for cb in self.callbacks:
                getattr(cb, hook)(logs)

    dispatch.__name__ = hook
    dispatch.__doc__ = f"Calls ``{hook}`` on every callback."
    return dispatch


for _hook in _HOOKS_WITH_INDEX:
    setattr(CallbackList, _hook, _make_dispatcher(_hook, True))
for _hook in _HOOKS_WITHOUT_INDEX:
    setattr(CallbackList, _hook, _make_dispatcher(_hook, False))
del _hook


class History(Callback):
    """Records each epoch's logs; ``fit`` returns it.

    Attributes:
        history: Dict mapping each log key to the list of its values per epoch.
        epoch: List of the epoch indices seen (0-based).

    Example:

    >>> h = History()
    >>> h.on_train_begin()
    >>> h.on_epoch_end(0, {"loss": 0.5})
    >>> h.history
    {'loss': [0.5]}
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        # A second fit continues the same dict, as in Keras; only `epoch` restarts.
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self


class ProgbarLogger(Callback):
    """Prints Keras's progress output for ``fit``, ``evaluate`` and ``predict``.

    Uses ``params["verbose"]`` (1: a bar per epoch, with "Epoch i/n" headers when
    there is more than one epoch; 2: one line per epoch), ``params["epochs"]``
    and ``params["steps"]`` (steps per epoch, or ``None`` if unknown). Values in
    the logs are shown as given (they are already running means).
    """

    def __init__(self):
        super().__init__()
        self.progbar = None
        self.seen = 0
        self.target = None
        self.verbose = 1
        self.epochs = 1
        self._called_in_fit = False

    def set_params(self, params):
        super().set_params(params)
        verbose = params.get("verbose", 1)
        self.verbose = 1 if verbose == "auto" else verbose
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    def _reset(self):
        self.seen = 0
        self.progbar = None

    def _ensure_progbar(self):
        if self.progbar is None:
            self.progbar = Progbar(
                target=self.target, verbose=self.verbose, unit_name="step", stateless_metrics=()
            )

    def _update(self, batch, logs):
        self._ensure_progbar()
        self.seen = batch + 1
        if self.verbose == 1:
            self.progbar.update(self.seen, list((logs or {}).items()), finalize=False)

    def _finalize(self, logs):
        self._ensure_progbar()
        if self.target is None:
            self.target = self.seen
            self.progbar.target = self.seen
        self.progbar.update(self.target, list((logs or {}).items()), finalize=True)

    def on_train_begin(self, logs=None):
        self._called_in_fit = True

    def on_train_end(self, logs=None):
        self._called_in_fit = False

    def on_epoch_begin(self, epoch, logs=None):
        self._reset()
        self._ensure_progbar()
        if self.verbose and self.epochs > 1:
            print(f"Epoch {epoch + 1}/{self.epochs}", flush=True)

    def on_train_batch_end(self, batch, logs=None):
        self._update(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._finalize(logs)

    def on_test_begin(self, logs=None):
        if not self._called_in_fit:
            self._reset()
            self._ensure_progbar()

    def on_test_batch_end(self, batch, logs=None):
        if not self._called_in_fit:
            self._update(batch, logs)

    def on_test_end(self, logs=None):
        if not self._called_in_fit:
            self._finalize(logs)

    def on_predict_begin(self, logs=None):
        self._reset()
        self._ensure_progbar()

    def on_predict_batch_end(self, batch, logs=None):
        self._update(batch, None)

    def on_predict_end(self, logs=None):
        self._finalize(None)


class _MonitorCallback(Callback):
    """Shared logic of EarlyStopping and ModelCheckpoint: which way is better.

    In ``mode="auto"``, ``"loss"``/``"val_loss"`` is minimized; otherwise the
    model's metric of that name decides (its ``direction``), falling back to the
    name: accuracy-like names (containing "acc") are maximized, error and
    crossentropy names minimized. Anything else needs an explicit mode.
    """

    _MIN_NAMES = ("loss", "mae", "mse", "mean_absolute_error", "mean_squared_error")

    def __init__(self, monitor, mode, min_delta=0.0):
        super().__init__()
        if not isinstance(monitor, str):
            raise ValueError(f"Argument `monitor` must be a string. Received: monitor={monitor!r}.")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"Argument `mode` must be 'auto', 'min' or 'max'. Received: mode={mode!r}.")
        if not _is_number(min_delta):
            raise ValueError(f"Argument `min_delta` must be a number. Received: min_delta={min_delta!r}.")
        self.monitor = monitor
        self.mode = mode
        self.min_delta = abs(float(min_delta))
        self.monitor_op = None  # np.less or np.greater once known

    def _direction_from_model(self, metric_name):
        candidates = list(getattr(self.model, "metrics", None) or [])
        candidates += list(getattr(self.model, "compiled_metrics", None) or [])
        for metric in candidates:
            if getattr(metric, "name", None) == metric_name and getattr(metric, "direction", None) in ("up", "down"):
                return metric.direction
        return None

    def _set_monitor_op(self):
        if self.mode == "min":
            self.monitor_op = np.less
        elif self.mode == "max":
            self.monitor_op = np.greater
        else:
            name = self.monitor[4:] if self.monitor.startswith("val_") else self.monitor
            direction = "down" if name == "loss" else self._direction_from_model(name)
            if direction is None:
                if "acc" in name:
                    direction = "up"
                elif name in self._MIN_NAMES or name.endswith("crossentropy"):
                    direction = "down"
            if direction is None:
                raise ValueError(
                    f"{type(self).__name__} received monitor={self.monitor!r} and mode='auto', but "
                    "cannot tell whether that quantity should be maximized or minimized. Pass "
                    "mode='max' or mode='min'."
                )
            self.monitor_op = np.greater if direction == "up" else np.less

    def _is_improvement(self, value, reference):
        if reference is None:
            return True
        delta = -self.min_delta if self.monitor_op is np.less else self.min_delta
        # Keras's ops.less/ops.greater compare float32 tensors.
        return bool(self.monitor_op(np.float32(value - delta), np.float32(reference)))


class EarlyStopping(_MonitorCallback):
    """Stops training when a monitored quantity has stopped improving.

    Keras 3 semantics: each epoch (from ``start_from_epoch`` on) increments a wait
    counter; an improvement (by more than ``min_delta``) over the best value so
    far resets it, unless ``baseline`` is set and not yet beaten. When the
    counter reaches ``patience`` (and the epoch is not the first), training
    stops after this epoch. With ``restore_best_weights=True`` the weights of
    the best epoch are put back at the end of training (when any epoch was
    monitored), whether or not training stopped early.

    Args:
        monitor: Log key to watch. Defaults to ``"val_loss"``.
        min_delta: Smallest change that counts as an improvement. Defaults to 0.
        patience: Epochs without improvement before stopping. Defaults to 0.
        verbose: 1 prints a message when stopping/restoring. Defaults to 0.
        mode: ``"auto"`` (default), ``"min"`` or ``"max"``; see ``_MonitorCallback``.
        baseline: Optional value the quantity must beat for the wait counter to
            reset.
        restore_best_weights: Whether to restore the best epoch's weights at the
            end. Defaults to False.
        start_from_epoch: Epochs to ignore at the start (warm-up). Defaults to 0.

    Attributes:
        stopped_epoch: 0-based epoch at which training was stopped (0 if not).
        best, best_epoch, wait: Current best value, its epoch, wait counter.

    Example:

    >>> stop = EarlyStopping(monitor="loss", patience=3)
    """

    def __init__(
        self,
        monitor="val_loss",
        min_delta=0,
        patience=0,
        verbose=0,
        mode="auto",
        baseline=None,
        restore_best_weights=False,
        start_from_epoch=0,
    ):
        super().__init__(monitor, mode, min_delta)
        if not is_int(patience, minimum=0):
            raise ValueError(f"Argument `patience` must be an int >= 0. Received: patience={patience!r}.")
        if not is_int(start_from_epoch, minimum=0):
            raise ValueError(
                f"Argument `start_from_epoch` must be an int >= 0. Received: start_from_epoch={start_from_epoch!r}."
            )
        if baseline is not None and not _is_number(baseline):
            raise ValueError(f"Argument `baseline` must be a number or None. Received: baseline={baseline!r}.")
        self.patience = int(patience)
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = int(start_from_epoch)
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self._monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # So that something can be restored even if no epoch ever improves.
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping", flush=True)
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(
                    f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.",
                    flush=True,
                )
            self.model.set_weights(self.best_weights)

    def _monitor_value(self, logs):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                f"Available metrics are: {','.join(logs.keys())}",
                stacklevel=3,
            )
        return value


class ModelCheckpoint(_MonitorCallback):
    """Saves the model (or its weights) after each epoch or every N batches.

    ``filepath`` may contain ``str.format`` fields filled with ``epoch``
    (1-based), ``batch`` (1-based, for ``save_freq=N``) and the log values, e.g.
    ``"ckpt/model-{epoch:02d}-{val_loss:.2f}.crnn"``. Missing directories are
    created.

    Args:
        filepath: Path or format string.
        monitor: Log key for ``save_best_only``. Defaults to ``"val_loss"``.
        verbose: 1 prints a message on each save decision. Defaults to 0.
        save_best_only: Only save when ``monitor`` improves on the best value
            seen (a missing value saves anyway, with a warning, as Keras).
        save_weights_only: Call ``model.save_weights(path)`` instead of
            ``model.save(path)``.
        mode: ``"auto"`` (default), ``"min"`` or ``"max"``.
        save_freq: ``"epoch"`` (default) or a positive int: save every that many
            training batches.
        initial_value_threshold: Optional initial "best" value for
            ``save_best_only``.

    Example:

    >>> ckpt = ModelCheckpoint("best.crnn", monitor="val_loss", save_best_only=True)
    """

    def __init__(
        self,
        filepath,
        monitor="val_loss",
        verbose=0,
        save_best_only=False,
        save_weights_only=False,
        mode="auto",
        save_freq="epoch",
        initial_value_threshold=None,
    ):
        super().__init__(monitor, mode)
        filepath = os.fspath(filepath)
        if not isinstance(filepath, str) or not filepath:
            raise ValueError(f"Argument `filepath` must be a non-empty path. Received: filepath={filepath!r}.")
        if save_freq != "epoch" and not is_int(save_freq, minimum=1):
            raise ValueError(
                f"Unrecognized save_freq: {save_freq!r}. Expected 'epoch' or a positive integer "
                "(a number of training batches)."
            )
        if initial_value_threshold is not None and not _is_number(initial_value_threshold):
            raise ValueError(
                "Argument `initial_value_threshold` must be a number or None. Received: "
                f"initial_value_threshold={initial_value_threshold!r}."
            )
        self.filepath = filepath
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.save_freq = save_freq
        self.best = initial_value_threshold
        self._current_epoch = 0
        self._batches_since_save = 0
        self._last_batch_seen = None

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        # Batch indices restart at 0 each epoch.
        if self._last_batch_seen is None or batch <= self._last_batch_seen:
            self._batches_since_save += batch + 1
        else:
            self._batches_since_save += batch - self._last_batch_seen
        self._last_batch_seen = batch
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._save(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        if self.save_freq == "epoch":
            self._save(epoch, None, logs)

    def _file_path(self, epoch, batch, logs):
        fields = dict(logs or {})
        fields["epoch"] = epoch + 1
        if batch is not None and "batch" not in fields:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(**fields)
        except (KeyError, IndexError, ValueError) as e:
            raise KeyError(
                f'Failed to format this callback filepath: "{self.filepath}". Reason: {e!r}. '
                f"Available fields: {sorted(fields)}."
            ) from None

    def _should_save(self, epoch, logs, filepath):
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}", flush=True)
            return True
        if self.monitor_op is None:
            self._set_monitor_op()
        current = (logs or {}).get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=3)
            return True
        best_text = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print(
                    f"\nEpoch {epoch + 1}: {self.monitor} improved from {best_text} to {current:.5f}, "
                    f"saving model to {filepath}",
                    flush=True,
                )
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best_text}", flush=True)
        return False

    def _save(self, epoch, batch, logs):
        filepath = self._file_path(epoch, batch, logs)
        if not self._should_save(epoch, logs, filepath):
            return
        if os.path.isdir(filepath):
            raise IsADirectoryError(
                f"ModelCheckpoint filepath {filepath!r} is an existing directory; give a file path."
            )
        directory = os.path.dirname(filepath)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath)
        else:
            self.model.save(filepath)


class LambdaCallback(Callback):
    """Builds a callback from functions.

    ``on_epoch_begin``/``on_epoch_end`` are called as ``fn(epoch, logs)``,
    ``on_train_begin``/``on_train_end`` as ``fn(logs)`` and the batch hooks as
    ``fn(batch, logs)``. Other hooks (``on_test_end=...`` etc.) can be given as
    keyword arguments.

    Args:
        on_epoch_begin, on_epoch_end, on_train_begin, on_train_end,
        on_train_batch_begin, on_train_batch_end: Optional functions.
        **kwargs: Functions for any other hook, by hook name.

    Example:

    >>> losses = []
    >>> cb = LambdaCallback(on_epoch_end=lambda epoch, logs: losses.append(logs["loss"]))
    >>> cb.on_epoch_end(0, {"loss": 1.5})
    >>> losses
    [1.5]
    """

    def __init__(
        self,
        on_epoch_begin=None,
        on_epoch_end=None,
        on_train_begin=None,
        on_train_end=None,
        on_train_batch_begin=None,
        on_train_batch_end=None,
        **kwargs,
    ):
        super().__init__()
        hooks = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_begin": on_train_batch_begin,
            "on_train_batch_end": on_train_batch_end,
        }
        for name, fn in kwargs.items():
            if name not in _HOOKS_WITH_INDEX + _HOOKS_WITHOUT_INDEX:
                raise ValueError(
                    f"LambdaCallback got an unknown hook {name!r}. Known hooks: "
                    f"{sorted(_HOOKS_WITH_INDEX + _HOOKS_WITHOUT_INDEX)}."
                )
            hooks[name] = fn
        for name, fn in hooks.items():
            if fn is None:
                continue
            if not callable(fn):
                raise ValueError(f"LambdaCallback argument `{name}` must be callable. Received: {fn!r}.")
            setattr(self, name, fn)


class TerminateOnNaN(Callback):
    """Stops training when a batch's loss is NaN or infinite.

    Args:
        raise_error: If True, raise ``RuntimeError`` at once instead of setting
            ``model.stop_training`` (which lets ``on_train_end`` run).

    Example:

    >>> cb = TerminateOnNaN()
    """

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = bool(raise_error)

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        if not math.isfinite(float(np.asarray(loss))):
            if self.raise_error:
                raise RuntimeError(
                    f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. Terminating training."
                )
            print(f"Batch {batch}: Invalid loss, terminating training", flush=True)
            self.model.stop_training = True


class ResetStatesCallback(Callback):
    """Resets the model's RNN states every N training batches and/or each epoch.

    For stateful models trained on several independent sequences laid out
    batch after batch: with ``every_n_batches=k`` the states are reset after
    each run of ``k`` training batches (counted within the epoch), and with
    ``at_epoch_end=True`` after every epoch. (crnn has no automatic reset.)

    Args:
        every_n_batches: Optional positive int. Defaults to None (never by batch).
        at_epoch_end: Whether to reset at the end of each epoch. Defaults to True.

    Example:

    >>> cb = ResetStatesCallback(every_n_batches=10)
    """

    def __init__(self, every_n_batches=None, at_epoch_end=True):
        super().__init__()
        if every_n_batches is not None and not is_int(every_n_batches, minimum=1):
            raise ValueError(
                "Argument `every_n_batches` must be a positive int or None. Received: "
                f"every_n_batches={every_n_batches!r}."
            )
        self.every_n_batches = None if every_n_batches is None else int(every_n_batches)
        self.at_epoch_end = bool(at_epoch_end)

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if self.every_n_batches is not None and (batch + 1) % self.every_n_batches == 0:
            self.model.reset_states()

    def on_epoch_end(self, epoch, logs=None):
        if self.at_epoch_end:
            self.model.reset_states()


def _optimizer_of(callback):
    optimizer = getattr(callback.model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "learning_rate"):
        raise ValueError(
            f"{type(callback).__name__} needs a compiled model whose optimizer has a `learning_rate`; "
            "call model.compile(optimizer=...) first."
        )
    return optimizer


def _current_lr(optimizer):
    # Keras keeps the learning rate in a float32 variable; logs show that value.
    return float(np.float32(optimizer.learning_rate))


class LearningRateScheduler(Callback):
    """Sets the learning rate at the start of each epoch from ``schedule``.

    Keras 3 semantics: ``schedule(epoch, lr)`` (or ``schedule(epoch)`` if it takes one
    argument) returns the new rate, a float, for 0-based ``epoch``; the rate in use
    is logged as ``"learning_rate"`` at the end of each epoch.

    Args:
        schedule: Function ``(epoch, lr) -> float`` or ``(epoch) -> float``.
        verbose: 0 (silent) or 1 (print each update). Defaults to 0.

    Raises:
        ValueError: If ``schedule`` is not callable, or returns a non-number
            (raised at the epoch, before the rate is changed).

    Example:

    >>> cb = LearningRateScheduler(lambda epoch, lr: lr if epoch < 10 else lr * 0.9)
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise ValueError(f"Argument `schedule` must be callable. Received: schedule={schedule!r}.")
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = _optimizer_of(self)
        try:
            lr = self.schedule(epoch, _current_lr(optimizer))
        except TypeError:  # a one-argument schedule, as Keras tries
            lr = self.schedule(epoch)
        if not _is_number(lr) or not np.isfinite(lr):
            raise ValueError(
                f'The output of the "schedule" function should be a float. Got: {lr!r} at epoch {epoch}.'
            )
        optimizer.learning_rate = float(lr)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(lr)}.", flush=True)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = _current_lr(_optimizer_of(self))


class ReduceLROnPlateau(_MonitorCallback):
    """Multiplies the learning rate by ``factor`` when a monitored quantity stops improving.

    Keras 3 semantics: after ``patience`` epochs without an improvement of more than
    ``min_delta``, the rate becomes ``max(lr * factor, min_lr)`` if it is still above
    ``min_lr``; after a reduction, ``cooldown`` epochs pass before counting again. In
    ``mode="auto"`` the direction is found as for ``EarlyStopping``. The rate in use
    is logged as ``"learning_rate"``.

    Args:
        monitor: Quantity to watch. Defaults to ``"val_loss"``.
        factor: Factor in (0, 1). Defaults to 0.1.
        patience: Epochs without improvement before reducing. Defaults to 10.
        verbose: 0 or 1 (print each reduction). Defaults to 0.
        mode: ``"auto"``, ``"min"`` or ``"max"``. Defaults to ``"auto"``.
        min_delta: Smallest change that counts as an improvement. Defaults to 1e-4.
        cooldown: Epochs to wait after a reduction. Defaults to 0.
        min_lr: Lower bound of the rate. Defaults to 0.0.

    Raises:
        ValueError: If ``factor >= 1`` or another argument is out of range.

    Example:

    >>> cb = ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=3, min_lr=1e-5)
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        super().__init__(monitor, mode, min_delta)
        if not _is_number(factor) or not 0 < factor < 1:
            raise ValueError(
                f"ReduceLROnPlateau does not support a factor >= 1.0 (or <= 0). Received factor={factor!r}."
            )
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"Argument `{name}` must be an int >= 0. Received: {name}={value!r}.")
        if not _is_number(min_lr) or min_lr < 0:
            raise ValueError(f"Argument `min_lr` must be a number >= 0. Received: min_lr={min_lr!r}.")
        self.factor = float(factor)
        self.patience = int(patience)
        self.verbose = verbose
        self.cooldown = int(cooldown)
        self.min_lr = float(min_lr)
        self._reset()

    def _reset(self):
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        self._reset()

    def in_cooldown(self):
        """Whether the callback is waiting after a reduction."""
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = logs if logs is not None else {}
        optimizer = _optimizer_of(self)
        logs["learning_rate"] = _current_lr(optimizer)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"Learning rate reduction is conditioned on metric `{self.monitor}` which is not "
                f"available. Available metrics are: {','.join(logs.keys())}.",
                stacklevel=2,
            )
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = _current_lr(optimizer)
                if old_lr > np.float32(self.min_lr):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    optimizer.learning_rate = new_lr
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.",
                              flush=True)
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class CSVLogger(Callback):
    """Streams each epoch's logs to a CSV file (Keras 3's format).

    The first row is ``epoch`` followed by the first epoch's log keys in sorted order
    (plus ``val_`` columns if that epoch had none, as Keras adds them; missing values
    are written as ``NA``); each epoch adds a row with the 0-based epoch and the
    values. With ``append=True`` an existing file is extended (without a second header).

    Args:
        filename: Path of the CSV file.
        separator: Field separator. Defaults to ``","``.
        append: Append to an existing file instead of overwriting it. Defaults to False.

    Example:

    >>> cb = CSVLogger("training.log")   # then model.fit(..., callbacks=[cb])
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        filename = os.fspath(filename)
        if not isinstance(filename, str) or not filename:
            raise ValueError(f"Argument `filename` must be a non-empty path. Received: filename={filename!r}.")
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"Argument `separator` must be one character. Received: separator={separator!r}.")
        self.filename = filename
        self.sep = separator
        self.append = bool(append)
        self.keys = None
        self._file = None
        self._writer = None
        self._append_header = True

    def on_train_begin(self, logs=None):
        if self.append:
            if os.path.exists(self.filename):
                self._append_header = os.path.getsize(self.filename) == 0
            mode = "a"
        else:
            mode = "w"
            self._append_header = True
        self.keys = None
        self._writer = None
        self._file = open(self.filename, mode, newline="")  # noqa: SIM115 (closed in on_train_end)

    @staticmethod
    def _format(value):
        if isinstance(value, str):
            return value
        array = np.asarray(value)
        if array.ndim > 0:
            return f'"[{", ".join(str(v) for v in array.ravel().tolist())}]"'
        return value.item() if isinstance(value, np.generic) else value

    def on_epoch_end(self, epoch, logs=None):
        import csv

        logs = dict(logs or {})
        if self._file is None:
            self.on_train_begin()
        if self.keys is None:
            self.keys = sorted(logs.keys())
            # As Keras: without validation keys in the first epoch (validation_freq > 1, or
            # no validation), "val_" columns are added anyway and hold "NA" when missing.
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys.extend([f"val_{k}" for k in self.keys])
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch", *self.keys],
                                          delimiter=self.sep)
            if self._append_header:
                self._writer.writeheader()
        row = {"epoch": epoch}
        row.update((k, self._format(logs.get(k, "NA"))) for k in self.keys)
        self._writer.writerow(row)
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
        self._file = None
        self._writer = None


class BackupAndRestore(Callback):
    """Backs up the training at each epoch end and resumes from it after a crash.

    At the end of every epoch the model's weights, its optimizer state, the states of
    its stateful RNN layers and the epoch number are written to ``backup_dir``
    (atomically: a crash while writing leaves the previous backup intact). When
    ``fit`` starts and a backup exists, all of them are restored and ``fit`` resumes
    at the epoch after the backed-up one, as Keras's ``BackupAndRestore`` does. When
    ``fit`` ends normally the backup is deleted (``delete_checkpoint=True``); a crash
    or interruption leaves it for the next run.

    Args:
        backup_dir: Directory for the backup (created if needed). Use one directory
            per training run.
        save_freq: ``"epoch"`` (the only value crnn supports).
        delete_checkpoint: Delete the backup when training ends normally.
            Defaults to True.

    Raises:
        ValueError: For an empty ``backup_dir`` or an unsupported ``save_freq``.

    Example:

    >>> cb = BackupAndRestore("backup")   # model.fit(..., callbacks=[cb]) resumes after a crash
    """

    _MODEL_FILE = "model.crnn"
    _META_FILE = "training_metadata.json"

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True, double_checkpoint=False):
        super().__init__()
        backup_dir = os.fspath(backup_dir)
        if not isinstance(backup_dir, str) or not backup_dir:
            raise ValueError(f"Empty `backup_dir` argument passed. Received: backup_dir={backup_dir!r}.")
        if save_freq != "epoch":
            raise ValueError(
                f"crnn's BackupAndRestore backs up at epoch ends only: save_freq must be 'epoch'. "
                f"Received: save_freq={save_freq!r}."
            )
        if double_checkpoint:
            raise ValueError("double_checkpoint=True is not supported by crnn (each backup is written atomically).")
        self.backup_dir = backup_dir
        self.save_freq = save_freq
        self.delete_checkpoint = bool(delete_checkpoint)
        self._model_path = os.path.join(backup_dir, self._MODEL_FILE)
        self._meta_path = os.path.join(backup_dir, self._META_FILE)

    def on_train_begin(self, logs=None):
        import json

        from crnn import saving

        if not (os.path.exists(self._model_path) and os.path.exists(self._meta_path)):
            return
        with open(self._meta_path) as f:
            meta = json.load(f)
        restored = saving.load_model(self._model_path)
        model = self.model
        # Check everything before changing anything.
        own, saved = model.get_weights(), restored.get_weights()
        if len(own) != len(saved) or any(a.shape != b.shape for a, b in zip(own, saved)):
            raise ValueError(
                f"The backup in {self.backup_dir!r} does not fit this model (weight shapes differ); "
                "use another backup_dir for a different model."
            )
        model.set_weights(saved)
        if getattr(restored, "optimizer", None) is not None and getattr(model, "optimizer", None) is not None:
            model.optimizer.set_state(restored.optimizer.get_state())
        for layer, saved_layer in zip(model.layers, restored.layers):
            states = saved_layer._state_arrays()
            if states:
                layer._set_state_arrays(states)
        model._initial_epoch = int(meta["epoch"]) + 1

    def on_epoch_end(self, epoch, logs=None):
        import json

        from crnn import saving

        os.makedirs(self.backup_dir, exist_ok=True)
        saving.save_model(self.model, self._model_path)
        tmp = self._meta_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"epoch": int(epoch)}, f)
        os.replace(tmp, self._meta_path)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint:
            for path in (self._model_path, self._meta_path):
                if os.path.exists(path):
                    os.remove(path)
            try:
                os.rmdir(self.backup_dir)
            except OSError:
                pass  # not empty (the user's files) or already gone
