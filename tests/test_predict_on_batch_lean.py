"""predict_on_batch's one-step path (a stateful batch-1 model, a (1, 1, features) array of
the model's dtype runs as one compiled step): same results as the layer stack, same states
afterwards, and every other input, including every bad one, through the ordinary checks.
The layer stack is the reference here (model(x)); it is checked against golden data
elsewhere."""

import numpy as np
import pytest

import crnn
from crnn.layers import GRU, LSTM, Dense, Dropout, Embedding, SimpleRNN, TimeDistributed

TOL = {"float32": dict(rtol=2e-5, atol=2e-6), "float64": dict(rtol=1e-12, atol=1e-13)}


def _pair(dtype="float32", cell=LSTM, features=3, timesteps=1, head=None):
    def make():
        crnn.utils.set_random_seed(3)
        layers = [cell(16, stateful=True, batch_input_shape=(1, timesteps, features), dtype=dtype)]
        layers += head() if head else [Dense(1, dtype=dtype)]
        return crnn.Sequential(layers)
    return make(), make()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell", [LSTM, GRU, SimpleRNN])
def test_one_step_matches_the_layer_stack_and_moves_the_same_states(dtype, cell):
    model, twin = _pair(dtype, cell)
    rng = np.random.default_rng(0)
    for _ in range(6):
        x = rng.standard_normal((1, 1, 3)).astype(dtype)
        got, want = model.predict_on_batch(x), twin(x)
        assert got.shape == want.shape == (1, 1) and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, **TOL[dtype])
        for a, b in zip(model.layers[0].states, twin.layers[0].states):
            np.testing.assert_allclose(a, b, **TOL[dtype])
    assert model._one_step() is not None          # the lean path was taken


def test_sequence_heads_and_declared_timesteps_other_than_one():
    def head():
        return [Dropout(0.5), TimeDistributed(Dense(2))]
    crnn.utils.set_random_seed(3)
    model = crnn.Sequential([LSTM(8, stateful=True, return_sequences=True,
                                  batch_input_shape=(1, 12, 2)), *head()])
    twin = crnn.Sequential.from_config(model.get_config())
    twin.set_weights(model.get_weights())
    x = np.linspace(-1, 1, 2, dtype="float32").reshape(1, 1, 2)
    for _ in range(3):
        got, want = model.predict_on_batch(x), twin(x)
        assert got.shape == want.shape == (1, 1, 2)
        np.testing.assert_allclose(got, want, **TOL["float32"])


def test_other_inputs_take_the_layer_stack_and_give_its_results():
    model, twin = _pair()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 1, 3))                                  # float64 input
    np.testing.assert_allclose(model.predict_on_batch(x), twin(x), **TOL["float32"])
    x = rng.standard_normal((1, 4, 3)).astype("float32")                # several timesteps
    np.testing.assert_allclose(model.predict_on_batch(x), twin(x), **TOL["float32"])
    x = np.asfortranarray(rng.standard_normal((1, 1, 3)).astype("float32")[:, :, ::-1])
    np.testing.assert_allclose(model.predict_on_batch(x), twin(x), **TOL["float32"])
    x = [[[0.1, 0.2, 0.3]]]                                              # a list
    np.testing.assert_allclose(model.predict_on_batch(x), twin(x), **TOL["float32"])


@pytest.mark.parametrize("bad, error, match", [
    (np.ones((1, 1, 4), "float32"), ValueError, "expects inputs of shape"),
    (np.ones((2, 1, 3), "float32"), ValueError, "2 samples"),
    (np.ones((1, 1, 3), "complex64"), TypeError, "real numeric"),
    (np.array([[["a", "b", "c"]]]), TypeError, "real numeric"),
])
def test_bad_inputs_raise_and_change_no_state(bad, error, match):
    model, _ = _pair()
    model.predict_on_batch(np.ones((1, 1, 3), "float32"))                # states non-zero
    before = [s.copy() for s in model.layers[0].states]
    with pytest.raises(error, match=match):
        model.predict_on_batch(bad)
    for a, b in zip(before, model.layers[0].states):
        np.testing.assert_array_equal(a, b)


def test_a_new_layer_or_a_replaced_weight_makes_a_new_step():
    model, twin = _pair()
    x = np.full((1, 1, 3), 0.5, "float32")
    first = model._one_step()
    model.predict_on_batch(x), twin(x)
    model.layers[1].kernel = model.layers[1].kernel * 2        # a new array object
    twin.layers[1].kernel = twin.layers[1].kernel * 2
    np.testing.assert_allclose(model.predict_on_batch(x), twin(x), **TOL["float32"])
    assert model._one_step() is not first
    model.add(Dense(2))
    twin.add(Dense(2))
    twin.layers[2].set_weights(model.layers[2].get_weights())
    got = model.predict_on_batch(x)
    assert got.shape == (1, 2)
    np.testing.assert_allclose(got, twin(x), **TOL["float32"])
    model.pop()
    twin.pop()
    np.testing.assert_allclose(model.predict_on_batch(x), twin(x), **TOL["float32"])


def test_weights_written_in_place_are_seen_at_the_next_step():
    model, twin = _pair()
    x = np.full((1, 1, 3), 0.5, "float32")
    model.predict_on_batch(x), twin(x)
    weights = [w * 0.5 for w in model.get_weights()]
    model.set_weights(weights)
    twin.set_weights(weights)
    np.testing.assert_allclose(model.predict_on_batch(x), twin(x), **TOL["float32"])


def test_models_the_step_cannot_run_use_the_layer_stack():
    crnn.utils.set_random_seed(0)
    stateless = crnn.Sequential([LSTM(4, batch_input_shape=(1, 1, 2)), Dense(1)])
    assert stateless._one_step() is None
    embedded = crnn.Sequential([Embedding(5, 3, batch_input_shape=(1, 1)),
                                LSTM(4, stateful=True), Dense(1)])
    assert embedded._one_step() is None
    x = np.ones((1, 1, 2), "float32")
    np.testing.assert_array_equal(stateless.predict_on_batch(x), stateless(x))
    first = embedded.predict_on_batch(np.ones((1, 1)))
    embedded.reset_states()
    np.testing.assert_array_equal(first, embedded(np.ones((1, 1))))
