"""Generates tests/golden/optimizers_golden.npz from Keras 3 (run once, by hand).

Each case runs one Keras optimizer for several steps on three variables with given
gradients and stores the initial values, the gradients and the values after each
step. tests/test_optimizers.py replays the gradients through crnn.optimizers and
compares; the test suite itself never imports Keras or TensorFlow.

Usage: KERAS_BACKEND=tensorflow python tests/golden/make_optimizers_golden.py
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from golden_meta import meta_array  # noqa: E402

STEPS = 6
SHAPES = [(3, 4), (4,), (2, 3)]
# Changing magnitudes make the clipping options bite on some steps only, and
# shrinking ones make AMSGrad's running maximum differ from v.
GRAD_SCALES = [3.0, 0.1, 2.0, 0.05, 1.0, 0.01]

CASES = [
    ("sgd_default", "SGD", {}),
    ("sgd_momentum", "SGD", {"learning_rate": 0.1, "momentum": 0.9}),
    ("sgd_nesterov", "SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    ("sgd_clipnorm", "SGD", {"learning_rate": 0.1, "clipnorm": 0.5}),
    ("sgd_clipvalue", "SGD", {"learning_rate": 0.1, "clipvalue": 0.3}),
    ("sgd_global_clipnorm", "SGD", {"learning_rate": 0.1, "global_clipnorm": 0.7}),
    ("rmsprop_default", "RMSprop", {}),
    ("rmsprop_momentum", "RMSprop", {"learning_rate": 0.01, "rho": 0.8, "momentum": 0.5}),
    ("rmsprop_centered", "RMSprop", {"learning_rate": 0.01, "centered": True}),
    (
        "rmsprop_centered_momentum",
        "RMSprop",
        {"learning_rate": 0.01, "centered": True, "momentum": 0.3, "epsilon": 1e-4},
    ),
    ("adam_default", "Adam", {}),
    ("adam_custom", "Adam", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.95, "epsilon": 1e-3}),
    ("adam_amsgrad", "Adam", {"learning_rate": 0.01, "amsgrad": True}),
    ("adam_clipnorm", "Adam", {"learning_rate": 0.01, "clipnorm": 1.0}),
    ("adam_global_clipnorm", "Adam", {"learning_rate": 0.01, "global_clipnorm": 1.0}),
    ("adagrad_default", "Adagrad", {}),
    ("adagrad_custom", "Adagrad", {"learning_rate": 0.05, "initial_accumulator_value": 0.5, "epsilon": 1e-3}),
]
DTYPES = ["float32", "float64"]


def run_case(class_name, config, dtype, rng):
    init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [
        [(GRAD_SCALES[t] * rng.standard_normal(s)).astype(dtype) for s in SHAPES] for t in range(STEPS)
    ]
    variables = [keras.Variable(v, dtype=dtype) for v in init]
    optimizer = getattr(keras.optimizers, class_name)(**config)
    trajectory = []
    for t in range(STEPS):
        optimizer.apply([keras.ops.convert_to_tensor(g) for g in grads[t]], variables)
        trajectory.append([np.array(v.numpy()) for v in variables])
    return init, grads, trajectory


def main():
    rng = np.random.default_rng(20240611)
    data = {}
    index = []
    for name, class_name, config in CASES:
        for dtype in DTYPES:
            key = f"{name}__{dtype}"
            init, grads, trajectory = run_case(class_name, config, dtype, rng)
            for i, v in enumerate(init):
                data[f"{key}/init/{i}"] = v
            for t in range(STEPS):
                for i in range(len(SHAPES)):
                    data[f"{key}/grad/{t}/{i}"] = grads[t][i]
                    data[f"{key}/value/{t}/{i}"] = trajectory[t][i]
            index.append({"key": key, "class_name": class_name, "config": config, "dtype": dtype})
    data["__meta__"] = meta_array(__file__, [keras], steps=STEPS, num_variables=len(SHAPES),
                                  cases=index)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optimizers_golden.npz")
    np.savez_compressed(out, **data)
    print(f"wrote {len(index)} cases to {out} (keras {keras.__version__}, {keras.backend.backend()})")


if __name__ == "__main__":
    main()
