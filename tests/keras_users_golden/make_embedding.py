"""Generates embedding.npz here from Keras 3 on TensorFlow (run once, by hand).

The padded-sequence classifier of issue 12 in small: ``Embedding(mask_zero=True)`` ->
``LSTM`` (or ``Bidirectional(LSTM)``) -> ``Dense(1, sigmoid)``, trained with
``train_on_batch`` for three steps with Keras's default TensorFlow behaviour: the
Embedding's gradient reaches the optimizer as ``tf.IndexedSlices`` (one row per token
occurrence). Stores initial weights, batches, losses and the weights after each step.

Usage: python tests/keras_users_golden/make_embedding.py
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

VOCAB, DIM, T, BATCH = 9, 3, 7, 4
CASES = [
    ("adam", "lstm", "Adam", {"learning_rate": 0.05}),
    ("adam_clipnorm", "lstm", "Adam", {"learning_rate": 0.05, "clipnorm": 0.05}),
    ("rmsprop", "bidir", "RMSprop", {"learning_rate": 0.02}),
    ("adagrad", "lstm", "Adagrad", {"learning_rate": 0.2}),
    ("nadam", "bidir", "Nadam", {"learning_rate": 0.02}),
    ("adamw", "lstm", "AdamW", {"learning_rate": 0.02, "weight_decay": 0.1}),
]


def build(arch, rng):
    rec = keras.layers.LSTM(3)
    if arch == "bidir":
        rec = keras.layers.Bidirectional(keras.layers.LSTM(2))
    model = keras.Sequential([keras.Input((T,), dtype="int64"),
                              keras.layers.Embedding(VOCAB, DIM, mask_zero=True), rec,
                              keras.layers.Dense(1, activation="sigmoid")])
    weights = [rng.uniform(-0.6, 0.6, w.shape).astype("float32") for w in model.get_weights()]
    model.set_weights(weights)
    return model, weights


def tokens(rng):
    x = np.zeros((BATCH, T), dtype=np.int64)
    for i in range(BATCH):
        n = rng.integers(2, T + 1)
        # Few distinct tokens, so that indices repeat within the batch.
        x[i, T - n:] = rng.integers(1, 5, n)
    return x


def main():
    rng = np.random.default_rng(12)
    data, index = {}, []
    for name, arch, opt, kwargs in CASES:
        model, weights = build(arch, rng)
        model.compile(optimizer=getattr(keras.optimizers, opt)(**kwargs), loss="binary_crossentropy")
        for k, w in enumerate(weights):
            data[f"{name}/w/{k}"] = w
        losses = []
        for step in range(3):
            x = tokens(rng)
            y = rng.integers(0, 2, (BATCH, 1)).astype("float32")
            data[f"{name}/x{step}"], data[f"{name}/y{step}"] = x, y
            losses.append(float(model.train_on_batch(x, y)))
            for k, w in enumerate(model.get_weights()):
                data[f"{name}/step{step}/{k}"] = w
        data[f"{name}/loss"] = np.array(losses)
        index.append({"name": name, "architecture": arch, "optimizer": opt, "config": kwargs,
                      "num_weights": len(weights)})
    meta = {"keras_version": keras.__version__, "tensorflow_version": tf.__version__,
            "numpy_version": np.__version__, "backend": keras.backend.backend(), "cases": index}
    data["__meta__"] = meta_array(__file__, (keras, tf), **meta)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "embedding.npz")
    np.savez_compressed(out, **data)
    print("wrote", out)


if __name__ == "__main__":
    main()
