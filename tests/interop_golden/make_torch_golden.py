"""Generate tests/interop_golden/torch_golden.npz from PyTorch (run once by hand).

    python tests/interop_golden/make_torch_golden.py

PyTorch is not a test dependency: the tests load these state_dicts (as NumPy arrays) into
crnn and compare with the PyTorch outputs stored beside them.

Contents, for each case ``<c>``: the module's state_dict entries ``<c>/<key>``, the input
``<c>:x`` (in the module's own layout: batch first or not), the outputs ``<c>:output``
(PyTorch's ``output``), ``<c>:h_n`` and, with a head, ``<c>:head`` (``nn.Linear`` on the
last layer's final hidden state(s)). Cases:

  lstm2bi    nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True) + Linear(10, 2)
  gru_tf     nn.GRU(3, 4, num_layers=1) with batch_first=False (time-major input) + Linear
  gru2bi     nn.GRU(2, 3, num_layers=2, bidirectional=True, batch_first=True, bias=False)
  rnn_relu   nn.RNN(3, 4, num_layers=2, nonlinearity="relu", batch_first=True)
  lstm_proj  nn.LSTM(3, 4, proj_size=2) (crnn refuses it; only its keys are used)

``versions`` records the library versions (JSON).
"""

import json
import os
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from golden_meta import meta_array  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def _case(out, name, rnn, head, x, batch_first):
    with torch.no_grad():
        output, h_n = rnn(torch.from_numpy(x))
        if isinstance(h_n, tuple):
            h_n = h_n[0]
        for key, value in rnn.state_dict().items():
            out[f"{name}/{key}"] = value.numpy()
        out[f"{name}:x"] = x
        out[f"{name}:output"] = output.numpy()
        out[f"{name}:h_n"] = h_n.numpy()
        if head is not None:
            last = torch.cat([h_n[-2], h_n[-1]], 1) if rnn.bidirectional else h_n[-1]
            out[f"{name}:head"] = head(last).numpy()
            for key, value in head.state_dict().items():
                out[f"{name}/head.{key}"] = value.numpy()


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(7)
    out = {}
    _case(out, "lstm2bi", nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True),
          nn.Linear(10, 2), rng.standard_normal((4, 6, 3)).astype("float32"), True)
    _case(out, "gru_tf", nn.GRU(3, 4), nn.Linear(4, 1),
          rng.standard_normal((6, 3, 3)).astype("float32"), False)
    _case(out, "gru2bi", nn.GRU(2, 3, num_layers=2, bidirectional=True, batch_first=True,
                                bias=False),
          None, rng.standard_normal((2, 5, 2)).astype("float32"), True)
    _case(out, "rnn_relu", nn.RNN(3, 4, num_layers=2, nonlinearity="relu", batch_first=True),
          None, rng.standard_normal((3, 5, 3)).astype("float32"), True)
    proj = nn.LSTM(3, 4, proj_size=2)
    for key, value in proj.state_dict().items():
        out[f"lstm_proj/{key}"] = value.detach().numpy()
    out["versions"] = np.array(json.dumps({"torch": torch.__version__,
                                           "numpy": np.__version__}))
    out["__meta__"] = meta_array(__file__, (torch,))
    np.savez(os.path.join(HERE, "torch_golden.npz"), **out)


if __name__ == "__main__":
    main()
