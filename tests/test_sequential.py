"""Sequential model: building, shapes, weights, training loop, config, summary, errors."""

import numpy as np
import pytest

import crnn
from crnn import layers as L
from crnn import ops


def _data(n=48, t=6, f=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, t, f)).astype("float32")
    y = (x[:, :, :1].sum(axis=1) / t).astype("float32")
    return x, y


@pytest.mark.parametrize("declare", ["batch_input_shape", "input_shape", "input", "batch_shape"])
def test_three_ways_to_declare_the_shape(declare):
    if declare == "batch_input_shape":
        layers = [L.LSTM(3, batch_input_shape=(4, 6, 2))]
        expected = (4, 6, 2)
    elif declare == "input_shape":
        layers = [L.LSTM(3, input_shape=(6, 2))]
        expected = (None, 6, 2)
    elif declare == "input":
        layers = [crnn.Input(shape=(6, 2), batch_size=4), L.LSTM(3)]
        expected = (4, 6, 2)
    else:
        layers = [crnn.Input(batch_shape=(4, 6, 2)), L.LSTM(3)]
        expected = (4, 6, 2)
    model = crnn.Sequential(layers + [L.Dense(1)])
    assert model.built
    assert model.input_shape == expected
    assert model.output_shape == (expected[0], 1)
    assert model.count_params() == 2 * 12 + 3 * 12 + 12 + 4
    assert model(np.zeros((4, 6, 2), "float32")).shape == (4, 1)


def test_lazy_build_from_data_and_layers_property():
    model = crnn.Sequential()
    model.add(L.GRU(3, return_sequences=True))
    model.add(L.TimeDistributed(L.Dense(2)))
    assert not model.built
    y = model(np.zeros((5, 4, 3), "float32"))
    assert y.shape == (5, 4, 2) and model.built
    assert [type(l).__name__ for l in model.layers] == ["GRU", "TimeDistributed"]
    assert model.input_shape == (None, 4, 3)


def test_model_weights_are_layer_weights_in_order():
    model = crnn.Sequential([L.LSTM(3, input_shape=(5, 2)), L.Dense(2)])
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(2, 12), (3, 12), (12,), (3, 2), (2,)]
    new = [np.full(s, k, "float32") for k, s in enumerate(shapes)]
    model.set_weights(new)
    np.testing.assert_array_equal(model.layers[1].bias, [4, 4])
    with pytest.raises(ValueError, match="has 5 weight arrays, received 4"):
        model.set_weights(new[:4])
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"weight 4 .* shape \(2,\), received shape \(3,\)"):
        model.set_weights(new[:4] + [np.zeros(3)])
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)    # nothing was half-copied


def test_one_sgd_step_matches_ops_gradients():
    """The update equals w - lr * grad, with grad computed from crnn.ops by hand."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 5, 3)).astype("float32")
    y = rng.standard_normal((4, 2)).astype("float32")
    model = crnn.Sequential([L.LSTM(4, input_shape=(5, 3)), L.Dense(2)])
    model.compile(optimizer=crnn.optimizers.SGD(learning_rate=0.1), loss="mse")
    k, rk, b, dk, db = [w.astype("float64") for w in model.get_weights()]
    out, _, cache = ops.lstm(x.astype("float64"), k, rk, b, training=True)
    h = out[:, -1]
    pred = h @ dk + db
    d_pred = 2 * (pred - y) / pred.size          # mse, mean over batch and outputs
    d_dk = h.T @ d_pred
    d_db = d_pred.sum(axis=0)
    d_h = d_pred @ dk.T
    d_out = np.zeros_like(out)
    d_out[:, -1] = d_h
    g = ops.lstm_grad(cache, d_out)
    expected = [k - 0.1 * g.d_kernel, rk - 0.1 * g.d_recurrent_kernel, b - 0.1 * g.d_bias,
                dk - 0.1 * d_dk, db - 0.1 * d_db]
    loss = model.train_on_batch(x, y)
    np.testing.assert_allclose(loss, np.mean((pred - y) ** 2), rtol=1e-5)
    for w, e in zip(model.get_weights(), expected):
        np.testing.assert_allclose(w, e, atol=1e-5, rtol=1e-5)


def test_model_learns_small_task():
    crnn.utils.set_random_seed(0)
    x, y = _data(n=128, t=8)
    model = crnn.Sequential([L.LSTM(8, input_shape=(8, 2)), L.Dense(1)])
    model.compile(optimizer=crnn.optimizers.Adam(learning_rate=0.02), loss="mse",
                  metrics=["mae"])
    start = model.evaluate(x, y, verbose=0)[0]
    history = model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    end = model.evaluate(x, y, verbose=0)[0]
    assert end < 0.1 * start
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert set(history.history) == {"loss", "mae"}
    assert len(history.history["loss"]) == 15 and history.epoch == list(range(15))


def test_fit_history_validation_and_callbacks():
    crnn.utils.set_random_seed(1)
    x, y = _data(n=40)
    model = crnn.Sequential([L.GRU(4, input_shape=(6, 2)), L.Dense(1)])
    model.compile("sgd", "mse", metrics=["mae"])
    seen = []
    cb = crnn.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(b))
    h = model.fit(x, y, batch_size=16, epochs=2, validation_split=0.25, callbacks=[cb],
                  verbose=0)
    # 30 training samples -> batches of 16 and 14 (partial batch is fine).
    assert seen == [0, 1, 0, 1]
    assert set(h.history) == {"loss", "mae", "val_loss", "val_mae"}
    assert model.history is h
    val_x, val_y = x[30:], y[30:]
    np.testing.assert_allclose(h.history["val_loss"][-1],
                               model.evaluate(val_x, val_y, verbose=0)[0], rtol=1e-6)
    h2 = model.fit(x, y, epochs=3, initial_epoch=2, validation_data=(x[:8], y[:8]), verbose=0)
    assert h2.epoch == [2] and "val_loss" in h2.history


def test_early_stopping_sets_stop_training():
    x, y = _data(n=16)
    model = crnn.Sequential([L.SimpleRNN(2, input_shape=(6, 2)), L.Dense(1)])
    model.compile(optimizer=crnn.optimizers.SGD(learning_rate=1e-12), loss="mse")  # float32 weights stay put
    h = model.fit(x, y, epochs=20, verbose=0, validation_data=(x, y),
                  callbacks=[crnn.callbacks.EarlyStopping(monitor="val_loss", patience=1)])
    assert len(h.epoch) == 2 and model.stop_training


def test_evaluate_averages_over_all_samples_with_partial_batch():
    x, y = _data(n=10)
    model = crnn.Sequential([L.LSTM(3, input_shape=(6, 2)), L.Dense(1)])
    model.compile("adam", "mse", metrics=["mae"])
    pred = model.predict(x, batch_size=4, verbose=0)
    loss, mae = model.evaluate(x, y, batch_size=4, verbose=0)
    np.testing.assert_allclose(loss, np.mean((pred - y) ** 2), rtol=1e-5)
    np.testing.assert_allclose(mae, np.mean(np.abs(pred - y)), rtol=1e-5)
    d = model.evaluate(x, y, verbose=0, return_dict=True)
    assert set(d) == {"loss", "mae"}
    assert model.test_on_batch(x, y)[0] == pytest.approx(loss, rel=1e-5)
    np.testing.assert_allclose(model.predict_on_batch(x), pred, rtol=1e-6)


def test_stateless_samples_are_independent_of_batching():
    x, _ = _data(n=7)
    model = crnn.Sequential([L.LSTM(3, input_shape=(6, 2)), L.Dense(1)])
    whole = model.predict(x, batch_size=7, verbose=0)
    np.testing.assert_allclose(model.predict(x, batch_size=3, verbose=0), whole, rtol=1e-6)
    np.testing.assert_allclose(model.predict(x[4:5], verbose=0), whole[4:5], rtol=1e-6)
    np.testing.assert_allclose(model.predict(x, verbose=0), whole, rtol=1e-6)


def test_classification_with_embedding_mask_and_accuracy():
    crnn.utils.set_random_seed(2)
    rng = np.random.default_rng(0)
    x = rng.integers(1, 5, size=(64, 6))
    x[::2, 4:] = 0
    y = (x[:, 0] > 2).astype("int64")
    model = crnn.Sequential([L.Embedding(5, 4, mask_zero=True, input_shape=(6,)),
                             L.Bidirectional(L.GRU(4)), L.Dense(2, activation="softmax")])
    model.compile(crnn.optimizers.Adam(0.05), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=10, batch_size=16, verbose=0)
    loss, acc = model.evaluate(x, y, verbose=0)
    assert acc > 0.9


def test_get_config_from_config_round_trip():
    model = crnn.Sequential([crnn.Input(shape=(5, 2)),
                             L.Bidirectional(L.LSTM(3, return_sequences=True)),
                             L.Dropout(0.1), L.TimeDistributed(L.Dense(1))], name="m")
    config = model.get_config()
    assert config["layers"][0]["class_name"] == "InputLayer"
    clone = crnn.Sequential.from_config(config)
    assert clone.get_config() == config
    clone.set_weights(model.get_weights())
    x = np.random.default_rng(0).standard_normal((2, 5, 2)).astype("float32")
    np.testing.assert_array_equal(clone.predict(x, verbose=0), model.predict(x, verbose=0))


def test_summary_lists_layers_shapes_and_params():
    model = crnn.Sequential([L.LSTM(4, input_shape=(10, 3), name="enc"), L.Dense(1, name="out")])
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "enc (LSTM)" in text and "(None, 4)" in text and "128" in text
    assert "out (Dense)" in text and "(None, 1)" in text
    assert "Total params: 133" in text


def test_fit_progress_bar_verbose_modes(capsys):
    x, y = _data(n=8)
    model = crnn.Sequential([L.SimpleRNN(2, input_shape=(6, 2)), L.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(x, y, epochs=1, batch_size=4, verbose=1)
    out = capsys.readouterr().out
    assert "2/2" in out and "loss:" in out and "/step" in out
    model.fit(x, y, epochs=2, batch_size=4, verbose=2)
    out = capsys.readouterr().out
    assert "Epoch 2/2" in out and "loss:" in out
    model.fit(x, y, epochs=1, verbose=0)
    model.predict(x, verbose=0)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("call, match", [
    (lambda m, x, y: m.fit(x, y[:5], verbose=0), "one target per sample: x has 8 samples"),
    (lambda m, x, y: m.fit(x[:, :, :1], y, verbose=0), r"model expects inputs of shape \(None, 6, 2\)"),
    (lambda m, x, y: m.fit(x, y, batch_size=0, verbose=0), "batch_size must be a positive int"),
    (lambda m, x, y: m.fit(x, y, verbose=3), "verbose must be 0, 1, 2"),
    (lambda m, x, y: m.fit(x, y, validation_split=1.5, verbose=0), "validation_split must be"),
    (lambda m, x, y: m.fit(x, y, validation_data=(x,), verbose=0), "validation_data must be a tuple"),
    (lambda m, x, y: m.fit(x, y, epochs=-1, verbose=0), "epochs must be"),
    (lambda m, x, y: m.fit(x, y, sample_weight=np.ones(5), verbose=0), "sample_weight must have one entry per sample"),
    (lambda m, x, y: m.add("dense"), "expects a crnn layer instance"),
    (lambda m, x, y: m.add(L.LSTM(2, return_state=True)), "return_state=True"),
    (lambda m, x, y: m.add(L.Dense(1, name=m.layers[0].name)), "names must be unique"),
])
def test_errors(call, match):
    x, y = _data(n=8)
    model = crnn.Sequential([L.LSTM(2, input_shape=(6, 2)), L.Dense(1)])
    model.compile("sgd", "mse")
    with pytest.raises((ValueError, TypeError, NotImplementedError), match=match):
        call(model, x, y)


def test_fit_before_compile_is_an_error():
    x, y = _data(n=8)
    model = crnn.Sequential([L.LSTM(2, input_shape=(6, 2)), L.Dense(1)])
    with pytest.raises(RuntimeError, match=r"must be compiled before fit"):
        model.fit(x, y)
