"""Threads of the BLAS libraries crnn runs: SciPy's OpenBLAS and NumPy's own OpenBLAS.

crnn's kernels call BLAS through ``scipy.linalg.cython_blas``, so SciPy's OpenBLAS thread
pool is the kernels'. The layers around them (``Dense``, losses, optimizers) run NumPy,
whose wheels bundle a *separate* OpenBLAS with its own pool. Two pools of n threads each on
n cores fight; so ``crnn.set_num_threads(n)`` is one budget: it sets both pools. Each pool's
size otherwise follows ``OPENBLAS_NUM_THREADS`` (read at import) or
``threadpoolctl.threadpool_limits``.

The kernels ask for SciPy's pool size on every call: with one thread, every product runs
in crnn's own packed kernels (the per-step products always; the whole-sequence products,
input projection and gradients, when :func:`use_own_gemm` says they beat the loaded BLAS
kernel); with more, large products go to the threaded BLAS.

Where the pools are found: the OpenBLAS libraries that SciPy's and NumPy's wheels bundle
(``scipy.libs``/``numpy.libs`` on Linux and Windows, ``.dylibs`` inside the package on
macOS), by their exported ``*_get_num_threads``/``*_set_num_threads`` functions. Where none
is found (a SciPy built on MKL or Accelerate, a system BLAS), :func:`get_num_threads`
returns 1 and :func:`set_num_threads` raises ``RuntimeError`` (use threadpoolctl then).

Example:
    >>> import crnn
    >>> crnn.set_num_threads(1)
    >>> crnn.get_num_threads()
    1
"""

import ctypes
import glob
import os

import numpy
import scipy

__all__ = ["blas_info", "get_num_threads", "set_num_threads", "use_own_gemm"]

# Exported names: SciPy >= 1.13 / NumPy >= 2 wheels (scipy_openblas, 64-bit-int builds with
# a "64_" suffix), older wheels (openblas).
_PREFIXES = ("scipy_openblas", "openblas")
_SUFFIXES = ("", "64_")
# OpenBLAS kernels for AVX-512 cores, which beat crnn's own kernel on whole products.
_AVX512_CORES = ("skylakex", "cooperlake", "sapphirerapids")
_pools = None
_own_gemm = None


class _Pool:
    """One OpenBLAS library: its thread-count functions and its kernel's name."""

    def __init__(self, path, get, set_, corename):
        self.path = path
        self.get = get
        self.set = set_
        self.corename = corename


def _library_files(package):
    base = os.path.dirname(package.__file__)
    site = os.path.dirname(base)
    name = package.__name__
    patterns = [os.path.join(site, f"{name}.libs", "*openblas*"),    # Linux, Windows
                os.path.join(base, ".dylibs", "*openblas*")]          # macOS
    files = []
    for pattern in patterns:
        files.extend(sorted(glob.glob(pattern)))
    return [f for f in files if f.endswith((".so", ".dylib", ".dll")) or ".so." in f]


def _open(path):
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    for prefix in _PREFIXES:
        for suffix in _SUFFIXES:
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            set_ = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is None or set_ is None:
                continue
            get.restype = ctypes.c_int
            set_.argtypes = [ctypes.c_int]
            corename = getattr(lib, f"{prefix}_get_corename{suffix}", None)
            name = None
            if corename is not None:
                corename.restype = ctypes.c_char_p
                name = (corename() or b"").decode("ascii", "replace") or None
            return _Pool(path, get, set_, name)
    return None


def _find_pools():
    """{"scipy": _Pool, "numpy": _Pool} for the bundled OpenBLAS libraries found."""
    global _pools
    if _pools is None:
        found = {}
        for package in (scipy, numpy):
            for path in _library_files(package):
                pool = _open(path)
                if pool is not None:
                    found[package.__name__] = pool
                    break
        _pools = found
    return _pools


def get_num_threads():
    """The number of threads crnn's kernels use: SciPy's OpenBLAS pool (1 if not found).

    Returns:
        A positive int.
    """
    pool = _find_pools().get("scipy")
    return max(1, pool.get()) if pool else 1


def set_num_threads(n):
    """Set crnn's thread budget: SciPy's OpenBLAS pool (the kernels') and NumPy's OpenBLAS
    pool (Dense layers, losses), for this process.

    Args:
        n: a positive int.

    Raises:
        ValueError: if ``n`` is not a positive int.
        RuntimeError: if SciPy does not use a bundled OpenBLAS (use threadpoolctl then).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, received {n!r}")
    pools = _find_pools()
    if "scipy" not in pools:
        raise RuntimeError(
            "SciPy's BLAS is not a bundled OpenBLAS, so crnn cannot set its threads; "
            "use threadpoolctl.threadpool_limits(n) instead")
    for pool in pools.values():
        pool.set(n)


def blas_info():
    """The OpenBLAS libraries found, for reports: ``{"scipy": {...}, "numpy": {...}}``,
    each with ``path``, ``corename`` (the loaded kernel, e.g. "SkylakeX" or "Haswell") and
    ``num_threads``.

    Returns:
        A dict (empty if no bundled OpenBLAS was found).
    """
    return {name: {"path": pool.path, "corename": pool.corename, "num_threads": pool.get()}
            for name, pool in _find_pools().items()}


def use_own_gemm():
    """Whether the whole-sequence products (input projection, input and weight gradients)
    run in crnn's own kernel rather than SciPy's BLAS, when one thread is used.

    Measured (single core, float32, GF/s): crnn's AVX-512 kernel runs these products at
    about 1.1-1.3x OpenBLAS's AVX2 ("Haswell") kernel and 0.85-0.9x its AVX-512
    ("SkylakeX") kernel. So crnn's kernel is used on an AVX-512 CPU whose loaded OpenBLAS
    kernel is not an AVX-512 one (e.g. ``OPENBLAS_CORETYPE=Haswell``), BLAS otherwise.
    ``CRNN_GEMM=own`` or ``CRNN_GEMM=blas`` in the environment forces either.

    Returns:
        bool.
    """
    global _own_gemm
    forced = os.environ.get("CRNN_GEMM", "").lower()
    if forced in ("own", "blas"):
        return forced == "own"
    if _own_gemm is None:
        from crnn._cells import isa

        pool = _find_pools().get("scipy")
        corename = (pool.corename or "").lower() if pool else ""
        _own_gemm = isa() == "avx512" and corename != "" and corename not in _AVX512_CORES
    return _own_gemm
