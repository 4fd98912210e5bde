"""Generates callbacks.json here from Keras 3 (run once, by hand): the learning
rates ReduceLROnPlateau and LearningRateScheduler set epoch by epoch for given monitor
values, and the text CSVLogger writes for given logs. Each callback is driven directly
(its hooks called with the logs), as fit would.

Usage: python tests/keras_users_golden/make_callbacks.py
"""

import json
import os
import sys
import tempfile

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from golden_meta import golden_meta  # noqa: E402

MONITOR = [1.0, 0.9, 0.95, 0.9, 0.91, 0.92, 0.85, 0.86, 0.87, 0.88, 0.89, 0.9, 0.84, 0.9, 0.9]
ACC = [0.5, 0.6, 0.6, 0.59, 0.6, 0.7, 0.7, 0.7, 0.7, 0.69, 0.71, 0.7]
PLATEAU_CASES = [
    ("default_patience2", {"patience": 2}, "val_loss", MONITOR),
    ("factor_cooldown", {"factor": 0.5, "patience": 1, "cooldown": 2}, "val_loss", MONITOR),
    ("min_lr", {"factor": 0.2, "patience": 1, "min_lr": 0.002}, "val_loss", MONITOR),
    ("min_delta", {"factor": 0.5, "patience": 1, "min_delta": 0.06}, "val_loss", MONITOR),
    ("acc_max", {"monitor": "val_accuracy", "mode": "max", "factor": 0.5, "patience": 2}, "val_accuracy", ACC),
    ("loss_max", {"monitor": "loss", "mode": "max", "factor": 0.5, "patience": 1}, "loss", MONITOR),
]
SCHEDULES = {
    "step": lambda epoch, lr: lr if epoch < 3 else lr * 0.5,
    "one_arg": lambda epoch: 0.1 / (1 + epoch),
}


def model_with_sgd(lr):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss="mse")
    return model


def main():
    out = {"__meta__": golden_meta(__file__, (keras, tf)), "plateau": [], "scheduler": [], "csv": []}
    for name, kwargs, key, values in PLATEAU_CASES:
        cb = keras.callbacks.ReduceLROnPlateau(**kwargs)
        cb.set_model(model_with_sgd(0.1))
        cb.on_train_begin()
        lrs, logged = [], []
        for epoch, v in enumerate(values):
            logs = {key: v}
            cb.on_epoch_end(epoch, logs)
            logged.append(float(logs["learning_rate"]))
            lrs.append(float(cb.model.optimizer.learning_rate.numpy()))
        out["plateau"].append({"name": name, "kwargs": kwargs, "key": key, "values": values,
                               "lrs": lrs, "logged": logged})
    for name, fn in SCHEDULES.items():
        cb = keras.callbacks.LearningRateScheduler(fn)
        cb.set_model(model_with_sgd(0.1))
        lrs, logged = [], []
        for epoch in range(6):
            cb.on_epoch_begin(epoch)
            lrs.append(float(cb.model.optimizer.learning_rate.numpy()))
            logs = {"loss": 1.0}
            cb.on_epoch_end(epoch, logs)
            logged.append(float(logs["learning_rate"]))
        out["scheduler"].append({"name": name, "lrs": lrs, "logged": logged})
    csv_cases = [
        ("plain", {}, [{"loss": 0.5, "mae": 0.25}, {"loss": 0.25, "mae": 0.125}]),
        ("with_val", {"separator": ";"}, [{"loss": 0.5, "val_loss": 0.75}, {"loss": 0.3, "val_loss": 0.6}]),
        ("missing_val", {}, [{"loss": 0.5}, {"loss": 0.4, "val_loss": 0.45}]),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name, kwargs, epochs in csv_cases:
            path = os.path.join(tmp, f"{name}.csv")
            cb = keras.callbacks.CSVLogger(path, **kwargs)
            cb.set_model(model_with_sgd(0.1))
            cb.on_train_begin()
            for epoch, logs in enumerate(epochs):
                cb.on_epoch_end(epoch, dict(logs))
            cb.on_train_end()
            with open(path) as f:
                text = f.read()
            out["csv"].append({"name": name, "kwargs": kwargs, "epochs": epochs, "text": text})
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "callbacks.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    main()
