"""Where each concern lives: model vs trainer, saving vs models, the layer hooks."""

import os
import subprocess
import sys

import numpy as np
import pytest

import crnn
from crnn import layers, trainer
from crnn.models import Sequential

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(code):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(crnn.__file__)), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=os.path.dirname(os.path.dirname(crnn.__file__)),
                          timeout=120)


def test_loops_live_in_the_trainer_and_structure_in_the_model():
    assert issubclass(Sequential, trainer.Trainer)
    for name in ("compile", "fit", "evaluate", "predict", "train_on_batch", "test_on_batch",
                 "predict_on_batch"):
        assert getattr(Sequential, name).__module__ == "crnn.trainer", name
    for name in ("add", "get_config", "summary", "save", "set_weights"):
        assert getattr(Sequential, name).__module__ == "crnn.models", name


def test_saving_does_not_import_models():
    result = _run("import sys, crnn.saving; print('crnn.models' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_load_model_works_in_a_process_that_never_imported_models(tmp_path):
    model = Sequential([layers.LSTM(3, input_shape=(4, 2)), layers.Dense(1)])
    x = np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 4, 2)
    path = str(tmp_path / "m.crnn")
    model.save(path)
    np.save(tmp_path / "x.npy", x)
    result = _run(
        "import sys, numpy as np\n"
        "from crnn.saving import load_model\n"
        f"m = load_model({path!r})\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, m.predict(np.load({str(tmp_path / 'x.npy')!r}), "
        "verbose=0))\n")
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), model.predict(x, verbose=0))


def test_batches_cover_every_sample_once_with_a_smaller_last_batch():
    steps = list(trainer._batches(10, 4))
    assert [s for s, _ in steps] == [0, 1, 2]
    assert [np.arange(10)[idx].tolist() for _, idx in steps] == [
        [0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    order = np.array([9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    assert [idx.tolist() for _, idx in trainer._batches(10, 4, order)] == [
        [9, 8, 7, 6], [5, 4, 3, 2], [1, 0]]


@pytest.mark.parametrize("layer, single", [
    (layers.LSTM(2), True),
    (layers.LSTM(2, return_state=True), False),
    (layers.Bidirectional(layers.GRU(2)), True),
    (layers.Bidirectional(layers.GRU(2), merge_mode=None), False),
    (layers.Bidirectional(layers.GRU(2, return_state=True)), False),
    (layers.Dense(2), True),
])
def test_single_output_hook(layer, single):
    assert layer._single_output is single


def test_has_states_hook_sees_through_wrappers():
    assert layers.LSTM(2, stateful=True)._has_states
    assert not layers.LSTM(2)._has_states
    assert layers.Bidirectional(layers.LSTM(2, stateful=True))._has_states
    assert layers.TimeDistributed(layers.Dense(2))._has_states is False


def test_fixed_input_axes_hook():
    assert layers.Dense(2)._fixed_input_axes(3) == (2,)
    assert layers.Embedding(5, 2)._fixed_input_axes(2) == ()


def test_version_is_written_once():
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    assert 'dynamic = ["version"]' in text
    assert 'version = {attr = "crnn.__version__"}' in text
    assert not any(line.startswith("version = \"") for line in text.splitlines())
    parts = crnn.__version__.split(".")
    assert len(parts) == 3 and all(p.isdigit() for p in parts)
    from importlib.metadata import PackageNotFoundError, version
    try:
        installed = version("crnn")
    except PackageNotFoundError:      # a source checkout: nothing installed to compare
        installed = crnn.__version__
    assert installed == crnn.__version__


def _layout_section():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    start = text.index("\n## Layout")
    return text[start:text.index("\n## ", start + 1)]


def _source_files():
    """The package's source files in the checkout (not what a build generates)."""
    found = []
    for folder, dirs, files in os.walk(os.path.join(ROOT, "crnn")):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.endswith((".py", ".pyx", ".pxd", ".h")) or "data" in folder.split(os.sep):
                found.append(os.path.relpath(os.path.join(folder, name), ROOT))
    return sorted(found)


def test_the_readme_layout_names_every_source_file():
    # a newcomer reads where each concern lives in the README's Layout table: every file
    # of the package is in it, by path or (inside a folder's row) by name
    layout = _layout_section()
    files = _source_files()
    assert "crnn/ops.py" in files and "crnn/_kernels/_lstm.pyx" in files
    missing = []
    for path in files:
        name = os.path.basename(path)
        parent = os.path.dirname(path).replace(os.sep, "/") + "/"
        if name == "__init__.py" and parent != "crnn/":
            continue          # a package's __init__ is its folder's row
        is_data = not name.endswith((".py", ".pyx", ".pxd", ".h"))
        if path.replace(os.sep, "/") in layout or f"`{name}`" in layout \
                or f", {name}" in layout or (parent in layout and (name in layout or is_data)):
            continue
        missing.append(path)
    assert not missing, f"README.md's Layout does not name {missing}"
