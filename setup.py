"""Build the Cython kernels. BLAS comes from scipy.linalg.cython_blas: no link flags.

Set CRNN_DEBUG=1 to build with bounds checking and wraparound checks turned back on.
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
              extra_compile_args=["-O3", "-fno-trapping-math"])
    for name in ("_cells", "_lstm", "_gru", "_simple_rnn", "_stream", "_conv1d")
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
