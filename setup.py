"""Build the Cython kernels. BLAS comes from scipy.linalg.cython_blas: no link flags.

Set CRNN_DEBUG=1 to build with bounds checking and wraparound checks turned back on.

crnn._kernels._pool is crnn's own thread pool (_pool.h: POSIX threads, serial elsewhere),
on which the forward kernels split an inference batch's rows; no OpenMP.
"""
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("CRNN_DEBUG", "0") == "1"

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

# -fno-trapping-math lets GCC if-convert and vectorize the activation loops (see
# crnn/_kernels/_fastmath.h); it changes no result, only whether FP exceptions may be raised early.
extensions = [
    Extension(f"crnn._kernels.{name}", [f"crnn/_kernels/{name}.pyx"],
              include_dirs=["crnn/_kernels"],
              extra_compile_args=["-O3", "-fno-trapping-math"]
              + (["-pthread"] if name == "_pool" and os.name == "posix" else []),
              extra_link_args=["-pthread"] if name == "_pool" and os.name == "posix" else [])
    for name in ("_pool", "_cells", "_lstm", "_gru", "_simple_rnn", "_stream", "_conv1d")
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
