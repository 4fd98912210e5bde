"""Data-parallel scaling: measured step and Allreduce times, and a model for 8-256 ranks.

Measures, for the LSTM sizes S2-S5 of ``bench/run.py`` (a ``Sequential([LSTM(units),
Dense(1)])`` in float32, Adam, one BLAS thread per rank):

* the training step time of one rank (``train_on_batch`` with
  ``crnn.distributed.DistributedOptimizer``), at the size's batch and at a quarter of it,
  and the time of the optimizer's copies into and out of its fused buffer;
* the ``Allreduce`` of the model's weight bytes (one fused buffer, as
  ``DistributedOptimizer`` sends each step), and the distributed step time, on 1 and 2
  ranks (``mpiexec -n 1`` / ``-n 2`` on this machine: shared memory, no network).

It then models N ranks on a network of bandwidth ``B`` and latency ``alpha`` with the cost
of a bandwidth-optimal Allreduce (reduce-scatter + allgather, Rabenseifner):
``t_ar(N) = 2 log2(N) alpha + 2 (N-1)/N * bytes / B``; the step runs the Allreduce after
the whole backward pass, so a rank's step takes ``t_step(b) + t_ar(N)`` and the parallel
efficiency is ``t_step(b) / (t_step(b) + t_ar(N))``. Scaling stops paying when the
Allreduce takes longer than the compute (efficiency below 50 %); from the two measured
batch sizes, ``t_step(b) = t0 + k b`` gives the per-rank batch where that happens.

Usage::

    python bench/scaling.py                    # S2-S5 (about 2 minutes on 2 cores)
    python bench/scaling.py --sizes S2,S3 --reps 3

Prints Markdown (the README's "Scaling out" table comes from it) and, with ``--json``,
saves the measurements. Needs mpi4py and an MPI launcher (``crnn[mpi]``).
"""

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from run import SIZES  # noqa: E402  (bench/run.py: the benchmark sizes, in one place)

# Networks of the model: name -> (bandwidth in Gbit/s, latency alpha in microseconds).
NETWORKS = {"10 Gb/s Ethernet": (10.0, 25.0), "100 Gb/s InfiniBand": (100.0, 2.0)}
RANKS = (8, 32, 128, 256)


# ------------------------------------------------------------------------ measuring (ranks)

def _timed(comm, fn, reps):
    """Fastest seconds of ``fn()`` over ``reps`` calls, every rank calling it in step.

    The fastest, not the median: this machine is shared, and what the model needs is the
    cost on a rank that has its core to itself.
    """
    fn()
    fn()                                    # warm-up: slots, caches, MPI connections
    times = []
    for _ in range(reps):
        comm.Barrier()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times = comm.allreduce(times, op=_max_lists)   # the slowest rank sets the pace
    return min(times)


def _max_lists(a, b, datatype=None):
    return [max(x, y) for x, y in zip(a, b)]


def measure(sizes, reps, out_path):
    """Run on every rank of an ``mpiexec`` job; rank 0 writes the results as JSON."""
    import numpy as np
    from mpi4py import MPI

    import crnn
    import crnn.distributed as cd
    from crnn import layers as L

    cd.init()
    comm = MPI.COMM_WORLD
    results = {}
    for name in sizes:
        batch, timesteps, features, units = SIZES[name]
        rng = np.random.default_rng(comm.Get_rank())
        row = {}
        for label, per_rank_batch in (("batch", batch), ("quarter", max(1, batch // 4))):
            if label == "quarter" and comm.Get_size() > 1:
                continue
            x = rng.standard_normal((per_rank_batch, timesteps, features)).astype("float32")
            y = rng.standard_normal((per_rank_batch, 1)).astype("float32")
            crnn.utils.set_random_seed(0)
            model = crnn.Sequential([L.LSTM(units, input_shape=(timesteps, features)),
                                     L.Dense(1)])
            model.compile(optimizer=cd.DistributedOptimizer(crnn.optimizers.Adam(1e-4)),
                          loss="mse")
            row[f"step_{label}_s"] = _timed(
                comm, lambda m=model, x=x, y=y: m.train_on_batch(x, y), reps)
        grads = [np.ones_like(w) for w in model.trainable_weights]
        buffer = cd._fuse(grads, np.float32)
        row["params"] = int(buffer.size)
        row["bytes"] = int(buffer.nbytes)
        row["fuse_split_s"] = _timed(      # DistributedOptimizer's copies in and out
            comm, lambda g=grads: cd._split(cd._fuse(g, np.float32), g), max(reps, 20))
        row["allreduce_s"] = _timed(
            comm, lambda b=buffer: comm.Allreduce(MPI.IN_PLACE, b, op=MPI.SUM), max(reps, 20))
        row["batch"] = batch
        results[name] = row
    if comm.Get_rank() == 0:
        Path(out_path).write_text(json.dumps({"ranks": comm.Get_size(), "sizes": results}))


# ---------------------------------------------------------------------- the model (parent)

def allreduce_model_s(nbytes, ranks, gbit_per_s, alpha_us):
    """Modelled seconds of a bandwidth-optimal Allreduce of ``nbytes`` over ``ranks``."""
    if ranks == 1:
        return 0.0
    return 2 * math.log2(ranks) * alpha_us * 1e-6 + \
        2 * (ranks - 1) / ranks * nbytes / (gbit_per_s * 1e9 / 8)


def step_line(one):
    """(t0, k) of ``t_step(b) = t0 + k b`` through the two measured batch sizes (t0 >= 0:
    on a busy machine the line through two noisy points can cross zero)."""
    b1, b2 = max(1, one["batch"] // 4), one["batch"]
    t1, t2 = one["step_quarter_s"], one["step_batch_s"]
    k = (t2 - t1) / (b2 - b1) if b2 > b1 else 0.0
    if k <= 0:              # noise won: assume the step grows in proportion to the batch
        return 0.0, t2 / b2
    t0 = max(0.0, t2 - k * b2)
    return t0, (t2 - t0) / b2


def batch_for_efficiency(one, t_ar, target):
    """Smallest per-rank batch whose modelled efficiency reaches ``target`` (0-1)."""
    t0, k = step_line(one)
    needed = t_ar * target / (1 - target)     # t_step / (t_step + t_ar) >= target
    return max(1, math.ceil((needed - t0) / k))


def report(one, two, sizes):
    load = one.get("load", [float("nan")])[0]
    lines = [(f"Measured on {_cpu_name()}, {os.cpu_count()} cores (load average {load:.1f} "
              f"when it started), one BLAS thread per rank, float32, fastest of the timed "
              f"calls; "
              f"{time.strftime('%Y-%m-%d')}. 2 ranks share this machine's memory."),
             "",
             ("| size | params (bytes) | step, 1 rank | step at batch/4, 1 rank | "
              "fused-buffer copies | Allreduce, 1 rank | step, 2 ranks | Allreduce, 2 ranks |"),
             "|---|---|---|---|---|---|---|---|"]
    for name in sizes:
        a, b = one["sizes"][name], two["sizes"][name]
        lines.append(
            f"| {name} b={a['batch']} | {a['params']:,} ({a['bytes'] / 1e6:.2f} MB) | "
            f"{a['step_batch_s'] * 1e3:.2f} ms | {a['step_quarter_s'] * 1e3:.2f} ms"
            f" | {a['fuse_split_s'] * 1e3:.2f} ms | {a['allreduce_s'] * 1e6:.1f} us"
            f" | {b['step_batch_s'] * 1e3:.2f} ms | {b['allreduce_s'] * 1e6:.0f} us |")
    lines += ["",
              ("Modelled parallel efficiency, t_step / (t_step + t_allreduce), at the "
               "size's per-rank batch; last columns: at 256 ranks, the smallest per-rank "
               "batch whose efficiency reaches 50 % (below it the Allreduce takes longer "
               "than the step: scaling stops paying) and 90 %."),
              ""]
    header = "| size | per-rank step |"
    rule = "|---|---|"
    for network in NETWORKS:
        short = network.split(" ")[0] + " Gb/s"
        header += "".join(f" {short}, {n} ranks |" for n in RANKS)
        rule += "---|" * len(RANKS)
    header += "".join(f" per-rank batch for 50 % / 90 %, {n.split(' ')[0]} Gb/s |"
                      for n in NETWORKS)
    rule += "---|" * len(NETWORKS)
    lines += [header, rule]
    for name in sizes:
        a = one["sizes"][name]
        t_step = a["step_batch_s"]
        cells = [f"{name} (b={a['batch']}, {a['bytes'] / 1e6:.2f} MB)", f"{t_step * 1e3:.1f} ms"]
        for gbit, alpha in NETWORKS.values():
            for n in RANKS:
                t_ar = allreduce_model_s(a["bytes"], n, gbit, alpha)
                cells.append(f"{100 * t_step / (t_step + t_ar):.0f} %")
        for gbit, alpha in NETWORKS.values():
            t_ar = allreduce_model_s(a["bytes"], RANKS[-1], gbit, alpha)
            cells.append(" / ".join(str(batch_for_efficiency(a, t_ar, target))
                                    for target in (0.5, 0.9)))
        lines.append("| " + " | ".join(cells) + " |")
    nets = "; ".join(f"{n}: {g:g} Gbit/s, alpha = {al:g} us" for n, (g, al) in NETWORKS.items())
    lines += ["",
              (f"Networks: {nets}. t_allreduce(N) = 2 log2(N) alpha + 2 (N-1)/N bytes / "
               f"bandwidth; no overlap of communication with the backward pass.")]
    return "\n".join(lines)


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_ranks(n, sizes, reps, out_path, timeout):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)          # benchmark processes: OpenBLAS's own choice
    env.pop("OPENBLAS_L2_SIZE", None)
    env["OPENBLAS_NUM_THREADS"] = "1"
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    command = ["mpiexec", "-n", str(n), "--oversubscribe", sys.executable, __file__,
               "--measure", out_path, "--sizes", ",".join(sizes), "--reps", str(reps)]
    load = os.getloadavg()
    subprocess.run(command, env=env, check=True, timeout=timeout)
    return dict(json.loads(Path(out_path).read_text()), load=list(load))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="S2,S3,S4,S5")
    parser.add_argument("--reps", type=int, default=10, help="timed steps per measurement")
    parser.add_argument("--json", help="also save the measurements to this file")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per mpiexec run")
    parser.add_argument("--measure", help=argparse.SUPPRESS)   # set for the ranks
    args = parser.parse_args(argv)
    sizes = [s for s in args.sizes.split(",") if s]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        parser.error(f"--sizes: unknown {unknown}; known {sorted(SIZES)}")
    if args.measure:
        measure(sizes, args.reps, args.measure)
        return
    with tempfile.TemporaryDirectory(prefix="crnn_scaling_") as tmp:
        one = run_ranks(1, sizes, args.reps, str(Path(tmp, "one.json")), args.timeout)
        two = run_ranks(2, sizes, args.reps, str(Path(tmp, "two.json")), args.timeout)
    if args.json:
        Path(args.json).write_text(json.dumps({"one": one, "two": two}, indent=1))
    print(report(one, two, sizes))


if __name__ == "__main__":
    main()
