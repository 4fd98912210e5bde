"""Tests for crnn.metrics: formulas, Keras 3 names and the "accuracy" rule."""

import doctest
import json

import numpy as np
import pytest

import crnn.losses as losses
import crnn.metrics as metrics


def test_binary_accuracy_uses_strict_threshold():
    m = metrics.BinaryAccuracy()
    # 0.5 is not > 0.5, so it predicts 0: matches y=0, misses y=1.
    m.update_state(np.array([[1], [0], [1], [0]]), np.array([[0.5], [0.5], [0.51], [0.49]]))
    assert m.result() == pytest.approx(0.75)
    m2 = metrics.BinaryAccuracy(threshold=0.7)
    m2.update_state(np.array([[1], [0]]), np.array([[0.6], [0.6]]))
    assert m2.result() == pytest.approx(0.5)


def test_keras_docstring_examples_give_keras_numbers():
    m = metrics.BinaryAccuracy()
    m.update_state([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]])
    assert m.result() == pytest.approx(0.75)
    m = metrics.CategoricalAccuracy()
    m.update_state([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
    assert m.result() == pytest.approx(0.5)
    m = metrics.SparseCategoricalAccuracy()
    m.update_state([[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]])
    assert m.result() == pytest.approx(0.5)
    m = metrics.MeanAbsoluteError()
    m.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]])
    assert m.result() == pytest.approx(0.25)
    m = metrics.MeanSquaredError()
    m.update_state([[0, 1], [0, 0]], [[1, 1], [0, 0]])
    assert m.result() == pytest.approx(0.25)


def test_running_mean_is_weighted_by_sample_count():
    m = metrics.get("mae")
    m.update_state(np.zeros((4, 2)), np.ones((4, 2)))  # 4 samples, error 1
    m.update_state(np.zeros((1, 2)), np.full((1, 2), 6.0))  # 1 sample, error 6
    assert m.result() == pytest.approx((4 * 1 + 1 * 6) / 5)
    assert m.count == 5


def test_sequence_outputs_average_per_sample_first():
    m = metrics.SparseCategoricalAccuracy()
    probs = np.zeros((2, 4, 3))
    probs[..., 0] = 1.0  # always predicts class 0
    labels = np.array([[0, 0, 0, 1], [1, 1, 1, 1]])  # per-sample accuracy 0.75 and 0
    m.update_state(labels, probs)
    m.update_state(labels[:1], probs[:1])
    assert m.result() == pytest.approx((0.75 + 0.0 + 0.75) / 3)
    assert m.count == 3


def test_mse_metric_on_sequences():
    m = metrics.get("mse")
    y = np.zeros((2, 3, 2))
    p = np.arange(12, dtype=float).reshape(2, 3, 2)
    m.update_state(y, p)
    assert m.result() == pytest.approx(np.mean(p**2))


def test_reset_state_and_empty_result():
    m = metrics.get("mse")
    assert m.result() == 0.0
    m.update_state(np.zeros((2, 1)), np.ones((2, 1)))
    assert m.result() == 1.0
    m.reset_state()
    assert m.result() == 0.0 and m.count == 0


@pytest.mark.parametrize(
    "y_true_shape,y_pred_shape,kind",
    [
        ((8, 1), (8, 1), "binary"),
        ((8,), (8, 1), "binary"),
        ((8, 5, 1), (8, 5, 1), "binary"),
        ((8,), (8, 3), "sparse"),
        ((8, 1), (8, 3), "sparse"),
        ((8, 5), (8, 5, 3), "sparse"),
        ((8, 3), (8, 3), "categorical"),
        ((8, 5, 3), (8, 5, 3), "categorical"),
    ],
)
def test_accuracy_kind_follows_keras3_shape_rule(y_true_shape, y_pred_shape, kind):
    m = metrics.get("accuracy")
    m.update_state(np.zeros(y_true_shape), np.full(y_pred_shape, 0.2))
    assert m.kind == kind


def test_accuracy_values_for_each_kind():
    m = metrics.get("accuracy")
    m.update_state(np.array([[1.0], [0.0]]), np.array([[0.9], [0.9]]))
    assert (m.kind, m.result()) == ("binary", 0.5)
    m = metrics.get("acc")
    m.update_state(np.array([[0, 1.0], [1.0, 0]]), np.array([[0.2, 0.8], [0.3, 0.7]]))
    assert (m.kind, m.result()) == ("categorical", 0.5)
    m = metrics.get("accuracy")
    m.update_state(np.array([1, 1]), np.array([[0.2, 0.8], [0.3, 0.7]]))
    assert (m.kind, m.result()) == ("sparse", 1.0)


def test_accuracy_keeps_its_kind_after_reset():
    m = metrics.get("accuracy")
    m.update_state(np.array([1, 0]), np.array([[0.2, 0.8], [0.3, 0.7]]))
    m.reset_state()
    assert m.kind == "sparse"
    with pytest.raises(ValueError, match="sparse categorical accuracy"):
        m.update_state(np.zeros((2, 2)), np.zeros((2, 3)))


def test_accuracy_ignores_the_loss_like_keras3():
    # Keras 3 chooses from shapes only: a (batch, 3) output is categorical even
    # with binary_crossentropy (multi-label), unlike tf.keras 2.
    m = metrics.get("accuracy", loss=losses.get("binary_crossentropy"))
    m.update_state(np.array([[1.0, 0, 0]]), np.array([[0.9, 0.1, 0.1]]))
    assert m.kind == "categorical"


@pytest.mark.parametrize(
    "identifier,cls,name",
    [
        ("accuracy", metrics.Accuracy, "accuracy"),
        ("acc", metrics.Accuracy, "acc"),
        ("mae", metrics.MeanAbsoluteError, "mae"),
        ("mean_absolute_error", metrics.MeanAbsoluteError, "mean_absolute_error"),
        ("mse", metrics.MeanSquaredError, "mse"),
        ("mean_squared_error", metrics.MeanSquaredError, "mean_squared_error"),
        ("binary_accuracy", metrics.BinaryAccuracy, "binary_accuracy"),
        ("categorical_accuracy", metrics.CategoricalAccuracy, "categorical_accuracy"),
        ("sparse_categorical_accuracy", metrics.SparseCategoricalAccuracy, "sparse_categorical_accuracy"),
    ],
)
def test_log_names_are_the_given_strings(identifier, cls, name):
    m = metrics.get(identifier)
    assert type(m) is cls and m.name == name


def test_default_names_and_directions():
    assert metrics.MeanAbsoluteError().name == "mean_absolute_error"
    assert metrics.MeanSquaredError().name == "mean_squared_error"
    assert metrics.BinaryAccuracy().name == "binary_accuracy"
    assert metrics.get("accuracy").direction == "up"
    assert metrics.get("mae").direction == "down"


def test_mean_metric_with_sample_weight():
    m = metrics.Mean(name="loss")
    m.update_state(0.5, sample_weight=32)
    m.update_state(2.0, sample_weight=8)
    assert m.result() == pytest.approx((0.5 * 32 + 2.0 * 8) / 40)
    m.update_state(np.array([1.0, 3.0]))
    assert m.result() == pytest.approx((0.5 * 32 + 2.0 * 8 + 4.0) / 42)
    with pytest.raises(ValueError, match="sample_weight"):
        m.update_state(1.0, sample_weight=-1)


def test_errors():
    with pytest.raises(ValueError, match=r"y_true.shape=\(2, 3\), y_pred.shape=\(2, 2\)"):
        metrics.get("mae").update_state(np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"Unknown metric: 'f1'"):
        metrics.get("f1")
    with pytest.raises(ValueError, match="Could not interpret"):
        metrics.get(7)
    with pytest.raises(ValueError, match="`kind`"):
        metrics.Accuracy(kind="multilabel")
    with pytest.raises(ValueError, match="`y_pred` must be numeric"):
        metrics.get("mse").update_state(np.zeros(2), np.array(["a", "b"]))


@pytest.mark.parametrize(
    "metric",
    [
        metrics.BinaryAccuracy(threshold=0.3),
        metrics.Accuracy(name="acc", kind="sparse"),
        metrics.get("mae"),
        metrics.MeanSquaredError(),
        metrics.CategoricalAccuracy(),
    ],
    ids=lambda m: m.name,
)
def test_config_round_trip(metric):
    config = metrics.serialize(metric)
    json.dumps(config)
    clone = metrics.get(config)
    assert type(clone) is type(metric) and clone.get_config() == metric.get_config()
    assert metrics.get(metric) is metric


def test_docstring_examples():
    result = doctest.testmod(metrics)
    assert result.attempted > 0 and result.failed == 0
