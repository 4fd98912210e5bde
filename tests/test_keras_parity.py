"""Behaviours found to differ from Keras 3 by differential testing, and fixed.

Golden numbers come from Keras 3.15 (TensorFlow backend) through
``tests/parity_golden/make_parity_golden.py``; the rest is derived by hand. Keras itself is
not needed to run these tests.
"""

import os

import numpy as np
import pytest

import crnn
from crnn import layers as L

GOLDEN = np.load(os.path.join(os.path.dirname(__file__), "parity_golden", "parity_golden.npz"))


def _weights(prefix):
    keys = sorted((k for k in GOLDEN.files if k.startswith(prefix)),
                  key=lambda k: int(k[len(prefix):]))
    return [GOLDEN[k] for k in keys]


# ---------------------------------------------------------------- activations


@pytest.mark.parametrize("name", ["gelu", "leaky_relu", "relu6", "log_softmax", "mish",
                                  "hard_silu"])
def test_extra_keras_activations_match_keras_values_and_gradients(name):
    x, dy = GOLDEN["act_x"], GOLDEN["act_dy"]
    layer = L.Activation(name)
    y, cache = layer.forward(x)
    dx, _ = layer.backward(cache, dy)
    np.testing.assert_allclose(y, GOLDEN[f"act_{name}_y"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, GOLDEN[f"act_{name}_dx"], rtol=1e-4, atol=1e-5)
    assert y.dtype == np.float32


def test_activation_values_by_hand():
    z = np.array([-7.0, -1.0, 0.5, 7.0], "float64")
    relu6 = L.Activation("relu6", dtype="float64")(z)
    np.testing.assert_array_equal(relu6, [0.0, 0.0, 0.5, 6.0])
    leaky = L.Activation("leaky_relu", dtype="float64")(z)
    np.testing.assert_allclose(leaky, [-1.4, -0.2, 0.5, 7.0])      # slope 0.2, as Keras
    # hard_swish is Keras's alias of hard_silu: x * relu6(x + 3) / 6
    hs = L.Activation("hard_swish", dtype="float64")(z)
    np.testing.assert_allclose(hs, [0.0, -1.0 / 3.0, 0.5 * 3.5 / 6.0, 7.0])
    with pytest.raises(ValueError, match="gelu"):          # the message lists the names
        L.Activation("no_such_activation")


def test_dense_with_gelu_trains_through_fit():
    crnn.utils.set_random_seed(0)
    model = crnn.Sequential([L.Input((4, 2)), L.GRU(3), L.Dense(2, activation="gelu")])
    model.compile("sgd", "mse")
    x = np.linspace(-1, 1, 48, dtype="float32").reshape(6, 4, 2)
    y = np.ones((6, 2), "float32")
    history = model.fit(x, y, epochs=5, verbose=0, shuffle=False)
    assert history.history["loss"][-1] < history.history["loss"][0]


# ---------------------------------------------------------------- sequence length


def test_model_runs_on_other_sequence_lengths_like_keras():
    """Keras accepts any timesteps for a model declared with Input((6, 3))."""
    model = crnn.Sequential([L.Input((6, 3)), L.LSTM(4), L.Dense(2)])
    model.set_weights(_weights("ts_w"))
    np.testing.assert_allclose(model.predict(GOLDEN["ts_x4"], verbose=0), GOLDEN["ts_y4"],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model(GOLDEN["ts_x4"]), GOLDEN["ts_y4"], rtol=1e-5, atol=1e-6)
    model.compile("sgd", "mse")
    loss = model.evaluate(GOLDEN["ts_x4"], np.zeros((5, 2), "float32"), verbose=0)
    assert loss == pytest.approx(float(np.mean(GOLDEN["ts_y4"].astype("float64") ** 2)),
                                 rel=1e-5)
    # The features axis is still checked before any work.
    with pytest.raises(ValueError, match=r"expects inputs of shape \(None, 6, 3\)"):
        model.predict(np.zeros((2, 6, 2), "float32"), verbose=0)
    with pytest.raises(ValueError, match="expects inputs of shape"):
        model.predict(np.zeros((2, 6), "float32"), verbose=0)


def test_embedding_model_runs_on_other_sequence_lengths_like_keras():
    model = crnn.Sequential([L.Input((8,)), L.Embedding(7, 3, mask_zero=True), L.GRU(4)])
    model.set_weights(_weights("emb_w"))
    np.testing.assert_allclose(model.predict(GOLDEN["emb_tok5"], verbose=0),
                               GOLDEN["emb_y5"], rtol=1e-5, atol=1e-6)


def test_stateful_model_on_other_sequence_length_keeps_its_batch_rule():
    model = crnn.Sequential([L.LSTM(2, stateful=True, batch_input_shape=(2, 5, 1))])
    out = model.predict(np.ones((4, 3, 1), "float32"), verbose=0)
    assert out.shape == (4, 2)
    with pytest.raises(ValueError, match="not divisible by the stateful batch size 2"):
        model.predict(np.ones((3, 3, 1), "float32"), verbose=0)


# ---------------------------------------------------------------- building


def test_second_build_is_an_error_not_a_second_set_of_weights():
    for layer, shape in [(L.Dense(3), (None, 4)), (L.LSTM(2), (None, 3, 4)),
                         (L.Bidirectional(L.GRU(2)), (None, 3, 4)),
                         (L.Embedding(5, 2), (None, 3))]:
        layer.build(shape)
        n = len(layer.get_weights())
        with pytest.raises(ValueError, match="already built"):
            layer.build(shape)
        assert len(layer.get_weights()) == n


# ---------------------------------------------------------------- states


def test_keras3_reset_state_alias():
    layer = L.GRU(2, stateful=True)
    bi = L.Bidirectional(L.LSTM(2, stateful=True))
    x = np.ones((3, 4, 1), "float32")
    for lay in (layer, bi):
        lay.build(x.shape)
        first = lay(x)
        assert not np.allclose(lay(x), first)            # the state advanced
        lay.reset_state()
        np.testing.assert_array_equal(lay(x), first)


# ---------------------------------------------------------------- steps


def _small_model():
    model = crnn.Sequential([L.Input((3, 2)), L.SimpleRNN(2)])
    model.compile("sgd", "mse", metrics=["mae"])
    return model


def test_predict_steps_limits_the_batches_like_keras():
    model = _small_model()
    x = np.arange(24 * 6, dtype="float32").reshape(24, 3, 2) / 100
    full = model.predict(x, batch_size=8, verbose=0)
    part = model.predict(x, batch_size=8, steps=2, verbose=0)
    assert part.shape == (16, 2)
    np.testing.assert_array_equal(part, full[:16])
    # More steps than batches: all the data, as Keras (which warns that input ran out).
    assert model.predict(x, batch_size=8, steps=5, verbose=0).shape == (24, 2)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        model.predict(x, steps=0, verbose=0)


def test_evaluate_steps_limits_the_batches_like_keras():
    model = _small_model()
    x = np.arange(24 * 6, dtype="float32").reshape(24, 3, 2) / 100
    y = np.ones((24, 2), "float32")
    assert model.evaluate(x, y, batch_size=8, steps=1, verbose=0) == \
        model.evaluate(x[:8], y[:8], verbose=0)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        model.evaluate(x, y, steps=-1, verbose=0)


# ---------------------------------------------------------------- Keras configs


def _keras_configs():
    import json
    path = os.path.join(os.path.dirname(__file__), "parity_golden", "keras_configs.json")
    with open(path) as f:
        return json.load(f)


def test_sequential_from_a_keras_model_config_predicts_like_keras():
    model = crnn.Sequential.from_config(_keras_configs()["model"])
    assert [type(layer).__name__ for layer in model.layers] == \
        ["Masking", "LSTM", "Bidirectional", "Dropout", "Dense"]
    model.set_weights(_weights("cfg_w"))
    np.testing.assert_allclose(model.predict(GOLDEN["cfg_x"], verbose=0), GOLDEN["cfg_y"],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("class_name", ["LSTM", "GRU", "SimpleRNN", "Bidirectional",
                                        "TimeDistributed", "Embedding", "Masking", "Dropout",
                                        "Activation"])
def test_layer_from_a_keras_layer_config(class_name):
    keras_config = _keras_configs()[class_name]
    layer = getattr(L, class_name).from_config(keras_config)
    ours = layer.get_config()
    for key, value in keras_config.items():
        if key in ours and not isinstance(value, dict):
            assert ours[key] == value, key
    assert ours["dtype"] == "float32"


def test_keras_config_with_an_activity_regularizer_is_taken():
    config = dict(_keras_configs()["LSTM"])
    config["activity_regularizer"] = {"class_name": "L2", "config": {"l2": 0.01}}
    assert L.LSTM.from_config(config).activity_regularizer.l2 == 0.01
    config["activity_regularizer"] = {"class_name": "NoSuchRegularizer", "config": {}}
    with pytest.raises(ValueError, match="NoSuchRegularizer"):
        L.LSTM.from_config(config)
