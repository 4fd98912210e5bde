"""Generates configs.npz here from Keras 3 (run once, by hand): a Keras Sequential model
with Bidirectional, TimeDistributed and the newer crnn layers, its get_config() (JSON), its
weights and its predictions, so that tests check configs in both directions without Keras.

Usage: python tests/keras_users_golden/make_configs.py
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

L = keras.layers


def main():
    rng = np.random.default_rng(8)
    model = keras.Sequential([
        keras.Input((6, 3)),
        L.Bidirectional(L.LSTM(4, return_sequences=True)),
        L.TimeDistributed(L.Dense(3)),
        L.Conv1D(3, 2, padding="causal"),
        L.LayerNormalization(),
        L.Bidirectional(L.GRU(2, return_sequences=True), merge_mode="sum"),
        L.MaxPooling1D(2),
        L.GlobalAveragePooling1D(),
        L.RepeatVector(2),
        L.Flatten(),
        L.Dense(1),
    ])
    weights = [rng.uniform(-0.5, 0.5, w.shape).astype("float32") for w in model.get_weights()]
    model.set_weights(weights)
    x = rng.standard_normal((3, 6, 3)).astype("float32")
    data = {"x": x, "pred": model.predict(x, verbose=0),
            "config": np.array(json.dumps(model.get_config()))}
    for k, w in enumerate(weights):
        data[f"w{k}"] = w
    data["__meta__"] = meta_array(__file__, (keras, tf), num_weights=len(weights))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs.npz")
    np.savez_compressed(out, **data)
    print("wrote", out)


if __name__ == "__main__":
    main()
