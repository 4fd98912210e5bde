"""Keras-style layers.

``Input``/``InputLayer`` declare shapes; ``Dense``, ``Dropout``, ``Activation``,
``Embedding``, ``Masking`` are feed-forward; ``LSTM``, ``GRU``, ``SimpleRNN`` run the
compiled kernels of ``crnn.ops``; ``TimeDistributed`` and ``Bidirectional`` wrap them.
``RepeatVector``, ``Flatten``, ``Reshape`` reshape; ``GlobalAveragePooling1D``,
``GlobalMaxPooling1D``, ``MaxPooling1D``, ``AveragePooling1D`` pool over time;
``LayerNormalization``, ``BatchNormalization`` normalize; ``SpatialDropout1D`` drops features;
``Conv1D`` convolves over time (compiled).
"""

from __future__ import annotations

from typing import Any

from crnn._registry import class_config
from crnn.layers.base import Input, InputLayer, Layer
from crnn.layers.convolutional import Conv1D
from crnn.layers.core import Activation, Dense, Dropout, Embedding, Masking
from crnn.layers.normalization import BatchNormalization, LayerNormalization
from crnn.layers.pooling import (
    AveragePooling1D,
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    MaxPooling1D,
)
from crnn.layers.recurrent import GRU, LSTM, SimpleRNN
from crnn.layers.regularization import SpatialDropout1D
from crnn.layers.reshaping import Flatten, RepeatVector, Reshape
from crnn.layers.wrappers import Bidirectional, TimeDistributed

__all__ = [
    "Layer", "Input", "InputLayer", "Dense", "Dropout", "Activation", "Embedding", "Masking",
    "LSTM", "GRU", "SimpleRNN", "TimeDistributed", "Bidirectional", "RepeatVector", "Flatten",
    "Reshape", "GlobalAveragePooling1D", "GlobalMaxPooling1D", "MaxPooling1D", "AveragePooling1D",
    "LayerNormalization", "BatchNormalization", "SpatialDropout1D", "Conv1D", "serialize",
    "deserialize",
]

_CLASSES = {cls.__name__: cls for cls in (
    InputLayer, Dense, Dropout, Activation, Embedding, Masking, LSTM, GRU, SimpleRNN,
    TimeDistributed, Bidirectional, RepeatVector, Flatten, Reshape, GlobalAveragePooling1D,
    GlobalMaxPooling1D, MaxPooling1D, AveragePooling1D, LayerNormalization, BatchNormalization,
    SpatialDropout1D, Conv1D)}


def serialize(layer: Layer) -> dict[str, Any]:
    """A layer's class name and config, as Keras's ``keras.layers.serialize``.

    Args:
        layer: the layer (its weights are not included).

    Returns:
        ``{"class_name": ..., "config": ...}``, JSON-friendly; ``deserialize`` inverts it.

    Example:
        >>> from crnn.layers import Dense, serialize
        >>> config = serialize(Dense(3, activation="relu", name="out"))
        >>> config["class_name"], config["config"]["units"], config["config"]["activation"]
        ('Dense', 3, 'relu')
    """
    return class_config(layer)


def deserialize(config: dict[str, Any]) -> Layer:
    """Rebuild a layer from ``serialize``'s output (or Keras 3's serialized form).

    Args:
        config: a dict with ``"class_name"`` (one of crnn's layer classes, e.g.
            ``"LSTM"``) and ``"config"`` (the constructor arguments); other keys, such as
            Keras's ``"module"``, are ignored.

    Returns:
        A new layer of that class, with fresh weights once built (``serialize`` doesn't
        save weights).

    Raises:
        ValueError: if ``config`` is not a dict with ``"class_name"`` and ``"config"``, or
            names an unknown layer class (and as the layer's constructor raises for bad
            arguments).

    Example:
        >>> import numpy as np
        >>> from crnn.layers import LSTM, deserialize, serialize
        >>> layer = deserialize(serialize(LSTM(4, return_sequences=True)))
        >>> type(layer).__name__, layer.units, layer.return_sequences
        ('LSTM', 4, True)
        >>> layer(np.zeros((2, 5, 3), "float32")).shape
        (2, 5, 4)
    """
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        raise ValueError(
            f"a layer config must be a dict with 'class_name' and 'config', received {config!r}"
        )
    name = config["class_name"]
    if name not in _CLASSES:
        raise ValueError(f"unknown layer class {name!r}; known: {sorted(_CLASSES)}")
    return _CLASSES[name].from_config(config["config"])
