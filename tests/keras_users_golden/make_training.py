"""Generates training.npz here from Keras 3 on TensorFlow (run once, by hand):
sample_weight, class_weight, per-timestep weights, a masked sequence output, and a
3-tuple validation_data, each on a small model with fixed initial weights. Stores the
inputs, weights before and after, and the losses/metrics Keras reported.

Usage: python tests/keras_users_golden/make_training.py
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

L = keras.layers


def seq_model():
    return keras.Sequential([keras.Input((5, 2)), L.LSTM(3), L.Dense(1)])


def seq2seq_model():
    return keras.Sequential([keras.Input((5, 2)), L.LSTM(3, return_sequences=True),
                             L.TimeDistributed(L.Dense(1))])


def masked_model():
    return keras.Sequential([keras.Input((6,), dtype="int64"), L.Embedding(8, 3, mask_zero=True),
                             L.LSTM(3, return_sequences=True), L.Dense(2)])


def classifier():
    return keras.Sequential([keras.Input((5, 2)), L.GRU(3), L.Dense(1, activation="sigmoid")])


def init(model, rng):
    weights = [rng.uniform(-0.5, 0.5, w.shape).astype("float32") for w in model.get_weights()]
    model.set_weights(weights)
    return weights


def main():
    rng = np.random.default_rng(2026)
    data, meta = {}, {"cases": {}}

    def put(case, key, value):
        data[f"{case}/{key}"] = np.asarray(value)

    # 1. fit with per-sample weights and a 3-tuple validation_data.
    m = seq_model()
    w = init(m, rng)
    m.compile(keras.optimizers.SGD(0.1), "mse", metrics=["mae"])
    x, y = rng.standard_normal((8, 5, 2)).astype("float32"), rng.standard_normal((8, 1)).astype("float32")
    sw = rng.uniform(0, 2, 8).astype("float32")
    vx, vy = rng.standard_normal((4, 5, 2)).astype("float32"), rng.standard_normal((4, 1)).astype("float32")
    vw = rng.uniform(0, 2, 4).astype("float32")
    h = m.fit(x, y, sample_weight=sw, batch_size=4, epochs=2, shuffle=False, verbose=0,
              validation_data=(vx, vy, vw))
    for k, v in dict(x=x, y=y, sw=sw, vx=vx, vy=vy, vw=vw).items():
        put("fit_sample_weight", k, v)
    for k, a in enumerate(w):
        put("fit_sample_weight", f"w{k}", a)
    for k, a in enumerate(m.get_weights()):
        put("fit_sample_weight", f"after{k}", a)
    for key, values in h.history.items():
        put("fit_sample_weight", f"history/{key}", values)
    meta["cases"]["fit_sample_weight"] = {"history": sorted(h.history), "n": len(w)}
    put("fit_sample_weight", "evaluate", m.evaluate(vx, vy, sample_weight=vw, verbose=0))

    # 2. fit with class_weight.
    m = classifier()
    w = init(m, rng)
    m.compile(keras.optimizers.SGD(0.5), "binary_crossentropy", metrics=["accuracy"])
    x = rng.standard_normal((8, 5, 2)).astype("float32")
    y = rng.integers(0, 2, (8, 1)).astype("float32")
    cw = {0: 0.3, 1: 2.0}
    h = m.fit(x, y, class_weight=cw, batch_size=4, epochs=2, shuffle=False, verbose=0)
    for k, v in dict(x=x, y=y).items():
        put("fit_class_weight", k, v)
    for k, a in enumerate(w):
        put("fit_class_weight", f"w{k}", a)
    for k, a in enumerate(m.get_weights()):
        put("fit_class_weight", f"after{k}", a)
    for key, values in h.history.items():
        put("fit_class_weight", f"history/{key}", values)
    meta["cases"]["fit_class_weight"] = {"history": sorted(h.history), "n": len(w),
                                         "class_weight": cw}

    # 3. train_on_batch with per-timestep weights on a sequence output.
    m = seq2seq_model()
    w = init(m, rng)
    m.compile(keras.optimizers.SGD(0.1), "mse")
    x, y = rng.standard_normal((4, 5, 2)).astype("float32"), rng.standard_normal((4, 5, 1)).astype("float32")
    sw = rng.uniform(0, 2, (4, 5)).astype("float32")
    loss = m.train_on_batch(x, y, sample_weight=sw)
    for k, v in dict(x=x, y=y, sw=sw, loss=loss).items():
        put("temporal_weight", k, v)
    for k, a in enumerate(w):
        put("temporal_weight", f"w{k}", a)
    for k, a in enumerate(m.get_weights()):
        put("temporal_weight", f"after{k}", a)
    meta["cases"]["temporal_weight"] = {"n": len(w)}

    # 4. masked sequence output: loss and metrics weighted by the mask.
    m = masked_model()
    w = init(m, rng)
    m.compile(keras.optimizers.SGD(0.1), "mse", metrics=["mae"])
    x = np.array([[0, 0, 3, 4, 1, 2], [0, 5, 6, 7, 1, 1], [0, 0, 0, 0, 2, 3], [1, 2, 3, 4, 5, 6]])
    y = rng.standard_normal((4, 6, 2)).astype("float32")
    ev = m.evaluate(x, y, verbose=0, return_dict=True)
    tr = m.train_on_batch(x, y, return_dict=True)
    for k, v in dict(x=x, y=y, eval_loss=ev["loss"], eval_mae=ev["mae"], train_loss=tr["loss"],
                     train_mae=tr["mae"]).items():
        put("masked_output", k, v)
    for k, a in enumerate(w):
        put("masked_output", f"w{k}", a)
    for k, a in enumerate(m.get_weights()):
        put("masked_output", f"after{k}", a)
    meta["cases"]["masked_output"] = {"n": len(w)}

    meta.update(keras_version=keras.__version__, tensorflow_version=tf.__version__,
                numpy_version=np.__version__)
    data["__meta__"] = meta_array(__file__, (keras, tf), **meta)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "training.npz")
    np.savez_compressed(out, **data)
    print("wrote", out)


if __name__ == "__main__":
    main()
