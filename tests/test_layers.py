"""Layer tests: shared checks for every layer, golden values, masks, dropout, errors."""

import json
import os

import numpy as np
import pytest

import crnn
from crnn import layers as L
from crnn import ops
from crnn.layers.recurrent import _DropoutLoop
from layer_test_utils import check_gradients, run_layer_test

GOLDEN = os.path.join(os.path.dirname(__file__), "layers_golden", "layers_golden.npz")


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


# --------------------------------------------------------------------------- shared helper

SHARED_CASES = [
    # (id, factory(dtype), input shape, output shape, n weights, n params)
    ("dense2d", lambda d: L.Dense(3, dtype=d), (4, 5), (4, 3), 2, 18),
    ("dense3d_tanh", lambda d: L.Dense(2, activation="tanh", dtype=d), (2, 3, 4), (2, 3, 2), 2, 10),
    ("dense_nobias_softmax", lambda d: L.Dense(3, use_bias=False, activation="softmax", dtype=d),
     (2, 4), (2, 3), 1, 12),
    ("activation_sigmoid", lambda d: L.Activation("sigmoid", dtype=d), (2, 3, 4), (2, 3, 4), 0, 0),
    ("activation_elu", lambda d: L.Activation("elu", dtype=d), (2, 5), (2, 5), 0, 0),
    ("masking", lambda d: L.Masking(dtype=d), (2, 3, 4), (2, 3, 4), 0, 0),
    ("lstm", lambda d: L.LSTM(4, dtype=d), (2, 5, 3), (2, 4), 3, 3 * 16 + 4 * 16 + 16),
    ("lstm_seq_back", lambda d: L.LSTM(3, return_sequences=True, go_backwards=True, dtype=d),
     (2, 4, 2), (2, 4, 3), 3, 2 * 12 + 3 * 12 + 12),
    ("lstm_nobias_hard", lambda d: L.LSTM(3, use_bias=False, recurrent_activation="hard_sigmoid",
                                          activation="relu", dtype=d), (2, 4, 2), (2, 3), 2, 60),
    ("gru", lambda d: L.GRU(4, dtype=d), (2, 5, 3), (2, 4), 3, 3 * 12 + 4 * 12 + 24),
    ("gru_reset_before", lambda d: L.GRU(3, reset_after=False, return_sequences=True, dtype=d),
     (2, 4, 2), (2, 4, 3), 3, 2 * 9 + 3 * 9 + 9),
    ("simple_rnn", lambda d: L.SimpleRNN(4, dtype=d), (2, 5, 3), (2, 4), 3, 12 + 16 + 4),
    ("simple_rnn_stateful", lambda d: L.SimpleRNN(2, stateful=True, return_sequences=True, dtype=d),
     (2, 3, 2), (2, 3, 2), 3, 4 + 4 + 2),
    ("time_distributed", lambda d: L.TimeDistributed(L.Dense(2, dtype=d)), (2, 3, 4), (2, 3, 2), 2, 10),
    ("bidir_concat", lambda d: L.Bidirectional(L.LSTM(2, return_sequences=True, dtype=d)),
     (2, 4, 3), (2, 4, 4), 6, 2 * (3 * 8 + 2 * 8 + 8)),
    ("bidir_sum", lambda d: L.Bidirectional(L.GRU(2, dtype=d), merge_mode="sum"), (2, 4, 3), (2, 2), 6,
     2 * (18 + 12 + 12)),
    ("bidir_mul", lambda d: L.Bidirectional(L.SimpleRNN(2, return_sequences=True, dtype=d), merge_mode="mul"),
     (2, 4, 3), (2, 4, 2), 6, 2 * (6 + 4 + 2)),
    ("bidir_ave", lambda d: L.Bidirectional(L.SimpleRNN(2, dtype=d), merge_mode="ave"), (2, 4, 3), (2, 2), 6, 24),
]


@pytest.mark.parametrize("case", SHARED_CASES, ids=[c[0] for c in SHARED_CASES])
def test_shared_layer_checks(case):
    _, factory, in_shape, out_shape, n_weights, n_params = case
    run_layer_test(factory, in_shape, out_shape, n_weights, n_params)


def test_shared_checks_embedding():
    run_layer_test(lambda d: L.Embedding(5, 3, dtype=d), (2, 4), (2, 4, 3), 1, 15, input_kind="int")


def test_shared_checks_dropout():
    run_layer_test(lambda d: L.Dropout(0.3, dtype=d), (2, 3, 4), (2, 3, 4), 0, 0, grad_check=False)


# --------------------------------------------------------------------------- Keras golden values


def _make_from_spec(class_name, kwargs):
    kwargs = dict(kwargs)
    if "layer" in kwargs:
        kwargs["layer"] = _make_from_spec(*kwargs["layer"])
    return getattr(L, class_name)(**kwargs)


_golden = np.load(GOLDEN, allow_pickle=False)
_golden_cases = json.loads(str(_golden["__meta__"]))["cases"]


@pytest.mark.parametrize("case", _golden_cases, ids=[c[0] for c in _golden_cases])
def test_keras_golden_predictions(case):
    """Keras's get_weights() into crnn reproduces Keras's predictions (computed by Keras)."""
    name, _, shape, stack = case
    x = _golden[f"{name}/x"]
    weights = [_golden[f"{name}/w{k}"] for k in range(int(_golden[f"{name}/n_weights"]))]
    model = crnn.Sequential([crnn.Input(shape=tuple(shape[1:]), dtype=x.dtype.name)]
                            + [_make_from_spec(c, k) for c, k in stack])
    model.set_weights(weights)
    y = model.predict(x, verbose=0)
    np.testing.assert_allclose(y, _golden[f"{name}/y"], rtol=1e-5, atol=2e-6)
    assert [w.shape for w in model.get_weights()] == [w.shape for w in weights]


# --------------------------------------------------------------------------- hand-computed values


def test_lstm_constant_initializers_by_hand():
    layer = L.LSTM(1, kernel_initializer="ones", recurrent_initializer={
        "class_name": "Constant", "config": {"value": 0.5}}, bias_initializer="zeros")
    x = np.array([[[0.2], [-0.4]]], "float32")
    y = layer(x)
    # unit_forget_bias: forget-gate bias 1, others 0.
    np.testing.assert_array_equal(layer.bias, [0, 1, 0, 0])
    h = c = 0.0
    for xt in (0.2, -0.4):
        z = xt + 0.5 * h
        i, f, o = _sigmoid(z), _sigmoid(z + 1), _sigmoid(z)
        c = f * c + i * np.tanh(z)
        h = o * np.tanh(c)
    np.testing.assert_allclose(y, [[h]], rtol=1e-6)


def test_gru_constant_initializers_by_hand():
    layer = L.GRU(1, kernel_initializer="ones", recurrent_initializer="ones",
                  bias_initializer={"class_name": "Constant", "config": {"value": 0.1}})
    x = np.array([[[0.3], [0.5]]], "float32")
    y = layer(x)
    h = 0.0
    for xt in (0.3, 0.5):
        z = _sigmoid(xt + 0.1 + h + 0.1)
        r = _sigmoid(xt + 0.1 + h + 0.1)
        hh = np.tanh(xt + 0.1 + r * (h + 0.1))
        h = z * h + (1 - z) * hh
    np.testing.assert_allclose(y, [[h]], rtol=1e-6)


def test_simple_rnn_and_dense_constant_by_hand():
    model = crnn.Sequential([
        L.SimpleRNN(2, kernel_initializer={"class_name": "Constant", "config": {"value": 0.5}},
                    recurrent_initializer={"class_name": "Constant", "config": {"value": -0.25}},
                    input_shape=(3, 1)),
        L.Dense(1, kernel_initializer="ones", bias_initializer="ones")])
    x = np.array([[[1.0], [2.0], [-1.0]]], "float32")
    h = np.zeros(2)
    for xt in (1.0, 2.0, -1.0):
        h = np.tanh(0.5 * xt + (-0.25) * h.sum()) * np.ones(2)
    np.testing.assert_allclose(model(x), [[h.sum() + 1]], rtol=1e-6)


def test_default_initializers_follow_keras():
    crnn.utils.set_random_seed(3)
    layer = L.LSTM(8)
    layer.build((None, 5, 3))
    rk = layer.recurrent_kernel
    # Orthogonal (8, 32): rows orthonormal.
    np.testing.assert_allclose(rk @ rk.T, np.eye(8), atol=1e-5)
    limit = np.sqrt(6 / (3 + 32))
    assert np.abs(layer.kernel).max() <= limit and np.abs(layer.kernel).max() > limit / 2
    gru = L.GRU(4)
    gru.build((None, 5, 3))
    assert gru.bias.shape == (2, 12) and not gru.bias.any()
    emb = L.Embedding(50, 4)
    emb.build((None, 3))
    assert np.abs(emb.embeddings).max() <= 0.05


def test_seeded_initialization_is_reproducible():
    def weights():
        crnn.utils.set_random_seed(11)
        model = crnn.Sequential([L.GRU(3, input_shape=(4, 2)), L.Dense(1)])
        return model.get_weights()
    for a, b in zip(weights(), weights()):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- masks


def test_embedding_mask_flows_to_lstm_and_skips_padding():
    emb = L.Embedding(6, 3, mask_zero=True)
    lstm = L.LSTM(2, return_sequences=True)
    x = np.array([[1, 2, 0, 0], [3, 0, 4, 5]])
    mask = emb.compute_mask(x)
    np.testing.assert_array_equal(mask, x != 0)
    e = emb(x)
    lstm.build(e.shape)
    y = lstm(e, mask=mask)
    # Masked steps repeat the previous output; unmasked ones match an unmasked run.
    np.testing.assert_array_equal(y[0, 2], y[0, 1])
    np.testing.assert_array_equal(y[0, 3], y[0, 1])
    ref, _, _ = ops.lstm(e[:1, :2], lstm.kernel, lstm.recurrent_kernel, lstm.bias)
    np.testing.assert_allclose(y[0, :2], ref[0], rtol=1e-6)
    assert lstm.compute_mask(e, mask) is mask
    assert L.LSTM(2).compute_mask(e, mask) is None


def test_masking_layer_mask_and_zeroing():
    x = np.array([[[1.0, 2.0], [0.0, 0.0], [0.0, 3.0]]])
    layer = L.Masking(0.0)
    np.testing.assert_array_equal(layer.compute_mask(x), [[True, False, True]])
    np.testing.assert_array_equal(layer(x), x)
    layer = L.Masking(2.0)
    x = np.array([[[2.0, 2.0], [1.0, 2.0]]])
    np.testing.assert_array_equal(layer(x), [[[0.0, 0.0], [1.0, 2.0]]])


def test_gradients_with_mask_and_go_backwards():
    layer = L.GRU(3, go_backwards=True, return_sequences=True, zero_output_for_mask=True,
                  dtype="float64")
    x = np.random.default_rng(0).standard_normal((3, 5, 2))
    layer.build(x.shape)
    layer.bias[...] = 0.1
    mask = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1], [1, 0, 1, 0, 1]], bool)
    check_gradients(layer, x, mask=mask, n_entries=8)


def test_dense_passes_mask_and_time_distributed_too():
    mask = np.array([[True, False]])
    x = np.ones((1, 2, 3))
    assert L.Dense(2).compute_mask(x, mask) is mask
    assert L.TimeDistributed(L.Dense(2)).compute_mask(x, mask) is mask
    assert L.Dropout(0.1).compute_mask(x, mask) is mask


# --------------------------------------------------------------------------- dropout


def test_input_dropout_same_mask_every_timestep():
    layer = L.LSTM(3, dropout=0.5, seed=1, return_sequences=True)
    x = np.random.default_rng(0).standard_normal((4, 6, 5)).astype("float32")
    layer.build(x.shape)
    y, cache = layer.forward(x, training=True)
    dp = cache[1]
    assert dp.shape == (4, 5)
    assert set(np.unique(dp)) <= {0.0, 2.0} and 0 < dp.mean() < 2
    expected, _, _ = ops.lstm(x * dp[:, None, :], layer.kernel, layer.recurrent_kernel, layer.bias)
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    # Inference ignores dropout.
    np.testing.assert_allclose(layer(x), ops.lstm(x, layer.kernel, layer.recurrent_kernel,
                                                  layer.bias)[0], rtol=1e-6)


def test_dropout_layer_scales_kept_values():
    layer = L.Dropout(0.25, seed=0)
    x = np.ones((200, 50), "float32")
    y = layer(x, training=True)
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.02
    np.testing.assert_array_equal(layer(x), x)


@pytest.mark.parametrize("make", [
    lambda: L.LSTM(3, return_sequences=True, dtype="float64"),
    lambda: L.GRU(3, return_sequences=True, dtype="float64"),
    lambda: L.GRU(3, reset_after=False, return_sequences=True, dtype="float64"),
    lambda: L.SimpleRNN(3, return_sequences=True, go_backwards=True, dtype="float64"),
], ids=["lstm", "gru", "gru_reset_before", "simple_rnn"])
def test_recurrent_dropout_loop_matches_fused_kernel_with_unit_masks(make):
    """With all-ones masks the per-step loop must equal crnn.ops, forward and backward."""
    layer = make()
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 2))
    layer.build(x.shape)
    if layer.use_bias:
        layer.bias[...] = rng.uniform(-0.5, 0.5, layer.bias.shape)
    init = [rng.standard_normal((3, 3)) for _ in range(layer._n_states)]
    mask = np.array([[1, 1, 0, 1], [0, 1, 1, 1], [1, 1, 1, 1]], bool)
    n_masks = 1 if layer._cell == "simple_rnn" else layer._gates
    ones_x = [np.ones((3, 2))] * n_masks
    ones_h = [np.ones((3, 3))] * n_masks
    loop = _DropoutLoop(layer, x, init, mask, ones_x, ones_h)
    out, states, cache = layer._op(x, init, mask, True)
    np.testing.assert_allclose(loop.outputs, out, rtol=1e-12, atol=1e-12)
    for a, b in zip(loop.states, states):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    d_out = rng.standard_normal(out.shape)
    d_states = [rng.standard_normal((3, 3)) for _ in states]
    g_loop = loop.backward(d_out, d_states)
    g_ops = layer._op_grad(cache, d_out, d_states)
    for name in ("dx", "d_kernel", "d_recurrent_kernel", "d_bias"):
        np.testing.assert_allclose(getattr(g_loop, name), getattr(g_ops, name), rtol=1e-9,
                                   atol=1e-12)
    for a, b in zip(g_loop.d_initial_state, g_ops.d_initial_state):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("make", [
    lambda: L.LSTM(3, dropout=0.3, recurrent_dropout=0.4, seed=5, dtype="float64"),
    lambda: L.GRU(3, recurrent_dropout=0.4, seed=5, return_sequences=True, dtype="float64"),
    lambda: L.GRU(3, recurrent_dropout=0.4, reset_after=False, seed=5, dtype="float64"),
    lambda: L.SimpleRNN(3, dropout=0.2, recurrent_dropout=0.4, seed=5, dtype="float64"),
], ids=["lstm", "gru", "gru_reset_before", "simple_rnn"])
def test_recurrent_dropout_gradients_by_finite_differences(make):
    layer = make()
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4, 2))
    layer.build(x.shape)
    n_masks = 1 if layer._cell == "simple_rnn" else layer._gates
    masks_x = [(rng.random((3, 2)) > 0.3) / 0.7 for _ in range(n_masks)]
    masks_h = [(rng.random((3, 3)) > 0.4) / 0.6 for _ in range(n_masks)]
    assert any((m == 0).any() for m in masks_h)
    r = rng.standard_normal((3, 4, 3))

    def loss():
        return float(np.sum(r * _DropoutLoop(layer, x, None, None, masks_x, masks_h).outputs))

    grads = _DropoutLoop(layer, x, None, None, masks_x, masks_h).backward(r)
    eps = 1e-6
    for target, grad in [(layer.kernel, grads.d_kernel), (layer.recurrent_kernel,
                         grads.d_recurrent_kernel), (layer.bias, grads.d_bias), (x, grads.dx)]:
        flat = target.reshape(-1)
        for index in rng.choice(flat.size, min(5, flat.size), replace=False):
            saved = flat[index]
            flat[index] = saved + eps
            plus = loss()
            flat[index] = saved - eps
            minus = loss()
            flat[index] = saved
            assert abs((plus - minus) / (2 * eps) - grad.reshape(-1)[index]) < 1e-6


def test_recurrent_dropout_in_training_only_and_seeded():
    def run():
        layer = L.LSTM(4, recurrent_dropout=0.5, seed=3)
        crnn.utils.set_random_seed(0)
        layer.build((2, 5, 3))
        x = np.ones((2, 5, 3), "float32")
        return layer, layer(x, training=True), layer(x)
    layer, train_a, infer = run()
    _, train_b, _ = run()
    np.testing.assert_array_equal(train_a, train_b)
    assert not np.allclose(train_a, infer)
    np.testing.assert_allclose(infer, ops.lstm(np.ones((2, 5, 3), "float32"), layer.kernel,
                                               layer.recurrent_kernel, layer.bias)[0][:, -1], rtol=1e-6)


# --------------------------------------------------------------------------- states & calls


def test_return_state_and_initial_state():
    layer = L.LSTM(3, return_state=True, return_sequences=True)
    x = np.random.default_rng(0).standard_normal((2, 4, 2)).astype("float32")
    seq, h, c = layer(x)
    np.testing.assert_array_equal(seq[:, -1], h)
    init = [np.full((2, 3), 0.5, "float32"), np.full((2, 3), -0.5, "float32")]
    seq2, h2, c2 = layer(x, initial_state=init)
    ref, (rh, rc), _ = ops.lstm(x, layer.kernel, layer.recurrent_kernel, layer.bias, init)
    np.testing.assert_allclose(seq2, ref, rtol=1e-6)
    np.testing.assert_allclose(c2, rc, rtol=1e-6)
    with pytest.raises(ValueError, match=r"initial_state\[1\].*\(2, 3\)"):
        layer(x, initial_state=[init[0], np.zeros((2, 4))])


def test_bidirectional_return_state_and_weight_order():
    layer = L.Bidirectional(L.GRU(2, return_state=True))
    x = np.random.default_rng(0).standard_normal((3, 4, 2)).astype("float32")
    out, h_f, h_b = layer(x)
    assert out.shape == (3, 4) and h_f.shape == (3, 2)
    np.testing.assert_array_equal(out[:, :2], h_f)
    np.testing.assert_array_equal(out[:, 2:], h_b)
    assert layer.weights[0] is layer.forward_layer.kernel
    assert layer.weights[3] is layer.backward_layer.kernel
    assert layer.backward_layer.go_backwards and not layer.forward_layer.go_backwards
    assert layer.forward_layer.name.startswith("forward_")


def test_stateful_layer_without_batch_size_fails_at_build():
    layer = L.LSTM(3, stateful=True)
    with pytest.raises(ValueError, match=r"batch_input_shape=\(batch_size, timesteps, features\)"):
        layer.build((None, 5, 2))
    with pytest.raises(ValueError, match="batch_size=batch_size"):
        crnn.Sequential([L.GRU(3, stateful=True, input_shape=(5, 2))])


def test_layer_reset_states_explicit_values_checked():
    layer = L.LSTM(3, stateful=True)
    layer.build((2, 4, 1))
    x = np.ones((2, 4, 1), "float32")
    layer(x)
    assert np.abs(layer.states[0]).sum() > 0
    layer.reset_states()
    assert not np.any(layer.states[0]) and not np.any(layer.states[1])
    h = np.full((2, 3), 0.3, "float32")
    c = np.full((2, 3), -0.2, "float32")
    layer.reset_states([h, c])
    expected = ops.lstm(x, layer.kernel, layer.recurrent_kernel, layer.bias, [h, c])[0][:, -1]
    np.testing.assert_allclose(layer(x), expected, rtol=1e-6)
    with pytest.raises(ValueError, match=r"states\[0\].*must have shape \(2, 3\).*\(4, 3\)"):
        layer.reset_states([np.zeros((4, 3)), c])
    with pytest.raises(ValueError, match="list of 2 array"):
        layer.reset_states([h])
    with pytest.raises(ValueError, match="declared with batch size 2.*received a batch of 3"):
        layer(np.ones((3, 4, 1)))
    with pytest.raises(AttributeError, match="not stateful"):
        L.GRU(2).reset_states()


# --------------------------------------------------------------------------- argument errors


@pytest.mark.parametrize("make, match", [
    (lambda: L.LSTM(0), "units must be a positive int, received 0"),
    (lambda: L.GRU(3.5), "units must be a positive int"),
    (lambda: L.LSTM(3, activation="softmax"), "activation must be one of"),
    (lambda: L.LSTM(3, recurrent_activation="tanh"), "recurrent_activation must be one of"),
    (lambda: L.SimpleRNN(3, dropout=1.5), r"dropout must be a float in \[0, 1\), received 1.5"),
    (lambda: L.GRU(3, recurrent_dropout=-0.1), "recurrent_dropout must be a float"),
    (lambda: L.Dense(3, activaton="relu"), r"unexpected keyword argument\(s\) \['activaton'\]"),
    (lambda: L.Dense(2, activation="nope"), "activation must be one of"),
    (lambda: L.Dropout(1.0), "rate must be a float"),
    (lambda: L.Bidirectional(L.Dense(2)), "must be an LSTM, GRU or SimpleRNN"),
    (lambda: L.Bidirectional(L.LSTM(2), merge_mode="max"), "merge_mode must be one of"),
    (lambda: L.Embedding(0, 3), "input_dim must be a positive int"),
    (lambda: crnn.Input(), "Input needs a shape"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_argument_errors(make, match):
    with pytest.raises((ValueError, TypeError, NotImplementedError), match=match):
        make()


def test_call_errors_name_the_shapes():
    layer = L.LSTM(2)
    layer.build((None, 3, 4))
    with pytest.raises(ValueError, match=r"\(batch, timesteps, 4\), received shape \(1, 3, 5\)"):
        layer(np.ones((1, 3, 5)))
    emb = L.Embedding(4, 2)
    with pytest.raises(ValueError, match=r"indices must be in \[0, 3\].*from 0 to 7"):
        emb(np.array([[0, 7]]))
    with pytest.raises(ValueError, match=r"3-D input.*\(None, 4\)"):
        L.GRU(2).build((None, 4))
    dense = L.Dense(2)
    dense.build((None, 3))
    with pytest.raises(ValueError, match="weight 0 .* must have shape \\(3, 2\\)"):
        dense.set_weights([np.zeros((2, 2)), np.zeros(2)])
    with pytest.raises(ValueError, match="mask for layer"):
        layer(np.ones((1, 3, 4)), mask=np.ones((1, 2), bool))
