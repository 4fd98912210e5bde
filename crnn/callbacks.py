"""Training callbacks with Keras 3's hooks and semantics.

``fit`` calls, in order: ``on_train_begin``; per epoch ``on_epoch_begin``,
``on_train_batch_begin``/``on_train_batch_end`` per batch, then, in the epochs that
validate, ``on_test_begin``, ``on_test_batch_begin``/``on_test_batch_end`` per
validation batch and ``on_test_end``, and ``on_epoch_end(epoch, logs)`` with the
epoch's logs (``"loss"``, metrics and, after a validation, their ``"val_"``
versions); finally ``on_train_end``. ``evaluate`` calls the ``on_test_*`` hooks and
``predict`` the ``on_predict_*`` hooks. Epochs and batches are 0-based, as in Keras;
messages and file names use 1-based epochs.

A callback reaches the model through ``self.model``; crnn's ``Sequential``
provides ``stop_training``, ``history``, ``optimizer``, ``get_weights()``,
``set_weights()``, ``save(path)``, ``save_weights(path)``, ``reset_states()``,
``compiled_metrics`` and ``metrics_names``.

Example:

>>> import numpy as np
>>> import crnn
>>> model = crnn.Sequential([crnn.layers.Dense(1, input_shape=(3,))])
>>> model.compile(optimizer="sgd", loss="mse")
>>> x, y = np.ones((8, 3), "float32"), np.ones((8, 1), "float32")
>>> stop = crnn.callbacks.EarlyStopping(monitor="val_loss", patience=2)
>>> history = model.fit(x, y, epochs=3, validation_split=0.25, verbose=0, callbacks=[stop])
>>> sorted(history.history)
['loss', 'val_loss']
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from crnn._validation import is_int
from crnn._validation import is_number as _is_number
from crnn.utils import Progbar

if TYPE_CHECKING:  # crnn.trainer imports this module
    from crnn.trainer import Trainer

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

    Subclass it and override the hooks you need. ``fit``, ``evaluate`` and
    ``predict`` call the hooks in the order given in the module docstring. Their
    ``logs`` are dicts of plain Python numbers: after a training or test batch,
    the running means of the loss and metrics over the batches seen so far in
    the epoch (or evaluation); at ``on_epoch_end``, the epoch's values (with
    ``"val_"`` entries after a validation); at ``on_train_end``, the last
    epoch's; at ``on_test_end``, the evaluation's; after a ``predict`` batch,
    ``{"outputs": array}``; the other hooks get an empty dict. A hook may add
    entries to ``logs``: the callbacks after it in the list, and ``fit``'s
    ``History``, see them.

    ``on_train_batch_begin``/``on_train_batch_end`` call ``on_batch_begin``/
    ``on_batch_end``, their backward-compatible aliases, so overriding either
    works.

    Attributes:
        model: The model being trained (set by ``set_model``), or ``None``.
        params: Dict of training parameters (``"epochs"``, ``"steps"``,
            ``"verbose"``), set by ``set_params``.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> class PrintKeys(crnn.callbacks.Callback):
    ...     def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
    ...         print(epoch, sorted(logs))
    >>> model = crnn.Sequential([crnn.layers.Dense(1, input_shape=(3,))])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> x, y = np.ones((8, 3), "float32"), np.ones((8, 1), "float32")
    >>> _ = model.fit(x, y, epochs=2, validation_split=0.25, verbose=0, callbacks=[PrintKeys()])
    0 ['loss', 'val_loss']
    1 ['loss', 'val_loss']
    """

    def __init__(self):
        self.model = None
        self.params = {}

    def set_params(self, params: dict[str, Any]) -> None:
        """Stores the training parameters in ``self.params``.

        Args:
            params: Dict with ``"epochs"``, ``"steps"`` (batches per epoch, or
                ``None`` if unknown) and ``"verbose"``.
        """
        self.params = params

    def set_model(self, model: Trainer) -> None:
        """Stores the model in ``self.model``.

        Args:
            model: The model that ``fit``, ``evaluate`` or ``predict`` runs.
        """
        self.model = model

    def on_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Alias of ``on_train_batch_begin``, which calls it (unless overridden).

        Args:
            batch: Index of the training batch within the epoch (0-based).
            logs: Empty dict.
        """

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Alias of ``on_train_batch_end``, which calls it (unless overridden).

        Args:
            batch: Index of the training batch within the epoch (0-based).
            logs: Running means of the loss and metrics over the epoch so far.
        """

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Called by ``fit`` at the start of an epoch.

        Args:
            epoch: Index of the epoch (0-based).
            logs: Empty dict.
        """

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Called by ``fit`` at the end of an epoch, after its validation.

        Args:
            epoch: Index of the epoch (0-based).
            logs: The epoch's loss and metrics, and their ``"val_"`` versions
                when the epoch validated.
        """

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called by ``fit`` before a training batch; calls ``on_batch_begin``.

        Args:
            batch: Index of the batch within the epoch (0-based).
            logs: Empty dict.
        """
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called by ``fit`` after a training batch; calls ``on_batch_end``.

        Args:
            batch: Index of the batch within the epoch (0-based).
            logs: Running means of the loss and metrics over the epoch so far.
        """
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called before a batch of ``evaluate`` or of ``fit``'s validation.

        Args:
            batch: Index of the batch within the evaluation (0-based).
            logs: Empty dict.
        """

    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called after a batch of ``evaluate`` or of ``fit``'s validation.

        Args:
            batch: Index of the batch within the evaluation (0-based).
            logs: Running means of the loss and metrics over the evaluation so
                far (without the ``"val_"`` prefix).
        """

    def on_predict_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called before a batch of ``predict``.

        Args:
            batch: Index of the batch (0-based).
            logs: Empty dict.
        """

    def on_predict_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Called after a batch of ``predict``.

        Args:
            batch: Index of the batch (0-based).
            logs: ``{"outputs": array}``, the batch's outputs.
        """

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Called at the start of ``fit``.

        Args:
            logs: Empty dict.
        """

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Called at the end of ``fit`` (also after an early stop).

        Args:
            logs: The last epoch's logs (empty if no epoch ran).
        """

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Called at the start of ``evaluate`` or of a validation pass of ``fit``.

        Args:
            logs: Empty dict.
        """

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        """Called at the end of ``evaluate`` or of a validation pass of ``fit``.

        Args:
            logs: The loss and metrics of the evaluation (without the ``"val_"``
                prefix).
        """

    def on_predict_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Called at the start of ``predict``.

        Args:
            logs: Empty dict.
        """

    def on_predict_end(self, logs: dict[str, Any] | None = None) -> None:
        """Called at the end of ``predict``.

        Args:
            logs: Empty dict.
        """


def _check_path(name, value):
    """``os.fspath(value)``, which must be a non-empty ``str``."""
    value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise ValueError(f"Argument `{name}` must be a non-empty path. Received: {name}={value!r}.")
    return value


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

    ``fit``, ``evaluate`` and ``predict`` build one around the callbacks they are
    given. Each hook of the list (``on_epoch_end(index, logs)``, ...) turns 0-d
    NumPy values in ``logs`` into Python numbers, then calls the hook of that
    name on every callback with the same new dict.

    Args:
        callbacks: A ``Callback``, a sequence of them, or ``None`` (no
            callbacks). Defaults to ``None``.
        add_history: Whether to append a ``History`` if none is in the list.
            Defaults to False.
        add_progbar: Whether to append a ``ProgbarLogger`` if none is in the
            list. Defaults to False.
        model: Model given to every callback (and whose ``history`` becomes the
            list's ``History``), or ``None``. Defaults to ``None``.
        **params: Training parameters given to every callback (``epochs``,
            ``steps``, ``verbose``).

    Attributes:
        callbacks: The list of callbacks (including the added ones).
        history: The first ``History`` in the list, else ``None``.

    Raises:
        ValueError: If an entry of ``callbacks`` is not a ``Callback``.

    Example:

    >>> import crnn
    >>> cbs = crnn.callbacks.CallbackList([crnn.callbacks.TerminateOnNaN()], add_history=True,
    ...                                   epochs=1, steps=4, verbose=0)
    >>> [type(c).__name__ for c in cbs.callbacks]
    ['TerminateOnNaN', 'History']
    >>> cbs.on_epoch_end(0, {"loss": 0.5})
    >>> cbs.history.history
    {'loss': [0.5]}
    """

    def __init__(self, callbacks: Callback | Sequence[Callback] | None = None,
                 add_history: bool = False, add_progbar: bool = False,
                 model: Trainer | None = None, **params: Any):
        if callbacks is None:
            callbacks = []
        elif isinstance(callbacks, Callback):
            callbacks = [callbacks]
        self.callbacks = list(callbacks)
        for i, cb in enumerate(self.callbacks):
            if not isinstance(cb, Callback):
                raise ValueError(
                    f"`callbacks[{i}]` must be a crnn.callbacks.Callback instance. "
                    f"Received: {cb!r}. Wrap a function with LambdaCallback."
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

    def append(self, callback: Callback) -> None:
        """Adds a callback at the end.

        The callback does not get the model and parameters already given to the
        list: call ``set_model``/``set_params`` again if it needs them.

        Args:
            callback: The ``Callback`` to add (not checked).
        """
        self.callbacks.append(callback)

    def set_model(self, model: Trainer | None) -> None:
        """Gives ``model`` to every callback; ``None`` is ignored.

        Also sets ``model.history`` to the list's ``History``, if it has one.

        Args:
            model: The model, or ``None`` (nothing happens).
        """
        if model is None:
            return
        self.model = model
        if self.history is not None:
            model.history = self.history
        for cb in self.callbacks:
            cb.set_model(model)

    def set_params(self, params: dict[str, Any]) -> None:
        """Stores the training parameters and gives them to every callback.

        Args:
            params: Dict of parameters (``"epochs"``, ``"steps"``, ``"verbose"``).
                An empty dict is stored but not given to the callbacks.
        """
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

        def dispatch(self, index: int, logs: dict[str, Any] | None = None) -> None:
            logs = _python_logs(logs)
            for cb in self.callbacks:
                getattr(cb, hook)(index, logs)

        what = "epoch" if "epoch" in hook else "batch"
        args = (f"    index: Index of the {what} (0-based), given as the callbacks' "
                f"``{what}``.\n")
    else:

        def dispatch(self, logs: dict[str, Any] | None = None) -> None:
            logs = _python_logs(logs)
            for cb in self.callbacks:
                getattr(cb, hook)(logs)

        args = ""
    dispatch.__name__ = hook
    dispatch.__doc__ = (
        f"Calls ``{hook}`` on every callback (see ``Callback.{hook}``).\n\n"
        f"Args:\n{args}"
        "    logs: Dict of logs, or ``None`` (an empty dict).\n"
    )
    return dispatch


for _hook in _HOOKS_WITH_INDEX:
    setattr(CallbackList, _hook, _make_dispatcher(_hook, True))
for _hook in _HOOKS_WITHOUT_INDEX:
    setattr(CallbackList, _hook, _make_dispatcher(_hook, False))
del _hook


class History(Callback):
    """Records each epoch's logs; ``fit`` returns it.

    ``fit`` always adds one (after the given callbacks) and sets ``model.history``
    to it. A ``History`` passed to two ``fit`` calls in ``callbacks`` goes on
    appending to ``history``, as in Keras; only ``epoch`` starts over.

    Attributes:
        history: Dict mapping each log key to the list of its values per epoch.
        epoch: List of the epoch indices seen (0-based).

    Example:

    >>> import crnn
    >>> h = crnn.callbacks.History()
    >>> h.on_train_begin()
    >>> h.on_epoch_end(0, {"loss": 0.5})
    >>> h.history
    {'loss': [0.5]}
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        # A second fit continues the same dict, as in Keras; only `epoch` restarts.
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self


class ProgbarLogger(Callback):
    """Prints Keras's progress output for ``fit``, ``evaluate`` and ``predict``.

    ``fit``, ``evaluate`` and ``predict`` add one when ``verbose`` is not 0 and
    none is given. It uses ``params["verbose"]`` (1 or ``"auto"``: a bar per
    epoch; 2: one line per epoch; 0: nothing), ``params["epochs"]`` ("Epoch i/n"
    headers are printed when there is more than one epoch) and
    ``params["steps"]`` (steps per epoch, or ``None`` if unknown). Values in the
    logs are shown as given (they are already running means). During ``fit`` the
    validation passes print nothing of their own: their results appear in the
    epoch's line as ``val_`` values.

    Example:

    >>> import crnn
    >>> logger = crnn.callbacks.ProgbarLogger()
    >>> logger.set_params({"verbose": 2, "epochs": 1, "steps": 2})
    >>> logger.verbose, logger.target
    (2, 2)
    """

    def __init__(self):
        super().__init__()
        self.progbar = None
        self.seen = 0
        self.target = None
        self.verbose = 1
        self.epochs = 1
        self._called_in_fit = False

    def set_params(self, params: dict[str, Any]) -> None:
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

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._called_in_fit = True

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._called_in_fit = False

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._reset()
        self._ensure_progbar()
        if self.verbose and self.epochs > 1:
            print(f"Epoch {epoch + 1}/{self.epochs}", flush=True)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._update(batch, logs)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._finalize(logs)

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        if not self._called_in_fit:
            self._reset()
            self._ensure_progbar()

    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if not self._called_in_fit:
            self._update(batch, logs)

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        if not self._called_in_fit:
            self._finalize(logs)

    def on_predict_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._reset()
        self._ensure_progbar()

    def on_predict_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._update(batch, None)

    def on_predict_end(self, logs: dict[str, Any] | None = None) -> None:
        self._finalize(None)


class _MonitorCallback(Callback):
    """Shared logic of EarlyStopping, ModelCheckpoint, ReduceLROnPlateau: which way is better.

    In ``mode="auto"``, ``"loss"``/``"val_loss"`` is minimized; otherwise a compiled
    metric of that name with a ``direction`` attribute (``"up"`` or ``"down"``)
    decides, falling back to the name: names containing "acc" are maximized;
    ``mae``, ``mse``, ``mean_absolute_error``, ``mean_squared_error`` and names
    ending in "crossentropy" are minimized. Anything else needs an explicit mode
    (``_set_monitor_op`` raises ``ValueError``, at the first epoch end).
    """

    _MIN_NAMES = ("loss", "mae", "mse", "mean_absolute_error", "mean_squared_error")

    def __init__(self, monitor: str, mode: str, min_delta: float = 0.0):
        super().__init__()
        if not isinstance(monitor, str):
            raise ValueError(
                f"Argument `monitor` must be a string. Received: monitor={monitor!r}.")
        if mode not in ("auto", "min", "max"):
            raise ValueError(
                f"Argument `mode` must be 'auto', 'min' or 'max'. Received: mode={mode!r}.")
        if not _is_number(min_delta):
            raise ValueError(
                f"Argument `min_delta` must be a number. Received: min_delta={min_delta!r}.")
        self.monitor = monitor
        self.mode = mode
        self.min_delta = abs(float(min_delta))
        self.monitor_op = None  # np.less or np.greater once known

    def _direction_from_model(self, metric_name):
        candidates = list(getattr(self.model, "metrics", None) or [])
        candidates += list(getattr(self.model, "compiled_metrics", None) or [])
        for metric in candidates:
            if getattr(metric, "name", None) == metric_name \
                    and getattr(metric, "direction", None) in ("up", "down"):
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
    monitored), whether or not training stopped early. An epoch whose logs lack
    ``monitor`` is skipped, with a warning.

    In ``mode="auto"``, ``"loss"`` and ``"val_loss"`` are minimized; for another
    quantity, a compiled metric of that name with a ``direction`` attribute
    (``"up"`` or ``"down"``) decides, else the name does: names containing
    ``"acc"`` are maximized; ``mae``, ``mse``, ``mean_absolute_error``,
    ``mean_squared_error`` and names ending in ``crossentropy`` are minimized.

    Args:
        monitor: Log key to watch. Defaults to ``"val_loss"``.
        min_delta: Smallest change that counts as an improvement (its absolute
            value is used). Defaults to 0.
        patience: Epochs without improvement before stopping. Defaults to 0.
        verbose: 1 prints a message when stopping/restoring. Defaults to 0.
        mode: ``"auto"``, ``"min"`` or ``"max"``: whether the quantity should
            decrease or increase, ``"auto"`` telling it from the name as above.
            Defaults to ``"auto"``.
        baseline: Value the quantity must beat for the wait counter to reset,
            or ``None``. Defaults to ``None``.
        restore_best_weights: Whether to restore the best epoch's weights at the
            end. Defaults to False.
        start_from_epoch: Epochs to ignore at the start (warm-up). Defaults to 0.

    Attributes:
        stopped_epoch: 0-based epoch at which training was stopped (0 if not).
        best, best_epoch, wait: Current best value, its epoch, wait counter.

    Raises:
        ValueError: If ``monitor`` is not a string, ``mode`` is not ``"auto"``,
            ``"min"`` or ``"max"``, ``min_delta`` or ``baseline`` is not a number,
            or ``patience`` or ``start_from_epoch`` is not an int >= 0. In
            ``mode="auto"``, at the end of the first epoch, if the direction of
            ``monitor`` cannot be told from its name.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> dense = crnn.layers.Dense(1, input_shape=(2,), kernel_initializer="zeros")
    >>> model = crnn.Sequential([dense])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> x, y = np.ones((4, 2), "float32"), np.ones((4, 1), "float32")
    >>> stop = crnn.callbacks.EarlyStopping(monitor="loss", min_delta=10.0, patience=2)
    >>> history = model.fit(x, y, epochs=10, verbose=0, callbacks=[stop])
    >>> len(history.history["loss"])    # no epoch improves by 10: stops after the third
    3
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ):
        super().__init__(monitor, mode, min_delta)
        if not is_int(patience, minimum=0):
            raise ValueError(
                f"Argument `patience` must be an int >= 0. Received: patience={patience!r}.")
        if not is_int(start_from_epoch, minimum=0):
            raise ValueError(
                "Argument `start_from_epoch` must be an int >= 0. Received: "
                f"start_from_epoch={start_from_epoch!r}."
            )
        if baseline is not None and not _is_number(baseline):
            raise ValueError(
                f"Argument `baseline` must be a number or None. Received: baseline={baseline!r}.")
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

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
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

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping", flush=True)
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(
                    "Restoring model weights from the end of the best epoch: "
                    f"{self.best_epoch + 1}.",
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
            Defaults to False.
        save_weights_only: Call ``model.save_weights(path)`` instead of
            ``model.save(path)``. Defaults to False.
        mode: ``"auto"``, ``"min"`` or ``"max"``, as for ``EarlyStopping``.
            Defaults to ``"auto"``.
        save_freq: ``"epoch"`` or a positive int: save every that many
            training batches. Defaults to ``"epoch"``.
        initial_value_threshold: Initial "best" value for ``save_best_only``,
            or ``None``. Defaults to ``None``.

    Raises:
        TypeError: If ``filepath`` is not a path (``os.fspath`` refuses it).
        ValueError: If ``filepath`` is empty or not a ``str`` path, ``save_freq``
            is neither ``"epoch"`` nor a positive int, ``initial_value_threshold``
            is not a number, ``monitor`` is not a string or ``mode`` is unknown.
            In ``mode="auto"``, at the end of the first epoch (whatever
            ``save_best_only``), if the direction of ``monitor`` cannot be told
            from its name (see ``EarlyStopping``).
        KeyError: When saving, if ``filepath`` has a field the logs lack.
        IsADirectoryError: When saving, if the path is an existing directory.

    Example:

    >>> import os
    >>> import tempfile
    >>> import numpy as np
    >>> import crnn
    >>> model = crnn.Sequential([crnn.layers.Dense(1, input_shape=(2,))])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> x, y = np.ones((4, 2), "float32"), np.ones((4, 1), "float32")
    >>> path = os.path.join(tempfile.mkdtemp(), "model-{epoch}.crnn")
    >>> ckpt = crnn.callbacks.ModelCheckpoint(path, monitor="loss")
    >>> _ = model.fit(x, y, epochs=2, verbose=0, callbacks=[ckpt])
    >>> sorted(os.listdir(os.path.dirname(path)))
    ['model-1.crnn', 'model-2.crnn']
    """

    def __init__(
        self,
        filepath: str | os.PathLike,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq: str | int = "epoch",
        initial_value_threshold: float | None = None,
    ):
        super().__init__(monitor, mode)
        filepath = _check_path("filepath", filepath)
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

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._current_epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
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

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
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
                    f"\nEpoch {epoch + 1}: {self.monitor} improved from {best_text} to "
                    f"{current:.5f}, "
                    f"saving model to {filepath}",
                    flush=True,
                )
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best_text}",
                  flush=True)
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

    Each function given replaces the hook of that name on this callback:
    ``on_epoch_begin``/``on_epoch_end`` are called as ``fn(epoch, logs)``,
    ``on_train_begin``/``on_train_end`` as ``fn(logs)`` and the batch hooks as
    ``fn(batch, logs)`` (``on_batch_begin``/``on_batch_end`` with ``logs`` by
    keyword). Other hooks (``on_test_end=...`` etc.) can be given as keyword
    arguments. Hooks not given do nothing.

    Args:
        on_epoch_begin: Function ``(epoch, logs)``, or ``None``. Defaults to ``None``.
        on_epoch_end: Function ``(epoch, logs)``, or ``None``. Defaults to ``None``.
        on_train_begin: Function ``(logs)``, or ``None``. Defaults to ``None``.
        on_train_end: Function ``(logs)``, or ``None``. Defaults to ``None``.
        on_train_batch_begin: Function ``(batch, logs)``, or ``None``. Defaults
            to ``None``.
        on_train_batch_end: Function ``(batch, logs)``, or ``None``. Defaults
            to ``None``.
        **kwargs: Functions for any other hook of ``Callback``, by hook name.

    Raises:
        ValueError: If a keyword is not a hook name, or a function given is not
            callable.

    Example:

    >>> import crnn
    >>> losses = []
    >>> cb = crnn.callbacks.LambdaCallback(
    ...     on_epoch_end=lambda epoch, logs: losses.append(logs["loss"]))
    >>> cb.on_epoch_end(0, {"loss": 1.5})
    >>> losses
    [1.5]
    """

    def __init__(
        self,
        on_epoch_begin: Callable[[int, dict], Any] | None = None,
        on_epoch_end: Callable[[int, dict], Any] | None = None,
        on_train_begin: Callable[[dict], Any] | None = None,
        on_train_end: Callable[[dict], Any] | None = None,
        on_train_batch_begin: Callable[[int, dict], Any] | None = None,
        on_train_batch_end: Callable[[int, dict], Any] | None = None,
        **kwargs: Callable[..., Any],
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
                raise ValueError(
                    f"LambdaCallback argument `{name}` must be callable. Received: {fn!r}.")
            setattr(self, name, fn)


class TerminateOnNaN(Callback):
    """Stops training when a training batch's loss is NaN or infinite.

    By default it prints a message and sets ``model.stop_training``: the epoch
    ends there (its ``on_epoch_end`` and then ``on_train_end`` still run).

    Args:
        raise_error: If True, raise ``RuntimeError`` at once instead of setting
            ``model.stop_training``. Defaults to False.

    Raises:
        RuntimeError: With ``raise_error=True``, at the first batch whose loss
            is NaN or infinite.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> model = crnn.Sequential([crnn.layers.Dense(1, input_shape=(2,))])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> x, y = np.ones((8, 2), "float32"), np.full((8, 1), np.nan, "float32")
    >>> history = model.fit(x, y, epochs=3, batch_size=4, verbose=0,
    ...                     callbacks=[crnn.callbacks.TerminateOnNaN()])
    Batch 0: Invalid loss, terminating training
    >>> len(history.history["loss"])
    1
    """

    def __init__(self, raise_error: bool = False):
        super().__init__()
        self.raise_error = bool(raise_error)

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        if not math.isfinite(float(np.asarray(loss))):
            if self.raise_error:
                raise RuntimeError(
                    f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. "
                    "Terminating training."
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
        every_n_batches: Positive int, or ``None`` (never by batch). Defaults
            to ``None``.
        at_epoch_end: Whether to reset at the end of each epoch. Defaults to True.

    Raises:
        ValueError: If ``every_n_batches`` is neither ``None`` nor a positive int.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> model = crnn.Sequential([crnn.layers.SimpleRNN(2, stateful=True,
    ...                                                batch_input_shape=(2, 3, 1))])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> x, y = np.ones((4, 3, 1), "float32"), np.zeros((4, 2), "float32")
    >>> reset = crnn.callbacks.ResetStatesCallback(every_n_batches=2, at_epoch_end=False)
    >>> _ = model.fit(x, y, epochs=1, verbose=0, callbacks=[reset])
    >>> model.layers[0].states[0].tolist()    # reset after the second batch
    [[0.0, 0.0], [0.0, 0.0]]
    """

    def __init__(self, every_n_batches: int | None = None, at_epoch_end: bool = True):
        super().__init__()
        if every_n_batches is not None and not is_int(every_n_batches, minimum=1):
            raise ValueError(
                "Argument `every_n_batches` must be a positive int or None. Received: "
                f"every_n_batches={every_n_batches!r}."
            )
        self.every_n_batches = None if every_n_batches is None else int(every_n_batches)
        self.at_epoch_end = bool(at_epoch_end)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        super().on_train_batch_end(batch, logs)
        if self.every_n_batches is not None and (batch + 1) % self.every_n_batches == 0:
            self.model.reset_states()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.at_epoch_end:
            self.model.reset_states()


def _optimizer_of(callback):
    optimizer = getattr(callback.model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "learning_rate"):
        raise ValueError(
            f"{type(callback).__name__} needs a compiled model whose optimizer has a "
            "`learning_rate`; "
            "call model.compile(optimizer=...) first."
        )
    return optimizer


def _current_lr(optimizer):
    # Keras keeps the learning rate in a float32 variable; logs show that value.
    return float(np.float32(optimizer.learning_rate))


class LearningRateScheduler(Callback):
    """Sets the learning rate at the start of each epoch from ``schedule``.

    Keras 3 semantics: ``schedule(epoch, lr)`` (or ``schedule(epoch)`` when the
    two-argument call raises ``TypeError``) returns the new rate, a float, for
    0-based ``epoch``; the rate in use is logged as ``"learning_rate"`` at the end
    of each epoch. The model must be compiled with an optimizer that has a
    ``learning_rate``.

    Args:
        schedule: Function ``(epoch, lr) -> float`` or ``(epoch) -> float``.
        verbose: 0 (silent) or 1 (print each update). Defaults to 0.

    Raises:
        ValueError: If ``schedule`` is not callable. At the start of an epoch,
            before the rate is changed: if ``schedule`` returns something other
            than a finite number, or the model's optimizer has no
            ``learning_rate``.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> model = crnn.Sequential([crnn.layers.Dense(1, input_shape=(2,))])
    >>> model.compile(optimizer=crnn.optimizers.SGD(learning_rate=0.1), loss="mse")
    >>> x, y = np.ones((4, 2), "float32"), np.ones((4, 1), "float32")
    >>> schedule = crnn.callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    >>> history = model.fit(x, y, epochs=3, verbose=0, callbacks=[schedule])
    >>> [round(lr, 4) for lr in history.history["learning_rate"]]
    [0.1, 0.05, 0.0333]
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0):
        super().__init__()
        if not callable(schedule):
            raise ValueError(
                f"Argument `schedule` must be callable. Received: schedule={schedule!r}.")
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        optimizer = _optimizer_of(self)
        try:
            lr = self.schedule(epoch, _current_lr(optimizer))
        except TypeError:  # a one-argument schedule, as Keras tries
            lr = self.schedule(epoch)
        if not _is_number(lr) or not np.isfinite(lr):
            raise ValueError(
                'The output of the "schedule" function should be a float. Got: '
                f"{lr!r} at epoch {epoch}."
            )
        optimizer.learning_rate = float(lr)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                  f"{float(lr)}.", flush=True)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = _current_lr(_optimizer_of(self))


class ReduceLROnPlateau(_MonitorCallback):
    """Multiplies the learning rate by ``factor`` when a monitored quantity stops improving.

    Keras 3 semantics: after ``patience`` epochs without an improvement of more than
    ``min_delta``, the rate becomes ``max(lr * factor, min_lr)`` if it is still above
    ``min_lr``; after a reduction, ``cooldown`` epochs pass before counting again. In
    ``mode="auto"`` the direction is found as for ``EarlyStopping``. The rate in use
    is logged as ``"learning_rate"``; an epoch whose logs lack ``monitor`` is
    skipped, with a warning. The model must be compiled with an optimizer that has
    a ``learning_rate``.

    Args:
        monitor: Quantity to watch. Defaults to ``"val_loss"``.
        factor: Factor in (0, 1). Defaults to 0.1.
        patience: Epochs without improvement before reducing. Defaults to 10.
        verbose: 0 or 1 (print each reduction). Defaults to 0.
        mode: ``"auto"``, ``"min"`` or ``"max"``. Defaults to ``"auto"``.
        min_delta: Smallest change that counts as an improvement (its absolute
            value is used). Defaults to 1e-4.
        cooldown: Epochs to wait after a reduction. Defaults to 0.
        min_lr: Lower bound of the rate. Defaults to 0.0.

    Raises:
        ValueError: If ``factor`` is not in (0, 1), ``patience`` or ``cooldown``
            is not an int >= 0, ``min_lr`` is not a number >= 0, ``min_delta`` is
            not a number, ``monitor`` is not a string or ``mode`` is unknown. At
            the end of an epoch: if the model's optimizer has no
            ``learning_rate``, or (in ``mode="auto"``) if the direction of
            ``monitor`` cannot be told from its name.

    Example:

    >>> import numpy as np
    >>> import crnn
    >>> model = crnn.Sequential([crnn.layers.Dense(1, input_shape=(2,), use_bias=False)])
    >>> model.compile(optimizer=crnn.optimizers.SGD(learning_rate=0.1), loss="mse")
    >>> x, y = np.zeros((4, 2), "float32"), np.ones((4, 1), "float32")  # the loss stays 1
    >>> reduce = crnn.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1)
    >>> history = model.fit(x, y, epochs=4, verbose=0, callbacks=[reduce])
    >>> [round(lr, 4) for lr in history.history["learning_rate"]]
    [0.1, 0.1, 0.05, 0.025]
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0):
        super().__init__(monitor, mode, min_delta)
        if not _is_number(factor) or not 0 < factor < 1:
            raise ValueError(
                "ReduceLROnPlateau does not support a factor >= 1.0 (or <= 0). "
                f"Received factor={factor!r}."
            )
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if not is_int(value, minimum=0):
                raise ValueError(
                    f"Argument `{name}` must be an int >= 0. Received: {name}={value!r}.")
        if not _is_number(min_lr) or min_lr < 0:
            raise ValueError(
                f"Argument `min_lr` must be a number >= 0. Received: min_lr={min_lr!r}.")
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

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._reset()

    def in_cooldown(self) -> bool:
        """Tells whether the callback is waiting after a reduction.

        Returns:
            True while the ``cooldown`` epochs after a reduction are not over.
        """
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
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
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate "
                              f"to {new_lr}.", flush=True)
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class CSVLogger(Callback):
    """Streams each epoch's logs to a CSV file (Keras 3's format).

    The first row is ``epoch`` followed by the first epoch's log keys in sorted order
    (plus ``val_`` columns if that epoch had none, as Keras adds them; missing values
    are written as ``NA``); each epoch adds a row with the 0-based epoch and the
    values. With ``append=True`` an existing file is extended (without a second
    header, unless it is empty). The file is opened by ``on_train_begin`` and closed
    by ``on_train_end``.

    Args:
        filename: Path of the CSV file.
        separator: Field separator, one character. Defaults to ``","``.
        append: Append to an existing file instead of overwriting it. Defaults to False.

    Raises:
        TypeError: If ``filename`` is not a path (``os.fspath`` refuses it).
        ValueError: If ``filename`` is empty or not a ``str`` path, or
            ``separator`` is not one character.

    Example:

    >>> import os
    >>> import tempfile
    >>> import numpy as np
    >>> import crnn
    >>> model = crnn.Sequential([crnn.layers.Dense(1, input_shape=(2,), use_bias=False)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> x, y = np.zeros((4, 2), "float32"), np.ones((4, 1), "float32")  # the loss stays 1
    >>> path = os.path.join(tempfile.mkdtemp(), "training.csv")
    >>> _ = model.fit(x, y, epochs=2, verbose=0, callbacks=[crnn.callbacks.CSVLogger(path)])
    >>> with open(path) as f:
    ...     print(f.read(), end="")
    epoch,loss,val_loss
    0,1.0,NA
    1,1.0,NA
    """

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False):
        super().__init__()
        filename = _check_path("filename", filename)
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(
                "Argument `separator` must be one character. Received: "
                f"separator={separator!r}."
            )
        self.filename = filename
        self.sep = separator
        self.append = bool(append)
        self.keys = None
        self._file = None
        self._writer = None
        self._append_header = True

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
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

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
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

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._file is not None:
            self._file.close()
        self._file = None
        self._writer = None


class BackupAndRestore(Callback):
    """Backs up the training at each epoch end and resumes from it after a crash.

    At the end of every epoch the model's weights, its optimizer state, the states of
    its stateful RNN layers and the epoch number are written to ``backup_dir``, in
    two files (the model, then the epoch number), each replaced atomically: a crash
    while one is written leaves its previous version intact. (A crash between the
    two writes leaves the model one epoch ahead of the recorded epoch number, so
    that epoch runs a second time on resuming.) When ``fit`` starts and a backup
    exists, all of them are restored and ``fit`` resumes at the epoch after the
    backed-up one, as Keras's ``BackupAndRestore`` does. When ``fit`` ends normally
    the backup is deleted (``delete_checkpoint=True``), and ``backup_dir`` too if
    that leaves it empty; a crash or interruption leaves it for the next run.

    Args:
        backup_dir: Directory for the backup (created if needed). Use one directory
            per training run.
        save_freq: ``"epoch"`` (the only value crnn supports). Defaults to
            ``"epoch"``.
        delete_checkpoint: Delete the backup when training ends normally.
            Defaults to True.
        double_checkpoint: Must be False (Keras's option to keep a second copy of
            the backup; crnn writes each file atomically instead). Defaults to
            False.

    Raises:
        TypeError: If ``backup_dir`` is not a path (``os.fspath`` refuses it).
        ValueError: For an empty or non-``str`` ``backup_dir``, a ``save_freq``
            other than ``"epoch"``, or ``double_checkpoint=True``. When ``fit``
            starts, if the backup's weight shapes do not fit the model.

    Example:

    >>> import os
    >>> import tempfile
    >>> import numpy as np
    >>> import crnn
    >>> model = crnn.Sequential([crnn.layers.Dense(1, input_shape=(2,))])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> x, y = np.ones((4, 2), "float32"), np.ones((4, 1), "float32")
    >>> backup = crnn.callbacks.BackupAndRestore(os.path.join(tempfile.mkdtemp(), "backup"))
    >>> def crash(epoch, logs):
    ...     if epoch == 1:
    ...         raise RuntimeError("interrupted")
    >>> model.fit(x, y, epochs=4, verbose=0,
    ...           callbacks=[backup, crnn.callbacks.LambdaCallback(on_epoch_end=crash)])
    Traceback (most recent call last):
    ...
    RuntimeError: interrupted
    >>> history = model.fit(x, y, epochs=4, verbose=0, callbacks=[backup])
    >>> history.epoch    # resumed after the backed-up epoch 1
    [2, 3]
    >>> os.path.exists(backup.backup_dir)    # deleted when the run ended normally
    False
    """

    _MODEL_FILE = "model.crnn"
    _META_FILE = "training_metadata.json"

    def __init__(self, backup_dir: str | os.PathLike, save_freq: str = "epoch",
                 delete_checkpoint: bool = True, double_checkpoint: bool = False):
        super().__init__()
        backup_dir = os.fspath(backup_dir)
        if not isinstance(backup_dir, str) or not backup_dir:
            raise ValueError(
                f"Empty `backup_dir` argument passed. Received: backup_dir={backup_dir!r}.")
        if save_freq != "epoch":
            raise ValueError(
                f"crnn's BackupAndRestore backs up at epoch ends only: save_freq must be 'epoch'. "
                f"Received: save_freq={save_freq!r}."
            )
        if double_checkpoint:
            raise ValueError("double_checkpoint=True is not supported by crnn (each backup is "
                             "written atomically).")
        self.backup_dir = backup_dir
        self.save_freq = save_freq
        self.delete_checkpoint = bool(delete_checkpoint)
        self._model_path = os.path.join(backup_dir, self._MODEL_FILE)
        self._meta_path = os.path.join(backup_dir, self._META_FILE)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
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
                f"The backup in {self.backup_dir!r} does not fit this model (weight shapes "
                "differ); "
                "use another backup_dir for a different model."
            )
        model.set_weights(saved)
        if getattr(restored, "optimizer", None) is not None \
                and getattr(model, "optimizer", None) is not None:
            model.optimizer.set_state(restored.optimizer.get_state())
        for layer, saved_layer in zip(model.layers, restored.layers):
            states = saved_layer._state_arrays()
            if states:
                layer._set_state_arrays(states)
        model._initial_epoch = int(meta["epoch"]) + 1

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        import json

        from crnn import saving

        os.makedirs(self.backup_dir, exist_ok=True)
        saving.save_model(self.model, self._model_path)
        tmp = self._meta_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"epoch": int(epoch)}, f)
        os.replace(tmp, self._meta_path)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.delete_checkpoint:
            for path in (self._model_path, self._meta_path):
                if os.path.exists(path):
                    os.remove(path)
            try:
                os.rmdir(self.backup_dir)
            except OSError:
                pass  # not empty (the user's files) or already gone
