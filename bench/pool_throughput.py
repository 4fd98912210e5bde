"""Stream-steps per second of crnn.streaming.StreamPool, and its per-call overhead.

    python bench/pool_throughput.py [--sizes 1 8 64 1024 16384] [--repeats 7]

Model: LSTM(64) + Dense(1), 16 features, float32, one BLAS thread. For each N the pool
holds N open streams and times ``pool.step(ids, X)`` with (a) all N streams in opening
order (consecutive slots: stepped in place) and (b) a random half of them in random order
(gathered and scattered). The N = 1 row is set against ``Streamer.step`` on the same
model, the per-call overhead the pool adds. Every figure is the best of ``--repeats``
rounds, the variants interleaved within each round, so that a busy machine slows all of
them alike: read the ratios, not the absolute times.
"""

import argparse
import os
import platform
import sys
import timeit
from functools import partial

# Benchmark processes run with the machine's own BLAS settings (see bench/README.md), and
# one BLAS thread in both NumPy's and SciPy's OpenBLAS (idle pool threads spin on a core).
if ("OPENBLAS_CORETYPE" in os.environ or "OPENBLAS_L2_SIZE" in os.environ
        or os.environ.get("OPENBLAS_NUM_THREADS") != "1"):
    os.environ.pop("OPENBLAS_CORETYPE", None)
    os.environ.pop("OPENBLAS_L2_SIZE", None)
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.execv(sys.executable, [sys.executable] + sys.argv)

import numpy as np

import crnn
from crnn.layers import LSTM, Dense
from crnn.streaming import Streamer, StreamPool

FEATURES, UNITS = 16, 64


def _cpu():
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return platform.processor() or "unknown CPU"
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                 if line.startswith("model name")), "unknown CPU")
    isa = "AVX-512" if " avx512f" in info else "AVX2" if " avx2" in info else "no AVX2"
    return f"{name} ({isa}), {os.cpu_count()} cores"


def _best(fn, number, repeats):
    return min(timeit.repeat(fn, number=number, repeat=repeats)) / number


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 64, 1024, 16384])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {_cpu()}; load average {os.getloadavg()[0]:.1f}")
    print(f"model: LSTM({UNITS}) + Dense(1), {FEATURES} features, float32, 1 BLAS thread\n")
    crnn.utils.set_random_seed(0)
    model = crnn.Sequential([LSTM(UNITS, batch_input_shape=(None, None, FEATURES)),
                             Dense(1)])
    one = crnn.Sequential([LSTM(UNITS, stateful=True, batch_input_shape=(1, 1, FEATURES)),
                           Dense(1)])
    one.set_weights(model.get_weights())
    rng = np.random.default_rng(0)
    print(f"{'N':>6} {'all: us/call':>13} {'stream-steps/s':>15} "
          f"{'half: us/call':>14} {'stream-steps/s':>15}")
    for n in args.sizes:
        pool = StreamPool(model, capacity=n)
        ids = [pool.open() for _ in range(n)]
        X = rng.standard_normal((n, FEATURES)).astype(np.float32)
        half = [int(i) for i in rng.permutation(n)[:max(1, n // 2)]]
        Xh = X[:len(half)].copy()
        number = max(3, 20000 // n)
        t_all, t_half, t_streamer = [], [], []
        streamer = Streamer(one) if n == 1 else None
        x1 = X[0].copy()
        for _ in range(args.repeats):
            t_all.append(_best(partial(pool.step, ids, X), number, 1))
            t_half.append(_best(partial(pool.step, half, Xh), number, 1))
            if streamer is not None:
                t_streamer.append(_best(partial(streamer.step, x1), number, 1))
        a, h = min(t_all), min(t_half)
        print(f"{n:>6} {a * 1e6:>13.1f} {n / a:>15,.0f} {h * 1e6:>14.1f} "
              f"{len(half) / h:>15,.0f}")
        if streamer is not None:
            s = min(t_streamer)
            print(f"{'':>6} Streamer.step: {s * 1e6:.2f} us per call; pool.step with one "
                  f"stream: {a / s:.2f}x that")


if __name__ == "__main__":
    main()
