"""Deployment: ``crnn convert``, and the model-level state helpers (get_states, set_states,
with_batch_size), checked against the Keras predictions of tests/interop_golden."""

import os
import subprocess
import sys

import numpy as np
import pytest

import crnn
from crnn import cli
from crnn import layers as L

pytest.importorskip("h5py")

HERE = os.path.join(os.path.dirname(__file__), "interop_golden")
GOLDEN = np.load(os.path.join(HERE, "keras_golden.npz"))


def _close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- crnn convert


def test_convert_writes_a_file_that_loads_without_h5py(tmp_path, monkeypatch, capsys):
    target = tmp_path / "stateful.crnn"
    assert cli.convert(os.path.join(HERE, "stateful.keras"), target) == 0.0
    out = capsys.readouterr().out
    assert "Total params" in out and "identical" in out and "states carried" in out
    monkeypatch.setitem(sys.modules, "h5py", None)       # the deployment has no h5py
    model = crnn.load_model(target)
    _close(model.predict(GOLDEN["stateful_x1"], verbose=0), GOLDEN["stateful_y1"])
    _close(model.predict(GOLDEN["stateful_x2"], verbose=0), GOLDEN["stateful_y2"])


def test_convert_keeps_the_optimizer_state(tmp_path):
    target = tmp_path / "stack.crnn"
    cli.convert(os.path.join(HERE, "stack.h5"), target, print_fn=lambda line: None)
    model = crnn.load_model(target)
    model.train_on_batch(GOLDEN["stack_x"][:4], GOLDEN["stack_train_y"][:4])
    _close(model.predict(GOLDEN["stack_x"], verbose=0), GOLDEN["stack_step_y"])


def test_convert_embedding_model(tmp_path):
    target = tmp_path / "emb.crnn"
    cli.convert(os.path.join(HERE, "embedding.h5"), target, print_fn=lambda line: None)
    _close(crnn.load_model(target).predict(GOLDEN["embedding_x"], verbose=0),
           GOLDEN["embedding_y"])


def test_convert_refuses_to_overwrite(tmp_path):
    target = tmp_path / "m.crnn"
    target.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="--overwrite"):
        cli.convert(os.path.join(HERE, "gru_v1.keras"), target)
    assert target.read_bytes() == b"keep me"


def _run(args, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(crnn.__file__)))
    # cwd=tmp_path: "python -m" puts the working directory first on sys.path.
    return subprocess.run([sys.executable, "-m", "crnn", *args], check=False,
                          capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)


def test_python_dash_m_crnn_convert(tmp_path):
    proc = _run(["convert", os.path.join(HERE, "gru_v1.keras"), "out.crnn"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Total params" in proc.stdout and "identical" in proc.stdout
    model = crnn.load_model(tmp_path / "out.crnn")
    _close(model.predict(GOLDEN["gru_v1_x"], verbose=0), GOLDEN["gru_v1_y"])
    proc = _run(["convert", os.path.join(HERE, "functional.keras"), "f.crnn"], tmp_path)
    assert proc.returncode == 1 and "functional Keras model" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "f.crnn").exists()


def test_cli_help_lists_both_commands(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "crnn convert IN OUT" in out and "crnn demo" in out


# ---------------------------------------------------------------- states


def _stateful():
    crnn.utils.set_random_seed(0)
    return crnn.Sequential([L.Input(batch_shape=(2, 3, 1)),
                            L.LSTM(3, stateful=True, return_sequences=True),
                            L.Bidirectional(L.GRU(2, stateful=True)), L.Dense(1)])


def test_get_states_lists_every_stateful_layer_in_order():
    model = _stateful()
    model.predict(np.ones((2, 3, 1), "float32"), verbose=0)
    states = model.get_states()
    assert [s.shape for s in states] == [(2, 3), (2, 3), (2, 2), (2, 2)]
    np.testing.assert_array_equal(states[0], model.layers[0].states[0])
    np.testing.assert_array_equal(states[1], model.layers[0].states[1])       # LSTM c
    np.testing.assert_array_equal(states[3], model.layers[1].backward_layer.states[0])
    assert all(np.abs(s).sum() > 0 for s in states)
    assert crnn.Sequential([L.Input((3, 1)), L.LSTM(2)]).get_states() == []


def test_set_states_restores_a_snapshot():
    model = _stateful()
    x = np.linspace(0, 1, 6, dtype="float32").reshape(2, 3, 1)
    model.predict(x, verbose=0)
    snapshot = model.get_states()
    expected = model.predict(x, verbose=0)
    model.predict(x, verbose=0)                               # states move on
    model.set_states(snapshot)
    np.testing.assert_array_equal(model.predict(x, verbose=0), expected)


def test_set_states_checks_everything_before_changing_anything():
    model = _stateful()
    model.predict(np.ones((2, 3, 1), "float32"), verbose=0)
    before = model.get_states()
    bad = [np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 2)), np.zeros((1, 2))]
    with pytest.raises(ValueError, match=r"state 3 .* shape \(2, 2\), received shape \(1, 2\)"):
        model.set_states(bad)
    with pytest.raises(ValueError, match="has 4 state arrays, received 2"):
        model.set_states(bad[:2])
    for a, b in zip(before, model.get_states()):
        np.testing.assert_array_equal(a, b)


def test_with_batch_size_one_replays_a_keras_stateful_stream():
    """Keras predicted batches of 2 with carried states: slot 0 saw x1[0], x1[2], x2[0],
    x2[2] in turn. A batch-1 copy fed that stream must output Keras's slot-0 rows."""
    model = crnn.load_model(os.path.join(HERE, "stateful.keras"))
    online = model.with_batch_size(1)
    assert online.input_shape == (1, 4, 3) and model.input_shape == (2, 4, 3)
    assert type(online.optimizer).__name__ == "Adam"
    x1, x2, y1, y2 = (GOLDEN[k] for k in ("stateful_x1", "stateful_x2", "stateful_y1",
                                          "stateful_y2"))
    for x, y in ((x1[0], y1[0]), (x1[2], y1[2]), (x2[0], y2[0]), (x2[2], y2[2])):
        _close(online.predict(x[None], verbose=0)[0], y)
    # The original model is untouched and still batch 2.
    _close(model.predict(x1, verbose=0), y1)


def test_with_batch_size_validates_and_allows_any_batch_for_stateless():
    model = crnn.Sequential([L.Input((5, 2)), L.LSTM(3), L.Dense(1)])
    x = np.ones((7, 5, 2), "float32")
    np.testing.assert_array_equal(model.with_batch_size(None).predict(x, verbose=0),
                                  model.predict(x, verbose=0))
    assert model.with_batch_size(4).input_shape == (4, 5, 2)
    for bad in (0, -1, 2.5, True, "1"):
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            model.with_batch_size(bad)
    with pytest.raises(ValueError, match="fixed batch size"):
        _stateful().with_batch_size(None)
