"""crnn's thread budget: one number for every BLAS thread pool that crnn's work runs on.

Two OpenBLAS libraries serve crnn in one process: SciPy's (the recurrent kernels call it
through ``scipy.linalg.cython_blas``) and NumPy's own copy (``Dense``, ``Embedding`` and
the other NumPy maths). Each has its own pool of threads, and OpenBLAS threads spin for a
while after each call: two pools sized for all the cores fight over them, and a step can
run several times slower than on one thread.

``crnn.set_num_threads(n)`` is the one budget. It sizes both pools to ``n`` at once, and
while crnn trains or predicts (``fit``, ``evaluate``, ``predict``, the ``*_on_batch``
calls, calling a model) SciPy's pool runs ``n`` threads and NumPy's is held at one, so the
two pools never run threads side by side. The pools are put back when the call returns.

crnn's own threads use the same budget (the thread pool inside the compiled kernels,
``crnn/_kernels/_pool.h``, for inference and LSTM/GRU training; ``run_parallel`` for
SimpleRNN's training and where there are no POSIX threads): a recurrent layer's
batch splits into one part of rows per thread (rows never meet in an RNN, so each part runs its
whole time loop on its own, with no synchronization per step), or, for an LSTM or GRU whose
recurrent kernel is too large for each thread to stream whole or whose batch is too thin,
into one slice of the units per thread (inference and training, on the kernels' pool, with
a hand-off per step; ``crnn/_kernels/_units.pxd``); while they run every OpenBLAS pool is
held at one thread. So the budget is never exceeded: n threads in all, crnn's or BLAS's,
never both.

The default budget is one thread, which is never slower than more: on a machine whose
cores are shared with other work, OpenBLAS threads that wait for a busy core make a
char-level LSTM step several times slower with two threads than with one. Ask for more with
``set_num_threads`` (or ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS``, read on first use)
when the cores are yours.

The pools are found without threadpoolctl: the OpenBLAS files that NumPy's and SciPy's
wheels bundle (``numpy.libs``/``scipy.libs`` on Linux and Windows, ``.dylibs`` on macOS),
else (Linux) an OpenBLAS already loaded in the process, such as a distribution's shared
``libopenblas``. A library without OpenBLAS's thread functions (MKL, Accelerate) is left
alone.

Example:
    >>> import crnn
    >>> crnn.set_num_threads(1)
    >>> crnn.get_num_threads()
    1
"""

import ctypes
import glob
import os
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["get_num_threads", "set_num_threads", "blas_pools", "blas_info", "use_own_gemm",
           "use_own_gemm_for_gradients", "run_parallel"]

# Symbol names of OpenBLAS's thread functions: SciPy's and NumPy's wheels (scipy-openblas,
# "64_" for NumPy's 64-bit-integer build), then OpenBLAS's own names.
_PREFIXES = ("scipy_openblas", "openblas")
_SUFFIXES = ("", "64_")
_PATTERNS = ("*openblas*.so*", "*openblas*.dylib", "*openblas*.dll")
_PACKAGES = ("scipy", "numpy")            # scipy first: its pool runs crnn's kernels


# OpenBLAS kernels for AVX-512 cores, which beat crnn's own kernel on whole products.
_AVX512_CORES = ("skylakex", "cooperlake", "sapphirerapids")
_OWN_GEMM = []               # [use_own_gemm()'s answer], computed on first use

# CRNN_GEMM is read at every call. os.environ.get is slow when the variable is unset (it
# encodes the key and raises KeyError inside; python -m timeit -s "import os"
# "os.environ.get('CRNN_GEMM', '')" against the lookup below). The
# lookup goes to os.environ's own store of encoded variables (CPython's _Environ._data,
# which os.environ's writers, and so monkeypatch.setenv, keep current), falling back to
# os.environ.get where that store is absent.
_ENV_STORE = getattr(os.environ, "_data", None)
try:
    _GEMM_KEY = os.environ.encodekey("CRNN_GEMM")
except (AttributeError, TypeError):
    _ENV_STORE = None


def _gemm_override() -> str:
    """CRNN_GEMM's value now, lowercased ("" when unset)."""
    if _ENV_STORE is None:
        return os.environ.get("CRNN_GEMM", "").lower()
    raw = _ENV_STORE.get(_GEMM_KEY)
    return "" if raw is None else os.environ.decodevalue(raw).lower()


class _Pool:
    """One OpenBLAS library's thread pool: its file, get/set functions and kernel name."""

    __slots__ = ("package", "path", "get", "set", "corename")

    def __init__(self, package, path, get, set_, corename=None):
        self.package, self.path, self.get, self.set = package, path, get, set_
        self.corename = corename


_FOUND = []                  # [the distinct pools], filled on first use (see _forget)
_LOCK = threading.Lock()           # the pools' sizes and _STATE
_FIND_LOCK = threading.Lock()      # the look-up
_STATE = {"budget": None, "depth": 0, "restore": (), "changed": False}
# While crnn's own threads run (run_parallel), every BLAS pool is held at one thread:
# depth of nested run_parallel calls and the sizes to put back.
_SERIAL = {"depth": 0, "pools": (), "restore": ()}
# crnn's worker threads (run_parallel), and the process that started them: a forked child
# has the executor object but not its threads, and must start its own.
_EXECUTOR = {"pool": None, "workers": 0, "pid": None}
_EXECUTOR_LOCK = threading.Lock()


def _thread_functions(path):
    """(get, set) of the OpenBLAS at ``path``, or None if it has no such functions."""
    try:
        library = ctypes.CDLL(path)
    except OSError:
        return None
    for prefix in _PREFIXES:
        for suffix in _SUFFIXES:
            get = getattr(library, f"{prefix}_get_num_threads{suffix}", None)
            set_ = getattr(library, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                get.restype = ctypes.c_int
                get.argtypes = []
                set_.restype = None
                set_.argtypes = [ctypes.c_int]
                corename = getattr(library, f"{prefix}_get_corename{suffix}", None)
                name = None
                if corename is not None:
                    corename.restype = ctypes.c_char_p
                    corename.argtypes = []
                    name = (corename() or b"").decode("ascii", "replace") or None
                return get, set_, name
    return None


def _bundled_files(package):
    """OpenBLAS files that ``package``'s wheel ships, e.g. ``site-packages/numpy.libs``."""
    module = sys.modules.get(package) or __import__(package)
    root = os.path.dirname(os.path.abspath(module.__file__))
    folders = (os.path.join(os.path.dirname(root), f"{package}.libs"),   # Linux, Windows
               os.path.join(root, ".dylibs"))                            # macOS
    return sorted(path for folder in folders for pattern in _PATTERNS
                  for path in glob.glob(os.path.join(folder, pattern)))


def _loaded_files():
    """OpenBLAS files already mapped into this process (Linux; empty elsewhere)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split(None, 5)[-1].strip() for line in maps if "openblas" in line}
    except OSError:
        return []
    return sorted(path for path in paths if os.path.isfile(path))


def _find(package):
    """The thread pool of ``package``'s OpenBLAS, or None (another BLAS, or none found)."""
    for path in _bundled_files(package) + _loaded_files():
        functions = _thread_functions(path)
        if functions is not None:
            return _Pool(package, path, *functions)
    return None


def _pools():
    """The distinct pools, SciPy's first (a shared system OpenBLAS counts once)."""
    if not _FOUND:
        with _FIND_LOCK:
            if not _FOUND:
                pools, paths = [], set()
                for package in _PACKAGES:
                    pool = _find(package)
                    if pool is not None and os.path.realpath(pool.path) not in paths:
                        paths.add(os.path.realpath(pool.path))
                        pools.append(pool)
                _FOUND.append(pools)
    return _FOUND[0]


def _forget():
    """Look the pools up again on next use (tests that fake a missing library)."""
    with _FIND_LOCK:
        _FOUND.clear()
        _OWN_GEMM.clear()


def _default_budget():
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def get_num_threads() -> int:
    """crnn's thread budget: the threads crnn's kernels run on (1 by default).

    The budget is what ``set_num_threads`` last set. Until it is called, the environment
    gives it, read once, on the first call of this function (or of a crnn computation).
    Inside a task of ``run_parallel`` it is 1: the task already has its thread.

    Returns:
        The budget set by ``set_num_threads``; else a positive integer in
        ``OPENBLAS_NUM_THREADS`` or ``OMP_NUM_THREADS`` (in that order) as read on first
        use; else 1.

    Example:
        >>> import crnn
        >>> n = crnn.get_num_threads()
        >>> isinstance(n, int) and n >= 1
        True
    """
    local = _TASK.budget
    if local is not None:             # inside a run_parallel task: its share, one thread
        return local
    budget = _STATE["budget"]
    if budget is None:
        budget = _STATE["budget"] = _default_budget()
    return budget


def set_num_threads(n: int) -> None:
    """Set crnn's thread budget, and size SciPy's and NumPy's OpenBLAS pools to it.

    Both pools are resized for the whole process; while crnn trains or predicts (a model's
    methods, or a ``crnn.ops`` call), NumPy's pool is held at one thread so that only
    SciPy's (the kernels') runs threads.

    Args:
        n: a positive int.

    Raises:
        ValueError: if ``n`` is not a positive int.
        RuntimeError: if neither NumPy nor SciPy uses an OpenBLAS crnn can find (then size
            your BLAS's threads with its own controls, e.g. ``threadpoolctl``).

    Example:
        >>> import crnn
        >>> crnn.set_num_threads(2)
        >>> crnn.get_num_threads()
        2
        >>> crnn.set_num_threads(1)
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, received {n!r}")
    pools = _pools()
    if not pools:
        raise RuntimeError(
            "neither SciPy's nor NumPy's BLAS is an OpenBLAS that crnn can find, so crnn "
            "cannot size its threads; use threadpoolctl.threadpool_limits(n) instead")
    with _LOCK:
        _STATE["budget"] = n
        inside = _STATE["depth"] > 0
        sizes = [_held_size(pool, n) if inside else n for pool in pools]
        if _SERIAL["depth"] > 0:
            # crnn's own threads are running: the pools stay at one until they are done
            _SERIAL["restore"] = sizes
        else:
            for pool, size in zip(pools, sizes):
                # inside a crnn call: the held sizes now, n when the call returns
                pool.set(size)
        if inside:
            _STATE["restore"] = [n] * len(pools)
            _STATE["changed"] = True


def blas_pools() -> list[dict]:
    """The OpenBLAS pools crnn sizes, SciPy's first.

    The pools are looked up once, on first use; a library shared by NumPy and SciPy counts
    once. The list is empty when neither uses an OpenBLAS crnn can find.

    Returns:
        One dict per pool: ``{"package", "path", "num_threads"}`` (``package`` is the one
        whose wheel or process the library was found for).

    Example:
        >>> import crnn
        >>> pools = crnn.threads.blas_pools()
        >>> all(sorted(pool) == ["num_threads", "package", "path"] for pool in pools)
        True
    """
    return [{"package": pool.package, "path": pool.path, "num_threads": int(pool.get())}
            for pool in _pools()]


def _held_size(pool, budget):
    """A pool's size while crnn runs: the budget for the kernels' pool, one for the rest."""
    return budget if pool.package == "scipy" else 1


class _Held:
    """Context manager: the pools at crnn's budget while a crnn call runs, put back after.

    Re-entrant and thread-safe: the first call in sizes the pools, the last one out puts
    them back; a pool already at its size costs one read of it. The budget is the calling
    thread's (``get_num_threads``: 1 inside a ``run_parallel`` task). Entered by the trainer
    and, through ``held``, by ``crnn.ops``'s compiled calls.
    """

    __slots__ = ()

    def __enter__(self):
        pools = _FOUND[0] if _FOUND else _pools()
        budget = get_num_threads()
        state = _STATE
        with _LOCK:
            depth = state["depth"]
            state["depth"] = depth + 1
            if depth:
                return
            restore = []
            changed = False
            for pool in pools:
                now = pool.get()
                restore.append(now)
                target = _held_size(pool, budget)
                if now != target:
                    pool.set(target)
                    changed = True
            state["restore"] = restore
            state["changed"] = changed

    def __exit__(self, *exc):
        state = _STATE
        with _LOCK:
            depth = state["depth"] = state["depth"] - 1
            if depth == 0 and state["changed"]:
                for pool, before in zip(_FOUND[0], state["restore"]):
                    pool.set(before)
                state["changed"] = False


HELD = _Held()
"""``with HELD:`` around a crnn call: the pools at the budget while it runs."""


class _NoHold:
    __slots__ = ()

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        pass


_NO_HOLD = _NoHold()


# crnn.ops calls of fewer multiply-adds than this are not held (held): any BLAS product
# inside is smaller still (OpenBLAS runs products under 2^18 multiply-adds on one thread
# whatever its pool), and sizing pools that are not at their sizes, then putting them
# back, costs a call of this size more than its products' share of the BLAS threads
# could (it resizes OpenBLAS's pool twice, whose waiting threads it wakes).
HOLD_MIN_WORK = 1 << 22


def held(work=None):
    """``with held(work):`` around a compiled call of ``work`` multiply-adds (crnn.ops):
    HELD where a pool is not at its size for this thread's budget, else nothing to do (two
    reads of the pools' sizes, not HELD's lock and bookkeeping); nothing either for a call
    under HOLD_MIN_WORK."""
    if _STATE["depth"] or (work is not None and work < HOLD_MIN_WORK):
        return _NO_HOLD
    budget = get_num_threads()
    for pool in _FOUND[0] if _FOUND else _pools():
        if pool.get() != _held_size(pool, budget):
            return HELD
    return _NO_HOLD


class _SerialBlas:
    """Context manager: every BLAS pool at one thread while crnn's own threads run (so
    that n crnn threads never start n BLAS threads each); re-entrant, sizes put back by the
    last one out."""

    __slots__ = ()

    def __enter__(self):
        pools = _FOUND[0] if _FOUND else _pools()
        with _LOCK:
            if _SERIAL["depth"] == 0:
                restore = [pool.get() for pool in pools]
                for pool, size in zip(pools, restore):
                    if size != 1:
                        pool.set(1)
                _SERIAL["pools"], _SERIAL["restore"] = pools, restore
            _SERIAL["depth"] += 1

    def __exit__(self, *exc):
        with _LOCK:
            _SERIAL["depth"] -= 1
            if _SERIAL["depth"] == 0:
                for pool, size in zip(_SERIAL["pools"], _SERIAL["restore"]):
                    if size != 1:
                        pool.set(size)


_SERIAL_BLAS = _SerialBlas()


def _executor(workers):
    """crnn's pool of ``workers`` threads (made again when the budget changes)."""
    with _EXECUTOR_LOCK:
        pid = os.getpid()
        if _EXECUTOR["workers"] != workers or _EXECUTOR["pid"] != pid:
            old = _EXECUTOR["pool"] if _EXECUTOR["pid"] == pid else None
            _EXECUTOR["pool"] = ThreadPoolExecutor(max_workers=workers,
                                                   thread_name_prefix="crnn")
            _EXECUTOR["workers"] = workers
            _EXECUTOR["pid"] = pid
            if old is not None:
                old.shutdown(wait=False)
        return _EXECUTOR["pool"]


# The thread a run_parallel task runs on: its budget (get_num_threads) is 1 while it runs.
class _TaskBudget(threading.local):
    budget = None       # (a class default: reading it costs no failed look-up)


_TASK = _TaskBudget()


def _as_task(task):
    """``task`` run with this thread's budget at 1 (restored after)."""
    def run():
        before = _TASK.budget
        _TASK.budget = 1
        try:
            return task()
        finally:
            _TASK.budget = before
    return run


def run_parallel(tasks: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run independent tasks on crnn's threads (the budget), BLAS held at one thread.

    The kernels split a batch's rows this way: each part runs its whole time loop on its
    own thread (the rows of a recurrent layer never meet), on crnn's compiled code, which
    releases the GIL. The calling thread runs the first task; ``get_num_threads() - 1``
    worker threads run the rest, and while any runs every OpenBLAS pool is held at one
    thread, so crnn's threads and BLAS's never compete for the cores; inside each task
    ``get_num_threads()`` is 1, so the crnn calls a task makes stay on its thread. With a
    budget of one, the tasks run one after another in the calling thread.

    Args:
        tasks: callables taking no argument.

    Returns:
        Their results, in order.

    Raises:
        Exception: the first exception a task raised, once every task has finished.

    Example:
        >>> import crnn
        >>> crnn.threads.run_parallel([lambda: 1, lambda: 2])
        [1, 2]
    """
    tasks = list(tasks)
    budget = get_num_threads()
    if budget == 1 or len(tasks) < 2:
        return [task() for task in tasks]
    pool = _executor(budget - 1)
    tasks = [_as_task(task) for task in tasks]
    with _SERIAL_BLAS:
        futures = [pool.submit(task) for task in tasks[1:]]
        error = None
        results = []
        try:
            results.append(tasks[0]())
        except BaseException as exc:       # noqa: BLE001 - re-raised below, after the rest
            error = exc
            results.append(None)
        for future in futures:
            try:
                results.append(future.result())
            except BaseException as exc:   # noqa: BLE001
                error = error or exc
                results.append(None)
    if error is not None:
        raise error
    return results



def blas_info() -> dict:
    """The OpenBLAS libraries found, for reports, keyed by the package they serve.

    Returns:
        ``{"scipy": {...}, "numpy": {...}}`` (only those found), each with ``path``,
        ``corename`` (the kernel OpenBLAS loaded, e.g. ``"SkylakeX"`` or ``"Haswell"``; None
        if the library does not say) and ``num_threads``.

    Example:
        >>> import crnn
        >>> info = crnn.threads.blas_info()
        >>> set(info) <= {"scipy", "numpy"}
        True
        >>> all(sorted(lib) == ["corename", "num_threads", "path"] for lib in info.values())
        True
    """
    return {pool.package: {"path": pool.path, "corename": pool.corename,
                           "num_threads": int(pool.get())} for pool in _pools()}


def use_own_gemm() -> bool:
    """Whether the whole-sequence products (input projection, input and weight gradients)
    run in crnn's own kernel rather than SciPy's BLAS, when one thread is used.

    Measured (single core, float32): crnn's AVX-512 kernel runs these products at about
    1.1-1.3x the speed of OpenBLAS's AVX2 ("Haswell") kernel, and 0.85-0.9x its AVX-512
    ("SkylakeX") kernel on a CPU with full-width AVX-512 units (Intel, AMD Zen 5) but
    on par with or faster than it on AMD Zen 4, whose AVX-512 runs on 256-bit units
    (``python bench/run.py --only kernels --sizes S3,S4 --cells lstm,gru --modes inference
    --threads 1 --libs crnn`` with and without ``CRNN_GEMM=blas``, three pairs in
    bench/RESULTS.md: GRU inference at (64, 100, 128, 256) 3-5% and LSTM at
    (64, 50, 512, 512) 1-3% faster, the other two rows from 4% faster to 2% slower). So
    crnn's kernel is used on an AVX-512 CPU whose loaded OpenBLAS kernel is not an AVX-512
    one (e.g. under ``OPENBLAS_CORETYPE=Haswell``) or whose AVX-512 units are 256 bits
    wide (``crnn._kernels._cells.avx512_half_width``), BLAS otherwise.
    ``CRNN_GEMM=own`` or ``CRNN_GEMM=blas`` in the environment forces either (read on
    each call; the measured choice is made once, on first use).

    Returns:
        True for crnn's own kernel, False for SciPy's BLAS.

    Example:
        >>> import crnn
        >>> isinstance(crnn.threads.use_own_gemm(), bool)
        True
    """
    forced = _gemm_override()
    if forced in ("own", "blas"):
        return forced == "own"
    if not _OWN_GEMM:
        from crnn._kernels._cells import avx512_half_width, isa

        pool = next((p for p in _pools() if p.package == "scipy"), None)
        corename = (pool.corename or "").lower() if pool else ""
        _OWN_GEMM.append(isa() == "avx512" and corename != ""
                         and (corename not in _AVX512_CORES or avx512_half_width()))
    return _OWN_GEMM[0]


def use_own_gemm_for_gradients() -> bool:
    """Whether the backward pass's whole-sequence products (the input gradient and the
    weight gradients) run in crnn's own kernel rather than SciPy's BLAS, on one thread.

    These products are long in k (batch x timesteps rows) and, for the weight gradients,
    read A transposed. crnn's kernel runs k in blocks whose packed B stays in L2, in
    buffers kept per thread. Measured on an AVX-512 core (AMD EPYC, float32) against
    OpenBLAS's AVX-512 ("SkylakeX") kernel, at (64, 100, 128, 256): input gradient 6.6 ms
    against 8.3 ms, weight gradients 9.3 and 15.8 ms against 10.0 and 18.6 ms. So on an
    AVX-512 CPU crnn's kernel runs them whatever BLAS kernel is loaded; elsewhere as
    ``use_own_gemm``. ``CRNN_GEMM=own`` or ``CRNN_GEMM=blas`` forces either.

    Returns:
        bool.

    Example:
        >>> import crnn
        >>> isinstance(crnn.threads.use_own_gemm_for_gradients(), bool)
        True
    """
    forced = _gemm_override()
    if forced in ("own", "blas"):
        return forced == "own"
    from crnn._kernels._cells import isa

    return isa() == "avx512" or use_own_gemm()
