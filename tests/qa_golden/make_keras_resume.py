"""Keras files whose training crnn must continue exactly as Keras does (QA regressions).

Each case trains a small Keras model 3 steps, saves it as ``.keras`` and ``.h5`` (the file
bytes are stored in the ``.npz``), then reloads the ``.keras`` file in Keras and takes 2 more
``train_on_batch`` steps: the weights after them are the golden values. The cases are the
compile configs crnn once failed to restore: AdamW's ``weight_decay``, Adamax's and Nadam's
slot order (and Nadam's momentum-schedule product), learning-rate schedules (no
``learning_rate`` variable in the file), and loss configs with ``axis``/``ignore_class``.

Run from the repository root with Keras 3 (TensorFlow backend):
``python tests/qa_golden/make_keras_resume.py``.
"""

import os
import sys
import tempfile
import warnings
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from golden_meta import meta_array  # noqa: E402

O = keras.optimizers
S = O.schedules
CASES = {
    "adamw": (lambda: O.AdamW(0.01, weight_decay=0.1, amsgrad=True), "mse", None),
    "adamax": (lambda: O.Adamax(0.01), "mse", None),
    "nadam": (lambda: O.Nadam(0.01), "mse", None),
    "adam_exponential_decay": (lambda: O.Adam(S.ExponentialDecay(0.01, 3, 0.5)), "mse", None),
    "sgd_piecewise": (lambda: O.SGD(S.PiecewiseConstantDecay([2, 4], [0.1, 0.05, 0.01]),
                                    momentum=0.5), "mse", None),
    "cce_label_smoothing": (lambda: O.Adam(0.01),
                            keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
                            "softmax"),
    "scce_from_logits": (lambda: O.RMSprop(0.01),
                         keras.losses.SparseCategoricalCrossentropy(from_logits=True), None),
    "bce_from_logits": (lambda: O.Adagrad(0.05),
                        keras.losses.BinaryCrossentropy(from_logits=True), None),
}


def _targets(case, rng):
    if case.startswith("scce"):
        return rng.integers(0, 3, (6,)).astype("int32")
    if case.startswith("cce"):
        return np.eye(3, dtype="float32")[rng.integers(0, 3, 6)]
    if case.startswith("bce"):
        return rng.integers(0, 2, (6, 3)).astype("float32")
    return rng.normal(size=(6, 3)).astype("float32")


def main():
    arrays = {}
    tmp = tempfile.mkdtemp()
    for case, (optimizer, loss, activation) in CASES.items():
        rng = np.random.default_rng(zlib.crc32(case.encode()))
        keras.utils.set_random_seed(zlib.crc32(case.encode()) % 2**31)
        model = keras.Sequential([keras.Input((4, 3)), keras.layers.LSTM(3),
                                  keras.layers.Dense(3, activation=activation)])
        model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32")
                           for w in model.get_weights()])
        x = rng.normal(size=(6, 4, 3)).astype("float32")
        y = _targets(case, rng)
        model.compile(optimizer=optimizer(), loss=loss)
        for _ in range(3):
            model.train_on_batch(x, y)
        for fmt in ("keras", "h5"):
            path = os.path.join(tmp, f"{case}.{fmt}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")     # Keras calls .h5 legacy
                model.save(path)
            with open(path, "rb") as f:
                arrays[f"{case}/{fmt}_file"] = np.frombuffer(f.read(), np.uint8)
        reference = keras.models.load_model(os.path.join(tmp, f"{case}.keras"))
        losses = [float(reference.train_on_batch(x, y)) for _ in range(2)]
        arrays[f"{case}/x"], arrays[f"{case}/y"] = x, y
        arrays[f"{case}/losses"] = np.array(losses)
        for k, w in enumerate(reference.get_weights()):
            arrays[f"{case}/weight_{k}"] = w
    arrays["__meta__"] = meta_array(__file__, [keras], cases=sorted(CASES), steps_before=3,
                                    steps_after=2)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_resume.npz")
    np.savez_compressed(out, **arrays)
    print("wrote", out, os.path.getsize(out), "bytes")


if __name__ == "__main__":
    main()
