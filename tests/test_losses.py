"""Tests for crnn.losses: values, exact gradients, Keras parity, shape rules."""

import doctest
import json
import math
import os
import warnings
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crnn.losses as losses

GOLDEN = os.path.join(os.path.dirname(__file__), "golden", "losses_golden.npz")


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def finite_difference(loss, y_true, y_pred, h=1e-6):
    grad = np.zeros_like(y_pred)
    for idx in np.ndindex(y_pred.shape):
        up, down = y_pred.copy(), y_pred.copy()
        up[idx] += h
        down[idx] -= h
        grad[idx] = (loss(y_true, up) - loss(y_true, down)) / (2 * h)
    return grad


# ------------------------------------------------------------- written-out values
def test_mse_and_mae_values():
    t = np.array([[0.0, 1.0], [2.0, 3.0]])
    p = np.array([[1.0, 1.0], [2.0, 5.0]])
    assert losses.get("mse")(t, p) == pytest.approx((1 + 0 + 0 + 4) / 4)
    assert losses.get("mae")(t, p) == pytest.approx((1 + 0 + 0 + 2) / 4)


def test_binary_crossentropy_value():
    t = np.array([[1.0, 0.0, 1.0]])
    p = np.array([[0.9, 0.2, 0.4]])
    expected = -(math.log(0.9) + math.log(0.8) + math.log(0.4)) / 3
    assert losses.BinaryCrossentropy()(t, p) == pytest.approx(expected, rel=1e-12)


def test_categorical_crossentropy_value_and_normalization():
    t = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    p = np.array([[0.2, 0.5, 0.3], [0.1, 0.6, 0.3]])
    expected = -(math.log(0.5) + math.log(0.1)) / 2
    assert losses.CategoricalCrossentropy()(t, p) == pytest.approx(expected, rel=1e-12)
    # Keras divides by the sum first, so scaling the "probabilities" changes nothing.
    assert losses.CategoricalCrossentropy()(t, 4 * p) == pytest.approx(expected, rel=1e-12)


def test_sparse_matches_categorical_on_one_hot_labels():
    rng = np.random.default_rng(0)
    probs = softmax(rng.standard_normal((3, 4, 5)))
    labels = rng.integers(0, 5, (3, 4))
    onehot = np.eye(5)[labels]
    sparse = losses.SparseCategoricalCrossentropy()
    dense = losses.CategoricalCrossentropy()
    assert sparse(labels, probs) == pytest.approx(dense(onehot, probs), rel=1e-12)
    np.testing.assert_allclose(
        sparse.value_and_grad(labels, probs)[1], dense.value_and_grad(onehot, probs)[1], rtol=1e-10, atol=1e-14
    )


def test_from_logits_equals_probabilities_away_from_the_clip():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((4, 3))
    onehot = np.eye(3)[rng.integers(0, 3, 4)]
    bits = (rng.random((4, 3)) > 0.5).astype(float)
    cce_logits = losses.CategoricalCrossentropy(from_logits=True)(onehot, logits)
    assert cce_logits == pytest.approx(losses.CategoricalCrossentropy()(onehot, softmax(logits)), rel=1e-12)
    bce_logits = losses.BinaryCrossentropy(from_logits=True)(bits, logits)
    assert bce_logits == pytest.approx(losses.BinaryCrossentropy()(bits, sigmoid(logits)), rel=1e-12)
    scce_logits = losses.SparseCategoricalCrossentropy(from_logits=True)(onehot.argmax(-1), logits)
    assert scce_logits == pytest.approx(cce_logits, rel=1e-12)


def test_probabilities_are_clipped_with_keras_epsilon():
    # p = 0 for the true class: -log(1e-7), not inf; the gradient there is 0.
    bce = losses.BinaryCrossentropy()
    value, grad = bce.value_and_grad(np.array([[1.0]]), np.array([[0.0]]))
    assert value == pytest.approx(-math.log(1e-7), rel=1e-12)
    assert grad[0, 0] == 0.0
    value, grad = bce.value_and_grad(np.array([[0.0]]), np.array([[1.0]]))
    assert value == pytest.approx(-math.log(1e-7), rel=1e-6)
    assert grad[0, 0] == 0.0
    cce = losses.CategoricalCrossentropy()
    assert cce(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])) == pytest.approx(-math.log(1e-7), rel=1e-12)


def test_extreme_logits_stay_finite():
    big = np.array([[1000.0, -1000.0]])
    for loss, y in [
        (losses.BinaryCrossentropy(from_logits=True), np.array([[0.0, 1.0]])),
        (losses.CategoricalCrossentropy(from_logits=True), np.array([[0.0, 1.0]])),
        (losses.SparseCategoricalCrossentropy(from_logits=True), np.array([1])),
    ]:
        value, grad = loss.value_and_grad(y, big)
        assert np.isfinite(value) and np.all(np.isfinite(grad))
        assert value == pytest.approx(1000.0 if loss.name == "binary_crossentropy" else 2000.0, rel=1e-9)


def test_label_smoothing():
    t = np.array([[1.0, 0.0]])
    p = np.array([[0.7, 0.3]])
    smoothed = t * 0.8 + 0.1
    bce = losses.BinaryCrossentropy(label_smoothing=0.2)(t, p)
    assert bce == pytest.approx(losses.BinaryCrossentropy()(smoothed, p), rel=1e-12)
    cce = losses.CategoricalCrossentropy(label_smoothing=0.2)(t, p)
    expected = -(0.9 * math.log(0.7) + 0.1 * math.log(0.3))
    assert cce == pytest.approx(expected, rel=1e-12)


# -------------------------------------------------------------------- gradients
FD_CASES = [
    ("mse", {}, "real"),
    ("mae", {}, "real"),
    ("binary_crossentropy", {}, "prob"),
    ("binary_crossentropy", {"from_logits": True}, "real"),
    ("binary_crossentropy", {"label_smoothing": 0.3}, "prob"),
    ("categorical_crossentropy", {}, "positive"),
    ("categorical_crossentropy", {"from_logits": True}, "real"),
    ("categorical_crossentropy", {"label_smoothing": 0.1}, "positive"),
    ("sparse_categorical_crossentropy", {}, "positive"),
    ("sparse_categorical_crossentropy", {"from_logits": True}, "real"),
]


def make_inputs(name, kind, shape, rng):
    if kind == "real":
        y_pred = rng.standard_normal(shape)
    elif kind == "prob":
        y_pred = rng.uniform(0.05, 0.95, shape)
    else:
        y_pred = rng.uniform(0.1, 1.0, shape)  # need not sum to 1
    if name == "sparse_categorical_crossentropy":
        y_true = rng.integers(0, shape[-1], shape[:-1])
    elif name == "categorical_crossentropy":
        y_true = np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
    elif name == "binary_crossentropy":
        y_true = (rng.random(shape) > 0.5).astype(float)
    else:
        y_true = y_pred + rng.choice([-1.0, 1.0], shape) * rng.uniform(0.1, 1.0, shape)  # away from mae's kink
    return y_true, y_pred


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4)])
@pytest.mark.parametrize("name,config,kind", FD_CASES, ids=[f"{c[0]}-{c[1]}" for c in FD_CASES])
def test_gradient_matches_finite_differences(name, config, kind, shape):
    rng = np.random.default_rng(zlib.crc32(repr((name, config, shape)).encode()))
    loss = losses.get({"class_name": name, "config": config})
    y_true, y_pred = make_inputs(name, kind, shape, rng)
    value, grad = loss.value_and_grad(y_true, y_pred)
    assert value == loss(y_true, y_pred)
    assert grad.shape == y_pred.shape and grad.dtype == np.float64
    np.testing.assert_allclose(grad, finite_difference(loss, y_true, y_pred), rtol=1e-6, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(
    batch=st.integers(1, 3),
    steps=st.integers(1, 3),
    classes=st.integers(2, 4),
    seed=st.integers(0, 2**16),
    from_logits=st.booleans(),
)
def test_sequence_sparse_gradient_matches_finite_differences(batch, steps, classes, seed, from_logits):
    rng = np.random.default_rng(seed)
    shape = (batch, steps, classes)
    y_pred = rng.standard_normal(shape) if from_logits else rng.uniform(0.1, 1.0, shape)
    labels = rng.integers(0, classes, (batch, steps))
    loss = losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    _, grad = loss.value_and_grad(labels, y_pred)
    np.testing.assert_allclose(grad, finite_difference(loss, labels, y_pred), rtol=1e-5, atol=1e-8)


def test_mae_gradient_is_zero_at_ties():
    _, grad = losses.get("mae").value_and_grad(np.array([[1.0, 2.0]]), np.array([[1.0, 3.0]]))
    np.testing.assert_array_equal(grad, [[0.0, 0.5]])


def test_float32_in_float32_out():
    t = np.ones((2, 3), dtype=np.float32)
    p = np.full((2, 3), 0.5, dtype=np.float32)
    value, grad = losses.get("binary_crossentropy").value_and_grad(t, p)
    assert isinstance(value, float)
    assert grad.dtype == np.float32


def test_sum_reduction_is_count_times_mean():
    rng = np.random.default_rng(5)
    t, p = rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 4, 2))
    mean_value, mean_grad = losses.MeanSquaredError().value_and_grad(t, p)
    sum_value, sum_grad = losses.MeanSquaredError(reduction="sum").value_and_grad(t, p)
    assert sum_value == pytest.approx(12 * mean_value, rel=1e-12)
    np.testing.assert_allclose(sum_grad, 12 * mean_grad, rtol=1e-12)


# ------------------------------------------------------------- Keras golden data
def _golden_meta():
    with np.load(GOLDEN) as data:
        return json.loads(str(data["__meta__"]))


@pytest.mark.parametrize("case", _golden_meta()["cases"], ids=lambda c: c["key"])
def test_matches_keras_golden_value_and_gradient(case):
    key = case["key"]
    with np.load(GOLDEN) as data:
        y_true, y_pred = data[f"{key}/y_true"], data[f"{key}/y_pred"]
        expected_value, expected_grad = float(data[f"{key}/value"]), data[f"{key}/grad"]
    loss = losses.get({"class_name": case["name"], "config": case["config"]})
    value, grad = loss.value_and_grad(y_true, y_pred)
    tol = 2e-6 if case["dtype"] == "float32" else 1e-12
    assert value == pytest.approx(expected_value, rel=tol, abs=tol)
    assert grad.shape == y_pred.shape
    scale = max(np.max(np.abs(expected_grad)), 1e-30)
    np.testing.assert_allclose(grad, expected_grad, rtol=tol * 10, atol=tol * scale)


# ---------------------------------------------------------------- shapes, errors
def test_trailing_axis_of_one_is_squeezed_or_added_like_keras():
    t = np.array([1.0, 2.0, 3.0])
    p = np.array([[1.5], [2.0], [2.0]])
    value, grad = losses.get("mse").value_and_grad(t, p)
    assert value == pytest.approx((0.25 + 0 + 1) / 3)
    assert grad.shape == (3, 1)
    # (batch, T) targets for a (batch, T, 1) output.
    value = losses.get("mae")(np.zeros((2, 3)), np.ones((2, 3, 1)))
    assert value == pytest.approx(1.0)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"y_true.shape=\(4, 3\), y_pred.shape=\(4, 2\)"):
        losses.get("mse")(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"y_true.shape=\(4,\), y_pred.shape=\(4, 3\)"):
        losses.get("categorical_crossentropy")(np.zeros(4), np.full((4, 3), 1 / 3))


@pytest.mark.parametrize(
    "labels,match",
    [
        (np.array([0, 3]), r"labels must be in \[0, 3\).*label 3"),
        (np.array([-1, 0]), r"label -1"),
        (np.array([0.5, 1.0]), "integer class indices"),
        (np.zeros((2, 2)), r"y_true.shape=\(2, 2\), y_pred.shape=\(2, 3\)"),
        (np.zeros(3), r"expected y_true.shape=\(2,\)"),
    ],
)
def test_sparse_labels_are_validated(labels, match):
    with pytest.raises(ValueError, match=match):
        losses.get("sparse_categorical_crossentropy")(labels, np.full((2, 3), 1 / 3))


def test_sparse_accepts_the_three_label_layouts():
    rng = np.random.default_rng(2)
    probs = softmax(rng.standard_normal((4, 3)))
    labels = rng.integers(0, 3, 4)
    loss = losses.get("sparse_categorical_crossentropy")
    reference = loss(labels, probs)
    assert loss(labels[:, None], probs) == reference
    assert loss(labels.astype(float), probs) == reference
    seq_probs = softmax(rng.standard_normal((2, 5, 3)))
    seq_labels = rng.integers(0, 3, (2, 5))
    expected = -np.mean(np.log(np.take_along_axis(seq_probs, seq_labels[..., None], -1)))
    assert loss(seq_labels, seq_probs) == pytest.approx(expected, rel=1e-12)


def test_categorical_with_one_unit_warns_like_keras():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        losses.get("categorical_crossentropy")(np.ones((2, 1)), np.full((2, 1), 0.5))
    assert any("binary_crossentropy" in str(w.message) for w in caught)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: losses.MeanSquaredError(reduction="mean_with_sample_weight"), "`reduction`"),
        (lambda: losses.BinaryCrossentropy(from_logits="no"), "`from_logits`"),
        (lambda: losses.CategoricalCrossentropy(label_smoothing=1.5), "`label_smoothing`"),
        (lambda: losses.get("huber"), "Unknown loss: 'huber'"),
        (lambda: losses.get(3.0), "Could not interpret loss"),
        (lambda: losses.get("mse")(np.array(["a"]), np.zeros(1)), "`y_true` must be numeric"),
    ],
)
def test_bad_arguments_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ----------------------------------------------------------- identifiers, config
@pytest.mark.parametrize(
    "identifier,cls,name",
    [
        ("mse", losses.MeanSquaredError, "mean_squared_error"),
        ("mean_squared_error", losses.MeanSquaredError, "mean_squared_error"),
        ("MeanSquaredError", losses.MeanSquaredError, "mean_squared_error"),
        ("mae", losses.MeanAbsoluteError, "mean_absolute_error"),
        ("mean_absolute_error", losses.MeanAbsoluteError, "mean_absolute_error"),
        ("binary_crossentropy", losses.BinaryCrossentropy, "binary_crossentropy"),
        ("categorical_crossentropy", losses.CategoricalCrossentropy, "categorical_crossentropy"),
        ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy, "sparse_categorical_crossentropy"),
    ],
)
def test_get_by_name(identifier, cls, name):
    loss = losses.get(identifier)
    assert type(loss) is cls and loss.name == name


@pytest.mark.parametrize(
    "loss",
    [
        losses.MeanSquaredError(reduction="sum"),
        losses.MeanAbsoluteError(name="l1"),
        losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1),
        losses.CategoricalCrossentropy(label_smoothing=0.2),
        losses.SparseCategoricalCrossentropy(from_logits=True),
    ],
    ids=lambda loss: type(loss).__name__,
)
def test_config_round_trip(loss):
    config = losses.serialize(loss)
    json.dumps(config)
    clone = losses.get(config)
    assert type(clone) is type(loss) and clone.get_config() == loss.get_config()
    assert losses.get(loss) is loss


def test_logits_counterpart():
    twin = losses.logits_counterpart(losses.CategoricalCrossentropy(label_smoothing=0.1), "softmax")
    assert isinstance(twin, losses.CategoricalCrossentropy)
    assert twin.from_logits and twin.label_smoothing == 0.1
    assert losses.logits_counterpart(losses.SparseCategoricalCrossentropy(), "softmax").from_logits
    assert losses.logits_counterpart(losses.BinaryCrossentropy(), "sigmoid").from_logits
    assert losses.logits_counterpart(losses.BinaryCrossentropy(), "softmax") is None
    assert losses.logits_counterpart(losses.BinaryCrossentropy(from_logits=True), "sigmoid") is None
    assert losses.logits_counterpart(losses.MeanSquaredError(), "sigmoid") is None


def test_docstring_examples():
    result = doctest.testmod(losses)
    assert result.attempted > 0 and result.failed == 0
