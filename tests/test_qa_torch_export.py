"""crnn -> PyTorch export refuses what nn.LSTM/GRU/RNN + nn.Linear can't express (QA).

Each of these once produced a state_dict silently: a PyTorch model loaded from it would
predict something else than the crnn model.
"""

import numpy as np
import pytest

import crnn
from crnn import layers as L
from crnn.interop import torch as from_torch


def _model(*layers):
    return crnn.Sequential([crnn.Input((5, 3))] + list(layers))


@pytest.mark.parametrize("layers, words", [
    ((L.LSTM(4), L.Dense(2, activation="softmax")), "'dense.*activation='softmax'"),
    ((L.GRU(4, return_sequences=True), L.TimeDistributed(L.Dense(2, activation="relu"))),
     "activation='relu'"),
    ((L.Bidirectional(L.LSTM(4, go_backwards=True)),), "go_backwards=True"),
    ((L.LSTM(4, return_sequences=True), L.LSTM(4, use_bias=False)), "one bias flag"),
])
def test_export_refuses_what_pytorch_cannot_express(layers, words):
    model = _model(*layers)
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=words):
        from_torch.to_state_dict(model)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_linear_head_and_bias_free_stack_still_export():
    model = _model(L.LSTM(4, return_sequences=True, use_bias=False), L.LSTM(4, use_bias=False),
                   L.Dense(2))
    state = from_torch.to_state_dict(model)
    assert sorted(state) == ["head.bias", "head.weight", "weight_hh_l0", "weight_hh_l1",
                             "weight_ih_l0", "weight_ih_l1"]


class _Bfloat16Tensor:
    """Duck-typed stand-in for a torch.bfloat16 tensor, whose .numpy() raises in torch."""

    dtype = "torch.bfloat16"

    def __init__(self, array):
        self.array = array

    def detach(self):
        return self

    def cpu(self):
        return self

    def float(self):
        return _Float32Tensor(self.array)

    def numpy(self):
        raise TypeError("Got unsupported ScalarType BFloat16")


class _Float32Tensor(_Bfloat16Tensor):
    dtype = "torch.float32"

    def numpy(self):
        return self.array


def test_bfloat16_tensors_are_read_as_float32():
    rng = np.random.default_rng(0)
    sd = {"weight_ih_l0": rng.normal(size=(4, 3)), "weight_hh_l0": rng.normal(size=(4, 4))}
    model = from_torch.sequential_from_state_dict(
        {k: _Bfloat16Tensor(v.astype("float32")) for k, v in sd.items()}, "RNN")
    np.testing.assert_array_equal(model.get_weights()[0], sd["weight_ih_l0"].T.astype("float32"))
