"""Stateful mode: states carry over, resets, batch-size rules and their error messages."""

import warnings

import numpy as np
import pytest

import crnn
from crnn import layers as L
from crnn import ops


def _stateful_model(batch=4, timesteps=3, features=2, units=3, declare="batch_input_shape"):
    crnn.utils.set_random_seed(0)
    if declare == "batch_input_shape":
        first = [L.LSTM(units, stateful=True, batch_input_shape=(batch, timesteps, features))]
    else:
        first = [crnn.Input(shape=(timesteps, features), batch_size=batch),
                 L.LSTM(units, stateful=True)]
    model = crnn.Sequential(first + [L.Dense(1)])
    model.compile(crnn.optimizers.SGD(learning_rate=0.1), "mse")
    return model


def _x(n, timesteps=3, features=2, seed=0):
    return np.random.default_rng(seed).standard_normal((n, timesteps, features)).astype("float32")


def _snapshot(model):
    lstm = model.layers[0]
    return [w.copy() for w in model.get_weights()], [s.copy() for s in lstm.states]


def _assert_unchanged(model, snapshot):
    weights, states = snapshot
    for a, b in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(states, model.layers[0].states):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("declare", ["batch_input_shape", "input"])
def test_predict_advances_state_and_reset_repeats(declare):
    model = _stateful_model(declare=declare)
    x = _x(4)
    first = model.predict(x, verbose=0)
    second = model.predict(x, verbose=0)
    assert not np.allclose(first, second)
    model.reset_states()
    np.testing.assert_array_equal(model.predict(x, verbose=0), first)
    model.layers[0].reset_states(states=None)
    np.testing.assert_array_equal(model.predict(x, verbose=0), first)


def test_states_carry_across_batches_like_one_long_sequence():
    """Two batches of 3 steps == one 6-step sequence, sample slot by sample slot."""
    model = _stateful_model(batch=2)
    lstm = model.layers[0]
    x = _x(4)                   # samples 0,1 = batch 1; samples 2,3 continue them
    y = model.predict(x, verbose=0)
    long = np.concatenate([x[:2], x[2:]], axis=1)
    out, (h, c), _ = ops.lstm(long, lstm.kernel, lstm.recurrent_kernel, lstm.bias)
    dense = model.layers[1]
    np.testing.assert_allclose(y[2:], out[:, -1] @ dense.kernel + dense.bias, rtol=1e-5)
    np.testing.assert_allclose(lstm.states[0], h, rtol=1e-6)
    np.testing.assert_allclose(lstm.states[1], c, rtol=1e-6)


def test_fit_carries_state_without_shuffle_and_uses_declared_batch_size():
    model = _stateful_model(batch=2)
    seen = []
    cb = crnn.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(b))
    x = _x(6)
    y = np.ones((6, 1), "float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # no shuffle warning by default
        model.fit(x, y, epochs=1, verbose=0, callbacks=[cb])
    assert seen == [0, 1, 2]             # batch_size defaulted to the declared 2
    # The state after fit is that of running the 3 batches in order.
    assert np.abs(model.layers[0].states[0]).sum() > 0


def test_reset_states_callback_resets_between_epochs():
    model = _stateful_model(batch=2)
    x, y = _x(4), np.ones((4, 1), "float32")
    calls = []
    model.reset_states = (lambda orig: lambda: (calls.append(1), orig())[1])(model.reset_states)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[crnn.callbacks.ResetStatesCallback()])
    assert len(calls) == 3


def test_shuffle_true_on_stateful_model_warns():
    model = _stateful_model(batch=2)
    with pytest.warns(UserWarning, match="breaks that sample-to-sample continuation"):
        model.fit(_x(4), np.ones((4, 1), "float32"), shuffle=True, verbose=0)


def test_stateless_model_shuffles_by_default_and_has_independent_samples():
    crnn.utils.set_random_seed(0)
    model = crnn.Sequential([L.LSTM(3, input_shape=(3, 2)), L.Dense(1)])
    x = _x(5)
    a = model.predict(x, verbose=0)
    b = model.predict(x, verbose=0)
    np.testing.assert_array_equal(a, b)      # no state between calls
    np.testing.assert_allclose(model.predict(x[::-1], verbose=0), a[::-1], rtol=1e-6)


@pytest.mark.parametrize("run, match", [
    (lambda m: m.fit(_x(10), np.ones((10, 1)), verbose=0),
     r"has 10 samples, which is not divisible by the stateful batch size 4.*use 8 or 12 "
     r"samples.*divides 10, one of \[1, 2, 5, 10\]"),
    (lambda m: m.fit(_x(8), np.ones((8, 1)), batch_size=2, verbose=0),
     r"batch_size=2 was passed to fit.*declared with batch size 4.*pass batch_size=4"),
    (lambda m: m.fit(_x(8), np.ones((8, 1)), validation_data=(_x(6), np.ones((6, 1))),
                     verbose=0),
     r"validation_data has 6 samples.*batch size 4.*use 4 or 8 samples"),
    (lambda m: m.fit(_x(10), np.ones((10, 1)), validation_split=0.2, verbose=0),
     r"validation split \(0.2\) has 2 samples.*use 4 samples"),
    (lambda m: m.evaluate(_x(6), np.ones((6, 1)), verbose=0), r"has 6 samples.*use 4 or 8"),
    (lambda m: m.predict(_x(3), verbose=0), r"has 3 samples.*use 4 samples.*one of \[1, 3\]"),
    (lambda m: m.predict(_x(8), batch_size=8, verbose=0), "batch_size=8 was passed to predict"),
    (lambda m: m.predict_on_batch(_x(2)), r"2 samples, but this stateful model was declared "
                                          r"with batch size 4"),
    (lambda m: m(_x(8)), "declared with batch size 4"),
    (lambda m: m.train_on_batch(_x(3), np.ones((3, 1))), "declared with batch size 4"),
])
def test_stateful_checks_fail_before_any_work(run, match):
    model = _stateful_model(batch=4)
    model.predict(_x(4), verbose=0)              # non-zero states to protect
    snapshot = _snapshot(model)
    with pytest.raises(ValueError, match=match):
        run(model)
    _assert_unchanged(model, snapshot)


def test_stateful_without_batch_size_error_says_how_to_declare():
    with pytest.raises(ValueError, match=r"stateful=True.*batch_input_shape=\(batch_size, "
                                         r"timesteps, features\).*crnn.Input"):
        crnn.Sequential([crnn.Input(shape=(3, 2)), L.LSTM(2, stateful=True)])
    model = crnn.Sequential([L.LSTM(2, stateful=True), L.Dense(1)])
    with pytest.raises(ValueError, match="needs a fixed batch size"):
        model.predict(_x(4), verbose=0)


def test_bidirectional_and_stacked_stateful_layers_reset_together():
    crnn.utils.set_random_seed(0)
    model = crnn.Sequential([
        crnn.Input(batch_shape=(2, 3, 2)),
        L.Bidirectional(L.GRU(2, stateful=True, return_sequences=True)),
        L.SimpleRNN(2, stateful=True)])
    x = _x(2)
    a = model.predict(x, verbose=0)
    assert not np.allclose(a, model.predict(x, verbose=0))
    model.reset_states()
    np.testing.assert_array_equal(model.predict(x, verbose=0), a)


def _train_first_input_task(stateful, n_sequences=60, steps=10, seed=0):
    """Feed one timestep per call; the target at every step is the sequence's first input."""
    crnn.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = crnn.Sequential([L.LSTM(8, stateful=stateful, batch_input_shape=(1, 1, 1)),
                             L.Dense(1)])
    model.compile(crnn.optimizers.Adam(0.01), "mse")

    def sequence():
        x = rng.uniform(-1, 1, size=steps).astype("float32")
        x[0] = rng.choice([-1.0, 1.0])
        return x

    for _ in range(n_sequences):
        x = sequence()
        for t in range(steps):
            model.train_on_batch(x[t].reshape(1, 1, 1), np.array([[x[0]]], "float32"))
        if stateful:
            model.reset_states()
    errors = []
    for _ in range(20):
        x = sequence()
        for t in range(steps):
            pred = model.predict_on_batch(x[t].reshape(1, 1, 1))
        errors.append(float((pred[0, 0] - x[0]) ** 2))
        if stateful:
            model.reset_states()
    return np.mean(errors)


def test_stateful_model_learns_to_report_first_input_stateless_cannot():
    assert _train_first_input_task(stateful=True) < 0.1
    assert _train_first_input_task(stateful=False) > 0.5
