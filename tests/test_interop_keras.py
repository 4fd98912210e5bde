"""Keras .keras/.h5 files read without Keras: predictions, states, compile, and broken files.

The fixtures and Keras's predictions come from tests/interop_golden/make_keras_golden.py
(Keras 3.15, TensorFlow backend); the tests need h5py only.
"""

import json
import os
import shutil
import sys
import warnings
import zipfile

import numpy as np
import pytest

import crnn
from crnn import layers as L
from crnn.interop import keras as keras_files

h5py = pytest.importorskip("h5py")   # the test extra installs it; crnn[keras] needs it

HERE = os.path.join(os.path.dirname(__file__), "interop_golden")
GOLDEN = np.load(os.path.join(HERE, "keras_golden.npz"))


def _path(name):
    return os.path.join(HERE, name)


def _load(name, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # a supported file loads without warnings
        return crnn.load_model(_path(name), **kwargs)


def _close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- predictions


@pytest.mark.parametrize("name", ["stack.keras", "stack.h5", "keras2_stack.h5", "gru_v1.keras",
                                  "gru_v1.h5", "embedding.keras", "embedding.h5",
                                  "float64.keras"])
def test_predictions_match_keras(name):
    base = name.split(".")[0].replace("keras2_", "")
    model = _load(name)
    y = model.predict(GOLDEN[f"{base}_x"], verbose=0)
    _close(y, GOLDEN[f"{base}_y"])
    assert y.dtype == GOLDEN[f"{base}_y"].dtype


@pytest.mark.parametrize("name", ["stack.keras", "stack.h5", "keras2_stack.h5"])
def test_layers_and_options_are_kept(name):
    model = _load(name)
    assert [type(layer).__name__ for layer in model.layers] == [
        "Masking", "LSTM", "Bidirectional", "TimeDistributed", "SimpleRNN", "Bidirectional",
        "Activation", "Dense"]
    assert model.input_shape == (None, 6, 3)
    assert model.layers[1].return_sequences and model.layers[4].go_backwards
    assert model.layers[5].merge_mode == "sum"
    assert isinstance(model.layers[3].layer, L.Dense)


def test_gru_reset_after_both_modes_and_dropout_are_kept():
    model = _load("gru_v1.keras")
    assert model.layers[0].reset_after is False
    assert model.layers[0].recurrent_activation == "hard_sigmoid"
    assert model.layers[1].forward_layer.reset_after is True
    assert model.layers[1].forward_layer.activation == "relu"
    assert isinstance(model.layers[3], L.Dropout) and model.layers[3].rate == 0.3


@pytest.mark.parametrize("name", ["embedding.keras", "embedding.h5"])
def test_embedding_mask_zero_and_integer_input(name):
    model = _load(name)
    assert model.layers[0].mask_zero
    x = GOLDEN["embedding_x"].copy()
    # Masked steps are skipped: changing what follows the padding changes nothing.
    x2 = x.copy()
    x2[0, 4:] = 0
    _close(model.predict(x2, verbose=0), GOLDEN["embedding_y"])


def test_float64_model_stays_float64():
    model = _load("float64.keras")
    assert {w.dtype for w in model.get_weights()} == {np.dtype("float64")}
    assert model.layers[0].activation == "relu"


@pytest.mark.parametrize("name", ["stateful.keras", "stateful.h5"])
def test_stateful_model_carries_states_across_two_calls_like_keras(name):
    model = _load(name)
    assert model.input_shape == (2, 4, 3)
    assert model.layers[0].stateful and model.layers[1].stateful
    _close(model.predict(GOLDEN["stateful_x1"], verbose=0), GOLDEN["stateful_y1"])
    _close(model.predict(GOLDEN["stateful_x2"], verbose=0), GOLDEN["stateful_y2"])
    model.reset_states()
    _close(model.predict(GOLDEN["stateful_x1"], verbose=0), GOLDEN["stateful_y1"])


# ---------------------------------------------------------------- compile


@pytest.mark.parametrize("name", ["stack.keras", "stack.h5"])
def test_training_continues_from_keras_optimizer_state(name):
    model = _load(name)
    assert type(model.optimizer).__name__ == "Adam"
    assert model.optimizer.learning_rate == pytest.approx(0.01)
    assert type(model.loss).__name__ == "CategoricalCrossentropy"
    assert model.metrics_names == ["loss", "accuracy"]
    assert model.optimizer.iterations == 4           # 2 epochs x 2 batches in Keras
    x, y = GOLDEN["stack_x"], GOLDEN["stack_train_y"]
    model.train_on_batch(x[:4], y[:4])
    # Keras's next Adam step from the same state; fresh slots would give another result.
    _close(model.predict(x, verbose=0), GOLDEN["stack_step_y"])
    assert np.abs(GOLDEN["stack_step_y"] - GOLDEN["stack_y"]).max() > 1e-3


@pytest.mark.parametrize("name, cls, slots", [
    ("sgd", "SGD", 1), ("rmsprop", "RMSprop", 3), ("amsgrad", "Adam", 3),
    ("adagrad", "Adagrad", 1)])
def test_every_optimizer_layout_continues_like_keras(name, cls, slots):
    model = _load(f"opt_{name}.keras")
    assert type(model.optimizer).__name__ == cls
    assert model.optimizer.iterations == 4
    assert len(model.optimizer.get_state()) == 1 + slots * len(model.trainable_weights)
    x, t = GOLDEN["opt_x"], GOLDEN["opt_t"]
    _close(model.predict(x, verbose=0), GOLDEN[f"opt_{name}_y"])
    model.train_on_batch(x[:3], t[:3])
    _close(model.predict(x, verbose=0), GOLDEN[f"opt_{name}_step_y"])


def test_keras2_compile_config_is_restored():
    model = _load("keras2_stack.h5")
    assert type(model.optimizer).__name__ == "Adam"
    assert model.optimizer.learning_rate == 0.01
    assert model.metrics_names == ["loss", "accuracy"]


def test_other_optimizers_and_losses():
    model = _load("gru_v1.keras")
    assert type(model.optimizer).__name__ == "SGD" and model.optimizer.momentum == 0.9
    assert type(model.loss).__name__ == "MeanSquaredError"
    assert model.optimizer.iterations == 2
    model = _load("embedding.h5")
    assert type(model.optimizer).__name__ == "RMSprop"
    assert type(model.loss).__name__ == "BinaryCrossentropy"


def test_compile_false_and_uncompiled_files_load_for_inference():
    assert _load("stack.keras", compile=False).optimizer is None
    assert _load("float64.keras").optimizer is None          # saved uncompiled: no warning


def _rewrite_keras(src, dst, edit_config=None, members=None):
    """Copy a .keras archive, editing its config.json or replacing members."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if members and info.filename in members:
                data = members[info.filename]
            elif info.filename == "config.json" and edit_config is not None:
                config = json.loads(data)
                edit_config(config)
                data = json.dumps(config).encode()
            zout.writestr(info.filename, data)
    return dst


def test_unsupported_optimizer_option_warns_and_loads_uncompiled(tmp_path):
    def edit(config):
        config["compile_config"]["optimizer"]["config"]["use_ema"] = True
    path = _rewrite_keras(_path("stack.keras"), tmp_path / "m.keras", edit)
    with pytest.warns(UserWarning, match="use_ema"):
        model = crnn.load_model(path)
    assert model.optimizer is None
    _close(model.predict(GOLDEN["stack_x"], verbose=0), GOLDEN["stack_y"])


def test_unknown_optimizer_warns(tmp_path):
    def edit(config):
        config["compile_config"]["optimizer"]["class_name"] = "Lion"
    path = _rewrite_keras(_path("gru_v1.keras"), tmp_path / "m.keras", edit)
    with pytest.warns(UserWarning, match="Lion"):
        assert crnn.load_model(path).optimizer is None


# ---------------------------------------------------------------- refused models


def test_functional_model_is_refused():
    with pytest.raises(ValueError, match="functional Keras model.*Sequential"):
        crnn.load_model(_path("functional.keras"))


def test_unsupported_layer_is_named():
    with pytest.raises(ValueError, match=r"layer 'conv1d' is a Keras Conv1D, which crnn's "
                                         r"Keras-file reader does not load.*from_config"):
        crnn.load_model(_path("conv.keras"))


@pytest.mark.parametrize("layer, key, value, words", [
    (2, "activation", "selu", "'lstm'.*activation.*selu"),
    (2, "unknown_option", 3, "'lstm'.*unknown_option"),
    (8, "dtype", "mixed_float16", "'dense_1'.*dtype='mixed_float16'"),
])
def test_unsupported_option_is_named_before_weights_are_read(tmp_path, monkeypatch, layer,
                                                              key, value, words):
    def edit(config):
        config["config"]["layers"][layer]["config"][key] = value
    path = _rewrite_keras(_path("stack.keras"), tmp_path / "m.keras", edit)
    # With h5py unavailable the weights can't even be opened: the error must come first.
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ValueError, match=words):
        crnn.load_model(path)


def test_keras2_time_major_true_is_refused(tmp_path):
    path = tmp_path / "m.h5"
    shutil.copy(_path("keras2_stack.h5"), path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        config["config"]["layers"][2]["config"]["time_major"] = True
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(ValueError, match="'lstm'.*time_major"):
        crnn.load_model(path)


def test_nested_wrappers_are_refused(tmp_path):
    def edit(config):
        layers = config["config"]["layers"]
        layers[4]["config"]["layer"] = layers[3]          # TimeDistributed(Bidirectional)
    path = _rewrite_keras(_path("stack.keras"), tmp_path / "m.keras", edit)
    with pytest.raises(ValueError, match="'time_distributed'.*one level of wrapping"):
        crnn.load_model(path)


def test_keras2_optimizer_state_is_not_guessed(tmp_path):
    """tf.keras 2 stored its slots in another order (all m, then all v): crnn warns and
    starts fresh slots rather than guess, but keeps the compile config."""
    path = tmp_path / "k2.h5"
    shutil.copy(_path("keras2_stack.h5"), path)
    with h5py.File(path, "r+") as f:
        group = f.create_group("optimizer_weights")
        group.create_dataset("Adam/iter:0", data=np.array(4, "int64"))
        group.attrs["weight_names"] = np.array([b"Adam/iter:0"])
    with pytest.warns(UserWarning, match="Keras 2.15.0"):
        model = crnn.load_model(path)
    assert type(model.optimizer).__name__ == "Adam"
    _close(model.predict(GOLDEN["stack_x"], verbose=0), GOLDEN["stack_y"])


def test_chunked_weight_names_attributes_are_read(tmp_path):
    """Keras splits long name lists into weight_names0, weight_names1, ..."""
    path = tmp_path / "chunked.h5"
    shutil.copy(_path("stack.h5"), path)
    with h5py.File(path, "r+") as f:
        group = f["model_weights/lstm"]
        names = group.attrs["weight_names"]
        del group.attrs["weight_names"]
        group.attrs["weight_names0"] = names[:2]
        group.attrs["weight_names1"] = names[2:]
    _close(crnn.load_model(path).predict(GOLDEN["stack_x"], verbose=0), GOLDEN["stack_y"])


# ---------------------------------------------------------------- h5py missing


@pytest.mark.parametrize("name", ["stack.keras", "stack.h5"])
def test_missing_h5py_names_the_extra(monkeypatch, name):
    monkeypatch.setitem(sys.modules, "h5py", None)       # "import h5py" now fails
    assert keras_files.is_keras_file(_path(name))       # detection needs no h5py
    with pytest.raises(ImportError, match=r'pip install "crnn\[keras\]"'):
        crnn.load_model(_path(name))


# ---------------------------------------------------------------- broken and hostile files


@pytest.mark.parametrize("name", ["stack.keras", "stack.h5"])
@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.95])
def test_truncated_files_raise_value_error(tmp_path, name, fraction):
    with open(_path(name), "rb") as f:
        data = f.read()
    path = tmp_path / name
    path.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(ValueError):
        crnn.load_model(path)


def test_corrupt_bytes_in_hdf5_raise_value_error(tmp_path):
    with open(_path("stack.h5"), "rb") as f:
        data = bytearray(f.read())
    rng = np.random.default_rng(0)
    for k, start in enumerate((0, 96, 2048, len(data) // 2)):
        broken = bytearray(data)
        broken[start + 8:start + 520] = rng.integers(0, 256, 512, dtype=np.uint8).tobytes()
        path = tmp_path / f"broken{k}.h5"
        path.write_bytes(bytes(broken))
        try:
            model = crnn.load_model(path)
        except ValueError:
            continue
        # A flip that misses everything crnn reads may load; then it must still be right.
        _close(model.predict(GOLDEN["stack_x"], verbose=0), GOLDEN["stack_y"])


def test_hdf5_signature_with_garbage_raises_value_error(tmp_path):
    path = tmp_path / "fake.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8)
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        crnn.load_model(path)


@pytest.mark.parametrize("member, data, words", [
    ("config.json", b"{not json", "config.json is not valid JSON"),
    ("config.json", b"[" * 100000 + b"]" * 100000, "config.json is not valid JSON"),
    ("config.json", b"\xff\xfe", "not UTF-8"),
    ("model.weights.h5", b"garbage", "not a readable HDF5 file"),
])
def test_broken_keras_members_raise_value_error(tmp_path, member, data, words):
    path = _rewrite_keras(_path("stack.keras"), tmp_path / "m.keras", members={member: data})
    with pytest.raises(ValueError, match=words):
        crnn.load_model(path)


def test_zip_bomb_member_is_refused_before_decompression(tmp_path):
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(_path("stack.keras")) as zin, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zout:
        zout.writestr("config.json", zin.read("config.json"))
        zout.writestr("model.weights.h5", bytes(20 << 20))
    with pytest.raises(ValueError, match="decompression bomb"):
        crnn.load_model(path)


def _edit_h5(tmp_path, edit, name="stack.h5"):
    path = tmp_path / name
    shutil.copy(_path(name), path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


_KERNEL = "model_weights/lstm/sequential/lstm/lstm_cell/kernel"


def test_weight_of_the_wrong_shape_is_named(tmp_path):
    def edit(f):
        del f[_KERNEL]
        f.create_dataset(_KERNEL, data=np.zeros((4, 20), "float32"))
    with pytest.raises(ValueError, match=r"weight 0 of layer 'lstm'.*\(4, 20\).*\(3, 20\)"):
        crnn.load_model(_edit_h5(tmp_path, edit))


def test_non_float_weight_is_refused(tmp_path):
    def edit(f):
        del f[_KERNEL]
        f.create_dataset(_KERNEL, data=np.array([[b"x"] * 20] * 3))
    with pytest.raises(ValueError, match="expected float"):
        crnn.load_model(_edit_h5(tmp_path, edit))


def test_huge_declared_weight_without_data_is_refused_before_allocation(tmp_path):
    """A config and an unallocated dataset that agree on a 4 GB kernel: refused, since the
    file does not store those bytes (reading it would allocate them)."""
    units = 1 << 30

    def edit(f):
        config = json.loads(f.attrs["model_config"])
        config["config"]["layers"][-1]["config"]["units"] = units
        f.attrs["model_config"] = json.dumps(config)
        group = f["model_weights/dense_1/sequential/dense_1"]
        del group["kernel"], group["bias"]
        group.create_dataset("kernel", shape=(2, units), dtype="float32")
        group.create_dataset("bias", shape=(units,), dtype="float32")
    with pytest.raises(ValueError, match="declares .* bytes of data but the file stores"):
        crnn.load_model(_edit_h5(tmp_path, edit))


@pytest.mark.parametrize("kind", ["external_link", "soft_link"])
def test_links_are_refused(tmp_path, kind):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as g:
        g.create_dataset("k", data=np.zeros((3, 20), "float32"))

    def edit(f):
        del f[_KERNEL]
        if kind == "external_link":
            f[_KERNEL] = h5py.ExternalLink(str(other), "/k")
        else:
            f["elsewhere"] = np.zeros((3, 20), "float32")
            f[_KERNEL] = h5py.SoftLink("/elsewhere")
    with pytest.raises(ValueError, match="Link; crnn reads only plain"):
        crnn.load_model(_edit_h5(tmp_path, edit))


def test_external_storage_dataset_is_refused(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(bytes(3 * 20 * 4))

    def edit(f):
        del f[_KERNEL]
        f.create_dataset(_KERNEL, shape=(3, 20), dtype="float32",
                         external=[(str(secret), 0, 3 * 20 * 4)])
    with pytest.raises(ValueError, match="outside the file"):
        crnn.load_model(_edit_h5(tmp_path, edit))


def test_missing_weights_group_is_named(tmp_path):
    def edit(f):
        del f["model_weights/simple_rnn"]
    with pytest.raises(ValueError, match="weights group of layer 'simple_rnn' is missing"):
        crnn.load_model(_edit_h5(tmp_path, edit))


def test_weights_only_hdf5_file_is_explained(tmp_path):
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ValueError, match="weights only"):
        crnn.load_model(path)


def test_crnn_files_still_load_through_load_model(tmp_path):
    model = _load("stack.keras")
    model.save(tmp_path / "m.crnn")
    assert not keras_files.is_keras_file(tmp_path / "m.crnn")
    again = crnn.load_model(tmp_path / "m.crnn")
    _close(again.predict(GOLDEN["stack_x"], verbose=0), GOLDEN["stack_y"])


def test_fixtures_record_the_versions_that_made_them():
    versions = json.loads(str(GOLDEN["versions"]))
    assert versions["keras"].startswith("3.") and "tensorflow" in versions
