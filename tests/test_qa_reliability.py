"""A failed call changes nothing: model-level cases found by QA fuzzing."""

import numpy as np
import pytest

import crnn
from crnn import layers as L


def _stateful_model():
    model = crnn.Sequential([crnn.Input(batch_shape=(2, 3, 4)),
                             L.GRU(5, stateful=True, return_sequences=True),
                             L.LSTM(3, stateful=True), L.Dense(2)])
    model.predict(np.ones((2, 3, 4), "float32"), verbose=0)      # non-zero states
    return model


@pytest.mark.parametrize("bad", [np.zeros((2, 3)).astype(str), np.zeros((2, 3), complex),
                                 np.zeros((2, 3), object)])
def test_set_states_checks_every_dtype_before_setting_any(bad):
    model = _stateful_model()
    before = model.get_states()
    new = [np.ones_like(s) for s in before[:-1]] + [bad]
    with pytest.raises(TypeError, match=r"state 2 of model .*received dtype"):
        model.set_states(new)
    for a, b in zip(before, model.get_states()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", [None, 3, "states"])
def test_set_states_names_the_argument_when_not_a_list(bad):
    model = _stateful_model()
    with pytest.raises(TypeError, match="states must be a list of arrays"):
        model.set_states(bad)


def test_save_into_a_missing_folder_or_onto_a_folder_names_the_path(tmp_path):
    model = crnn.Sequential([crnn.Input((3, 2)), L.GRU(2)])
    target = tmp_path / "missing" / "m.crnn"
    with pytest.raises(FileNotFoundError, match=r"m\.crnn.*folder .*missing.* does not exist"):
        model.save(target)
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        model.save(tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("make, words", [
    (lambda: L.Dropout(0.5, noise_shape=3), r"noise_shape must be a tuple.*received 3"),
    (lambda: L.Dropout(0.5, noise_shape=(2, 0, 1)), r"noise_shape must be.*\(2, 0, 1\)"),
    (lambda: L.Dropout(0.5, noise_shape=(2, 1.5)), r"noise_shape must be.*\(2, 1\.5\)"),
    (lambda: L.Masking("a"), "mask_value must be a number, received 'a'"),
    (lambda: L.Masking(None), "mask_value must be a number, received None"),
])
def test_layer_arguments_are_named_in_errors(make, words):
    with pytest.raises(ValueError, match=words):
        make()


def test_dropout_noise_shape_with_none_entries_still_works():
    layer = L.Dropout(0.5, noise_shape=(None, 1, 3), seed=0)
    y = layer(np.ones((2, 4, 3), "float32"), training=True)
    assert np.all(y[:, :1] == y[:, 1:2])         # one mask for every timestep
