"""Generates utils.npz here from Keras 3 (run once, by hand): outputs of
keras.utils.to_categorical, pad_sequences and timeseries_dataset_from_array (unshuffled)
for the cases that tests/test_keras_users_utils.py replays through crnn.utils.

Usage: python tests/keras_users_golden/make_utils.py
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

SEQS = [[1, 2, 3, 4, 5], [6], [], [7, 8, 9]]
FEATURE_SEQS = [np.arange(6.0).reshape(3, 2), np.arange(4.0).reshape(2, 2) + 10]
PAD_CASES = [
    ("default", SEQS, {}),
    ("maxlen3", SEQS, {"maxlen": 3}),
    ("post_post", SEQS, {"maxlen": 3, "padding": "post", "truncating": "post"}),
    ("pre_post", SEQS, {"maxlen": 4, "padding": "pre", "truncating": "post", "value": -1}),
    ("float_value", SEQS, {"maxlen": 6, "dtype": "float32", "value": 0.5, "padding": "post"}),
    ("features", FEATURE_SEQS, {"maxlen": 4, "dtype": "float64"}),
]
CAT_CASES = [
    ("vector", [0, 2, 1, 2], {}),
    ("num_classes", [0, 2, 1], {"num_classes": 5}),
    ("column", [[1], [0], [3]], {}),
    ("matrix", [[0, 1], [2, 1]], {}),
]
TS_CASES = [
    ("basic", {"sequence_length": 4, "batch_size": 5}),
    ("stride_rate", {"sequence_length": 3, "sequence_stride": 2, "sampling_rate": 2, "batch_size": 4}),
    ("start_end", {"sequence_length": 3, "start_index": 2, "end_index": 15, "batch_size": 3}),
    ("no_batch", {"sequence_length": 5, "sequence_stride": 3, "batch_size": None}),
]


def main():
    data, meta = {}, {"pad": [], "categorical": [], "timeseries": []}
    for name, seqs, kw in PAD_CASES:
        data[f"pad/{name}"] = keras.utils.pad_sequences(seqs, **kw)
        meta["pad"].append({"name": name, "kwargs": kw, "features": name == "features"})
    for name, x, kw in CAT_CASES:
        data[f"cat/{name}/x"] = np.array(x)
        data[f"cat/{name}"] = keras.utils.to_categorical(np.array(x), **kw)
        meta["categorical"].append({"name": name, "kwargs": kw})
    series = np.arange(20.0).reshape(20, 1) * 1.5
    targets = np.arange(100, 120)
    data["ts/series"] = series
    data["ts/targets"] = targets
    for name, kw in TS_CASES:
        ds = keras.utils.timeseries_dataset_from_array(series, targets, **kw)
        batches = list(ds.as_numpy_iterator())
        data[f"ts/{name}/count"] = np.array(len(batches))
        for k, (xb, yb) in enumerate(batches):
            data[f"ts/{name}/{k}/x"] = xb
            data[f"ts/{name}/{k}/y"] = yb
        meta["timeseries"].append({"name": name, "kwargs": kw})
    meta.update(keras_version=keras.__version__, tensorflow_version=tf.__version__,
                numpy_version=np.__version__)
    data["__meta__"] = meta_array(__file__, (keras, tf), **meta)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "utils.npz")
    np.savez_compressed(out, **data)
    print("wrote", out)


if __name__ == "__main__":
    main()
