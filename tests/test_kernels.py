"""The compiled building blocks directly: cell steps, activations, the packed per-step
product, the one activation table; the sequence kernels at shapes that cross register
block, panel and split boundaries; and gradients that cannot go stale.

Expected values come from NumPy (and crnn.reference for whole sequences), never from the
code under test.
"""

import os

import numpy as np
import pytest

from crnn import ops
from crnn._kernels import _cells
from crnn.layers import activations
from crnn.reference import ACTIVATIONS as REF
from ops_cases import (
    TOLERANCE,
    check_gradients,
    grad_ops,
    grad_reference,
    make_problem,
    options,
    run_ops,
    run_reference,
)

DTYPES = [np.float64, np.float32]
IDS = ["float64", "float32"]
BATCHES = [1, 2, 5, 7, 8, 33]
UNITS = [1, 15, 16, 17, 37, 64, 100]
RECURRENT = ["tanh", "sigmoid", "hard_sigmoid", "relu", "linear"]


def _close(actual, expected, dtype, what=""):
    scale = max(1.0, float(np.abs(expected).max()))
    err = float(np.abs(np.asarray(actual, np.float64) - expected).max()) / scale
    assert err <= TOLERANCE[dtype], f"{what}: relative error {err:.3g}"


def _f(name, x):
    return REF[name][0](x)


def _df(name, y):
    return REF[name][1](y)


# --------------------------------------------------------------------------- the table


def test_one_activation_table_for_python_and_compiled_code():
    # Every Dense/Activation activation runs compiled in streaming, and nothing else does.
    assert set(_cells.ACTIVATION_CODES) == set(activations.ALL_NAMES)
    assert len(set(_cells.ACTIVATION_CODES.values())) == len(_cells.ACTIVATION_CODES)
    assert set(_cells.RECURRENT_ACTIVATIONS) == set(REF)
    assert ops.ACTIVATIONS == {n: _cells.ACTIVATION_CODES[n] for n in REF}


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("name", sorted(_cells.ACTIVATION_CODES))
def test_compiled_activation_matches_numpy(name, dtype):
    rng = np.random.default_rng(3)
    for n in (1, 7, 16, 33):
        x = (rng.standard_normal(n) * 4).astype(dtype)
        expected = activations.apply(name, x.astype(np.float64))
        got = x.copy()
        _cells.activate_span(got, _cells.ACTIVATION_CODES[name])
        tol = 1e-12 if dtype == np.float64 else 2e-6
        np.testing.assert_allclose(got, expected, rtol=tol, atol=tol, err_msg=name)


def test_activate_span_refuses_unknown_codes():
    with pytest.raises(ValueError, match="unknown activation code"):
        _cells.activate_span(np.zeros(3), 99)
    with pytest.raises(ValueError, match="recurrent one"):
        _cells.simple_rnn_step(np.zeros((1, 2)), np.zeros((1, 2)), 5)


# --------------------------------------------------------------------------- cell steps


def _rand(rng, dtype, *shape, s=1.0):
    return (rng.standard_normal(shape) * s).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("act,ract", [("tanh", "sigmoid"), ("relu", "hard_sigmoid"),
                                      ("linear", "sigmoid"), ("sigmoid", "tanh")])
def test_lstm_step_and_backward_match_numpy(dtype, act, ract):
    rng = np.random.default_rng(0)
    codes = ops.ACTIVATIONS
    for batch, u in [(1, 1), (2, 15), (5, 16), (7, 17), (33, 37)]:
        z0 = _rand(rng, dtype, batch, 4 * u, s=2.0)
        c0 = _rand(rng, dtype, batch, u)
        i, f, o = (_f(ract, z0[:, k * u:(k + 1) * u].astype(np.float64)) for k in (0, 1, 3))
        g = _f(act, z0[:, 2 * u:3 * u].astype(np.float64))
        c_exp = f * c0 + i * g
        ac_exp = _f(act, c_exp)
        z, c = z0.copy(), c0.copy()
        h, ac = np.empty_like(c), np.empty_like(c)
        _cells.lstm_step(z, c, h, ac, codes[act], codes[ract])
        _close(z, np.concatenate([i, f, g, o], axis=1), dtype, "gates")
        _close(c, c_exp, dtype, "c")
        _close(ac, ac_exp, dtype, "act(c)")
        _close(h, o * ac_exp, dtype, "h")
        # backward, from the step's own (float64-checked) outputs
        gates = z.astype(np.float64)
        dh, dc_in = _rand(rng, dtype, batch, u), _rand(rng, dtype, batch, u)
        i, f, g, o = (gates[:, k * u:(k + 1) * u] for k in range(4))
        acf = ac.astype(np.float64)
        dcv = dc_in + dh * o * _df(act, acf)
        dz_exp = np.concatenate([dcv * g * _df(ract, i), dcv * c0 * _df(ract, f),
                                 dcv * i * _df(act, g), dh * acf * _df(ract, o)], axis=1)
        dz, dc = np.empty_like(z), dc_in.copy()
        _cells.lstm_step_backward(z, c0, ac, dh, dc, dz, codes[act], codes[ract])
        _close(dz, dz_exp, dtype, "dz")
        _close(dc, dcv * f, dtype, "dc_tm1")


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_steps_and_backward_match_numpy(dtype, reset_after):
    rng = np.random.default_rng(1)
    act, ract = ops.ACTIVATIONS["tanh"], ops.ACTIVATIONS["sigmoid"]
    for batch, u in [(1, 1), (2, 15), (8, 16), (7, 17), (33, 37)]:
        x0 = _rand(rng, dtype, batch, 3 * u, s=2.0)
        h0 = _rand(rng, dtype, batch, u)
        xf, hf = x0.astype(np.float64), h0.astype(np.float64)
        z = x0.copy()
        if reset_after:
            inner = _rand(rng, dtype, batch, 3 * u)
            inf = inner.astype(np.float64)
            zz = _f("sigmoid", xf[:, :u] + inf[:, :u])
            r = _f("sigmoid", xf[:, u:2 * u] + inf[:, u:2 * u])
            hh_pre = xf[:, 2 * u:] + r * inf[:, 2 * u:]
            _cells.gru_gates_after(z, inner, ract)
        else:
            zz, r = _f("sigmoid", xf[:, :u]), _f("sigmoid", xf[:, u:2 * u])
            rh = np.empty_like(h0)
            _cells.gru_gates_before(z, h0, rh, ract)
            _close(rh, r * hf, dtype, "r * h")
            hh_pre = xf[:, 2 * u:]
        _close(z[:, :2 * u], np.concatenate([zz, r], axis=1), dtype, "z, r")
        _close(z[:, 2 * u:], hh_pre, dtype, "candidate pre-activation")
        h = h0.copy()
        _cells.gru_finish(z, h, act)
        hh = np.tanh(hh_pre)
        _close(h, zz * hf + (1 - zz) * hh, dtype, "h")
        # backward
        gates = z.astype(np.float64)
        zz, r, hh = gates[:, :u], gates[:, u:2 * u], gates[:, 2 * u:]
        dh_in = _rand(rng, dtype, batch, u)
        dz_exp = dh_in * (hf - hh) * zz * (1 - zz)
        dhh = dh_in * (1 - zz) * (1 - hh * hh)
        dh, dgx, dgi = dh_in.copy(), np.empty_like(z), np.empty_like(z)
        inner_h = np.ascontiguousarray(inner[:, 2 * u:]) if reset_after else h0
        _cells.gru_step_backward(z, h0, inner_h, dh, dgx, dgi, act, ract, reset_after)
        _close(dh, dh_in * zz, dtype, "dh * z")
        _close(dgx[:, :u], dz_exp, dtype, "dz")
        _close(dgx[:, 2 * u:], dhh, dtype, "dhh")
        if reset_after:
            dr = dhh * inner_h * r * (1 - r)
            _close(dgx[:, u:2 * u], dr, dtype, "dr")
            _close(dgi, np.concatenate([dz_exp, dr, dhh * r], axis=1), dtype, "d inner")
        else:
            d_rh = _rand(rng, dtype, batch, u)
            dh_r = _rand(rng, dtype, batch, u)
            dh_r0 = dh_r.astype(np.float64)
            _cells.gru_reset_backward(z, h0, d_rh, dgx, dh_r, ract)
            _close(dgx[:, u:2 * u], d_rh * hf * r * (1 - r), dtype, "dr")
            _close(dh_r, dh_r0 + d_rh * r, dtype, "dh_r")


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("act", RECURRENT)
def test_simple_rnn_step_and_backward_match_numpy(dtype, act):
    rng = np.random.default_rng(2)
    code = ops.ACTIVATIONS[act]
    for batch, u in [(1, 1), (5, 16), (33, 17)]:
        z0 = _rand(rng, dtype, batch, u, s=2.0)
        z, h = z0.copy(), np.empty_like(z0)
        _cells.simple_rnn_step(z, h, code)
        expected = _f(act, z0.astype(np.float64))
        _close(z, expected, dtype, "z")
        np.testing.assert_array_equal(h, z)
        dh = _rand(rng, dtype, batch, u)
        dz = np.empty_like(z)
        _cells.simple_rnn_step_backward(z, dh, dz, code)
        _close(dz, dh * _df(act, z.astype(np.float64)), dtype, "dz")


def test_step_wrappers_check_shapes():
    with pytest.raises(ValueError, match="h must have shape"):
        _cells.lstm_step(np.zeros((2, 8)), np.zeros((2, 2)), np.zeros((3, 2)), np.zeros((2, 2)),
                         1, 2)
    with pytest.raises(ValueError, match="c must have shape"):
        _cells.packed_gemm(np.zeros((2, 3)), np.zeros((3, 4)), np.zeros((2, 5)))


# --------------------------------------------------------------------------- micro-kernel


# Row counts of the per-step product: every count of rows left over after the 8-row (AVX-512)
# and 4-row (AVX2, baseline) blocks, alone (1-7) and after one or more full blocks, where
# fewer than 4 of them make the last block's rows two blocks (9-11, 17-19, 33-35).
PACKED_ROWS = tuple(range(1, 20)) + (24, 33, 34, 35)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_packed_gemm_matches_numpy_across_block_boundaries(dtype, rows=PACKED_ROWS):
    """The per-step product against NumPy at every row count's blocks (PACKED_ROWS), panel
    edges (n) and depths (k); and each row bit-equal to the same row computed alone (a
    batch of one row, its own kernel): every block makes the same sums in the same order,
    which the rows split across threads relies on."""
    rng = np.random.default_rng(4)
    for m in rows:
        for n in (1, 7, 8, 15, 16, 17, 31, 32, 33, 48, 64, 65, 100, 128, 130, 400):
            for k in (1, 3, 16, 37):
                a, b = _rand(rng, dtype, m, k), _rand(rng, dtype, k, n)
                c0 = _rand(rng, dtype, m, n)
                c = c0.copy()
                _cells.packed_gemm(a, b, c)
                expected = c0.astype(np.float64) + a.astype(np.float64) @ b.astype(np.float64)
                tol = 1e-12 if dtype == np.float64 else 1e-5
                what = f"m={m} n={n} k={k}"
                np.testing.assert_allclose(c, expected, rtol=tol, atol=tol * k, err_msg=what)
                if k == 37 and n in (64, 130):
                    for i in range(m):
                        alone = c0[i:i + 1].copy()
                        _cells.packed_gemm(a[i:i + 1], b, alone)
                        np.testing.assert_array_equal(c[i:i + 1], alone,
                                                      err_msg=f"{what} row {i}")


def _panels(b):
    """B in the packed layout, built by NumPy: panels of 128 bytes of columns, each panel
    its k rows back to back, the last panel zero-padded."""
    k, n = b.shape
    pw = 128 // b.itemsize
    padded = np.zeros((k, -(-n // pw) * pw), b.dtype)
    padded[:, :n] = b
    return padded.reshape(k, -1, pw).transpose(1, 0, 2).ravel()


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_pack_writes_the_panel_layout(dtype):
    """pack_b's layout, row blocks and their tails, a partial last panel, and packs at or
    above the size written with streaming stores (8 MiB: 1024 x 2048 floats, 1024 x 1024
    doubles), against the panels built by NumPy."""
    rng = np.random.default_rng(11)
    big = (1024, 2048) if dtype == np.float32 else (1024, 1024)
    for k, n in ((1, 1), (7, 33), (9, 64), (17, 130), (100, 32), big, (big[0] + 3, big[1] + 5)):
        b = _rand(rng, dtype, k, n)
        assert np.array_equal(_cells.pack(b), _panels(b)), (k, n)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_packed_product_on_a_packing_reused_equals_packed_gemm(dtype):
    """bench/'s hooks (pack once, the per-step product many times) run the packed kernel's
    sums: bit-equal to packed_gemm, product after product; a packing of another shape or
    dtype is refused before anything is written."""
    rng = np.random.default_rng(5)
    for m, k, n in ((1, 64, 256), (7, 37, 130), (33, 16, 65), (8, 100, 32)):
        a, b = _rand(rng, dtype, m, k), _rand(rng, dtype, k, n)
        packed = _cells.pack(b)
        c0 = _rand(rng, dtype, m, n)
        c, expected = c0.copy(), c0.copy()
        for _ in range(3):
            _cells.packed_product(a, packed, c)
            _cells.packed_gemm(a, b, expected)
            assert np.array_equal(c, expected), (m, k, n)
        twice = c.copy()
        _cells.packed_product(a, packed, twice, repeat=2)
        _cells.packed_gemm(a, b, expected)
        _cells.packed_gemm(a, b, expected)
        assert np.array_equal(twice, expected), (m, k, n)
        tol = dict(rtol=1e-4, atol=1e-3) if dtype == np.float32 else dict(rtol=1e-12,
                                                                          atol=1e-10)
        np.testing.assert_allclose(
            c, c0 + 3 * (a.astype(np.float64) @ b.astype(np.float64)), **tol)
        # the cache-blocked kernel: for k within its block of 256 rows, the same sums
        blocked, once = c0.copy(), c0.copy()
        _cells.packed_product(a, packed, blocked, blocked=True)
        _cells.packed_gemm(a, b, once)
        assert np.array_equal(blocked, once), (m, k, n)
    # blocked over several k blocks (KC = 256) and row blocks (MC = 96)
    a, b = _rand(rng, dtype, 100, 600), _rand(rng, dtype, 600, 70)
    c = np.ones((100, 70), dtype)
    _cells.packed_product(a, _cells.pack(b), c, blocked=True)
    np.testing.assert_allclose(c, 1 + a.astype(np.float64) @ b.astype(np.float64), **tol)
    a, b = _rand(rng, dtype, 4, 16), _rand(rng, dtype, 16, 40)
    c = np.zeros((4, 40), dtype)
    with pytest.raises(ValueError, match="packed must have shape"):
        _cells.packed_product(a, _cells.pack(np.ascontiguousarray(b[:, :32])), c)
    with pytest.raises(ValueError, match="packed must have shape"):
        _cells.packed_product(np.ascontiguousarray(a[:, :8]), _cells.pack(b), c)
    with pytest.raises(ValueError, match="c must have shape"):
        _cells.packed_product(a, _cells.pack(b), np.zeros((5, 40), dtype))
    with pytest.raises(ValueError, match="repeat must be at least 1, received 0"):
        _cells.packed_product(a, _cells.pack(b), c, repeat=0)
    other = np.float32 if dtype == np.float64 else np.float64
    with pytest.raises(ValueError, match="dtype mismatch"):
        _cells.packed_product(a, _cells.pack(b).astype(other), c)
    assert not c.any()


# --------------------------------------------------------------------------- sequences


def _sequence_case(cell, dtype, batch, units, reset_after=True, go_backwards=False,
                   masked=False, seed=0):
    rng = np.random.default_rng(seed)
    problem = make_problem(cell, rng, batch=batch, timesteps=3, features=5, units=units,
                           dtype=dtype, reset_after=reset_after, masked=masked)
    opts = options(cell, go_backwards, reset_after=reset_after)
    outputs, states, cache = run_ops(cell, problem, opts)
    ref_outputs, ref_states, tape = run_reference(cell, problem, opts)
    what = f"{cell} batch={batch} units={units}"
    _close(outputs, ref_outputs, dtype, what + " outputs")
    for a, b in zip(states, ref_states):
        _close(a, b, dtype, what + " states")
    d_out = rng.standard_normal(outputs.shape).astype(dtype)
    d_states = [rng.standard_normal(s.shape).astype(dtype) for s in states]
    grads = grad_ops(cell, cache, d_out, d_states)
    expected = grad_reference(cell, tape, d_out, d_states)
    for name in ("dx", "d_kernel", "d_recurrent_kernel", "d_bias"):
        _close(getattr(grads, name), expected[name], dtype, f"{what} {name}")
    for a, b in zip(grads.d_initial_state, expected["d_initial_state"]):
        _close(a, b, dtype, what + " d_initial_state")


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("cell,reset_after", [("lstm", True), ("gru", True), ("gru", False),
                                              ("simple_rnn", True)])
@pytest.mark.parametrize("units", UNITS)
def test_sequence_kernels_match_reference_at_block_boundaries(cell, reset_after, units, dtype):
    for k, batch in enumerate(BATCHES):
        _sequence_case(cell, dtype, batch, units, reset_after=reset_after,
                       go_backwards=k % 2 == 1, masked=k % 3 == 2, seed=k)


# --------------------------------------------------------------------------- stale gradients


@pytest.mark.parametrize("cell,reset_after", [("lstm", True), ("gru", True), ("gru", False),
                                              ("simple_rnn", True)])
def test_changing_weights_or_mask_after_forward_does_not_change_gradients(cell, reset_after):
    rng = np.random.default_rng(7)
    problem = make_problem(cell, rng, batch=3, timesteps=4, features=3, units=5,
                           reset_after=reset_after, masked=True)
    mask = problem["mask"].astype(np.uint8)       # the kernels' own mask dtype: no copy on the way
    problem["mask"] = mask
    opts = options(cell, reset_after=reset_after)
    outputs, _, cache = run_ops(cell, problem, opts)
    d_out = rng.standard_normal(outputs.shape)
    expected = grad_ops(cell, cache, d_out, None)
    _, _, cache = run_ops(cell, problem, opts)
    problem["kernel"] += 0.5
    problem["recurrent_kernel"] += 0.5
    mask[...] = 1 - mask
    got = grad_ops(cell, cache, d_out, None)
    for name in ("dx", "d_kernel", "d_recurrent_kernel", "d_bias"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)


# --------------------------------------------------------------------------- other ISAs

_OTHER_ISA_CHECK = """
import numpy as np, sys
sys.path.insert(0, {tests!r})
from crnn._kernels import _cells
import test_kernels as t
for dtype in (np.float32, np.float64):
    rng = np.random.default_rng(0)
    for m, n, k in [(1, 64, 16), (5, 100, 37), (9, 33, 3), (33, 256, 64)]:
        a, b, c = (rng.standard_normal(s).astype(dtype) for s in ((m, k), (k, n), (m, n)))
        expected = c.astype(np.float64) + a.astype(np.float64) @ b.astype(np.float64)
        _cells.packed_gemm(a, b, c)
        np.testing.assert_allclose(c, expected, rtol=1e-5, atol=1e-4)
    t.test_packed_gemm_matches_numpy_across_block_boundaries(dtype, rows=range(1, 12))
    for cell, reset_after in [("lstm", True), ("gru", True), ("gru", False), ("simple_rnn", True)]:
        for batch, units in [(1, 17), (7, 16), (33, 37)]:
            t._sequence_case(cell, dtype, batch, units, reset_after=reset_after, masked=True)
# the activations' NaN handling
import test_fastmath as fm
for dtype in (np.float32, np.float64):
    for activation in ("tanh", "sigmoid"):
        fm.test_nan_in_nan_out(activation, dtype)
# the transposition, the whole products (their transposed operands) and the packing
for dtype in (np.float32, np.float64):
    t.test_transposed_copy_across_its_blocks(dtype)
    t.test_whole_sequence_gemm_matches_numpy(dtype, False)
    t.test_pack_writes_the_panel_layout(dtype)
# the splits across crnn's thread pool (units: inference and training; rows: training)
import test_row_split as rs, test_units_split as us
for cell in ("lstm", "gru"):
    us.test_units_split_equals_one_thread(cell)
    us.test_training_units_split_equals_one_thread(cell, np.float64)
for cell, reset_after in [("lstm", True), ("gru", True), ("gru", False)]:
    rs.test_kernel_training_split_equals_one_thread(cell, reset_after)
print("ok")
"""


@pytest.mark.parametrize("isa", ["avx2", "baseline"])
def test_avx2_and_portable_builds_match_reference(isa):
    # The same binary, told to use its AVX2+FMA or baseline (SSE2) code (CRNN_ISA, see
    # _fastmath.h), still matches NumPy and the reference.
    import os
    import subprocess
    import sys

    import crnn

    tests = os.path.dirname(os.path.abspath(__file__))
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(crnn.__file__)))
    env = dict(os.environ, CRNN_ISA=isa, PYTHONPATH=os.pathsep.join([package_root, tests]))
    result = subprocess.run([sys.executable, "-c", _OTHER_ISA_CHECK.format(tests=tests)],
                            env=env, capture_output=True, text=True, timeout=300, check=False,
                            cwd=package_root)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("threaded", [False, True], ids=["own", "blas"])
def test_whole_sequence_gemm_matches_numpy(dtype, threaded):
    rng = np.random.default_rng(5)
    # crossing the blocks of the own kernel: k by 256 rows, n by 1024 (float32) or 512
    # (float64) columns, m by 96 rows; panels of 32 or 16 columns
    for m, n, k in [(1, 1, 1), (7, 17, 5), (33, 100, 37), (200, 64, 300), (97, 130, 600),
                    (20, 1100, 520), (5, 530, 257)]:
        for trans_a in (False, True):
            for trans_b in (False, True):
                for beta in (0.0, 1.0):
                    a = _rand(rng, dtype, *((k, m) if trans_a else (m, k)))
                    b = _rand(rng, dtype, *((n, k) if trans_b else (k, n)))
                    c = _rand(rng, dtype, m, n)
                    expected = ((a.T if trans_a else a).astype(np.float64)
                                @ (b.T if trans_b else b).astype(np.float64) + beta * c)
                    _cells.whole_gemm(trans_a, trans_b, a, b, c, beta, threaded)
                    tol = 1e-12 if dtype == np.float64 else 2e-5
                    np.testing.assert_allclose(c, expected, rtol=tol, atol=tol * k ** 0.5,
                                               err_msg=f"{m} {n} {k} {trans_a} {trans_b}")


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("threaded", [False, True], ids=["own", "blas"])
def test_weight_gradient_sums_its_bias_in_row_order(dtype, threaded):
    """gemm_big_sum: the product as gemm_big's, and the column sums made while packing B,
    bit-equal to sequential sums (np.cumsum's) on every path: crnn's kernel across its
    row blocks (256 rows) and column blocks, a B narrower than a panel (BLAS), BLAS, and
    a mostly-zero A (one-hot rows, the sparse product)."""
    rng = np.random.default_rng(8)
    for m, n, k in [(1, 1, 1), (7, 17, 5), (33, 100, 37), (16, 130, 600), (5, 1100, 257),
                    (9, 40, 300)]:
        for sparse in (False, True):
            a = _rand(rng, dtype, k, m)
            if sparse:
                a = np.eye(m, dtype=dtype)[rng.integers(0, m, k)]
            b = _rand(rng, dtype, k, n)
            c = np.full((m, n), np.nan, dtype)
            colsum = np.full(n, np.nan, dtype)
            _cells.weight_gradient(a, b, c, colsum, threaded)
            expected = a.T.astype(np.float64) @ b.astype(np.float64)
            tol = 1e-12 if dtype == np.float64 else 2e-5
            np.testing.assert_allclose(c, expected, rtol=tol, atol=tol * k ** 0.5,
                                       err_msg=f"{m} {n} {k} {sparse}")
            np.testing.assert_array_equal(colsum, np.cumsum(b, axis=0, dtype=dtype)[-1],
                                          err_msg=f"{m} {n} {k} {sparse}")
    with pytest.raises(ValueError, match="colsum"):
        _cells.weight_gradient(a, b, c, np.zeros(n + 1, dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("gemm", ["own", "blas"])
def test_wide_layers_cross_the_column_blocks_of_the_whole_products(gemm, dtype, monkeypatch):
    # 4 * 300 gate columns: more than one column block of crnn's own whole-sequence kernel
    # (1024 float32 or 512 float64 columns), in the input projection and the gradients
    from crnn import threads

    monkeypatch.setenv("CRNN_GEMM", gemm)
    monkeypatch.setattr(threads, "_OWN_GEMM", [])
    for cell, units in [("lstm", 300), ("gru", 181)]:
        _sequence_case(cell, dtype, 9, units, masked=True)


# --------------------------------------------------------------------------- whole products, threads


@pytest.mark.parametrize("gemm", ["own", "blas"])
def test_sequence_kernels_match_reference_with_either_whole_product(gemm, monkeypatch):
    from crnn import threads

    monkeypatch.setenv("CRNN_GEMM", gemm)
    assert threads.use_own_gemm() is (gemm == "own")
    for dtype in DTYPES:
        for cell, reset_after in [("lstm", True), ("gru", True), ("gru", False),
                                  ("simple_rnn", True)]:
            for batch, units in [(1, 16), (7, 37), (33, 17)]:
                _sequence_case(cell, dtype, batch, units, reset_after=reset_after,
                               masked=True, go_backwards=True)


@pytest.mark.parametrize("store", ["environ", "fallback"])
def test_gemm_override_follows_the_environment_at_every_call(store, monkeypatch):
    # CRNN_GEMM is looked up in os.environ's own store (threads._ENV_STORE), or through
    # os.environ.get where there is none: either way a change shows at the next call
    import os

    from crnn import threads

    if store == "fallback":
        monkeypatch.setattr(threads, "_ENV_STORE", None)
    monkeypatch.delenv("CRNN_GEMM", raising=False)
    assert threads._gemm_override() == ""
    for value, own in [("Own", True), ("BLAS", False), ("own", True)]:
        monkeypatch.setenv("CRNN_GEMM", value)
        assert threads._gemm_override() == value.lower()
        assert threads.use_own_gemm() is own
        assert threads.use_own_gemm_for_gradients() is own
    os.environ["CRNN_GEMM"] = "blas"
    assert threads.use_own_gemm() is False
    del os.environ["CRNN_GEMM"]
    assert threads._gemm_override() == ""


@pytest.mark.parametrize("corename,half_width,isa,expected", [
    ("Haswell", False, "avx512", True),        # an AVX2 BLAS kernel on an AVX-512 CPU
    ("SkylakeX", False, "avx512", False),      # full-width AVX-512 units: OpenBLAS's
    ("SkylakeX", True, "avx512", True),        # 256-bit units (AMD Zen 4): crnn's kernel
    ("SkylakeX", True, "avx2", False),         # crnn capped below AVX-512
    ("Haswell", False, "avx2", False),
])
def test_own_gemm_choice(corename, half_width, isa, expected, monkeypatch):
    from types import SimpleNamespace

    from crnn import threads
    from crnn._kernels import _cells

    monkeypatch.delenv("CRNN_GEMM", raising=False)
    monkeypatch.setattr(threads, "_OWN_GEMM", [])
    monkeypatch.setattr(threads, "_pools",
                        lambda: [SimpleNamespace(package="scipy", corename=corename)])
    monkeypatch.setattr(_cells, "avx512_half_width", lambda: half_width)
    monkeypatch.setattr(_cells, "isa", lambda: isa)
    assert threads.use_own_gemm() is expected


def test_avx512_half_width_reports_a_bool_and_follows_the_isa_cap():
    import subprocess
    import sys

    import crnn
    from crnn._kernels import _cells

    assert isinstance(_cells.avx512_half_width(), bool)
    if _cells.isa() != "avx512":
        assert _cells.avx512_half_width() is False
    # the crnn this test imported (a source build or an installed one), run from its root
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(crnn.__file__)))
    capped = subprocess.run(
        [sys.executable, "-c",
         "from crnn._kernels import _cells; print(_cells.avx512_half_width())"],
        env={**os.environ, "CRNN_ISA": "avx2", "PYTHONPATH": package_root},
        capture_output=True, text=True, timeout=120, check=False, cwd=package_root)
    assert capped.returncode == 0, capped.stderr[-2000:]
    assert capped.stdout.strip() == "False"


def test_without_a_bundled_openblas_threads_fall_back(monkeypatch):
    from crnn import threads

    monkeypatch.setattr(threads, "_pools", lambda: [])
    monkeypatch.setattr(threads, "_OWN_GEMM", [])
    monkeypatch.delenv("CRNN_GEMM", raising=False)
    assert threads.blas_info() == {}
    assert threads.use_own_gemm() is False
    with pytest.raises(RuntimeError, match="threadpoolctl"):
        threads.set_num_threads(2)
    with pytest.raises(ValueError, match="positive int"):
        threads.set_num_threads(0)


# --------------------------------------------------------------------------- projection chunks


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("own_gemm", [True, False], ids=["own", "blas"])
@pytest.mark.parametrize("wide", [False, True], ids=["in_place", "copied"])
def test_lstm_projection_chunks_match_reference(dtype, own_gemm, wide, monkeypatch):
    # The input projection runs per chunk of timesteps (3 here): sequences of 1, chunk - 1,
    # chunk, chunk + 1 and 2 chunks + 1 steps, both directions, masked or not, non-zero
    # initial states; outputs, states and gradients against the reference, and inference
    # equal to training. ``wide``: gate rows of 4 KiB (_lstm.pyx's TRAIN_COPY_BYTES), which
    # training computes in the padded chunk buffer and copies on into its saved gates;
    # else 17 units, computed in place.
    from crnn._kernels import _lstm

    units = 4096 // (4 * np.dtype(dtype).itemsize) if wide else 17

    chunk = 3
    monkeypatch.setattr(_lstm, "inference_chunk", lambda *args: chunk)
    monkeypatch.setenv("CRNN_GEMM", "own" if own_gemm else "blas")
    rng = np.random.default_rng(11)
    for k, timesteps in enumerate([1, chunk - 1, chunk, chunk + 1, 2 * chunk + 1]):
        for go_backwards in (False, True):
            masked = (k + go_backwards) % 2 == 1
            problem = make_problem("lstm", rng, batch=5, timesteps=timesteps, features=4,
                                   units=units, dtype=dtype, masked=masked,
                                   scale=0.1 if wide else 0.5)
            opts = options("lstm", go_backwards)
            what = f"timesteps={timesteps} go_backwards={go_backwards} masked={masked}"
            outputs, states, cache = run_ops("lstm", problem, opts)
            ref_outputs, ref_states, tape = run_reference("lstm", problem, opts)
            _close(outputs, ref_outputs, dtype, what + " outputs")
            for a, b in zip(states, ref_states):
                _close(a, b, dtype, what + " states")
            infer_outputs, infer_states, _ = run_ops("lstm", problem, opts, training=False)
            np.testing.assert_array_equal(infer_outputs, outputs, err_msg=what)
            for a, b in zip(infer_states, states):
                np.testing.assert_array_equal(a, b, err_msg=what)
            check_gradients("lstm", cache, tape, outputs, states, rng,
                            lambda a, b, w: _close(a, b, dtype, w), what)


def test_lstm_projection_chunk_sizes():
    from crnn._kernels import _lstm

    # about CHUNK_BYTES of gates per chunk, at least one step, at most CHUNK_STEPS_MAX;
    # at least CHUNK_ROWS_MIN rows when W does not stay in cache
    assert _lstm.inference_chunk(64, 256, 128, False) * 64 * 1024 * 4 <= _lstm.CHUNK_BYTES
    assert _lstm.inference_chunk(4096, 4096, 1, True) == 1
    assert _lstm.inference_chunk(1, 1, 1, False) == _lstm.CHUNK_STEPS_MAX
    assert _lstm.inference_chunk(16, 1024, 1024, False) * 16 >= _lstm.CHUNK_ROWS_MIN
    # a W that streams from L3 or memory: up to CHUNK_BYTES_STREAMED of gates per chunk
    assert _lstm.inference_chunk(16, 1024, 1024, False) == 64
    assert _lstm.inference_chunk(64, 1024, 1024, False) == 16
    assert _lstm.inference_chunk(64, 512, 512, False) == 4       # W of 4 MiB: not streamed


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_lstm_with_the_automatic_chunk_crosses_it(dtype):
    from crnn._kernels import _lstm

    rng = np.random.default_rng(12)
    timesteps = _lstm.CHUNK_STEPS_MAX + 1         # batch 1, 1 unit: chunks of the maximum
    for go_backwards in (False, True):
        problem = make_problem("lstm", rng, batch=1, timesteps=timesteps, features=2,
                               units=1, dtype=dtype, masked=go_backwards)
        opts = options("lstm", go_backwards)
        ref_outputs, ref_states, _ = run_reference("lstm", problem, opts)
        for training in (False, True):
            outputs, states, _ = run_ops("lstm", problem, opts, training=training)
            _close(outputs, ref_outputs, dtype, "outputs")
            for a, b in zip(states, ref_states):
                _close(a, b, dtype, "states")


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_transposed_copy_across_its_blocks(dtype):
    # the cache's private R^T: whole register tiles (16 x 16 floats, 8 x 8 doubles) and
    # partial ones at both edges, any strides
    from crnn._kernels._cells import transposed

    rng = np.random.default_rng(21)
    for shape in [(1, 1), (1, 70), (7, 9), (8, 8), (15, 17), (16, 16), (17, 33), (31, 33),
                  (32, 64), (65, 97), (100, 37), (256, 1024)]:
        a = rng.standard_normal(shape).astype(dtype)
        for view in (a, a[::2], a[:, 1:], a.T, a[::-1]):
            t = transposed(view)
            assert t.dtype == dtype and t.flags.c_contiguous and t.shape == view.shape[::-1]
            np.testing.assert_array_equal(t, view.T)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("cell,reset_after", [("lstm", True), ("gru", True), ("gru", False)])
def test_inference_with_many_features_matches_reference_and_training(cell, reset_after,
                                                                      dtype):
    """Inference with 64 features and more: LSTM projects per timestep reading x where it is
    and GRU (reset_after) per chunk through its one-part units path, both into gate rows
    padded beyond G (gate_stride); every batch size of a register block's edges, units a
    power of two (G a multiple of 1024 floats: the padded case) and not, masks and both
    directions. Outputs as the reference's, and bit-equal to training mode's (which takes
    the same paths, its gate rows unpadded)."""
    rng = np.random.default_rng(31)
    for k, (batch, units, features) in enumerate([(1, 16, 64), (5, 17, 70), (8, 256, 64),
                                                  (7, 33, 96), (2, 64, 128)]):
        problem = make_problem(cell, rng, batch=batch, timesteps=6, features=features,
                               units=units, dtype=dtype, reset_after=reset_after,
                               masked=k % 2 == 1, scale=0.2)
        opts = options(cell, k % 2 == 0, reset_after=reset_after)
        what = f"{cell} batch={batch} units={units} features={features}"
        ref_outputs, ref_states, _ = run_reference(cell, problem, opts)
        outputs, states, _ = run_ops(cell, problem, opts, training=False)
        _close(outputs, ref_outputs, dtype, what + " outputs")
        for a, b in zip(states, ref_states):
            _close(a, b, dtype, what + " states")
        train_outputs, train_states, _ = run_ops(cell, problem, opts, training=True)
        # the same sums in the same order: _lstm.pyx's _forward, GRU's one-part units path
        # (reset_after) or _forward in both modes
        np.testing.assert_array_equal(outputs, train_outputs, err_msg=what)
        for a, b in zip(states, train_states):
            np.testing.assert_array_equal(a, b, err_msg=what + " states")
