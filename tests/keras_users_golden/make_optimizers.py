"""Generates optimizers.npz here from Keras 3 on TensorFlow (run once, by hand).

Two kinds of cases, each a few optimizer steps stored as initial values, gradients and
the values after every step:

* dense: AdamW, Adamax, Nadam (and the older optimizers with ``weight_decay`` or a
  learning-rate schedule) on three variables with dense gradients;
* sparse: an embedding-like (vocabulary, dim) variable whose gradient is a
  ``tf.IndexedSlices`` with repeated indices, as an ``Embedding`` lookup produces;
  ``crnn.optimizers`` must apply it as Keras on TensorFlow does (per row occurrence).

tests/test_keras_users_optimizers.py replays the cases; the suite never imports Keras.

Usage: python tests/keras_users_golden/make_optimizers.py
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

STEPS = 6
SHAPES = [(3, 4), (4,), (2, 3)]
GRAD_SCALES = [3.0, 0.1, 2.0, 0.05, 1.0, 0.01]
VOCAB, DIM = 7, 3
# Each step's row indices: repeats, rows absent at some steps.
SPARSE_INDICES = [[1, 1, 3, 0, 1], [2, 5, 5], [1, 6, 6, 6, 0], [3], [0, 0, 2, 4, 4, 1], [5, 1]]


def schedule(name, config):
    return {"module": "keras.optimizers.schedules", "class_name": name, "config": config,
            "registered_name": None}


DENSE_CASES = [
    ("adamw_default", "AdamW", {}),
    ("adamw_custom", "AdamW", {"learning_rate": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("adamax_default", "Adamax", {}),
    ("adamax_custom", "Adamax", {"learning_rate": 0.02, "beta_1": 0.8, "beta_2": 0.9, "epsilon": 1e-3}),
    ("nadam_default", "Nadam", {}),
    ("nadam_custom", "Nadam", {"learning_rate": 0.01, "beta_1": 0.85, "beta_2": 0.95, "clipnorm": 1.0}),
    ("sgd_weight_decay", "SGD", {"learning_rate": 0.1, "momentum": 0.5, "weight_decay": 0.05}),
    ("adam_exponential", "Adam", {"learning_rate": schedule(
        "ExponentialDecay", {"initial_learning_rate": 0.05, "decay_steps": 2, "decay_rate": 0.7})}),
    ("adam_exponential_staircase", "Adam", {"learning_rate": schedule(
        "ExponentialDecay", {"initial_learning_rate": 0.05, "decay_steps": 2, "decay_rate": 0.7,
                             "staircase": True})}),
    ("sgd_inverse_time", "SGD", {"learning_rate": schedule(
        "InverseTimeDecay", {"initial_learning_rate": 0.1, "decay_steps": 1.5, "decay_rate": 0.3})}),
    ("rmsprop_piecewise", "RMSprop", {"learning_rate": schedule(
        "PiecewiseConstantDecay", {"boundaries": [1, 3], "values": [0.01, 0.005, 0.001]})}),
    ("adam_cosine", "Adam", {"learning_rate": schedule(
        "CosineDecay", {"initial_learning_rate": 0.02, "decay_steps": 4, "alpha": 0.1})}),
    ("nadam_cosine_warmup", "Nadam", {"learning_rate": schedule(
        "CosineDecay", {"initial_learning_rate": 0.0, "decay_steps": 3, "warmup_target": 0.03,
                        "warmup_steps": 2})}),
]

SPARSE_CASES = [
    ("sgd", "SGD", {"learning_rate": 0.1}),
    ("sgd_momentum", "SGD", {"learning_rate": 0.1, "momentum": 0.9}),
    ("rmsprop", "RMSprop", {"learning_rate": 0.01}),
    ("rmsprop_centered_momentum", "RMSprop", {"learning_rate": 0.01, "centered": True, "momentum": 0.5}),
    ("adam", "Adam", {"learning_rate": 0.01}),
    ("adam_amsgrad", "Adam", {"learning_rate": 0.01, "amsgrad": True}),
    ("adam_clipnorm", "Adam", {"learning_rate": 0.01, "clipnorm": 0.5}),
    ("adagrad", "Adagrad", {"learning_rate": 0.05}),
    ("adamw", "AdamW", {"learning_rate": 0.01}),
    ("adamax", "Adamax", {"learning_rate": 0.01}),
    ("nadam", "Nadam", {"learning_rate": 0.01}),
]
DTYPES = ["float32", "float64"]


def make_optimizer(class_name, config):
    config = dict(config)
    if isinstance(config.get("learning_rate"), dict):
        config["learning_rate"] = keras.optimizers.schedules.deserialize(config["learning_rate"])
    return getattr(keras.optimizers, class_name)(**config)


def run_dense(class_name, config, dtype, rng):
    init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[(GRAD_SCALES[t] * rng.standard_normal(s)).astype(dtype) for s in SHAPES]
             for t in range(STEPS)]
    variables = [keras.Variable(v, dtype=dtype) for v in init]
    optimizer = make_optimizer(class_name, config)
    trajectory = []
    for t in range(STEPS):
        optimizer.apply([tf.convert_to_tensor(g) for g in grads[t]], variables)
        trajectory.append([np.array(v.numpy()) for v in variables])
    return init, grads, trajectory


def run_sparse(class_name, config, dtype, rng):
    init = rng.standard_normal((VOCAB, DIM)).astype(dtype)
    values = [(GRAD_SCALES[t] * rng.standard_normal((len(SPARSE_INDICES[t]), DIM))).astype(dtype)
              for t in range(STEPS)]
    variable = keras.Variable(init, dtype=dtype)
    optimizer = make_optimizer(class_name, config)
    trajectory = []
    for t in range(STEPS):
        grad = tf.IndexedSlices(tf.constant(values[t]), tf.constant(SPARSE_INDICES[t], tf.int64),
                                tf.constant([VOCAB, DIM], tf.int64))
        optimizer.apply([grad], [variable])
        trajectory.append(np.array(variable.numpy()))
    return init, values, trajectory


def main():
    rng = np.random.default_rng(20261202)
    data = {}
    index = []
    for name, class_name, config in DENSE_CASES:
        for dtype in DTYPES:
            key = f"dense/{name}__{dtype}"
            init, grads, trajectory = run_dense(class_name, config, dtype, rng)
            for i, v in enumerate(init):
                data[f"{key}/init/{i}"] = v
            for t in range(STEPS):
                for i in range(len(SHAPES)):
                    data[f"{key}/grad/{t}/{i}"] = grads[t][i]
                    data[f"{key}/value/{t}/{i}"] = trajectory[t][i]
            index.append({"key": key, "kind": "dense", "class_name": class_name, "config": config,
                          "dtype": dtype})
    for name, class_name, config in SPARSE_CASES:
        for dtype in DTYPES:
            key = f"sparse/{name}__{dtype}"
            init, values, trajectory = run_sparse(class_name, config, dtype, rng)
            data[f"{key}/init"] = init
            for t in range(STEPS):
                data[f"{key}/values/{t}"] = values[t]
                data[f"{key}/indices/{t}"] = np.array(SPARSE_INDICES[t], np.int64)
                data[f"{key}/value/{t}"] = trajectory[t]
            index.append({"key": key, "kind": "sparse", "class_name": class_name, "config": config,
                          "dtype": dtype})
    meta = {"keras_version": keras.__version__, "tensorflow_version": tf.__version__,
            "numpy_version": np.__version__, "backend": keras.backend.backend(), "steps": STEPS,
            "num_variables": len(SHAPES), "cases": index}
    data["__meta__"] = meta_array(__file__, (keras, tf), **meta)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optimizers.npz")
    np.savez_compressed(out, **data)
    print(f"wrote {len(index)} cases to {out} (keras {keras.__version__}, tf {tf.__version__})")


if __name__ == "__main__":
    main()
