"""crnn: a Cython-accelerated CPU engine for recurrent neural networks.

``crnn.ops`` is the functional API (whole-sequence LSTM/GRU/SimpleRNN, forward and
backward); ``crnn.reference`` holds the same maths in plain NumPy. On top of them sits a
Keras-like API: ``crnn.layers``, ``crnn.Sequential``, ``crnn.optimizers``, ``crnn.losses``,
``crnn.metrics``, ``crnn.callbacks``, ``crnn.utils``, ``crnn.load_model``.

Example:
    >>> import crnn
    >>> model = crnn.Sequential([crnn.layers.LSTM(16, batch_input_shape=(4, 12, 1),
    ...                                           stateful=True),
    ...                          crnn.layers.Dense(1)])
    >>> model.compile(optimizer="adam", loss="mse")
"""

import importlib

from crnn import ops, reference
from crnn.threads import get_num_threads, set_num_threads

# The one place the version is written (pyproject.toml reads it; see CHANGELOG.md).
__version__ = "0.1.0"

_SUBMODULES = ("layers", "models", "trainer", "callbacks", "initializers", "losses", "metrics",
               "optimizers", "utils", "saving", "streaming", "interop", "demo", "regularizers",
               "constraints", "preprocessing")
# Attribute -> (module, name). Resolved on first access (PEP 562), so that
# ``import crnn`` stays light and ``crnn.ops`` works on its own.
_ATTRIBUTES = {
    "Sequential": ("crnn.models", "Sequential"),
    "Input": ("crnn.layers", "Input"),
    "InputLayer": ("crnn.layers", "InputLayer"),
    "load_model": ("crnn.saving", "load_model"),
}

__all__ = ["ops", "reference", "get_num_threads", "set_num_threads", *_SUBMODULES, *_ATTRIBUTES, "__version__"]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"crnn.{name}")
    if name in _ATTRIBUTES:
        module, attr = _ATTRIBUTES[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'crnn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
