"""Generates layers.npz here from Keras 3 on TensorFlow (run once, by hand): outputs of
Conv1D, RepeatVector, Flatten, Reshape, global/windowed 1-D pooling (masked too), LayerNormalization
and BatchNormalization (inference, and training with the moving statistics it leaves) for
fixed inputs and weights, and each layer's Keras config.

Usage: python tests/keras_users_golden/make_layers.py
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
CASES = [
    ("repeat_vector", "RepeatVector", {"n": 3}, (2, 4)),
    ("flatten", "Flatten", {}, (2, 3, 4)),
    ("reshape", "Reshape", {"target_shape": [4, 3]}, (2, 3, 4)),
    ("reshape_infer", "Reshape", {"target_shape": [-1, 2]}, (2, 3, 4)),
    ("gap", "GlobalAveragePooling1D", {}, (3, 5, 4)),
    ("gap_keepdims", "GlobalAveragePooling1D", {"keepdims": True}, (3, 5, 4)),
    ("gmp", "GlobalMaxPooling1D", {}, (3, 5, 4)),
    ("maxpool", "MaxPooling1D", {"pool_size": 2}, (2, 7, 3)),
    ("maxpool_same_s2", "MaxPooling1D", {"pool_size": 3, "strides": 2, "padding": "same"}, (2, 8, 3)),
    ("avgpool", "AveragePooling1D", {"pool_size": 3, "strides": 1}, (2, 7, 3)),
    ("avgpool_same", "AveragePooling1D", {"pool_size": 3, "strides": 2, "padding": "same"}, (2, 8, 3)),
    ("layernorm", "LayerNormalization", {}, (2, 5, 4)),
    ("layernorm_eps", "LayerNormalization", {"epsilon": 1e-5, "center": False}, (3, 6)),
    ("batchnorm", "BatchNormalization", {}, (4, 5, 3)),
    ("batchnorm_momentum", "BatchNormalization", {"momentum": 0.9, "epsilon": 1e-2, "scale": False},
     (6, 3)),
    ("conv_valid", "Conv1D", {"filters": 4, "kernel_size": 3}, (2, 9, 3)),
    ("conv_same_stride", "Conv1D", {"filters": 3, "kernel_size": 4, "strides": 2, "padding": "same",
                                    "activation": "tanh"}, (2, 9, 2)),
    ("conv_causal_dilated", "Conv1D", {"filters": 2, "kernel_size": 3, "padding": "causal",
                                       "dilation_rate": 2}, (3, 10, 3)),
    ("conv_same_dilated_nobias", "Conv1D", {"filters": 3, "kernel_size": 2, "padding": "same",
                                            "dilation_rate": 3, "use_bias": False}, (2, 8, 2)),
]
MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0]], dtype=bool)


def main():
    rng = np.random.default_rng(99)
    data, index = {}, []
    for name, cls, config, shape in CASES:
        layer = getattr(L, cls)(**config)
        x = rng.standard_normal(shape).astype("float32")
        layer.build(shape)
        weights = [(rng.uniform(0.5, 1.5, w.shape) if "variance" in w.path or "gamma" in w.path
                    else rng.uniform(-0.5, 0.5, w.shape)).astype("float32") for w in layer.weights]
        layer.set_weights(weights)
        data[f"{name}/x"] = x
        for k, w in enumerate(weights):
            data[f"{name}/w{k}"] = w
        data[f"{name}/y"] = np.asarray(layer(x, training=False))
        entry = {"name": name, "class_name": cls, "config": config, "num_weights": len(weights),
                 "keras_config": layer.get_config()}
        if cls == "BatchNormalization":
            data[f"{name}/y_train"] = np.asarray(layer(x, training=True))
            for k, w in enumerate(layer.get_weights()):
                data[f"{name}/after{k}"] = w
        if cls == "GlobalAveragePooling1D":
            data[f"{name}/mask"] = MASK
            data[f"{name}/y_masked"] = np.asarray(layer(x, mask=tf.constant(MASK)))
            entry["masked"] = True
        index.append(entry)
    data["__meta__"] = meta_array(__file__, (keras, tf), cases=json.loads(json.dumps(index)))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "layers.npz")
    np.savez_compressed(out, **data)
    print("wrote", out)


if __name__ == "__main__":
    main()
