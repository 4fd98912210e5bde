"""Generates tests/golden/losses_golden.npz from Keras 3 (run once, by hand).

For each case it stores y_true, y_pred, Keras's loss value (default reduction
"sum_over_batch_size") and the gradient of that value with respect to y_pred,
taken with tf.GradientTape. Cases include probabilities outside the clipping
range [1e-7, 1 - 1e-7] and categorical "probabilities" that do not sum to 1.
tests/test_losses.py compares crnn.losses against them without Keras.

Usage: KERAS_BACKEND=tensorflow python tests/golden/make_losses_golden.py
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from golden_meta import meta_array  # noqa: E402

KERAS_CLASSES = {
    "mean_squared_error": keras.losses.MeanSquaredError,
    "mean_absolute_error": keras.losses.MeanAbsoluteError,
    "binary_crossentropy": keras.losses.BinaryCrossentropy,
    "categorical_crossentropy": keras.losses.CategoricalCrossentropy,
    "sparse_categorical_crossentropy": keras.losses.SparseCategoricalCrossentropy,
}


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def build_cases(rng):
    cases = []
    for shape in [(4, 3), (2, 5, 3), (4, 1)]:
        y_true = rng.standard_normal(shape)
        y_pred = rng.standard_normal(shape)
        cases.append(("mean_squared_error", {}, y_true, y_pred))
        cases.append(("mean_absolute_error", {}, y_true, y_pred))
        bits = (rng.random(shape) > 0.5).astype(float)
        probs = rng.random(shape)
        probs.flat[0] = 1e-9  # below the clip range
        probs.flat[-1] = 1.0  # above it
        cases.append(("binary_crossentropy", {}, bits, probs))
        cases.append(("binary_crossentropy", {"from_logits": True}, bits, 5 * rng.standard_normal(shape)))
        cases.append(("binary_crossentropy", {"label_smoothing": 0.2}, bits, probs))
    for shape in [(4, 3), (2, 5, 4)]:
        labels = rng.integers(0, shape[-1], shape[:-1])
        onehot = np.eye(shape[-1])[labels]
        probs = softmax(3 * rng.standard_normal(shape))
        probs[0, ..., 0] = 1e-9
        unnormalized = rng.random(shape) + 0.1
        logits = 3 * rng.standard_normal(shape)
        cases += [
            ("categorical_crossentropy", {}, onehot, probs),
            ("categorical_crossentropy", {}, onehot, unnormalized),
            ("categorical_crossentropy", {"from_logits": True}, onehot, logits),
            ("categorical_crossentropy", {"label_smoothing": 0.1}, onehot, unnormalized),
            ("sparse_categorical_crossentropy", {}, labels, probs),
            ("sparse_categorical_crossentropy", {}, labels, unnormalized),
            ("sparse_categorical_crossentropy", {"from_logits": True}, labels, logits),
            ("sparse_categorical_crossentropy", {}, labels[..., None], probs),
        ]
    # Keras's squeeze-or-expand rule for a trailing axis of size 1.
    cases.append(("mean_squared_error", {}, rng.standard_normal(4), rng.standard_normal((4, 1))))
    cases.append(("mean_squared_error", {}, rng.standard_normal((4, 1)), rng.standard_normal(4)))
    cases.append(("mean_squared_error", {}, rng.standard_normal((2, 3)), rng.standard_normal((2, 3, 1))))
    return cases


def main():
    rng = np.random.default_rng(7)
    data = {}
    index = []
    for dtype in ("float32", "float64"):
        for k, (name, config, y_true, y_pred) in enumerate(build_cases(rng)):
            y_pred = y_pred.astype(dtype)
            if y_true.dtype.kind == "f":
                y_true = y_true.astype(dtype)
            loss = KERAS_CLASSES[name](dtype=dtype, **config)
            variable = tf.Variable(y_pred)
            with tf.GradientTape() as tape:
                value = loss(tf.constant(y_true), variable)
            grad = tape.gradient(value, variable).numpy()
            key = f"{dtype}_{k:02d}_{name}"
            data[f"{key}/y_true"] = y_true
            data[f"{key}/y_pred"] = y_pred
            data[f"{key}/value"] = np.array(float(value))
            data[f"{key}/grad"] = grad
            index.append({"key": key, "name": name, "config": config, "dtype": dtype})
    data["__meta__"] = meta_array(__file__, [keras], cases=index)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "losses_golden.npz")
    np.savez_compressed(out, **data)
    print(f"wrote {len(index)} cases to {out}")


if __name__ == "__main__":
    main()
