"""Tests for crnn.callbacks, driven by a small fake model and a fake fit loop."""

import doctest
import os
import re

import numpy as np
import pytest

import crnn.callbacks as callbacks
import crnn.metrics as metrics


class FakeModel:
    """Just what callbacks use: weights, save, reset_states, stop_training, metrics."""

    def __init__(self, metrics_list=None):
        self.weights = [np.zeros(2), np.zeros(3)]
        self.stop_training = False
        self.history = None
        self.saved = []
        self.saved_weights = []
        self.resets = []
        self.metrics = metrics_list or []
        self.epoch = None

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [np.array(w) for w in weights]

    def save(self, path):
        self.saved.append(path)
        with open(path, "w") as f:
            f.write("model")

    def save_weights(self, path):
        self.saved_weights.append(path)
        with open(path, "w") as f:
            f.write("weights")

    def reset_states(self):
        self.resets.append(self.epoch)


def fake_fit(model, cbs, epoch_logs, steps=3, batch_logs=None):
    """Runs the hook sequence of fit; epoch e's weights are all equal to e."""
    cb_list = callbacks.CallbackList(cbs, add_history=True, model=model, epochs=len(epoch_logs), steps=steps, verbose=0)
    model.stop_training = False
    cb_list.on_train_begin()
    for epoch, logs in enumerate(epoch_logs):
        model.epoch = epoch
        cb_list.on_epoch_begin(epoch)
        for batch in range(steps):
            cb_list.on_train_batch_begin(batch)
            model.weights = [np.full(2, float(epoch)), np.full(3, float(epoch))]
            cb_list.on_train_batch_end(batch, (batch_logs or {}).get((epoch, batch), {"loss": 1.0}))
        cb_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    cb_list.on_train_end()
    return cb_list.history


def val_losses(values):
    return [{"loss": 1.0, "val_loss": v} for v in values]


# ------------------------------------------------------------ base and container
class Recorder(callbacks.Callback):
    def __init__(self, log, tag):
        super().__init__()
        self.log, self.tag = log, tag

    def __getattribute__(self, name):
        attr = object.__getattribute__(self, name)
        if name.startswith("on_") and callable(attr):

            def record(*args, **kwargs):
                self.log.append((self.tag, name, args, kwargs))
                return attr(*args, **kwargs)

            return record
        return attr


def test_callback_list_dispatches_every_hook_to_every_callback_in_order():
    log = []
    cbs = callbacks.CallbackList([Recorder(log, "a"), Recorder(log, "b")])
    hooks_with_index = [
        "on_epoch_begin",
        "on_epoch_end",
        "on_train_batch_begin",
        "on_train_batch_end",
        "on_test_batch_begin",
        "on_test_batch_end",
        "on_predict_batch_begin",
        "on_predict_batch_end",
    ]
    hooks = ["on_train_begin", "on_train_end", "on_test_begin", "on_test_end", "on_predict_begin", "on_predict_end"]
    for hook in hooks_with_index:
        getattr(cbs, hook)(7, {"loss": np.float32(0.5)})
    for hook in hooks:
        getattr(cbs, hook)({"loss": np.array(0.25)})
    calls = [(tag, name) for tag, name, _, _ in log if not name.startswith("on_batch")]
    expected = [(t, h) for h in hooks_with_index + hooks for t in "ab"]
    assert calls == expected
    # numpy scalars arrive as Python floats
    for _, _name, args, kwargs in log:
        logs = kwargs.get("logs", args[-1] if args else None)
        if logs:
            assert type(logs["loss"]) is float


def test_train_batch_hooks_call_the_batch_aliases():
    seen = []

    class Old(callbacks.Callback):
        def on_batch_begin(self, batch, logs=None):
            seen.append(("begin", batch))

        def on_batch_end(self, batch, logs=None):
            seen.append(("end", batch))

    cbs = callbacks.CallbackList([Old()])
    cbs.on_train_batch_begin(0)
    cbs.on_train_batch_end(0, {})
    assert seen == [("begin", 0), ("end", 0)]


def test_callback_list_adds_defaults_once_and_sets_model_and_params():
    model = FakeModel()
    history = callbacks.History()
    cbs = callbacks.CallbackList([history], add_history=True, add_progbar=True, model=model, epochs=2,
                                 steps=5, verbose=1)
    assert cbs.history is history
    assert [type(c).__name__ for c in cbs.callbacks] == ["History", "ProgbarLogger"]
    assert model.history is history
    for c in cbs.callbacks:
        assert c.model is model
        assert c.params == {"epochs": 2, "steps": 5, "verbose": 1}
    with pytest.raises(ValueError, match=r"callbacks\[0\].*LambdaCallback"):
        callbacks.CallbackList([lambda epoch, logs: None])


def test_history_records_epoch_logs():
    model = FakeModel()
    history = fake_fit(model, [], [{"loss": 0.5, "mae": 1.0}, {"loss": 0.25, "mae": 0.5}])
    assert history.history == {"loss": [0.5, 0.25], "mae": [1.0, 0.5]}
    assert history.epoch == [0, 1]
    assert model.history is history


# ----------------------------------------------------------------- EarlyStopping
def test_early_stopping_patience_counting():
    model = FakeModel()
    stop = callbacks.EarlyStopping(patience=2)
    history = fake_fit(model, [stop], val_losses([1.0, 0.9, 0.95, 0.96, 0.97, 0.5]))
    # best at epoch 1; epochs 2 and 3 do not improve -> stop after epoch 3
    assert history.epoch == [0, 1, 2, 3]
    assert stop.stopped_epoch == 3 and stop.best == 0.9 and stop.best_epoch == 1


def test_early_stopping_patience_zero_stops_at_first_non_improvement():
    model = FakeModel()
    stop = callbacks.EarlyStopping(monitor="loss")
    history = fake_fit(model, [stop], [{"loss": v} for v in [3.0, 2.0, 2.0, 1.0]])
    assert history.epoch == [0, 1, 2]


def test_early_stopping_min_delta():
    model = FakeModel()
    stop = callbacks.EarlyStopping(patience=1, min_delta=0.1)
    history = fake_fit(model, [stop], val_losses([1.0, 0.95, 0.92, 0.5]))
    assert history.epoch == [0, 1]  # 0.95 is not better than 1.0 by more than 0.1


def test_early_stopping_auto_mode_maximizes_accuracy():
    model = FakeModel()
    stop = callbacks.EarlyStopping(monitor="val_accuracy", patience=1)
    logs = [{"val_accuracy": v} for v in [0.5, 0.6, 0.7, 0.65, 0.8]]
    history = fake_fit(model, [stop], logs)
    assert history.epoch == [0, 1, 2, 3]
    assert stop.best == 0.7
    assert callbacks.EarlyStopping(monitor="acc").mode == "auto"


def test_auto_mode_uses_the_model_metric_direction_then_the_name():
    model = FakeModel(metrics_list=[metrics.BinaryAccuracy(name="hits")])
    stop = callbacks.EarlyStopping(monitor="val_hits")
    stop.set_model(model)
    stop.on_train_begin()
    stop.on_epoch_end(0, {"val_hits": 0.5})
    assert stop.monitor_op is np.greater
    for name, op in [("val_mae", np.less), ("mean_squared_error", np.less), ("val_binary_crossentropy", np.less)]:
        cb = callbacks.EarlyStopping(monitor=name)
        cb.set_model(FakeModel())
        cb._set_monitor_op()
        assert cb.monitor_op is op
    cb = callbacks.EarlyStopping(monitor="val_f1")
    cb.set_model(FakeModel())
    with pytest.raises(ValueError, match="monitor='val_f1'.*mode='max' or mode='min'"):
        cb.on_epoch_end(0, {"val_f1": 1.0})


def test_explicit_mode_overrides_name():
    model = FakeModel()
    stop = callbacks.EarlyStopping(monitor="val_loss", mode="max", patience=0)
    history = fake_fit(model, [stop], val_losses([1.0, 2.0, 1.5]))
    assert history.epoch == [0, 1, 2]


def test_restore_best_weights_at_stop():
    model = FakeModel()
    stop = callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    fake_fit(model, [stop], val_losses([1.0, 0.5, 0.7, 0.8, 0.9]))
    np.testing.assert_array_equal(model.weights[0], [1.0, 1.0])  # epoch 1 was best


def test_restore_best_weights_also_without_early_stop():
    # Keras 3 restores whenever best weights exist, stopped early or not.
    model = FakeModel()
    stop = callbacks.EarlyStopping(patience=5, restore_best_weights=True)
    fake_fit(model, [stop], val_losses([1.0, 0.5, 0.7]))
    np.testing.assert_array_equal(model.weights[1], [1.0, 1.0, 1.0])


def test_baseline_must_be_beaten_to_reset_the_wait():
    # Expected epochs checked against Keras 3.15's EarlyStopping.
    # Above the baseline the wait counter keeps growing, so the first epoch
    # without improvement stops training, even though patience=2 ...
    stop = callbacks.EarlyStopping(patience=2, baseline=0.5)
    history = fake_fit(FakeModel(), [stop], val_losses([0.9, 0.8, 0.8, 0.8, 0.8]))
    assert history.epoch == [0, 1, 2]
    # ... while an epoch that improves never stops (Keras returns early).
    history = fake_fit(FakeModel(), [callbacks.EarlyStopping(patience=2, baseline=0.5)], val_losses([0.9, 0.8, 0.7]))
    assert history.epoch == [0, 1, 2]
    # Beating the baseline resets the counter as usual.
    stop = callbacks.EarlyStopping(patience=2, baseline=0.5)
    history = fake_fit(FakeModel(), [stop], val_losses([0.9, 0.4, 0.45, 0.45, 0.45]))
    assert history.epoch == [0, 1, 2, 3]


def test_start_from_epoch_ignores_warm_up():
    model = FakeModel()
    stop = callbacks.EarlyStopping(patience=0, start_from_epoch=2)
    history = fake_fit(model, [stop], val_losses([1.0, 2.0, 3.0, 2.0, 2.5]))
    # epochs 0-1 ignored; epoch 2 sets best=3.0, epoch 3 improves, epoch 4 stops
    assert history.epoch == [0, 1, 2, 3, 4]
    assert stop.stopped_epoch == 4 and stop.best == 2.0


def test_missing_monitor_warns_and_never_stops():
    model = FakeModel()
    stop = callbacks.EarlyStopping(monitor="val_loss")
    with pytest.warns(UserWarning, match="val_loss.*Available metrics are: loss"):
        history = fake_fit(model, [stop], [{"loss": 1.0}] * 3)
    assert history.epoch == [0, 1, 2]


def test_early_stopping_verbose_messages(capsys):
    model = FakeModel()
    fake_fit(model, [callbacks.EarlyStopping(patience=0, verbose=1, restore_best_weights=True)], val_losses([1, 2]))
    out = capsys.readouterr().out
    assert "Epoch 2: early stopping" in out
    assert "Restoring model weights from the end of the best epoch: 1." in out


@pytest.mark.parametrize(
    "kwargs,argname",
    [
        ({"patience": -1}, "patience"),
        ({"patience": 1.5}, "patience"),
        ({"mode": "maximum"}, "mode"),
        ({"baseline": "low"}, "baseline"),
        ({"start_from_epoch": -2}, "start_from_epoch"),
        ({"min_delta": "0.1"}, "min_delta"),
        ({"monitor": 3}, "monitor"),
    ],
)
def test_early_stopping_bad_arguments(kwargs, argname):
    with pytest.raises(ValueError, match=f"`{argname}`"):
        callbacks.EarlyStopping(**kwargs)


# --------------------------------------------------------------- ModelCheckpoint
def test_checkpoint_formats_epoch_and_logs(tmp_path):
    model = FakeModel()
    pattern = str(tmp_path / "ckpt" / "model-{epoch:02d}-{val_loss:.2f}.crnn")
    fake_fit(model, [callbacks.ModelCheckpoint(pattern)], val_losses([0.5, 0.25]))
    names = [os.path.basename(p) for p in model.saved]
    assert names == ["model-01-0.50.crnn", "model-02-0.25.crnn"]
    assert all(os.path.exists(p) for p in model.saved)


def test_checkpoint_save_best_only(tmp_path):
    model = FakeModel()
    path = str(tmp_path / "best-{epoch}.crnn")
    fake_fit(model, [callbacks.ModelCheckpoint(path, save_best_only=True)], val_losses([1.0, 0.8, 0.9, 0.7]))
    assert [os.path.basename(p) for p in model.saved] == ["best-1.crnn", "best-2.crnn", "best-4.crnn"]


def test_checkpoint_save_best_only_max_mode_and_threshold(tmp_path):
    model = FakeModel()
    cb = callbacks.ModelCheckpoint(
        str(tmp_path / "m{epoch}.crnn"), monitor="val_acc", save_best_only=True, initial_value_threshold=0.6
    )
    fake_fit(model, [cb], [{"val_acc": v} for v in [0.5, 0.7, 0.65, 0.9]])
    assert [os.path.basename(p) for p in model.saved] == ["m2.crnn", "m4.crnn"]


def test_checkpoint_weights_only_and_batch_frequency(tmp_path):
    model = FakeModel()
    cb = callbacks.ModelCheckpoint(str(tmp_path / "w-{epoch}-{batch}.npz"), save_weights_only=True, save_freq=2)
    fake_fit(model, [cb], [{"loss": 1.0}] * 2, steps=3)
    # 6 batches in all, a save every 2: epoch 1 batch 2, epoch 2 batch 1, epoch 2 batch 3
    assert [os.path.basename(p) for p in model.saved_weights] == ["w-1-2.npz", "w-2-1.npz", "w-2-3.npz"]
    assert model.saved == []


def test_checkpoint_missing_value_saves_with_warning(tmp_path):
    model = FakeModel()
    cb = callbacks.ModelCheckpoint(str(tmp_path / "m.crnn"), save_best_only=True)
    with pytest.warns(UserWarning, match="Can save best model only with val_loss available"):
        fake_fit(model, [cb], [{"loss": 1.0}])
    assert len(model.saved) == 1


def test_checkpoint_errors(tmp_path):
    model = FakeModel()
    cb = callbacks.ModelCheckpoint(str(tmp_path / "m-{val_mae:.2f}.crnn"))
    with pytest.raises(KeyError, match="Failed to format this callback filepath"):
        fake_fit(model, [cb], [{"loss": 1.0}])
    (tmp_path / "adir").mkdir()
    cb = callbacks.ModelCheckpoint(str(tmp_path / "adir"))
    with pytest.raises(IsADirectoryError, match="existing directory"):
        fake_fit(FakeModel(), [cb], [{"val_loss": 1.0}])
    with pytest.raises(ValueError, match="save_freq"):
        callbacks.ModelCheckpoint("m.crnn", save_freq="batch")
    with pytest.raises(ValueError, match="save_freq"):
        callbacks.ModelCheckpoint("m.crnn", save_freq=0)


def test_checkpoint_verbose_messages(tmp_path, capsys):
    model = FakeModel()
    path = str(tmp_path / "m.crnn")
    fake_fit(model, [callbacks.ModelCheckpoint(path, save_best_only=True, verbose=1)], val_losses([1.0, 2.0]))
    out = capsys.readouterr().out
    assert f"Epoch 1: val_loss improved from None to 1.00000, saving model to {path}" in out
    assert "Epoch 2: val_loss did not improve from 1.00000" in out


# ------------------------------------------- Lambda, TerminateOnNaN, ResetStates
def test_lambda_callback_calls_the_functions():
    seen = []
    cb = callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seen.append(("epoch_begin", epoch)),
        on_epoch_end=lambda epoch, logs: seen.append(("epoch_end", epoch, logs["loss"])),
        on_train_begin=lambda logs: seen.append(("train_begin",)),
        on_train_end=lambda logs: seen.append(("train_end",)),
        on_train_batch_begin=lambda batch, logs: seen.append(("batch_begin", batch)),
        on_train_batch_end=lambda batch, logs: seen.append(("batch_end", batch)),
        on_test_end=lambda logs: seen.append(("test_end",)),
    )
    fake_fit(FakeModel(), [cb], [{"loss": 0.5}], steps=1)
    cb.on_test_end({})
    assert seen == [
        ("train_begin",),
        ("epoch_begin", 0),
        ("batch_begin", 0),
        ("batch_end", 0),
        ("epoch_end", 0, 0.5),
        ("train_end",),
        ("test_end",),
    ]
    with pytest.raises(ValueError, match="unknown hook 'on_epoch_finish'"):
        callbacks.LambdaCallback(on_epoch_finish=print)
    with pytest.raises(ValueError, match="`on_epoch_end` must be callable"):
        callbacks.LambdaCallback(on_epoch_end=3)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_terminate_on_nan_stops_training(bad, capsys):
    model = FakeModel()
    history = fake_fit(
        model, [callbacks.TerminateOnNaN()], [{"loss": 1.0}] * 3, batch_logs={(1, 2): {"loss": bad}}
    )
    assert history.epoch == [0, 1]
    assert model.stop_training is True
    assert "Batch 2: Invalid loss, terminating training" in capsys.readouterr().out


def test_terminate_on_nan_ignores_finite_and_can_raise():
    model = FakeModel()
    history = fake_fit(model, [callbacks.TerminateOnNaN()], [{"loss": 1.0}] * 2)
    assert history.epoch == [0, 1] and model.stop_training is False
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 0"):
        fake_fit(FakeModel(), [callbacks.TerminateOnNaN(raise_error=True)], [{}], batch_logs={(0, 0): {"loss": np.nan}})


def test_reset_states_every_n_batches_and_at_epoch_end():
    model = FakeModel()
    fake_fit(model, [callbacks.ResetStatesCallback(every_n_batches=2)], [{"loss": 1.0}] * 2, steps=5)
    # per epoch: after batches 1 and 3, then at the epoch's end
    assert model.resets == [0, 0, 0, 1, 1, 1]


def test_reset_states_only_by_batch_or_only_at_epoch_end():
    model = FakeModel()
    fake_fit(model, [callbacks.ResetStatesCallback(every_n_batches=1, at_epoch_end=False)], [{}] * 2, steps=2)
    assert model.resets == [0, 0, 1, 1]
    model = FakeModel()
    fake_fit(model, [callbacks.ResetStatesCallback()], [{}] * 3, steps=4)
    assert model.resets == [0, 1, 2]
    with pytest.raises(ValueError, match="`every_n_batches`"):
        callbacks.ResetStatesCallback(every_n_batches=0)


# ----------------------------------------------------------------- ProgbarLogger
def strip_ansi(text):
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_progbar_logger_verbose_1_prints_epoch_headers_and_final_bars(capsys):
    model = FakeModel()
    cbs = callbacks.CallbackList([], add_progbar=True, model=model, epochs=2, steps=4, verbose=1)
    cbs.on_train_begin()
    for epoch in range(2):
        cbs.on_epoch_begin(epoch)
        for batch in range(4):
            cbs.on_train_batch_end(batch, {"loss": 1.0 / (batch + 1)})
        cbs.on_test_begin()  # validation inside fit prints no bar of its own
        cbs.on_test_batch_end(0, {"loss": 9.0})
        cbs.on_test_end({"loss": 9.0})
        cbs.on_epoch_end(epoch, {"loss": 0.25, "val_loss": 0.125})
    cbs.on_train_end()
    out = strip_ansi(capsys.readouterr().out)
    assert out.count("Epoch 1/2\n") == 1 and out.count("Epoch 2/2\n") == 1
    finals = re.findall(r"4/4 ━{20} \d+s \d+[mu]?s/step - loss: 0\.2500 - val_loss: 0\.1250\n", out)
    assert len(finals) == 2
    assert "9.0000" not in out


def test_progbar_logger_verbose_2_prints_one_line_per_epoch(capsys):
    model = FakeModel()
    cbs = callbacks.CallbackList([], add_progbar=True, model=model, epochs=3, steps=10, verbose=2)
    cbs.on_train_begin()
    for epoch in range(3):
        cbs.on_epoch_begin(epoch)
        for batch in range(10):
            cbs.on_train_batch_end(batch, {"loss": 5.0})
        cbs.on_epoch_end(epoch, {"loss": 0.5 / (epoch + 1), "mae": 0.0001})
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line]
    assert lines[0] == "Epoch 1/3"
    bars = [line for line in lines if not line.startswith("Epoch")]
    assert len(bars) == 3
    assert re.fullmatch(r"10/10 - \d+s - \d+[mu]?s/step - loss: 0\.5000 - mae: 1\.0000e-04", bars[0])
    assert bars[1].endswith("loss: 0.2500 - mae: 1.0000e-04")
    assert "━" not in out


def test_progbar_logger_verbose_0_is_silent(capsys):
    fake_fit(FakeModel(), [callbacks.ProgbarLogger()], [{"loss": 1.0}] * 2)
    assert capsys.readouterr().out == ""


def test_progbar_logger_evaluate_and_predict(capsys):
    cbs = callbacks.CallbackList([], add_progbar=True, model=FakeModel(), epochs=1, steps=2, verbose=1)
    cbs.on_test_begin()
    cbs.on_test_batch_end(0, {"loss": 1.0})
    cbs.on_test_batch_end(1, {"loss": 0.75})
    cbs.on_test_end({"loss": 0.75, "mae": 0.5})
    cbs.on_predict_begin()
    cbs.on_predict_batch_end(0, {"outputs": np.zeros(3)})
    cbs.on_predict_batch_end(1, {"outputs": np.zeros(3)})
    cbs.on_predict_end()
    lines = strip_ansi(capsys.readouterr().out).splitlines()
    assert re.fullmatch(r"2/2 ━{20} \d+s \d+[mu]?s/step - loss: 0\.7500 - mae: 0\.5000", lines[0])
    assert re.fullmatch(r"2/2 ━{20} \d+s \d+[mu]?s/step", lines[1])


def test_progbar_logger_unknown_steps_uses_seen_count(capsys):
    cbs = callbacks.CallbackList([], add_progbar=True, model=FakeModel(), epochs=1, steps=None, verbose=1)
    cbs.on_train_begin()
    cbs.on_epoch_begin(0)
    for batch in range(3):
        cbs.on_train_batch_end(batch, {"loss": 1.0})
    cbs.on_epoch_end(0, {"loss": 1.0})
    out = strip_ansi(capsys.readouterr().out)
    assert re.search(r"3/3 ━{20} \d+s \d+[mu]?s/step - loss: 1\.0000\n$", out)


def test_docstring_examples():
    result = doctest.testmod(callbacks)
    assert result.attempted > 0 and result.failed == 0
