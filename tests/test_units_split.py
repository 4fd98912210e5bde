"""Inference's units split (crnn/_kernels/_units.pxd): each thread of crnn's pool owns a slice
of every gate's units, and the time loop hands each step to the pool. Against the NumPy
reference and the one-thread run, for LSTM and GRU (reset_after), both dtypes, masks, both
directions and random non-zero initial states, at unit counts on both sides of the 16-unit
part edges and the packed kernel's panels, batch sizes across its row blocks, and more parts
than units; plus the rule that picks it and the cases that must not take it."""

import threading

import numpy as np
import pytest

import crnn
from crnn import ops
from crnn._kernels import _gru, _lstm, _pool
from ops_cases import TOLERANCE, check_gradients, make_problem, options, run_reference

CELLS = ["lstm", "gru"]


def _close(actual, expected, dtype, what):
    scale = max(1.0, float(np.abs(expected).max()))
    err = float(np.abs(np.asarray(actual) - expected).max()) / scale
    assert err <= TOLERANCE[dtype], f"{what}: relative error {err:.3g}"


def _kernel(cell, problem, go_backwards=False, **kwargs):
    """The compiled inference entry on a make_problem problem (mask optional)."""
    act, ract = ops.ACTIVATIONS["tanh"], ops.ACTIVATIONS["sigmoid"]
    x, kernel, rk = problem["x"], problem["kernel"], problem["recurrent_kernel"]
    has_mask = problem["mask"] is not None
    mask = np.ascontiguousarray(problem["mask"] if has_mask else np.ones(x.shape[:2]),
                                dtype=np.uint8)
    states = problem["initial_state"]
    if cell == "lstm":
        return _lstm.lstm_forward(x, kernel, rk, problem["bias"], mask, has_mask, go_backwards,
                                  act, ract, states[0], states[1], False, **kwargs)
    return _gru.gru_forward(x, kernel, rk, problem["bias"].reshape(-1), mask, has_mask,
                            go_backwards, act, ract, True, states[0], False, **kwargs)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("cell", CELLS)
def test_units_split_matches_reference(cell, dtype):
    cases = [(1, 1), (2, 15), (5, 16), (7, 17), (8, 37), (33, 64), (3, 100), (9, 130)]
    for i, (batch, units) in enumerate(cases):
        for parts in (2, 3):
            for masked, go_backwards in ((False, False), (True, True), (True, False)):
                rng = np.random.default_rng(100 * i + 10 * parts + masked + 2 * go_backwards)
                problem = make_problem(cell, rng, batch=batch, timesteps=6, features=5,
                                       units=units, dtype=dtype, masked=masked)
                what = (f"{cell} batch={batch} units={units} parts={parts} masked={masked} "
                        f"go_backwards={go_backwards}")
                *arrays, saved = _kernel(cell, problem, go_backwards, n_threads=parts,
                                         split_units=parts)
                assert saved is None
                outputs, states = arrays[0], arrays[1:]
                assert outputs.dtype == dtype and outputs.flags.c_contiguous
                ref_outputs, ref_states, _ = run_reference(
                    cell, problem, options(cell, go_backwards=go_backwards))
                _close(outputs, ref_outputs, dtype, what + " outputs")
                for a, b in zip(states, ref_states):
                    assert a.dtype == dtype
                    _close(a, b, dtype, what + " final state")


@pytest.mark.parametrize("cell", CELLS)
def test_units_split_equals_one_thread(cell):
    # the same sums per output element, the input projection's in another order: equal
    # to float64 rounding
    rng = np.random.default_rng(3)
    problem = make_problem(cell, rng, batch=6, timesteps=40, features=24, units=80,
                           masked=True)
    one = _kernel(cell, problem, True)
    for parts in (2, 3, 5):
        split = _kernel(cell, problem, True, n_threads=parts, split_units=parts)
        for a, b in zip(split[:-1], one[:-1]):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("cell", CELLS)
def test_units_split_writes_only_its_outputs(cell):
    # sentinel rows around an out= array; the caller's initial states are not written
    rng = np.random.default_rng(5)
    problem = make_problem(cell, rng, batch=3, timesteps=4, features=3, units=33,
                           masked=True)
    before = [s.copy() for s in problem["initial_state"]]
    expected = _kernel(cell, problem)
    guarded = np.full((5, 4, 33), 7.0)
    out = guarded[1:-1]
    result = _kernel(cell, problem, out=out, n_threads=4, split_units=4)
    assert result[0] is out
    np.testing.assert_array_equal(guarded[0], 7.0)
    np.testing.assert_array_equal(guarded[-1], 7.0)
    for a, b in zip(result[:-1], expected[:-1]):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)
    for a, b in zip(problem["initial_state"], before):
        np.testing.assert_array_equal(a, b)


def test_more_parts_than_units_and_than_the_pool_has():
    rng = np.random.default_rng(6)
    problem = make_problem("lstm", rng, batch=2, timesteps=3, features=2, units=3)
    expected = _kernel("lstm", problem)
    for parts in (3, 7, 40):            # clamped to the units; beyond the pool's workers
        result = _kernel("lstm", problem, n_threads=parts, split_units=parts)
        for a, b in zip(result[:-1], expected[:-1]):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


def test_gru_reset_before_never_splits_units():
    # reset_after=False needs all of r * h_tm1 before the candidate's product: rows only
    rng = np.random.default_rng(7)
    problem = make_problem("gru", rng, batch=4, timesteps=5, features=3, units=20,
                           reset_after=False)
    act, ract = ops.ACTIVATIONS["tanh"], ops.ACTIVATIONS["sigmoid"]
    mask = np.ones((4, 5), np.uint8)
    args = (problem["x"], problem["kernel"], problem["recurrent_kernel"], problem["bias"],
            mask, False, False, act, ract, False, problem["initial_state"][0], False)
    outputs, h, _ = _gru.gru_forward(*args, n_threads=2, split_units=2)
    ref_outputs, ref_states, _ = run_reference("gru", problem, options("gru",
                                                                       reset_after=False))
    _close(outputs, ref_outputs, np.float64, "outputs")
    _close(h, ref_states[0], np.float64, "h")


@pytest.mark.parametrize("batch,units,gates,itemsize,threads,expected", [
    (16, 1024, 4, 4, 2, 2),       # R of 16 MB: each thread streams half
    (64, 512, 4, 4, 2, 2),        # R of 4 MB
    (64, 512, 3, 4, 2, 2),        # GRU's R of 3 MB (GRU: from 512 KiB)
    (64, 256, 4, 4, 2, 0),        # R of 1 MB, 32 rows per thread: the rows split
    (64, 256, 3, 4, 2, 2),        # GRU's R of 768 KiB
    (64, 128, 3, 4, 2, 0),        # GRU's R of 192 KiB
    (1, 512, 4, 4, 2, 2),         # one row: only the units split uses two threads
    (1, 512, 4, 4, 8, 8),
    (1, 127, 4, 4, 2, 0),         # under 64 units per part
    (4, 128, 4, 4, 4, 2),         # at most U // 64 parts
    (1, 200, 3, 8, 2, 0),         # a step under UNITS_MIN_STEP_WORK multiply-adds
    (16, 1024, 4, 4, 1, 0),       # one thread
])
def test_the_rule_that_picks_the_units_split(batch, units, gates, itemsize, threads,
                                             expected):
    assert _pool.units_split_parts(batch, units, gates, itemsize, threads) == expected


@pytest.mark.parametrize("batch,units,gates,expected", [
    (64, 512, 3, 0),              # GRU training: the rows split below an R of 4 MiB
    (64, 256, 3, 0),
    (64, 512, 4, 2),              # R of 4 MiB
    (6, 128, 3, 2),               # 3 rows per thread: too thin to split by rows
])
def test_training_splits_units_only_from_a_larger_r(batch, units, gates, expected):
    assert _pool.units_split_parts(batch, units, gates, 4, 2, True) == expected


@pytest.mark.skipif(not ops._POOL_THREADED, reason="no POSIX threads")
def test_ops_gives_small_batches_of_wide_layers_the_pool(monkeypatch):
    before = crnn.get_num_threads()
    try:
        crnn.set_num_threads(2)
        assert ops._pool_parts(1, 1 << 30, units=128) == 2
        assert ops._pool_parts(1, 1 << 30, units=127) == 1
        assert ops._pool_parts(7, 1 << 30) == 1
        assert ops._pool_parts(1, ops.POOL_SPLIT_MIN_WORK - 1, units=4096) == 1
        crnn.set_num_threads(1)
        assert ops._pool_parts(1, 1 << 30, units=4096) == 1
    finally:
        crnn.set_num_threads(before)


@pytest.mark.parametrize("cell", CELLS)
def test_a_wide_layer_through_ops_matches_one_thread(cell):
    # batch 1, 512 units: crnn.ops hands the kernel two threads and it splits the units
    before = crnn.get_num_threads()
    rng = np.random.default_rng(8)
    problem = make_problem(cell, rng, batch=1, timesteps=8, features=4, units=512,
                           dtype=np.float32, scale=0.05)
    assert _pool.units_split_parts(1, 512, 4 if cell == "lstm" else 3, 4, 2) == 2
    fn = getattr(ops, cell)
    try:
        crnn.set_num_threads(1)
        one, one_states, _ = fn(problem["x"], problem["kernel"], problem["recurrent_kernel"],
                                problem["bias"], problem["initial_state"])
        crnn.set_num_threads(2)
        two, two_states, _ = fn(problem["x"], problem["kernel"], problem["recurrent_kernel"],
                                problem["bias"], problem["initial_state"])
    finally:
        crnn.set_num_threads(before)
    np.testing.assert_allclose(two, one, rtol=1e-6, atol=1e-6)
    for a, b in zip(two_states, one_states):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_units_split_from_four_python_threads_at_once():
    # one job at a time on the pool: the steps of the others run on their callers' threads
    rng = np.random.default_rng(9)
    problems = [make_problem(cell, rng, batch=3, timesteps=30, features=8, units=96,
                             masked=True) for cell in ("lstm", "gru", "lstm", "gru")]
    cells = ["lstm", "gru", "lstm", "gru"]
    expected = [_kernel(c, p) for c, p in zip(cells, problems)]
    results = [None] * 4
    errors = []

    def work(i):
        try:
            for _ in range(20):
                results[i] = _kernel(cells[i], problems[i], n_threads=2, split_units=2)
        except Exception as exc:          # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for got, want in zip(results, expected):
        for a, b in zip(got[:-1], want[:-1]):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11)


# --------------------------------------------------------------------------- training

def _training_pair(cell, problem, rng, go_backwards, parts):
    """Forward and backward of training through the compiled entries, one thread and the
    units split into ``parts``: returns the two results, each (outputs, final states,
    gradients)."""
    act, ract = ops.ACTIVATIONS["tanh"], ops.ACTIVATIONS["sigmoid"]
    x, kernel, rk = problem["x"], problem["kernel"], problem["recurrent_kernel"]
    has_mask = problem["mask"] is not None
    mask = np.ascontiguousarray(problem["mask"] if has_mask else np.ones(x.shape[:2]),
                                dtype=np.uint8)
    states = problem["initial_state"]
    d_outputs = rng.standard_normal(x.shape[:2] + (rk.shape[0],)).astype(x.dtype)
    d_states = [rng.standard_normal(s.shape).astype(x.dtype) for s in states]
    results = []
    for kw in (dict(), dict(n_threads=parts, split_units=parts)):
        if cell == "lstm":
            out, h, c, saved = _lstm.lstm_forward(x, kernel, rk, problem["bias"], mask,
                                                  has_mask, go_backwards, act, ract, states[0],
                                                  states[1], True, **kw)
            grads = _lstm.lstm_backward(
                kernel=kernel, recurrent_kernel_t=rk.T.copy(), mask=mask, has_mask=has_mask,
                go_backwards=go_backwards, activation=act, recurrent_activation=ract,
                d_outputs=d_outputs, d_h=d_states[0], d_c=d_states[1], **saved, **kw)
            results.append(([np.array(out), h, c], [np.array(g) for g in grads]))
        else:
            out, h, saved = _gru.gru_forward(x, kernel, rk, problem["bias"].reshape(-1), mask,
                                             has_mask, go_backwards, act, ract, True, states[0],
                                             True, **kw)
            grads = _gru.gru_backward(
                kernel=kernel, recurrent_kernel_t=rk.T.copy(), mask=mask, has_mask=has_mask,
                go_backwards=go_backwards, activation=act, recurrent_activation=ract,
                reset_after=True, d_outputs=d_outputs, d_h=d_states[0], **saved, **kw)
            results.append(([np.array(out), h], [np.array(g) for g in grads]))
    return results


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("cell", CELLS)
def test_training_units_split_equals_one_thread(cell, dtype):
    # forward and backward, every gradient, at unit counts across the part edges and
    # batches across the row blocks; one thread is checked against the reference elsewhere
    tol = 1e-11 if dtype == np.float64 else 2e-5
    cases = [(1, 1, 2), (2, 15, 2), (5, 17, 3), (8, 37, 2), (33, 64, 3), (3, 100, 2)]
    for i, (batch, units, parts) in enumerate(cases):
        for masked, go_backwards in ((False, False), (True, True), (True, False)):
            rng = np.random.default_rng(1000 + 10 * i + masked + 2 * go_backwards)
            problem = make_problem(cell, rng, batch=batch, timesteps=5, features=4,
                                   units=units, dtype=dtype, masked=masked)
            one, split = _training_pair(cell, problem, rng, go_backwards, parts)
            what = f"{cell} batch={batch} units={units} masked={masked}"
            for a, b in zip(split[0] + split[1], one[0] + one[1]):
                assert a.dtype == dtype
                _close(a, b, dtype, what)
                np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=what)


@pytest.mark.parametrize("cell", CELLS)
def test_training_through_ops_splits_the_units_and_matches_the_reference(cell, monkeypatch):
    # batch 6 of 128 units: _units_threads picks two parts; crnn.ops against the reference
    from ops_cases import grad_ops, grad_reference
    before = crnn.get_num_threads()
    rng = np.random.default_rng(11)
    problem = make_problem(cell, rng, batch=6, timesteps=4, features=8, units=128,
                           masked=True, scale=0.2)
    opts = options(cell, go_backwards=True)
    gates = 4 if cell == "lstm" else 3
    assert ops._units_threads(6, 128, gates, 8, 1 << 30) == 1        # one thread
    try:
        crnn.set_num_threads(2)
        assert ops._units_threads(6, 128, gates, 8, 1 << 30) == 2
        outputs, states, cache = getattr(ops, cell)(
            problem["x"], problem["kernel"], problem["recurrent_kernel"], problem["bias"],
            problem["initial_state"], mask=problem["mask"], training=True, **opts)
        assert cache.backward_args["n_threads"] == 2 and cache.parts is None
        d_outputs = rng.standard_normal(outputs.shape)
        d_states = [rng.standard_normal(s.shape) for s in states]
        grads = grad_ops(cell, cache, d_outputs, d_states)
    finally:
        crnn.set_num_threads(before)
    ref_outputs, ref_states, tape = run_reference(cell, problem, opts)
    _close(outputs, ref_outputs, np.float64, "outputs")
    for a, b in zip(states, ref_states):
        _close(a, b, np.float64, "final state")
    ref = grad_reference(cell, tape, d_outputs, d_states)
    for name in ("dx", "d_kernel", "d_recurrent_kernel"):
        _close(getattr(grads, name), ref[name], np.float64, name)
    for a, b in zip(grads.d_initial_state, ref["d_initial_state"]):
        _close(a, b, np.float64, "d_initial_state")
    _close(grads.d_bias.reshape(-1), ref["d_bias"].reshape(-1), np.float64, "d_bias")


def test_training_units_split_gradient_by_finite_differences():
    rng = np.random.default_rng(12)
    problem = make_problem("lstm", rng, batch=3, timesteps=4, features=3, units=21,
                           masked=True)
    act, ract = ops.ACTIVATIONS["tanh"], ops.ACTIVATIONS["sigmoid"]
    mask = np.ascontiguousarray(problem["mask"], dtype=np.uint8)
    h0, c0 = problem["initial_state"]
    d_outputs = rng.standard_normal((3, 4, 21))

    def forward(rk, training=False):
        return _lstm.lstm_forward(problem["x"], problem["kernel"], rk, problem["bias"], mask,
                                  True, False, act, ract, h0, c0, training, n_threads=3,
                                  split_units=3)

    rk = problem["recurrent_kernel"]
    out, h, c, saved = forward(rk, training=True)
    grads = _lstm.lstm_backward(
        kernel=problem["kernel"], recurrent_kernel_t=rk.T.copy(), mask=mask, has_mask=True,
        go_backwards=False, activation=act, recurrent_activation=ract, d_outputs=d_outputs,
        d_h=np.zeros_like(h), d_c=np.zeros_like(c), n_threads=3, split_units=3, **saved)
    d_rk = grads[4]
    eps = 1e-6
    for index in [(0, 0), (5, 30), (20, 83), (13, 50)]:      # units of every part
        plus, minus = rk.copy(), rk.copy()
        plus[index] += eps
        minus[index] -= eps
        numeric = float(((forward(plus)[0] - forward(minus)[0]) * d_outputs).sum()) / (2 * eps)
        assert abs(numeric - d_rk[index]) <= 1e-6 * max(1.0, abs(numeric)), index



@pytest.mark.parametrize("cell", CELLS)
def test_training_units_split_with_need_dx_off_and_the_last_output_alone(cell):
    # the backward's two short cuts (crnn.ops: need_dx=False, a (batch, units) d_outputs)
    # give the one-thread gradients through the units split too
    act, ract = ops.ACTIVATIONS["tanh"], ops.ACTIVATIONS["sigmoid"]
    rng = np.random.default_rng(14)
    problem = make_problem(cell, rng, batch=5, timesteps=6, features=3, units=40,
                           masked=True)
    x, kernel, rk = problem["x"], problem["kernel"], problem["recurrent_kernel"]
    mask = np.ascontiguousarray(problem["mask"], dtype=np.uint8)
    states = problem["initial_state"]
    d_last = rng.standard_normal((5, 1, 40))
    d_states = [rng.standard_normal((5, 40)) for _ in states]
    results = []
    for kw in (dict(), dict(n_threads=3, split_units=3)):
        if cell == "lstm":
            *_, saved = _lstm.lstm_forward(x, kernel, rk, problem["bias"], mask, True, True,
                                           act, ract, states[0], states[1], True)
            grads = _lstm.lstm_backward(
                kernel=kernel, recurrent_kernel_t=rk.T.copy(), mask=mask, has_mask=True,
                go_backwards=True, activation=act, recurrent_activation=ract,
                d_outputs=d_last, d_h=d_states[0], d_c=d_states[1], need_dx=False,
                **saved, **kw)
        else:
            *_, saved = _gru.gru_forward(x, kernel, rk, problem["bias"].reshape(-1), mask,
                                         True, True, act, ract, True, states[0], True)
            grads = _gru.gru_backward(
                kernel=kernel, recurrent_kernel_t=rk.T.copy(), mask=mask, has_mask=True,
                go_backwards=True, activation=act, recurrent_activation=ract,
                reset_after=True, d_outputs=d_last, d_h=d_states[0], need_dx=False,
                **saved, **kw)
        assert grads[0] is None
        results.append([np.array(g) for g in grads[1:]])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11)
    assert any(np.abs(r).max() > 0 for r in results[1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_gru_one_thread_by_chunks_matches_reference(dtype, training):
    # 64 features or more: one-thread GRU (inference, and training's forward pass) takes
    # the units path with one part (the input projected per chunk of timesteps; here 6-13
    # steps a chunk, so 2-3 chunks): outputs and states as the reference's and as the
    # whole-sequence path's to rounding; in training every gradient as the reference's,
    # and the saved arrays (what the backward reads) as the whole-sequence path's.
    before = crnn.get_num_threads()
    try:
        crnn.set_num_threads(1)
        for batch, units in ((33, 100), (5, 37), (1, 17), (8, 64)):
            for masked, go_backwards in ((False, False), (True, True), (True, False)):
                rng = np.random.default_rng(7 * batch + units + masked + 2 * go_backwards)
                problem = make_problem("gru", rng, batch=batch, timesteps=14, features=70,
                                       units=units, dtype=dtype, masked=masked, scale=0.2)
                opts = options("gru", go_backwards=go_backwards)
                outputs, states, cache = ops.gru(
                    problem["x"], problem["kernel"], problem["recurrent_kernel"],
                    problem["bias"], problem["initial_state"], mask=problem["mask"],
                    training=training, **opts)
                ref_outputs, ref_states, tape = run_reference("gru", problem, opts)
                what = f"batch={batch} units={units} masked={masked} back={go_backwards}"
                _close(outputs, ref_outputs, dtype, what)
                _close(states[0], ref_states[0], dtype, what)
                mask = np.ascontiguousarray(
                    problem["mask"] if masked else np.ones((batch, 14)), dtype=np.uint8)
                act, ract = ops.ACTIVATIONS["tanh"], ops.ACTIVATIONS["sigmoid"]
                runs = [_gru.gru_forward(problem["x"], problem["kernel"],
                                         problem["recurrent_kernel"],
                                         problem["bias"].reshape(-1), mask, masked,
                                         go_backwards, act, ract, True,
                                         problem["initial_state"][0], training,
                                         split_units=split) for split in (-1, 0)]
                np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=TOLERANCE[dtype],
                                           atol=TOLERANCE[dtype], err_msg=what)
                if not training:
                    continue
                check_gradients("gru", cache, tape, outputs, states, rng,
                                lambda a, b, w: _close(a, b, dtype, w), what)
                kept = mask.T.astype(bool)     # (T, B): a masked step's gates are not read
                for name in ("xt", "gates", "h_tm1", "aux"):
                    np.testing.assert_allclose(runs[0][2][name][kept], runs[1][2][name][kept],
                                               rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype],
                                               err_msg=f"{what} {name}")
    finally:
        crnn.set_num_threads(before)
