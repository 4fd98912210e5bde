"""Dask (crnn.distributed): predict_dask and fit_many on a two-process LocalCluster, and
the pickle-free model bytes they send to the workers.

Needs dask[distributed]: when it is missing the tests FAIL, saying what to install.
"""

import importlib.util

import numpy as np
import pytest

import crnn
import crnn.distributed as cd
from crnn import layers as L

TIMEOUT = 60    # seconds for any one cluster computation: a hang fails the test


def _require_dask():
    if importlib.util.find_spec("dask") is None or \
            importlib.util.find_spec("distributed") is None:
        pytest.fail("the Dask tests need dask[distributed]: pip install 'crnn[dask]' (or "
                    "pip install 'dask[distributed]'); .ci/run installs it", pytrace=False)


@pytest.fixture(scope="module")
def client():
    _require_dask()
    from dask.distributed import Client, LocalCluster
    with LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.wait_for_workers(2, timeout=TIMEOUT)
        yield client


def _dask_array(x, chunks):
    _require_dask()
    import dask.array as da
    return da.from_array(x, chunks=chunks)


def build():
    """A fresh compiled model; its name records the BLAS threads it was built with."""
    crnn.utils.set_random_seed(0)
    model = crnn.Sequential([L.GRU(4, input_shape=(6, 2), dtype="float64"),
                             L.Dense(1, dtype="float64")],
                            name=f"threads_{crnn.get_num_threads()}")
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    return model


def _data(n=40, features=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 6, features)), rng.standard_normal((n, 1))


def _assert_same_weights(a, b):
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-12, atol=0)


# ----------------------------------------------------------------------- model bytes

def test_to_bytes_round_trip_keeps_weights_optimizer_and_states():
    crnn.utils.set_random_seed(1)
    model = crnn.Sequential([L.LSTM(3, stateful=True, batch_input_shape=(2, 4, 2)),
                             L.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    x, y = np.ones((4, 4, 2), "float32"), np.zeros((4, 1), "float32")
    model.fit(x, y, epochs=1, verbose=0)
    data = model.to_bytes()
    assert isinstance(data, bytes) and b"pickle" not in data
    copy = crnn.models.from_bytes(data)
    # Same weights, optimizer state and RNN states: the next step is identical.
    assert copy.optimizer.iterations == model.optimizer.iterations == 2
    np.testing.assert_array_equal(copy.train_on_batch(x[:2], y[:2]),
                                  model.train_on_batch(x[:2], y[:2]))
    np.testing.assert_array_equal(copy.predict(x, verbose=0), model.predict(x, verbose=0))
    # The bytes are a model file.
    assert crnn.saving.from_bytes(crnn.saving.to_bytes(copy)).get_config() == \
        copy.get_config()


def test_from_bytes_rejects_bad_data_with_a_clear_error():
    with pytest.raises(TypeError, match="data must be bytes"):
        crnn.models.from_bytes("model.crnn")
    with pytest.raises(ValueError, match="the data passed to from_bytes is not a crnn") as info:
        crnn.models.from_bytes(b"not a model")
    assert "crnn-bytes-" not in str(info.value)      # no temporary path in the message
    truncated = build().to_bytes()[:200]
    with pytest.raises(ValueError, match="from_bytes"):
        crnn.models.from_bytes(truncated)


# ----------------------------------------------------------------------- predict_dask

@pytest.mark.parametrize("make, shape, chunks", [
    (lambda: build(), (50, 6, 2), (16, 3, 2)),          # rechunked along time, 3-D -> 2-D
    (lambda: crnn.Sequential([L.LSTM(3, return_sequences=True, input_shape=(None, 2),
                                     dtype="float64")]), (23, 5, 2), (7, 5, 2)),
    (lambda: crnn.Sequential([L.Embedding(10, 3, input_shape=(4,)), L.SimpleRNN(2)]),
     (30, 4), (8, 4)),                                 # integer inputs, 2-D -> 2-D
])
def test_predict_dask_equals_predict(client, make, shape, chunks):
    crnn.utils.set_random_seed(2)
    model = make()
    rng = np.random.default_rng(3)
    x = rng.integers(0, 10, shape) if len(shape) == 2 else rng.standard_normal(shape)
    expected = model.predict(x, verbose=0)
    lazy = cd.predict_dask(model, _dask_array(x, chunks))
    assert lazy.shape == expected.shape and lazy.dtype == expected.dtype
    assert lazy.chunks[0] == _dask_array(x, chunks).chunks[0]
    on_cluster = client.compute(lazy).result(timeout=TIMEOUT)
    np.testing.assert_allclose(on_cluster, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(lazy.compute(scheduler="threads"), expected, rtol=1e-12,
                               atol=1e-15)


def test_predict_dask_refuses_stateful_models_and_numpy_inputs():
    model = crnn.Sequential([L.LSTM(3, stateful=True, batch_input_shape=(2, 4, 1))])
    with pytest.raises(ValueError, match="stateful"):
        cd.predict_dask(model, _dask_array(np.ones((4, 4, 1)), (2, 4, 1)))
    with pytest.raises(TypeError, match="dask.array.Array"):
        cd.predict_dask(build(), np.ones((4, 6, 2)))
    with pytest.raises(ValueError, match="expects inputs of shape"):
        cd.predict_dask(build(), _dask_array(np.ones((4, 6, 3)), (2, 6, 3)))


def test_one_blas_thread_while_tasks_run():
    before = crnn.get_num_threads()
    try:
        crnn.set_num_threads(2)
        with cd._one_blas_thread():
            with cd._one_blas_thread():
                assert crnn.get_num_threads() == 1
            assert crnn.get_num_threads() == 1
        assert crnn.get_num_threads() == 2
    finally:
        crnn.set_num_threads(before)


# ----------------------------------------------------------------------- fit_many

def _datasets():
    good = _data(seed=4)
    return {"shop_a": good, "shop_b": _data(features=3, seed=5), "shop_c": _data(seed=6)}


def test_fit_many_on_a_cluster_equals_local_training_and_reports_failures(client):
    datasets = _datasets()
    remote = cd.fit_many(build, datasets, client=client, epochs=2, batch_size=8,
                         shuffle=False)
    local = cd.fit_many(build, datasets, epochs=2, batch_size=8, shuffle=False)
    for result in (remote, local):
        assert sorted(result.models) == sorted(result.histories) == ["shop_a", "shop_c"]
        assert list(result.errors) == ["shop_b"]
        assert "ValueError" in result.errors["shop_b"]
        assert "expects inputs of shape (None, 6, 2)" in result.errors["shop_b"]
    for key in ("shop_a", "shop_c"):
        # Independent of fit_many: one model trained here by hand.
        model = build()
        history = model.fit(*datasets[key], epochs=2, batch_size=8, shuffle=False, verbose=0)
        for result in (remote, local):
            _assert_same_weights(result.models[key], model)
            np.testing.assert_allclose(result.histories[key]["loss"],
                                       history.history["loss"], rtol=1e-12)
        # Built with one BLAS thread, on the workers and here.
        assert remote.models[key].name == local.models[key].name == "threads_1"
    assert remote.models["shop_a"].optimizer.iterations == 10


def test_fit_many_returns_bytes_and_takes_a_list(client):
    x, y = _data(seed=7)
    result = cd.fit_many(build, [(x, y), (x, 2 * y)], client=client, return_bytes=True,
                         epochs=1)
    assert sorted(result.models) == [0, 1] and not result.errors
    assert all(isinstance(blob, bytes) for blob in result.models.values())
    assert crnn.models.from_bytes(result.models[1]).count_params() == build().count_params()


def test_fit_many_checks_its_arguments_before_training():
    with pytest.raises(TypeError, match="build_fn must be a function"):
        cd.fit_many(build(), [_data()])
    with pytest.raises(ValueError, match=r"datasets\['b'\] must be an \(x, y\) pair"):
        cd.fit_many(build, {"a": _data(), "b": _data()[0]})
    with pytest.raises(ValueError, match="datasets is empty"):
        cd.fit_many(build, {})
    with pytest.raises(TypeError, match="datasets must be a dict"):
        cd.fit_many(build, _data()[0].tobytes())
