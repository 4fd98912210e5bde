"""Saving: one-file models with optimizer and RNN states, weights files, damaged files."""

import os
import zipfile

import numpy as np
import pytest

import crnn
from crnn import layers as L


def _model(stateful=False):
    crnn.utils.set_random_seed(0)
    first = (L.GRU(4, stateful=True, return_sequences=True, batch_input_shape=(2, 5, 3))
             if stateful else L.GRU(4, return_sequences=True, input_shape=(5, 3)))
    model = crnn.Sequential([first, L.Bidirectional(L.LSTM(3)), L.Dense(2)], name="saved")
    model.compile(crnn.optimizers.Adam(learning_rate=0.01), "mse", metrics=["mae"])
    return model


def _data(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 5, 3)).astype("float32"),
            rng.standard_normal((n, 2)).astype("float32"))


def test_save_load_predictions_bit_identical_and_config(tmp_path):
    model = _model()
    x, y = _data()
    model.fit(x, y, epochs=2, verbose=0)
    path = tmp_path / "model.crnn"
    model.save(path)
    assert sorted(os.listdir(tmp_path)) == ["model.crnn"]     # no temp files left
    loaded = crnn.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.get_config() == model.get_config()
    assert loaded.name == "saved" and loaded.metrics_names == ["loss", "mae"]
    with np.load(path, allow_pickle=False) as archive:       # plain npz, no pickle needed
        assert "crnn_header" in archive.files


def test_training_resumes_as_if_uninterrupted(tmp_path):
    x, y = _data(8)
    model = _model()
    for _ in range(2):
        model.train_on_batch(x, y)
    model.save(tmp_path / "m.crnn")
    for _ in range(3):
        model.train_on_batch(x, y)
    loaded = crnn.load_model(tmp_path / "m.crnn")
    assert loaded.optimizer.iterations == 2
    for _ in range(3):
        loaded.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_stateful_states_are_saved_and_restored(tmp_path):
    model = _model(stateful=True)
    x, _ = _data(2)
    model.predict(x, verbose=0)
    model.save(tmp_path / "s.crnn")
    loaded = crnn.load_model(tmp_path / "s.crnn")
    np.testing.assert_array_equal(loaded.layers[0].states[0], model.layers[0].states[0])
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    loaded.reset_states()
    model.reset_states()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_save_weights_load_weights(tmp_path):
    model = _model()
    x, _ = _data()
    model.save_weights(tmp_path / "w.npz")
    other = _model()
    other.set_weights([w + 1 for w in other.get_weights()])
    other.load_weights(tmp_path / "w.npz")
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(ValueError, match="holds only weights.*load_weights"):
        crnn.load_model(tmp_path / "w.npz")
    small = crnn.Sequential([L.Dense(1, input_shape=(3,))])
    with pytest.raises(ValueError, match="don't fit model"):
        small.load_weights(tmp_path / "w.npz")
    # A full model file also provides weights.
    model.save(tmp_path / "full.crnn")
    other.load_weights(tmp_path / "full.crnn")


def test_failed_save_leaves_previous_file_intact(tmp_path, monkeypatch):
    model = _model()
    path = tmp_path / "m.crnn"
    model.save(path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.crnn"]


def test_overwrite_false(tmp_path):
    model = _model()
    model.save(tmp_path / "m.crnn")
    with pytest.raises(FileExistsError, match="overwrite=False"):
        model.save(tmp_path / "m.crnn", overwrite=False)


@pytest.mark.parametrize("damage, match", [
    (lambda b: b[: len(b) // 2], "not a crnn model or weights file.*truncated"),
    (lambda b: b"hello, not a model", "not a crnn model or weights file"),
    (lambda b: b"", "not a crnn model or weights file"),
])
def test_damaged_files_give_clear_errors(tmp_path, damage, match):
    model = _model()
    path = tmp_path / "m.crnn"
    model.save(path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match=match) as info:
        crnn.load_model(path)
    assert str(path) in str(info.value)


def test_corrupted_member_is_detected(tmp_path):
    model = _model()
    path = tmp_path / "m.crnn"
    model.save(path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("weight_00000.npy")
    # Flip a byte in the middle of the first weight's data (stored uncompressed).
    offset = info.header_offset + 30 + len(info.filename) + info.compress_size // 2 + 40
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="damaged"):
        crnn.load_model(path)


def test_foreign_npz_is_rejected(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(ValueError, match="not a crnn model or weights file.*crnn_header"):
        crnn.load_model(path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        crnn.load_model(tmp_path / "missing.crnn")


def test_model_checkpoint_callback_saves_loadable_model(tmp_path):
    model = _model()
    x, y = _data()
    path = str(tmp_path / "ckpt-{epoch:02d}.crnn")
    model.fit(x, y, epochs=2, verbose=0,
              callbacks=[crnn.callbacks.ModelCheckpoint(path, monitor="loss")])
    loaded = crnn.load_model(tmp_path / "ckpt-02.crnn")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
