"""Products by A's non-zeros alone (_smallgemm.h's crnn_sparse_gemm, _blas.pxd's
sparse_gemm): the input projection x @ W and the weight gradient x^T @ dz of a mostly-zero
input (one-hot characters, zero padding). Tested directly through the test hook (against
NumPy, and bit for bit against the packed kernel's dense sums), on the rule that takes it or
declines it, and end to end through every cell, both dtypes, training and inference, the
rows and units splits, against the NumPy reference and a float64 finite difference."""

import numpy as np
import pytest

import crnn
from crnn import ops
from crnn._kernels import _cells, _gru, _lstm
from ops_cases import TOLERANCE, grad_ops, grad_reference, options, run_ops, run_reference

DTYPES = [np.float64, np.float32]
IDS = ["float64", "float32"]


def _one_hot(rng, shape, vocab, dtype):
    x = np.zeros(shape + (vocab,), dtype)
    idx = rng.integers(0, vocab, shape)
    np.put_along_axis(x, idx[..., None], 1.0, axis=-1)
    return x


def _sparse(rng, shape, density, dtype):
    """A random matrix with exactly round(density * size) non-zeros (some negative)."""
    a = np.zeros(shape, dtype)
    count = int(round(density * a.size))
    flat = rng.choice(a.size, count, replace=False)
    a.flat[flat] = rng.standard_normal(count).astype(dtype)
    a.flat[flat[a.flat[flat] == 0]] = 1.0
    return a


def _same(actual, expected):
    """Bit-equal, but for the sign of zeros."""
    return np.array_equal(actual + 0.0, expected + 0.0, equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("m,k,n", [(1, 75, 16), (7, 9, 17), (33, 40, 33), (64, 100, 100),
                                   (130, 75, 512)])
def test_sparse_product_matches_numpy_and_the_dense_kernel(m, k, n, dtype):
    rng = np.random.default_rng(m * 1000 + k + n)
    b = rng.standard_normal((k, n)).astype(dtype)
    for a in (_one_hot(rng, (m,), k, dtype), _sparse(rng, (m, k), 0.1, dtype),
              np.zeros((m, k), dtype)):
        c0 = rng.standard_normal((m, n)).astype(dtype)
        for beta in (0, 1):
            c = c0.copy()
            assert _cells.sparse_gemm(False, a, b, c, dtype(beta)) is True
            expected = a.astype(np.float64) @ b + beta * c0
            np.testing.assert_allclose(c, expected, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])
            # the same fused multiply-adds in the same order as the packed kernel's sums
            dense = c0.copy() if beta else np.zeros_like(c0)
            _cells.packed_gemm(a, b, dense)
            assert _same(c, dense)
            # transposed A: C = a^T @ B2 (the weight gradient x^T @ dz)
            b2 = rng.standard_normal((m, n)).astype(dtype)
            ct0 = rng.standard_normal((k, n)).astype(dtype)
            ct = ct0.copy()
            assert _cells.sparse_gemm(True, a, b2, ct, dtype(beta)) is True
            np.testing.assert_allclose(ct, a.T.astype(np.float64) @ b2 + beta * ct0,
                                       rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])
            dense_t = ct0.copy() if beta else np.zeros_like(ct0)
            _cells.packed_gemm(np.ascontiguousarray(a.T), b2, dense_t)
            assert _same(ct, dense_t)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_sparse_product_declines_a_dense_input_and_leaves_c_alone(dtype):
    rng = np.random.default_rng(1)
    m, k, n = 16, 64, 32
    b = rng.standard_normal((k, n)).astype(dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    limit = m * k // 8                      # CRNN_SPARSE_DENSITY: at most 1 in 8 non-zero
    for count, taken in ((limit, True), (limit + 1, False), (m * k, False)):
        a = _sparse(rng, (m, k), count / (m * k), dtype)
        assert np.count_nonzero(a) == count
        for trans_a, shape in ((False, (m, n)), (True, (k, n))):
            bb = b if not trans_a else rng.standard_normal((m, n)).astype(dtype)
            c = rng.standard_normal(shape).astype(dtype)
            before = c.copy()
            assert _cells.sparse_gemm(trans_a, a, bb, c, dtype(1)) is taken
            if not taken:
                assert np.array_equal(c, before)
    # rows of B narrower than CRNN_SPARSE_MIN_N (16): the dense kernels take it
    c = c0[:, :15].copy()
    assert _cells.sparse_gemm(False, np.zeros((m, k), dtype), b[:, :15].copy(), c,
                              dtype(1)) is False
    assert np.array_equal(c, c0[:, :15])
    with pytest.raises(ValueError, match="beta must be 0 or 1"):
        _cells.sparse_gemm(False, np.zeros((m, k), dtype), b, c0.copy(), dtype(2))
    with pytest.raises(ValueError, match="b must have shape"):
        _cells.sparse_gemm(False, np.zeros((m, k), dtype), b[:-1].copy(), c0.copy(), dtype(1))


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_nan_in_a_counts_as_non_zero_and_propagates(dtype):
    rng = np.random.default_rng(2)
    a = _one_hot(rng, (20,), 40, dtype)
    a[3, 5] = np.nan
    b = rng.standard_normal((40, 32)).astype(dtype)
    c = np.zeros((20, 32), dtype)
    assert _cells.sparse_gemm(False, a, b, c, dtype(0)) is True
    assert np.isnan(c[3]).all() and not np.isnan(np.delete(c, 3, axis=0)).any()
    # the whole-product entry takes the same path: same result
    whole = np.zeros((20, 32), dtype)
    _cells.whole_gemm(False, False, a, b, whole, dtype(0))
    assert _same(whole, c)


def _one_hot_problem(cell, rng, batch, timesteps, vocab, units, dtype, masked=False):
    gates = {"lstm": 4, "gru": 3, "simple_rnn": 1}[cell] * units
    mask = None
    if masked:
        mask = rng.random((batch, timesteps)) > 0.35
        mask[0, :2] = False
    x = _one_hot(rng, (batch, timesteps), vocab, dtype)
    x[-1, : timesteps // 2] = 0.0            # a zero-padded sample
    return dict(
        x=x,
        kernel=(rng.standard_normal((vocab, gates)) * 0.3).astype(dtype),
        recurrent_kernel=(rng.standard_normal((units, gates)) / np.sqrt(units)).astype(dtype),
        bias=(rng.standard_normal((2, gates) if cell == "gru" else (gates,)) * 0.3
              ).astype(dtype),
        initial_state=[rng.standard_normal((batch, units)).astype(dtype)
                       for _ in range(2 if cell == "lstm" else 1)],
        mask=mask,
    )


def _close(actual, expected, dtype, what):
    scale = max(1.0, float(np.abs(expected).max()))
    err = float(np.abs(np.asarray(actual) - expected).max()) / scale
    assert err <= TOLERANCE[dtype], f"{what}: relative error {err:.3g}"


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
@pytest.mark.parametrize("threads", [1, 2])
def test_one_hot_input_forward_and_gradients_match_reference(cell, dtype, threads):
    previous = crnn.get_num_threads()
    crnn.set_num_threads(threads)
    try:
        for i, (batch, timesteps, vocab, units, masked) in enumerate(
                [(1, 7, 75, 16, False), (5, 9, 40, 17, True), (33, 12, 64, 37, False),
                 (64, 20, 75, 64, True)]):
            rng = np.random.default_rng(10 * i + threads)
            problem = _one_hot_problem(cell, rng, batch, timesteps, vocab, units, dtype, masked)
            for go_backwards in (False, True):
                opts = options(cell, go_backwards=go_backwards)
                what = f"{cell} {batch}x{timesteps}x{vocab}x{units} go_backwards={go_backwards}"
                outputs, states, cache = run_ops(cell, problem, opts, training=True)
                ref_outputs, ref_states, tape = run_reference(cell, problem, opts)
                _close(outputs, ref_outputs, dtype, what + " outputs")
                inference, _, _ = run_ops(cell, problem, opts, training=False)
                _close(inference, ref_outputs, dtype, what + " inference outputs")
                d_outputs = rng.standard_normal(outputs.shape).astype(dtype)
                d_states = [rng.standard_normal(s.shape).astype(dtype) for s in states]
                grads = grad_ops(cell, cache, d_outputs, d_states)
                ref = grad_reference(cell, tape, d_outputs, d_states)
                _close(grads.d_kernel, ref["d_kernel"], dtype, what + " d_kernel")
                _close(grads.dx, ref["dx"], dtype, what + " dx")
                _close(grads.d_recurrent_kernel, ref["d_recurrent_kernel"], dtype,
                       what + " d_recurrent_kernel")
    finally:
        crnn.set_num_threads(previous)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_one_hot_input_through_the_units_split_equals_one_thread(cell, dtype):
    rng = np.random.default_rng(3)
    problem = _one_hot_problem(cell, rng, 3, 6, 75, 40, dtype)
    act, ract = ops.ACTIVATIONS["tanh"], ops.ACTIVATIONS["sigmoid"]
    mask = np.ones((1, 1), np.uint8)
    x, w, r, b, s = (problem[k] for k in ("x", "kernel", "recurrent_kernel", "bias",
                                           "initial_state"))
    runs = []
    for parts in (1, 3):
        if cell == "lstm":
            out = _lstm.lstm_forward(x, w, r, b, mask, False, False, act, ract, s[0], s[1],
                                     False, n_threads=parts, split_units=parts)
        else:
            out = _gru.gru_forward(x, w, r, b.reshape(-1), mask, False, False, act, ract,
                                   True, s[0], False, n_threads=parts, split_units=parts)
        runs.append(out[0])
    assert np.array_equal(runs[0], runs[1])
    ref_outputs, _, _ = run_reference(cell, problem, options(cell))
    _close(runs[1], ref_outputs, dtype, f"{cell} units split")


def test_one_hot_kernel_gradient_matches_finite_differences():
    rng = np.random.default_rng(4)
    problem = _one_hot_problem("lstm", rng, 4, 6, 30, 8, np.float64)
    weights = rng.standard_normal((4, 6, 8))

    def loss(kernel):
        outputs, _, _ = ops.lstm(problem["x"], kernel, problem["recurrent_kernel"],
                                 problem["bias"], problem["initial_state"])
        return float((outputs * weights).sum())

    _, _, cache = ops.lstm(problem["x"], problem["kernel"], problem["recurrent_kernel"],
                           problem["bias"], problem["initial_state"], training=True)
    d_kernel = ops.lstm_grad(cache, weights).d_kernel
    eps = 1e-6
    for row, col in [(int(np.argmax(problem["x"][0, 0])), 3), (0, 0), (29, 31), (7, 12)]:
        plus, minus = problem["kernel"].copy(), problem["kernel"].copy()
        plus[row, col] += eps
        minus[row, col] -= eps
        numeric = (loss(plus) - loss(minus)) / (2 * eps)
        assert abs(numeric - d_kernel[row, col]) <= 1e-6 * max(1.0, abs(numeric))


def test_stream_pool_steps_one_hot_inputs_like_the_whole_sequence():
    """StreamPool's batched step projects its rows through the whole-product entry (the
    mostly-zero path for one-hot rows): stepping N streams T times gives what the NumPy
    reference gives for the N whole sequences."""
    from crnn import layers as L
    from crnn import reference
    from crnn.streaming import StreamPool

    vocab, n_streams, timesteps = 40, 37, 6
    crnn.utils.set_random_seed(5)
    model = crnn.Sequential([L.LSTM(16, batch_input_shape=(None, None, vocab)),
                             L.Dense(3)])
    rng = np.random.default_rng(5)
    model.set_weights([w + 0.3 * rng.standard_normal(w.shape) for w in model.get_weights()])
    x = _one_hot(rng, (n_streams, timesteps), vocab, np.float32)
    x[3] = 0.0                                   # a stream fed all-zero steps
    pool = StreamPool(model, capacity=n_streams)
    ids = [pool.open() for _ in range(n_streams)]
    for t in range(timesteps):
        ys = pool.step(ids, x[:, t])
    kernel, recurrent_kernel, bias, dense_kernel, dense_bias = model.get_weights()
    zeros = np.zeros((n_streams, 16), np.float64)
    _, (h, _), _ = reference.lstm_forward(x.astype(np.float64), kernel.astype(np.float64),
                                          recurrent_kernel.astype(np.float64),
                                          bias.astype(np.float64), [zeros, zeros])
    np.testing.assert_allclose(ys, h @ dense_kernel + dense_bias, rtol=1e-5, atol=1e-5)
