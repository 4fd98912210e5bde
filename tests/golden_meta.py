"""The metadata every golden data file records (the scheme is in CONTRIBUTING.md).

A generator script ``tests/<area>_golden/make_<name>.py`` (or ``tests/golden/make_<name>.py``
for the core maths) writes ``<name>.npz`` next to itself, with a ``"__meta__"`` entry: a 0-d
string array (so ``np.load(..., allow_pickle=False)`` reads it) holding JSON with

* ``"generator"``: the script's path from the repository root;
* ``"versions"``: Python, NumPy and every independent library the values came from
  (``keras`` with its backend, ``tensorflow``, ``torch``, ``onnxruntime``...);
* anything else the tests need (``"cases"``...).

A JSON data file written beside the ``.npz`` carries the same object under a top-level
``"__meta__"`` key. Generator scripts import this module after putting ``tests/`` on the
path:

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from golden_meta import meta_array  # noqa: E402
"""

import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def golden_meta(generator, libraries=(), **extra):
    """The ``__meta__`` object for a data file.

    Args:
        generator: the generator script's ``__file__``.
        libraries: the imported modules the values came from (``keras``, ``tensorflow``,
            ``torch``...); each is recorded as ``name: __version__``. For ``keras`` the
            backend is recorded too.
        **extra: more JSON-friendly entries (``cases=...``).

    Returns:
        A dict with ``generator``, ``versions`` and the extras.
    """
    versions = {"python": sys.version.split()[0], "numpy": np.__version__}
    for module in libraries:
        versions[module.__name__] = module.__version__
        if module.__name__ == "keras":
            backend = module.backend.backend()
            versions["keras_backend"] = backend
            if backend in sys.modules and hasattr(sys.modules[backend], "__version__"):
                versions.setdefault(backend, sys.modules[backend].__version__)
    path = os.path.relpath(os.path.abspath(generator), ROOT).replace(os.sep, "/")
    return {"generator": path, "versions": versions, **extra}


def meta_array(generator, libraries=(), **extra):
    """``golden_meta(...)`` as the 0-d string array stored under ``"__meta__"``."""
    return np.array(json.dumps(golden_meta(generator, libraries, **extra), indent=1,
                               sort_keys=True))


def read_meta(npz):
    """The ``__meta__`` dict of an opened ``.npz`` (``np.load`` result)."""
    return json.loads(str(npz["__meta__"]))
