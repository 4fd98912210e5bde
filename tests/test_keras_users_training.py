"""Trainer features against Keras 3 on TensorFlow (tests/keras_users_golden/
make_training.py): sample_weight, class_weight, per-timestep weights, a masked
sequence output, 3-tuple validation_data; plus validation_freq, iterables of batches with
steps_per_epoch, BackupAndRestore resuming fit, and error paths."""

import json
import os

import numpy as np
import pytest

import crnn
from crnn import callbacks, optimizers
from crnn import layers as L

GOLDEN = os.path.join(os.path.dirname(__file__), "keras_users_golden", "training.npz")
with np.load(GOLDEN) as _data:
    META = json.loads(str(_data["__meta__"]))
TOL = dict(rtol=2e-5, atol=2e-6)


def _load(case):
    data = np.load(GOLDEN)
    return {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith(case + "/")}


def _set(model, d, n):
    model.set_weights([d[f"w{k}"] for k in range(n)])


def _check_after(model, d, n):
    for k, w in enumerate(model.get_weights()):
        np.testing.assert_allclose(w, d[f"after{k}"], **TOL, err_msg=f"weight {k}")


def test_fit_with_sample_weight_and_weighted_validation_matches_keras():
    d, n = _load("fit_sample_weight"), META["cases"]["fit_sample_weight"]["n"]
    model = crnn.Sequential([L.Input(shape=(5, 2)), L.LSTM(3), L.Dense(1)])
    _set(model, d, n)
    model.compile(optimizers.SGD(0.1), "mse", metrics=["mae"])
    h = model.fit(d["x"], d["y"], sample_weight=d["sw"], batch_size=4, epochs=2, shuffle=False,
                  verbose=0, validation_data=(d["vx"], d["vy"], d["vw"]))
    assert sorted(h.history) == META["cases"]["fit_sample_weight"]["history"]
    for key in h.history:
        np.testing.assert_allclose(h.history[key], d[f"history/{key}"], **TOL, err_msg=key)
    _check_after(model, d, n)
    np.testing.assert_allclose(model.evaluate(d["vx"], d["vy"], sample_weight=d["vw"], verbose=0),
                               d["evaluate"], **TOL)


def test_fit_with_class_weight_matches_keras():
    d, case = _load("fit_class_weight"), META["cases"]["fit_class_weight"]
    model = crnn.Sequential([L.Input(shape=(5, 2)), L.GRU(3), L.Dense(1, activation="sigmoid")])
    _set(model, d, case["n"])
    model.compile(optimizers.SGD(0.5), "binary_crossentropy", metrics=["accuracy"])
    cw = {int(k): v for k, v in case["class_weight"].items()}
    h = model.fit(d["x"], d["y"], class_weight=cw, batch_size=4, epochs=2, shuffle=False, verbose=0)
    for key in h.history:
        np.testing.assert_allclose(h.history[key], d[f"history/{key}"], **TOL, err_msg=key)
    _check_after(model, d, case["n"])


def test_train_on_batch_with_per_timestep_weights_matches_keras():
    d, n = _load("temporal_weight"), META["cases"]["temporal_weight"]["n"]
    model = crnn.Sequential([L.Input(shape=(5, 2)), L.LSTM(3, return_sequences=True),
                             L.TimeDistributed(L.Dense(1))])
    _set(model, d, n)
    model.compile(optimizers.SGD(0.1), "mse")
    loss = model.train_on_batch(d["x"], d["y"], sample_weight=d["sw"])
    np.testing.assert_allclose(loss, d["loss"], **TOL)
    _check_after(model, d, n)


def test_masked_sequence_output_weights_loss_and_metrics_as_keras():
    d, n = _load("masked_output"), META["cases"]["masked_output"]["n"]
    model = crnn.Sequential([L.Input(shape=(6,), dtype="int64"), L.Embedding(8, 3, mask_zero=True),
                             L.LSTM(3, return_sequences=True), L.Dense(2)])
    _set(model, d, n)
    model.compile(optimizers.SGD(0.1), "mse", metrics=["mae"])
    ev = model.evaluate(d["x"], d["y"], verbose=0, return_dict=True)
    np.testing.assert_allclose([ev["loss"], ev["mae"]], [d["eval_loss"], d["eval_mae"]], **TOL)
    tr = model.train_on_batch(d["x"], d["y"], return_dict=True)
    np.testing.assert_allclose([tr["loss"], tr["mae"]], [d["train_loss"], d["train_mae"]], **TOL)
    _check_after(model, d, n)


# ------------------------------------------------------------------ behaviour and errors
def _small():
    crnn.utils.set_random_seed(0)
    model = crnn.Sequential([L.Input(shape=(4, 2)), L.SimpleRNN(3), L.Dense(1)])
    model.compile(optimizers.SGD(0.05), "mse")
    return model


def _xy(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4, 2)).astype("float32"), rng.standard_normal((n, 1)).astype("float32")


def test_zero_weights_give_zero_loss_and_no_update():
    model = _small()
    x, y = _xy()
    before = model.get_weights()
    assert model.train_on_batch(x, y, sample_weight=np.zeros(8)) == 0.0
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_validation_freq_int_and_list():
    x, y = _xy()
    h = _small().fit(x, y, epochs=4, validation_split=0.25, validation_freq=2, verbose=0)
    assert len(h.history["loss"]) == 4 and len(h.history["val_loss"]) == 2
    seen = []
    cb = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append("val_loss" in logs))
    _small().fit(x, y, epochs=4, validation_split=0.25, validation_freq=[1, 4], verbose=0, callbacks=[cb])
    assert seen == [True, False, False, True]
    with pytest.raises(ValueError, match="validation_freq"):
        _small().fit(x, y, validation_freq=0, verbose=0)


def test_fit_on_a_generator_with_steps_per_epoch_equals_fit_on_arrays():
    x, y = _xy(8)
    a, b = _small(), _small()
    a.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)

    def forever():
        while True:
            yield x[:4], y[:4]
            yield x[4:], y[4:]

    h = b.fit(forever(), steps_per_epoch=2, epochs=3, verbose=0)
    assert len(h.history["loss"]) == 3
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_fit_and_evaluate_on_timeseries_batches_and_weighted_tuples():
    series = np.sin(np.arange(60) / 4).astype("float32")[:, None]
    ds = crnn.utils.timeseries_dataset_from_array(series, series[4:], 4, batch_size=8)
    model = crnn.Sequential([L.Input(shape=(4, 1)), L.LSTM(4), L.Dense(1)])
    model.compile("adam", "mse")
    h = model.fit(ds, epochs=2, validation_data=ds, verbose=0)
    assert len(h.history["val_loss"]) == 2
    assert model.evaluate(ds, verbose=0) == pytest.approx(model.evaluate(ds.x, ds.y, batch_size=8, verbose=0))
    batches = [(xb, yb, np.zeros(len(xb))) for xb, yb in ds]
    assert model.evaluate(iter(batches), verbose=0) == 0.0


def test_exhausted_generator_warns_and_stops():
    x, y = _xy(8)
    gen = ((x[i:i + 4], y[i:i + 4]) for i in (0, 4))
    with pytest.warns(UserWarning, match="ran out of data"):
        h = _small().fit(gen, epochs=3, verbose=0)
    assert len(h.history["loss"]) == 1


def test_stateful_model_checks_each_generator_batch():
    model = crnn.Sequential([L.LSTM(2, stateful=True, batch_input_shape=(4, 3, 1)), L.Dense(1)])
    model.compile("sgd", "mse")
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((4, 3, 1)), rng.standard_normal((4, 1))),
               (rng.standard_normal((3, 3, 1)), rng.standard_normal((3, 1)))]
    with pytest.raises(ValueError, match="batch size 4"):
        model.fit(iter(batches), epochs=1, verbose=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"sample_weight": np.ones(8), "class_weight": {0: 1.0}}, "both sample_weight and class_weight"),
    ({"sample_weight": np.ones(3)}, "one entry per sample"),
    ({"sample_weight": np.full(8, np.nan)}, "finite"),
    ({"class_weight": {"a": 1.0}}, "class_weight must be a dict"),
    ({"steps_per_epoch": 2}, "steps_per_epoch is for generators"),
    ({"validation_data": (np.zeros((2, 4, 2)),)}, "validation_data must be a tuple"),
])
def test_training_argument_errors_change_nothing(kwargs, match):
    model = _small()
    x, y = _xy()
    before = model.get_weights()
    with pytest.raises(ValueError, match=match):
        model.fit(x, y, verbose=0, **kwargs)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_class_weight_refuses_sequence_targets():
    model = crnn.Sequential([L.Input(shape=(4, 2)), L.SimpleRNN(3, return_sequences=True), L.Dense(1)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="rank > 2"):
        model.fit(np.zeros((2, 4, 2)), np.zeros((2, 4, 1)), class_weight={0: 1.0}, verbose=0)


def test_backup_and_restore_resumes_after_a_crash(tmp_path):
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((8, 3, 1)), rng.standard_normal((8, 1))

    def model():
        crnn.utils.set_random_seed(4)
        m = crnn.Sequential([L.LSTM(4, stateful=True, batch_input_shape=(4, 3, 1)), L.Dense(1)])
        m.compile(optimizers.Adam(0.01), "mse")
        return m

    reference = model()
    reference.fit(x, y, epochs=5, verbose=0)

    class Crash(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("simulated crash")

    crashed = model()
    backup = callbacks.BackupAndRestore(tmp_path / "bk")
    with pytest.raises(RuntimeError, match="simulated"):
        crashed.fit(x, y, epochs=5, verbose=0, callbacks=[backup, Crash()])
    resumed = model()  # a fresh process: new model, same code
    epochs_run = []
    cb = callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: epochs_run.append(e))
    resumed.fit(x, y, epochs=5, verbose=0, callbacks=[callbacks.BackupAndRestore(tmp_path / "bk"), cb])
    assert epochs_run == [3, 4]
    for a, b in zip(reference.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(reference.layers[0]._state_arrays()[0], resumed.layers[0]._state_arrays()[0],
                               rtol=1e-6, atol=1e-7)
    assert not (tmp_path / "bk").exists()


def test_load_model_alias(tmp_path):
    model = _small()
    model.save(tmp_path / "m.crnn")
    same = crnn.models.load_model(tmp_path / "m.crnn")
    for a, b in zip(model.get_weights(), same.get_weights()):
        np.testing.assert_array_equal(a, b)
