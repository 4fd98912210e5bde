"""The compiled scatter-add of gradient rows (crnn._kernels._cells.add_rows, through
crnn.optimizers._add_rows): np.add.at's sums in np.add.at's order, bit for bit."""

import numpy as np
import pytest

from crnn import layers, optimizers
from crnn._kernels import _cells
from crnn.optimizers import IndexedSlices, _add_rows

DTYPES = [np.float32, np.float64]


def _case(dtype, rows=5120, n=201, d=32, seed=0):
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, n, rows)
    indices[rng.random(rows) < 0.3] = 7          # one row hit many times
    values = rng.standard_normal((rows, d)).astype(dtype)
    start = rng.standard_normal((n, d)).astype(dtype)
    return start, indices, values


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_add_rows_is_np_add_at_bit_for_bit(dtype, index_dtype):
    start, indices, values = _case(dtype)
    indices = indices.astype(index_dtype)
    expected = start.copy()
    np.add.at(expected, indices, values)
    got = start.copy()
    _add_rows(got, indices, values)
    assert np.array_equal(got.view(np.uint8), expected.view(np.uint8))
    # the kernel itself, called directly
    direct = start.copy()
    _cells.add_rows(direct, indices.astype(np.intp), values)
    assert np.array_equal(direct.view(np.uint8), expected.view(np.uint8))


@pytest.mark.parametrize("dtype", DTYPES)
def test_subtracting_through_negated_rows_is_np_subtract_at(dtype):
    start, indices, values = _case(dtype, seed=1)
    expected = start.copy()
    np.subtract.at(expected, indices, values)
    got = start.copy()
    _add_rows(got, indices, -values)
    assert np.array_equal(got.view(np.uint8), expected.view(np.uint8))


def test_out_of_range_index_raises_and_writes_nothing():
    start, indices, values = _case(np.float32, rows=50, n=10, d=4)
    indices[-1] = 10
    out = start.copy()
    with pytest.raises(IndexError, match=r"indices\[49\] = 10 is out of range for 10 rows"):
        _cells.add_rows(out, indices.astype(np.intp), values)
    assert np.array_equal(out, start)
    with pytest.raises(IndexError):
        _add_rows(out, indices, values)          # np.add.at's own error
    assert np.array_equal(out, start)


def test_wrong_values_shape_raises_before_writing():
    start, indices, values = _case(np.float64, rows=20, n=10, d=4)
    out = start.copy()
    with pytest.raises(ValueError, match="values must have shape"):
        _cells.add_rows(out, indices.astype(np.intp), values[:, :3].copy())
    assert np.array_equal(out, start)


@pytest.mark.parametrize("case", ["negative", "strided", "mixed_dtype", "one_dim", "empty"])
def test_other_inputs_keep_np_add_at_semantics(case):
    start, indices, values = _case(np.float64, rows=60, n=10, d=4, seed=2)
    out = start.copy()
    if case == "negative":
        indices = indices - 10                   # np.add.at wraps negative indices
    elif case == "strided":
        out = np.asfortranarray(out)
    elif case == "mixed_dtype":
        values = values.astype(np.float32)
    elif case == "one_dim":
        out, values = out[:, 0].copy(), values[:, 0].copy()
    else:
        indices, values = indices[:0], values[:0]
    expected = out.copy()
    np.add.at(expected, indices, values)
    _add_rows(out, indices, values)
    assert np.array_equal(out, expected)


@pytest.mark.parametrize("sparse_gradient", [False, True])
def test_embedding_gradient_matches_np_add_at(sparse_gradient):
    layer = layers.Embedding(50, 8, sparse_gradient=sparse_gradient)
    layer.build((4, 30))
    rng = np.random.default_rng(3)
    tokens = rng.integers(0, 50, (4, 30))
    _, cache = layer.forward(tokens)
    d_out = rng.standard_normal((4, 30, 8)).astype(np.float32)
    _, grads = layer.backward(cache, d_out, need_dx=False)
    expected = np.zeros((50, 8), np.float32)
    np.add.at(expected, tokens.reshape(-1), d_out.reshape(-1, 8))
    got = grads[0].to_dense() if sparse_gradient else grads[0]
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("make", [
    lambda: optimizers.SGD(learning_rate=0.1),
    lambda: optimizers.SGD(learning_rate=0.1, momentum=0.9),
    lambda: optimizers.RMSprop(learning_rate=0.01),
    lambda: optimizers.Adagrad(learning_rate=0.1),
    lambda: optimizers.Adam(learning_rate=0.01),
])
def test_sparse_updates_match_their_np_at_forms(make):
    # The same sparse gradient through each optimizer, against the dense update of the
    # rows np.add.at sums (TensorFlow's scatter semantics are pinned by the golden tests;
    # here: the rows path equals what it computed before, through np.add.at).
    rng = np.random.default_rng(4)
    param = rng.standard_normal((12, 3)).astype(np.float32)
    indices = np.array([1, 5, 1, 11, 5, 1, 0])
    values = rng.standard_normal((7, 3)).astype(np.float32)
    fast, slow = param.copy(), param.copy()
    opt_fast, opt_slow = make(), make()
    opt_fast.apply([fast], [IndexedSlices(values, indices, param.shape)])
    original = optimizers._add_rows
    try:
        optimizers._add_rows = lambda out, idx, vals: np.add.at(out, idx, vals)
        opt_slow.apply([slow], [IndexedSlices(values, indices, param.shape)])
    finally:
        optimizers._add_rows = original
    assert np.array_equal(fast, slow)
    assert not np.array_equal(fast, param)
