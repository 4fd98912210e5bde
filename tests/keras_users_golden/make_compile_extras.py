"""Generates compile_extras.npz here from Keras 3 on TensorFlow (run once, by hand):
``activity_regularizer`` on layers (the output penalty, divided by the batch size, in the
reported loss and the gradients), ``compile(loss_weights=...)`` on a single output,
``compile(weighted_metrics=...)`` with sample weights, and ``AUC(multi_label=True,
num_labels=..., label_weights=...)``.

Usage: python tests/keras_users_golden/make_compile_extras.py
"""

import json
import os
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from golden_meta import meta_array  # noqa: E402

L, R = keras.layers, keras.regularizers


def models():
    """name -> (model, optimizer, compile kwargs, input shape, target shape, loss)."""
    return {
        "activity_lstm_dense": (keras.Sequential([
            keras.Input((5, 2)),
            L.LSTM(3, return_sequences=True, activity_regularizer=R.L2(0.05)),
            L.SimpleRNN(2, activity_regularizer=R.L1(0.02)),
            L.Dense(1, activity_regularizer=R.L1L2(0.01, 0.03), kernel_regularizer=R.L2(0.01))]),
            "sgd", {}, (5, 2), (1,), "mse"),
        "activity_gru_adam": (keras.Sequential([
            keras.Input((4, 3)),
            L.GRU(3, activity_regularizer=R.L2(0.1)),
            L.Dense(2, activation="tanh", activity_regularizer=R.L1(0.05))]),
            "adam", {"metrics": ["mae"]}, (4, 3), (2,), "mse"),
        "loss_weights_float": (keras.Sequential([
            keras.Input((4, 2)), L.LSTM(3), L.Dense(1, kernel_regularizer=R.L2(0.02))]),
            "sgd", {"loss_weights": 0.5, "metrics": ["mae"]}, (4, 2), (1,), "mse"),
        "loss_weights_list": (keras.Sequential([
            keras.Input((4, 2)), L.GRU(3), L.Dense(1)]),
            "adam", {"loss_weights": [2.5]}, (4, 2), (1,), "mse"),
        "loss_weights_dict": (keras.Sequential([
            keras.Input((4, 2)), L.SimpleRNN(3), L.Dense(1, activation="sigmoid", name="out")]),
            "rmsprop", {"loss_weights": {"out": 0.3}, "metrics": ["accuracy"]}, (4, 2), (1,),
            "binary_crossentropy"),
        "weighted_metrics": (keras.Sequential([
            keras.Input((4, 2)), L.LSTM(3), L.Dense(1)]),
            "sgd", {"metrics": ["mae"], "weighted_metrics": ["mae", "mse"]}, (4, 2), (1,), "mse"),
        "weighted_metrics_seq": (keras.Sequential([
            keras.Input((4, 2)), L.GRU(3, return_sequences=True), L.Dense(1)]),
            "sgd", {"weighted_metrics": ["mae"], "loss_weights": [0.7]}, (4, 2), (4, 1), "mse"),
        "activity_masked_tokens": (keras.Sequential([
            keras.Input((6,), dtype="int64"),
            L.Embedding(9, 3, mask_zero=True, activity_regularizer=R.L2(0.02)),
            L.LSTM(3, return_sequences=True, activity_regularizer=R.L1(0.03)),
            L.GlobalAveragePooling1D(),
            L.Dense(1, activation="sigmoid", activity_regularizer=R.L2(0.1))]),
            "adam", {"metrics": ["accuracy"], "weighted_metrics": ["accuracy"]}, (6,), (1,),
            "binary_crossentropy"),
        "activity_bidirectional": (keras.Sequential([
            keras.Input((5, 2)),
            L.Bidirectional(L.LSTM(3, return_sequences=True, activity_regularizer=R.L2(0.05))),
            L.Bidirectional(L.GRU(2, activity_regularizer=R.L1(0.04)), merge_mode="mul",
                            activity_regularizer=R.L2(0.02)),
            L.Dense(1)]),
            "sgd", {}, (5, 2), (1,), "mse"),
    }


def _inputs(rng, n, shape, name):
    if "tokens" in name:        # padded token ids (0 is masked)
        x = rng.integers(1, 9, (n,) + shape)
        for i in range(n):
            x[i, : i % 3 + 1] = 0
        return x
    return rng.standard_normal((n,) + shape).astype("float32")


def auc_cases():
    """name -> AUC kwargs (used with 2-d (samples, labels) data)."""
    return {
        "ml_roc": {"multi_label": True},
        "ml_roc_num_labels": {"multi_label": True, "num_labels": 3, "num_thresholds": 50},
        "ml_pr": {"multi_label": True, "curve": "PR"},
        "ml_pr_minoring": {"multi_label": True, "curve": "PR", "summation_method": "minoring"},
        "ml_label_weights": {"multi_label": True, "label_weights": [0.2, 1.0, 3.0]},
        "ml_pr_label_weights": {"multi_label": True, "curve": "PR", "label_weights": [1.0, 0.0, 2.0]},
        "ml_logits_thresholds": {"multi_label": True, "from_logits": True, "thresholds": [0.1, 0.3, 0.5, 0.9]},
        "label_weights_single": {"label_weights": [0.5, 2.0, 1.0]},
        "label_weights_single_pr": {"label_weights": [0.5, 2.0, 1.0], "curve": "PR"},
    }


def main():
    rng = np.random.default_rng(12)
    data, meta = {}, {"models": [], "auc": []}
    for name, (model, opt, kwargs, shape, yshape, loss) in models().items():
        weights = [rng.uniform(-0.5, 0.5, v.shape).astype("float32") for v in model.get_weights()]
        model.set_weights(weights)
        model.compile(keras.optimizers.get({"class_name": opt, "config": {"learning_rate": 0.05}}), loss,
                      **kwargs)
        for k, v in enumerate(weights):
            data[f"{name}/w{k}"] = v
        weighted = "weighted_metrics" in kwargs
        for step in range(3):
            x = _inputs(rng, 4, shape, name)
            if loss == "binary_crossentropy":
                y = rng.integers(0, 2, (4,) + yshape).astype("float32")
            else:
                y = rng.standard_normal((4,) + yshape).astype("float32")
            # Per-timestep weights for a sequence output (a (samples,) vector meets Keras
            # 3's trailing-axis broadcast there).
            sw = rng.uniform(0.0, 2.0, (4,) + yshape[:-1]).astype("float32") if weighted else None
            data[f"{name}/x{step}"], data[f"{name}/y{step}"] = x, y
            if sw is not None:
                data[f"{name}/sw{step}"] = sw
            logs = model.train_on_batch(x, y, sample_weight=sw, return_dict=True)
            for key, value in logs.items():
                data[f"{name}/train{step}/{key}"] = np.asarray(value)
            for k, v in enumerate(model.get_weights()):
                data[f"{name}/step{step}/{k}"] = v
        # fit over 8 samples, batch 4, 2 epochs: the epoch means of the logs.
        x = _inputs(rng, 8, shape, name)
        y = (rng.integers(0, 2, (8,) + yshape) if loss == "binary_crossentropy"
             else rng.standard_normal((8,) + yshape)).astype("float32")
        sw = rng.uniform(0.0, 2.0, (8,) + yshape[:-1]).astype("float32") if weighted else None
        data[f"{name}/fit_x"], data[f"{name}/fit_y"] = x, y
        if sw is not None:
            data[f"{name}/fit_sw"] = sw
        # validation data with sample weights: weighted metrics see them there too.
        vx, vy = _inputs(rng, 4, shape, name), y[:4][::-1].copy()
        vsw = rng.uniform(0.0, 2.0, (4,) + yshape[:-1]).astype("float32") if weighted else None
        data[f"{name}/val_x"], data[f"{name}/val_y"] = vx, vy
        if vsw is not None:
            data[f"{name}/val_sw"] = vsw
        validation = (vx, vy) if vsw is None else (vx, vy, vsw)
        history = model.fit(x, y, sample_weight=sw, batch_size=4, epochs=2, shuffle=False, verbose=0,
                            validation_data=validation)
        for key, values in history.history.items():
            data[f"{name}/fit/{key}"] = np.asarray(values)
        for k, v in enumerate(model.get_weights()):
            data[f"{name}/fit_w/{k}"] = v
        logs = model.evaluate(x, y, sample_weight=sw, batch_size=4, verbose=0, return_dict=True)
        for key, value in logs.items():
            data[f"{name}/eval/{key}"] = np.asarray(value)
        meta["models"].append({"name": name, "optimizer": opt, "loss": loss, "compile": kwargs,
                               "num_weights": len(weights), "weighted": weighted,
                               "config": json.loads(json.dumps(model.get_config()))})
    y_true = rng.integers(0, 2, (3, 12, 3)).astype("float32")
    y_pred = rng.uniform(0.0, 1.0, (3, 12, 3)).astype("float32")
    logits = rng.standard_normal((3, 12, 3)).astype("float32") * 2
    sw = rng.uniform(0.0, 2.0, (3, 12)).astype("float32")
    data["auc/y_true"], data["auc/y_pred"], data["auc/logits"], data["auc/sw"] = y_true, y_pred, logits, sw
    for name, kwargs in auc_cases().items():
        for weighted in (False, True):
            metric = keras.metrics.AUC(**kwargs)
            results = []
            for batch in range(3):
                pred = logits[batch] if kwargs.get("from_logits") else y_pred[batch]
                metric.update_state(y_true[batch], pred, sample_weight=sw[batch] if weighted else None)
                results.append(float(metric.result()))
            data[f"auc/{name}/{int(weighted)}"] = np.asarray(results)
        config = metric.get_config()
        if config.get("label_weights") is not None:
            config["label_weights"] = np.asarray(config["label_weights"]).tolist()
        meta["auc"].append({"name": name, "kwargs": kwargs, "config": json.loads(json.dumps(config))})
    data["__meta__"] = meta_array(__file__, (keras, tf), **meta)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compile_extras.npz")
    np.savez_compressed(out, **data)
    print("wrote", out)


if __name__ == "__main__":
    main()
