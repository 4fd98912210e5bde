"""AUC, Precision, Recall, top-k accuracies, RMSE and MAPE against Keras 3 results
(tests/keras_users_golden/make_metrics.py), plus configs and error paths."""

import json
import os

import numpy as np
import pytest

from crnn import metrics

GOLDEN = os.path.join(os.path.dirname(__file__), "keras_users_golden", "metrics.npz")


def _meta():
    with np.load(GOLDEN) as data:
        return json.loads(str(data["__meta__"]))


@pytest.mark.parametrize("case", _meta()["cases"], ids=lambda c: c["key"])
def test_matches_keras(case):
    key = case["key"]
    metric = getattr(metrics, case["class_name"])(**case["config"])
    with np.load(GOLDEN) as data:
        for b in range(2):
            sw = data[f"{key}/{b}/sample_weight"] if case["weighted"] else None
            metric.update_state(data[f"{key}/{b}/y_true"], data[f"{key}/{b}/y_pred"], sample_weight=sw)
        expected = data[f"{key}/result"]
    # Keras accumulates in float32; crnn in float64.
    np.testing.assert_allclose(metric.result(), expected, rtol=2e-6, atol=1e-6)


def test_golden_covers_every_new_metric():
    meta = _meta()
    assert {c["class_name"] for c in meta["cases"]} == {
        "AUC", "Precision", "Recall", "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy",
        "RootMeanSquaredError", "MeanAbsolutePercentageError"}
    assert meta["versions"]["keras"].startswith("3.") and "tensorflow" in meta["versions"]


@pytest.mark.parametrize("name, cls", [
    ("auc", metrics.AUC), ("precision", metrics.Precision), ("recall", metrics.Recall),
    ("mape", metrics.MeanAbsolutePercentageError), ("root_mean_squared_error", metrics.RootMeanSquaredError),
    ("top_k_categorical_accuracy", metrics.TopKCategoricalAccuracy),
    ("sparse_top_k_categorical_accuracy", metrics.SparseTopKCategoricalAccuracy),
])
def test_names_and_config_round_trip(name, cls):
    m = metrics.get(name)
    assert isinstance(m, cls) and m.name == name
    clone = metrics.deserialize(metrics.serialize(m))
    assert type(clone) is cls and clone.get_config() == m.get_config()


def test_reset_state_forgets_counts():
    m = metrics.AUC()
    m.update_state([0, 1], [0.9, 0.1])
    m.reset_state()
    m.update_state([0, 1], [0.1, 0.9])
    assert m.result() == pytest.approx(1.0)


def test_in_top_k_counts_ties_as_in():
    m = metrics.SparseTopKCategoricalAccuracy(k=1)
    m.update_state(np.array([1]), np.array([[0.5, 0.5, 0.0]]))
    assert m.result() == 1.0


@pytest.mark.parametrize("make, match", [
    (lambda: metrics.AUC(num_thresholds=1), "num_thresholds"),
    (lambda: metrics.AUC(curve="XY"), "curve"),
    (lambda: metrics.AUC(num_labels=2), "multi_label"),
    (lambda: metrics.Precision(thresholds=1.5), "Threshold"),
    (lambda: metrics.Recall(top_k=0), "top_k"),
    (lambda: metrics.TopKCategoricalAccuracy(k=0), "`k`"),
])
def test_bad_arguments_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_weighted_mean_metric_matches_hand_computation():
    m = metrics.MeanAbsoluteError()
    m.update_state(np.array([[0.0], [0.0]]), np.array([[1.0], [3.0]]), sample_weight=np.array([3.0, 1.0]))
    assert m.result() == pytest.approx((3 * 1 + 1 * 3) / 4)
