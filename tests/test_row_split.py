"""crnn's own threads: a batch's rows split across threads (crnn.ops._row_parts and
crnn.threads.run_parallel for training; for inference, crnn's thread pool (_pool.h) inside the
compiled forward entries, their n_threads), against the NumPy reference and the one-thread run, for
every cell, both dtypes, masks, both directions and random non-zero initial states, at batch
sizes that cross the split's 8-row alignment."""

import os
import select
import signal
import threading

import numpy as np
import pytest
from _pytest.monkeypatch import MonkeyPatch

import crnn
from crnn import ops, threads
from crnn._kernels import _gru, _lstm, _pool, _simple_rnn
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


# --------------------------------------------------------------------------- crnn's pool (inference)

# the cells whose compiled entries split a training call's rows themselves
KERNEL_TRAINING_ROWS = ("lstm", "gru")

KERNELS = {"lstm": (_lstm, "lstm_forward"), "gru": (_gru, "gru_forward"),
           "simple_rnn": (_simple_rnn, "simple_rnn_forward")}


@pytest.fixture
def spy_n_threads(monkeypatch):
    """Records the n_threads each compiled forward entry is called with, by cell."""
    seen = {cell: [] for cell in KERNELS}
    for cell, (module, name) in KERNELS.items():
        original = getattr(module, name)

        def spy(*args, _original=original, _cell=cell, **kwargs):
            seen[_cell].append(kwargs.get("n_threads", 1))
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    return seen


@pytest.fixture
def pool_split(monkeypatch):
    """Inference splits for any work."""
    before = crnn.get_num_threads()
    monkeypatch.setattr(ops, "POOL_SPLIT_MIN_WORK", 0)
    yield
    crnn.set_num_threads(before)


def test_the_kernels_report_their_pool():
    assert ops._POOL_THREADED == (_lstm.THREADED and _gru.THREADED and _simple_rnn.THREADED)
    assert all(m.THREADED == _pool.THREADED for m in (_lstm, _gru, _simple_rnn))
    assert _pool.THREADED == (os.name == "posix")


@pytest.mark.skipif(not ops._POOL_THREADED, reason="no POSIX threads")
def test_pool_parts(pool_split, monkeypatch):
    crnn.set_num_threads(3)
    monkeypatch.setattr(ops, "POOL_SPLIT_MIN_WORK", 1000)
    assert ops._pool_parts(64, 1000) == 3
    assert ops._pool_parts(8, 1000) == 2            # SPLIT_MIN_ROWS rows per part at least
    assert ops._pool_parts(7, 1000) == 1
    assert ops._pool_parts(64, 999) == 1            # below the work threshold
    crnn.set_num_threads(1)
    assert ops._pool_parts(64, 1 << 40) == 1
    crnn.set_num_threads(2)
    assert ops._pool_parts(64, 1 << 40) == 2
    monkeypatch.setattr(ops, "_POOL_THREADED", False)
    assert ops._pool_parts(64, 1 << 40) == 1


@pytest.mark.skipif(not ops._POOL_THREADED, reason="no POSIX threads")
@pytest.mark.parametrize("cell", CELLS)
def test_inference_splits_in_the_kernel_and_training_in_python(pool_split, spy_n_threads,
                                                                cell):
    crnn.set_num_threads(2)
    rng = np.random.default_rng(1)
    problem = make_problem(cell, rng, batch=24, timesteps=5, features=4, units=8)
    run_ops(cell, problem, options(cell), training=False)
    assert spy_n_threads[cell] == [2]
    spy_n_threads[cell].clear()
    _, _, cache = run_ops(cell, problem, options(cell), training=True)
    if cell in KERNEL_TRAINING_ROWS:
        # training's rows split in the kernel too, and its backward the same way
        assert spy_n_threads[cell] == [2]
        assert cache.parts is None and cache.backward_args["n_threads"] == 2
    else:
        assert spy_n_threads[cell] == [1]            # training: whole (below SPLIT_MIN_WORK)
        assert cache.parts is None
    spy_n_threads[cell].clear()
    crnn.set_num_threads(1)
    run_ops(cell, problem, options(cell), training=False)
    assert spy_n_threads[cell] == [1]


def test_inference_below_the_threshold_runs_whole(spy_n_threads, monkeypatch):
    before = crnn.get_num_threads()
    try:
        crnn.set_num_threads(2)
        rng = np.random.default_rng(2)
        # 24 * 5 * (4 + 8) * 32 multiply-adds: far below POOL_SPLIT_MIN_WORK
        problem = make_problem("lstm", rng, batch=24, timesteps=5, features=4, units=8)
        run_ops("lstm", problem, options("lstm"), training=False)
        assert spy_n_threads["lstm"] == [1]
    finally:
        crnn.set_num_threads(before)


@pytest.mark.parametrize("gemm", ["own", "blas"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("cell,reset_after", [("lstm", True), ("gru", True), ("gru", False),
                                              ("simple_rnn", True)])
def test_kernel_split_matches_reference(pool_split, monkeypatch, cell, reset_after, dtype,
                                        gemm):
    # Every batch size against every thread count, through crnn.ops with the kernel asked
    # for n_threads parts whatever the rows (the kernel itself allows at most one per row):
    # batch sizes on both sides of the 8-row part edges, masks, both directions, random
    # non-zero initial states; BLAS (held at one thread) or crnn's own whole products.
    monkeypatch.setenv("CRNN_GEMM", gemm)
    for n_threads in (2, 3):
        crnn.set_num_threads(n_threads)
        monkeypatch.setattr(ops, "_pool_parts", lambda batch, work, units=0, n=n_threads: n)
        for batch in (5, 7, 8, 17, 33):
            for masked, go_backwards in ((False, False), (True, True), (True, False)):
                rng = np.random.default_rng(batch + 10 * n_threads + masked)
                problem = make_problem(cell, rng, batch=batch, timesteps=6, features=5,
                                       units=17, dtype=dtype, masked=masked,
                                       reset_after=reset_after)
                opts = options(cell, go_backwards=go_backwards, reset_after=reset_after)
                what = (f"n_threads={n_threads} batch={batch} masked={masked} "
                        f"go_backwards={go_backwards}")
                outputs, states, cache = run_ops(cell, problem, opts, training=False)
                assert cache is None
                assert outputs.dtype == dtype and outputs.flags.c_contiguous
                ref_outputs, ref_states, _ = run_reference(cell, problem, opts)
                _close(outputs, ref_outputs, dtype, what + " outputs")
                for a, b in zip(states, ref_states):
                    assert a.dtype == dtype
                    _close(a, b, dtype, what + " final state")


@pytest.mark.parametrize("cell", CELLS)
def test_kernel_split_equals_one_thread_rowwise(pool_split, monkeypatch, cell):
    # each row's sums run in the same order, however the rows are split
    rng = np.random.default_rng(4)
    problem = make_problem(cell, rng, batch=33, timesteps=9, features=6, units=16,
                           masked=True)
    opts = options(cell, go_backwards=True)
    crnn.set_num_threads(1)
    one, one_states, _ = run_ops(cell, problem, opts, training=False)
    crnn.set_num_threads(3)
    monkeypatch.setattr(ops, "_pool_parts", lambda batch, work, units=0: 3)
    three, three_states, _ = run_ops(cell, problem, opts, training=False)
    np.testing.assert_allclose(three, one, rtol=1e-13, atol=1e-13)
    for a, b in zip(three_states, one_states):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


def _kernel_call(cell, problem, training=False, **kwargs):
    """The compiled forward entry on a make_problem problem (float64, masked)."""
    act, ract = ops.ACTIVATIONS["tanh"], ops.ACTIVATIONS["sigmoid"]
    mask = np.ascontiguousarray(problem["mask"], dtype=np.uint8)
    x, kernel, rk = problem["x"], problem["kernel"], problem["recurrent_kernel"]
    states = problem["initial_state"]
    if cell == "lstm":
        return _lstm.lstm_forward(x, kernel, rk, problem["bias"], mask, True, False, act, ract,
                                  states[0], states[1], training, **kwargs)
    if cell == "gru":
        return _gru.gru_forward(x, kernel, rk, problem["bias"].reshape(-1), mask, True, False,
                                act, ract, True, states[0], training, **kwargs)
    return _simple_rnn.simple_rnn_forward(x, kernel, rk, problem["bias"], mask, True, False,
                                          act, states[0], training, **kwargs)


@pytest.mark.parametrize("cell", CELLS)
def test_kernel_clamps_n_threads_to_the_rows(cell):
    # More threads than rows: at most one part per row, nothing written outside the
    # outputs (sentinel rows around the out= array) and the one-thread results.
    rng = np.random.default_rng(6)
    for batch in (1, 3):
        problem = make_problem(cell, rng, batch=batch, timesteps=4, features=3, units=5,
                               masked=True)
        expected = _kernel_call(cell, problem)
        guarded = np.full((batch + 2, 4, 5), 7.0)
        out = guarded[1:-1]
        assert out.flags.c_contiguous
        result = _kernel_call(cell, problem, out=out, n_threads=batch + 5)
        assert result[0] is out
        np.testing.assert_array_equal(guarded[0], 7.0)
        np.testing.assert_array_equal(guarded[-1], 7.0)
        for a, b in zip(result[:-1], expected[:-1]):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)
        assert result[-1] is None


@pytest.mark.parametrize("cell", CELLS)
def test_kernel_refuses_bad_n_threads(cell):
    rng = np.random.default_rng(7)
    problem = make_problem(cell, rng, batch=4, timesteps=3, features=2, units=3, masked=True)
    with pytest.raises(ValueError, match="n_threads must be at least 1"):
        _kernel_call(cell, problem, n_threads=0)
    if cell not in KERNEL_TRAINING_ROWS:
        with pytest.raises(ValueError, match="inference only"):
            _kernel_call(cell, problem, training=True, n_threads=2)
    with pytest.raises(ValueError, match="out must have shape"):
        _kernel_call(cell, problem, out=np.zeros((4, 3, 4)), n_threads=2)
    # training on one part is today's call
    assert _kernel_call(cell, problem, training=True, n_threads=1)[-1] is not None


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


# --------------------------------------------------------------------------- the pool itself


def test_pool_runs_many_consecutive_jobs_each_part_once():
    # each part adds p + 1 to its own counter once per job: a lost or doubled hand-off shows
    for n_parts, n_jobs in ((2, 20000), (3, 5000), (1, 100), (0, 10)):
        assert _pool.run_test_jobs(n_parts, n_jobs) == [n_jobs * (p + 1)
                                                        for p in range(n_parts)]
    if _pool.THREADED:
        assert 2 <= _pool.workers() < _pool.MAX_PARTS


def test_pool_job_with_more_parts_than_workers_runs_them_all():
    # more parts than the pool's cap: the parts beyond its workers run on the caller
    n = _pool.MAX_PARTS + 36
    assert _pool.run_test_jobs(n, 20) == [20 * (p + 1) for p in range(n)]
    assert _pool.workers() <= _pool.MAX_PARTS - 1
    with pytest.raises(ValueError, match="n_parts"):
        _pool.run_test_jobs(257, 1)


def test_pool_jobs_from_several_threads_at_once():
    # one job at a time: the others run their parts on their own thread (no deadlock)
    results, errors = [None] * 4, []

    def work(i):
        try:
            results[i] = _pool.run_test_jobs(3, 3000)
        except Exception as e:      # noqa: BLE001 - reported below
            errors.append(e)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert not any(w.is_alive() for w in workers), "a pool job hung"
    assert not errors
    assert results == [[3000, 6000, 9000]] * 4


@pytest.mark.parametrize("cell", CELLS)
def test_kernel_split_with_more_parts_than_the_pool_has(cell):
    # more rows and n_threads than the pool's MAX_PARTS: every row still computed
    rng = np.random.default_rng(9)
    batch = _pool.MAX_PARTS + 16
    problem = make_problem(cell, rng, batch=batch, timesteps=3, features=3, units=4,
                           masked=True)
    expected = _kernel_call(cell, problem)
    result = _kernel_call(cell, problem, n_threads=batch + 10)
    for a, b in zip(result[:-1], expected[:-1]):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


def test_split_inference_from_four_python_threads(pool_split, monkeypatch):
    # 4 Python threads predicting at once through the split path (the one-job lock runs the
    # losers' parts serially): each gets its own one-thread results
    crnn.set_num_threads(2)
    monkeypatch.setattr(ops, "_pool_parts", lambda batch, work, units=0: 2)
    problems = []
    for i, cell in enumerate(("lstm", "gru", "lstm", "simple_rnn")):
        rng = np.random.default_rng(20 + i)
        problem = make_problem(cell, rng, batch=24, timesteps=7, features=5, units=12,
                               masked=True)
        opts = options(cell, go_backwards=bool(i % 2))
        ref_outputs, ref_states, _ = run_reference(cell, problem, opts)
        problems.append((cell, problem, opts, ref_outputs, ref_states))
    spans, errors = [], []

    def work(cell, problem, opts, ref_outputs, ref_states):
        try:
            for _ in range(60):
                outputs, states, _ = run_ops(cell, problem, opts, training=False)
                _close(outputs, ref_outputs, np.float64, cell + " outputs")
                for a, b in zip(states, ref_states):
                    _close(a, b, np.float64, cell + " final state")
            spans.append(cell)
        except Exception as e:      # noqa: BLE001 - reported below
            errors.append(e)

    workers = [threading.Thread(target=work, args=args) for args in problems]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert not any(w.is_alive() for w in workers), "split inference hung"
    assert not errors, errors[0]
    assert len(spans) == 4


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
def test_split_inference_works_in_a_forked_child(pool_split, monkeypatch):
    # a forked child inherits the pool's state but not its workers: it starts new ones
    crnn.set_num_threads(2)
    monkeypatch.setattr(ops, "_pool_parts", lambda batch, work, units=0: 2)
    rng = np.random.default_rng(30)
    problem = make_problem("lstm", rng, batch=16, timesteps=5, features=4, units=8,
                           masked=True)
    opts = options("lstm")
    expected, _, _ = run_reference("lstm", problem, opts)
    outputs, _, _ = run_ops("lstm", problem, opts, training=False)   # the parent's workers
    _close(outputs, expected, np.float64, "parent")
    assert _pool.run_test_jobs(2, 10) == [10, 20]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:       # the child: report and leave without running the parent's cleanup
        try:
            ok = _pool.workers() == 0 or not _pool.THREADED
            for _ in range(20):
                out, _, _ = run_ops("lstm", problem, opts, training=False)
                scale = max(1.0, float(np.abs(expected).max()))
                ok = ok and float(np.abs(out - expected).max()) / scale <= TOLERANCE[
                    np.float64]
            ok = ok and _pool.run_test_jobs(3, 1000) == [1000, 2000, 3000]
            os.write(write, b"ok" if ok else b"bad")
        finally:
            os._exit(0)
    os.close(write)
    ready, _, _ = select.select([read], [], [], 30)
    answer = os.read(read, 16) if ready else b""
    os.close(read)
    if not ready:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert ready, "the forked child hung in split inference"
    assert answer == b"ok"


# --------------------------------------------------------------------------- training rows
# LSTM and GRU split a training call's rows inside their compiled entries (on crnn's
# thread pool): the forward's parts write their rows of the whole batch's saved arrays, the
# backward's parts run the time loop on their rows, then the whole-sequence products run
# split across the parts.

@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("cell,reset_after", [("lstm", True), ("gru", True), ("gru", False)])
def test_kernel_training_split_matches_reference(pool_split, cell, reset_after, dtype):
    for n_threads in (2, 3):
        crnn.set_num_threads(n_threads)
        for batch in (5, 8, 17, 33):
            for masked, go_backwards in ((False, False), (True, True)):
                rng = np.random.default_rng(batch + 10 * n_threads + masked)
                problem = make_problem(cell, rng, batch=batch, timesteps=6, features=5,
                                       units=17, dtype=dtype, masked=masked,
                                       reset_after=reset_after)
                opts = options(cell, go_backwards=go_backwards, reset_after=reset_after)
                what = f"n_threads={n_threads} batch={batch} masked={masked}"
                outputs, states, cache = run_ops(cell, problem, opts, training=True)
                assert cache.parts is None
                assert cache.backward_args.get("n_threads", 1) == max(
                    1, min(n_threads, batch // ops.SPLIT_MIN_ROWS))
                d_out = rng.standard_normal(outputs.shape).astype(dtype)
                d_states = [rng.standard_normal(s.shape).astype(dtype) for s in states]
                grads = grad_ops(cell, cache, d_out, d_states)
                ref_outputs, ref_states, tape = run_reference(cell, problem, opts)
                ref = grad_reference(cell, tape, d_out, d_states)
                _close(outputs, ref_outputs, dtype, what + " outputs")
                for a, b in zip(states, ref_states):
                    _close(a, b, dtype, what + " final state")
                for name in ("dx", "d_kernel", "d_recurrent_kernel"):
                    assert getattr(grads, name).dtype == dtype
                    _close(getattr(grads, name), ref[name], dtype, f"{what} {name}")
                for a, b in zip(grads.d_initial_state, ref["d_initial_state"]):
                    _close(a, b, dtype, what + " d_initial_state")
                _close(grads.d_bias.reshape(-1), ref["d_bias"].reshape(-1), dtype,
                       what + " d_bias")


@pytest.mark.parametrize("cell,reset_after", [("lstm", True), ("gru", True), ("gru", False)])
def test_kernel_training_split_equals_one_thread(cell, reset_after):
    # the saved arrays and every gradient, with the last output's gradient alone and
    # without dx too; the rows' sums run in the same order, the whole products' nearly
    rng = np.random.default_rng(31)
    problem = make_problem(cell, rng, batch=21, timesteps=7, features=6, units=19,
                           masked=True, reset_after=reset_after)
    opts = options(cell, go_backwards=True, reset_after=reset_after)
    fn = getattr(ops, cell)
    results = []
    for n_threads in (1, 3):
        before = crnn.get_num_threads()
        try:
            crnn.set_num_threads(n_threads)
            with MonkeyPatch.context() as mp:
                mp.setattr(ops, "POOL_SPLIT_MIN_WORK", 0)
                outputs, states, cache = fn(
                    problem["x"], problem["kernel"], problem["recurrent_kernel"],
                    problem["bias"], problem["initial_state"], mask=problem["mask"],
                    training=True, **opts)
                assert cache.backward_args.get("n_threads", 1) == n_threads
                last = grad_ops(cell, cache, np.ones((21, 19)), None)
                no_dx = getattr(ops, f"{cell}_grad")(cache, np.ones(outputs.shape), None,
                                                     need_dx=False)
        finally:
            crnn.set_num_threads(before)
        assert no_dx.dx is None
        results.append([outputs, *states, last.dx, *last.d_initial_state, last.d_kernel,
                        last.d_recurrent_kernel, last.d_bias, no_dx.d_kernel,
                        no_dx.d_recurrent_kernel])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_kernel_training_split_gradient_by_finite_differences(pool_split):
    crnn.set_num_threads(2)
    rng = np.random.default_rng(33)
    problem = make_problem("gru", rng, batch=9, timesteps=4, features=3, units=5,
                           masked=True)
    opts = options("gru")
    outputs, states, cache = run_ops("gru", problem, opts)
    assert cache.backward_args["n_threads"] == 2
    d_outputs = rng.standard_normal(outputs.shape)
    grads = grad_ops("gru", cache, d_outputs, [np.zeros_like(s) for s in states])

    def loss(recurrent_kernel):
        out, _, _ = ops.gru(problem["x"], problem["kernel"], recurrent_kernel,
                            problem["bias"], problem["initial_state"], mask=problem["mask"])
        return float((out * d_outputs).sum())

    eps = 1e-6
    for index in [(0, 0), (2, 7), (4, 14)]:
        plus, minus = problem["recurrent_kernel"].copy(), problem["recurrent_kernel"].copy()
        plus[index] += eps
        minus[index] -= eps
        numeric = (loss(plus) - loss(minus)) / (2 * eps)
        assert abs(numeric - grads.d_recurrent_kernel[index]) <= 1e-6 * max(1.0, abs(numeric))


@pytest.mark.parametrize("layer", ["LSTM", "GRU"])
def test_fit_with_the_kernel_split_matches_one_thread(pool_split, spy_n_threads, layer):
    # a model's training steps through the kernels' rows split (forward and backward on
    # crnn's pool), return_sequences and a first layer without dx included
    rng = np.random.default_rng(2)
    x = rng.standard_normal((32, 7, 3)).astype("float64")
    y = rng.standard_normal((32, 1)).astype("float64")

    def train(n):
        crnn.set_num_threads(n)
        crnn.utils.set_random_seed(1)
        cls = getattr(crnn.layers, layer)
        model = crnn.Sequential([cls(8, input_shape=(7, 3), return_sequences=True,
                                     dtype="float64"),
                                 cls(6, dtype="float64"),
                                 crnn.layers.Dense(1, dtype="float64")])
        model.compile(optimizer="adam", loss="mse")
        model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        return model.get_weights()

    one = train(1)
    cell = layer.lower()
    spy_n_threads[cell].clear()
    two = train(2)
    assert 2 in spy_n_threads[cell]             # the training steps split in the kernel
    for a, b in zip(one, two):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape,training,expected", [
    ((1, 100, 16, 64), False, False),     # 409,600 multiply-adds of projection: one thread
    ((2, 1000, 256, 64), False, True),    # 131 million: BLAS's threads
    ((1, 100, 16, 64), True, True),       # training: as before (the backward's products)
])
def test_whole_inference_hands_blas_threads_only_a_large_projection(shape, training,
                                                                    expected):
    batch, timesteps, features, units = shape
    before = crnn.get_num_threads()
    seen = []

    def call(rows, threaded, out, n_threads=1):
        seen.append(threaded)
        return np.zeros((batch, timesteps, units)), None

    try:
        crnn.set_num_threads(2)
        x = np.zeros((batch, timesteps, features), np.float32)
        ops._run_forward(call, x, units, batch * timesteps * (features + units) * 4 * units,
                         training)
        assert seen == [expected]
        crnn.set_num_threads(1)
        seen.clear()
        ops._run_forward(call, x, units, batch * timesteps * (features + units) * 4 * units,
                         training)
        assert seen == [False]
    finally:
        crnn.set_num_threads(before)


def test_run_parallel_tasks_see_a_budget_of_one(two_threads):
    crnn.set_num_threads(2)
    assert threads.run_parallel([crnn.get_num_threads, crnn.get_num_threads]) == [1, 1]
    assert crnn.get_num_threads() == 2

    def fail():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        threads.run_parallel([fail, crnn.get_num_threads])
    assert crnn.get_num_threads() == 2      # the calling thread's budget is back


def _bidirectional_fit(budget, dropout, seen):
    """Two epochs of a Bidirectional(LSTM) model at ``budget`` threads: its weights, its
    predictions, and (into ``seen``) the threads each direction's forward ran on."""
    from crnn import layers

    crnn.set_num_threads(budget)
    crnn.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((32, 12, 5)).astype(np.float32)
    y = rng.standard_normal((32, 1)).astype(np.float32)
    bidi = layers.Bidirectional(layers.LSTM(16, dropout=dropout))
    model = crnn.Sequential([layers.Input(shape=(12, 5)), bidi, layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    for inner in (bidi.forward_layer, bidi.backward_layer):
        def spy(*args, _forward=inner.forward, _name=inner.name, **kwargs):
            seen.append((_name, threading.current_thread().name))
            return _forward(*args, **kwargs)
        inner.forward = spy
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    return model.get_weights(), model.predict(x, verbose=0)


@pytest.mark.parametrize("dropout", [0.0, 0.25])
def test_bidirectional_directions_on_two_threads_equal_one_thread(two_threads, dropout):
    seen_one, seen_two = [], []
    weights_one, pred_one = _bidirectional_fit(1, dropout, seen_one)
    weights_two, pred_two = _bidirectional_fit(2, dropout, seen_two)
    if dropout:
        # the masks drawn in the same order: the same training, up to the summation order
        # of the rows split (two threads inside each direction's kernels)
        for a, b in zip(weights_one, weights_two):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(pred_one, pred_two, rtol=1e-4, atol=1e-6)
    else:
        # each direction on one thread: the one-thread sums exactly
        for a, b in zip(weights_one, weights_two):
            assert np.array_equal(a, b)
        assert np.array_equal(pred_one, pred_two)
    assert len({name for _, name in seen_one}) == 1
    threads_used = {name for _, name in seen_two}
    if dropout:
        # training draws dropout masks in order: one direction after the other, on the
        # calling thread; predict (no draws) runs the directions on two threads
        training_names = {name for _, name in seen_two[:2 * 8]}
        assert len(training_names) == 1
    assert len(threads_used) == 2
