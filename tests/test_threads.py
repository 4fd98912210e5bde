"""crnn's thread budget (crnn.threads): both OpenBLAS pools, the hold while crnn runs,
argument checks and the fall-backs when a library is missing. No timing here."""

import numpy as np
import pytest

import crnn
from crnn import threads


@pytest.fixture
def pools():
    """The pools found in this process, with the budget and pool sizes put back after."""
    found = threads._pools()
    if not found:
        pytest.skip("no OpenBLAS found in this process")   # e.g. a NumPy built on MKL
    budget = threads._STATE["budget"]
    sizes = [pool.get() for pool in found]
    yield found
    threads._forget()
    for pool, size in zip(threads._pools(), sizes):
        pool.set(size)
    threads._STATE["budget"] = budget


@pytest.fixture
def two_pools(pools):
    """NumPy's and SciPy's pools as two libraries (as their wheels ship them)."""
    if [pool.package for pool in pools] != ["scipy", "numpy"]:
        pytest.skip("NumPy and SciPy share one OpenBLAS here: no separate NumPy pool to hold")
    return pools


def _sizes():
    return {pool["package"]: pool["num_threads"] for pool in threads.blas_pools()}


def test_each_wheels_openblas_is_found(pools):
    # NumPy's and SciPy's wheels each bundle an OpenBLAS: two distinct libraries, SciPy's
    # first (a NumPy and SciPy built on one shared system OpenBLAS have one pool)
    bundled = [package for package in ("scipy", "numpy") if threads._bundled_files(package)]
    if bundled:
        assert [pool.package for pool in pools] == bundled
        assert len({pool.path for pool in pools}) == len(pools)
    assert pools[0].package == "scipy"


@pytest.mark.parametrize("n", [1, 2, 3, 1])
def test_set_num_threads_round_trips_through_both_pools(pools, n):
    crnn.set_num_threads(n)
    assert crnn.get_num_threads() == n
    assert all(pool.get() == n for pool in pools)
    assert set(_sizes().values()) == {n}


def test_bad_n_raises_and_changes_nothing(pools):
    crnn.set_num_threads(2)
    for bad in (0, -1, 1.5, True, "2", None):
        with pytest.raises(ValueError, match="n must be a positive int"):
            crnn.set_num_threads(bad)
    assert crnn.get_num_threads() == 2
    assert all(pool.get() == 2 for pool in pools)


def test_held_runs_the_kernels_pool_at_the_budget_and_numpys_at_one(two_pools):
    crnn.set_num_threads(3)
    with threads.HELD:
        assert _sizes() == {"scipy": 3, "numpy": 1}
        with threads.HELD:                       # re-entrant: the inner exit restores nothing
            pass
        assert _sizes() == {"scipy": 3, "numpy": 1}
    assert _sizes() == {"scipy": 3, "numpy": 3}


def test_held_puts_back_pools_sized_by_someone_else(two_pools):
    crnn.set_num_threads(1)
    two_pools[0].set(2)      # e.g. threadpoolctl or a user's own call
    two_pools[1].set(3)
    with threads.HELD:
        assert _sizes() == {"scipy": 1, "numpy": 1}
    assert _sizes() == {"scipy": 2, "numpy": 3}


def test_held_is_put_back_when_the_call_raises(two_pools):
    crnn.set_num_threads(2)
    with pytest.raises(KeyError):
        with threads.HELD:
            raise KeyError("boom")
    assert _sizes() == {"scipy": 2, "numpy": 2}
    assert threads._STATE["depth"] == 0


def test_set_num_threads_inside_a_crnn_call_applies_after_it(two_pools):
    crnn.set_num_threads(1)
    with threads.HELD:
        crnn.set_num_threads(2)
        assert _sizes() == {"scipy": 2, "numpy": 1}
    assert _sizes() == {"scipy": 2, "numpy": 2}


def test_model_calls_run_inside_the_budget(two_pools):
    seen = []

    class Spy(crnn.layers.Dense):
        def forward(self, x, training=False, mask=None):
            seen.append(_sizes())
            return super().forward(x, training=training, mask=mask)

    crnn.set_num_threads(2)
    model = crnn.Sequential([crnn.Input(shape=(3,)), Spy(2)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 2), "float32")
    model.fit(x, y, epochs=1, verbose=0)
    model.predict(x, verbose=0)
    model.evaluate(x, y, verbose=0)
    model.train_on_batch(x, y)
    model.test_on_batch(x, y)
    model.predict_on_batch(x)
    model(x)
    assert len(seen) >= 7
    assert all(sizes == {"scipy": 2, "numpy": 1} for sizes in seen)
    assert _sizes() == {"scipy": 2, "numpy": 2}


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
def test_ops_calls_run_inside_the_budget(two_pools, monkeypatch, cell):
    """crnn.ops's compiled calls (forward and backward) run with the pools at the budget,
    whoever sized them (their BLAS products would otherwise run on the pool's threads);
    the sizes are put back after."""
    from crnn import ops
    from crnn._kernels import _gru, _lstm, _simple_rnn

    module = {"lstm": _lstm, "gru": _gru, "simple_rnn": _simple_rnn}[cell]
    seen = []
    for name in (f"{cell}_forward", f"{cell}_backward"):
        real = getattr(module, name)

        def spy(*args, _real=real, **kwargs):
            seen.append(_sizes())
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    crnn.set_num_threads(1)
    two_pools[0].set(2)      # e.g. threadpoolctl, or OpenBLAS's default of one per core
    two_pools[1].set(3)
    rng = np.random.default_rng(0)
    g = {"lstm": 4, "gru": 3, "simple_rnn": 1}[cell]
    forward, grad = getattr(ops, cell), getattr(ops, f"{cell}_grad")
    # (batch, timesteps, features, units): at least HOLD_MIN_WORK multiply-adds, and below
    for shape, holds in (((4, 100, 100, 100), True), ((2, 3, 4, 5), False)):
        batch, timesteps, features, units = shape
        assert (batch * timesteps * (features + units) * g * units
                >= threads.HOLD_MIN_WORK) == holds
        x = rng.standard_normal(shape[:3]).astype("float32")
        kernel = rng.standard_normal((features, g * units)).astype("float32") * 0.1
        recurrent = rng.standard_normal((units, g * units)).astype("float32") * 0.1
        seen.clear()
        *_, cache = forward(x, kernel, recurrent, training=True)
        grad(cache, np.ones((batch, timesteps, units), "float32"))
        held = {"scipy": 1, "numpy": 1} if holds else {"scipy": 2, "numpy": 3}
        assert seen == [held] * 2, shape
        assert _sizes() == {"scipy": 2, "numpy": 3}
    # pools already at their sizes: nothing to hold (two reads of the sizes)
    crnn.set_num_threads(2)
    two_pools[1].set(1)
    assert threads.held() is not threads.HELD
    two_pools[1].set(2)
    assert threads.held() is threads.HELD
    with threads.HELD:              # inside a held call: nothing more to do
        assert threads.held() is not threads.HELD


def test_held_inside_a_run_parallel_task_holds_at_one_thread(two_pools):
    crnn.set_num_threads(2)
    two_pools[1].set(1)

    def task():
        with threads.held():
            return _sizes()

    # run_parallel holds every pool at one thread while its tasks run; a task's budget is 1
    assert threads.run_parallel([task, task]) == [{"scipy": 1, "numpy": 1}] * 2
    assert _sizes() == {"scipy": 2, "numpy": 1}


def test_a_missing_numpy_openblas_leaves_scipys(two_pools, monkeypatch):
    real = threads._bundled_files
    monkeypatch.setattr(threads, "_bundled_files",
                        lambda package: [] if package == "numpy" else real(package))
    monkeypatch.setattr(threads, "_loaded_files", lambda: [])
    threads._forget()
    assert [pool["package"] for pool in threads.blas_pools()] == ["scipy"]
    crnn.set_num_threads(2)
    assert crnn.get_num_threads() == 2
    with threads.HELD:
        assert threads.blas_pools()[0]["num_threads"] == 2


def test_a_library_without_thread_functions_is_skipped(pools, monkeypatch, tmp_path):
    not_openblas = tmp_path / "libopenblas_fake.so"
    not_openblas.write_bytes(b"not a library")
    assert threads._thread_functions(str(not_openblas)) is None
    monkeypatch.setattr(threads, "_bundled_files", lambda package: [str(not_openblas)])
    monkeypatch.setattr(threads, "_loaded_files", lambda: [])
    threads._forget()
    assert threads.blas_pools() == []


def test_no_openblas_at_all_raises_but_models_still_run(pools, monkeypatch):
    monkeypatch.setattr(threads, "_bundled_files", lambda package: [])
    monkeypatch.setattr(threads, "_loaded_files", lambda: [])
    threads._forget()
    before = crnn.get_num_threads()
    with pytest.raises(RuntimeError, match="threadpoolctl"):
        crnn.set_num_threads(before + 1)
    assert crnn.get_num_threads() == before
    model = crnn.Sequential([crnn.Input(shape=(3,)), crnn.layers.Dense(2)])
    assert model.predict_on_batch(np.ones((1, 3), "float32")).shape == (1, 2)


def test_a_shared_system_openblas_counts_once(pools, monkeypatch):
    path = pools[0].path
    monkeypatch.setattr(threads, "_bundled_files", lambda package: [])
    monkeypatch.setattr(threads, "_loaded_files", lambda: [path])
    threads._forget()
    assert [pool["path"] for pool in threads.blas_pools()] == [path]


@pytest.mark.parametrize("env, expected", [({}, 1), ({"OPENBLAS_NUM_THREADS": "3"}, 3),
                                           ({"OMP_NUM_THREADS": "2"}, 2),
                                           ({"OPENBLAS_NUM_THREADS": "x"}, 1)])
def test_default_budget(monkeypatch, env, expected):
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert threads._default_budget() == expected
