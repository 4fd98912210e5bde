"""Adaptive wall-clock timing: warm up, then repeat until each sample is long enough.

A sample is ``number`` back-to-back calls divided by ``number``: a 5 us call is timed in
batches of thousands so the timer's own resolution and overhead vanish, while a 300 ms
call is timed once per sample. Samples are taken until both ``min_samples`` and the time
budget are reached; the median is the figure we report, since on a shared machine the
distribution has a long right tail (other processes) that the mean would follow.

Example:
    >>> import numpy as np
    >>> a = np.ones((64, 64), np.float32)
    >>> stats = measure(lambda: a @ a, Budget(target_sample_s=0.01, budget_s=0.05))
    >>> stats["median_s"] > 0
    True
"""

import math
import statistics
import time
from dataclasses import dataclass

VERY_SLOW_S = 1.0   # calls longer than this: no warm-up beyond the first call, 2 samples


@dataclass(frozen=True)
class Budget:
    """How long to spend on one measurement.

    Args:
        target_sample_s: wanted duration of one sample (calls are batched to reach it).
        budget_s: keep sampling until this much time went into samples...
        min_samples: ...and at least this many samples were taken (3 for slow calls).
        max_samples: stop here even when the budget is not spent.
        warmup_s: call the function for at least this long (and twice) before sampling,
            so caches, thread pools, allocators and JIT/tracing settle.
    """

    target_sample_s: float = 0.05
    budget_s: float = 1.0
    min_samples: int = 5
    max_samples: int = 50
    warmup_s: float = 0.2


def measure(fn, budget):
    """Time ``fn()`` and return statistics of the per-call time, in seconds.

    Args:
        fn: the callable to time; it must do the whole job before returning.
        budget: a ``Budget``.

    Returns:
        A dict with ``median_s``, ``min_s``, ``q1_s``, ``q3_s`` (quartiles of the samples),
        ``samples`` (how many) and ``calls_per_sample``.
    """
    # Warm-up: the first call can include tracing, allocation and thread-pool start-up;
    # estimate the per-call time from the fastest warm-up call after it.
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    warm_times = []
    if first > VERY_SLOW_S:
        # A very slow call (a big float64 training step) is settled after the first call:
        # its one-time costs are negligible beside it.
        warm_times.append(first)
    start = time.perf_counter()
    while not warm_times or (len(warm_times) < 2 or time.perf_counter() - start
                             < budget.warmup_s) and first <= VERY_SLOW_S:
        t0 = time.perf_counter()
        fn()
        warm_times.append(time.perf_counter() - t0)
        # A slow call is settled after one warm call; more would only stretch the run.
        if len(warm_times) >= 1000 or warm_times[0] > 0.2:
            break
    per_call = max(min(warm_times), 1e-7)
    number = max(1, int(math.ceil(budget.target_sample_s / per_call)))
    # Slow calls: fewer samples, so the big sizes do not dominate the run.
    min_samples = budget.min_samples if per_call < 0.2 else min(budget.min_samples, 3)
    if per_call > VERY_SLOW_S:
        min_samples = min(min_samples, 2)

    samples = []
    spent = 0.0
    while len(samples) < budget.max_samples:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - t0
        spent += elapsed
        samples.append(elapsed / number)
        if len(samples) >= min_samples and spent >= budget.budget_s:
            break
    samples.sort()
    if len(samples) >= 2:
        q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    else:
        q1 = q3 = samples[0]
    return {
        "median_s": statistics.median(samples),
        "min_s": samples[0],
        "q1_s": q1,
        "q3_s": q3,
        "samples": len(samples),
        "calls_per_sample": number,
    }


def measure_calls(fn, calls=3, warmup=1):
    """Time ``calls`` single calls of a slow ``fn`` (a training epoch) after ``warmup``.

    Args:
        fn: the callable to time.
        calls: timed calls, one sample each.
        warmup: untimed calls first (tracing, allocation, thread start-up).

    Returns:
        The same keys as ``measure`` (``calls_per_sample`` is 1).
    """
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    samples.sort()
    if len(samples) >= 2:
        q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    else:
        q1 = q3 = samples[0]
    return {"median_s": statistics.median(samples), "min_s": samples[0], "q1_s": q1,
            "q3_s": q3, "samples": len(samples), "calls_per_sample": 1}
