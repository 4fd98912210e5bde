"""MPI data parallelism (crnn.distributed): ``mpiexec -n 2`` against one process.

One ``mpiexec -n 2`` run of tests/distributed_mpi_worker.py (module fixture) trains on
two ranks; each test compares what the ranks saw with single-process crnn training on the
concatenated per-step batches, which uses no MPI at all. The run has a time limit, so a
hang fails the tests. Needs Open MPI (or MPICH) and mpi4py: when they are missing the tests
FAIL, saying what to install.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import crnn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import distributed_mpi_worker as worker  # noqa: E402

RANKS = 2
TIMEOUT = 120     # seconds; a hang fails the tests instead of stalling the suite


def _require_mpi():
    missing = []
    if shutil.which("mpiexec") is None:
        missing.append("an MPI launcher (mpiexec): apt-get install openmpi-bin libopenmpi-dev")
    if importlib.util.find_spec("mpi4py") is None:
        missing.append("mpi4py: pip install 'crnn[mpi]' (or pip install mpi4py)")
    if missing:
        pytest.fail("the MPI tests need " + " and ".join(missing) + "; .ci/run installs both",
                    pytrace=False)


def _env():
    """The child processes import the same crnn as this test run, and may run as root."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(crnn.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    env.setdefault("OMPI_MCA_rmaps_base_oversubscribe", "1")
    env["OPENBLAS_NUM_THREADS"] = "1"
    return env


def _run(command, cwd):
    """Run ``command`` with a time limit; its stdout, or a test failure saying why not."""
    try:
        done = subprocess.run(command, env=_env(), cwd=cwd, capture_output=True, text=True,
                              timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"{' '.join(command)} did not finish in {TIMEOUT} s (a hang?): "
                    f"{error.stdout}\n{error.stderr}", pytrace=False)
    if done.returncode:
        pytest.fail(f"{' '.join(command)} exited with {done.returncode}:\n{done.stdout}\n"
                    f"{done.stderr}", pytrace=False)
    return done.stdout


def _results(out):
    results = []
    for r in range(len([f for f in os.listdir(out) if f.endswith(".json")])):
        with open(os.path.join(out, f"rank{r}.json")) as f:
            info = json.load(f)
        with np.load(os.path.join(out, f"rank{r}.npz")) as arrays:
            info.update({k: arrays[k] for k in arrays.files})
        results.append(info)
    return results


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    _require_mpi()
    out = str(tmp_path_factory.mktemp("mpi"))
    script = os.path.join(HERE, "distributed_mpi_worker.py")
    _run(["mpiexec", "-n", str(RANKS), "--oversubscribe", sys.executable, script, out], out)
    results = _results(out)
    assert [r["rank"] for r in results] == list(range(RANKS))
    assert all(r["size"] == RANKS for r in results)
    return out, results


def _set_flat(model, flat):
    weights, offset = [], 0
    for w in model.get_weights():
        weights.append(flat[offset:offset + w.size].reshape(w.shape))
        offset += w.size
    assert offset == flat.size
    model.set_weights(weights)


def _flat(model):
    return np.concatenate([w.ravel() for w in model.get_weights()])


def _assert_close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-8, atol=1e-12)


def test_stateless_training_equals_one_process_with_the_global_batch(ranks):
    _, (r0, r1) = ranks
    # Rank 1 started from its own weights; BroadcastWeights gave it rank 0's.
    assert not np.allclose(r0["stateless_initial"], r1["stateless_initial"])
    x, y = worker.global_data(RANKS, seed=1)
    vx, vy = worker.global_data(RANKS, seed=2, steps=2)
    model = worker.build(seed=0)
    _set_flat(model, r0["stateless_initial"])
    model.compile(optimizer=crnn.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    history = model.fit(x, y, batch_size=RANKS * worker.B, epochs=4, shuffle=False, verbose=0,
                        validation_data=(vx, vy),
                        callbacks=[crnn.callbacks.EarlyStopping(monitor="val_loss",
                                                                patience=1)])
    np.testing.assert_array_equal(r0["stateless_final"], r1["stateless_final"])
    _assert_close(r0["stateless_final"], _flat(model))
    # Logs averaged over the ranks = the global batch's; so EarlyStopping stopped at the
    # same epoch on both ranks and in the single process.
    assert len(history.history["loss"]) < 4
    for key, values in history.history.items():
        assert r0["stateless_history"][key] == r1["stateless_history"][key]
        _assert_close(r0["stateless_history"][key], values)


def test_stateful_training_equals_one_process_with_all_slots(ranks):
    _, (r0, r1) = ranks
    x, y = worker.global_data(RANKS, seed=3)
    model = worker.build(seed=20, stateful=True, batch=RANKS * worker.B)
    np.testing.assert_array_equal(_flat(model), r0["stateful_initial"])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    history = model.fit(x, y, epochs=2, verbose=0)
    np.testing.assert_array_equal(r0["stateful_final"], r1["stateful_final"])
    _assert_close(r0["stateful_final"], _flat(model))
    for key, values in history.history.items():
        _assert_close(r0["stateful_history"][key], values)
    # Rank r's states are the global slots r*B .. (r+1)*B - 1.
    states = [s for layer in model.layers for s in layer._state_arrays()]
    for r, result in enumerate((r0, r1)):
        mine = np.concatenate([s[r * worker.B:(r + 1) * worker.B].ravel() for s in states])
        _assert_close(result["stateful_states"], mine)


def test_progress_bar_and_checkpoint_on_rank_0_only(ranks):
    out, _ = ranks
    with open(os.path.join(out, "stdout0.txt")) as f:
        assert "Epoch 1/4" in f.read()
    with open(os.path.join(out, "stdout1.txt")) as f:
        assert f.read() == ""
    assert os.path.isfile(os.path.join(out, "rank0", "checkpoint.crnn"))
    assert not os.path.exists(os.path.join(out, "rank1"))
    assert crnn.load_model(os.path.join(out, "rank0", "checkpoint.crnn")).count_params() > 0


def test_a_stop_on_one_rank_stops_every_rank_at_the_same_step(ranks):
    _, results = ranks
    assert [r["stop_iterations"] for r in results] == [2] * RANKS


@pytest.mark.parametrize("key, words", [
    ("error_steps", ["steps", "rank 0: 4", "rank 1: 5", "same number of batches"]),
    ("error_shape", ["x_shape", "rank 0: [5, 2]", "rank 1: [6, 2]"]),
    ("error_stateful", ["rank 1:", "13 samples", "not divisible by the stateful batch size 3"]),
    ("error_broadcast", ["same model on every rank", "rank 1: 2 arrays [(3, 3), (3,)]"]),
])
def test_mismatches_raise_on_every_rank(ranks, key, words):
    _, results = ranks
    for result in results:
        assert result[key] is not None, f"rank {result['rank']} did not raise for {key}"
        for word in words:
            assert word in result[key]
    assert results[0][key] == results[1][key]


def test_one_process_without_mpiexec_is_a_world_of_size_1(tmp_path):
    """Also: the wrapped optimizer saves and loads as its own class, without MPI."""
    _require_mpi()
    script = ("import json, sys, numpy as np, crnn, crnn.distributed as cd\n"
              "sys.path.insert(0, sys.argv[1])\n"
              "import distributed_mpi_worker as w\n"
              "x, y = w.global_data(1, seed=7)\n"
              "m = w.build(seed=8)\n"
              "opt = cd.DistributedOptimizer(crnn.optimizers.Adam(0.01))\n"
              "m.compile(optimizer=opt, loss='mse')\n"
              "h = m.fit(x, y, batch_size=w.B, epochs=2, shuffle=False, verbose=0,\n"
              "          callbacks=[cd.BroadcastWeights()])\n"
              "m.save('model.crnn')\n"
              "try:\n"
              "    cd.DistributedOptimizer(opt)\n"
              "except TypeError as e:\n"
              "    twice = str(e)\n"
              "print(json.dumps([cd.rank(), cd.size(), h.history['loss'], type(opt).__name__,\n"
              "                  isinstance(opt, crnn.optimizers.Adam), twice]))\n")
    stdout = _run([sys.executable, "-c", script, HERE], tmp_path)
    rank, size, losses, name, is_adam, twice = json.loads(stdout.strip().splitlines()[-1])
    assert (rank, size, name, is_adam) == (0, 1, "Adam", True)
    assert "already a DistributedOptimizer" in twice
    x, y = worker.global_data(1, seed=7)
    # the same sums as the child's: its thread budget (one thread: _env), whatever this
    # process's environment gives (OPENBLAS_NUM_THREADS=2 split the products differently)
    budget = crnn.get_num_threads()
    crnn.set_num_threads(1)
    try:
        model = worker.build(seed=8)
        model.compile(optimizer=crnn.optimizers.Adam(0.01), loss="mse")
        history = model.fit(x, y, batch_size=worker.B, epochs=2, shuffle=False, verbose=0)
    finally:
        crnn.set_num_threads(budget)
    loaded = crnn.load_model(tmp_path / "model.crnn")
    np.testing.assert_array_equal(_flat(loaded), _flat(model))
    assert losses == history.history["loss"]
    assert type(loaded.optimizer) is crnn.optimizers.Adam
    assert loaded.optimizer.iterations == 2 * len(x) // worker.B
