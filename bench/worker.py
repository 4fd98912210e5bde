"""One library, one thread count: time every task of a plan in this process.

``run.py`` starts one worker process per (library, thread count) so that every library's
thread pools are sized before it initializes (TensorFlow fixes its pools at start-up) and
no library's runtime (OpenMP, oneDNN, OpenBLAS) disturbs another's. run.py starts it with
``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` removed from the environment, so OpenBLAS
picks the kernel a user's machine gets; the worker reports the BLAS libraries and kernels
it loaded (``info["blas"]``).

Usage (normally only run.py calls this):
    python bench/worker.py PLAN.json OUT.json

PLAN.json: {"lib": "crnn"|"numpy"|"torch"|"ort"|"keras"|"gemm", "threads": 1,
            "kind": "kernels"|"models",
            "tasks": [{"cell": "lstm", "mode": "inference", "size": "S2",
                       "shape": [B, T, F, H], "dtype": "float32"}, ...],
            "budget": {...}, "big_budget": {...}, "model_budget": {...}}
OUT.json is rewritten after every task, so a crash keeps what was measured before it.
A numeric cross-check that fails (two implementations disagree) stops the worker with
exit code 3 and ``out["mismatch"]`` set; run.py then fails the whole run.
"""

import contextlib
import importlib
import importlib.util
import itertools
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from timing import Budget, measure, measure_calls

REPO = Path(__file__).resolve().parent.parent
GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}
N_STATES = {"lstm": 2, "gru": 1, "simple_rnn": 1}
LAYER_NAMES = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN"}
SEED = 1234
# Largest |difference| accepted between two implementations' outputs (values in [-1, 1]).
ATOL = {"float32": 5e-4, "float64": 1e-9}
MISMATCH_EXIT = 3
CHECKS = []   # every cross-check made in this process, saved in OUT.json


class Skip(Exception):
    """A task this library cannot run; the message says why."""


class Mismatch(Exception):
    """Two implementations computed different results: the benchmark must not go on."""


def check_close(what, ours, theirs, dtype="float32"):
    """Raise Mismatch when max |ours - theirs| exceeds ATOL; print the difference."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    if ours.shape != theirs.shape:
        raise Mismatch(f"{what}: shapes differ, {ours.shape} vs {theirs.shape}")
    diff = float(np.max(np.abs(ours - theirs))) if ours.size else 0.0
    print(f"[check] {what}: max |diff| = {diff:.2e}", file=sys.stderr, flush=True)
    CHECKS.append({"what": what, "max_abs_diff": diff, "atol": ATOL[dtype]})
    if not diff <= ATOL[dtype]:
        raise Mismatch(f"{what}: max |diff| = {diff:.3g} > {ATOL[dtype]:g}")
    return diff


def _weights(cell, features, units, rng, dtype="float32"):
    """Keras-layout weights: kernel (F, G*U), recurrent_kernel (U, G*U), bias."""
    g = GATES[cell]
    scale = 1.0 / np.sqrt(units)
    kernel = rng.uniform(-scale, scale, (features, g * units)).astype(dtype)
    recurrent_kernel = rng.uniform(-scale, scale, (units, g * units)).astype(dtype)
    bias_shape = (2, 3 * units) if cell == "gru" else (g * units,)
    bias = rng.uniform(-scale, scale, bias_shape).astype(dtype)
    return kernel, recurrent_kernel, bias


def _inputs(shape, rng, dtype="float32"):
    batch, timesteps, features, _ = shape
    return rng.standard_normal((batch, timesteps, features)).astype(dtype)


def _pool_weights(features, units, cell="lstm"):
    """Weights of the streaming model, cell + Dense(1): the crnn model's set_weights order."""
    rng = np.random.default_rng(SEED + 1)
    kernel, recurrent_kernel, bias = _weights(cell, features, units, rng)
    dense_kernel = rng.uniform(-0.3, 0.3, (units, 1)).astype(np.float32)
    dense_bias = np.full(1, 0.1, np.float32)
    return kernel, recurrent_kernel, bias, dense_kernel, dense_bias


def _pool_inputs(n, features):
    return np.random.default_rng(SEED + 2).standard_normal((n, features)).astype(np.float32)


def _half_subsets(n, count=8):
    """``count`` random halves of range(n) (index arrays in random order), cycled through."""
    rng = np.random.default_rng(SEED + 3)
    return [rng.permutation(n)[: n // 2] for _ in range(count)]


def crnn_outputs(cell, x, weights):
    """crnn.ops's forward outputs (zero initial states): the yardstick of the checks."""
    return getattr(import_crnn().ops, cell)(x, *weights)[0]


def _check_stream_vs_crnn(cell, features, units, weights, session, names):
    """Three steps of an ONNX step session against crnn's stateful predict_on_batch."""
    backend = CrnnBackend.__new__(CrnnBackend)
    backend.crnn = import_crnn()
    model = backend._stream_model(cell, features, units, weights)
    rng = np.random.default_rng(SEED + 4)
    state = {n: np.zeros((1, 1, units), np.float32) for n in names}
    outs = ["y"] + [n + "_out" for n in names]
    for step in range(3):
        x = rng.standard_normal((1, features)).astype(np.float32)
        y, *new = session.run(outs, dict(state, x=x))
        state.update(zip(names, new))
        check_close(f"ONNX Runtime {cell} streaming step {step} vs crnn predict_on_batch",
                    y, model.predict_on_batch(x[:, None]))


def _blas_limits(threads):
    """Limit every BLAS/OpenMP pool loaded so far (and later ones, via the env) to threads."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None, "threadpoolctl not installed: BLAS threads set only by environment"
    return threadpool_limits(limits=threads), None


def blas_report():
    """The BLAS/OpenMP pools loaded in this process (threadpoolctl), one dict each.

    Each has ``library`` (whose copy: numpy, scipy, torch...), ``internal_api`` (openblas,
    mkl, openmp...), ``architecture`` (the OpenBLAS kernel, e.g. SkylakeX or Haswell),
    ``num_threads``, ``version`` and ``filepath``.
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "threadpoolctl not installed: BLAS kernels unknown"}]
    keep = ("user_api", "internal_api", "prefix", "version", "architecture",
            "threading_layer", "num_threads", "filepath")
    out = []
    for pool in threadpool_info():
        entry = {k: pool.get(k) for k in keep}
        path = str(pool.get("filepath"))
        entry["library"] = next((lib for lib in ("numpy", "scipy", "torch", "onnxruntime",
                                                 "tensorflow", "sklearn")
                                 if f"/{lib}." in path or f"/{lib}/" in path), "system")
        out.append(entry)
    return out


def torch_blas_entry(torch):
    """What torch's build says about its BLAS (MKL is linked statically: threadpoolctl
    does not see it) and the CPU capability its kernels dispatch to."""
    config = torch.__config__.show()
    found = [line.strip(" -") for line in config.splitlines()
             if "Math Kernel Library" in line or "MKL-DNN" in line or "BLAS_INFO" in line]
    blas = next((part.split("=", 1)[1] for part in config.replace(",", " ").split()
                 if part.startswith("BLAS_INFO=")), "?")
    capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability",
                         lambda: "?")()
    return {"library": "torch", "internal_api": blas, "architecture": capability,
            "note": "; ".join(f for f in found if not f.startswith("Build settings")),
            "num_threads": torch.get_num_threads()}


def _cpu_best_isa():
    try:
        flags = set(next(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                         if line.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):
        return None
    return "avx512" if "avx512f" in flags else "avx2" if {"avx2", "fma"} <= flags else "baseline"


def crnn_isa(crnn):
    """The code path crnn's kernels dispatch to: the CPU's best ISA, capped by the
    ``CRNN_ISA`` environment variable (avx2 or baseline) when this crnn reads it (its
    ``_fastmath.h`` mentions it); a crnn function reporting it is used if there is one."""
    for owner in (crnn, getattr(crnn, "ops", None)):
        for attr in ("cpu_isa", "kernel_isa", "get_isa"):
            value = getattr(owner, attr, None)
            if value is not None:
                with contextlib.suppress(Exception):
                    return {"source": f"{owner.__name__}.{attr}",
                            "isa": str(value() if callable(value) else value)}
    cap = os.environ.get("CRNN_ISA")
    # crnn's own report: crnn._kernels._cells.isa() (this wave's layout), which applies the cap.
    with contextlib.suppress(Exception):
        cells = importlib.import_module("crnn._kernels._cells")
        return {"isa": str(cells.isa()), "cap": cap, "reads_CRNN_ISA": True,
                "source": "crnn._kernels._cells.isa()"
                          + (f", capped by CRNN_ISA={cap}" if cap else "")}
    header = next((h for h in (Path(crnn.__file__).parent / "_kernels" / "_fastmath.h",
                               Path(crnn.__file__).parent / "_fastmath.h") if h.exists()), None)
    reads_cap = header is not None and "CRNN_ISA" in header.read_text()
    best = _cpu_best_isa()
    order = ["baseline", "avx2", "avx512"]
    isa = best
    if reads_cap and cap in order and best in order:
        isa = order[min(order.index(cap), order.index(best))]
    return {"isa": isa, "cap": cap, "reads_CRNN_ISA": reads_cap,
            "source": "CPU flags" + (f", capped by CRNN_ISA={cap}" if reads_cap and cap
                                     else f"; CRNN_ISA={cap} ignored by this crnn" if cap
                                     else "")}


# --------------------------------------------------------------------------- backends
# Each backend returns, per task, a zero-argument callable that does the whole job, and a
# context manager to enter around the timing (e.g. torch.inference_mode).


class CrnnBackend:
    name = "crnn"

    def __init__(self, threads):
        self.crnn = import_crnn()
        from crnn import ops

        self.ops = ops
        self.limiter, note = _blas_limits(threads)
        self.notes = [note] if note else []
        if hasattr(self.crnn, "set_num_threads"):
            self.crnn.set_num_threads(threads)
        else:
            self.notes.append("crnn.set_num_threads not available: only BLAS pools limited")
        self.info = {
            "version": getattr(self.crnn, "__version__", "?"),
            "path": str(Path(self.crnn.__file__).parent),
            "isa": crnn_isa(self.crnn),
            "blas": blas_report(),
        }
        if os.environ.get("CRNN_ISA") and self.info["isa"].get("reads_CRNN_ISA") is False:
            raise Skip(f"this crnn does not read CRNN_ISA={os.environ['CRNN_ISA']} (its "
                       "kernels have no ISA cap): its AVX2 path cannot be selected")
        if hasattr(self.crnn, "get_num_threads"):
            self.info["crnn_num_threads"] = self.crnn.get_num_threads()

    def context(self, mode):
        return contextlib.nullcontext()

    def sequence(self, cell, mode, shape, dtype="float32"):
        rng = np.random.default_rng(SEED)
        x = _inputs(shape, rng, dtype)
        kernel, recurrent_kernel, bias = _weights(cell, shape[2], shape[3], rng, dtype)
        forward = getattr(self.ops, cell)
        grad = getattr(self.ops, cell + "_grad")
        if mode == "inference":
            return lambda: forward(x, kernel, recurrent_kernel, bias)
        # Training: the loss is outputs.sum(), so d_outputs is all ones (as for torch).
        d_outputs = np.ones((shape[0], shape[1], shape[3]), dtype)

        def train_step():
            _, _, cache = forward(x, kernel, recurrent_kernel, bias, training=True)
            return grad(cache, d_outputs)

        return train_step

    def _stream_model(self, cell, features, units, weights=None):
        layers, sequential = self._model_api()
        layer_cls = getattr(layers, LAYER_NAMES[cell], None)
        if layer_cls is None or not hasattr(layers, "Dense"):
            raise Skip(f"crnn.layers.{LAYER_NAMES[cell]} or crnn.layers.Dense not available")
        model = sequential([
            layer_cls(units, stateful=True, batch_input_shape=(1, 1, features)),
            layers.Dense(1),
        ])
        if weights is not None:
            model.set_weights(list(weights))
        return model

    def streaming(self, cell, features, units):
        model = self._stream_model(cell, features, units)
        x = np.random.default_rng(SEED).standard_normal((1, 1, features)).astype(np.float32)
        return lambda: model.predict_on_batch(x)

    def gemm(self, m, k, n, kernel="input", rows=None, repeat=1):
        """crnn's own product kernels at a row's GEMM shape, one thread, through its test
        hooks, on a B packed once (a call packs R and W once, not counted here):
        ``kernel="step"``, the per-step product (what the time loop runs at every step);
        "input", the cache-blocked product of the input projection, on ``rows`` of the m
        (a chunk of timesteps, as the sequence kernels project them). ``repeat`` products
        per call (run.py's crnn_gemm_tasks)."""
        cells = importlib.import_module("crnn._kernels._cells")
        if not hasattr(cells, "packed_product"):
            raise Skip("this crnn has no packed_product hook (crnn._kernels._cells)")
        rng = np.random.default_rng(SEED)
        m = rows or m
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        c = np.zeros((m, n), np.float32)
        packed, blocked = cells.pack(b), kernel != "step"
        return lambda: cells.packed_product(a, packed, c, blocked, repeat)

    def streaming_step(self, cell, features, units):
        """The same model through crnn.streaming.Streamer, crnn's documented step API.

        Timed as an extra variant of the crnn streaming row (result["variants"]), beside
        predict_on_batch."""
        try:
            streamer_cls = importlib.import_module("crnn.streaming").Streamer
        except ImportError as err:
            raise Skip(f"crnn.streaming does not import ({err})") from None
        step = streamer_cls(self._stream_model(cell, features, units)).step
        x = np.random.default_rng(SEED).standard_normal(features).astype(np.float32)
        return lambda: step(x)

    def pool(self, n, variant, features, units):
        """crnn.streaming.StreamPool: n open streams, all (or a random half) step per call."""
        try:
            pool_cls = getattr(importlib.import_module("crnn.streaming"), "StreamPool", None)
        except ImportError as err:
            raise Skip(f"crnn.streaming does not import ({err})") from None
        if pool_cls is None:
            raise Skip("crnn.streaming.StreamPool not available in this crnn")
        weights = _pool_weights(features, units)
        model = self._stream_model("lstm", features, units, weights)
        pool = pool_cls(model, capacity=n)
        ids = np.array([pool.open() for _ in range(n)])
        x = _pool_inputs(n, features)
        # Cross-check the first step (zero states) against crnn.ops + the Dense in NumPy.
        kernel, recurrent_kernel, bias, dense_kernel, dense_bias = weights
        h = self.ops.lstm(x[:, None], kernel, recurrent_kernel, bias)[0][:, 0]
        check_close("crnn StreamPool step vs crnn.ops.lstm + Dense",
                    np.asarray(pool.step(ids.tolist(), x)), h @ dense_kernel + dense_bias)
        if variant == "all":
            id_list = ids.tolist()
            return lambda: pool.step(id_list, x)
        subsets = [ids[s].tolist() for s in _half_subsets(n)]
        xs = x[: n // 2]
        turn = itertools.cycle(subsets)
        return lambda: pool.step(next(turn), xs)

    def _model_api(self):
        """(crnn.layers, crnn.Sequential), or Skip while the model API is not there."""
        try:
            layers = importlib.import_module("crnn.layers")
        except ImportError as err:
            raise Skip(f"crnn.layers does not import ({err})") from None
        sequential = getattr(self.crnn, "Sequential", None)
        if sequential is None:
            raise Skip("crnn.Sequential not available")
        return layers, sequential


class NumpyReferenceBackend:
    name = "numpy"

    def __init__(self, threads):
        self.reference = import_reference()
        self.limiter, note = _blas_limits(threads)
        self.notes = [note] if note else []
        self.info = {"numpy": np.__version__, "blas": blas_report()}

    def context(self, mode):
        return contextlib.nullcontext()

    def sequence(self, cell, mode, shape, dtype="float32"):
        rng = np.random.default_rng(SEED)
        x = _inputs(shape, rng, dtype)
        kernel, recurrent_kernel, bias = _weights(cell, shape[2], shape[3], rng, dtype)
        zeros = [np.zeros((shape[0], shape[3]), dtype) for _ in range(N_STATES[cell])]
        forward = getattr(self.reference, cell + "_forward")
        backward = getattr(self.reference, cell + "_backward")
        if mode == "inference":
            return lambda: forward(x, kernel, recurrent_kernel, bias, zeros)
        d_outputs = np.ones((shape[0], shape[1], shape[3]), dtype)

        def train_step():
            _, _, tape = forward(x, kernel, recurrent_kernel, bias, zeros)
            return backward(tape, d_outputs, zeros)

        return train_step

    def streaming(self, cell, features, units):
        raise Skip("the NumPy reference has no model API")


def _torch_weights(cell, kernel, recurrent_kernel, bias):
    """Keras-layout weights -> torch's (weight_ih, weight_hh, bias_ih, bias_hh)."""
    units = recurrent_kernel.shape[0]
    if cell == "gru":  # Keras gates z, r, h -> torch r, z, n (torch's GRU is reset_after)
        perm = np.r_[units:2 * units, 0:units, 2 * units:3 * units]
        return (kernel[:, perm].T, recurrent_kernel[:, perm].T, bias[0][perm], bias[1][perm])
    # LSTM: Keras i, f, c, o = torch i, f, g, o. SimpleRNN: one gate.
    return kernel.T, recurrent_kernel.T, bias, np.zeros_like(bias)


class TorchBackend:
    name = "torch"

    def __init__(self, threads):
        import torch

        self.torch = torch
        torch.set_num_threads(threads)
        with contextlib.suppress(RuntimeError):  # only allowed before any parallel work
            torch.set_num_interop_threads(1)
        self.limiter, note = _blas_limits(threads)
        self.notes = [note] if note else []
        self.checked = set()
        self.info = {
            "version": torch.__version__,
            "num_threads": torch.get_num_threads(),
            "num_interop_threads": torch.get_num_interop_threads(),
            "mkldnn_enabled": bool(torch.backends.mkldnn.is_available()),
            "blas": blas_report() + [torch_blas_entry(torch)],
        }

    def _module(self, cell, features, units, weights=None):
        nn = self.torch.nn
        torch_cls = {"lstm": nn.LSTM, "gru": nn.GRU, "simple_rnn": nn.RNN}[cell]
        self.torch.manual_seed(SEED)
        module = torch_cls(features, units, batch_first=True)
        if weights is not None:
            with self.torch.no_grad():
                for name, value in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0",
                                        "bias_hh_l0"), _torch_weights(cell, *weights)):
                    getattr(module, name).copy_(self.torch.from_numpy(
                        np.ascontiguousarray(value, np.float32)))
        return module

    def context(self, mode):
        if mode == "training":
            return contextlib.nullcontext()
        return self.torch.inference_mode()

    def sequence(self, cell, mode, shape, dtype="float32"):
        torch = self.torch
        rng = np.random.default_rng(SEED)
        x_np = _inputs(shape, rng)
        weights = _weights(cell, shape[2], shape[3], rng)
        module = self._module(cell, shape[2], shape[3], weights)
        x = torch.from_numpy(x_np)
        if (cell, tuple(shape)) not in self.checked:  # same function as crnn, once per size
            with torch.inference_mode():
                ours = module(x)[0].numpy()
            check_close(f"torch {cell} {tuple(shape)} vs crnn", ours,
                        crnn_outputs(cell, x_np, weights))
            self.checked.add((cell, tuple(shape)))
        if mode == "inference":
            return lambda: module(x)
        x.requires_grad_(True)
        wrt = [x] + list(module.parameters())

        def train_step():
            outputs, _ = module(x)
            # autograd.grad rather than .backward(): no .grad accumulation to reset.
            return torch.autograd.grad(outputs.sum(), wrt)

        return train_step

    def streaming(self, cell, features, units):
        torch = self.torch
        module = self._module(cell, features, units)
        dense = torch.nn.Linear(units, 1)
        x = torch.from_numpy(
            np.random.default_rng(SEED).standard_normal((1, 1, features)).astype(np.float32))
        h = torch.zeros(1, 1, units)
        state = [(h, torch.zeros(1, 1, units)) if cell == "lstm" else h]

        def step():
            outputs, state[0] = module(x, state[0])
            return dense(outputs[:, -1])

        return step

    def gemm(self, m, k, n):
        torch = self.torch
        gen = torch.Generator().manual_seed(SEED)
        a, b = torch.randn(m, k, generator=gen), torch.randn(k, n, generator=gen)
        c = torch.empty(m, n)
        return lambda: torch.mm(a, b, out=c)


class OrtBackend:
    """ONNX Runtime, CPU provider: inference, streaming and the stream pool (no training)."""

    name = "ort"

    def __init__(self, threads):
        import onnxruntime

        import ortgraph

        self.ort, self.graph, self.threads = onnxruntime, ortgraph, threads
        self.limiter, note = _blas_limits(threads)
        self.notes = [note] if note else []
        self.info = {
            "version": onnxruntime.__version__,
            "intra_op_num_threads": threads, "inter_op_num_threads": 1,
            "execution_mode": "sequential", "providers": ["CPUExecutionProvider"],
            "blas": blas_report() + [{
                "library": "onnxruntime", "internal_api": "mlas",
                "note": "MLAS, compiled into onnxruntime (its own kernels and thread pool, "
                        "not visible to threadpoolctl); dispatches on the CPU's ISA at run time",
                "version": onnxruntime.__version__, "num_threads": threads}],
        }

    def context(self, mode):
        return contextlib.nullcontext()

    def sequence(self, cell, mode, shape, dtype="float32"):
        if mode != "inference":
            raise Skip("ONNX Runtime: inference only (no training)")
        rng = np.random.default_rng(SEED)
        x = _inputs(shape, rng)
        weights = _weights(cell, shape[2], shape[3], rng)
        session = self.graph.session(self.graph.sequence_model(cell, *weights), self.threads)
        feed = {"x": x}
        check_close(f"ONNX Runtime {cell} {tuple(shape)} vs crnn",
                    session.run(None, feed)[0], crnn_outputs(cell, x, weights))
        return lambda: session.run(None, feed)

    def _step_session(self, cell, features, units, weights=None):
        if weights is None:
            weights = _pool_weights(features, units, cell)
        return self.graph.session(self.graph.step_model(cell, *weights), self.threads), weights

    def streaming(self, cell, features, units):
        session, weights = self._step_session(cell, features, units)
        x = np.random.default_rng(SEED).standard_normal((1, features)).astype(np.float32)
        names = ["h", "c"] if cell == "lstm" else ["h"]
        state = {n: np.zeros((1, 1, units), np.float32) for n in names}
        outs = ["y"] + [n + "_out" for n in names]
        # Cross-check three steps against crnn's stateful model (predict_on_batch).
        _check_stream_vs_crnn(cell, features, units, weights, session, names)

        def step():
            y, *new = session.run(outs, dict(state, x=x))
            state.update(zip(names, new))
            return y

        return step

    def pool(self, n, variant, features, units):
        session, weights = self._step_session("lstm", features, units)
        x = _pool_inputs(n, features)
        h = np.zeros((1, n, units), np.float32)
        c = np.zeros((1, n, units), np.float32)
        dense_kernel, dense_bias = weights[3:]
        y0 = session.run(["y"], {"x": x, "h": h, "c": c})[0]
        ref = crnn_outputs("lstm", x[:, None], weights[:3])[:, 0] @ dense_kernel + dense_bias
        check_close("ONNX Runtime pool step vs crnn", y0, ref)
        outs = ["y", "h_out", "c_out"]
        if variant == "all":
            state = {"h": h, "c": c}

            def step_all():
                y, state["h"], state["c"] = session.run(outs, dict(state, x=x))
                return y

            return step_all
        # A random half: gather their states, run at batch n/2, scatter back (what a
        # server holding all states in one array would do).
        turn = itertools.cycle(_half_subsets(n))
        xs = x[: n // 2]

        def step_half():
            idx = next(turn)
            y, h_new, c_new = session.run(outs, {"x": xs, "h": h[:, idx], "c": c[:, idx]})
            h[:, idx] = h_new
            c[:, idx] = c_new
            return y

        return step_half

    def gemm(self, m, k, n):
        if not m == k == n:
            raise Skip("ONNX Runtime MatMul is timed on squares only")
        session = self.graph.session(self.graph.matmul_model(n), self.threads)
        rng = np.random.default_rng(SEED)
        feed = {"a": rng.standard_normal((n, n), dtype=np.float32),
                "b": rng.standard_normal((n, n), dtype=np.float32)}
        return lambda: session.run(None, feed)


class KerasBackend:
    name = "keras"

    def __init__(self, threads):
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        import tensorflow as tf

        # Must happen before TensorFlow creates its runtime (the first op or device query).
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        import keras

        if keras.backend.backend() != "tensorflow":
            raise Skip(f"Keras backend is {keras.backend.backend()!r}, not 'tensorflow'")
        self.tf, self.keras = tf, keras
        self.limiter, note = _blas_limits(threads)
        self.notes = [note] if note else []
        self.info = {
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
            "blas": blas_report() + [{
                "library": "tensorflow", "internal_api": "eigen/onednn",
                "note": "TensorFlow's own Eigen and oneDNN kernels (not visible to "
                        "threadpoolctl)"}],
        }

    def context(self, mode):
        return contextlib.nullcontext()

    def _layer_cls(self, cell):
        layers = self.keras.layers
        return {"lstm": layers.LSTM, "gru": layers.GRU, "simple_rnn": layers.SimpleRNN}[cell]

    def sequence(self, cell, mode, shape, dtype="float32"):
        tf = self.tf
        self.keras.utils.set_random_seed(SEED)
        layer = self._layer_cls(cell)(shape[3], return_sequences=True)
        x = tf.constant(_inputs(shape, np.random.default_rng(SEED)))
        layer(x[:, :1])  # build the weights eagerly: tf.function must not create variables
        if mode == "inference":
            return _bind(tf.function(lambda inputs: layer(inputs, training=False)), x)

        weights = layer.trainable_weights

        @tf.function
        def train_step(inputs):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                loss = tf.reduce_sum(layer(inputs, training=True))
            return tape.gradient(loss, [inputs] + weights)

        return _bind(train_step, x)

    def streaming(self, cell, features, units):
        keras = self.keras
        keras.utils.set_random_seed(SEED)
        model = keras.Sequential([
            keras.Input(batch_shape=(1, 1, features)),
            self._layer_cls(cell)(units, stateful=True),
            keras.layers.Dense(1),
        ])
        x = np.random.default_rng(SEED).standard_normal((1, 1, features)).astype(np.float32)
        return lambda: model.predict_on_batch(x)


def _bind(fn, x):
    return lambda: fn(x)


class GemmBackend:
    """SciPy sgemm (the BLAS crnn calls) at the rows' shapes and squares; the FMA probe."""

    name = "gemm"

    def __init__(self, threads):
        from scipy.linalg import blas

        self.sgemm = blas.sgemm
        self.limiter, note = _blas_limits(threads)
        self.notes = [note] if note else []
        import scipy

        self.info = {"scipy": scipy.__version__, "blas": blas_report()}

    def context(self, mode):
        return contextlib.nullcontext()

    def gemm(self, m, k, n):
        """A callable computing C = A @ B, (m, k) x (k, n), into a preallocated C."""
        rng = np.random.default_rng(SEED)
        # Fortran order: what the BLAS wants, so f2py passes the arrays without copies.
        a = np.asfortranarray(rng.standard_normal((m, k), dtype=np.float32))
        b = np.asfortranarray(rng.standard_normal((k, n), dtype=np.float32))
        c = np.zeros((m, n), np.float32, order="F")
        sgemm = self.sgemm
        return lambda: sgemm(1.0, a, b, 0.0, c, overwrite_c=1)


class ModelsBackend:
    """Whole models (bench/models.py) in crnn, Keras or PyTorch: fit per epoch, predict.

    Threads are set the way a user would: crnn.set_num_threads, torch.set_num_threads,
    TensorFlow's intra/inter-op pools; no threadpoolctl (the BLAS pools start at the
    thread count through the environment run.py sets)."""

    def __init__(self, lib, threads):
        import models

        self.models, self.lib, self.threads, self.built = models, lib, threads, {}
        self.notes = []
        self.info = {"models_lib": lib}
        if lib == "crnn":
            crnn = import_crnn()
            crnn.set_num_threads(threads)
            self.info.update(version=crnn.__version__, path=str(Path(crnn.__file__).parent),
                             crnn_num_threads=crnn.get_num_threads())
        elif lib == "torch":
            import torch

            torch.set_num_threads(threads)
            with contextlib.suppress(RuntimeError):
                torch.set_num_interop_threads(1)
            self.info.update(version=torch.__version__, num_threads=torch.get_num_threads())
        else:
            KerasBackend(threads)  # sets TensorFlow's pools before anything runs
            import keras

            self.info.update(version=keras.__version__)

    def context(self, mode):
        return contextlib.nullcontext()

    def model(self, name, mode, scale):
        if name not in self.built:
            self.built[name] = self.models.build(self.lib, name, scale)
        fit_epoch, predict, info = self.built[name]
        self.info.setdefault("data", {})[name] = info
        return fit_epoch if mode == "fit" else predict


BACKENDS = {
    "crnn": CrnnBackend,
    "numpy": NumpyReferenceBackend,
    "torch": TorchBackend,
    "ort": OrtBackend,
    "keras": KerasBackend,
    "gemm": GemmBackend,
}


# --------------------------------------------------------------------------- imports


def import_crnn():
    """Import crnn, preferring this checkout when its extensions are built in place.

    Running the benchmark from a checkout means measuring that checkout; without built
    extensions there, the installed package (if any) is used.
    """
    kernels = REPO / "crnn" / "_kernels"
    built = list(kernels.glob("_lstm*.so")) + list(kernels.glob("_lstm*.pyd"))
    if built and str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    try:
        import crnn
        from crnn import ops  # noqa: F401  (fails when the kernels are not built)
    except ImportError as err:
        raise Skip(f"import crnn failed ({err}); build it with "
                   f"`python setup.py build_ext --inplace` or `pip install .`") from None
    return crnn


def import_reference():
    """crnn.reference, or the checkout's crnn/reference.py when crnn does not import."""
    try:
        return import_crnn().reference
    except Skip:
        path = REPO / "crnn" / "reference.py"
        if not path.exists():
            raise
        spec = importlib.util.spec_from_file_location("crnn_reference", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


# --------------------------------------------------------------------------- checks


def crnn_checks(backend, tasks):
    """Max |crnn - reference| of the forward outputs, on each (cell, dtype)'s smallest size.

    A benchmark of a wrong kernel is worthless: a difference above ATOL raises Mismatch.
    (The torch and ONNX Runtime workers check themselves against crnn at every size.)
    """
    reference = import_reference()
    checks = {}
    seq = [t for t in tasks if t["mode"] in ("inference", "training")]
    for cell, dtype in sorted({(t["cell"], t.get("dtype", "float32")) for t in seq}):
        shape = min((t["shape"] for t in seq
                     if t["cell"] == cell and t.get("dtype", "float32") == dtype),
                    key=lambda s: s[0] * s[1] * s[2] * s[3])
        rng = np.random.default_rng(SEED)
        x = _inputs(shape, rng, dtype)
        weights = _weights(cell, shape[2], shape[3], rng, dtype)
        zeros = [np.zeros((shape[0], shape[3]), dtype) for _ in range(N_STATES[cell])]
        ours, _, _ = getattr(backend.ops, cell)(x, *weights)
        theirs, _, _ = getattr(reference, cell + "_forward")(x, *weights, zeros)
        diff = check_close(f"crnn {cell} {dtype} {tuple(shape)} vs reference", ours, theirs,
                           dtype)
        checks[f"{cell}/{dtype}"] = {"shape": shape, "max_abs_diff_vs_reference": diff}
    return checks


# --------------------------------------------------------------------------- main


def run_task(backend, task, plan):
    mode = task["mode"]
    budget = Budget(**plan["budget"])
    if mode == "fma":
        from fmapeak import measure_fma_peak

        result = measure_fma_peak(seconds=plan.get("fma_seconds", 0.5))
        if result["status"] != "ok":
            raise Skip(result["note"])
        return {"fma": result}
    if mode in ("fit", "predict"):
        fn = backend.model(task["cell"], mode, task.get("scale", 1.0))
        with backend.context(mode):
            return measure_calls(fn, **plan["model_budget"])
    if task.get("gemm"):
        if not hasattr(backend, "gemm"):
            raise Skip(f"{backend.name}: no GEMM timing")
        fn = backend.gemm(*task["gemm"], **{key: task[key] for key in ("kernel", "rows", "repeat")
                                             if task.get(key)})
    elif mode == "streaming":
        fn = backend.streaming(task["cell"], task["shape"][2], task["shape"][3])
    elif mode == "pool":
        if not hasattr(backend, "pool"):
            raise Skip(f"{backend.name}: no stream pool")
        fn = backend.pool(task["n"], task["variant"], task["shape"][2], task["shape"][3])
    else:
        fn = backend.sequence(task["cell"], mode, task["shape"], task.get("dtype", "float32"))
    if task.get("big"):
        budget = Budget(**plan.get("big_budget", plan["budget"]))
    if task.get("light"):  # informational rows (sgemm at the rows' shapes): short timings
        budget = Budget(**plan.get("light_budget", plan["budget"]))
    with backend.context(mode):
        stats = measure(fn, budget)
    if mode == "streaming" and hasattr(backend, "streaming_step"):
        # crnn's step API, timed beside predict_on_batch: label "crnn (Streamer)".
        label = f"{backend.name} (Streamer)"
        try:
            step = backend.streaming_step(task["cell"], task["shape"][2], task["shape"][3])
            with backend.context(mode):
                variant = dict(status="ok", **measure(step, budget))
            shown = f"{variant['median_s'] * 1e6:.3g} us"
        except Skip as err:
            variant, shown = dict(status="skipped", note=str(err)), f"skipped: {err}"
        except Mismatch:
            raise
        except Exception as err:  # reported, not fatal: the predict_on_batch row stands
            variant = dict(status="error", note=f"{type(err).__name__}: {err}")
            shown = f"ERROR {variant['note']}"
        print(f"[{label}] {task['cell']} streaming: {shown}", file=sys.stderr, flush=True)
        stats["variants"] = {label: variant}
    return stats


def main(plan_path, out_path):
    plan = json.loads(Path(plan_path).read_text())
    lib, threads = plan["lib"], plan["threads"]
    out = {"lib": lib, "threads": threads, "kind": plan.get("kind", "kernels"), "info": {},
           "notes": [], "results": [], "python": platform.python_version(),
           "env": {v: os.environ.get(v) for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                   "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}}

    def save():
        out["checks"] = CHECKS
        Path(out_path).write_text(json.dumps(out, indent=1))

    try:
        backend = (ModelsBackend(lib, threads) if out["kind"] == "models"
                   else BACKENDS[lib](threads))
        out["info"] = backend.info
        out["notes"] = backend.notes
        if lib == "crnn" and out["kind"] == "kernels" and plan.get("check", True):
            out["info"]["checks"] = crnn_checks(backend, plan["tasks"])
    except Skip as err:
        out["skipped"] = str(err)
        save()
        return 0
    except Mismatch as err:
        out["mismatch"] = str(err)
        save()
        return MISMATCH_EXIT
    except Exception as err:
        out["skipped"] = f"could not start {lib}: {type(err).__name__}: {err}"
        save()
        return 0
    save()

    for task in plan["tasks"]:
        label = f"[{lib} threads={threads}] {task.get('label') or task['cell']} " \
                f"{task['mode']} {task['size']}{' ' + task['dtype'] if 'dtype' in task else ''}"
        result = dict(task)
        t0 = time.perf_counter()
        try:
            result.update(status="ok", **run_task(backend, task, plan))
            shown = (f"{result['median_s'] * 1e3:.4g} ms" if "median_s" in result
                     else json.dumps(result.get("fma")))
        except Skip as err:
            result.update(status="skipped", note=str(err))
            shown = f"skipped: {err}"
        except Mismatch as err:
            result.update(status="error", note=f"MISMATCH: {err}")
            out["mismatch"] = str(err)
            out["results"].append(result)
            save()
            print(f"{label}: MISMATCH {err}", file=sys.stderr, flush=True)
            return MISMATCH_EXIT
        except Exception as err:
            result.update(status="error", note=f"{type(err).__name__}: {err}")
            shown = f"ERROR {type(err).__name__}: {err}"
            traceback.print_exc(file=sys.stderr)
        result["wall_s"] = round(time.perf_counter() - t0, 3)
        print(f"{label}: {shown}", file=sys.stderr, flush=True)
        out["results"].append(result)
        save()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
