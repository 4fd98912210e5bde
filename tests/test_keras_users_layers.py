"""RepeatVector, Flatten, Reshape, 1-D pooling, LayerNormalization, BatchNormalization and
SpatialDropout1D: Keras 3 outputs (tests/keras_users_golden/make_layers.py), the shared layer
checks (shapes, weights, config round trip, finite-difference gradients in float64), Keras
configs accepted, masks, and use in Sequential models."""

import json
import os

import numpy as np
import pytest

import crnn
from crnn import layers as L
from layer_test_utils import check_gradients, run_layer_test

GOLDEN = os.path.join(os.path.dirname(__file__), "keras_users_golden", "layers.npz")
with np.load(GOLDEN) as _data:
    CASES = json.loads(str(_data["__meta__"]))["cases"]


def _make(case, dtype="float32"):
    return getattr(L, case["class_name"])(dtype=dtype, **case["config"])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_outputs_match_keras(case):
    name = case["name"]
    with np.load(GOLDEN) as data:
        x = data[f"{name}/x"]
        layer = _make(case)
        layer(x)
        layer.set_weights([data[f"{name}/w{k}"] for k in range(case["num_weights"])])
        np.testing.assert_allclose(layer(x), data[f"{name}/y"], rtol=1e-5, atol=1e-6)
        if case.get("masked"):
            np.testing.assert_allclose(layer(x, mask=data[f"{name}/mask"]), data[f"{name}/y_masked"],
                                       rtol=1e-5, atol=1e-6)
        if case["class_name"] == "BatchNormalization":
            np.testing.assert_allclose(layer(x, training=True), data[f"{name}/y_train"], rtol=1e-5, atol=1e-5)
            for k, w in enumerate(layer.get_weights()):
                np.testing.assert_allclose(w, data[f"{name}/after{k}"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_keras_config_builds_the_same_layer(case):
    layer = getattr(L, case["class_name"]).from_config(case["keras_config"])
    reference = _make(case)
    for key, value in reference.get_config().items():
        if key != "name":
            assert layer.get_config()[key] == value, key


@pytest.mark.parametrize("make, shape, out_shape, n_weights", [
    (lambda dtype: L.RepeatVector(3, dtype=dtype), (2, 4), (2, 3, 4), 0),
    (lambda dtype: L.Flatten(dtype=dtype), (2, 3, 4), (2, 12), 0),
    (lambda dtype: L.Reshape((-1, 2), dtype=dtype), (2, 3, 4), (2, 6, 2), 0),
    (lambda dtype: L.GlobalAveragePooling1D(dtype=dtype), (2, 5, 3), (2, 3), 0),
    (lambda dtype: L.GlobalMaxPooling1D(keepdims=True, dtype=dtype), (2, 5, 3), (2, 1, 3), 0),
    (lambda dtype: L.MaxPooling1D(3, strides=2, padding="same", dtype=dtype), (2, 8, 3), (2, 4, 3), 0),
    (lambda dtype: L.AveragePooling1D(2, dtype=dtype), (2, 7, 3), (2, 3, 3), 0),
    (lambda dtype: L.AveragePooling1D(3, strides=2, padding="same", dtype=dtype), (2, 8, 3), (2, 4, 3), 0),
    (lambda dtype: L.LayerNormalization(dtype=dtype), (2, 5, 4), (2, 5, 4), 2),
])
def test_shared_layer_checks(make, shape, out_shape, n_weights):
    run_layer_test(make, shape, out_shape, n_weights)


def test_spatial_dropout_drops_whole_features():
    # Training output differs from inference by design: the shared checks without gradients.
    run_layer_test(lambda dtype: L.SpatialDropout1D(0.3, seed=1, dtype=dtype), (2, 5, 4), (2, 5, 4), 0,
                   grad_check=False)
    layer = L.SpatialDropout1D(0.5, seed=3)
    y = layer(np.ones((64, 5, 8)), training=True)
    assert set(np.unique(y)) == {0.0, 2.0}
    assert (y == y[:, :1, :]).all()
    assert 0.35 < (y[:, 0, :] == 0).mean() < 0.65
    x = np.ones((2, 5, 8), "float32")
    out, cache = layer.forward(x, training=True)
    dx, _ = layer.backward(cache, np.ones_like(out))
    np.testing.assert_array_equal(dx, out)
    np.testing.assert_array_equal(layer(x), x)


def test_batch_normalization_shared_checks_and_training_gradient():
    run_layer_test(lambda dtype: L.BatchNormalization(dtype=dtype), (6, 3), (6, 3), 4,
                   expected_num_params=12, grad_check=False)
    rng = np.random.default_rng(0)
    for mask in (None, rng.random((4, 5)) > 0.3):
        layer = L.BatchNormalization(dtype="float64")
        x = rng.standard_normal((4, 5, 3))
        layer(x)
        layer.set_weights([rng.uniform(0.5, 1.5, 3), rng.standard_normal(3), np.zeros(3), np.ones(3)])
        r = rng.standard_normal((4, 5, 3))
        y, cache = layer.forward(x, training=True, mask=mask)
        dx, grads = layer.backward(cache, r)

        def f(layer=layer, x=x, r=r, mask=mask):
            return float(np.sum(r * layer.forward(x, training=True, mask=mask)[0]))

        for target, grad in [(x, dx), (layer.gamma, grads[0]), (layer.beta, grads[1])]:
            flat, g = target.reshape(-1), grad.reshape(-1)
            for i in range(0, flat.size, max(1, flat.size // 7)):
                saved = flat[i]
                flat[i] = saved + 1e-6
                plus = f()
                flat[i] = saved - 1e-6
                minus = f()
                flat[i] = saved
                assert abs((plus - minus) / 2e-6 - g[i]) < 1e-6 + 1e-5 * abs(g[i])


def test_masked_global_average_pooling_gradient_and_mask_stop():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5, 2))
    mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 1, 1, 0]], dtype=bool)
    check_gradients(L.GlobalAveragePooling1D(dtype="float64"), x, mask=mask)
    assert L.GlobalAveragePooling1D().compute_mask(x, mask) is None


def test_models_built_from_the_new_layers_train():
    crnn.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 6, 2)).astype("float32")
    autoencoder = crnn.Sequential([L.Input(shape=(6, 2)), L.LSTM(8), L.RepeatVector(6),
                                   L.LSTM(8, return_sequences=True), L.TimeDistributed(L.Dense(2))])
    autoencoder.compile("adam", "mse")
    h = autoencoder.fit(x, x, epochs=5, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    tokens = rng.integers(0, 6, (16, 7))
    classifier = crnn.Sequential([L.Input(shape=(7,), dtype="int64"), L.Embedding(6, 4, mask_zero=True),
                                  L.LayerNormalization(), L.LSTM(5, return_sequences=True),
                                  L.GlobalAveragePooling1D(), L.Dense(1, activation="sigmoid")])
    classifier.compile("adam", "binary_crossentropy")
    classifier.fit(tokens, (tokens.sum(axis=1) > 20).astype("float32")[:, None], epochs=2, verbose=0)
    cnn_lstm = crnn.Sequential([L.Input(shape=(8, 2)), L.MaxPooling1D(2), L.SpatialDropout1D(0.1),
                                L.BatchNormalization(), L.LSTM(4), L.Flatten(), L.Reshape((2, 2)),
                                L.Flatten(), L.Dense(1)])
    cnn_lstm.compile("adam", "mse")
    cnn_lstm.fit(rng.standard_normal((8, 8, 2)), rng.standard_normal((8, 1)), epochs=2, verbose=0)
    assert cnn_lstm.predict(rng.standard_normal((3, 8, 2)), verbose=0).shape == (3, 1)


@pytest.mark.parametrize("make, match", [
    (lambda: L.RepeatVector(0), "n must be a positive int"),
    (lambda: L.Reshape((0, 2)), "target_shape"),
    (lambda: L.Reshape((-1, -1)), "target_shape"),
    (lambda: L.MaxPooling1D(2, padding="causal"), "padding"),
    (lambda: L.LayerNormalization(axis=1), "axis"),
    (lambda: L.BatchNormalization(momentum=2.0), "momentum"),
    (lambda: L.SpatialDropout1D(1.0), "rate"),
    (lambda: L.Flatten(data_format="channels_first"), "data_format"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_shape_errors_name_the_layer():
    with pytest.raises(ValueError, match="RepeatVector"):
        L.RepeatVector(2)(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="total size"):
        L.Reshape((5,))(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="fewer than pool_size"):
        L.MaxPooling1D(4)(np.ones((1, 3, 2)))


@pytest.mark.parametrize("kwargs, shape, out_shape", [
    ({"filters": 4, "kernel_size": 3}, (2, 9, 3), (2, 7, 4)),
    ({"filters": 3, "kernel_size": 4, "strides": 2, "padding": "same", "activation": "tanh"}, (2, 9, 2),
     (2, 5, 3)),
    ({"filters": 2, "kernel_size": 3, "padding": "causal", "dilation_rate": 2}, (3, 10, 3), (3, 10, 2)),
    ({"filters": 3, "kernel_size": 2, "strides": 3, "use_bias": False}, (2, 8, 2), (2, 3, 3)),
])
def test_conv1d_shared_checks_and_gradients(kwargs, shape, out_shape):
    n_weights = 2 if kwargs.get("use_bias", True) else 1
    run_layer_test(lambda dtype: L.Conv1D(dtype=dtype, **kwargs), shape, out_shape, n_weights)


def test_conv1d_causal_output_ignores_the_future():
    layer = L.Conv1D(2, 3, padding="causal", dilation_rate=2, dtype="float64")
    x = np.random.default_rng(0).standard_normal((1, 12, 2))
    y = layer(x)
    x2 = x.copy()
    x2[:, 7:] += 10.0
    np.testing.assert_array_equal(layer(x2)[:, :7], y[:, :7])


def test_conv1d_kernel_matches_a_numpy_reference_in_both_dtypes():
    from crnn._kernels import _conv1d
    from crnn.layers.convolutional import conv1d_geometry

    rng = np.random.default_rng(3)
    for dtype, tol in (("float32", 1e-5), ("float64", 1e-12)):
        x = rng.standard_normal((3, 11, 4)).astype(dtype)
        w = rng.standard_normal((3 * 4, 5)).astype(dtype)
        t_out, pad = conv1d_geometry(11, 3, 2, "same", 1)
        y, cols = _conv1d.conv1d_forward(x, w, t_out, 3, 2, 1, pad)
        ref = np.zeros((3, t_out, 5))
        for t in range(t_out):
            for j in range(3):
                p = t * 2 + j - pad
                if 0 <= p < 11:
                    ref[:, t] += x[:, p].astype(float) @ w[j * 4:(j + 1) * 4].astype(float)
        np.testing.assert_allclose(y.reshape(3, t_out, 5), ref, rtol=tol, atol=tol)
        assert y.dtype == np.dtype(dtype)


def test_conv1d_rejects_bad_arguments():
    for kwargs, match in [({"padding": "full"}, "padding"), ({"strides": 2, "dilation_rate": 2}, "both"),
                          ({"groups": 2}, "groups"), ({"activity_regularizer": "l3"}, "l3")]:
        with pytest.raises((ValueError, NotImplementedError), match=match):
            L.Conv1D(2, 3, **kwargs)
    with pytest.raises(ValueError, match="fewer than the kernel"):
        L.Conv1D(2, 5)(np.ones((1, 3, 2)))
