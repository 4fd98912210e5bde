"""The machine's single-core FMA peak, measured with a tiny C kernel compiled at bench time.

The kernel runs many independent fused multiply-add chains on vector registers (AVX-512,
else AVX2+FMA, else plain C that the compiler may vectorize), so the result is the
throughput of the FMA units, not their latency: 2 flops per lane per FMA. It is written to
a temporary directory, compiled with the system C compiler (``cc``, or ``$CC``), loaded
with ctypes and timed; nothing is kept.

Example:
    >>> result = measure_fma_peak(seconds=0.05)
    >>> result["status"] in ("ok", "skipped")
    True
"""

import ctypes
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

# One source, one function per (ISA, dtype). Each keeps ACC independent accumulators
# (more than FMA latency x FMA ports on any current core), so the chains never wait.
_SOURCE = r"""
#include <stddef.h>
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define X86 1
#endif

#define ACC 16
/* Fully unrolled, so that every accumulator lives in a register. */
#define UNROLL _Pragma("GCC unroll 16")
#define UNROLL12 _Pragma("GCC unroll 12")

#ifdef X86
__attribute__((target("avx512f")))
double fma_avx512_f32(long iters) {
    __m512 acc[ACC];
    __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int j = 0; j < ACC; j++) acc[j] = _mm512_set1_ps((float)j);
    for (long i = 0; i < iters; i++) {
        UNROLL for (int j = 0; j < ACC; j++) acc[j] = _mm512_fmadd_ps(acc[j], a, b);
    }
    __m512 s = acc[0];
    for (int j = 1; j < ACC; j++) s = _mm512_add_ps(s, acc[j]);
    return (double)_mm512_reduce_add_ps(s);
}
__attribute__((target("avx512f")))
double fma_avx512_f64(long iters) {
    __m512d acc[ACC];
    __m512d a = _mm512_set1_pd(0.999999), b = _mm512_set1_pd(1e-7);
    for (int j = 0; j < ACC; j++) acc[j] = _mm512_set1_pd((double)j);
    for (long i = 0; i < iters; i++) {
        UNROLL for (int j = 0; j < ACC; j++) acc[j] = _mm512_fmadd_pd(acc[j], a, b);
    }
    __m512d s = acc[0];
    for (int j = 1; j < ACC; j++) s = _mm512_add_pd(s, acc[j]);
    return _mm512_reduce_add_pd(s);
}
__attribute__((target("avx2,fma")))
double fma_avx2_f32(long iters) {
    __m256 acc[12];
    __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int j = 0; j < 12; j++) acc[j] = _mm256_set1_ps((float)j);
    for (long i = 0; i < iters; i++) {
        UNROLL12 for (int j = 0; j < 12; j++) acc[j] = _mm256_fmadd_ps(acc[j], a, b);
    }
    float out[8]; double total = 0;
    for (int j = 0; j < 12; j++) { _mm256_storeu_ps(out, acc[j]); for (int k = 0; k < 8; k++) total += out[k]; }
    return total;
}
__attribute__((target("avx2,fma")))
double fma_avx2_f64(long iters) {
    __m256d acc[12];
    __m256d a = _mm256_set1_pd(0.999999), b = _mm256_set1_pd(1e-7);
    for (int j = 0; j < 12; j++) acc[j] = _mm256_set1_pd((double)j);
    for (long i = 0; i < iters; i++) {
        UNROLL12 for (int j = 0; j < 12; j++) acc[j] = _mm256_fmadd_pd(acc[j], a, b);
    }
    double out[4]; double total = 0;
    for (int j = 0; j < 12; j++) { _mm256_storeu_pd(out, acc[j]); for (int k = 0; k < 4; k++) total += out[k]; }
    return total;
}
int has_avx512(void) { __builtin_cpu_init(); return __builtin_cpu_supports("avx512f"); }
int has_avx2fma(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#else
int has_avx512(void) { return 0; }
int has_avx2fma(void) { return 0; }
#endif

/* Portable: 4-lane groups the compiler may or may not vectorize. */
double fma_scalar_f32(long iters) {
    float acc[ACC * 4];
    for (int j = 0; j < ACC * 4; j++) acc[j] = (float)j;
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < ACC * 4; j++) acc[j] = acc[j] * 0.999999f + 1e-7f;
    double total = 0; for (int j = 0; j < ACC * 4; j++) total += acc[j];
    return total;
}
double fma_scalar_f64(long iters) {
    double acc[ACC * 4];
    for (int j = 0; j < ACC * 4; j++) acc[j] = (double)j;
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < ACC * 4; j++) acc[j] = acc[j] * 0.999999 + 1e-7;
    double total = 0; for (int j = 0; j < ACC * 4; j++) total += acc[j];
    return total;
}
"""

# (ISA, dtype) -> (function, flops per iteration)
_KERNELS = {
    ("avx512", "float32"): ("fma_avx512_f32", 16 * 16 * 2),
    ("avx512", "float64"): ("fma_avx512_f64", 16 * 8 * 2),
    ("avx2", "float32"): ("fma_avx2_f32", 12 * 8 * 2),
    ("avx2", "float64"): ("fma_avx2_f64", 12 * 4 * 2),
    ("portable", "float32"): ("fma_scalar_f32", 64 * 2),
    ("portable", "float64"): ("fma_scalar_f64", 64 * 2),
}


def _compile(tmp):
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise RuntimeError("no C compiler (cc/gcc, or $CC) found")
    src, lib = Path(tmp, "fmapeak.c"), Path(tmp, "fmapeak.so")
    src.write_text(_SOURCE)
    cmd = [compiler, "-O3", "-fPIC", "-shared", "-fno-tree-vectorize", str(src), "-o", str(lib)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.strip()[:300]}")
    return ctypes.CDLL(str(lib))


def _time_kernel(fn, flops_per_iter, seconds):
    """Best GF/s over repeated calls sized to ~20 ms each, for about ``seconds``."""
    iters = 1000
    while True:  # size one call to about 20 ms
        t0 = time.perf_counter()
        fn(iters)
        dt = time.perf_counter() - t0
        if dt > 0.02 or iters > 1 << 34:
            break
        iters *= 4
    best = 0.0
    deadline = time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        fn(iters)
        dt = time.perf_counter() - t0
        best = max(best, flops_per_iter * iters / dt / 1e9)
        if time.perf_counter() > deadline:
            return best


def measure_fma_peak(seconds=0.5):
    """Single-core FMA throughput in GF/s, float32 and float64, on the widest ISA present.

    Run it in a process pinned to one thread (it is one thread anyway: the C code has none).

    Args:
        seconds: time spent per dtype (the best call is kept).

    Returns:
        ``{"status": "ok", "isa": "avx512"|"avx2"|"portable", "float32": GF/s,
        "float64": GF/s}``, or ``{"status": "skipped", "note": why}`` when no compiler.
    """
    with tempfile.TemporaryDirectory(prefix="crnn_fmapeak_") as tmp:
        try:
            lib = _compile(tmp)
        except (RuntimeError, OSError) as err:
            return {"status": "skipped", "note": f"FMA probe not built: {err}"}
        isa = ("avx512" if lib.has_avx512() else "avx2" if lib.has_avx2fma() else "portable")
        out = {"status": "ok", "isa": isa}
        for dtype in ("float32", "float64"):
            name, flops = _KERNELS[(isa, dtype)]
            fn = getattr(lib, name)
            fn.restype = ctypes.c_double
            fn.argtypes = [ctypes.c_long]
            out[dtype] = _time_kernel(fn, flops, seconds)
        return out


if __name__ == "__main__":
    print(measure_fma_peak())
