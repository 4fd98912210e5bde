"""Generates regularization.npz here from Keras 3 on TensorFlow (run once, by hand):
regularizer penalties and gradients, constraint projections, and train_on_batch/evaluate
of models whose layers carry regularizers and constraints (the penalty is in the reported
loss; constraints apply after each update).

Usage: python tests/keras_users_golden/make_regularization.py
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

L, R, C = keras.layers, keras.regularizers, keras.constraints
REGULARIZERS = [("l1", R.L1(0.03)), ("l2", R.L2(0.02)), ("l1l2", R.L1L2(l1=0.01, l2=0.05))]
CONSTRAINTS = [("max_norm", C.MaxNorm(0.8)), ("max_norm_axis1", C.MaxNorm(1.0, axis=1)),
               ("non_neg", C.NonNeg()), ("unit_norm", C.UnitNorm()),
               ("min_max_norm", C.MinMaxNorm(0.5, 0.9, rate=0.5))]


def models():
    return {
        "lstm_dense": (keras.Sequential([
            keras.Input((5, 2)),
            L.LSTM(3, kernel_regularizer=R.L2(0.01), recurrent_regularizer=R.L1(0.01),
                   bias_regularizer=R.L1L2(0.01, 0.01), kernel_constraint=C.MaxNorm(0.5),
                   recurrent_constraint=C.UnitNorm()),
            L.Dense(1, kernel_regularizer=R.L2(0.05), kernel_constraint=C.NonNeg())]),
            "sgd", (5, 2), "float"),
        "embedding_gru": (keras.Sequential([
            keras.Input((6,), dtype="int64"),
            L.Embedding(7, 3, embeddings_regularizer=R.L2(0.02), embeddings_constraint=C.UnitNorm(axis=1)),
            L.Bidirectional(L.GRU(2, kernel_regularizer=R.L1(0.01), bias_constraint=C.MinMaxNorm(0.0, 0.3))),
            L.Dense(1, activation="sigmoid")]),
            "adam", (6,), "tokens"),
        "conv": (keras.Sequential([
            keras.Input((8, 2)),
            L.Conv1D(3, 3, padding="causal", kernel_regularizer=R.L2(0.03), bias_regularizer=R.L1(0.02),
                     kernel_constraint=C.MaxNorm(0.7, axis=[0, 1])),
            L.GlobalAveragePooling1D(), L.Dense(1)]),
            "sgd", (8, 2), "float"),
    }


def main():
    rng = np.random.default_rng(31)
    data, meta = {}, {"regularizers": [], "constraints": [], "models": []}
    w = rng.standard_normal((4, 3)).astype("float32")
    data["w"] = w
    for name, reg in REGULARIZERS:
        var = tf.Variable(w)
        with tf.GradientTape() as tape:
            penalty = reg(var)
        data[f"reg/{name}/value"] = np.asarray(penalty)
        data[f"reg/{name}/grad"] = tape.gradient(penalty, var).numpy()
        meta["regularizers"].append({"name": name, "config": reg.get_config(),
                                     "class_name": type(reg).__name__})
    for name, con in CONSTRAINTS:
        data[f"con/{name}"] = np.asarray(con(tf.constant(w)))
        meta["constraints"].append({"name": name, "config": con.get_config(),
                                    "class_name": type(con).__name__})
    for name, (model, opt, shape, kind) in models().items():
        weights = [rng.uniform(-0.5, 0.5, v.shape).astype("float32") for v in model.get_weights()]
        model.set_weights(weights)
        loss = "binary_crossentropy" if kind == "tokens" else "mse"
        model.compile(keras.optimizers.get({"class_name": opt, "config": {"learning_rate": 0.05}}), loss)
        for k, v in enumerate(weights):
            data[f"{name}/w{k}"] = v
        for step in range(2):
            if kind == "tokens":
                x = rng.integers(0, 7, (4,) + shape)
                y = rng.integers(0, 2, (4, 1)).astype("float32")
            else:
                x = rng.standard_normal((4,) + shape).astype("float32")
                y = rng.standard_normal((4, 1)).astype("float32")
            data[f"{name}/x{step}"], data[f"{name}/y{step}"] = x, y
            data[f"{name}/loss{step}"] = np.asarray(model.train_on_batch(x, y))
            for k, v in enumerate(model.get_weights()):
                data[f"{name}/step{step}/{k}"] = v
        data[f"{name}/eval"] = np.asarray(model.evaluate(x, y, verbose=0))
        meta["models"].append({"name": name, "optimizer": opt, "loss": loss, "num_weights": len(weights),
                               "config": json.loads(json.dumps(model.get_config()))})
    data["__meta__"] = meta_array(__file__, (keras, tf), **meta)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "regularization.npz")
    np.savez_compressed(out, **data)
    print("wrote", out)


if __name__ == "__main__":
    main()
