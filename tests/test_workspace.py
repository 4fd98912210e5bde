"""The kernels' workspace pool (crnn/_kernels/_workspace.py): a buffer is handed out again
only when no array uses it, and results of earlier calls never change under later ones."""

import gc

import numpy as np
import pytest

from crnn import ops
from crnn._kernels import _workspace


def _address(a):
    return a.__array_interface__["data"][0]


def test_small_arrays_come_from_numpy():
    a = _workspace.empty((4, 4), np.float32)
    assert a.shape == (4, 4) and a.dtype == np.float32 and a.flags.c_contiguous


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_buffer_reused_only_when_free(dtype):
    _workspace.clear()        # no free buffer of this size from earlier tests
    shape = (300, 100)
    a = _workspace.empty(shape, dtype)
    assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous
    assert _address(a) % 64 == 0
    first = _address(a)
    view = a[10:]
    del a
    b = _workspace.empty(shape, dtype)
    assert _address(b) != first          # the view still uses the first buffer
    del view, b
    gc.collect()
    c = _workspace.empty(shape, dtype)
    d = _workspace.empty(shape, dtype)
    assert first in (_address(c), _address(d))
    assert _address(c) != _address(d)    # two live arrays never share memory


def test_memoryview_and_int_shape_hold_their_buffer():
    _workspace.clear()
    a = _workspace.empty(40000, np.float32)
    assert a.shape == (40000,)
    first = _address(a)
    m = memoryview(a)
    del a
    b = _workspace.empty(40000, np.float32)
    assert _address(b) != first
    del m, b


def test_a_small_request_does_not_take_a_large_buffer():
    _workspace.clear()
    big = _workspace.empty((1000, 1000), np.float32)
    address = _address(big)
    del big
    small = _workspace.empty((100, 200), np.float32)   # 80 kB: pooled, but not in 4 MB
    assert _address(small) != address


def test_clear_and_cap(monkeypatch):
    _workspace.clear()
    held = _workspace.pooled_bytes()
    monkeypatch.setattr(_workspace, "MAX_POOLED_BYTES", held + (1 << 20))
    keep = [_workspace.empty((512, 512), np.float32) for _ in range(3)]   # 1 MiB each
    # beyond the cap: plain NumPy arrays, not pooled
    assert _workspace.pooled_bytes() <= held + (1 << 20)
    assert all(k.shape == (512, 512) for k in keep)
    del keep
    _workspace.clear()
    assert _workspace.pooled_bytes() <= held


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
def test_kernel_results_survive_later_calls(cell):
    # outputs, saved activations and gradients of one call are not overwritten by the next
    rng = np.random.default_rng(1)
    B, T, F, U = 8, 40, 16, 64
    G = {"lstm": 4, "gru": 3, "simple_rnn": 1}[cell] * U
    x = rng.standard_normal((B, T, F)).astype(np.float32)
    W = (rng.standard_normal((F, G)) * 0.2).astype(np.float32)
    R = (rng.standard_normal((U, G)) * 0.2).astype(np.float32)
    fwd, grad = getattr(ops, cell), getattr(ops, cell + "_grad")
    out1, _, cache1 = fwd(x, W, R, training=True)
    g1 = grad(cache1, np.ones_like(out1))
    kept = out1.copy(), g1.dx.copy(), g1.d_kernel.copy()
    for _ in range(3):
        out2, _, cache2 = fwd(x * 0.5, W, R, training=True)
        grad(cache2, np.full_like(out2, 2.0))
    np.testing.assert_array_equal(out1, kept[0])
    np.testing.assert_array_equal(g1.dx, kept[1])
    np.testing.assert_array_equal(g1.d_kernel, kept[2])
    # and the first cache still gives the same gradients
    again = grad(cache1, np.ones_like(out1))
    np.testing.assert_array_equal(again.dx, kept[1])


def test_exact_sizes_come_back_among_many_buffers_and_eviction_forgets_them(monkeypatch):
    # a call asks for the sizes of the call before: each gets its own buffer back, found
    # by size among many; evicted buffers are gone from both of the pool's indexes
    _workspace.clear()
    sizes = [(1 << 16) + 64 * i for i in range(40)]
    held = [_workspace.empty(n, np.uint8) for n in sizes]
    addresses = [_address(a) for a in held]
    del held
    gc.collect()
    again = [_workspace.empty(n, np.uint8) for n in reversed(sizes)]
    assert [_address(a) for a in reversed(again)] == addresses
    twice = _workspace.empty(sizes[0], np.uint8)          # its buffer is in use: a new one
    assert _address(twice) not in addresses
    del again, twice
    gc.collect()
    _workspace.clear()
    assert _workspace.pooled_bytes() == 0
    assert not _workspace._buffers and not _workspace._by_size
    fresh = _workspace.empty(sizes[3], np.uint8)
    assert _workspace.pooled_bytes() == sizes[3]
    del fresh
