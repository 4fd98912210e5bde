"""crnn.streaming.StreamPool: many streams, each exactly a batch-1 stateful model.

Reference: for every open stream, a twin model with the same weights built with
``stateful=True`` and batch size 1, driven through the ordinary layer stack
(``predict_on_batch`` with a (1, 1, features) input), whose kernels are checked against
golden data elsewhere. The pool must give each stream what its twin gives, whatever the
other streams do.
"""

import os
import threading

import numpy as np
import pytest

import crnn
from crnn import layers as L
from crnn._kernels._stream import StreamCore
from crnn.streaming import Streamer, StreamPool

F = 5
TOL = {"float32": {"rtol": 1e-5, "atol": 1e-6}, "float64": {"rtol": 1e-13, "atol": 1e-14}}


def _lstm(batch, stateful, dtype):
    return [L.LSTM(6, stateful=stateful, batch_input_shape=(batch, None, F), dtype=dtype),
            L.Dense(2, dtype=dtype)]


def _gru_after(batch, stateful, dtype):
    return [L.GRU(6, reset_after=True, stateful=stateful, dtype=dtype,
                  batch_input_shape=(batch, None, F)),
            L.Dense(3, activation="softmax", dtype=dtype)]


def _gru_before(batch, stateful, dtype):
    return [L.GRU(6, reset_after=False, stateful=stateful, dtype=dtype,
                  activation="relu", batch_input_shape=(batch, None, F)),
            L.Dense(1, activation="sigmoid", dtype=dtype)]


def _simple_rnn(batch, stateful, dtype):
    return [L.SimpleRNN(4, stateful=stateful, use_bias=False, dtype=dtype,
                        batch_input_shape=(batch, None, F)),
            L.Dense(2, activation="elu", dtype=dtype)]


def _stack(batch, stateful, dtype):
    """Every layer kind the pool runs, two recurrent layers of different cells."""
    return [crnn.Input(shape=(None, F), batch_size=batch, dtype=dtype),
            L.Dense(7, activation="relu", dtype=dtype),
            L.LSTM(8, stateful=stateful, return_sequences=True, dtype=dtype),
            L.Dropout(0.5, dtype=dtype),
            L.GRU(5, stateful=stateful, return_sequences=True, dtype=dtype),
            L.Activation("tanh", dtype=dtype),
            L.SimpleRNN(3, stateful=stateful, return_sequences=True, dtype=dtype),
            L.TimeDistributed(L.Dense(4, activation="softmax", dtype=dtype)),
            L.Activation("linear", dtype=dtype)]


MODELS = {"lstm": _lstm, "gru_reset_after": _gru_after, "gru_reset_before": _gru_before,
          "simple_rnn": _simple_rnn, "stack": _stack}


def _model(make, dtype="float32", batch=None, stateful=False, seed=0):
    """A model with random weights (biases too), the same for the same seed."""
    crnn.utils.set_random_seed(seed)
    model = crnn.Sequential(make(batch, stateful, dtype))
    rng = np.random.default_rng(seed + 100)
    model.set_weights([w + 0.3 * rng.standard_normal(w.shape) for w in model.get_weights()])
    return model


class Twins:
    """One batch-1 stateful copy of the model per stream id: the reference."""

    def __init__(self, make, model, dtype):
        self.make, self.model, self.dtype = make, model, dtype
        self.by_id = {}

    def open(self, sid):
        twin = crnn.Sequential(self.make(1, True, self.dtype))
        twin.set_weights(self.model.get_weights())
        self.by_id[sid] = twin

    def recurrent(self, sid):
        return [l for l in self.by_id[sid].layers if isinstance(l, (L.LSTM, L.GRU, L.SimpleRNN))]

    def step(self, sid, x):
        return self.by_id[sid].predict_on_batch(x[None, None]).reshape(-1)

    def states(self, sid):
        return [s[0] for layer in self.recurrent(sid) for s in layer.states]

    def set_states(self, sid, flat):
        flat = list(flat)
        for layer in self.recurrent(sid):
            n = 2 if isinstance(layer, L.LSTM) else 1
            layer.reset_states([np.asarray(s)[None] for s in flat[:n]])
            flat = flat[n:]


def _same_states(pool, twins, dtype):
    assert sorted(pool.ids) == sorted(twins.by_id)
    for sid in twins.by_id:
        got, want = pool.get_state(sid), twins.states(sid)
        assert len(got) == len(want)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, **TOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_random_interleavings_match_batch_one_twins(name, dtype, tmp_path):
    """Subsets in any order, resets, closes, opens, get/set and save/load midway."""
    make = MODELS[name]
    model = _model(make, dtype)
    twins = Twins(make, model, dtype)
    pool = StreamPool(model, capacity=2)        # grows along the way
    rng = np.random.default_rng(7)
    for _ in range(4):
        sid = pool.open()
        twins.open(sid)
    for round_ in range(30):
        ids = list(twins.by_id)
        chosen = [ids[k] for k in rng.permutation(len(ids))[:rng.integers(1, len(ids) + 1)]]
        X = (2 * rng.standard_normal((len(chosen), F))).astype(dtype)
        ys = pool.step(chosen, X)
        assert ys.shape == (len(chosen), pool.n_outputs) and ys.dtype == np.dtype(dtype)
        for row, sid in enumerate(chosen):
            np.testing.assert_allclose(ys[row], twins.step(sid, X[row]), **TOL[dtype])
        action = rng.integers(0, 8)
        target = ids[rng.integers(len(ids))]
        if action == 0:
            pool.reset(target)
            for layer in twins.recurrent(target):
                layer.reset_states()
        elif action == 1 and len(ids) > 2:
            pool.close(target)
            del twins.by_id[target]
        elif action == 2:
            sid = pool.open()
            assert sid not in twins.by_id
            twins.open(sid)
        elif action == 3:
            values = [rng.standard_normal(s.shape) for s in pool.get_state(target)]
            pool.set_state(target, values)
            twins.set_states(target, [v.astype(dtype) for v in values])
        elif action == 4:
            pool.save_states(tmp_path / "states.npz")
            pool = StreamPool.load_states(tmp_path / "states.npz", model)
        if round_ % 10 == 9:
            _same_states(pool, twins, dtype)
    _same_states(pool, twins, dtype)
    assert pool.capacity >= len(twins.by_id) and len(pool) == len(twins.by_id)


def test_one_lstm_step_by_hand():
    """Independent of both code paths: the Keras 3 LSTM equations in NumPy, two streams
    with different non-zero states stepped in reverse order."""
    model = crnn.Sequential([L.LSTM(3, batch_input_shape=(None, 1, 2), dtype="float64"),
                             L.Dense(1, dtype="float64")])
    rng = np.random.default_rng(5)
    model.set_weights([rng.standard_normal(w.shape) for w in model.get_weights()])
    kernel, rec, bias, dk, db = model.get_weights()
    pool = StreamPool(model)
    a, b = pool.open(), pool.open()
    states = {a: rng.standard_normal((2, 3)), b: rng.standard_normal((2, 3))}
    for sid, (h0, c0) in states.items():
        pool.set_state(sid, [h0, c0])
    X = np.array([[0.5, -1.5], [2.0, 0.25]])
    got = pool.step([b, a], X)
    sig = lambda v: 1 / (1 + np.exp(-v))
    for row, sid in enumerate([b, a]):
        h0, c0 = states[sid]
        z = X[row] @ kernel + h0 @ rec + bias
        i, f, g, o = sig(z[:3]), sig(z[3:6]), np.tanh(z[6:9]), sig(z[9:])
        c = f * c0 + i * g
        h = o * np.tanh(c)
        np.testing.assert_allclose(got[row], h @ dk + db, rtol=1e-12)
        np.testing.assert_allclose(pool.get_state(sid)[0], h, rtol=1e-12)
        np.testing.assert_allclose(pool.get_state(sid)[1], c, rtol=1e-12)


def test_many_streams_cross_block_boundaries():
    """More streams than one compiled block (256 rows), gathered and in place."""
    model = _model(_gru_after)
    twins = Twins(_gru_after, model, "float32")
    pool = StreamPool(model, capacity=600)
    ids = [pool.open() for _ in range(600)]
    assert ids == list(range(600))
    rng = np.random.default_rng(3)
    watched = [0, 255, 256, 257, 511, 599]
    for sid in watched:
        twins.open(sid)
    for order in (ids, list(rng.permutation(ids)), ids[::-1]):
        order = [int(i) for i in order]
        X = rng.standard_normal((600, F)).astype("float32")
        ys = pool.step(order, X)
        for row, sid in enumerate(order):
            if sid in twins.by_id:
                np.testing.assert_allclose(ys[row], twins.step(sid, X[row]), **TOL["float32"])
    for sid in watched:
        np.testing.assert_allclose(pool.get_state(sid)[0], twins.states(sid)[0],
                                   **TOL["float32"])


def test_weights_shared_states_owned():
    """set_weights and training show at the next step; predict and the model's own
    states neither see nor disturb the pool's."""
    make = _lstm
    model = _model(make, batch=2, stateful=True)
    twins = Twins(make, model, "float32")
    pool = StreamPool(model)
    a, b = pool.open(), pool.open()
    twins.open(a)
    twins.open(b)
    rng = np.random.default_rng(0)
    model_states = [s.copy() for s in model.layers[0].states]
    for k in range(6):
        X = rng.standard_normal((2, F)).astype("float32")
        ys = pool.step([a, b], X)
        for row, sid in enumerate([a, b]):
            np.testing.assert_allclose(ys[row], twins.step(sid, X[row]), **TOL["float32"])
        if k == 1:
            for s, s0 in zip(model.layers[0].states, model_states):
                np.testing.assert_array_equal(s, s0)        # the pool did not touch them
            model.predict(rng.standard_normal((2, 4, F)).astype("float32"), verbose=0)
            model.reset_states()
        if k == 2:
            new = [w * 0.7 for w in model.get_weights()]
            model.set_weights(new)
            for twin in twins.by_id.values():
                twin.set_weights(new)
        if k == 3:
            model.compile("sgd", "mse")
            model.train_on_batch(rng.standard_normal((2, 3, F)).astype("float32"),
                                 np.ones((2, 2), "float32"))
            for twin in twins.by_id.values():
                twin.set_weights(model.get_weights())


def _snapshot(pool):
    return {sid: [s.copy() for s in pool.get_state(sid)] for sid in pool.ids}


def _assert_unchanged(pool, snapshot):
    assert sorted(pool.ids) == sorted(snapshot)
    for sid, states in snapshot.items():
        for a, b in zip(pool.get_state(sid), states):
            np.testing.assert_array_equal(a, b)


@pytest.fixture
def busy_pool():
    """A pool with 3 open streams (one closed), all with non-zero states."""
    pool = StreamPool(_model(_lstm), capacity=4, grow=False)
    ids = [pool.open() for _ in range(4)]
    pool.close(ids[2])
    live = [ids[0], ids[1], ids[3]]
    pool.step(live, np.ones((3, F)))
    return pool, live, ids[2]


@pytest.mark.parametrize("bad_ids, error, message", [
    (lambda live, closed: [live[0], closed], ValueError, r"ids\[1\] = 2 is a closed stream"),
    (lambda live, closed: [live[0], 99], ValueError, r"ids\[1\] = 99 is not a stream"),
    (lambda live, closed: [live[0], -1], ValueError, r"ids\[1\] = -1 is not a stream"),
    (lambda live, closed: [live[0], live[1], live[0]], ValueError,
     r"ids\[2\] = 0 appears more than once"),
    (lambda live, closed: [live[0], 1.0], TypeError, r"ids\[1\] must be a stream id"),
    (lambda live, closed: [live[0], True], TypeError, r"ids\[1\] must be a stream id"),
    (lambda live, closed: [live[0], "1"], TypeError, r"ids\[1\] must be a stream id"),
    (lambda live, closed: {live[0]}, TypeError, r"ids must be a list"),
    (lambda live, closed: np.array([live[0], 1.5]), TypeError, r"ids must be a 1-D"),
    (lambda live, closed: np.array([[live[0]]]), TypeError, r"ids must be a 1-D"),
    (lambda live, closed: np.array([live[0], closed]), ValueError, r"closed stream"),
    (lambda live, closed: np.array([live[1], live[1]]), ValueError, r"more than once"),
])
def test_bad_ids_change_nothing(busy_pool, bad_ids, error, message):
    pool, live, closed = busy_pool
    before = _snapshot(pool)
    ids = bad_ids(live, closed)
    with pytest.raises(error, match=message):
        pool.step(ids, np.ones((len(ids), F)))
    _assert_unchanged(pool, before)
    # and the pool still steps afterwards
    pool.step(live, np.ones((3, F)))


@pytest.mark.parametrize("X, error, message", [
    (np.ones((2, F + 1)), ValueError, (r"X must have shape \(len\(ids\), features\) = "
                                       r"\(2, 5\).*received shape \(2, 6\)")),
    (np.ones((3, F)), ValueError, r"received shape \(3, 5\)"),
    (np.ones(F), ValueError, r"received shape \(5,\)"),
    (np.ones((2, 2, F)), ValueError, r"received shape \(2, 2, 5\)"),
    (np.ones((2, F), complex), TypeError, "X must be real numbers"),
    (np.array([["a"] * F] * 2), TypeError, "X must be real numbers"),
    ([[object()] * F] * 2, TypeError, "X must be real numbers"),
])
def test_bad_inputs_change_nothing(busy_pool, X, error, message):
    pool, live, _ = busy_pool
    before = _snapshot(pool)
    with pytest.raises(error, match=message):
        pool.step(live[:2], X)
    _assert_unchanged(pool, before)


@pytest.mark.parametrize("form", ["float64", "int", "list", "readonly", "strided", "3d",
                                  "array_ids", "tuple_ids", "uint_ids"])
def test_input_forms(form):
    model = _model(_lstm)
    ref, pool = StreamPool(model), StreamPool(model)
    for p in (ref, pool):
        p.open()
        p.open()
    X = np.arange(2 * F, dtype="float32").reshape(2, F) / 7 - 0.5
    if form == "int":
        X = np.arange(2 * F).reshape(2, F) - 4
    want = ref.step([1, 0], X.astype("float32"))
    ids = [1, 0]
    inputs = {"float64": X.astype("float64"), "int": X, "list": X.tolist(),
              "readonly": X.copy(), "strided": np.repeat(X, 2, axis=1)[:, ::2],
              "3d": X[:, None, :]}
    x = inputs.get(form, X)
    if form == "readonly":
        x.flags.writeable = False
    if form == "array_ids":
        ids = np.array(ids)
    elif form == "tuple_ids":
        ids = tuple(ids)
    elif form == "uint_ids":
        ids = np.array(ids, np.uint16)
    got = pool.step(ids, x)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)


def test_empty_step_and_output_shape_of_sequence_models():
    pool = StreamPool(_model(_stack))
    assert pool.step([], np.zeros((0, F))).shape == (0, 4)
    sid = pool.open()
    assert pool.step([sid], np.zeros((1, F))).shape == (1, 4)


def test_ids_are_never_reused_and_capacity():
    pool = StreamPool(_model(_simple_rnn), capacity=2, grow=False)
    a, b = pool.open(), pool.open()
    assert (a, b) == (0, 1) and pool.capacity == 2
    with pytest.raises(RuntimeError, match="the pool is full: all 2 streams are open"):
        pool.open()
    pool.close(a)
    c = pool.open()
    assert c not in (a, b) and len(pool) == 2
    for call in (pool.close, pool.reset, pool.get_state):
        with pytest.raises(ValueError, match=f"id = {a} is a closed stream"):
            call(a)
    with pytest.raises(ValueError, match="is a closed stream"):
        pool.set_state(a, pool.get_state(b))
    with pytest.raises(TypeError, match="id must be a stream id"):
        pool.close("0")
    pool.step([c, b], np.ones((2, F)))
    # growth keeps every open stream's state
    grown = StreamPool(pool.model, capacity=1)
    first = grown.open()
    grown.step([first], np.ones((1, F)))
    kept = grown.get_state(first)
    more = [grown.open() for _ in range(4)]
    assert grown.capacity == 8 and more == [1, 2, 3, 4]
    np.testing.assert_array_equal(grown.get_state(first)[0], kept[0])
    assert all(not grown.get_state(s)[0].any() for s in more)


def test_reopened_slot_starts_from_zero():
    pool = StreamPool(_model(_lstm), capacity=1)
    a = pool.open()
    pool.step([a], np.ones((1, F)))
    pool.close(a)
    b = pool.open()
    assert b != a and all(not s.any() for s in pool.get_state(b))


def test_set_state_checks_everything_first(busy_pool):
    pool, live, _ = busy_pool
    before = _snapshot(pool)
    good = pool.get_state(live[0])
    for bad, error, message in [
        (good[:1], ValueError, r"states must be a list of 2 arrays of shapes \[\(6,\), \(6,\)\]"),
        (good[0], ValueError, "received ndarray"),
        ([good[0], np.ones(5)], ValueError, r"states\[1\] must have shape \(6,\)"),
        ([good[0], np.ones((2, 6))], ValueError, r"states\[1\] must have shape"),
        ([good[0], np.array(["x"] * 6)], TypeError, r"states\[1\] must be real numbers"),
    ]:
        with pytest.raises(error, match=message):
            pool.set_state(live[0], bad)
    _assert_unchanged(pool, before)
    pool.set_state(live[0], [np.ones((1, 6)), np.arange(6)])
    np.testing.assert_array_equal(pool.get_state(live[0])[1], np.arange(6))


def test_get_state_is_a_copy(busy_pool):
    pool, live, _ = busy_pool
    state = pool.get_state(live[0])
    state[0][...] = 123.0
    assert not np.any(pool.get_state(live[0])[0] == 123.0)


def test_save_load_roundtrip_and_file_format(tmp_path):
    model = _model(_lstm)
    pool = StreamPool(model, capacity=3)
    ids = [pool.open() for _ in range(3)]
    pool.close(ids[1])
    reused = pool.open()                         # generation 1 of slot 1
    assert reused == (1 << 32) | 1
    live = [ids[0], reused, ids[2]]
    pool.step(live, np.random.default_rng(0).standard_normal((3, F)))
    path = tmp_path / "states.crnn"
    pool.save_states(path)
    # pickle-free
    with np.load(path, allow_pickle=False) as npz:
        assert "crnn_header" in npz.files and npz["stream_ids"].dtype == np.int64
    loaded = StreamPool.load_states(path, model)
    assert sorted(loaded.ids) == sorted(live)
    for sid in live:
        for a, b in zip(loaded.get_state(sid), pool.get_state(sid)):
            np.testing.assert_array_equal(a, b)
    X = np.ones((3, F), "float32")
    np.testing.assert_array_equal(loaded.step(live, X), pool.step(live, X))
    # closed ids stay closed and new ids are new after loading
    with pytest.raises(ValueError, match="closed stream"):
        loaded.reset(ids[1])
    assert loaded.open() not in live + [ids[1]]
    # an empty pool round-trips too
    empty = tmp_path / "empty.crnn"
    StreamPool(model).save_states(empty)
    assert len(StreamPool.load_states(empty, model)) == 0


def test_load_refuses_other_architectures_and_other_files(tmp_path):
    model = _model(_lstm)
    pool = StreamPool(model)
    pool.open()
    path = tmp_path / "states.crnn"
    pool.save_states(path)
    for other in (_model(_gru_after), _model(_lstm, dtype="float64"),
                  crnn.Sequential([L.LSTM(7, batch_input_shape=(None, None, F)),
                                   L.Dense(2)])):
        with pytest.raises(ValueError, match="saved from a model of another architecture"):
            StreamPool.load_states(path, other)
    # other weights, same architecture: fine (states only)
    assert len(StreamPool.load_states(path, _model(_lstm, seed=3))) == 1
    model.save(tmp_path / "model.crnn")
    with pytest.raises(ValueError, match="not stream states"):
        StreamPool.load_states(tmp_path / "model.crnn", model)
    (tmp_path / "junk.crnn").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a crnn"):
        StreamPool.load_states(tmp_path / "junk.crnn", model)
    with pytest.raises(FileNotFoundError):
        StreamPool.load_states(tmp_path / "missing.crnn", model)
    with pytest.raises(ValueError, match="capacity=1 is too small"):
        big = StreamPool(model)
        for _ in range(3):
            big.open()
        big.save_states(path)
        StreamPool.load_states(path, model, capacity=1)


def test_save_is_atomic(tmp_path, monkeypatch):
    model = _model(_lstm)
    pool = StreamPool(model)
    pool.open()
    path = tmp_path / "states.crnn"
    pool.save_states(path)
    original = path.read_bytes()
    with pytest.raises(FileExistsError):
        pool.save_states(path, overwrite=False)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    pool.open()
    with pytest.raises(OSError, match="disk full"):
        pool.save_states(path)
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["states.crnn"]      # no temporary file left


def test_model_checks():
    with pytest.raises(TypeError, match="Sequential"):
        StreamPool(L.LSTM(3))
    with pytest.raises(ValueError, match="not built"):
        StreamPool(crnn.Sequential([L.LSTM(3), L.Dense(1)]))
    with pytest.raises(ValueError, match="no recurrent layer"):
        StreamPool(crnn.Sequential([L.Dense(3, batch_input_shape=(None, None, F))]))
    with pytest.raises(NotImplementedError, match=r"StreamPool does not support.*Masking"):
        StreamPool(crnn.Sequential([L.Masking(0.0, batch_input_shape=(None, None, F)),
                                    L.LSTM(3)]))
    for capacity in (0, -1, 2.0, True, None):
        with pytest.raises(ValueError, match="capacity must be a positive int"):
            StreamPool(_model(_lstm), capacity=capacity)
    with pytest.raises(TypeError, match="grow must be True or False"):
        StreamPool(_model(_lstm), grow=1)


def test_concurrent_steps_serialize():
    """4 threads step their own streams of one pool (and open/close scratch streams);
    every stream ends exactly where a sequential run of its inputs ends."""
    model = _model(_gru_after)
    # full once the 12 streams are open: the threads' scratch streams grow it mid-run
    pool, ref = StreamPool(model, capacity=12), StreamPool(model, capacity=12)
    n_threads, steps = 4, 150
    owned = [[pool.open() for _ in range(3)] for _ in range(n_threads)]
    for group in owned:
        for _ in group:
            ref.open()
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((n_threads, steps, 3, F)).astype("float32")
    errors = []

    def work(t):
        try:
            for k in range(steps):
                pool.step(owned[t], inputs[t, k])
                if k % 10 == 0:
                    pool.close(pool.open())
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and not any(thread.is_alive() for thread in threads)
    assert pool.capacity > 12 and len(pool) == 12
    for t in range(n_threads):
        for k in range(steps):
            ref.step(owned[t], inputs[t, k])    # same ids: ref opened in the same order
        for sid in owned[t]:
            np.testing.assert_array_equal(pool.get_state(sid)[0], ref.get_state(sid)[0])


def _counting_model():
    """The issue's reproducer: the state counts the completed steps."""
    model = crnn.Sequential([L.SimpleRNN(4, activation="relu", use_bias=False, stateful=True,
                                         batch_input_shape=(1, 1, 1024))])
    kernel = np.zeros((1024, 4), "float32")
    kernel[0] = 1.0
    model.set_weights([kernel, np.eye(4, dtype="float32")])
    return model


@pytest.mark.parametrize("form", ["float64", "int64", "list"])
def test_streamer_threads_never_corrupt_the_count(form):
    """The issue's reproducer: concurrent Streamer.step with inputs that need conversion
    (which can release the GIL). Each call either raises RuntimeError or counts exactly
    once."""
    model = _counting_model()
    streamer = Streamer(model)
    x = np.ones(1024, "int64" if form == "int64" else "float64")
    if form == "list":
        x = x.tolist()
    steps = 500 if form == "list" else 2000
    done = [0] * 3
    refused = [0] * 3

    def work(t):
        for _ in range(steps):
            try:
                streamer.step(x)
                done[t] += 1
            except RuntimeError:
                refused[t] += 1

    threads = [threading.Thread(target=work, args=(t,)) for t in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert sum(done) + sum(refused) == 3 * steps
    np.testing.assert_array_equal(model.layers[0].states[0], np.full((1, 4), sum(done)))


def test_streamer_is_a_pool_of_one_on_the_models_live_states():
    model = _counting_model()
    layer = model.layers[0]
    live = layer.live_states()
    streamer = Streamer(model)
    streamer.step(np.ones(1024))
    model.predict_on_batch(np.ones((1, 2, 1024)))
    model.reset_states()
    streamer.step(np.ones(1024))
    layer.reset_states([np.full((1, 4), 5.0)])
    streamer.step(np.ones(1024))
    assert layer.live_states() is live and live[0][0, 0] == 6.0
    with pytest.raises(TypeError):
        layer._states[0] = np.zeros((1, 4), "float32")   # stable: can't be swapped
    assert isinstance(streamer, StreamCore)


def test_core_checks_arrays_itself():
    """The compiled class re-checks every array, whatever the Python side hands it."""
    layer = L.SimpleRNN(3)
    layer.build((1, 1, 2))
    ok = {"kind": "simple_rnn", "units": 3, "act": 1, "kernel": layer.kernel,
          "recurrent_kernel": layer.recurrent_kernel, "bias": layer.bias}
    core = StreamCore()
    with pytest.raises(ValueError, match="not set up"):
        core.step([], np.zeros((0, 2), "float32"))
    bad = [
        (dict(ok, kernel=np.zeros((3, 3), "float32")), ValueError, "kernel must have shape"),
        (dict(ok, recurrent_kernel=np.zeros((3, 2), "float32")), ValueError, "shape"),
        (dict(ok, bias=np.zeros(4, "float32")), ValueError, "bias must have shape"),
        (dict(ok, kernel=layer.kernel.astype("float64")), TypeError, "dtype"),
        (dict(ok, kernel=np.zeros((3, 2), "float32").T), ValueError, "C-contiguous"),
        (dict(ok, kernel=[[0.0] * 3] * 2), TypeError, "NumPy array"),
        (dict(ok, units=0), ValueError, "units"),
        (dict(ok, act=5), ValueError, "recurrent cells support"),
        (dict(ok, act=99), ValueError, "unknown activation code"),
    ]
    for spec, error, message in bad:
        with pytest.raises(error, match=message):
            core._setup(np.float32, 2, [spec], 4, True, True)
    with pytest.raises(ValueError, match="state"):
        core._setup(np.float32, 2, [ok], 1, False, False, [[np.zeros((1, 2), "float32")]])
    readonly = np.zeros((1, 3), "float32")
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        core._setup(np.float32, 2, [ok], 1, False, False, [[readonly]])
    core._setup(np.float32, 2, [ok], 4, True, True)
    assert core.step([core._open_stream()], np.ones((1, 2), "float32")).shape == (1, 3)
    with pytest.raises(RuntimeError, match="already set up"):
        core._setup(np.float32, 2, [ok], 4, True, True)
