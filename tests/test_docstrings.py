"""The docstring examples run and hold, and every module imports without optional extras.

The examples are collected from the crnn that ``import crnn`` finds (the installed package
under ``.ci/run``, the in-place build in a checkout), module by module, with the standard
``doctest`` finder and each module's own globals, as ``python -m doctest`` would; so an
example must import what it uses (``np`` is there when the module imports NumPy).
``python -m pytest --doctest-modules crnn`` runs the same examples from a checkout.

An example that needs an optional extra (h5py, mpi4py, dask) or a file that isn't there
marks its lines ``# doctest: +SKIP``.
"""

import doctest
import importlib
import os
import pkgutil
import subprocess
import sys

import pytest

import crnn

# crnn.__main__ runs the demo when imported.
MODULES = sorted(name for _, name, _ in pkgutil.walk_packages(crnn.__path__, "crnn.")
                 if not name.endswith("__main__"))
OPTIONAL = ("h5py", "mpi4py", "dask", "distributed", "torch", "tensorflow", "keras", "onnx",
            "onnxruntime", "threadpoolctl")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def test_every_public_module_is_found():
    for name in ("crnn.models", "crnn.trainer", "crnn.saving", "crnn.layers.recurrent",
                 "crnn.streaming", "crnn.ops"):
        assert name in MODULES


@pytest.mark.parametrize("name", ["crnn"] + MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in doctest.DocTestFinder(exclude_empty=True).find(module, name):
        runner.run(test, out=lambda text: print(text, end=""))
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples in {name} " \
                                f"failed (see the captured output)"


def test_import_crnn_and_every_module_without_optional_extras():
    # A None in sys.modules makes "import h5py" raise ImportError, as if it weren't installed.
    code = (
        "import sys, importlib\n"
        f"for name in {OPTIONAL!r}: sys.modules[name] = None\n"
        "import crnn\n"
        f"for name in {MODULES!r}: importlib.import_module(name)\n"
        "print('ok')\n"
    )
    root = os.path.dirname(os.path.dirname(crnn.__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, cwd=root, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


def test_import_crnn_stays_light():
    code = ("import sys, crnn\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            f"{OPTIONAL + ('scipy',)!r} or m in ('crnn.models', 'crnn.layers')))")
    root = os.path.dirname(os.path.dirname(crnn.__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, cwd=root, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = eval(result.stdout)
    assert not [m for m in loaded if m.split(".")[0] in OPTIONAL], loaded
    assert "crnn.models" not in loaded and "crnn.layers" not in loaded
