"""crnn's own threads: a batch's rows split across threads (crnn.ops._row_parts and
crnn.threads.run_parallel), against the NumPy reference and the one-thread run, for every
cell, both dtypes, masks, both directions and random non-zero initial states, at batch sizes
that cross the split's 8-row alignment."""

import threading

import numpy as np
import pytest

import crnn
from crnn import ops, threads
from ops_cases import (
    TOLERANCE,
    grad_ops,
    grad_reference,
    make_problem,
    options,
    run_ops,
    run_reference,
)

CELLS = ["lstm", "gru", "simple_rnn"]


@pytest.fixture
def two_threads(monkeypatch):
    """Budget of 2 (or 3) threads, and a split for any work."""
    before = crnn.get_num_threads()
    monkeypatch.setattr(ops, "SPLIT_MIN_WORK", 0)
    yield
    crnn.set_num_threads(before)


def _close(actual, expected, dtype, what):
    scale = max(1.0, float(np.abs(expected).max()))
    err = float(np.abs(np.asarray(actual) - expected).max()) / scale
    assert err <= TOLERANCE[dtype], f"{what}: relative error {err:.3g}"


@pytest.mark.parametrize("batch,n,expected", [
    (8, 2, [(0, 4), (4, 8)]),
    (33, 2, [(0, 16), (16, 33)]),
    (64, 2, [(0, 32), (32, 64)]),
    (9, 2, [(0, 4), (4, 9)]),        # 8-alignment would empty a part: plain halves
    (20, 3, [(0, 8), (8, 16), (16, 20)]),
    (5, 2, None),                    # fewer than SPLIT_MIN_ROWS rows per part
    (1, 4, None),
])
def test_row_parts(two_threads, batch, n, expected):
    crnn.set_num_threads(n)
    parts = ops._row_parts(batch, 1 << 30)
    assert (None if parts is None else [(p.start, p.stop) for p in parts]) == expected


def test_no_split_below_the_work_threshold():
    before = crnn.get_num_threads()
    try:
        crnn.set_num_threads(2)
        assert ops._row_parts(64, ops.SPLIT_MIN_WORK - 1) is None
        assert ops._row_parts(64, ops.SPLIT_MIN_WORK) is not None
        crnn.set_num_threads(1)
        assert ops._row_parts(64, 1 << 40) is None
    finally:
        crnn.set_num_threads(before)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("batch,n_threads", [(8, 2), (17, 2), (33, 3)])
@pytest.mark.parametrize("masked,go_backwards", [(False, False), (True, True)])
def test_split_matches_reference(two_threads, cell, dtype, batch, n_threads, masked,
                                 go_backwards):
    crnn.set_num_threads(n_threads)
    rng = np.random.default_rng(batch + 7 * n_threads)
    problem = make_problem(cell, rng, batch=batch, timesteps=6, features=5, units=17,
                           dtype=dtype, masked=masked)
    opts = options(cell, go_backwards=go_backwards)
    outputs, states, cache = run_ops(cell, problem, opts)
    assert cache.parts is not None and len(cache.parts) == n_threads
    ref_outputs, ref_states, tape = run_reference(cell, problem, opts)
    assert outputs.dtype == dtype and outputs.flags.c_contiguous
    _close(outputs, ref_outputs, dtype, "outputs")
    for a, b in zip(states, ref_states):
        _close(a, b, dtype, "final state")
    d_outputs = rng.standard_normal(outputs.shape).astype(dtype)
    d_states = [rng.standard_normal(s.shape).astype(dtype) for s in states]
    grads = grad_ops(cell, cache, d_outputs, d_states)
    expected = grad_reference(cell, tape, d_outputs, d_states)
    for name in ("dx", "d_kernel", "d_recurrent_kernel", "d_bias"):
        assert getattr(grads, name).dtype == dtype
        _close(getattr(grads, name), expected[name], dtype, name)
    for a, b in zip(grads.d_initial_state, expected["d_initial_state"]):
        _close(a, b, dtype, "d_initial_state")


@pytest.mark.parametrize("cell", CELLS)
def test_split_equals_one_thread_rowwise(two_threads, cell):
    # the rows' outputs do not depend on the split (each row's sums run in the same order)
    rng = np.random.default_rng(3)
    problem = make_problem(cell, rng, batch=24, timesteps=9, features=6, units=16,
                           dtype=np.float64)
    opts = options(cell)
    crnn.set_num_threads(1)
    one, one_states, _ = run_ops(cell, problem, opts, training=False)
    crnn.set_num_threads(2)
    two, two_states, _ = run_ops(cell, problem, opts, training=False)
    np.testing.assert_allclose(two, one, rtol=1e-13, atol=1e-13)
    for a, b in zip(two_states, one_states):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


def test_float64_gradient_of_split_by_finite_differences(two_threads):
    crnn.set_num_threads(2)
    rng = np.random.default_rng(5)
    problem = make_problem("lstm", rng, batch=9, timesteps=4, features=3, units=5)
    opts = options("lstm")
    outputs, states, cache = run_ops("lstm", problem, opts)
    assert cache.parts is not None
    d_outputs = rng.standard_normal(outputs.shape)
    grads = grad_ops("lstm", cache, d_outputs, [np.zeros_like(s) for s in states])

    def loss(kernel):
        out, _, _ = ops.lstm(problem["x"], kernel, problem["recurrent_kernel"],
                             problem["bias"], problem["initial_state"])
        return float((out * d_outputs).sum())

    eps = 1e-6
    for index in [(0, 0), (1, 7), (2, 19)]:
        plus, minus = problem["kernel"].copy(), problem["kernel"].copy()
        plus[index] += eps
        minus[index] -= eps
        numeric = (loss(plus) - loss(minus)) / (2 * eps)
        assert abs(numeric - grads.d_kernel[index]) <= 1e-6 * max(1.0, abs(numeric))


def test_run_parallel_runs_on_crnn_threads_and_holds_blas_at_one(two_threads):
    crnn.set_num_threads(2)
    seen = []

    def task():
        seen.append((threading.current_thread().name,
                     [pool["num_threads"] for pool in threads.blas_pools()]))
        return len(seen)

    results = threads.run_parallel([task, task, task])
    assert sorted(results) == [1, 2, 3]
    assert any(name.startswith("crnn") for name, _ in seen)
    assert all(size == 1 for _, sizes in seen for size in sizes)
    # and the pools are back at the budget afterwards
    assert all(pool["num_threads"] == 2 for pool in threads.blas_pools())


def test_run_parallel_raises_after_every_task_finished(two_threads):
    crnn.set_num_threads(2)
    done = []

    def ok():
        done.append(1)
        return 1

    def fail():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        threads.run_parallel([fail, ok, ok])
    assert len(done) == 2
    assert all(pool["num_threads"] == 2 for pool in threads.blas_pools())


def test_run_parallel_with_one_thread_runs_in_order():
    before = crnn.get_num_threads()
    try:
        crnn.set_num_threads(1)
        order = []
        assert threads.run_parallel([lambda: order.append("a") or 1,
                                     lambda: order.append("b") or 2]) == [1, 2]
        assert order == ["a", "b"]
    finally:
        crnn.set_num_threads(before)


def test_set_num_threads_inside_a_parallel_section_takes_effect_after(two_threads):
    crnn.set_num_threads(2)
    threads.run_parallel([lambda: crnn.set_num_threads(3), lambda: None])
    assert crnn.get_num_threads() == 3
    assert all(pool["num_threads"] == 3 for pool in threads.blas_pools())


def test_sequential_fit_with_two_threads_matches_one(two_threads):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 7, 3)).astype("float64")
    y = rng.standard_normal((32, 1)).astype("float64")

    def train(n):
        crnn.set_num_threads(n)
        crnn.utils.set_random_seed(1)
        model = crnn.Sequential([crnn.layers.LSTM(8, input_shape=(7, 3), dtype="float64"),
                                 crnn.layers.Dense(1, dtype="float64")])
        model.compile(optimizer="adam", loss="mse")
        model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        return model.get_weights()

    for a, b in zip(train(1), train(2)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork (POSIX)")
def test_run_parallel_works_in_a_forked_child(two_threads):
    # a forked child inherits the executor object but not its threads
    import os

    crnn.set_num_threads(2)
    assert threads.run_parallel([lambda: 1, lambda: 2]) == [1, 2]   # the parent's pool exists
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:       # the child: report and leave without running the parent's cleanup
        try:
            ok = threads.run_parallel([lambda: 3, lambda: 4]) == [3, 4]
            os.write(write, b"ok" if ok else b"bad")
        finally:
            os._exit(0)
    os.close(write)
    import select
    import signal

    ready, _, _ = select.select([read], [], [], 30)
    answer = os.read(read, 16) if ready else b""
    os.close(read)
    if not ready:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert ready, "the forked child hung in run_parallel"
    assert answer == b"ok"


def test_run_parallel_without_any_openblas(monkeypatch):
    # no pool to hold (MKL or Accelerate BLAS): crnn's threads still run
    monkeypatch.setattr(threads, "_FOUND", [[]])
    monkeypatch.setitem(threads._STATE, "budget", 2)
    assert threads.run_parallel([lambda: "a", lambda: "b"]) == ["a", "b"]
    assert threads._SERIAL["depth"] == 0
