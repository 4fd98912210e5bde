"""PyTorch nn.LSTM/GRU/RNN state_dicts to crnn and back, against PyTorch's own outputs.

The state_dicts and outputs come from tests/interop_golden/make_torch_golden.py (PyTorch
2.13); the tests need neither PyTorch nor h5py.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import crnn
from crnn import layers as L
from crnn.interop import torch as from_torch

GOLDEN = np.load(os.path.join(os.path.dirname(__file__), "interop_golden", "torch_golden.npz"))


def _sd(case):
    return {k.split("/", 1)[1]: GOLDEN[k] for k in GOLDEN.files if k.startswith(case + "/")}


def _close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def _last_hidden(case, bidirectional):
    h_n = GOLDEN[f"{case}:h_n"]
    return np.concatenate([h_n[-2], h_n[-1]], axis=1) if bidirectional else h_n[-1]


@pytest.mark.parametrize("case, mode, options, bidirectional, batch_first", [
    ("lstm2bi", "LSTM", {}, True, True),
    ("gru_tf", "GRU", {}, False, False),
    ("gru2bi", "GRU", {}, True, True),
    ("rnn_relu", "RNN", {"nonlinearity": "relu"}, False, True),
])
def test_outputs_and_final_hidden_state_match_torch(case, mode, options, bidirectional,
                                                    batch_first):
    x = GOLDEN[f"{case}:x"]
    if not batch_first:
        x = x.transpose(1, 0, 2)             # crnn is batch first
    output = GOLDEN[f"{case}:output"]
    if not batch_first:
        output = output.transpose(1, 0, 2)
    seq = from_torch.sequential_from_state_dict(_sd(case), mode, return_sequences=True,
                                                **options)
    _close(seq.predict(x, verbose=0), output)
    last = from_torch.sequential_from_state_dict(_sd(case), mode, **options)
    _close(last.predict(x, verbose=0), _last_hidden(case, bidirectional))


@pytest.mark.parametrize("case, mode, batch_first", [("lstm2bi", "LSTM", True),
                                                     ("gru_tf", "GRU", False)])
def test_linear_head_matches_torch(case, mode, batch_first):
    x = GOLDEN[f"{case}:x"]
    x = x if batch_first else x.transpose(1, 0, 2)
    model = from_torch.sequential_from_state_dict(_sd(case), mode, head_prefix="head.")
    assert isinstance(model.layers[-1], L.Dense)
    _close(model.predict(x, verbose=0), GOLDEN[f"{case}:head"])


def test_structure_is_read_from_the_keys():
    layers = from_torch.layers_from_state_dict(_sd("lstm2bi"), "LSTM")
    assert len(layers) == 2 and all(isinstance(la, L.Bidirectional) for la in layers)
    assert layers[0].return_sequences and not layers[1].return_sequences
    assert layers[0].forward_layer.units == 5 and layers[1].input_shape[-1] == 10
    gru = from_torch.layers_from_state_dict(_sd("gru2bi"), "gru")
    assert not gru[0].forward_layer.use_bias and gru[0].forward_layer.reset_after


def test_tensors_are_read_by_duck_typing_without_importing_torch():
    class FakeTensor:          # what torch.Tensor offers: .detach().cpu().numpy()
        def __init__(self, a):
            self.a = a

        def detach(self):
            return self

        def cpu(self):
            return self

        def numpy(self):
            return self.a

    sd = {k: FakeTensor(v) for k, v in _sd("gru_tf").items()}
    model = from_torch.sequential_from_state_dict(sd, "GRU", head_prefix="head.")
    _close(model.predict(GOLDEN["gru_tf:x"].transpose(1, 0, 2), verbose=0),
           GOLDEN["gru_tf:head"])


def test_prefixes_select_submodules():
    sd = {("rnn." + k if not k.startswith("head.") else k): v
          for k, v in _sd("lstm2bi").items()}
    model = from_torch.sequential_from_state_dict(sd, "LSTM", prefix="rnn.",
                                                  head_prefix="head.")
    _close(model.predict(GOLDEN["lstm2bi:x"], verbose=0), GOLDEN["lstm2bi:head"])
    back = from_torch.to_state_dict(model, prefix="rnn.")
    assert sorted(back) == sorted(sd)


def test_stateful_model_from_torch_carries_state_like_one_long_sequence():
    x = GOLDEN["rnn_relu:x"]
    model = from_torch.sequential_from_state_dict(_sd("rnn_relu"), "RNN", nonlinearity="relu",
                                                  return_sequences=True, stateful=True,
                                                  batch_size=3)
    first = model.predict(x[:, :2], verbose=0)
    second = model.predict(x[:, 2:], verbose=0)
    _close(np.concatenate([first, second], axis=1), GOLDEN["rnn_relu:output"])
    with pytest.raises(ValueError, match="batch_size"):
        from_torch.sequential_from_state_dict(_sd("rnn_relu"), "RNN", stateful=True)


# ---------------------------------------------------------------- crnn -> PyTorch


@pytest.mark.parametrize("case, mode", [("gru_tf", "GRU"), ("gru2bi", "GRU")])
def test_gru_round_trip_is_exact(case, mode):
    sd = _sd(case)
    model = from_torch.sequential_from_state_dict(
        sd, mode, head_prefix="head." if "head.weight" in sd else None)
    back = from_torch.to_state_dict(model)
    assert sorted(back) == sorted(sd)
    for key in sd:
        np.testing.assert_array_equal(back[key], sd[key])


@pytest.mark.parametrize("case, mode", [("lstm2bi", "LSTM"), ("rnn_relu", "RNN")])
def test_summed_bias_round_trip(case, mode):
    sd = _sd(case)
    model = from_torch.sequential_from_state_dict(sd, mode, nonlinearity="relu")
    back = from_torch.to_state_dict(model)
    assert sorted(k for k in back if not k.startswith("head.")) == \
        sorted(k for k in sd if not k.startswith("head."))
    for key in back:
        if key.startswith("weight"):
            np.testing.assert_array_equal(back[key], sd[key])
        elif key.startswith("bias_ih"):
            hh = key.replace("bias_ih", "bias_hh")
            np.testing.assert_allclose(back[key] + back[hh], sd[key] + sd[hh], rtol=1e-6)
            assert not back[hh].any()


def test_crnn_trained_gru_exports_the_pytorch_gate_order():
    """A crnn GRU with reset-gate weights only: they must land in PyTorch's r rows (first)."""
    layer = L.GRU(2, reset_after=True)
    layer.build((None, None, 1))
    kernel, recurrent, bias = layer.get_weights()
    kernel[:] = 0
    kernel[0, 2:4] = [1.0, 2.0]                       # Keras columns z | r | h: the r block
    layer.set_weights([kernel, recurrent * 0, bias * 0])
    sd = from_torch.to_state_dict([layer])
    np.testing.assert_array_equal(sd["weight_ih_l0"][:, 0], [1, 2, 0, 0, 0, 0])


@pytest.mark.parametrize("layer, words", [
    (L.GRU(2, reset_after=False), r"reset_after=False\) has no PyTorch equivalent"),
    (L.LSTM(2, activation="relu"), "activation='relu'"),
    (L.LSTM(2, recurrent_activation="hard_sigmoid"), "recurrent_activation"),
    (L.SimpleRNN(2, go_backwards=True), "go_backwards"),
    (L.Bidirectional(L.LSTM(2), merge_mode="sum"), "merge_mode='sum'"),
])
def test_export_refuses_what_pytorch_lacks(layer, words):
    layer.build((None, 3, 2))
    with pytest.raises(ValueError, match=words):
        from_torch.to_state_dict([layer])


def test_export_refuses_mixed_stacks():
    a, b = L.LSTM(3, return_sequences=True), L.LSTM(4)
    a.build((None, 5, 2))
    b.build((None, 5, 3))
    with pytest.raises(ValueError, match="one hidden size"):
        from_torch.to_state_dict([a, b])
    c = L.LSTM(3)
    c.build((None, 5, 2))
    d = L.LSTM(3)
    d.build((None, 5, 3))
    with pytest.raises(ValueError, match="return_sequences=True"):
        from_torch.to_state_dict([c, d])


# ---------------------------------------------------------------- refused inputs


def test_proj_size_is_refused():
    with pytest.raises(ValueError, match="proj_size > 0"):
        from_torch.layers_from_state_dict(_sd("lstm_proj"), "LSTM")


def test_bad_state_dicts_are_named():
    sd = _sd("gru_tf")
    with pytest.raises(ValueError, match="mode must be"):
        from_torch.layers_from_state_dict(sd, "Transformer")
    with pytest.raises(ValueError, match=r"weight_hh has shape \(12, 4\)"):
        from_torch.layers_from_state_dict(sd, "LSTM")          # a GRU's weights as an LSTM
    broken = dict(sd, weight_ih_l0=sd["weight_ih_l0"][:, :2], weight_ih_l1=sd["weight_ih_l0"])
    with pytest.raises(ValueError, match="weight_hh"):
        from_torch.layers_from_state_dict(broken, "GRU")
    with pytest.raises(ValueError, match="not an nn.LSTM/GRU/RNN weight"):
        from_torch.layers_from_state_dict(dict(sd, running_mean=np.zeros(3)), "GRU")
    with pytest.raises(ValueError, match="no recurrent weights under prefix"):
        from_torch.layers_from_state_dict(sd, "GRU", prefix="rnn.")
    with pytest.raises(ValueError, match="bias_hh must have shape"):
        from_torch.layers_from_state_dict(dict(sd, bias_hh_l0=np.zeros(5)), "GRU")
    with pytest.raises(ValueError, match="takes 4 inputs"):
        head = {"head.weight": np.zeros((1, 4)), "head.bias": np.zeros(1)}
        from_torch.sequential_from_state_dict(dict(_sd("lstm2bi"), **head), "LSTM",
                                              head_prefix="head.")


def test_no_framework_is_imported():
    code = (
        "import sys, numpy as np, crnn, crnn.interop.torch as t, crnn.interop.keras, "
        "crnn.cli\n"
        f"g = np.load({os.path.join(os.path.dirname(__file__), 'interop_golden', 'torch_golden.npz')!r})\n"
        "sd = {k.split('/', 1)[1]: g[k] for k in g.files if k.startswith('gru2bi/')}\n"
        "t.to_state_dict(t.sequential_from_state_dict(sd, 'GRU'))\n"
        "bad = [m for m in ('torch', 'keras', 'tensorflow', 'h5py') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(crnn.__file__)))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, env=env, timeout=120, cwd=os.path.dirname(__file__))
    assert proc.returncode == 0, proc.stderr


def test_fixtures_record_the_versions_that_made_them():
    assert "torch" in json.loads(str(GOLDEN["versions"]))
