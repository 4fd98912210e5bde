"""Configs in Keras's form both ways (tests/keras_users_golden/make_configs.py): a Keras
model's config rebuilds in crnn with the same predictions, and crnn's nested wrapper configs
carry the keys Keras's deserializer needs (module, class_name, config, registered_name)."""

import json
import os

import numpy as np

import crnn

GOLDEN = os.path.join(os.path.dirname(__file__), "keras_users_golden", "configs.npz")


def _golden():
    data = np.load(GOLDEN)
    meta = json.loads(str(data["__meta__"]))
    return data, json.loads(str(data["config"])), meta["num_weights"]


def _nested(config):
    for entry in config["layers"]:
        for key in ("layer", "backward_layer"):
            if isinstance(entry["config"].get(key), dict):
                yield entry["class_name"], key, entry["config"][key]


def test_keras_config_rebuilds_with_the_same_predictions():
    data, config, n = _golden()
    model = crnn.Sequential.from_config(config)
    model.set_weights([data[f"w{k}"] for k in range(n)])
    np.testing.assert_allclose(model.predict(data["x"], verbose=0), data["pred"], rtol=1e-5, atol=1e-6)


def test_crnn_nested_configs_have_keras_keys_and_round_trip():
    data, config, n = _golden()
    model = crnn.Sequential.from_config(config)
    ours = model.get_config()
    keras_nested = list(_nested(config))
    our_nested = list(_nested(ours))
    assert [(c, k) for c, k, _ in our_nested] == [(c, k) for c, k, _ in keras_nested]
    for (_, _, mine), (_, _, theirs) in zip(our_nested, keras_nested):
        assert {"module", "class_name", "config", "registered_name"} <= set(mine)
        assert mine["module"] == theirs["module"] and mine["class_name"] == theirs["class_name"]
    again = crnn.Sequential.from_config(ours)
    again.set_weights([data[f"w{k}"] for k in range(n)])
    np.testing.assert_allclose(again.predict(data["x"], verbose=0), data["pred"], rtol=1e-5, atol=1e-6)
