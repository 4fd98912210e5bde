"""crnn._validation: the shared argument checks, and call sites that use them."""

import numpy as np
import pytest

from crnn import layers, utils
from crnn._validation import check_positive_int, is_int, is_number


@pytest.mark.parametrize("value, expected", [
    (3, True), (np.int64(3), True), (np.uint8(0), True), (0, True), (-2, True),
    (True, False), (np.bool_(True), False), (3.0, False), ("3", False), (None, False),
])
def test_is_int(value, expected):
    assert is_int(value) is expected


def test_is_int_minimum():
    assert is_int(1, minimum=1) and not is_int(0, minimum=1) and is_int(0, minimum=0)
    assert not is_int(-1, minimum=0)


@pytest.mark.parametrize("value, expected", [
    (1, True), (1.5, True), (np.float32(2), True), (np.int8(1), True), (float("nan"), True),
    (True, False), (np.bool_(False), False), ("1", False), (None, False), ([1], False),
])
def test_is_number(value, expected):
    assert is_number(value) is expected


def test_check_positive_int_returns_python_int():
    out = check_positive_int("units", np.int32(4))
    assert out == 4 and type(out) is int


@pytest.mark.parametrize("value", [0, -1, True, 2.0, "2", None])
def test_check_positive_int_message_names_argument_and_value(value):
    with pytest.raises(ValueError, match=rf"units must be a positive int, received {value!r}"):
        check_positive_int("units", value)


@pytest.mark.parametrize("make", [
    lambda: layers.LSTM(0), lambda: layers.Dense(True), lambda: layers.Embedding(0, 2),
    lambda: layers.Dense(2, input_shape=(3,), batch_size=0),
])
def test_layers_use_the_positive_int_check(make):
    with pytest.raises(ValueError, match="must be a positive int"):
        make()


def test_numpy_ints_are_accepted_where_ints_are():
    assert layers.Dense(np.int64(3)).units == 3
    layer = layers.Dense(2, input_shape=(3,), batch_size=np.int64(4))
    assert layer._batch_input_shape == (4, 3) and type(layer._batch_input_shape[0]) is int


def test_progbar_rejects_bool_width():
    with pytest.raises(ValueError, match="width"):
        utils.Progbar(10, width=True)
