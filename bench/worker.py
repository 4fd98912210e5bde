"""One library, one thread count: time every task of a plan in this process.

``run.py`` starts one worker process per (library, thread count) so that every library's
thread pools are sized before it initializes (TensorFlow fixes its pools at start-up) and
no library's runtime (OpenMP, oneDNN, OpenBLAS) disturbs another's.

Usage (normally only run.py calls this):
    python bench/worker.py PLAN.json OUT.json

PLAN.json: {"lib": "crnn"|"numpy"|"torch"|"keras"|"gemm", "threads": 1,
            "tasks": [{"cell": "lstm", "mode": "inference", "size": "S2",
                       "shape": [B, T, F, H]}, ...], "budget": {...}, "big_budget": {...}}
OUT.json is rewritten after every task, so a crash keeps what was measured before it.
"""

import contextlib
import importlib.util
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from timing import Budget, measure

REPO = Path(__file__).resolve().parent.parent
GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}
N_STATES = {"lstm": 2, "gru": 1, "simple_rnn": 1}
SEED = 1234


class Skip(Exception):
    """A task this library cannot run; the message says why."""


def _weights(cell, features, units, rng):
    """Keras-layout float32 weights: kernel (F, G*U), recurrent_kernel (U, G*U), bias."""
    g = GATES[cell]
    scale = 1.0 / np.sqrt(units)
    kernel = rng.uniform(-scale, scale, (features, g * units)).astype(np.float32)
    recurrent_kernel = rng.uniform(-scale, scale, (units, g * units)).astype(np.float32)
    bias_shape = (2, 3 * units) if cell == "gru" else (g * units,)
    bias = rng.uniform(-scale, scale, bias_shape).astype(np.float32)
    return kernel, recurrent_kernel, bias


def _inputs(shape, rng):
    batch, timesteps, features, _ = shape
    return rng.standard_normal((batch, timesteps, features)).astype(np.float32)


def _blas_limits(threads):
    """Limit every BLAS/OpenMP pool loaded so far (and later ones, via the env) to threads."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None, "threadpoolctl not installed: BLAS threads set only by environment"
    return threadpool_limits(limits=threads), None


def _threadpool_info():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return threadpool_info()


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
            "threadpools": _threadpool_info(),
        }
        if hasattr(self.crnn, "get_num_threads"):
            self.info["crnn_num_threads"] = self.crnn.get_num_threads()

    def context(self, mode):
        return contextlib.nullcontext()

    def sequence(self, cell, mode, shape):
        rng = np.random.default_rng(SEED)
        x = _inputs(shape, rng)
        kernel, recurrent_kernel, bias = _weights(cell, shape[2], shape[3], rng)
        forward = getattr(self.ops, cell)
        grad = getattr(self.ops, cell + "_grad")
        if mode == "inference":
            return lambda: forward(x, kernel, recurrent_kernel, bias)
        # Training: the loss is outputs.sum(), so d_outputs is all ones (as for torch/keras).
        d_outputs = np.ones((shape[0], shape[1], shape[3]), np.float32)

        def train_step():
            _, _, cache = forward(x, kernel, recurrent_kernel, bias, training=True)
            return grad(cache, d_outputs)

        return train_step

    def streaming(self, cell, features, units):
        layers, sequential = self._model_api()
        layer_name = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN"}[cell]
        layer_cls = getattr(layers, layer_name, None)
        if layer_cls is None or not hasattr(layers, "Dense"):
            raise Skip(f"crnn.layers.{layer_name} or crnn.layers.Dense not available yet")
        model = sequential([
            layer_cls(units, stateful=True, batch_input_shape=(1, 1, features)),
            layers.Dense(1),
        ])
        x = np.random.default_rng(SEED).standard_normal((1, 1, features)).astype(np.float32)
        return lambda: model.predict_on_batch(x)

    def streaming_step(self, cell, features, units):
        """The same model through crnn.streaming.Streamer, crnn's documented step API.

        Timed as an extra variant of the crnn streaming row (result["variants"]), beside
        predict_on_batch."""
        try:
            streamer_cls = importlib.import_module("crnn.streaming").Streamer
        except ImportError as err:
            raise Skip(f"crnn.streaming does not import ({err})") from None
        layers, sequential = self._model_api()
        layer_cls = getattr(layers, {"lstm": "LSTM", "gru": "GRU",
                                     "simple_rnn": "SimpleRNN"}[cell])
        model = sequential([
            layer_cls(units, stateful=True, batch_input_shape=(1, 1, features)),
            layers.Dense(1),
        ])
        step = streamer_cls(model).step
        x = np.random.default_rng(SEED).standard_normal(features).astype(np.float32)
        return lambda: step(x)

    def _model_api(self):
        """(crnn.layers, crnn.Sequential), or Skip while the model API is not there."""
        try:
            layers = importlib.import_module("crnn.layers")
        except ImportError as err:
            raise Skip(f"crnn.layers does not import yet ({err})") from None
        sequential = getattr(self.crnn, "Sequential", None)
        if sequential is None:
            with contextlib.suppress(ImportError):
                sequential = getattr(importlib.import_module("crnn.models"), "Sequential", None)
        if sequential is None:
            raise Skip("crnn.Sequential not available yet (model API not merged)")
        return layers, sequential


class NumpyReferenceBackend:
    name = "numpy"

    def __init__(self, threads):
        self.reference = import_reference()
        self.limiter, note = _blas_limits(threads)
        self.notes = [note] if note else []
        self.info = {"numpy": np.__version__, "threadpools": _threadpool_info()}

    def context(self, mode):
        return contextlib.nullcontext()

    def sequence(self, cell, mode, shape):
        rng = np.random.default_rng(SEED)
        x = _inputs(shape, rng)
        kernel, recurrent_kernel, bias = _weights(cell, shape[2], shape[3], rng)
        zeros = [np.zeros((shape[0], shape[3]), np.float32) for _ in range(N_STATES[cell])]
        forward = getattr(self.reference, cell + "_forward")
        backward = getattr(self.reference, cell + "_backward")
        if mode == "inference":
            return lambda: forward(x, kernel, recurrent_kernel, bias, zeros)
        d_outputs = np.ones((shape[0], shape[1], shape[3]), np.float32)

        def train_step():
            _, _, tape = forward(x, kernel, recurrent_kernel, bias, zeros)
            return backward(tape, d_outputs, zeros)

        return train_step

    def streaming(self, cell, features, units):
        raise Skip("the NumPy reference has no model API")


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
        self.info = {
            "version": torch.__version__,
            "num_threads": torch.get_num_threads(),
            "num_interop_threads": torch.get_num_interop_threads(),
            "mkldnn_enabled": bool(torch.backends.mkldnn.is_available()),
            "threadpools": _threadpool_info(),
        }

    def _module(self, cell, features, units):
        nn = self.torch.nn
        torch_cls = {"lstm": nn.LSTM, "gru": nn.GRU, "simple_rnn": nn.RNN}[cell]
        self.torch.manual_seed(SEED)
        return torch_cls(features, units, batch_first=True)

    def context(self, mode):
        if mode == "training":
            return contextlib.nullcontext()
        return self.torch.inference_mode()

    def sequence(self, cell, mode, shape):
        torch = self.torch
        module = self._module(cell, shape[2], shape[3])
        x = torch.from_numpy(_inputs(shape, np.random.default_rng(SEED)))
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
        }

    def context(self, mode):
        return contextlib.nullcontext()

    def _layer_cls(self, cell):
        layers = self.keras.layers
        return {"lstm": layers.LSTM, "gru": layers.GRU, "simple_rnn": layers.SimpleRNN}[cell]

    def sequence(self, cell, mode, shape):
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
    """SciPy sgemm at the shapes of the rows: the yardstick for 'fraction of peak'."""

    name = "gemm"

    def __init__(self, threads):
        from scipy.linalg import blas

        self.sgemm = blas.sgemm
        self.limiter, note = _blas_limits(threads)
        self.notes = [note] if note else []
        import scipy

        self.info = {"scipy": scipy.__version__, "threadpools": _threadpool_info()}

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


BACKENDS = {
    "crnn": CrnnBackend,
    "numpy": NumpyReferenceBackend,
    "torch": TorchBackend,
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
    """Max |crnn - reference| of the forward outputs, on each cell's smallest size.

    A benchmark of a wrong kernel is worthless, so the crnn worker checks first.
    """
    reference = import_reference()
    checks = {}
    for cell in sorted({t["cell"] for t in tasks if t["mode"] != "streaming"}):
        shape = min((t["shape"] for t in tasks if t["cell"] == cell and t["mode"] != "streaming"),
                    key=lambda s: s[0] * s[1] * s[2] * s[3])
        rng = np.random.default_rng(SEED)
        x = _inputs(shape, rng)
        kernel, recurrent_kernel, bias = _weights(cell, shape[2], shape[3], rng)
        zeros = [np.zeros((shape[0], shape[3]), np.float32) for _ in range(N_STATES[cell])]
        try:
            ours, _, _ = getattr(backend.ops, cell)(x, kernel, recurrent_kernel, bias)
            theirs, _, _ = getattr(reference, cell + "_forward")(x, kernel, recurrent_kernel,
                                                                 bias, zeros)
            checks[cell] = {"shape": shape,
                            "max_abs_diff_vs_reference": float(np.max(np.abs(ours - theirs)))}
        except Exception as err:  # reported, not fatal: the timings still stand
            checks[cell] = {"shape": shape, "error": f"{type(err).__name__}: {err}"}
    return checks


# --------------------------------------------------------------------------- main


def run_task(backend, task, budget, big_budget):
    mode = task["mode"]
    if task.get("gemm"):
        fn = backend.gemm(*task["gemm"])
    elif mode == "streaming":
        fn = backend.streaming(task["cell"], task["shape"][2], task["shape"][3])
    else:
        fn = backend.sequence(task["cell"], mode, task["shape"])
    with backend.context(mode):
        stats = measure(fn, big_budget if task.get("big") else budget)
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
        except Exception as err:  # reported, not fatal: the predict_on_batch row stands
            variant = dict(status="error", note=f"{type(err).__name__}: {err}")
            shown = f"ERROR {variant['note']}"
        print(f"[{label}] {task['cell']} streaming: {shown}", file=sys.stderr, flush=True)
        stats["variants"] = {label: variant}
    return stats


def main(plan_path, out_path):
    plan = json.loads(Path(plan_path).read_text())
    lib, threads = plan["lib"], plan["threads"]
    budget = Budget(**plan["budget"])
    big_budget = Budget(**plan.get("big_budget", plan["budget"]))
    out = {"lib": lib, "threads": threads, "info": {}, "notes": [], "results": [],
           "python": platform.python_version()}

    def save():
        Path(out_path).write_text(json.dumps(out, indent=1))

    try:
        backend = BACKENDS[lib](threads)
    except Skip as err:
        out["skipped"] = str(err)
        save()
        return
    except Exception as err:
        out["skipped"] = f"could not start {lib}: {type(err).__name__}: {err}"
        save()
        return
    out["info"] = backend.info
    out["notes"] = backend.notes
    if lib == "crnn" and plan.get("check", True):
        out["info"]["checks"] = crnn_checks(backend, plan["tasks"])
    save()

    for task in plan["tasks"]:
        label = f"[{lib} threads={threads}] {task.get('label') or task['cell']} " \
                f"{task['mode']} {task['size']}"
        result = dict(task)
        t0 = time.perf_counter()
        try:
            result.update(status="ok", **run_task(backend, task, budget, big_budget))
            shown = f"{result['median_s'] * 1e3:.4g} ms"
        except Skip as err:
            result.update(status="skipped", note=str(err))
            shown = f"skipped: {err}"
        except Exception as err:
            result.update(status="error", note=f"{type(err).__name__}: {err}")
            shown = f"ERROR {type(err).__name__}: {err}"
            traceback.print_exc(file=sys.stderr)
        result["wall_s"] = round(time.perf_counter() - t0, 3)
        print(f"{label}: {shown}", file=sys.stderr, flush=True)
        out["results"].append(result)
        save()


if __name__ == "__main__":
    main(*sys.argv[1:3])
