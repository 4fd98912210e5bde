"""The vectorized row maths at every vector tail: tanh and sigmoid spans and the fused GRU
rows (crnn/_kernels/_fastmath.h, _cellmath.h) work in blocks of 16 floats or 8 doubles
(AVX-512; 8 / 4 with AVX2), the last block under a mask, so every length from 1 to past
two blocks is checked, in float32 and float64, with the fused path (tanh, sigmoid) and the
general one (other codes), and again with the AVX2 and baseline builds (CRNN_ISA).

Expected values come from NumPy in float64.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.special import expit

from crnn import ops
from crnn._kernels import _cells
from crnn.reference import ACTIVATIONS as REF

DTYPES = [np.float64, np.float32]
IDS = ["float64", "float32"]
LENGTHS = list(range(1, 41)) + [63, 64, 65, 100]
# relative error of tanh and sigmoid (tests/test_fastmath.py); the row maths around them
# adds a few roundings
ULP_REL = {np.float32: 3e-7, np.float64: 1e-15}
ROW_REL = {np.float32: 2e-6, np.float64: 4e-15}


def _values(rng, n, dtype):
    # around the tanh branch point 0.625, near 0, and saturating
    x = rng.standard_normal(n) * 3
    special = np.array([0.0, 0.625, -0.625, 0.6249, -0.6251, 1e-20, -40.0, 40.0, 90.0, -90.0])
    k = min(n, len(special))
    x[rng.choice(n, k, replace=False)] = special[:k]
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_activation_spans_at_every_length(name, dtype):
    rng = np.random.default_rng(11)
    exact_f = np.tanh if name == "tanh" else expit
    for n in LENGTHS:
        # a guard element on either side must not change
        buf = _values(rng, n + 2, dtype)
        x = buf[1:-1].copy()
        got = buf.copy()
        _cells.activate_span(got[1:-1], ops.ACTIVATIONS[name])
        exact = exact_f(x.astype(np.float64))
        # relative; absolute 1e-30 where sigmoid saturates below the normal range
        rel = np.abs(got[1:-1] - exact) / np.maximum(np.abs(exact), 1e-30 / ULP_REL[dtype])
        assert rel.max() < ULP_REL[dtype], f"n={n}: relative error {rel.max():.3g}"
        assert got[0] == buf[0] and got[-1] == buf[-1], f"n={n}: wrote outside the span"


def _rel_close(actual, expected, dtype, what):
    actual = np.asarray(actual, np.float64)
    err = np.abs(actual - expected) / np.maximum(np.abs(expected), 1.0)
    assert err.max() <= ROW_REL[dtype], f"{what}: relative error {err.max():.3g}"


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("act,ract", [("tanh", "sigmoid"), ("relu", "hard_sigmoid"),
                                      ("sigmoid", "tanh")])
def test_gru_rows_at_every_length(dtype, act, ract):
    # gru_gates_after (reset_after) and gru_finish: fused for ract = sigmoid, act = tanh
    rng = np.random.default_rng(12)
    codes = ops.ACTIVATIONS
    f_act, f_ract = REF[act][0], REF[ract][0]
    for u in LENGTHS:
        batch = 2
        z0 = (rng.standard_normal((batch, 3 * u)) * 2).astype(dtype)
        inner = rng.standard_normal((batch, 3 * u)).astype(dtype)
        h0 = rng.standard_normal((batch, u)).astype(dtype)
        zf, inf, hf = (a.astype(np.float64) for a in (z0, inner, h0))
        zz = f_ract(zf[:, :u] + inf[:, :u])
        r = f_ract(zf[:, u:2 * u] + inf[:, u:2 * u])
        hh_pre = zf[:, 2 * u:] + r * inf[:, 2 * u:]
        z = z0.copy()
        _cells.gru_gates_after(z, inner, codes[ract])
        _rel_close(z[:, :2 * u], np.concatenate([zz, r], axis=1), dtype, f"u={u} z, r")
        _rel_close(z[:, 2 * u:], hh_pre, dtype, f"u={u} candidate pre-activation")
        # gru_finish from the row's own (checked) gates, so only its own maths is compared
        zg = z.astype(np.float64)
        hh = f_act(zg[:, 2 * u:])
        h = h0.copy()
        _cells.gru_finish(z, h, codes[act])
        _rel_close(z[:, 2 * u:], hh, dtype, f"u={u} hh")
        _rel_close(h, zg[:, :u] * hf + (1 - zg[:, :u]) * hh, dtype, f"u={u} h")


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_lstm_rows_at_every_length(dtype):
    rng = np.random.default_rng(13)
    codes = ops.ACTIVATIONS
    for u in LENGTHS:
        z0 = (rng.standard_normal((2, 4 * u)) * 2).astype(dtype)
        c0 = rng.standard_normal((2, u)).astype(dtype)
        zf = z0.astype(np.float64)
        i, f, o = (expit(zf[:, k * u:(k + 1) * u]) for k in (0, 1, 3))
        g = np.tanh(zf[:, 2 * u:3 * u])
        c_exp = f * c0 + i * g
        z, c = z0.copy(), c0.copy()
        h, ac = np.empty_like(c), np.empty_like(c)
        _cells.lstm_step(z, c, h, ac, codes["tanh"], codes["sigmoid"])
        _rel_close(z, np.concatenate([i, f, g, o], axis=1), dtype, f"u={u} gates")
        _rel_close(c, c_exp, dtype, f"u={u} c")
        _rel_close(h, o * np.tanh(c_exp), dtype, f"u={u} h")


_OTHER_ISA = """
import sys
sys.path.insert(0, {tests!r})
import test_cell_rows as t
import numpy as np
for dtype in t.DTYPES:
    for name in ("tanh", "sigmoid"):
        t.test_activation_spans_at_every_length(name, dtype)
    for act, ract in [("tanh", "sigmoid"), ("relu", "hard_sigmoid")]:
        t.test_gru_rows_at_every_length(dtype, act, ract)
    t.test_lstm_rows_at_every_length(dtype)
print("ok")
"""


@pytest.mark.parametrize("isa", ["avx2", "baseline"])
def test_rows_with_avx2_and_baseline_builds(isa):
    import crnn

    tests = os.path.dirname(os.path.abspath(__file__))
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(crnn.__file__)))
    env = dict(os.environ, CRNN_ISA=isa, PYTHONPATH=os.pathsep.join([package_root, tests]))
    result = subprocess.run([sys.executable, "-c", _OTHER_ISA.format(tests=tests)], env=env,
                            capture_output=True, text=True, timeout=300, check=False,
                            cwd=package_root)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
