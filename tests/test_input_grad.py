"""Skipping the input gradient (``need_dx=False``) where nobody needs it.

The ``*_grad`` functions of ``crnn.ops`` and the layers' ``backward`` take ``need_dx``;
with False they skip ``dx`` (None) and every other gradient must be bit-identical to the
``need_dx=True`` call's. A model asks its first layer with trainable weights to skip it
and doesn't run the layers before that one; its training must give bit-identical weights
to training that computes every ``dx``.
"""

import numpy as np
import pytest

import crnn
from crnn import layers, models, ops
from crnn.layers import base
from ops_cases import make_problem, options, run_ops

CELLS = ["lstm", "gru", "simple_rnn"]
DTYPES = [np.float32, np.float64]


def _flat(grads):
    """The gradients of a Gradients tuple other than dx, as a flat list."""
    return [*grads.d_initial_state, grads.d_kernel, grads.d_recurrent_kernel, grads.d_bias]


def _same(a, b, what):
    assert len(a) == len(b), what
    for i, (u, v) in enumerate(zip(a, b)):
        if u is None or v is None:
            assert u is None and v is None, f"{what}[{i}]"
            continue
        if isinstance(u, crnn.optimizers.IndexedSlices):
            _same([u.values, u.indices], [v.values, v.indices], f"{what}[{i}]")
            continue
        u, v = np.asarray(u), np.asarray(v)
        assert u.dtype == v.dtype and u.shape == v.shape, f"{what}[{i}]"
        assert np.array_equal(u, v), f"{what}[{i}] differs"


# --------------------------------------------------------------------------- ops


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("batch,units", [(1, 1), (2, 15), (5, 16), (7, 17), (8, 37),
                                         (33, 64), (5, 100)])
def test_ops_grad_without_dx_is_bit_identical(cell, dtype, batch, units):
    rng = np.random.default_rng(batch * 1000 + units)
    problem = make_problem(cell, rng, batch=batch, timesteps=6, features=9, units=units,
                           dtype=dtype, masked=batch > 1)
    opts = options(cell, go_backwards=batch % 2 == 1)
    outputs, _, cache = run_ops(cell, problem, opts)
    d_out = rng.standard_normal(outputs.shape).astype(dtype)
    d_states = [rng.standard_normal(s.shape).astype(dtype) for s in problem["initial_state"]]
    grad = getattr(ops, f"{cell}_grad")
    full = grad(cache, d_out, d_states)
    lean = grad(cache, d_out, d_states, need_dx=False)
    assert full.dx is not None and full.dx.shape == problem["x"].shape
    assert lean.dx is None
    _same(_flat(full), _flat(lean), f"{cell} {np.dtype(dtype).name}")
    # and the default still computes dx, the same as before
    again = grad(cache, d_out, d_states)
    assert np.array_equal(again.dx, full.dx)


@pytest.mark.parametrize("cell", CELLS)
def test_ops_grad_without_dx_on_split_rows(cell, monkeypatch):
    """The rows split across crnn's threads (per-part backward calls): dx None too."""
    before = crnn.get_num_threads()
    monkeypatch.setattr(ops, "SPLIT_MIN_WORK", 0)
    crnn.set_num_threads(2)
    try:
        rng = np.random.default_rng(7)
        problem = make_problem(cell, rng, batch=33, timesteps=5, features=6, units=17,
                               dtype=np.float32, masked=True)
        outputs, _, cache = run_ops(cell, problem, options(cell))
        assert cache.parts is not None      # the split path ran
        d_out = rng.standard_normal(outputs.shape).astype(np.float32)
        grad = getattr(ops, f"{cell}_grad")
        full = grad(cache, d_out)
        lean = grad(cache, d_out, need_dx=False)
    finally:
        crnn.set_num_threads(before)
    assert full.dx.shape == problem["x"].shape and lean.dx is None
    _same(_flat(full), _flat(lean), cell)


def test_compiled_backward_entry_returns_none_dx():
    from crnn._kernels import _lstm
    rng = np.random.default_rng(3)
    problem = make_problem("lstm", rng, batch=4, timesteps=3, features=5, units=8,
                           dtype=np.float32)
    outputs, _, cache = run_ops("lstm", problem, options("lstm"))
    d_out = np.ones_like(outputs)
    zeros = np.zeros((4, 8), np.float32)
    args = dict(cache.backward_args, d_outputs=d_out, d_h=zeros, d_c=zeros)
    full = _lstm.lstm_backward(**args)
    lean = _lstm.lstm_backward(**args, need_dx=False)
    assert full[0].shape == (4, 3, 5) and lean[0] is None
    _same(full[1:], lean[1:], "lstm_backward")


# --------------------------------------------------------------------------- layers


def _layer_case(kind):
    """(layer, input) for a layer kind, built."""
    rng = np.random.default_rng(11)
    seq = rng.standard_normal((5, 7, 6)).astype("float32")
    if kind == "lstm":
        layer = layers.LSTM(17, return_sequences=True)
    elif kind == "gru_dropout":
        layer = layers.GRU(16, dropout=0.3, seed=2)
    elif kind == "simple_rnn_recurrent_dropout":
        layer = layers.SimpleRNN(15, recurrent_dropout=0.25, dropout=0.2, seed=3)
    elif kind == "lstm_recurrent_dropout":
        layer = layers.LSTM(8, recurrent_dropout=0.25, seed=4, return_sequences=True)
    elif kind == "bidirectional":
        layer = layers.Bidirectional(layers.LSTM(9, return_sequences=True))
    elif kind == "time_distributed":
        layer = layers.TimeDistributed(layers.Dense(4, activation="tanh"))
    elif kind == "dense":
        layer = layers.Dense(5, activation="relu")
    else:       # embedding
        layer = layers.Embedding(20, 4)
        seq = rng.integers(0, 20, (5, 7))
    layer(seq)      # build
    return layer, seq


@pytest.mark.parametrize("kind", ["lstm", "gru_dropout", "simple_rnn_recurrent_dropout",
                                  "lstm_recurrent_dropout", "bidirectional",
                                  "time_distributed", "dense", "embedding"])
def test_layer_backward_without_dx_is_bit_identical(kind):
    layer, x = _layer_case(kind)
    y, cache = layer.forward(x, training=True)
    d_y = np.random.default_rng(5).standard_normal(np.shape(y)).astype("float32")
    dx_full, g_full = layer.backward(cache, d_y)
    dx_lean, g_lean = layer.backward(cache, d_y, need_dx=False)
    assert dx_full is not None and np.shape(dx_full) == np.shape(x)
    assert dx_lean is None
    assert len(g_full) == len(layer.trainable_weights) > 0
    _same(g_full, g_lean, kind)


def test_backward_call_passes_need_dx_only_to_layers_that_take_it():
    class Double(layers.Layer):
        def forward(self, x, training=False, mask=None):
            return 2 * np.asarray(x, self.dtype), None

        def backward(self, cache, d_outputs):
            return 2 * d_outputs, []

    d = np.ones((2, 3), "float32")
    dx, grads = base.backward_call(Double(), None, d, False)
    assert np.array_equal(dx, 2 * d) and grads == []
    dense, x = _layer_case("dense")
    _, cache = dense.forward(x, training=True)
    d_y = np.ones((5, 7, 5), "float32")
    assert base.backward_call(dense, cache, d_y, False)[0] is None
    assert base.backward_call(dense, cache, d_y, True)[0].shape == x.shape


# --------------------------------------------------------------------------- models


def _char_model(first=None, seed=1):
    crnn.utils.set_random_seed(seed)
    stack = [layers.Input(shape=(12, 10))]
    if first is not None:
        stack.append(first)
    stack += [layers.LSTM(16), layers.Dense(10, activation="softmax")]
    model = crnn.Sequential(stack)
    model.compile(optimizer=crnn.optimizers.RMSprop(learning_rate=0.01),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def _char_data():
    rng = np.random.default_rng(0)
    x = np.eye(10, dtype="float32")[rng.integers(0, 10, (64, 12))]
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, 64)]
    return x, y


def _always_dx(layer, cache, d_outputs, need_dx=True):
    return layer.backward(cache, d_outputs)


@pytest.mark.parametrize("first", [None, "masking", "dropout", "frozen_dense",
                                   "bidirectional", "time_distributed"])
def test_fit_gives_the_same_weights_as_computing_every_dx(first, monkeypatch):
    def make(first):
        layer = {None: None, "masking": layers.Masking(0.0), "dropout": layers.Dropout(0.2),
                 "frozen_dense": layers.Dense(10, trainable=False),
                 "bidirectional": layers.Bidirectional(layers.GRU(5, return_sequences=True)),
                 "time_distributed": layers.TimeDistributed(layers.Dense(6))}[first]
        return _char_model(layer)

    x, y = _char_data()
    lean = make(first)
    h_lean = lean.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=True).history
    with monkeypatch.context() as m:
        m.setattr(models, "backward_call", _always_dx)
        full = make(first)
        h_full = full.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=True).history
    assert h_lean == h_full
    _same(lean.get_weights(), full.get_weights(), "weights")


def test_model_asks_its_first_trained_layer_to_skip_dx(monkeypatch):
    calls = []
    real = base.backward_call

    def spy(layer, cache, d_outputs, need_dx=True):
        calls.append((layer.name, need_dx))
        return real(layer, cache, d_outputs, need_dx)

    monkeypatch.setattr(models, "backward_call", spy)
    model = _char_model(layers.Dropout(0.1))
    lstm, dense = model.layers[1], model.layers[2]
    x, y = _char_data()
    model.train_on_batch(x[:16], y[:16])
    # the Dropout before the LSTM (no weights) is not run; the LSTM skips its dx
    assert calls == [(dense.name, True), (lstm.name, False)]

    calls.clear()
    lstm.trainable = False
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    before = lstm.get_weights()
    model.train_on_batch(x[:16], y[:16])
    assert calls == [(dense.name, False)]
    _same(before, lstm.get_weights(), "frozen LSTM")


def test_first_layer_without_need_dx_keyword_still_trains():
    class Scale(layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight("w", (input_shape[-1],), "ones")
            super().build(input_shape)

        def forward(self, x, training=False, mask=None):
            x = np.asarray(x, self.dtype)
            return x * self.w, x

        def backward(self, cache, d_outputs):
            d = (cache * d_outputs).reshape(-1, cache.shape[-1]).sum(0)
            return d_outputs * self.w, [d]

    model = _char_model(Scale())
    x, y = _char_data()
    before = model.layers[0].w.copy()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert not np.array_equal(before, model.layers[0].w)


# --------------------------------------------------------------------------- last output


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("batch,units,timesteps", [(1, 1, 1), (2, 15, 4), (7, 17, 6),
                                                   (8, 37, 3), (33, 64, 5)])
def test_ops_grad_of_last_output_only_is_bit_identical(cell, dtype, batch, units, timesteps):
    """d_outputs (batch, units): the gradient of outputs[:, -1] alone, as a full array
    of zeros but the last step gives it (masked, go_backwards, with final-state grads)."""
    rng = np.random.default_rng(batch * 100 + units)
    problem = make_problem(cell, rng, batch=batch, timesteps=timesteps, features=5,
                           units=units, dtype=dtype, masked=batch > 1)
    outputs, _, cache = run_ops(cell, problem, options(cell, go_backwards=units % 2 == 1))
    d_last = rng.standard_normal((batch, units)).astype(dtype)
    d_full = np.zeros_like(outputs)
    d_full[:, -1] = d_last
    d_states = [rng.standard_normal(s.shape).astype(dtype) for s in problem["initial_state"]]
    grad = getattr(ops, f"{cell}_grad")
    full = grad(cache, d_full, d_states)
    last = grad(cache, d_last, d_states)
    assert np.array_equal(full.dx, last.dx)
    _same(_flat(full), _flat(last), cell)
    lean = grad(cache, d_last, d_states, need_dx=False)
    assert lean.dx is None
    _same(_flat(full), _flat(lean), cell)


@pytest.mark.parametrize("cell", CELLS)
def test_ops_grad_of_last_output_only_on_split_rows(cell, monkeypatch):
    before = crnn.get_num_threads()
    monkeypatch.setattr(ops, "SPLIT_MIN_WORK", 0)
    crnn.set_num_threads(2)
    try:
        rng = np.random.default_rng(9)
        problem = make_problem(cell, rng, batch=33, timesteps=5, features=6, units=17,
                               dtype=np.float64, masked=True)
        outputs, _, cache = run_ops(cell, problem, options(cell))
        assert cache.parts is not None
        d_full = np.zeros_like(outputs)
        d_full[:, -1] = rng.standard_normal((33, 17))
        grad = getattr(ops, f"{cell}_grad")
        full = grad(cache, d_full)
        last = grad(cache, np.ascontiguousarray(d_full[:, -1]))
    finally:
        crnn.set_num_threads(before)
    assert np.array_equal(full.dx, last.dx)
    _same(_flat(full), _flat(last), cell)


def test_ops_grad_refuses_other_two_dimensional_shapes():
    rng = np.random.default_rng(1)
    problem = make_problem("lstm", rng, batch=2, timesteps=3, units=3)
    _, _, cache = run_ops("lstm", problem, options("lstm"))
    with pytest.raises(ValueError, match=r"d_outputs must have shape \(2, 3, 3\)"):
        ops.lstm_grad(cache, np.zeros((2, 4)))


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "SimpleRNN"])
def test_layer_backward_of_last_output_matches_the_full_sequence_gradient(cell):
    """A return_sequences=False layer (masked, zero_output_for_mask) hands the ops the
    last output's gradient alone; the gradients equal those of the full zero-padded one."""
    rng = np.random.default_rng(4)
    layer = getattr(layers, cell)(9, zero_output_for_mask=True, go_backwards=cell == "GRU")
    x = rng.standard_normal((6, 5, 4)).astype("float32")
    mask = rng.random((6, 5)) > 0.3
    mask[0] = False                          # a fully masked row: zero output
    layer(x)
    y, cache = layer.forward(x, training=True, mask=mask)
    d_y = rng.standard_normal(y.shape).astype("float32")
    dx, grads = layer.backward(cache, d_y)
    core, _, out_mask, _ = cache
    d_full = np.zeros((6, 5, 9), "float32")
    d_full[:, -1] = d_y
    d_full *= out_mask
    ref = getattr(ops, layer._cell + "_grad")(core, d_full)
    assert np.array_equal(dx, ref.dx)
    _same(grads, [ref.d_kernel, ref.d_recurrent_kernel, ref.d_bias], cell)
