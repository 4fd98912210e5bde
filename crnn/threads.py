"""Threads of the BLAS that crnn's kernels call: SciPy's bundled OpenBLAS.

crnn's kernels call BLAS through ``scipy.linalg.cython_blas``, so SciPy's OpenBLAS thread
pool is crnn's. Its size follows ``OPENBLAS_NUM_THREADS`` (read at import),
``threadpoolctl.threadpool_limits``, or ``crnn.set_num_threads``.

The kernels ask for it on every call: with one thread, each timestep's recurrent product
runs in crnn's own packed kernel; with more, large products go to the threaded BLAS.

Example:
    >>> import crnn
    >>> crnn.set_num_threads(1)
    >>> crnn.get_num_threads()
    1
"""

import ctypes
import glob
import os

import scipy

__all__ = ["get_num_threads", "set_num_threads"]

_NAMES = ("scipy_openblas", "openblas")   # symbol prefixes: SciPy >= 1.13 wheels, older
_library = None


def _openblas():
    """(get, set) functions of SciPy's OpenBLAS, or None when SciPy uses another BLAS."""
    global _library
    if _library is None:
        _library = False
        site = os.path.dirname(os.path.dirname(scipy.__file__))
        for path in sorted(glob.glob(os.path.join(site, "scipy.libs", "*openblas*.so*"))):
            lib = ctypes.CDLL(path)
            for prefix in _NAMES:
                get = getattr(lib, f"{prefix}_get_num_threads", None)
                set_ = getattr(lib, f"{prefix}_set_num_threads", None)
                if get is not None and set_ is not None:
                    get.restype = ctypes.c_int
                    set_.argtypes = [ctypes.c_int]
                    _library = (get, set_)
                    return _library
    return _library or None


def get_num_threads():
    """The number of threads crnn's BLAS uses (1 if it cannot be read)."""
    functions = _openblas()
    return max(1, functions[0]()) if functions else 1


def set_num_threads(n):
    """Set the number of threads of crnn's BLAS (SciPy's OpenBLAS), for this process.

    Args:
        n: a positive int.

    Raises:
        ValueError: if ``n`` is not a positive int.
        RuntimeError: if SciPy does not use a bundled OpenBLAS (use threadpoolctl then).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, received {n!r}")
    functions = _openblas()
    if not functions:
        raise RuntimeError(
            "SciPy's BLAS is not a bundled OpenBLAS, so crnn cannot set its threads; "
            "use threadpoolctl.threadpool_limits(n) instead")
    functions[1](n)
