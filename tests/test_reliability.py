"""A failed call changes nothing; broadcast views fail on their shape; builds are thread-safe.

Regression tests for issue 11 (items 1, 6 and 7; items 2-4 are in test_hostile_files.py),
and a property test: whatever exception ``fit``/``evaluate``/``predict``/``train_on_batch``/
``test_on_batch``/``set_weights``/``reset_states`` raise, the weights, the optimizer state
and the RNN states are bit-identical to before the call.
"""

import threading
import time
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crnn
from crnn import layers as L
from crnn import ops

# --------------------------------------------------------------------------- helpers


def _snapshot(model):
    """Bytes of everything a failed call must not touch."""
    weights = [w.tobytes() for w in model.weights]
    optimizer = [] if model.optimizer is None else \
        [np.asarray(a).tobytes() for a in model.optimizer.get_state()]
    states = [s.tobytes() for layer in model.layers for s in layer._state_arrays()]
    return weights, optimizer, states


def _stateful_model(seed=0):
    """The issue's model (stateful GRU, batch 2) plus a Bidirectional, trained one step."""
    crnn.utils.set_random_seed(seed)
    model = crnn.Sequential([
        L.GRU(5, stateful=True, return_sequences=True, batch_input_shape=(2, 3, 4)),
        L.Bidirectional(L.LSTM(3, stateful=True)),
        L.Dense(2),
    ])
    model.compile(crnn.optimizers.Adam(learning_rate=0.01), "mse", metrics=["mae"])
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, 4)).astype("float32")
    model.train_on_batch(x, rng.standard_normal((2, 2)).astype("float32"))
    model.predict(x, verbose=0)          # non-zero states
    return model


def _xy(n=4, features=4, outputs=2, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 3, features)).astype("float32"),
            rng.standard_normal((n, outputs)).astype("float32"))


# --------------------------------------------------------------------------- item 1: y


@pytest.mark.parametrize("call", ["evaluate", "fit", "train_on_batch", "test_on_batch"])
@pytest.mark.parametrize("y", [
    np.zeros((2, 3)),                                   # the example
    np.zeros((2, 2, 3)),
    np.zeros((2, 2), complex),
    np.array([["1", "2"], ["3", "4"]]),
    np.zeros((2, 2), "datetime64[s]"),
], ids=["wrong_width", "wrong_rank", "complex", "numeric_strings", "datetime"])
def test_bad_y_is_refused_before_states_move(call, y):
    crnn.utils.set_random_seed(0)
    model = crnn.Sequential([L.GRU(5, stateful=True, batch_input_shape=(2, 3, 4)), L.Dense(2)])
    model.compile("adam", "mse")
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype("float32")
    model.predict(x, verbose=0)
    before = _snapshot(model)
    kwargs = {"verbose": 0} if call in ("evaluate", "fit") else {}
    with pytest.raises((ValueError, TypeError), match="y"):
        getattr(model, call)(x, y, **kwargs)
    assert _snapshot(model) == before


def test_bad_validation_y_is_refused_before_the_first_step():
    model = _stateful_model()
    x, y = _xy()
    before = _snapshot(model)
    with pytest.raises(ValueError, match="validation_data y"):
        model.fit(x, y, validation_data=(x, np.zeros((4, 7))), verbose=0)
    assert _snapshot(model) == before


def test_sparse_labels_out_of_range_are_refused_before_training():
    crnn.utils.set_random_seed(0)
    model = crnn.Sequential([L.SimpleRNN(4, input_shape=(3, 2)), L.Dense(3)])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.ones((4, 3, 2), "float32")
    before = _snapshot(model)
    with pytest.raises(ValueError, match="y"):
        model.fit(x, np.array([0, 1, 2, 3]), verbose=0)
    assert _snapshot(model) == before
    model.fit(x, np.array([0, 1, 2, 1]), verbose=0)      # valid labels still train
    assert _snapshot(model) != before


def test_targets_that_keras_squeezes_are_still_accepted():
    crnn.utils.set_random_seed(0)
    model = crnn.Sequential([L.LSTM(3, input_shape=(4, 2)), L.Dense(1)])
    model.compile("sgd", "mse")
    x = np.ones((6, 4, 2), "float32")
    model.fit(x, np.ones(6), verbose=0)                  # (n,) for an (n, 1) output
    model.evaluate(x, np.ones((6, 1, 1)), verbose=0)
    seq = crnn.Sequential([L.LSTM(3, return_sequences=True, input_shape=(None, 2)),
                           L.Dense(1)])
    seq.compile("sgd", "mse")
    seq.fit(np.ones((2, 7, 2)), np.ones((2, 7, 1)), verbose=0)   # other timesteps than none
    with pytest.raises(ValueError, match=r"output of shape \(2, 7, 1\)"):
        seq.fit(np.ones((2, 7, 2)), np.ones((2, 6, 1)), verbose=0)


# --------------------------------------------------------------------------- item 1: set_weights


def _bad_last(kind, shape):
    return {
        "string": np.full(shape, "x"),
        "numeric_string": np.full(shape, "1.5"),
        "complex": np.ones(shape, complex),
        "datetime": np.zeros(shape, "datetime64[s]"),
        "timedelta": np.zeros(shape, "timedelta64[s]"),
        "object": np.empty(shape, object),
        "bytes": np.full(shape, b"1"),
    }[kind]


KINDS = ["string", "numeric_string", "complex", "datetime", "timedelta", "object", "bytes"]


@pytest.mark.parametrize("kind", KINDS)
def test_set_weights_with_a_bad_last_array_changes_nothing(kind):
    model = _stateful_model()
    values = [np.full(w.shape, 7.0, w.dtype) for w in model.weights]
    values[-1] = _bad_last(kind, values[-1].shape)
    before = _snapshot(model)
    with pytest.raises(TypeError, match=r"weight \d+ of model .*real numeric"):
        model.set_weights(values)
    assert _snapshot(model) == before
    layer = model.layers[1]
    values = [np.full(w.shape, 7.0, w.dtype) for w in layer.weights]
    values[-1] = _bad_last(kind, values[-1].shape)
    with pytest.raises(TypeError, match="real numeric"):
        layer.set_weights(values)
    assert _snapshot(model) == before


def test_set_weights_with_ragged_or_wrongly_shaped_last_array_changes_nothing():
    model = _stateful_model()
    before = _snapshot(model)
    values = [np.ones(w.shape, w.dtype) for w in model.weights]
    with pytest.raises(ValueError, match="must have shape"):
        model.set_weights(values[:-1] + [np.ones(values[-1].shape + (1,))])
    with pytest.raises(TypeError):
        model.set_weights(values[:-1] + [[[1.0], [1.0, 2.0]]])
    with pytest.raises(TypeError, match="list of arrays"):
        model.set_weights(np.ones(3))
    assert _snapshot(model) == before


def test_set_weights_is_all_or_nothing_even_when_a_cast_warning_is_an_error():
    model = _stateful_model()
    before = _snapshot(model)
    values = [np.zeros(w.shape, np.float64) for w in model.weights]
    values[-1] = np.full(values[-1].shape, 1e300)      # overflows float32: RuntimeWarning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning):
            model.set_weights(values)
    assert _snapshot(model) == before


def test_set_weights_still_converts_ints_bools_and_float64():
    layer = L.Dense(2)
    layer.build((None, 3))
    layer.set_weights([np.ones((3, 2), np.int64), np.array([True, False])])
    np.testing.assert_array_equal(layer.get_weights()[1], [1.0, 0.0])
    assert layer.kernel.dtype == np.float32


@pytest.mark.parametrize("kind", ["complex", "datetime", "numeric_string", "object"])
def test_reset_states_refuses_non_real_arrays_and_changes_nothing(kind):
    model = _stateful_model()
    before = _snapshot(model)
    gru, bidi = model.layers[0], model.layers[1]
    with pytest.raises(TypeError, match="real numeric"):
        gru.reset_states([_bad_last(kind, (2, 5))])
    good = [np.ones((2, 3), "float32")] * 3
    with pytest.raises(TypeError, match="real numeric"):
        bidi.reset_states(good + [_bad_last(kind, (2, 3))])
    with pytest.raises(ValueError, match="must list 4"):
        bidi.reset_states(good)
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        bidi.reset_states(good + [np.ones((2, 4))])
    assert _snapshot(model) == before


# --------------------------------------------------------------------------- item 1: batch sizes


@pytest.mark.parametrize("make", [
    lambda: L.LSTM(3, batch_input_shape=(2.5, 3, 4)),
    lambda: L.LSTM(3, batch_input_shape=(2.0, 3, 4)),
    lambda: L.LSTM(3, batch_input_shape=(True, 3, 4)),
    lambda: L.LSTM(3, input_shape=(3.5, 4)),
    lambda: L.LSTM(3, input_shape=(3, 4), batch_size=2.5),
    lambda: L.LSTM(3, input_shape=(3, 4), batch_size=True),
    lambda: crnn.Input(batch_shape=(2.5, 3, 4)),
    lambda: crnn.Input(shape=(3, 4), batch_size=2.5),
    lambda: crnn.Input(shape=(3, 4.0)),
    lambda: crnn.Input(shape="abc"),
], ids=["batch_float", "batch_integral_float", "batch_bool", "timesteps_float",
        "batch_size_float", "batch_size_bool", "input_batch_shape_float",
        "input_batch_size_float", "input_features_float", "input_shape_string"])
def test_non_integer_sizes_are_refused(make):
    with pytest.raises(ValueError, match="must be a positive int|must contain positive ints|"
                                         "tuple of ints"):
        make()


def test_numpy_integer_sizes_are_accepted():
    layer = L.LSTM(3, stateful=True, batch_input_shape=(np.int64(2), np.int32(3), 4))
    model = crnn.Sequential([layer])
    assert model.input_shape == (2, 3, 4)
    assert all(type(v) is int for v in model.input_shape)
    assert crnn.Input(shape=(3, 4), batch_size=np.int64(5)).batch_shape == (5, 3, 4)


# --------------------------------------------------------------------------- item 6: broadcast views

# Each view takes a few bytes, but a copy would need terabytes: a regression fails at once
# with MemoryError instead of a shape error (and never touches the memory).
HUGE = (10**6, 10**5)


def _view(shape, dtype="float32"):
    return np.broadcast_to(np.zeros((), dtype), shape)


@pytest.mark.parametrize("cell, gates, n_states", [("lstm", 4, 2), ("gru", 3, 1),
                                                   ("simple_rnn", 1, 1)])
def test_ops_check_broadcast_views_before_copying(cell, gates, n_states):
    op = getattr(ops, cell)
    units = 4
    kernel = np.zeros((3, gates * units), "float32")
    recurrent = np.zeros((units, gates * units), "float32")
    x = np.zeros((2, 5, 3), "float32")
    with pytest.raises(ValueError, match="kernel must have shape"):
        op(_view(HUGE + (7,)), kernel, recurrent)                 # x: wrong features
    with pytest.raises(ValueError, match="kernel must have shape"):
        op(x, _view((3, 10**12)), recurrent)
    with pytest.raises(ValueError, match="recurrent_kernel must have shape"):
        op(x, kernel, _view((units, 10**12)))
    with pytest.raises(ValueError, match="recurrent_kernel must be 2-D"):
        op(x, kernel, _view(HUGE + (4,)))
    state = [_view((10**12, units))] * n_states
    with pytest.raises(ValueError, match=r"initial_state\[0\] must have shape"):
        op(x, kernel, recurrent, initial_state=state)
    with pytest.raises(ValueError, match="mask must have shape"):
        op(x, kernel, recurrent, mask=_view(HUGE, bool))
    _, _, cache = op(x, kernel, recurrent, training=True)
    with pytest.raises(ValueError, match="d_outputs must have shape"):
        getattr(ops, cell + "_grad")(cache, _view(HUGE + (units,)))


def test_layers_and_models_check_broadcast_views_before_converting():
    crnn.utils.set_random_seed(0)
    lstm = L.LSTM(3)
    lstm.build((None, 5, 2))
    with pytest.raises(ValueError, match="expects input of shape"):
        lstm(_view(HUGE + (7,), "int64"))
    dense = L.Dense(2)
    dense.build((None, 4))
    with pytest.raises(ValueError, match="last axis 4"):
        dense(_view(HUGE + (7,), "int64"))
    wrapped = L.TimeDistributed(L.Dense(2))
    wrapped.build((None, 5, 4))
    with pytest.raises(ValueError, match="expects input of shape"):
        wrapped(_view(HUGE + (7,)))
    model = crnn.Sequential([L.LSTM(3, input_shape=(5, 2)), L.Dense(1)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="expects inputs of shape"):
        model.predict(_view(HUGE + (7,), "int64"), verbose=0)
    x = np.ones((4, 5, 2), "float32")
    with pytest.raises(ValueError, match="y"):
        model.fit(x, _view((4, 10**12)), verbose=0)
    with pytest.raises(ValueError, match="y"):
        model.evaluate(x, _view((4, 10**6, 10**6)), verbose=0)


# --------------------------------------------------------------------------- item 7: threads


def test_concurrent_first_predicts_build_the_model_once():
    calls = []

    def slow_init(shape, dtype="float32"):
        calls.append(shape)
        time.sleep(0.05)             # widen the window in which a second build could start
        return np.full(shape, 0.1, dtype)

    model = crnn.Sequential([L.LSTM(4, kernel_initializer=slow_init), L.Dense(1)])
    x = np.ones((3, 5, 2), "float32")
    results, errors = [None] * 4, []
    barrier = threading.Barrier(4)

    def run(k):
        try:
            barrier.wait()
            results[k] = model.predict(x, verbose=0)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(calls) == 1
    assert [len(layer.weights) for layer in model.layers] == [3, 2]
    final = model.predict(x, verbose=0)
    for result in results:
        np.testing.assert_array_equal(result, final)


def test_concurrent_first_layer_calls_build_the_layer_once():
    calls = []

    def slow_init(shape, dtype="float32"):
        calls.append(shape)
        time.sleep(0.05)
        return np.full(shape, 0.1, dtype)

    layer = L.Dense(3, kernel_initializer=slow_init)
    barrier = threading.Barrier(3)
    outputs = []

    def run():
        barrier.wait()
        outputs.append(layer(np.ones((2, 4), "float32")))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and len(layer.weights) == 2 and len(outputs) == 3


# --------------------------------------------------------------------------- property test


_DTYPES = ["float32", "float64", "int32", "bool", "complex64", "<U3", "datetime64[s]"]


@st.composite
def _arrays(draw, good_shape):
    shape = list(good_shape)
    change = draw(st.sampled_from(["none", "count", "axis", "rank", "empty"]))
    if change == "count":
        shape[0] = draw(st.sampled_from([1, 3, 5, 6]))
    elif change == "axis":
        axis = draw(st.integers(1, len(shape) - 1))
        shape[axis] = draw(st.sampled_from([1, 3, 7]))
    elif change == "rank":
        shape = shape[:-1] if draw(st.booleans()) else shape + [2]
    elif change == "empty":
        shape[0] = 0
    dtype = draw(st.sampled_from(_DTYPES))
    values = np.random.default_rng(draw(st.integers(0, 3))).standard_normal(shape)
    if dtype.startswith("<U"):
        return values.round(1).astype(dtype)
    if dtype.startswith("datetime"):
        return values.astype("int64").astype(dtype)
    return values.astype(dtype)


_BATCH = st.sampled_from([None, 2, 3, 0, -1, 2.5, True, "2"])


@st.composite
def _calls(draw):
    what = draw(st.sampled_from(["fit", "evaluate", "predict", "train_on_batch",
                                 "test_on_batch", "set_weights", "layer_set_weights",
                                 "reset_states"]))
    if what in ("fit", "evaluate", "predict"):
        n = draw(st.sampled_from([2, 4]))
        x = draw(_arrays((n, 3, 4)))
        kwargs = {"batch_size": draw(_BATCH), "verbose": 0}
        args = [x]
        if what != "predict":
            args.append(draw(_arrays((n, 2))))
        else:
            kwargs["steps"] = draw(st.sampled_from([None, 1, 0, -1, 1.5]))
        if what == "fit":
            kwargs["epochs"] = draw(st.sampled_from([1, 2, -1, 1.5, None]))
            kwargs["validation_split"] = draw(st.sampled_from([0.0, 0.5, 0.25, 1.0, -0.1]))
            if draw(st.booleans()):
                kwargs["validation_data"] = (draw(_arrays((2, 3, 4))), draw(_arrays((2, 2))))
        return what, args, kwargs
    if what in ("train_on_batch", "test_on_batch"):
        return what, [draw(_arrays((2, 3, 4))), draw(_arrays((2, 2)))], {}
    if what in ("set_weights", "layer_set_weights"):
        shapes = [(4, 15), (5, 15), (2, 15)] if what == "layer_set_weights" else None
        return what, [draw(st.integers(0, 20)), draw(st.sampled_from(
            ["shape", "dtype", "count", "ragged", "ok"])), draw(st.sampled_from(_DTYPES)),
            shapes], {}
    return what, [draw(st.integers(0, 1)), draw(_arrays((2, 3))), draw(st.integers(0, 3))], {}


def _weights_list(targets, index, change, dtype):
    values = [np.full(w.shape, 0.25, w.dtype) for w in targets]
    index %= len(values)
    if change == "shape":
        values[index] = np.ones(values[index].shape + (2,))
    elif change == "dtype":
        values[index] = np.ones(values[index].shape).astype(dtype)
    elif change == "count":
        values = values[:-1]
    elif change == "ragged":
        values[index] = [[1.0], [1.0, 2.0]]
    return values


def _run(model, what, args, kwargs):
    if what in ("set_weights", "layer_set_weights"):
        index, change, dtype, _ = args
        target = model if what == "set_weights" else model.layers[0]
        target.set_weights(_weights_list(target.weights, index, change, dtype))
    elif what == "reset_states":
        which, array, position = args
        layer = model.layers[which]
        n = 1 if which == 0 else 4
        good = [np.full((2, 5 if which == 0 else 3), 0.5, "float32") for _ in range(n)]
        good[position % n] = array
        layer.reset_states(good)
    else:
        getattr(model, what)(*args, **kwargs)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(call=_calls())
def test_any_failed_call_leaves_weights_optimizer_and_states_bit_identical(call):
    what, args, kwargs = call
    model = _stateful_model()
    before = _snapshot(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _run(model, what, args, kwargs)
        except (ValueError, TypeError, RuntimeError, NotImplementedError, AttributeError):
            assert _snapshot(model) == before, (what, kwargs)


@pytest.mark.parametrize("call", ["train_on_batch", "test_on_batch"])
def test_one_batch_step_that_fails_inside_puts_the_states_back(call):
    # Labels out of range are found by the loss after the forward pass has moved the
    # states: the one-batch step is all or nothing.
    crnn.utils.set_random_seed(0)
    model = crnn.Sequential([L.GRU(4, stateful=True, batch_input_shape=(2, 3, 2)),
                             L.Dense(3)])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.ones((2, 3, 2), "float32")
    model.train_on_batch(x, np.array([0, 2]))
    before = _snapshot(model)
    with pytest.raises(ValueError):
        getattr(model, call)(x, np.array([0, 7]))
    assert _snapshot(model) == before
    getattr(model, call)(x, np.array([0, 1]))
    assert _snapshot(model) != before
