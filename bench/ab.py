"""Before/after timings of crnn's kernel rows on two checkouts, in alternating processes.

A change of a few percent is within the noise of one ``run.py`` run on a shared 2-core
machine: another tenant's work lands on some samples of some rows. Here each process
times one row (cell, mode, size) of one checkout, one thread, on the benchmark's inputs
(``worker.py``'s), and reports its fastest call; the processes alternate between the two
checkouts, ``--reps`` times each. Other work only ever adds time, so a row's fastest call
is its cost with the least interference, and the alternation spreads slow periods over
both sides. As ``run.py``, the processes run with ``OPENBLAS_CORETYPE`` and
``OPENBLAS_L2_SIZE`` removed and BLAS at one thread.

Usage:
    git worktree add /tmp/before <commit>  &&  (cd /tmp/before && python setup.py build_ext --inplace)
    python bench/ab.py --before /tmp/before --cells lstm,gru --sizes S3,10x50x20x300 \\
        --modes inference,training --reps 4

``--after`` defaults to this checkout. Prints the machine (CPU, ISA), each
side's crnn kernel ISA and BLAS kernels, then one Markdown row per (cell, mode, size): the
fastest call of each process in milliseconds, in the order they ran, and the best of each
side with their ratio (after / before).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import SIZES, machine_info, parse_size  # noqa: E402

MODES = ("inference", "training")
CELLS = ("lstm", "gru", "simple_rnn")
DTYPES = ("float32", "float64")


def child(args):
    """Time one row of the crnn found first on sys.path; print its fastest call (ms), or,
    with ``--info``, crnn's kernel ISA and the BLAS kernels loaded (JSON)."""
    import json

    import numpy as np

    import crnn
    from worker import SEED, _inputs, _weights, blas_report

    if not Path(crnn.__file__).resolve().is_relative_to(Path.cwd().resolve()):
        raise SystemExit(f"imported {crnn.__file__}, not the checkout's ({Path.cwd()}): "
                         "build it in place (python setup.py build_ext --inplace)")
    crnn.set_num_threads(1)
    if args.info:
        from crnn._kernels import _cells

        print(json.dumps({"isa": _cells.isa(), "blas": [
            f"{b.get('library')}: {b.get('internal_api')} {b.get('architecture')}"
            for b in blas_report()]}))
        return
    shape = parse_size(args.size)[1]
    rng = np.random.default_rng(SEED)
    dtype = np.dtype(args.dtype)
    x = _inputs(shape, rng).astype(dtype)
    weights = [w.astype(dtype) for w in _weights(args.cell, shape[2], shape[3], rng)]
    forward = getattr(crnn.ops, args.cell)
    grad = getattr(crnn.ops, args.cell + "_grad")
    d_outputs = np.ones((shape[0], shape[1], shape[3]), dtype)

    def call():
        if args.mode == "inference":
            return forward(x, *weights)
        return grad(forward(x, *weights, training=True)[2], d_outputs)

    for _ in range(3):
        call()
    best, end = float("inf"), time.perf_counter() + args.seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t0)
    print(f"{best * 1e3:.6f}")


def _run_child(checkout, *options):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(checkout), str(HERE)]))
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child",
                          *options], env=env, cwd=str(checkout), capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{checkout}: {' '.join(options)} failed:\n{out.stderr[-2000:]}")
    return out.stdout.strip().splitlines()[-1]


def run_side(checkout, cell, mode, size, dtype, seconds):
    return float(_run_child(checkout, "--cell", cell, "--mode", mode, "--size", size,
                            "--dtype", dtype, "--seconds", str(seconds)))


def _names(text, allowed, what):
    names = [n for n in text.split(",") if n]
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise SystemExit(f"--{what} expects a comma-separated subset of {allowed}, "
                         f"received {text!r}")
    return names


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", help="checkout with crnn built in place")
    parser.add_argument("--after", default=str(HERE.parent),
                        help="checkout with crnn built in place (default: this one)")
    parser.add_argument("--cells", default="lstm,gru")
    parser.add_argument("--modes", default="inference,training")
    parser.add_argument("--sizes", default="S2,S3,S5",
                        help=f"names from {sorted(SIZES)} or BxTxFxH")
    parser.add_argument("--dtypes", default="float32",
                        help=f"a comma-separated subset of {DTYPES}")
    parser.add_argument("--reps", type=int, default=3, help="processes per side and row")
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="timing per process, after 3 warm-up calls")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cell", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--info", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return
    if not args.before:
        parser.error("--before is required")
    if args.reps < 1 or not args.seconds > 0:
        parser.error(f"--reps must be at least 1 and --seconds positive, received "
                     f"{args.reps} and {args.seconds}")
    sizes = [parse_size(s)[0] for s in args.sizes.split(",") if s]
    sides = {"before": Path(args.before).resolve(), "after": Path(args.after).resolve()}
    print(f"`python bench/ab.py {' '.join(sys.argv[1:] if argv is None else argv)}`\n")
    machine = machine_info()
    print(f"- CPU: {machine.get('cpu_model')}; ISA: **{machine.get('isa')}**; "
          f"OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset, one thread")
    for side, checkout in sides.items():
        info = json.loads(_run_child(checkout, "--info"))
        print(f"- {side} ({checkout}): crnn kernel ISA {info['isa']}; BLAS "
              f"{'; '.join(info['blas'])}")
    print()
    print("| cell | mode | size | dtype | before ms (each process) "
          "| after ms (each process) | best before | best after | after / before |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = [(cell, mode, size, dtype) for cell in _names(args.cells, CELLS, "cells")
            for mode in _names(args.modes, MODES, "modes") for size in sizes
            for dtype in _names(args.dtypes, DTYPES, "dtypes")]
    for cell, mode, size, dtype in rows:
        times = {"before": [], "after": []}
        for _ in range(args.reps):
            for side, checkout in sides.items():
                times[side].append(run_side(checkout, cell, mode, size, dtype,
                                            args.seconds))
        b, a = min(times["before"]), min(times["after"])
        print(f"| {cell} | {mode} | {size} | {dtype} | "
              f"{', '.join(f'{t:.3g}' for t in times['before'])} | "
              f"{', '.join(f'{t:.3g}' for t in times['after'])} | {b:.3g} | "
              f"{a:.3g} | {a / b:.3f} |", flush=True)


if __name__ == "__main__":
    main()
