"""ReduceLROnPlateau, LearningRateScheduler, CSVLogger and BackupAndRestore: learning rates
and CSV text against Keras 3 (tests/keras_users_golden/make_callbacks.py), error
paths, and a crash/resume round trip."""

import json
import os
import types

import numpy as np
import pytest

import crnn
from crnn import callbacks, optimizers
from crnn.layers import LSTM, Dense

GOLDEN = os.path.join(os.path.dirname(__file__), "keras_users_golden", "callbacks.json")
with open(GOLDEN) as _f:
    G = json.load(_f)


def _model_with(lr):
    return types.SimpleNamespace(optimizer=optimizers.SGD(learning_rate=lr), metrics=[], stop_training=False)


@pytest.mark.parametrize("case", G["plateau"], ids=lambda c: c["name"])
def test_reduce_lr_on_plateau_matches_keras(case):
    cb = callbacks.ReduceLROnPlateau(**case["kwargs"])
    cb.set_model(_model_with(0.1))
    cb.on_train_begin()
    lrs, logged = [], []
    for epoch, v in enumerate(case["values"]):
        logs = {case["key"]: v}
        cb.on_epoch_end(epoch, logs)
        logged.append(logs["learning_rate"])
        lrs.append(float(np.float32(cb.model.optimizer.learning_rate)))
    assert lrs == case["lrs"]
    assert logged == case["logged"]


@pytest.mark.parametrize("case", G["scheduler"], ids=lambda c: c["name"])
def test_learning_rate_scheduler_matches_keras(case):
    schedules = {"step": lambda epoch, lr: lr if epoch < 3 else lr * 0.5,
                 "one_arg": lambda epoch: 0.1 / (1 + epoch)}
    cb = callbacks.LearningRateScheduler(schedules[case["name"]])
    cb.set_model(_model_with(0.1))
    lrs, logged = [], []
    for epoch in range(6):
        cb.on_epoch_begin(epoch)
        lrs.append(float(np.float32(cb.model.optimizer.learning_rate)))
        logs = {"loss": 1.0}
        cb.on_epoch_end(epoch, logs)
        logged.append(logs["learning_rate"])
    assert lrs == case["lrs"] and logged == case["logged"]


@pytest.mark.parametrize("case", G["csv"], ids=lambda c: c["name"])
def test_csv_logger_writes_what_keras_writes(case, tmp_path):
    path = tmp_path / "log.csv"
    cb = callbacks.CSVLogger(path, **case["kwargs"])
    cb.set_model(_model_with(0.1))
    cb.on_train_begin()
    for epoch, logs in enumerate(case["epochs"]):
        cb.on_epoch_end(epoch, dict(logs))
    cb.on_train_end()
    assert path.read_text() == case["text"]


def test_csv_logger_append_keeps_one_header(tmp_path):
    path = tmp_path / "log.csv"
    for start in (0, 2):
        cb = callbacks.CSVLogger(path, append=True)
        cb.set_model(_model_with(0.1))
        cb.on_train_begin()
        cb.on_epoch_end(start, {"loss": 1.0, "val_loss": 2.0})
        cb.on_train_end()
    assert path.read_text().splitlines() == ["epoch,loss,val_loss", "0,1.0,2.0", "2,1.0,2.0"]


def test_schedule_errors_leave_the_learning_rate_alone():
    cb = callbacks.LearningRateScheduler(lambda epoch, lr: "fast")
    cb.set_model(_model_with(0.1))
    with pytest.raises(ValueError, match="should be a float"):
        cb.on_epoch_begin(0)
    assert cb.model.optimizer.learning_rate == 0.1
    with pytest.raises(ValueError, match="callable"):
        callbacks.LearningRateScheduler(0.1)


def test_schedule_on_a_schedule_optimizer_is_refused():
    cb = callbacks.LearningRateScheduler(lambda epoch, lr: 0.1)
    cb.set_model(types.SimpleNamespace(optimizer=optimizers.SGD(optimizers.ExponentialDecay(0.1, 10, 0.9))))
    with pytest.raises(TypeError, match="schedule"):
        cb.on_epoch_begin(0)


@pytest.mark.parametrize("kwargs, match", [
    ({"factor": 1.0}, "factor"), ({"patience": -1}, "patience"), ({"cooldown": 1.5}, "cooldown"),
    ({"min_lr": -1.0}, "min_lr"), ({"mode": "up"}, "mode"),
])
def test_reduce_lr_on_plateau_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        callbacks.ReduceLROnPlateau(**kwargs)


def test_backup_and_restore_rejects_unsupported_options():
    with pytest.raises(ValueError, match="backup_dir"):
        callbacks.BackupAndRestore("")
    with pytest.raises(ValueError, match="save_freq"):
        callbacks.BackupAndRestore("b", save_freq=10)


def _stateful_model():
    crnn.utils.set_random_seed(3)
    model = crnn.Sequential([LSTM(4, stateful=True, batch_input_shape=(2, 3, 1)), Dense(1)])
    model.compile(optimizers.Adam(0.01), "mse")
    return model


def test_backup_restores_weights_optimizer_states_and_epoch(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 3, 1)), rng.standard_normal((4, 1))
    model = _stateful_model()
    model.fit(x, y, batch_size=2, epochs=2, verbose=0, shuffle=False)
    backup = callbacks.BackupAndRestore(tmp_path / "backup")
    backup.set_model(model)
    backup.on_epoch_end(4)
    other = _stateful_model()
    other.reset_states()
    backup.set_model(other)
    backup.on_train_begin()
    assert other._initial_epoch == 5
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(model.optimizer.get_state(), other.optimizer.get_state()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.layers[0]._state_arrays()[0], other.layers[0]._state_arrays()[0])
    assert np.any(other.layers[0]._state_arrays()[0] != 0)
    backup.on_train_end()
    assert not (tmp_path / "backup").exists()
