"""crnn against the NumPy reference, PyTorch CPU and Keras 3 (TensorFlow), side by side.

One command measures every cell (LSTM, GRU, SimpleRNN), mode (inference, training,
streaming), size and thread count, with the machine's single-GEMM peak measured in the
same run. It prints a Markdown table, writes JSON (and a PNG chart when matplotlib is
installed). See bench/README.md for what each column means.

Usage:
    python bench/run.py            # full run (about 10-15 minutes on 2 cores)
    python bench/run.py --quick    # S1 and S2, short timings (under 2 minutes)
    python bench/run.py --cells lstm --sizes S2 --libs crnn,numpy --threads 1   # issue 2
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
LIBS = ("crnn", "numpy", "torch", "keras")

# Timing budgets (seconds); see timing.Budget. "big" applies to rows above BIG_GFLOP.
BUDGETS = {
    "full": dict(target_sample_s=0.05, budget_s=1.0, min_samples=5, max_samples=50,
                 warmup_s=0.2),
    "full_big": dict(target_sample_s=0.1, budget_s=1.0, min_samples=3, max_samples=10,
                     warmup_s=0.3),
    "quick": dict(target_sample_s=0.02, budget_s=0.25, min_samples=3, max_samples=20,
                  warmup_s=0.05),
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
                        help="sizes S1,S2, one thread, short timings (< 2 min on 2 cores)")
    parser.add_argument("--sizes", help="comma-separated size names or BxTxFxH "
                        "(default S1..S5; --quick: S1,S2)")
    parser.add_argument("--cells", default=",".join(CELLS), help="default: %(default)s")
    parser.add_argument("--modes", default=",".join(MODES), help="default: %(default)s")
    parser.add_argument("--libs", default=",".join(LIBS),
                        help="libraries to run (crnn is always the baseline of the ratios); "
                        "default: %(default)s")
    parser.add_argument("--threads", help="comma-separated thread counts (default 1,2; "
                        "--quick: 1)")
    parser.add_argument("--ref-max-gflop", type=float, default=1.0,
                        help="skip the NumPy reference on rows whose forward pass exceeds this "
                        "many GFLOP (it is slow); default: %(default)s")
    parser.add_argument("--json", default=str(HERE / "results.json"),
                        help="where to write the JSON results; default: %(default)s")
    parser.add_argument("--markdown", help="also write the Markdown report to this file")
    parser.add_argument("--chart", default=str(HERE / "results.png"),
                        help="PNG chart path, made only if matplotlib is installed; "
                        "default: %(default)s")
    parser.add_argument("--no-chart", action="store_true", help="do not draw the chart")
    parser.add_argument("--worker-timeout", type=float, default=1800.0,
                        help="seconds before a worker process is killed; default: %(default)s")
    args = parser.parse_args(argv)

    def split(text, allowed, name):
        items = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in items if v not in allowed]
        if bad or not items:
            parser.error(f"--{name} takes a comma-separated subset of {list(allowed)}, "
                         f"received {text!r}")
        return items

    args.cells = split(args.cells, CELLS, "cells")
    args.modes = split(args.modes, MODES, "modes")
    args.libs = split(args.libs, LIBS, "libs")
    if "crnn" not in args.libs:
        args.libs.insert(0, "crnn")
    sizes = args.sizes or ("S1,S2" if args.quick else "S1,S2,S3,S4,S5")
    try:
        args.sizes = dict(parse_size(v.strip()) for v in sizes.split(",") if v.strip())
    except argparse.ArgumentTypeError as err:
        parser.error(str(err))
    threads = args.threads or ("1" if args.quick else "1,2")
    try:
        args.threads = [int(v) for v in threads.split(",")]
    except ValueError:
        args.threads = []
    if not args.threads or min(args.threads) < 1:
        parser.error(f"--threads takes positive integers such as 1,2, received {threads!r}")
    return args


# --------------------------------------------------------------------------- plan


def make_tasks(args):
    """Every (cell, mode, size) row, in the order the table shows them."""
    tasks = []
    for cell in args.cells:
        for mode in args.modes:
            if mode == "streaming":
                tasks.append(dict(cell=cell, mode=mode, size="stream", shape=list(STREAM_SHAPE)))
                continue
            for name, shape in args.sizes.items():
                tasks.append(dict(cell=cell, mode=mode, size=name, shape=list(shape),
                                  big=gflop(cell, "inference", shape) > BIG_GFLOP))
    return tasks


def gemm_tasks(args, tasks):
    """SciPy sgemm shapes: squares for the peak, plus each row's input and step GEMMs."""
    out = square_gemm_tasks(args, "start")
    seen = set()
    for task in tasks:
        if task["mode"] == "streaming":
            continue
        batch, timesteps, features, units = task["shape"]
        g = GATES[task["cell"]]
        for kind, mkn in (("input", (batch * timesteps, features, g * units)),
                          ("step", (batch, units, g * units))):
            if mkn in seen:
                continue
            seen.add(mkn)
            out.append(dict(cell="gemm", mode="gemm", size=f"{kind}", label=f"sgemm {mkn}",
                            gemm=list(mkn), big=False))
    return out


def square_gemm_tasks(args, phase):
    """Square sgemm products, the yardstick of the peak; measured at start and end."""
    squares = (1024,) if args.quick else (1024, 2048)
    return [dict(cell="gemm", mode="gemm", size=f"square{n}", label=f"sgemm {n}^3 ({phase})",
                 phase=phase, gemm=[n, n, n], big=n >= 2048) for n in squares]


def run_worker(lib, threads, tasks, args):
    """Run one worker process; return its output dict (partial if it crashed)."""
    budget_key = "quick" if args.quick else "full"
    plan = dict(lib=lib, threads=threads, tasks=tasks, budget=BUDGETS[budget_key],
                big_budget=BUDGETS["quick" if args.quick else "full_big"])
    env = dict(os.environ)
    # Thread pools read these when they start; threadpoolctl / torch / tf calls in the
    # worker then pin them again.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
        env[var] = str(threads)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["KERAS_BACKEND"] = "tensorflow"
    env["CUDA_VISIBLE_DEVICES"] = ""
    with tempfile.TemporaryDirectory(prefix="crnn_bench_") as tmp:
        plan_path, out_path = Path(tmp, "plan.json"), Path(tmp, "out.json")
        plan_path.write_text(json.dumps(plan))
        cmd = [sys.executable, str(HERE / "worker.py"), str(plan_path), str(out_path)]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, env=env, timeout=args.worker_timeout)
            failure = None if proc.returncode == 0 else f"worker exited with code {proc.returncode}"
        except subprocess.TimeoutExpired:
            failure = f"worker killed after {args.worker_timeout:.0f} s"
        out = (json.loads(out_path.read_text()) if out_path.exists()
               else dict(lib=lib, threads=threads, info={}, notes=[], results=[]))
        out["wall_s"] = round(time.perf_counter() - t0, 2)
    if failure:
        out.setdefault("notes", []).append(failure)
        done = {(r["cell"], r["mode"], r["size"], r.get("label")) for r in out["results"]}
        for task in tasks:
            if (task["cell"], task["mode"], task["size"], task.get("label")) not in done:
                out["results"].append(dict(task, status="error",
                                           note=f"not measured: {failure}"))
    return out


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
        info["physical_cores"] = len({(b.get("physical id"), b.get("core id"))
                                      for b in _cpu_blocks(cpuinfo)}) or None
    except OSError:
        info["cpu_model"] = platform.processor()
    try:
        meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0]
        info["memory"] = meminfo.split(":", 1)[1].strip()
    except (OSError, IndexError):
        pass
    versions = {}
    for dist in ("numpy", "scipy", "torch", "tensorflow", "tensorflow-cpu", "keras", "crnn",
                 "threadpoolctl", "Cython"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    info["versions"] = versions
    return info


def _cpu_blocks(cpuinfo):
    for block in cpuinfo.strip().split("\n\n"):
        yield {k.strip(): v.strip() for k, v in
               (line.split(":", 1) for line in block.splitlines() if ":" in line)}


def blas_info():
    """The BLAS libraries NumPy and SciPy load, as threadpoolctl sees them."""
    try:
        import numpy  # noqa: F401
        import scipy.linalg  # noqa: F401
        from threadpoolctl import threadpool_info
    except ImportError as err:
        return [{"note": f"unavailable: {err}"}]
    keep = ("user_api", "internal_api", "prefix", "version", "architecture",
            "threading_layer", "num_threads", "filepath")
    return [{k: pool.get(k) for k in keep} for pool in threadpool_info()]


# --------------------------------------------------------------------------- main


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    tasks = make_tasks(args)
    gemms = gemm_tasks(args, tasks)
    doc = {
        "schema": 1,
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, "bench/run.py"] + sys.argv[1:]),
        "quick": args.quick,
        "config": {
            "sizes": {k: list(v) for k, v in args.sizes.items()},
            "stream_shape": list(STREAM_SHAPE),
            "cells": args.cells, "modes": args.modes, "libs": args.libs,
            "threads": args.threads, "ref_max_gflop": args.ref_max_gflop,
            "budgets": BUDGETS, "big_gflop": BIG_GFLOP, "dtype": "float32",
        },
        "machine": machine_info(),
        "workers": [],
        "results": [],
        "notes": [],
    }
    doc["machine"]["blas"] = blas_info()

    for threads in args.threads:
        print(f"== {threads} thread(s): sgemm peak", file=sys.stderr, flush=True)
        out = run_worker("gemm", threads, gemms, args)
        _collect(doc, out, "gemm")
        for lib in args.libs:
            lib_tasks = tasks
            if lib == "numpy":
                lib_tasks = []
                for task in tasks:
                    if task["mode"] == "streaming":
                        doc["results"].append(dict(task, lib=lib, threads=threads,
                                                   status="skipped",
                                                   note="the NumPy reference has no model API"))
                    elif gflop(task["cell"], "inference", task["shape"]) > args.ref_max_gflop:
                        doc["results"].append(dict(
                            task, lib=lib, threads=threads, status="skipped",
                            note=f"NumPy reference skipped above {args.ref_max_gflop:g} "
                                 f"GFLOP per forward (--ref-max-gflop): too slow"))
                    else:
                        lib_tasks.append(task)
                if not lib_tasks:
                    continue
            print(f"== {threads} thread(s): {lib}", file=sys.stderr, flush=True)
            _collect(doc, run_worker(lib, threads, lib_tasks, args), lib)
        # The peak again: on a shared machine a moment of load must not set the yardstick.
        print(f"== {threads} thread(s): sgemm peak again", file=sys.stderr, flush=True)
        _collect(doc, run_worker("gemm", threads, square_gemm_tasks(args, "end"), args), "gemm")

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
    if not args.no_chart:
        print(report.chart(doc, args.chart), file=sys.stderr)
    print(f"total {doc['total_wall_s']:.0f} s", file=sys.stderr)


def _collect(doc, out, lib):
    """Fold one worker's output into the run document."""
    threads = out["threads"]
    doc["workers"].append({k: out.get(k) for k in ("lib", "threads", "info", "notes",
                                                    "skipped", "wall_s", "python")})
    for note in out.get("notes") or []:
        doc["notes"].append(f"{lib} (threads={threads}): {note}")
    if out.get("skipped"):
        doc["notes"].append(f"{lib} skipped (threads={threads}): {out['skipped']}")
        return
    for result in out["results"]:
        doc["results"].append(dict(result, lib=lib, threads=threads))


if __name__ == "__main__":
    main()
