"""crnn.streaming.Streamer: one step per call must equal predict_on_batch step by step.

Reference: a twin model with the same weights and states, driven through the ordinary
layer stack (calling the model on a (1, 1, features) input; ``predict_on_batch`` itself now
takes the streaming step for such inputs), whose kernels are checked
against golden data elsewhere; plus one NumPy LSTM step written out here.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crnn
from crnn import layers as L
from crnn.layers import activations
from crnn.streaming import Streamer

F = 5
TOL = {"float32": dict(rtol=2e-5, atol=2e-6), "float64": dict(rtol=1e-12, atol=1e-13)}


def _build(make_layers, seed=0):
    crnn.utils.set_random_seed(seed)
    return crnn.Sequential(make_layers())


def _twins(make_layers, seed=0):
    """Two models with the same structure, weights (random biases too) and states."""
    model = _build(make_layers, seed)
    rng = np.random.default_rng(seed + 100)
    model.set_weights([w + 0.3 * rng.standard_normal(w.shape) for w in model.get_weights()])
    twin = _build(make_layers, seed)
    twin.set_weights(model.get_weights())
    return model, twin


def _seq(n, dtype, seed=1, features=F):
    return np.random.default_rng(seed).standard_normal((n, features)).astype(dtype)


def _recurrent(model):
    return [l for l in model.layers if isinstance(l, (L.LSTM, L.GRU, L.SimpleRNN))]


def _assert_same_states(a, b, dtype):
    for la, lb in zip(_recurrent(a), _recurrent(b)):
        for sa, sb in zip(la.states, lb.states):
            np.testing.assert_allclose(sa, sb, **TOL[dtype])


def _check_stream(model, twin, dtype, steps=12, warmup=3, seed=1):
    """Warm both models up with predict_on_batch (non-zero states), then stream."""
    warm = _seq(warmup, dtype, seed + 7)[None]
    model.predict_on_batch(warm)
    twin(warm)
    streamer = Streamer(model)
    assert any(np.abs(s).max() > 0 for l in _recurrent(model) for s in l.states)
    for x in _seq(steps, dtype, seed):
        got = streamer.step(x)
        want = twin(x[None, None])
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, **TOL[dtype])
    _assert_same_states(model, twin, dtype)
    return streamer


CELLS = {
    "lstm": lambda **kw: L.LSTM(7, **kw),
    "gru_reset_after": lambda **kw: L.GRU(7, reset_after=True, **kw),
    "gru_reset_before": lambda **kw: L.GRU(7, reset_after=False, **kw),
    "simple_rnn": lambda **kw: L.SimpleRNN(7, **kw),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_matches_predict_on_batch(cell, dtype):
    def make():
        return [CELLS[cell](stateful=True, batch_input_shape=(1, None, F), dtype=dtype),
                L.Dense(4, activation="tanh", dtype=dtype), L.Dense(1, dtype=dtype)]
    _check_stream(*_twins(make), dtype)


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("options", [
    dict(use_bias=False),
    dict(activation="relu", go_backwards=True),
    dict(activation="hard_sigmoid", recurrent_activation="hard_sigmoid"),
    dict(activation=None, recurrent_activation="sigmoid"),
])
def test_cell_options(cell, options):
    options = dict(options)
    if cell == "simple_rnn":
        options.pop("recurrent_activation", None)

    def make():
        return [CELLS[cell](stateful=True, batch_input_shape=(1, None, F), dtype="float64",
                            **options), L.Dense(2, dtype="float64")]
    _check_stream(*_twins(make), "float64")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stacked_return_sequences_and_wrappers(dtype):
    """Sequence outputs: the step returns (1, 1, units) like predict_on_batch."""
    def make():
        return [crnn.Input(shape=(None, F), batch_size=1, dtype=dtype),
                L.Dense(6, activation="relu", dtype=dtype),
                L.LSTM(8, stateful=True, return_sequences=True, dtype=dtype),
                L.Dropout(0.5, dtype=dtype),
                L.GRU(5, stateful=True, return_sequences=True, dtype=dtype),
                L.Activation("sigmoid", dtype=dtype),
                L.TimeDistributed(L.Dense(3, activation="softmax", dtype=dtype)),
                L.Activation("linear", dtype=dtype)]
    streamer = _check_stream(*_twins(make), dtype)
    assert streamer.output_shape == (1, 1, 3)


def test_last_recurrent_layer_without_sequences_after_stacked():
    def make():
        return [L.SimpleRNN(4, stateful=True, return_sequences=True,
                            batch_input_shape=(1, None, F)),
                L.LSTM(6, stateful=True), L.Dense(3, activation="relu")]
    streamer = _check_stream(*_twins(make), "float32")
    assert streamer.output_shape == (1, 3)


# Every activation Dense/Activation accept (ALL_NAMES where the module splits them).
@pytest.mark.parametrize("activation", getattr(activations, "ALL_NAMES", activations.NAMES))
def test_dense_activations(activation):
    for dtype in ("float32", "float64"):
        def make(dtype=dtype):
            return [L.GRU(6, stateful=True, batch_input_shape=(1, None, F), dtype=dtype),
                    L.Dense(4, activation=activation, dtype=dtype),
                    L.Activation(activation, dtype=dtype)]
        _check_stream(*_twins(make), dtype, steps=6)


def test_one_lstm_step_by_hand():
    """Independent of both code paths: the Keras 3 LSTM equations in NumPy."""
    model = _build(lambda: [L.LSTM(3, stateful=True, batch_input_shape=(1, 1, 2),
                                   dtype="float64"), L.Dense(1, dtype="float64")])
    rng = np.random.default_rng(5)
    model.set_weights([rng.standard_normal(w.shape) for w in model.get_weights()])
    h0, c0 = rng.standard_normal((1, 3)), rng.standard_normal((1, 3))
    model.layers[0].reset_states([h0, c0])
    kernel, rec, bias, dk, db = model.get_weights()
    x = np.array([0.5, -1.5])
    z = x @ kernel + h0 @ rec + bias
    sig = lambda v: 1 / (1 + np.exp(-v))
    i, f, g, o = sig(z[:, :3]), sig(z[:, 3:6]), np.tanh(z[:, 6:9]), sig(z[:, 9:])
    c = f * c0 + i * g
    h = o * np.tanh(c)
    got = Streamer(model).step(x)
    np.testing.assert_allclose(got, h @ dk + db, rtol=1e-12)
    np.testing.assert_allclose(model.layers[0].states[0], h, rtol=1e-12)
    np.testing.assert_allclose(model.layers[0].states[1], c, rtol=1e-12)


def _lstm_model(dtype="float32", batch=1, stateful=True, features=F):
    return _twins(lambda: [L.LSTM(6, stateful=stateful, dtype=dtype,
                                  batch_input_shape=(batch, None, features)),
                           L.Dense(2, dtype=dtype)])


def test_states_shared_with_model_both_ways():
    """Streaming, predict_on_batch, reset_states and set_weights interleave freely."""
    model, twin = _lstm_model()
    streamer = Streamer(model)
    xs = _seq(10, "float32")
    for k, x in enumerate(xs):
        want = twin(x[None, None])
        if k % 3 == 1:
            got = model.predict_on_batch(x[None, None])
        else:
            got = streamer.step(x)
        np.testing.assert_allclose(got, want, **TOL["float32"])
        if k == 5:
            streamer.reset_states()
            twin.reset_states()
            assert all(not s.any() for s in model.layers[0].states)
        if k == 7:
            model.reset_states()
            twin.reset_states()
    _assert_same_states(model, twin, "float32")
    # A predict over several steps continues from the streamed state.
    seq = _seq(4, "float32", 9)[None]
    np.testing.assert_allclose(model.predict_on_batch(seq), twin(seq),
                               **TOL["float32"])
    # Weights are read in place: set_weights shows at the next step.
    new = [w * 0.5 for w in model.get_weights()]
    model.set_weights(new)
    twin.set_weights(new)
    np.testing.assert_allclose(streamer.step(xs[0]), twin(xs[0][None, None]),
                               **TOL["float32"])
    layer = model.layers[0]
    layer.reset_states([np.ones((1, 6)), np.full((1, 6), 2.0)])
    twin.layers[0].reset_states([np.ones((1, 6)), np.full((1, 6), 2.0)])
    np.testing.assert_allclose(streamer.step(xs[1]), twin(xs[1][None, None]),
                               **TOL["float32"])
    assert len(streamer.states) == 1 and len(streamer.states[0]) == 2


def test_training_shows_up_without_recreating():
    model, twin = _lstm_model()
    streamer = Streamer(model)
    model.compile("sgd", "mse")
    x, y = _seq(3, "float32")[None], np.ones((1, 2), "float32")
    model.train_on_batch(x, y)
    twin.set_weights(model.get_weights())
    for layer, other in zip(_recurrent(model), _recurrent(twin)):
        other.reset_states(layer.states)
    x = _seq(1, "float32", 4)[0]
    np.testing.assert_allclose(streamer.step(x), twin(x[None, None]),
                               **TOL["float32"])


@pytest.mark.parametrize("form", ["1d", "2d", "3d", "list", "float64", "int", "strided"])
def test_input_forms(form):
    model, twin = _lstm_model()
    streamer = Streamer(model)
    x = _seq(1, "float32")[0]
    if form == "int":
        x = np.arange(F) - 2
    inputs = {"1d": x, "2d": x[None], "3d": x[None, None], "list": x.tolist(),
              "float64": x.astype("float64"), "int": x,
              "strided": np.repeat(x, 2)[::2]}
    got = streamer.step(inputs[form])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, twin(np.asarray(x)[None, None]),
                               **TOL["float32"])


def test_returns_a_new_array_each_step():
    model, _ = _lstm_model()
    streamer = Streamer(model)
    first = streamer.step(np.ones(F, "float32"))
    kept = first.copy()
    streamer.step(np.zeros(F, "float32"))
    np.testing.assert_array_equal(first, kept)


@pytest.mark.parametrize("shape", [(F + 1,), (F - 1,), (2, F), (1, 2, F), (1, 1, 1, F),
                                   (), (0,), (F, 1), (1, F, 1)])
def test_wrong_input_shape(shape):
    model, _ = _lstm_model()
    streamer = Streamer(model)
    before = [s.copy() for s in model.layers[0].states]
    with pytest.raises(ValueError, match=r"x must be one timestep of shape \(5,\)") as info:
        streamer.step(np.zeros(shape, "float32"))
    assert f"received shape {shape}" in str(info.value)
    for a, b in zip(before, model.layers[0].states):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("value", [np.zeros(F, complex), np.array(["a"] * F),
                                   np.array([object()] * F)])
def test_wrong_input_dtype(value):
    streamer = Streamer(_lstm_model()[0])
    with pytest.raises(TypeError, match="x must be a real numeric array"):
        streamer.step(value)


def test_batch_size_not_one():
    with pytest.raises(ValueError, match=r"batch size 1.*batch size 2.*batch_input_shape=\(1"):
        Streamer(_lstm_model(batch=2)[0])


def test_stateless_recurrent_layer():
    with pytest.raises(ValueError, match=r"layer 'lstm\w*' has stateful=False.*stateful=True"):
        Streamer(_lstm_model(stateful=False)[0])


def test_unbuilt_model():
    model = crnn.Sequential([L.LSTM(3, stateful=True), L.Dense(1)])
    with pytest.raises(ValueError, match="not built"):
        Streamer(model)


def test_not_a_model():
    with pytest.raises(TypeError, match="Sequential"):
        Streamer(L.LSTM(3))


@pytest.mark.parametrize("make_layer, name", [
    (lambda: L.Masking(0.0), "Masking"),
    (lambda: L.Bidirectional(L.LSTM(3, return_sequences=True, stateful=True)),
     "Bidirectional"),
    (lambda: L.TimeDistributed(L.Masking(0.0)), "TimeDistributed"),
])
def test_unsupported_layer(make_layer, name):
    model = crnn.Sequential([L.LSTM(4, stateful=True, return_sequences=True,
                                    batch_input_shape=(1, None, F)), make_layer(),
                             L.Dense(1)])
    with pytest.raises(NotImplementedError, match=rf"\({name}\).*it supports LSTM"):
        Streamer(model)


def test_unsupported_dense_activation():
    model = crnn.Sequential([L.LSTM(4, stateful=True, batch_input_shape=(1, 1, F)),
                             L.Dense(2, name="head")])
    model.layers[1].activation = "not_compiled"     # a name the compiled chain lacks
    with pytest.raises(NotImplementedError, match="'head'.*activation 'not_compiled'"):
        Streamer(model)


def test_no_recurrent_layer():
    model = crnn.Sequential([L.Dense(3, batch_input_shape=(1, None, F))])
    with pytest.raises(ValueError, match="no recurrent layer"):
        Streamer(model)


def test_mixed_dtypes():
    model = crnn.Sequential([L.LSTM(3, stateful=True, batch_input_shape=(1, None, F)),
                             L.Dense(1, dtype="float64")])
    with pytest.raises(ValueError, match="one dtype"):
        Streamer(model)


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(0, 6), min_size=0, max_size=4),
       dtype=st.sampled_from(["float32", "float64", "int8", "bool", "float16"]),
       contiguous=st.booleans())
def test_any_input_either_works_or_raises(shape, dtype, contiguous):
    model, twin = _lstm_model()
    streamer = Streamer(model)
    rng = np.random.default_rng(0)
    x = (rng.standard_normal([2 * s for s in shape]) * 3).astype(dtype)
    x = x[tuple(slice(None, None, 2) for _ in shape)]
    if contiguous:
        x = np.ascontiguousarray(x)
    if x.size == F and x.shape in ((F,), (1, F), (1, 1, F)):
        want = twin(x.reshape(1, 1, F))
        np.testing.assert_allclose(streamer.step(x), want, rtol=1e-5, atol=1e-6)
    else:
        with pytest.raises(ValueError, match="x must be one timestep"):
            streamer.step(x)


def test_stateful_twins_follow_streamer_with_hard_states():
    """States set to large values keep the activations saturated but finite."""
    model, twin = _lstm_model("float64")
    big = [np.full((1, 6), 50.0), np.full((1, 6), -80.0)]
    model.layers[0].reset_states(big)
    twin.layers[0].reset_states(big)
    streamer = Streamer(model)
    for x in _seq(3, "float64") * 100:
        np.testing.assert_allclose(streamer.step(x), twin(x[None, None]),
                                   **TOL["float64"])


def test_declared_timesteps_other_than_one():
    """A model declared for 10-step windows streams step by step like a 1-step call."""
    def make():
        return [L.GRU(5, stateful=True, batch_input_shape=(1, 10, F)), L.Dense(2)]
    model, twin = _twins(make)
    streamer = Streamer(model)
    for x in _seq(4, "float32"):
        np.testing.assert_allclose(streamer.step(x), twin(x[None, None]),
                                   **TOL["float32"])
