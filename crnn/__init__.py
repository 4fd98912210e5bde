"""crnn: a Cython-accelerated CPU engine for recurrent neural networks.

``crnn.ops`` is the functional API (whole-sequence LSTM/GRU/SimpleRNN, forward and
backward); ``crnn.reference`` holds the same maths in plain NumPy. On top of them sits a
Keras-like API: ``crnn.layers``, ``crnn.Sequential``, ``crnn.optimizers``, ``crnn.losses``,
``crnn.metrics``, ``crnn.callbacks``, ``crnn.utils``, ``crnn.load_model``.

Map of the package, by layer of the system, from the compiled kernels up (the README's
"Layout" has every file):

* compiled kernels and headers: ``crnn._kernels`` (private; its docstring maps the
  ``.pyx``/``.pxd``/``.h`` files and ``_workspace.py``, the kernels' buffer pool);
* ops and reference: ``ops``, ``reference``, ``threads`` (the BLAS thread budget);
* layers: ``layers`` (one module per family; ``layers.activations``), ``initializers``,
  ``regularizers``, ``constraints``;
* models and training: ``models`` (``Sequential``), ``trainer`` (the loops), ``optimizers``,
  ``losses``, ``metrics``, ``callbacks``, ``utils`` (seeding, progress bar),
  ``preprocessing`` (data utilities), ``_validation`` (the shared argument checks);
* saving and interop: ``saving``, ``interop`` (Keras files, PyTorch state_dicts), ``cli``
  (the ``crnn`` command);
* streaming: ``streaming`` (``StreamPool``, ``Streamer``);
* scale-out: ``distributed`` (MPI, Dask; ``import crnn.distributed`` explicitly);
* the demo: ``demo`` and ``data/``.

``ops``, ``reference`` and ``threads`` load with ``import crnn``; the other submodules on
first attribute access (``crnn.layers``...), so ``import crnn`` stays light.

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
