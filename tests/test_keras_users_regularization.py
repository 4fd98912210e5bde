"""Regularizers and constraints against Keras 3 on TensorFlow
(tests/keras_users_golden/make_regularization.py): penalties, gradients, projections, and
training with them (penalty in the reported loss, constraints after each update), the models
rebuilt from Keras's own configs."""

import json
import os

import numpy as np
import pytest

import crnn
from crnn import constraints, regularizers
from crnn import layers as L

GOLDEN = os.path.join(os.path.dirname(__file__), "keras_users_golden", "regularization.npz")
with np.load(GOLDEN) as _data:
    META = json.loads(str(_data["__meta__"]))


@pytest.mark.parametrize("case", META["regularizers"], ids=lambda c: c["name"])
def test_regularizer_value_and_gradient_match_keras(case):
    reg = regularizers.deserialize({"class_name": case["class_name"], "config": case["config"]})
    with np.load(GOLDEN) as data:
        w = data["w"]
        assert reg(w) == pytest.approx(float(data[f"reg/{case['name']}/value"]), rel=1e-6)
        np.testing.assert_allclose(reg.gradient(w), data[f"reg/{case['name']}/grad"], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("case", META["constraints"], ids=lambda c: c["name"])
def test_constraint_matches_keras(case):
    con = constraints.deserialize({"class_name": case["class_name"], "config": case["config"]})
    with np.load(GOLDEN) as data:
        np.testing.assert_allclose(con(data["w"]), data[f"con/{case['name']}"], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("case", META["models"], ids=lambda c: c["name"])
def test_training_with_regularizers_and_constraints_matches_keras(case):
    name = case["name"]
    model = crnn.Sequential.from_config(case["config"])
    with np.load(GOLDEN) as data:
        model.set_weights([data[f"{name}/w{k}"] for k in range(case["num_weights"])])
        model.compile(crnn.optimizers.get({"class_name": case["optimizer"], "config": {"learning_rate": 0.05}}),
                      case["loss"])
        for step in range(2):
            loss = model.train_on_batch(data[f"{name}/x{step}"], data[f"{name}/y{step}"])
            np.testing.assert_allclose(loss, data[f"{name}/loss{step}"], rtol=2e-5, atol=1e-6)
            for k, w in enumerate(model.get_weights()):
                np.testing.assert_allclose(w, data[f"{name}/step{step}/{k}"], rtol=1e-4, atol=2e-6,
                                           err_msg=f"{name} step {step} weight {k}")
        np.testing.assert_allclose(model.evaluate(data[f"{name}/x1"], data[f"{name}/y1"], verbose=0),
                                   data[f"{name}/eval"], rtol=2e-5, atol=1e-6)


def test_configs_round_trip_in_keras_form():
    layer = L.LSTM(3, kernel_regularizer="l1_l2", recurrent_constraint=constraints.MaxNorm(1.5, axis=1))
    config = layer.get_config()
    assert config["kernel_regularizer"]["module"] == "keras.regularizers"
    assert config["recurrent_constraint"] == {"module": "keras.constraints", "class_name": "MaxNorm",
                                              "config": {"max_value": 1.5, "axis": 1},
                                              "registered_name": None}
    assert L.LSTM.from_config(config).get_config() == config


def test_frozen_layers_carry_no_penalty():
    crnn.utils.set_random_seed(0)
    model = crnn.Sequential([L.Input(shape=(3,)), L.Dense(2, kernel_regularizer=regularizers.L2(10.0)),
                             L.Dense(1)])
    model.compile("sgd", "mse")
    x, y = np.ones((4, 3)), np.zeros((4, 1))
    with_penalty = model.evaluate(x, y, verbose=0)
    model.layers[0].trainable = False
    model.compile("sgd", "mse")
    assert model.evaluate(x, y, verbose=0) < with_penalty


@pytest.mark.parametrize("make, error, match", [
    (lambda: L.Dense(2, recurrent_regularizer="l2"), NotImplementedError, "takes kernel_regularizer"),
    (lambda: L.Embedding(5, 2, kernel_constraint="non_neg"), NotImplementedError, "embeddings_constraint"),
    (lambda: L.GRU(2, activity_regularizer="l3"), ValueError, "Unknown regularizer"),
    (lambda: L.Dense(2, kernel_regularizer="l3"), ValueError, "Unknown regularizer"),
    (lambda: L.Dense(2, kernel_constraint="positive"), ValueError, "Unknown constraint"),
    (lambda: regularizers.L2(-1.0), ValueError, "l2"),
    (lambda: constraints.MinMaxNorm(2.0, 1.0), ValueError, "max_value"),
])
def test_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()
