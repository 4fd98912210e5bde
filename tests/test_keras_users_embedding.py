"""Embedding's default sparse gradient: an Embedding -> (Bi)LSTM -> Dense classifier trained
with train_on_batch matches Keras 3 on TensorFlow (per-occurrence IndexedSlices rows), from
tests/keras_users_golden/make_embedding.py; sparse_gradient=False keeps the dense
(summed) behaviour of Keras on JAX/PyTorch."""

import json
import os

import numpy as np
import pytest

import crnn
from crnn import layers as L
from crnn import optimizers

GOLDEN = os.path.join(os.path.dirname(__file__), "keras_users_golden", "embedding.npz")
with np.load(GOLDEN) as _data:
    META = json.loads(str(_data["__meta__"]))


def _model(arch, sparse_gradient=True):
    rec = L.LSTM(3) if arch == "lstm" else L.Bidirectional(L.LSTM(2))
    return crnn.Sequential([L.Input(shape=(7,), dtype="int64"),
                            L.Embedding(9, 3, mask_zero=True, sparse_gradient=sparse_gradient),
                            rec, L.Dense(1, activation="sigmoid")])


def _run(case, data, sparse_gradient=True):
    name = case["name"]
    model = _model(case["architecture"], sparse_gradient)
    model.set_weights([data[f"{name}/w/{k}"] for k in range(case["num_weights"])])
    model.compile(getattr(optimizers, case["optimizer"])(**case["config"]), "binary_crossentropy")
    return name, model


@pytest.mark.parametrize("case", META["cases"], ids=lambda c: c["name"])
def test_training_matches_keras_on_tensorflow(case):
    with np.load(GOLDEN) as data:
        name, model = _run(case, data)
        for step in range(3):
            loss = model.train_on_batch(data[f"{name}/x{step}"], data[f"{name}/y{step}"])
            np.testing.assert_allclose(loss, data[f"{name}/loss"][step], rtol=2e-5, atol=1e-6)
            for k, w in enumerate(model.get_weights()):
                np.testing.assert_allclose(w, data[f"{name}/step{step}/{k}"], rtol=1e-4, atol=2e-6,
                                           err_msg=f"{name} step {step} weight {k}")


@pytest.mark.parametrize("name", ["adam", "nadam"])
def test_dense_option_differs_from_keras_on_tensorflow(name):
    # Guards the default: summing the rows first gives other embeddings.
    case = next(c for c in META["cases"] if c["name"] == name)
    with np.load(GOLDEN) as data:
        _, model = _run(case, data, sparse_gradient=False)
        model.train_on_batch(data[f"{name}/x0"], data[f"{name}/y0"])
        assert not np.allclose(model.get_weights()[0], data[f"{name}/step0/0"], rtol=1e-4, atol=2e-6)


def test_embedding_gradient_types_and_config():
    layer = L.Embedding(5, 2)
    x = np.array([[1, 1, 3]])
    layer(x)
    out, cache = layer.forward(x)
    _, grads = layer.backward(cache, np.ones_like(out))
    assert isinstance(grads[0], optimizers.IndexedSlices)
    np.testing.assert_array_equal(grads[0].to_dense()[1], [2.0, 2.0])
    assert "sparse_gradient" not in layer.get_config()
    dense = L.Embedding(5, 2, sparse_gradient=False)
    dense(x)
    out, cache = dense.forward(x)
    _, grads = dense.backward(cache, np.ones_like(out))
    assert isinstance(grads[0], np.ndarray) and grads[0][1].tolist() == [2.0, 2.0]
    assert L.Embedding.from_config(dense.get_config()).sparse_gradient is False
    with pytest.raises(ValueError, match="sparse_gradient"):
        L.Embedding(5, 2, sparse_gradient="yes")
