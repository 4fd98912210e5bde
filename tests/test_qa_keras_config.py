"""crnn's wrapper configs carry what Keras 3 needs to read them back (QA regression).

``keras.Sequential.from_config(crnn_model.get_config())`` failed for any model with a
``Bidirectional`` or ``TimeDistributed`` ("Could not locate class 'LSTM'"): Keras 3
deserializes a wrapped layer only with its ``module``. The expected entries are Keras's
own, from tests/parity_golden/keras_configs.json (make_parity_golden.py, Keras 3.15).
"""

import json
import os

import pytest

from crnn import layers as L

KERAS = json.load(open(os.path.join(os.path.dirname(__file__), "parity_golden",
                                    "keras_configs.json"), encoding="utf-8"))


@pytest.mark.parametrize("wrapper, keys", [
    (lambda: L.Bidirectional(L.LSTM(3)), ("layer", "backward_layer")),
    (lambda: L.TimeDistributed(L.Dense(2)), ("layer",)),
])
def test_wrapped_layer_entries_name_their_keras_module(wrapper, keys):
    layer = wrapper()
    config = layer.get_config()
    expected = KERAS[type(layer).__name__]
    for key in keys:
        assert config[key]["module"] == expected[key]["module"] == "keras.layers"
        assert config[key]["class_name"] == expected[key]["class_name"]
        assert "registered_name" in expected[key] and config[key]["registered_name"] is None
    assert type(layer).from_config(config).get_config() == config
