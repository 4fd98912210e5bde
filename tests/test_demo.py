"""The README's demo: built-in data, stateful forecaster beats the naive baseline, reload."""

import os
import subprocess
import sys

import numpy as np

import crnn
from crnn import demo


def test_builtin_series_is_the_airline_passengers_data():
    months, values = demo.load_airline_passengers()
    assert len(values) == 144 and months[0] == "1949-01" and months[-1] == "1960-12"
    # Known facts of the series: total 40363, January 1949 = 112, peak 622 in July 1960.
    assert values.sum() == 40363 and values[0] == 112
    assert values.max() == 622 and months[int(values.argmax())] == "1960-07"


def test_demo_beats_naive_baseline_and_reloads_identically(tmp_path, capsys):
    path = tmp_path / "forecaster.crnn"
    results = demo.run(verbose=1, save_path=str(path))
    out = capsys.readouterr().out
    assert results["model_mae"] < 0.8 * results["naive_mae"]
    assert results["last_loss"] < 0.2 * results["first_loss"]
    assert results["reload_identical"]
    assert "Summary" in out and "naive" in out and "bit-identical" in out
    assert "Epoch 150/150" in out and "━" in out
    model = crnn.load_model(path)
    assert model.layers[0].stateful and model.input_shape == (1, 12, 1)
    np.testing.assert_array_equal(results["actual"][-1], 432.0)


def test_python_dash_m_crnn_runs(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(crnn.__file__)))
    # cwd=tmp_path: "python -m" puts the working directory first on sys.path, and from a
    # source checkout that would import the uncompiled crnn/ instead of the tested one.
    proc = subprocess.run([sys.executable, "-m", "crnn", "--verbose", "0", "--epochs", "5"],
                          capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_installed_crnn_demo_script_runs_from_the_source_root():
    """The README's main command, ``pip install . && crnn-demo``, run where a user runs it:
    in the repository root, next to the uncompiled crnn/ sources."""
    from importlib.metadata import PackageNotFoundError, distribution
    try:
        scripts = [e for e in distribution("crnn").entry_points if e.name == "crnn-demo"]
    except PackageNotFoundError:
        scripts = []
    script = os.path.join(os.path.dirname(sys.executable), "crnn-demo")
    if not scripts or not os.path.exists(script):
        import pytest
        pytest.skip("crnn is not pip-installed here (a source build): no crnn-demo script; "
                    ".ci/run installs it and runs this test")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([script, "--verbose", "2", "--epochs", "5"], capture_output=True,
                          text=True, timeout=120, cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert "Summary" in proc.stdout
