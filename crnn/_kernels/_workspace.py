"""Reused memory for the kernels' large arrays (gates, saved states, gradients, outputs).

Why: an array of more than 128 KiB comes from ``mmap`` (glibc's default threshold), so
each call that allocates one pays a page fault per 4 KiB page, and the kernel's zeroing of
it, the first time it is written. For LSTM training at (32, 50, 16, 64) that was 3/4 of the
forward pass (1.7 ms against 0.46 ms with the pages kept, on an AVX-512 core; the
same S2 row of ``python bench/run.py --only kernels --sizes S2`` went from 2.30x to
0.79-0.81x PyTorch's time, bench/RESULTS.md). So
the kernels take their large arrays from here: a pool of buffers, each handed out as a view,
and free again once no array uses it (NumPy's views keep their base alive, so the buffer's
reference count tells). This is what PyTorch's caching allocator does for GPU memory.

At most ``MAX_POOLED_BYTES`` are kept; beyond that, arrays come from ``np.empty`` as usual.
``clear()`` gives the free buffers back. Buffers start at 64-byte boundaries (one cache line,
one AVX-512 vector).
"""

import collections
import math
import sys
import threading

import numpy as np

__all__ = ["empty", "clear", "pooled_bytes"]

# Smaller arrays come from malloc's heap, which keeps its pages: no gain from pooling.
MIN_BYTES = 1 << 16
# The most this pool keeps (in use and free together).
MAX_POOLED_BYTES = 1 << 28
_ALIGN = 64
# Item sizes of the dtypes the kernels ask for, as they name them.
_ITEMSIZE = {np.float32: 4, np.float64: 8, np.dtype(np.float32): 4, np.dtype(np.float64): 8}

_lock = threading.Lock()
# Entries (raw buffer, 64-byte-aligned view of its usable bytes) by id, least recently used
# first, and the same entries by their usable size: a call asks for the sizes of the call
# before, so the exact size is looked up first (a scan of every entry per array took ~10 us
# with a pool of a few dozen buffers: 15% of LSTM training at (32, 50, 16, 64)).
# Every array handed out has the raw buffer as its ``base`` (NumPy points views at the
# owner of the memory), so an entry is free when nothing but the entry itself and its
# aligned view refers to the raw buffer.
_buffers = collections.OrderedDict()
_by_size = {}
_total = 0


def _entry(nbytes):
    raw = np.empty(nbytes + _ALIGN, np.uint8)
    offset = -raw.ctypes.data % _ALIGN
    return (raw, raw[offset:offset + nbytes])


def _refs(entry):
    return sys.getrefcount(entry[0])


# _refs of an entry that nothing outside the pool uses.
_FREE = _refs(_entry(_ALIGN))


def _is_free(entry):
    return _refs(entry) == _FREE


def empty(shape, dtype):
    """An uninitialized C-contiguous array like ``np.empty(shape, dtype)``, whose memory
    is reused from an earlier call when an equal or slightly larger free buffer exists."""
    if type(shape) is not tuple:
        shape = (int(shape),)
    itemsize = _ITEMSIZE.get(dtype)
    if itemsize is None:
        dtype = np.dtype(dtype)
        itemsize = dtype.itemsize
    nbytes = math.prod(shape) * itemsize
    if nbytes < MIN_BYTES:
        return np.empty(shape, dtype)
    dtype = np.dtype(dtype)
    global _total
    with _lock:
        chosen = None
        for entry in _by_size.get(nbytes, ()):
            if _is_free(entry):
                chosen = entry
                break
        if chosen is None:
            for entry in _buffers.values():
                # a buffer at most twice the size asked for (a small array must not hold
                # a large buffer), the smallest such
                size = entry[1].nbytes
                if nbytes <= size <= 2 * nbytes and _is_free(entry) \
                        and (chosen is None or size < chosen[1].nbytes):
                    chosen = entry
        if chosen is not None:
            _buffers.move_to_end(id(chosen))
            return chosen[1][:nbytes].view(dtype).reshape(shape)
        if _total + nbytes > MAX_POOLED_BYTES:
            _evict(_total + nbytes - MAX_POOLED_BYTES)
            if _total + nbytes > MAX_POOLED_BYTES:
                return np.empty(shape, dtype)
        entry = _entry(nbytes)
        _buffers[id(entry)] = entry
        _by_size.setdefault(nbytes, []).append(entry)
        _total += nbytes
        return entry[1].view(dtype).reshape(shape)


def _evict(nbytes):
    """Drop free buffers, least recently used first, until ``nbytes`` are gone (or none
    is free). Called with the lock held."""
    global _total
    for key in list(_buffers):
        if nbytes <= 0:
            break
        entry = _buffers[key]
        if _is_free(entry):
            del _buffers[key]
            size = entry[1].nbytes
            same = _by_size[size]
            same[:] = [e for e in same if e is not entry]
            if not same:
                del _by_size[size]
            _total -= size
            nbytes -= size


def clear():
    """Give back every free buffer (those still in use stay until they are free)."""
    with _lock:
        _evict(MAX_POOLED_BYTES + 1)


def pooled_bytes():
    """Bytes held by the pool now, in use and free."""
    return _total
