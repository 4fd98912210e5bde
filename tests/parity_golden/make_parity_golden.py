"""Generate tests/parity_golden/parity_golden.npz from Keras 3 (TensorFlow backend).

Run once by hand (Keras is not a test dependency):

    python tests/parity_golden/make_parity_golden.py

Contents:
  act_x, act_dy                      inputs and upstream gradient for the activations
  act_<name>_y, act_<name>_dx        keras.layers.Activation(name) output and d(sum(y*dy))/dx
  ts_w<k>, ts_x4, ts_y4              LSTM->Dense model declared with Input((6, 3)), its weights,
                                     and its predictions on 4-timestep inputs
  emb_w<k>, emb_tok5, emb_y5         Embedding(mask_zero)->GRU declared with Input((8,)),
                                     predictions on 5-token inputs
  cfg_w<k>, cfg_x, cfg_y             weights, inputs and predictions of the Sequential model
                                     whose config is in keras_configs.json ("model")

and tests/parity_golden/keras_configs.json: Keras's get_config() of that model and of
single layers, as JSON.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from golden_meta import golden_meta, meta_array  # noqa: E402

ACTIVATIONS = ["gelu", "leaky_relu", "relu6", "log_softmax", "mish", "hard_silu"]


def main():
    rng = np.random.default_rng(20240611)
    out = {}
    x = (rng.standard_normal((3, 4, 5)) * 3).astype("float32")
    dy = rng.standard_normal(x.shape).astype("float32")
    out["act_x"], out["act_dy"] = x, dy
    for name in ACTIVATIONS:
        xv = tf.Variable(x)
        with tf.GradientTape() as tape:
            y = keras.layers.Activation(name)(xv)
            total = tf.reduce_sum(y * dy)
        out[f"act_{name}_y"] = y.numpy()
        out[f"act_{name}_dx"] = tape.gradient(total, xv).numpy()

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((6, 3)), keras.layers.LSTM(4),
                              keras.layers.Dense(2)])
    for k, w in enumerate(model.get_weights()):
        out[f"ts_w{k}"] = w
    out["ts_x4"] = rng.standard_normal((5, 4, 3)).astype("float32")
    out["ts_y4"] = model.predict(out["ts_x4"], verbose=0)

    model = keras.Sequential([keras.Input((8,)), keras.layers.Embedding(7, 3, mask_zero=True),
                              keras.layers.GRU(4)])
    for k, w in enumerate(model.get_weights()):
        out[f"emb_w{k}"] = w
    tok = rng.integers(1, 7, (4, 5))
    tok[0, 3:] = 0
    tok[1, :2] = 0
    out["emb_tok5"] = tok
    out["emb_y5"] = model.predict(tok, verbose=0)

    layers = keras.layers
    model = keras.Sequential([
        keras.Input((6, 3)), layers.Masking(0.0),
        layers.LSTM(4, return_sequences=True, dropout=0.1, unit_forget_bias=False),
        layers.Bidirectional(layers.GRU(3, reset_after=False), merge_mode="ave"),
        layers.Dropout(0.2), layers.Dense(2, activation="softmax")])
    for k, w in enumerate(model.get_weights()):
        out[f"cfg_w{k}"] = w
    out["cfg_x"] = rng.standard_normal((5, 6, 3)).astype("float32")
    out["cfg_x"][0, 4:] = 0.0
    out["cfg_y"] = model.predict(out["cfg_x"], verbose=0)
    configs = {"__meta__": golden_meta(__file__, [keras]), "model": model.get_config()}
    for layer in [layers.LSTM(5, return_sequences=True, go_backwards=True),
                  layers.GRU(3, reset_after=False, activation="relu"),
                  layers.SimpleRNN(2, use_bias=False),
                  layers.Bidirectional(layers.LSTM(3, return_sequences=True),
                                       merge_mode="mul"),
                  layers.TimeDistributed(layers.Dense(2, activation="tanh")),
                  layers.Embedding(9, 4, mask_zero=True), layers.Masking(-1.0),
                  layers.Dropout(0.3), layers.Activation("gelu")]:
        configs[type(layer).__name__] = layer.get_config()
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "keras_configs.json"), "w") as f:
        json.dump(configs, f, indent=1, sort_keys=True)

    out["__meta__"] = meta_array(__file__, [keras])
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "parity_golden.npz")
    np.savez_compressed(path, **out)
    print("wrote", path, "with", len(out), "arrays")


if __name__ == "__main__":
    main()
