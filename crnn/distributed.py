"""Scaling out on existing engines: MPI data-parallel training and Dask for many tasks.

Two engines, both optional extras that ``import crnn`` never imports:

* **MPI** (``pip install crnn[mpi]``: mpi4py over Open MPI or MPICH) for synchronous
  data-parallel training, with Horovod's Keras API: every rank trains a replica on its own
  shard; each step averages the gradients of all ranks with one ``Allreduce`` of one fused
  buffer, so every rank applies the same update and the replicas stay identical.
* **Dask** (``pip install crnn[dask]``) for the embarrassingly parallel work:
  ``predict_dask`` runs a model over a chunked ``dask.array``, ``fit_many`` trains one model
  per data set. Models travel in crnn's pickle-free format (``model.to_bytes()``).

The gradient averaging happens inside the optimizer's ``apply``. Apart from that, the
training loop (``crnn.trainer``) asks the optimizer for ``optimizer.distributed`` (``None``
for a plain optimizer); ``DistributedOptimizer`` sets it to a ``_Collective``, whose calls
are the trainer's only distributed code: ``start_fit`` / ``fit_failed`` (one collective
check of every rank's plan before the first step, so a mismatch or a failed check on one
rank raises on every rank instead of hanging), ``average_logs`` and ``any`` (one stop
decision).

Example:
    >>> import crnn, crnn.distributed as cd                       # doctest: +SKIP
    >>> cd.init()                                                 # doctest: +SKIP
    >>> model.compile(optimizer=cd.DistributedOptimizer(crnn.optimizers.Adam(1e-3)),
    ...               loss="mse")                                 # doctest: +SKIP
    >>> model.fit(x_shard, y_shard, batch_size=32,
    ...           callbacks=[cd.BroadcastWeights(root_rank=0)])   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import threading
import traceback
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from crnn import callbacks as callbacks_module
from crnn import optimizers as optimizers_module
from crnn._validation import is_int
from crnn.threads import get_num_threads, set_num_threads

__all__ = ["BroadcastWeights", "DistributedOptimizer", "FitManyResult", "broadcast_weights",
           "fit_many", "init", "is_initialized", "predict_dask", "rank", "size"]

_MPI_HELP = ("crnn.distributed needs mpi4py and an MPI library: pip install 'crnn[mpi]' (or "
             "pip install mpi4py) and, on Debian/Ubuntu, apt-get install openmpi-bin "
             "libopenmpi-dev")
_DASK_HELP = "this needs Dask: pip install 'crnn[dask]' (or pip install 'dask[distributed]')"

_comm = None


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError(f"{_MPI_HELP} ({error})") from error
    return MPI


# ---------------------------------------------------------------------------------- world

def init(comm: Any = None) -> None:
    """Start (or join) the MPI world; every rank of the job must call it.

    Without ``mpiexec`` the process is a world of size 1, and everything below works
    unchanged.

    Args:
        comm: an ``mpi4py`` communicator (default ``MPI.COMM_WORLD``).

    Raises:
        ImportError: if mpi4py is not installed (the message says what to install).
        TypeError: if ``comm`` is not an mpi4py intracommunicator.

    Example:
        >>> import crnn.distributed as cd                         # doctest: +SKIP
        >>> cd.init()                           # MPI.COMM_WORLD  # doctest: +SKIP
        >>> cd.is_initialized()                                   # doctest: +SKIP
        True
    """
    global _comm
    MPI = _mpi()
    if comm is None:
        comm = MPI.COMM_WORLD
    if not isinstance(comm, MPI.Intracomm):
        raise TypeError(f"comm must be an mpi4py intracommunicator such as MPI.COMM_WORLD, "
                        f"received {type(comm).__name__}")
    _comm = comm


def is_initialized() -> bool:
    """Whether ``init()`` has been called in this process.

    Needs no MPI: it only says whether ``init`` (or a function that calls it, such as
    ``rank``) has run.

    Returns:
        True after ``init()``, False before.

    Example:
        >>> import crnn.distributed as cd
        >>> isinstance(cd.is_initialized(), bool)
        True
    """
    return _comm is not None


def _world():
    if _comm is None:
        init()
    return _comm


def rank() -> int:
    """This process's rank, 0 to ``size() - 1`` (calls ``init()`` if needed).

    Returns:
        The rank in the communicator of ``init`` (0 without ``mpiexec``).

    Raises:
        ImportError: if mpi4py is not installed.

    Example:
        >>> import crnn.distributed as cd                         # doctest: +SKIP
        >>> cd.rank()                          # without mpiexec  # doctest: +SKIP
        0
    """
    return _world().Get_rank()


def size() -> int:
    """The number of processes in the world (calls ``init()`` if needed).

    Returns:
        The size of the communicator of ``init`` (1 without ``mpiexec``).

    Raises:
        ImportError: if mpi4py is not installed.

    Example:
        >>> import crnn.distributed as cd                         # doctest: +SKIP
        >>> cd.size()                          # without mpiexec  # doctest: +SKIP
        1
    """
    return _world().Get_size()


# ------------------------------------------------------------------------- fused buffers

def _fuse(arrays, dtype):
    """One contiguous buffer holding ``arrays`` one after the other, raveled."""
    buffer = np.empty(sum(a.size for a in arrays), dtype=dtype)
    offset = 0
    for a in arrays:
        buffer[offset:offset + a.size] = a.ravel()
        offset += a.size
    return buffer


def _split(buffer, like):
    """Views of ``buffer`` shaped like each array of ``like``, cast to its dtype."""
    out, offset = [], 0
    for a in like:
        out.append(buffer[offset:offset + a.size].reshape(a.shape).astype(a.dtype, copy=False))
        offset += a.size
    return out


class _Collective:
    """The collective calls of one communicator: what the training loop and callbacks use.

    Args:
        comm: an mpi4py intracommunicator.
    """

    def __init__(self, comm):
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def allreduce_mean(self, arrays, dtype):
        """The element-wise mean over ranks of ``arrays``, in one ``Allreduce``."""
        buffer = _fuse(arrays, dtype)
        if self.size > 1:
            self.comm.Allreduce(_mpi().IN_PLACE, buffer, op=_mpi().SUM)
            buffer /= self.size
        return _split(buffer, arrays)

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any rank."""
        if self.size == 1:
            return bool(flag)
        return bool(self.comm.allreduce(int(bool(flag)), op=_mpi().MAX))

    def gather_all(self, obj):
        """Every rank's ``obj`` (small, JSON-like metadata), in rank order."""
        return self.comm.allgather(obj)

    def average_logs(self, logs: Mapping[str, float]) -> dict:
        """Logs averaged over the ranks (the keys are the same on every rank: checked by
        ``start_fit``)."""
        keys = sorted(logs)
        if self.size == 1 or not keys:
            return dict(logs)
        values = np.array([float(logs[k]) for k in keys], dtype=np.float64)
        self.comm.Allreduce(_mpi().IN_PLACE, values, op=_mpi().SUM)
        values /= self.size
        return {k: float(v) for k, v in zip(keys, values)}

    def fit_failed(self, error):
        """Called by ``fit`` on a rank whose own argument checks raised ``error``.

        The rank joins the collective check of ``start_fit`` with its error, so every rank
        raises (a ValueError naming this rank) instead of waiting for it.

        Raises:
            ValueError: always, on this rank and on every rank in ``start_fit``.
        """
        self._agree({"error": f"{type(error).__name__}: {error}", "plan": None}, error)

    def start_fit(self, model, x, y, batch_size, steps, epochs, initial_epoch, validation,
                  callbacks, verbose):
        """Check every rank's fit plan together, before the first step.

        Every rank's ``fit`` calls it once, after its own checks passed (or ``fit_failed``
        if they raised). If any rank failed, or the plans differ (sample counts, batch
        size, shapes, dtypes, validation, epochs, model, collective callbacks), every rank
        raises the same ValueError naming the ranks.

        Args:
            model: the model being trained.
            x, y: this rank's training arrays (after the validation split).
            batch_size, steps: this rank's batch size and batches per epoch.
            epochs, initial_epoch: as passed to ``fit``.
            validation: ``(x_val, y_val)`` or None.
            callbacks: the callbacks passed to ``fit``.
            verbose: the verbosity passed to ``fit``.

        Returns:
            ``(callbacks, verbose)`` for this rank: on ranks other than 0, without
            ``ModelCheckpoint`` or ``ProgbarLogger`` and with verbose 0 (one progress bar,
            one writer).

        Raises:
            ValueError: on every rank, if a rank's checks failed or the plans differ.
        """
        plan = {
            "steps": int(steps), "batch_size": int(batch_size), "samples": int(x.shape[0]),
            "x_shape": list(x.shape[1:]), "y_shape": list(y.shape[1:]),
            "x_dtype": str(x.dtype), "y_dtype": str(y.dtype),
            "validation": validation is not None,
            "validation_samples": None if validation is None else int(validation[0].shape[0]),
            "epochs": [int(initial_epoch), int(epochs)],
            "weights": _signature(model.weights),
            "metrics": list(model.metrics_names),
            "collective_callbacks": [type(cb).__name__ for cb in callbacks
                                     if getattr(cb, "_collective", False)],
        }
        self._agree({"error": None, "plan": plan}, None)
        if self.is_root:
            return callbacks, verbose
        rank_0_only = (callbacks_module.ModelCheckpoint, callbacks_module.ProgbarLogger)
        return [cb for cb in callbacks if not isinstance(cb, rank_0_only)], 0

    def _agree(self, local, error):
        everyone = self.gather_all(local)
        failed = [(r, entry["error"]) for r, entry in enumerate(everyone) if entry["error"]]
        if failed:
            message = "; ".join(f"rank {r}: {text}" for r, text in failed)
            raise ValueError(f"fit can't start on all {self.size} ranks: {message}") from error
        reference = everyone[0]["plan"]
        for key in reference:
            values = [entry["plan"][key] for entry in everyone]
            if any(v != reference[key] for v in values):
                raise ValueError(_mismatch_message(key, values))


_PLAN_HELP = {
    "samples": "every rank must hold the same number of training samples (trim the shards "
               "to the smallest)",
    "batch_size": "pass the same batch_size on every rank",
    "steps": "every rank must run the same number of batches per epoch",
    "x_shape": "every rank's x must have the same shape after the batch axis",
    "y_shape": "every rank's y must have the same shape after the batch axis",
    "x_dtype": "every rank's x must have the same dtype",
    "y_dtype": "every rank's y must have the same dtype",
    "validation": "give validation data (or a validation_split) on every rank or on none",
    "validation_samples": "every rank must hold the same number of validation samples",
    "epochs": "pass the same epochs and initial_epoch on every rank",
    "weights": "build the same model on every rank",
    "metrics": "compile the same loss and metrics on every rank",
    "collective_callbacks": "pass BroadcastWeights (and other collective callbacks) on every "
                            "rank",
}


def _mismatch_message(key, values):
    per_rank = ", ".join(f"rank {r}: {v}" for r, v in enumerate(values))
    return (f"the ranks disagree on {key} ({per_rank}); {_PLAN_HELP.get(key, 'make them equal')}; "
            f"data-parallel training runs one Allreduce per step on every rank, so the ranks "
            f"must agree before the first step")


# -------------------------------------------------------------------- DistributedOptimizer

class _DistributedMixin:
    """Averages the gradients over the ranks (one fused Allreduce) before each update."""

    distributed: _Collective

    def apply(self, params, grads):
        params, grads = list(params), list(grads)
        if len(params) == len(grads) and all(
                g is None or (isinstance(g, optimizers_module.IndexedSlices)
                              and g.dense_shape == p.shape)
                or np.shape(g) == p.shape for p, g in zip(params, grads)) \
                and any(g is not None for g in grads):
            present = [k for k, g in enumerate(grads) if g is not None]
            dense = [grads[k].to_dense(params[k].dtype)
                     if isinstance(grads[k], optimizers_module.IndexedSlices)
                     else np.asarray(grads[k], dtype=params[k].dtype) for k in present]
            dtype = np.result_type(*[params[k].dtype for k in present])
            for k, g in zip(present, self.distributed.allreduce_mean(dense, dtype)):
                grads[k] = g
        # Otherwise the base class raises its usual error, on every rank alike (the
        # replicas are the same model), before any collective call.
        super().apply(params, grads)


def DistributedOptimizer(optimizer: Any, comm: Any = None) -> optimizers_module.Optimizer:
    """Wrap an optimizer so that each update uses the gradients averaged over all ranks.

    Like Horovod's, the result is an instance of the optimizer's own class (it saves,
    loads and prints as that optimizer), whose ``apply`` first Allreduces all the
    gradients in one fused buffer. The model must be compiled with it on every rank.

    Args:
        optimizer: a ``crnn.optimizers`` instance or name (``"adam"``...).
        comm: an mpi4py communicator (default: the one from ``init()``, which is called
            if needed).

    Returns:
        The distributed optimizer (a copy: ``optimizer`` itself is not changed).

    Raises:
        ImportError: if mpi4py is not installed.
        TypeError: if ``optimizer`` is already a distributed one.
        ValueError: if ``optimizer`` is an unknown name.

    Example:
        >>> import crnn, crnn.distributed as cd                          # doctest: +SKIP
        >>> opt = cd.DistributedOptimizer(crnn.optimizers.Adam(1e-3))   # doctest: +SKIP
        >>> type(opt).__name__                                          # doctest: +SKIP
        'Adam'
    """
    base = optimizers_module.get(optimizer)
    if isinstance(base, _DistributedMixin):
        raise TypeError("the optimizer is already a DistributedOptimizer; wrap a plain one")
    collective = _Collective(comm if comm is not None else _world())
    cls = type(type(base).__name__, (_DistributedMixin, type(base)),
               {"__module__": type(base).__module__, "__doc__": type(base).__doc__})
    wrapped = cls.__new__(cls)
    wrapped.__dict__.update(copy.deepcopy(base.__dict__))     # its own slots and counters
    wrapped.distributed = collective
    return wrapped


# ------------------------------------------------------------------------ BroadcastWeights

def broadcast_weights(model: Any, root_rank: int = 0, comm: Any = None) -> None:
    """Copy ``root_rank``'s weights, optimizer state and RNN states to every rank.

    A collective call: every rank must make it. What each rank holds is compared first
    (one small ``allgather``), so different models raise a ValueError on every rank
    instead of hanging. The optimizer state is copied when every rank's model is compiled,
    the RNN states when every rank holds states of the same shapes.

    Args:
        model: the model (built).
        root_rank: the rank whose values win (default 0).
        comm: an mpi4py communicator (default: the one from ``init()``, which is called
            if needed).

    Raises:
        ImportError: if mpi4py is not installed.
        ValueError: if ``root_rank`` is out of range or the ranks' models differ.

    Example:
        >>> import crnn.distributed as cd                           # doctest: +SKIP
        >>> model = crnn.Sequential([crnn.layers.LSTM(8, input_shape=(10, 1))])  # doctest: +SKIP
        >>> cd.broadcast_weights(model, root_rank=0)   # every rank  # doctest: +SKIP
    """
    collective = _Collective(comm if comm is not None else _world())
    if not is_int(root_rank, minimum=0) or root_rank >= collective.size:
        raise ValueError(f"root_rank must be an int in [0, {collective.size}), received "
                         f"{root_rank!r}")
    weights = model.weights if model.built else []
    optimizer = getattr(model, "optimizer", None)
    optimizer_state = optimizer.get_state() if optimizer is not None else None
    states = [s for layer in model.layers for s in layer._state_arrays()]
    everyone = collective.gather_all({
        "weights": _signature(weights),
        "optimizer": None if optimizer_state is None else _signature(optimizer_state),
        "states": _signature(states)})
    root = everyone[root_rank]
    if any(entry["weights"] != root["weights"] for entry in everyone):
        per_rank = "; ".join(f"rank {r}: {len(e['weights'])} arrays "
                             f"{[tuple(a[0]) for a in e['weights']]}"
                             for r, e in enumerate(everyone))
        raise ValueError(f"broadcast_weights needs the same model on every rank, with the "
                         f"same weight shapes; {per_rank}")
    comm = collective.comm
    if weights:
        _bcast_into(comm, weights, root_rank)
    if all(entry["optimizer"] is not None for entry in everyone):
        like = [np.empty(shape, dtype) for shape, dtype in root["optimizer"]]
        values = optimizer_state if collective.rank == root_rank else like
        buffer = _fuse(values, np.float64)
        comm.Bcast(buffer, root=root_rank)
        optimizer.set_state(_split(buffer, like))
    if root["states"] and all(entry["states"] == root["states"] for entry in everyone):
        _bcast_into(comm, states, root_rank)


def _signature(arrays):
    return [[list(np.shape(a)), str(np.asarray(a).dtype)] for a in arrays]


def _bcast_into(comm, arrays, root_rank):
    """Overwrite ``arrays`` in place with the root's values (one fused ``Bcast``)."""
    buffer = _fuse(arrays, np.result_type(*arrays))
    comm.Bcast(buffer, root=root_rank)
    for a, value in zip(arrays, _split(buffer, arrays)):
        a[...] = value


class BroadcastWeights(callbacks_module.Callback):
    """At the start of ``fit``, copy the root rank's weights and states to every rank.

    Pass it on every rank, so that all replicas start from the same point (the root's
    random initialization, or a checkpoint it loaded).

    Args:
        root_rank: the rank whose values win (default 0).

    Raises:
        ValueError: if ``root_rank`` is not a non-negative int (whether it is below the
            world's size is checked when ``fit`` starts).

    Example:
        >>> import crnn.distributed as cd
        >>> callback = cd.BroadcastWeights(root_rank=0)    # no MPI needed until fit
        >>> callback.root_rank
        0
        >>> model.fit(x, y, callbacks=[callback])          # on every rank  # doctest: +SKIP
    """

    _collective = True

    def __init__(self, root_rank: int = 0):
        super().__init__()
        if not is_int(root_rank, minimum=0):
            raise ValueError(f"root_rank must be a non-negative int, received {root_rank!r}")
        self.root_rank = int(root_rank)

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Broadcast the root rank's weights, optimizer state and RNN states.

        Uses the communicator of the model's ``DistributedOptimizer``, or the one from
        ``init()`` when the optimizer is a plain one.

        Args:
            logs: unused (Keras's callback signature).

        Raises:
            ImportError: if mpi4py is not installed.
            ValueError: if ``root_rank`` is out of range or the ranks' models differ.
        """
        collective = getattr(self.model.optimizer, "distributed", None)
        broadcast_weights(self.model, self.root_rank,
                          comm=None if collective is None else collective.comm)


# ---------------------------------------------------------------------------------- Dask

_BLAS_LOCK = threading.Lock()
_BLAS_USERS = [0, None]      # tasks running in this process, threads to restore after them


@contextlib.contextmanager
def _one_blas_thread():
    """One BLAS thread per task while tasks run in this process (restored after)."""
    with _BLAS_LOCK:
        if _BLAS_USERS[0] == 0:
            _BLAS_USERS[1] = get_num_threads()
            _set_threads_quietly(1)
        _BLAS_USERS[0] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_USERS[0] -= 1
            if _BLAS_USERS[0] == 0:
                _set_threads_quietly(_BLAS_USERS[1])


def _set_threads_quietly(n):
    try:
        set_num_threads(n)
    except RuntimeError:      # SciPy without a bundled OpenBLAS: nothing crnn can pin
        pass


_MODEL_CACHE: OrderedDict = OrderedDict()
_MODEL_CACHE_SIZE = 4


def _cached_model(blob):
    """The model in ``blob``, rebuilt once per worker process (a few models are kept)."""
    from crnn.models import from_bytes

    key = hashlib.sha256(blob).hexdigest()
    with _BLAS_LOCK:
        model = _MODEL_CACHE.get(key)
        if model is not None:
            _MODEL_CACHE.move_to_end(key)
            return model
    model = from_bytes(blob)
    with _BLAS_LOCK:
        _MODEL_CACHE[key] = model
        while len(_MODEL_CACHE) > _MODEL_CACHE_SIZE:
            _MODEL_CACHE.popitem(last=False)
    return model


def _predict_block(block, blob, batch_size):
    with _one_blas_thread():
        return _cached_model(blob).predict(block, batch_size=batch_size, verbose=0)


def predict_dask(model: Any, x: Any, batch_size: int | None = None) -> Any:
    """Predictions for a ``dask.array`` chunked along the batch axis, as a dask array.

    The result equals ``model.predict(x.compute())``. Each chunk is a task; the model is
    sent to the workers once, in crnn's pickle-free format (``model.to_bytes()``), rebuilt
    once per worker process, and runs with one BLAS thread per task. Nothing is computed
    until you call ``.compute()`` (or ``persist``) on the result.

    Args:
        model: a built, stateless model.
        x: a ``dask.array.Array`` of inputs, batch axis first (the other axes are
            rechunked to one chunk each if needed).
        batch_size: samples per ``predict`` batch inside a chunk (default 32).

    Returns:
        A ``dask.array.Array`` of outputs, chunked like ``x`` along the batch axis.

    Raises:
        ImportError: if Dask is not installed.
        TypeError: if ``x`` is not a dask array.
        ValueError: if the model is stateful (its states would depend on the order in
            which the chunks run) or ``x`` does not fit the model.

    Example:
        >>> y = cd.predict_dask(model, da.from_array(x, chunks=(1000, -1, -1)))  # doctest: +SKIP
        >>> y.compute().shape                                                    # doctest: +SKIP
    """
    try:
        import dask
        import dask.array as da
    except ImportError as error:
        raise ImportError(f"predict_dask: {_DASK_HELP} ({error})") from error
    if not isinstance(x, da.Array):
        raise TypeError(f"x must be a dask.array.Array chunked along the batch axis, received "
                        f"{type(x).__name__}; wrap NumPy data with dask.array.from_array(x, "
                        f"chunks=(rows, ...))")
    if model._stateful_layers():
        raise ValueError(
            f"predict_dask can't run stateful model {model.name!r}: its states carry from "
            f"batch to batch in order, and Dask runs the chunks in any order on any worker; "
            f"use model.predict, or rebuild the model with stateful=False for batch inference")
    if x.ndim == 0 or any(np.isnan(c) for c in x.shape):
        raise ValueError(f"x must have a known shape with a batch axis, received {x.shape}; "
                         f"call x.compute_chunk_sizes() first")
    if x.ndim > 1 and any(len(c) > 1 for c in x.chunks[1:]):
        x = x.rechunk({axis: -1 for axis in range(1, x.ndim)})
    # One sample through the model here checks x's shape and gives the output's.
    probe = model.predict(np.zeros((1,) + x.shape[1:], dtype=x.dtype), verbose=0)
    batch_size = model._batch_size_for("predict_dask", 1, batch_size)
    blob = dask.delayed(model.to_bytes(), pure=True)
    extra = {}
    if probe.ndim < x.ndim:
        extra["drop_axis"] = list(range(probe.ndim, x.ndim))
    elif probe.ndim > x.ndim:
        extra["new_axis"] = list(range(x.ndim, probe.ndim))
    return da.map_blocks(_predict_block, x, blob, batch_size, dtype=probe.dtype,
                         chunks=(x.chunks[0],) + tuple((d,) for d in probe.shape[1:]),
                         meta=np.empty((0,) * probe.ndim, probe.dtype), **extra)


class FitManyResult(NamedTuple):
    """What ``fit_many`` returns: three dicts keyed like the data sets.

    Attributes:
        models: key -> trained model (or its bytes with ``return_bytes=True``), for the
            keys that trained.
        histories: key -> ``History.history`` dict (loss and metrics per epoch).
        errors: key -> the error text (type, message and traceback) for the keys that
            failed.

    Example:
        >>> import numpy as np, crnn, crnn.distributed as cd
        >>> def build():
        ...     model = crnn.Sequential([crnn.layers.Dense(1, input_shape=(2,))])
        ...     model.compile(optimizer="sgd", loss="mse")
        ...     return model
        >>> data = {"good": (np.ones((4, 2)), np.ones((4, 1))),
        ...         "bad": (np.ones((4, 3)), np.ones((4, 1)))}     # 3 features, not 2
        >>> result = cd.fit_many(build, data, epochs=2)               # locally: no Dask
        >>> list(result.models), len(result.histories["good"]["loss"]), list(result.errors)
        (['good'], 2, ['bad'])
    """

    models: dict
    histories: dict
    errors: dict


def _fit_one(build_fn, x, y, fit_kwargs):
    """Build and train one model; returns (model, history dict), or raises."""
    with _one_blas_thread():
        model = build_fn()
        history = model.fit(x, y, **fit_kwargs)
        return model, _plain_history(history.history)


def _fit_one_reported(build_fn, x, y, fit_kwargs):
    """``_fit_one`` on a worker: the model comes back as bytes, a failure as text (not
    as a failed task, which Dask would retry or hide behind the worker's error)."""
    try:
        model, history = _fit_one(build_fn, x, y, fit_kwargs)
        return "ok", (model.to_bytes(), history)
    except Exception as error:  # noqa: BLE001 - reported with its key by fit_many
        return "error", _error_text(error)


def _plain_history(history):
    return {k: [float(v) for v in values] for k, values in history.items()}


def _error_text(error):
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


def _datasets_items(datasets):
    if isinstance(datasets, Mapping):
        items = list(datasets.items())
    elif isinstance(datasets, Sequence) and not isinstance(datasets, (str, bytes)):
        items = list(enumerate(datasets))
    else:
        raise TypeError(f"datasets must be a dict key -> (x, y) or a list of (x, y), received "
                        f"{type(datasets).__name__}")
    if not items:
        raise ValueError("datasets is empty: give at least one (x, y) pair")
    for key, pair in items:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"datasets[{key!r}] must be an (x, y) pair, received "
                             f"{type(pair).__name__}"
                             + (f" of length {len(pair)}" if isinstance(pair, (tuple, list))
                                else ""))
    return items


def fit_many(build_fn: Callable[[], Any], datasets: Mapping[Any, tuple] | Sequence[tuple],
             client: Any = None, return_bytes: bool = False, **fit_kwargs: Any) -> FitManyResult:
    """Train one model per data set, on a Dask cluster or locally.

    The way forecasting libraries train one model per series (sensor, shop...): each data
    set gets a fresh model from ``build_fn`` and ``model.fit(x, y, **fit_kwargs)``. With a
    ``client`` each model is one task on the cluster (one BLAS thread per task) and comes
    back in crnn's pickle-free format; without one, they train here one after the other.
    A failure in one model is reported under its key and the others are kept.

    Args:
        build_fn: a function of no arguments returning a compiled model (called once per
            data set, on the worker; with a client it must be picklable, e.g. a module-level
            function).
        datasets: dict key -> ``(x, y)``, or a list of ``(x, y)`` (keys 0, 1, ...).
        client: a ``dask.distributed.Client``, or None to train locally.
        return_bytes: return the models as ``to_bytes()`` bytes instead of models.
        **fit_kwargs: passed to every ``fit`` (``verbose`` defaults to 0 here).

    Returns:
        A ``FitManyResult(models, histories, errors)``.

    Raises:
        TypeError: if ``build_fn`` is not callable (or is a model), or ``datasets`` is
            neither a dict nor a list (checked before any training).
        ValueError: if ``datasets`` is empty or an entry is not an ``(x, y)`` pair
            (checked before any training).

    Example:
        >>> import numpy as np, crnn, crnn.distributed as cd
        >>> def build():
        ...     model = crnn.Sequential([crnn.layers.Dense(1, input_shape=(2,))])
        ...     model.compile(optimizer="sgd", loss="mse")
        ...     return model
        >>> shops = [(np.ones((8, 2)), np.ones((8, 1))), (np.zeros((8, 2)), np.ones((8, 1)))]
        >>> result = cd.fit_many(build, shops, epochs=3)       # locally, one after the other
        >>> sorted(result.models), result.errors
        ([0, 1], {})

        On a Dask cluster (``build`` then must be picklable: a module-level function):

        >>> result = cd.fit_many(build, shops, client=client, epochs=3)  # doctest: +SKIP
    """
    if not callable(build_fn) or hasattr(build_fn, "fit"):
        raise TypeError(f"build_fn must be a function returning a compiled model (a new one "
                        f"per data set), received {type(build_fn).__name__}")
    items = _datasets_items(datasets)
    fit_kwargs.setdefault("verbose", 0)
    models, histories, errors = {}, {}, {}
    if client is None:
        for key, (x, y) in items:
            try:
                model, histories[key] = _fit_one(build_fn, x, y, fit_kwargs)
            except Exception as error:  # noqa: BLE001 - reported with its key
                errors[key] = _error_text(error)
                continue
            models[key] = model.to_bytes() if return_bytes else model
        return FitManyResult(models, histories, errors)
    futures = {key: client.submit(_fit_one_reported, build_fn, x, y, fit_kwargs, pure=False)
               for key, (x, y) in items}
    for key, future in futures.items():
        try:
            status, value = future.result()
        except Exception as error:  # noqa: BLE001 - the worker died or the task can't run
            status, value = "error", _error_text(error)
        if status == "ok":
            blob, histories[key] = value
            if return_bytes:
                models[key] = blob
            else:
                from crnn.models import from_bytes
                models[key] = from_bytes(blob)
        else:
            errors[key] = value
    return FitManyResult(models, histories, errors)
