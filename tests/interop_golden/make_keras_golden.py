"""Generate the Keras fixtures in tests/interop_golden/ (run once by hand, with Keras installed).

    python tests/interop_golden/make_keras_golden.py

Keras and TensorFlow are not test dependencies: the tests read the files written here with
h5py and compare crnn's predictions with the Keras predictions stored in keras_golden.npz.

Files:
  <name>.keras           Keras 3 archives saved by ``model.save``
  <name>.h5              legacy HDF5 files saved by Keras 3's ``model.save("....h5")``
  keras2_stack.h5        a Keras 2 / tf.keras 2.x layout (``model_config`` in Keras 2 form,
                         ``weight_names`` ending in ``:0``, keras_version 2.15.0), written with
                         h5py from the weights of ``stack``: tf.keras 2 is not installable next
                         to Keras 3, so this script writes that layout itself
  opt_<name>.keras       LSTM -> Bidirectional(GRU) -> Dense trained with SGD (momentum),
                         RMSprop (momentum, centered), Adam (amsgrad) and Adagrad; their
                         predictions ``opt_<name>_y`` on ``opt_x`` and after one more step on
                         ``opt_x[:3]``, ``opt_t[:3]``: ``opt_<name>_step_y``
  functional.keras       a functional (non-Sequential) model: crnn refuses it
  conv.keras             a Sequential model with a Conv1D layer: crnn refuses it
  keras_golden.npz       inputs ``<name>_x`` and Keras predictions ``<name>_y`` (stateful:
                         ``stateful_x1``/``stateful_y1`` then ``stateful_x2``/``stateful_y2``
                         in one run, states carried), ``stack``'s predictions after one
                         more Adam step on ``stack_x[:4]`` from the saved state
                         (``stack_step_y``, targets ``stack_train_y``), and ``versions`` (the library
                         versions that produced the files, as JSON)
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import sys

import h5py
import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from golden_meta import meta_array  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
L = keras.layers


def _save(model, name, h5=True):
    model.save(os.path.join(HERE, name + ".keras"))
    if h5:
        model.save(os.path.join(HERE, name + ".h5"))


def stack(rng, out):
    """Every float layer kind, trained a little with Adam so that the optimizer has state."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((6, 3)), L.Masking(0.0),
        L.LSTM(5, return_sequences=True),
        L.Bidirectional(L.GRU(4, return_sequences=True), merge_mode="concat"),
        L.TimeDistributed(L.Dense(3, activation="tanh")),
        L.SimpleRNN(3, return_sequences=True, go_backwards=True),
        L.Bidirectional(L.LSTM(2), merge_mode="sum"),
        L.Activation("relu"), L.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    x = rng.standard_normal((8, 6, 3)).astype("float32")
    x[0, 4:] = 0.0
    x[3, :2] = 0.0
    y = np.eye(2, dtype="float32")[rng.integers(0, 2, 8)]
    model.fit(x, y, epochs=2, batch_size=4, verbose=0, shuffle=False)
    _save(model, "stack")
    out["stack_x"] = x
    out["stack_y"] = model.predict(x, verbose=0)
    out["stack_train_y"] = y
    keras2_stack(model)
    # One more Adam step from the saved state: crnn's load must continue it exactly.
    model.train_on_batch(x[:4], y[:4])
    out["stack_step_y"] = model.predict(x, verbose=0)


def optimizers(rng, out):
    """Small models trained a little with each optimizer layout, then one more step."""
    cases = {
        "sgd": keras.optimizers.SGD(0.05, momentum=0.9),
        "rmsprop": keras.optimizers.RMSprop(0.01, momentum=0.5, centered=True),
        "amsgrad": keras.optimizers.Adam(0.01, amsgrad=True),
        "adagrad": keras.optimizers.Adagrad(0.1),
    }
    x = rng.standard_normal((6, 5, 2)).astype("float32")
    y = rng.standard_normal((6, 1)).astype("float32")
    out["opt_x"], out["opt_t"] = x, y
    for k, (name, optimizer) in enumerate(cases.items()):
        keras.utils.set_random_seed(10 + k)
        model = keras.Sequential([keras.Input((5, 2)), L.LSTM(3, return_sequences=True),
                                  L.Bidirectional(L.GRU(2)), L.Dense(1)])
        model.compile(optimizer=optimizer, loss="mse")
        model.fit(x, y, epochs=2, batch_size=3, verbose=0, shuffle=False)
        model.save(os.path.join(HERE, f"opt_{name}.keras"))
        out[f"opt_{name}_y"] = model.predict(x, verbose=0)
        model.train_on_batch(x[:3], y[:3])
        out[f"opt_{name}_step_y"] = model.predict(x, verbose=0)


def gru_v1(rng, out):
    """GRU reset_after=False, GRU reset_after=True, Bidirectional(merge 'ave'), SGD momentum."""
    keras.utils.set_random_seed(2)
    model = keras.Sequential([
        keras.Input((5, 2)),
        L.GRU(4, reset_after=False, return_sequences=True, recurrent_activation="hard_sigmoid"),
        L.Bidirectional(L.GRU(3, return_sequences=True, activation="relu"), merge_mode="ave"),
        L.LSTM(3, unit_forget_bias=False, use_bias=False), L.Dropout(0.3), L.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="mse",
                  metrics=["mae"])
    x = rng.standard_normal((6, 5, 2)).astype("float32")
    model.fit(x, rng.standard_normal((6, 1)).astype("float32"), epochs=1, batch_size=3,
              verbose=0)
    _save(model, "gru_v1")
    out["gru_v1_x"] = x
    out["gru_v1_y"] = model.predict(x, verbose=0)


def embedding(rng, out):
    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((7,), dtype="int32"), L.Embedding(10, 4, mask_zero=True),
        L.LSTM(5, return_sequences=True), L.GRU(3), L.Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    tok = rng.integers(1, 10, (5, 7))
    tok[0, 4:] = 0
    tok[2, :3] = 0
    _save(model, "embedding")
    out["embedding_x"] = tok.astype("int32")
    out["embedding_y"] = model.predict(tok, verbose=0)


def stateful(rng, out):
    keras.utils.set_random_seed(4)
    model = keras.Sequential([
        keras.Input(batch_shape=(2, 4, 3)),
        L.LSTM(5, stateful=True, return_sequences=True),
        L.Bidirectional(L.GRU(3, stateful=True)), L.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    _save(model, "stateful")
    x1 = rng.standard_normal((4, 4, 3)).astype("float32")
    x2 = rng.standard_normal((4, 4, 3)).astype("float32")
    for layer in model.layers:
        if hasattr(layer, "reset_state"):
            layer.reset_state()
    out["stateful_x1"], out["stateful_x2"] = x1, x2
    out["stateful_y1"] = model.predict(x1, batch_size=2, verbose=0)
    out["stateful_y2"] = model.predict(x2, batch_size=2, verbose=0)


def float64(rng, out):
    keras.utils.set_random_seed(5)
    model = keras.Sequential([
        keras.Input((5, 2), dtype="float64"), L.SimpleRNN(4, dtype="float64", activation="relu"),
        L.Dense(2, dtype="float64")])
    _save(model, "float64", h5=False)
    x = rng.standard_normal((3, 5, 2))
    out["float64_x"] = x
    out["float64_y"] = model.predict(x, verbose=0)


def _keras2_initializer(init):
    return {"class_name": init["class_name"], "config": {k: v for k, v in init["config"].items()
                                                          if k not in ("input_axes",
                                                                       "output_axes")}}


def _keras2_layer(entry):
    """A Keras 3 layer config turned into the tf.keras 2.x form (as Keras 2 wrote it)."""
    config = dict(entry["config"])
    for key, value in list(config.items()):
        if isinstance(value, dict) and key.endswith("initializer"):
            config[key] = _keras2_initializer(value)
        if key == "dtype" and isinstance(value, dict):
            config[key] = value["config"]["name"]
        if key in ("seed", "quantization_config", "lora_rank", "lora_alpha", "optional"):
            del config[key]
    if entry["class_name"] in ("LSTM", "GRU", "SimpleRNN"):
        config["time_major"] = False
        config["implementation"] = 2 if entry["class_name"] != "SimpleRNN" else 1
    if entry["class_name"] == "InputLayer":
        config = {"batch_input_shape": config["batch_shape"], "dtype": config["dtype"],
                  "sparse": False, "ragged": False, "name": config["name"]}
    for key in ("layer", "backward_layer"):
        if key in config:
            config[key] = _keras2_layer(config[key])
    return {"class_name": entry["class_name"], "config": config}


def keras2_stack(model):
    """Write ``model`` in tf.keras 2's HDF5 layout (its weights verbatim, so Keras's
    predictions of ``model`` are the expected ones). Keras 3's own legacy loader can't be the
    check here: it rejects tf.keras 2's ``time_major`` and can't resolve the module-less
    layer configs nested in a Keras 2 ``Bidirectional``."""
    config = model.get_config()
    k2 = {"class_name": "Sequential",
          "config": {"name": config["name"],
                     "layers": [_keras2_layer({"class_name": "InputLayer",
                                               "config": model._layers[0].get_config()})]
                     + [_keras2_layer(e) for e in config["layers"]
                        if e["class_name"] != "InputLayer"]},
          "keras_version": "2.15.0", "backend": "tensorflow"}
    training = {"loss": "categorical_crossentropy",
                "metrics": [[{"class_name": "MeanMetricWrapper",
                              "config": {"name": "accuracy", "dtype": "float32",
                                         "fn": "categorical_accuracy"}}]],
                "weighted_metrics": None, "loss_weights": None,
                "optimizer_config": {"class_name": "Adam", "config": {
                    "name": "Adam", "learning_rate": 0.01, "decay": 0.0, "beta_1": 0.9,
                    "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": False}}}
    path = os.path.join(HERE, "keras2_stack.h5")
    # tf.keras 2 stored its strings as UTF-8 bytes.
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.15.0"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(k2).encode("utf-8")
        f.attrs["training_config"] = json.dumps(training).encode("utf-8")
        weights = f.create_group("model_weights")
        names = [layer.name for layer in model.layers]
        weights.attrs["layer_names"] = np.array([n.encode() for n in names])
        weights.attrs["backend"] = b"tensorflow"
        weights.attrs["keras_version"] = b"2.15.0"
        for layer in model.layers:
            group = weights.create_group(layer.name)
            wnames = []
            for v in layer.weights:
                # tf.keras 2 names: "<layer>/<cell>/<weight>:0" (Keras 3 puts the model's
                # name first), inside the layer's group.
                parts = v.path.split("/")
                if parts[0] == model.name:
                    parts = parts[1:]
                wname = "/".join(parts) + ":0"
                wnames.append(wname.encode())
                group.create_dataset(wname, data=np.asarray(v))
            group.attrs["weight_names"] = np.array(wnames, dtype="S")



def refused():
    inp = keras.Input((4, 2))
    a = L.LSTM(3)(inp)
    b = L.GRU(3)(inp)
    keras.Model(inp, L.Add()([a, b])).save(os.path.join(HERE, "functional.keras"))
    keras.Sequential([keras.Input((6, 2)), L.Conv1D(2, 3), L.LSTM(2)]).save(
        os.path.join(HERE, "conv.keras"))


def main():
    rng = np.random.default_rng(20261202)
    out = {}
    stack(rng, out)
    optimizers(rng, out)
    gru_v1(rng, out)
    embedding(rng, out)
    stateful(rng, out)
    float64(rng, out)
    refused()
    out["versions"] = np.array(json.dumps({
        "keras": keras.__version__, "tensorflow": tf.__version__, "h5py": h5py.__version__,
        "numpy": np.__version__}))
    out["__meta__"] = meta_array(__file__, (keras, tf, h5py))
    np.savez(os.path.join(HERE, "keras_golden.npz"), **out)


if __name__ == "__main__":
    main()
