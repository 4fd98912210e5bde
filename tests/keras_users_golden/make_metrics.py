"""Generates metrics.npz here from Keras 3 (run once, by hand): results of the
metrics crnn added (AUC, Precision, Recall, top-k accuracies, RMSE, MAPE) after two
update_state calls, with and without sample_weight.

Usage: python tests/keras_users_golden/make_metrics.py
"""

import os
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from golden_meta import meta_array  # noqa: E402

CASES = [
    # (key, class, config, data kind)
    ("auc_roc", "AUC", {}, "binary"),
    ("auc_pr", "AUC", {"curve": "PR"}, "binary"),
    ("auc_roc_minoring_50", "AUC", {"num_thresholds": 50, "summation_method": "minoring"}, "binary"),
    ("auc_pr_majoring", "AUC", {"curve": "PR", "summation_method": "majoring"}, "binary"),
    ("auc_thresholds", "AUC", {"thresholds": [0.2, 0.5, 0.7]}, "binary"),
    ("auc_logits", "AUC", {"from_logits": True}, "logits"),
    ("precision", "Precision", {}, "binary"),
    ("precision_thr", "Precision", {"thresholds": [0.3, 0.6]}, "binary"),
    ("precision_top2_class", "Precision", {"top_k": 2}, "multiclass"),
    ("precision_class1", "Precision", {"class_id": 1}, "multiclass"),
    ("recall", "Recall", {}, "binary"),
    ("recall_thr", "Recall", {"thresholds": 0.7}, "binary"),
    ("recall_top1", "Recall", {"top_k": 1}, "multiclass"),
    ("topk", "TopKCategoricalAccuracy", {"k": 2}, "multiclass"),
    ("sparse_topk", "SparseTopKCategoricalAccuracy", {"k": 2}, "sparse"),
    ("sparse_topk_seq", "SparseTopKCategoricalAccuracy", {"k": 3}, "sparse_seq"),
    ("rmse", "RootMeanSquaredError", {}, "regression"),
    ("rmse_seq", "RootMeanSquaredError", {}, "regression_seq"),
    ("mape", "MeanAbsolutePercentageError", {}, "regression"),
]


def make_data(kind, rng):
    n = 12
    if kind == "binary":
        return rng.integers(0, 2, (n, 1)).astype("float32"), rng.random((n, 1)).astype("float32")
    if kind == "logits":
        return rng.integers(0, 2, (n, 1)).astype("float32"), (3 * rng.standard_normal((n, 1))).astype("float32")
    if kind == "multiclass":
        labels = rng.integers(0, 4, n)
        return np.eye(4, dtype="float32")[labels], rng.random((n, 4)).astype("float32")
    if kind == "sparse":
        return rng.integers(0, 5, (n,)).astype("int32"), rng.random((n, 5)).astype("float32")
    if kind == "sparse_seq":
        return rng.integers(0, 5, (n, 3)).astype("int32"), rng.random((n, 3, 5)).astype("float32")
    if kind == "regression":
        return (1 + rng.random((n, 2))).astype("float32"), rng.standard_normal((n, 2)).astype("float32")
    if kind == "regression_seq":
        return rng.standard_normal((n, 4, 2)).astype("float32"), rng.standard_normal((n, 4, 2)).astype("float32")
    raise ValueError(kind)


def main():
    rng = np.random.default_rng(7)
    data, index = {}, []
    for key, cls, config, kind in CASES:
        for weighted in (False, True):
            k = f"{key}__{'weighted' if weighted else 'plain'}"
            metric = getattr(keras.metrics, cls)(**config)
            for b in range(2):
                y_true, y_pred = make_data(kind, rng)
                sw = rng.random(len(y_true)).astype("float32") if weighted else None
                data[f"{k}/{b}/y_true"] = y_true
                data[f"{k}/{b}/y_pred"] = y_pred
                if weighted:
                    data[f"{k}/{b}/sample_weight"] = sw
                metric.update_state(y_true, y_pred, sample_weight=sw)
            data[f"{k}/result"] = np.asarray(metric.result())
            index.append({"key": k, "class_name": cls, "config": config, "weighted": weighted})
    meta = {"keras_version": keras.__version__, "tensorflow_version": tf.__version__,
            "numpy_version": np.__version__, "cases": index}
    data["__meta__"] = meta_array(__file__, (keras, tf), **meta)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "metrics.npz")
    np.savez_compressed(out, **data)
    print("wrote", len(index), "cases to", out)


if __name__ == "__main__":
    main()
