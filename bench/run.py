"""crnn against PyTorch, ONNX Runtime (and optionally Keras 3 and the NumPy reference).

One command measures every cell (LSTM, GRU, SimpleRNN), mode (inference, training,
streaming), size and thread count, float64 crnn rows, the stream pool, whole models
(fit per epoch and predict, against Keras and PyTorch), with the machine's peak (an FMA
probe and the single-core GEMM of OpenBLAS, torch and ONNX Runtime) measured in the same
run, and checks the goals of the speed issue. It prints a Markdown report, writes JSON
(and a PNG chart when matplotlib is installed). See bench/README.md for every column.

Usage:
    python bench/run.py            # full run (about 10 minutes on 2 cores)
    python bench/run.py --quick    # S1 and S2, one thread, short timings (1-2 minutes)
    python bench/run.py --only kernels --sizes S3,S4,S5      # a part of the full run
"""

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import report
from report import GATES, gflop

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# name -> (batch, timesteps, features, units)
SIZES = {
    "S1": (1, 100, 16, 64),      # online / small
    "S2": (32, 50, 16, 64),      # typical Keras time-series model (issue 2's timing size)
    "S3": (64, 100, 128, 256),   # medium
    "S4": (64, 50, 512, 512),    # large
    "S5": (16, 25, 1024, 1024),  # DeepBench LSTM 1024/16/25
}
STREAM_SHAPE = (1, 1, 16, 64)   # streaming: batch 1, one timestep per call, LSTM(64)+Dense(1)
CELLS = ("lstm", "gru", "simple_rnn")
MODES = ("inference", "training", "streaming")
LIBS = ("crnn", "numpy", "torch", "ort", "keras")
DEFAULT_LIBS = ("crnn", "torch", "ort")
SECTIONS = ("peak", "kernels", "float64", "avx2", "streaming", "pool", "models")
POOL_SIZES = (1, 8, 64, 1024, 16384)
POOL_SHAPE = (1, 1, 16, 64)     # the pool: LSTM(64)+Dense(1), 16 features, one step per call
MODEL_NAMES = ("charlstm", "forecaster", "bilstm")
MODEL_LIBS = ("crnn", "keras", "torch")
# Environment variables a benchmark worker must not inherit: they force OpenBLAS onto a
# kernel that users' machines do not get (our CI sets them).
UNSET_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

# Timing budgets (seconds); see timing.Budget. "big" applies to rows above BIG_GFLOP.
BUDGETS = {
    "full": dict(target_sample_s=0.05, budget_s=0.7, min_samples=5, max_samples=50,
                 warmup_s=0.2),
    "full_big": dict(target_sample_s=0.1, budget_s=0.6, min_samples=3, max_samples=10,
                     warmup_s=0.3),
    "quick": dict(target_sample_s=0.02, budget_s=0.25, min_samples=3, max_samples=20,
                  warmup_s=0.05),
    # Whole models: one warm-up epoch, then single calls (timing.measure_calls).
    "models": dict(calls=3, warmup=1),
    "models_quick": dict(calls=2, warmup=1),
}
BIG_GFLOP = 1.0


def parse_size(text):
    """'S3' or a literal 'BxTxFxH' (e.g. 8x20x32x64) -> (name, shape)."""
    if text in SIZES:
        return text, SIZES[text]
    try:
        shape = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 4 or min(shape) < 1:
        raise argparse.ArgumentTypeError(
            f"--sizes expects names from {sorted(SIZES)} or BxTxFxH with positive integers "
            f"(e.g. 8x20x32x64), received {text!r}")
    return text, shape


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="sanity run: sizes S1,S2, one thread, short timings, pool sizes "
                        "1,64,1024, small model data (1-2 min on 2 cores)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help="sections to run, comma-separated subset of %(default)s "
                        "(the peak is always measured when kernels run)")
    parser.add_argument("--sizes", help="comma-separated size names or BxTxFxH "
                        "(default S1..S5; --quick: S1,S2)")
    parser.add_argument("--cells", default=",".join(CELLS), help="default: %(default)s")
    parser.add_argument("--modes", default=",".join(MODES), help="default: %(default)s")
    parser.add_argument("--libs", default=",".join(DEFAULT_LIBS),
                        help=f"libraries for the kernel rows, subset of {','.join(LIBS)} "
                        "(crnn is always the baseline of the ratios); default: %(default)s")
    parser.add_argument("--model-libs", default=",".join(MODEL_LIBS),
                        help="libraries for the model-level section; default: %(default)s")
    parser.add_argument("--models", default=",".join(MODEL_NAMES),
                        help="which models of the model-level section; default: %(default)s")
    parser.add_argument("--model-scale", type=float,
                        help="fraction of the model data sets to use (default 1; --quick: "
                        "0.125)")
    parser.add_argument("--pool-sizes", help="stream counts N of the pool section "
                        "(default 1,8,64,1024,16384; --quick: 1,64,1024)")
    parser.add_argument("--f64-cells", default="lstm,gru",
                        help="cells with float64 crnn rows (one thread); default: %(default)s")
    parser.add_argument("--avx2-cells", default="lstm,gru",
                        help="cells with rows of crnn's AVX2 path (CRNN_ISA=avx2, one "
                        "thread); default: %(default)s")
    parser.add_argument("--threads", help="comma-separated thread counts (default 1,2; "
                        "--quick: 1)")
    parser.add_argument("--ref-max-gflop", type=float, default=1.0,
                        help="skip the NumPy reference (--libs numpy) on rows whose forward "
                        "pass exceeds this many GFLOP; default: %(default)s")
    parser.add_argument("--json", default=str(HERE / "results.json"),
                        help="where to write the JSON results; default: %(default)s")
    parser.add_argument("--markdown", help="also write the Markdown report to this file")
    parser.add_argument("--chart", default=str(HERE / "results.png"),
                        help="PNG chart path, made only if matplotlib is installed; "
                        "default: %(default)s")
    parser.add_argument("--no-chart", action="store_true", help="do not draw the chart")
    parser.add_argument("--worker-timeout", type=float, default=900.0,
                        help="seconds before a worker process is killed; default: %(default)s")
    args = parser.parse_args(argv)

    def split(text, allowed, name):
        items = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in items if v not in allowed]
        if bad or not items:
            parser.error(f"--{name} takes a comma-separated subset of {list(allowed)}, "
                         f"received {text!r}")
        return items

    def ints(text, name):
        try:
            values = [int(v) for v in text.split(",")]
        except ValueError:
            values = []
        if not values or min(values) < 1:
            parser.error(f"--{name} takes positive integers such as 1,2, received {text!r}")
        return values

    args.only = split(args.only, SECTIONS, "only")
    args.cells = split(args.cells, CELLS, "cells")
    args.modes = split(args.modes, MODES, "modes")
    args.libs = split(args.libs, LIBS, "libs")
    args.model_libs = split(args.model_libs, MODEL_LIBS, "model-libs")
    args.models = split(args.models, MODEL_NAMES, "models")
    args.f64_cells = split(args.f64_cells, CELLS, "f64-cells")
    args.avx2_cells = split(args.avx2_cells, CELLS, "avx2-cells")
    if "crnn" not in args.libs:
        args.libs.insert(0, "crnn")
    sizes = args.sizes or ("S1,S2" if args.quick else "S1,S2,S3,S4,S5")
    try:
        args.sizes = dict(parse_size(v.strip()) for v in sizes.split(",") if v.strip())
    except argparse.ArgumentTypeError as err:
        parser.error(str(err))
    args.threads = ints(args.threads or ("1" if args.quick else "1,2"), "threads")
    args.pool_sizes = ints(args.pool_sizes or ("1,64,1024" if args.quick else
                                               ",".join(map(str, POOL_SIZES))), "pool-sizes")
    if args.model_scale is None:
        args.model_scale = 0.125 if args.quick else 1.0
    if not args.model_scale > 0:
        parser.error(f"--model-scale must be positive, received {args.model_scale}")
    return args


# --------------------------------------------------------------------------- plan


def make_tasks(args, threads):
    """Every kernel-level task of one thread count, in the order the tables show them."""
    tasks = []
    seq_modes = [m for m in args.modes if m != "streaming"]
    first = threads == min(args.threads)
    for cell in args.cells:
        if "kernels" in args.only:
            for mode in seq_modes:
                for name, shape in args.sizes.items():
                    tasks.append(dict(cell=cell, mode=mode, size=name, shape=list(shape),
                                      big=gflop(cell, "inference", shape) > BIG_GFLOP))
        if "streaming" in args.only and "streaming" in args.modes:
            tasks.append(dict(cell=cell, mode="streaming", size="stream",
                              shape=list(STREAM_SHAPE)))
    if "float64" in args.only and first:
        for cell in args.f64_cells:
            for mode in seq_modes:
                for name, shape in args.sizes.items():
                    tasks.append(dict(cell=cell, mode=mode, size=name, shape=list(shape),
                                      dtype="float64", libs=["crnn"],
                                      big=gflop(cell, "inference", shape) > BIG_GFLOP))
    if "pool" in args.only and first:
        for n in args.pool_sizes:
            for variant in ("all", "half") if n >= 2 else ("all",):
                tasks.append(dict(cell="lstm", mode="pool", size=f"N{n}-{variant}", n=n,
                                  variant=variant, shape=list(POOL_SHAPE),
                                  libs=["crnn", "ort"]))
    return tasks


def gemm_tasks(args, tasks):
    """SciPy sgemm shapes: the FMA probe, squares for the peak, each row's input and step
    GEMMs."""
    out = [dict(cell="fma", mode="fma", size="fma", label="FMA probe")]
    out += square_gemm_tasks(args, "start")
    seen = set()
    for task in tasks:
        if task["mode"] not in ("inference", "training") or task.get("dtype"):
            continue
        batch, timesteps, features, units = task["shape"]
        g = GATES[task["cell"]]
        for kind, mkn in (("input", (batch * timesteps, features, g * units)),
                          ("step", (batch, units, g * units))):
            if mkn in seen:
                continue
            seen.add(mkn)
            out.append(dict(cell="gemm", mode="gemm", size=f"{kind}", label=f"sgemm {mkn}",
                            gemm=list(mkn), big=False, light=True))
    return out


def crnn_gemm_tasks(gemms):
    """The rows' input and step shapes of ``gemms`` (gemm_tasks), for crnn's own kernels
    (worker.py's CrnnBackend.gemm): the per-step product, and the input projection on a
    chunk of rows as the sequence kernels project one (crnn/_kernels/_lstm.pyx's
    inference_chunk: products filling 512 KiB, which stay in L2 until their steps; 256
    rows at least for a W over 1 MiB, 16 MiB of products for a W over 4 MiB, streamed
    from L3); ``repeat`` products per timed call, about 2^21 multiply-adds (a
    microsecond's product timed alone would time the Python call)."""
    out = []
    for t in gemms:
        if t["size"] not in ("input", "step"):
            continue
        m, k, n = t["gemm"]
        rows = max(8, (512 << 10) // (4 * n))
        if 4 * k * n > 1 << 20:
            rows = max(rows, 256)
        if 4 * k * n > 4 << 20:
            rows = max(rows, (16 << 20) // (4 * n))
        rows = m if t["size"] == "step" else min(m, rows)
        repeat = max(1, (1 << 21) // (rows * k * n))
        out.append(dict(t, kernel=t["size"], rows=rows, repeat=repeat,
                        label=f"crnn {t['size']} product {tuple(t['gemm'])}"))
    return out


def square_gemm_tasks(args, phase):
    """Square sgemm products, the yardstick of the peak; measured at start and end."""
    squares = (1024,) if args.quick else (1024, 2048)
    return [dict(cell="gemm", mode="gemm", size=f"square{n}", label=f"sgemm {n}^3 ({phase})",
                 phase=phase, gemm=[n, n, n], big=n >= 2048) for n in squares]


def worker_env(threads):
    """The environment of a worker: pools sized to ``threads``, OpenBLAS left to pick its
    own kernel (UNSET_ENV removed)."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET_ENV}
    # Thread pools read these when they start; threadpoolctl / torch / tf / ORT settings in
    # the worker then pin them again.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[var] = str(threads)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["KERAS_BACKEND"] = "tensorflow"
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def avx2_tasks(args):
    """crnn's inference/training rows again, for the worker that runs crnn's AVX2 path."""
    return [dict(cell=cell, mode=mode, size=name, shape=list(shape),
                 big=gflop(cell, "inference", shape) > BIG_GFLOP)
            for cell in args.avx2_cells for mode in args.modes if mode != "streaming"
            for name, shape in args.sizes.items()]


def run_worker(lib, threads, tasks, args, kind="kernels", extra_env=None):
    """Run one worker process; return its output dict (partial if it crashed)."""
    quick = args.quick
    plan = dict(lib=lib, threads=threads, tasks=tasks, kind=kind,
                budget=BUDGETS["quick" if quick else "full"],
                big_budget=BUDGETS["quick" if quick else "full_big"],
                model_budget=BUDGETS["models_quick" if quick else "models"],
                light_budget=BUDGETS["quick"],
                fma_seconds=0.2 if quick else 0.5)
    with tempfile.TemporaryDirectory(prefix="crnn_bench_") as tmp:
        plan_path, out_path = Path(tmp, "plan.json"), Path(tmp, "out.json")
        plan_path.write_text(json.dumps(plan))
        cmd = [sys.executable, str(HERE / "worker.py"), str(plan_path), str(out_path)]
        t0 = time.perf_counter()
        try:
            env = dict(worker_env(threads), **(extra_env or {}))
            proc = subprocess.run(cmd, env=env, timeout=args.worker_timeout, check=False)
            failure = None if proc.returncode == 0 else f"worker exited with code {proc.returncode}"
        except subprocess.TimeoutExpired:
            failure = f"worker killed after {args.worker_timeout:.0f} s"
        out = (json.loads(out_path.read_text()) if out_path.exists()
               else dict(lib=lib, threads=threads, info={}, notes=[], results=[]))
        out["wall_s"] = round(time.perf_counter() - t0, 2)
    out.setdefault("kind", kind)
    if failure and not out.get("mismatch"):
        out.setdefault("notes", []).append(failure)
        done = {_task_key(r) for r in out["results"]}
        for task in tasks:
            if _task_key(task) not in done:
                out["results"].append(dict(task, status="error",
                                           note=f"not measured: {failure}"))
    return out


def _task_key(task):
    return (task["cell"], task["mode"], task["size"], task.get("label"), task.get("dtype"))


# --------------------------------------------------------------------------- machine


def machine_info():
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if hasattr(os, "sched_getaffinity"):
        info["usable_cpus"] = len(os.sched_getaffinity(0))
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        lines = dict(line.split(":", 1) for line in cpuinfo.splitlines() if ":" in line)
        lines = {k.strip(): v.strip() for k, v in lines.items()}
        info["cpu_model"] = lines.get("model name", platform.processor())
        flags = set(lines.get("flags", "").split())
        info["cpu_simd"] = sorted(flags & {"sse4_2", "avx", "avx2", "fma", "avx512f",
                                           "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile"})
        info["isa"] = ("AVX-512" if "avx512f" in flags else
                       "AVX2+FMA" if {"avx2", "fma"} <= flags else "no AVX2")
        info["physical_cores"] = len({(b.get("physical id"), b.get("core id"))
                                      for b in _cpu_blocks(cpuinfo)}) or None
    except OSError:
        info["cpu_model"] = platform.processor()
        info["isa"] = platform.machine()
    try:
        meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0]
        info["memory"] = meminfo.split(":", 1)[1].strip()
    except (OSError, IndexError):
        pass
    versions = {}
    for dist in ("numpy", "scipy", "torch", "onnxruntime", "onnx", "tensorflow",
                 "tensorflow-cpu", "keras", "crnn", "threadpoolctl", "Cython"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    info["versions"] = versions
    info["env_unset_in_workers"] = {v: os.environ.get(v) for v in UNSET_ENV}
    return info


def _cpu_blocks(cpuinfo):
    for block in cpuinfo.strip().split("\n\n"):
        yield {k.strip(): v.strip() for k, v in
               (line.split(":", 1) for line in block.splitlines() if ":" in line)}


# --------------------------------------------------------------------------- main


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    doc = {
        "schema": 2,
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, "bench/run.py"] + sys.argv[1:]),
        "quick": args.quick,
        "config": {
            "sizes": {k: list(v) for k, v in args.sizes.items()},
            "stream_shape": list(STREAM_SHAPE), "pool_shape": list(POOL_SHAPE),
            "sections": args.only, "cells": args.cells, "modes": args.modes,
            "libs": args.libs, "model_libs": args.model_libs, "models": args.models,
            "model_scale": args.model_scale, "pool_sizes": args.pool_sizes,
            "f64_cells": args.f64_cells, "avx2_cells": args.avx2_cells,
            "threads": args.threads,
            "ref_max_gflop": args.ref_max_gflop, "budgets": BUDGETS, "big_gflop": BIG_GFLOP,
            "unset_env": list(UNSET_ENV),
        },
        "machine": machine_info(),
        "workers": [],
        "results": [],
        "notes": [],
    }
    doc["_t0"] = started
    try:
        _run_all(args, doc)
    except MismatchError as err:
        doc["mismatch"] = str(err)
    del doc["_t0"]
    report.finish(doc)
    doc["machine"]["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    doc["total_wall_s"] = round(time.perf_counter() - started, 1)
    text = report.markdown(doc)
    print(text)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"JSON written to {args.json}", file=sys.stderr)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
        print(f"Markdown written to {args.markdown}", file=sys.stderr)
    if not args.no_chart and not doc.get("mismatch"):
        print(report.chart(doc, args.chart), file=sys.stderr)
    print(f"total {doc['total_wall_s']:.0f} s", file=sys.stderr)
    if doc.get("mismatch"):
        raise MismatchError(f"implementations disagree, run stopped: {doc['mismatch']}")


class MismatchError(RuntimeError):
    """A worker's numeric cross-check failed: two implementations computed different
    results, so their timings are not comparable."""


def _say(doc, text):
    """A progress line on stderr, stamped with the run's elapsed time."""
    print(f"== [{time.perf_counter() - doc['_t0']:5.0f} s] {text}", file=sys.stderr, flush=True)


def _run_all(args, doc):
    kernel_sections = {"peak", "kernels", "float64", "avx2", "streaming", "pool"} & set(args.only)
    for threads in args.threads if kernel_sections else []:
        tasks = make_tasks(args, threads)
        measure_peak = "peak" in args.only or "kernels" in args.only
        if measure_peak:
            _say(doc, f"{threads} thread(s): FMA probe and sgemm peak")
            gemms = gemm_tasks(args, tasks)
            if threads != min(args.threads):
                gemms = gemms[1:]      # the FMA probe is single-core: once is enough
            _collect(doc, run_worker("gemm", threads, gemms, args), "gemm")
            if threads == 1 and "crnn" in args.libs:
                # crnn's own kernels at the same shapes (one thread: they are one-thread
                # kernels), the yardstick of the time its rows spend outside the products
                _say(doc, "1 thread: crnn's product kernels at the rows' GEMM shapes")
                _collect(doc, run_worker("crnn", 1, crnn_gemm_tasks(gemms), args),
                         "crnn-gemm")
        squares = square_gemm_tasks(args, "start") if measure_peak else []
        extra = avx2_tasks(args) if "avx2" in args.only and threads == min(args.threads) else []
        # Interleaved: one chunk (a size, streaming, the pool) at a time, every library in
        # turn, so that the rows compared in a ratio are timed within seconds of each other
        # (load on a shared machine drifts over minutes).
        for i, chunk in enumerate(_chunks(tasks + [dict(t, avx2=True) for t in extra])):
            for lib in args.libs + ["crnn-avx2"]:
                if lib == "crnn-avx2":
                    lib_tasks = [t for t in chunk if t.get("avx2")]
                else:
                    lib_tasks = [t for t in chunk
                                 if not t.get("avx2") and lib in t.get("libs", args.libs)]
                if lib in ("torch", "ort") and i == 0:
                    lib_tasks = [dict(t, label=f"{lib} matmul {t['gemm'][0]}^3")
                                 for t in squares] + lib_tasks
                if lib == "numpy":
                    lib_tasks = _numpy_tasks(args, doc, lib_tasks, threads)
                if not lib_tasks:
                    continue
                what = lib_tasks[-1]["size"] if lib_tasks[-1]["mode"] != "pool" else "pool"
                if lib == "crnn-avx2":
                    # crnn told to use its AVX2+FMA code (what a machine without AVX-512 runs).
                    _say(doc, f"{threads} thread(s): {what}: crnn with CRNN_ISA=avx2")
                    out = run_worker("crnn", threads, lib_tasks, args,
                                     extra_env={"CRNN_ISA": "avx2"})
                else:
                    _say(doc, f"{threads} thread(s): {what}: {lib}")
                    out = run_worker(lib, threads, lib_tasks, args)
                _collect(doc, out, lib)
        if measure_peak:
            # The peak again: on a shared machine a moment of load must not set the yardstick.
            _say(doc, f"{threads} thread(s): sgemm peak again")
            _collect(doc, run_worker("gemm", threads, square_gemm_tasks(args, "end"), args),
                     "gemm")
    if "models" in args.only:
        for threads in args.threads:
            for lib in args.model_libs:
                tasks = [dict(cell=name, mode=mode, size="model", shape=[],
                              scale=args.model_scale)
                         for name in args.models for mode in ("fit", "predict")]
                _say(doc, f"{threads} thread(s): models in {lib}")
                _collect(doc, run_worker(lib, threads, tasks, args, kind="models"), lib)


def _chunks(tasks):
    """Tasks grouped by size (sequence rows of every cell, dtype and mode), then streaming,
    then the pool, in first-seen order."""
    groups = {}
    for task in tasks:
        key = task["mode"] if task["mode"] in ("streaming", "pool") else task["size"]
        groups.setdefault(key, []).append(task)
    return list(groups.values())


def _numpy_tasks(args, doc, tasks, threads):
    """The NumPy reference's tasks; the slow and the impossible ones become skip rows."""
    keep = []
    for task in tasks:
        if task["mode"] not in ("inference", "training"):
            doc["results"].append(dict(task, lib="numpy", threads=threads, status="skipped",
                                       note="the NumPy reference has no model API"))
        elif gflop(task["cell"], "inference", task["shape"]) > args.ref_max_gflop:
            doc["results"].append(dict(
                task, lib="numpy", threads=threads, status="skipped",
                note=f"NumPy reference skipped above {args.ref_max_gflop:g} "
                     f"GFLOP per forward (--ref-max-gflop): too slow"))
        else:
            keep.append(task)
    return keep


def _collect(doc, out, lib):
    """Fold one worker's output into the run document; raise MismatchError on a failed
    cross-check (after keeping what the worker measured)."""
    threads = out["threads"]
    doc["workers"].append(dict({k: out.get(k) for k in ("threads", "kind", "info", "notes",
                                                         "skipped", "wall_s", "python", "env",
                                                         "mismatch", "checks")}, lib=lib))
    for note in out.get("notes") or []:
        doc["notes"].append(f"{lib} (threads={threads}): {note}")
    if out.get("skipped"):
        doc["notes"].append(f"{lib} skipped (threads={threads}): {out['skipped']}")
        return
    for result in out["results"]:
        doc["results"].append(dict(result, lib=lib, threads=threads,
                                   kind=out.get("kind", "kernels")))
    if out.get("mismatch"):
        raise MismatchError(f"{lib} (threads={threads}): {out['mismatch']}")


if __name__ == "__main__":
    main()
