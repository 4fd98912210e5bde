"""Build the Cython kernels. BLAS comes from scipy.linalg.cython_blas: no link flags.

Set CRNN_DEBUG=1 to build with bounds checking and wraparound checks turned back on.

OpenMP: the forward kernels split an inference batch's rows across threads with
``cython.parallel.prange``. Where the compiler builds and links a small OpenMP program
(GCC and Clang with libgomp/libomp: ``-fopenmp``; MSVC: ``/openmp``) the kernels get the
flag; elsewhere they build without it and the parts run one after another on one thread.
Set CRNN_OPENMP=0 to build without OpenMP anyway.
"""
import os
import tempfile

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

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
# The kernels whose forward entries run parts of the rows on OpenMP threads.
OPENMP_KERNELS = {"crnn._kernels._lstm", "crnn._kernels._gru", "crnn._kernels._simple_rnn"}

_OPENMP_TEST = """
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel num_threads(2) reduction(+:n)
    n += omp_get_thread_num() >= 0;
    return n > 0 ? 0 : 1;
}
"""


def _openmp_flags(compiler):
    """(compile, link) flags that build and link an OpenMP program with ``compiler``, or
    None where none does."""
    if os.environ.get("CRNN_OPENMP", "1") == "0":
        return None
    candidates = ([("/openmp",), ()] if compiler.compiler_type == "msvc"
                  else [("-fopenmp",), ("-fopenmp",)])
    compile_flags, link_flags = candidates
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "openmp_test.c")
        with open(source, "w") as f:
            f.write(_OPENMP_TEST)
        try:
            objects = compiler.compile([source], output_dir=tmp,
                                       extra_postargs=list(compile_flags))
            compiler.link_executable(objects, os.path.join(tmp, "openmp_test"),
                                     extra_postargs=list(link_flags))
        except Exception:          # noqa: BLE001 - any failure: build without OpenMP
            return None
    return list(compile_flags), list(link_flags)


class BuildExt(build_ext):
    """build_ext that adds the OpenMP flags to OPENMP_KERNELS where the compiler has them."""

    def build_extensions(self):
        flags = _openmp_flags(self.compiler)
        print(f"crnn: OpenMP {'on: ' + ' '.join(flags[0]) if flags else 'off'}")
        if flags:
            for ext in self.extensions:
                if ext.name in OPENMP_KERNELS:
                    ext.extra_compile_args = list(ext.extra_compile_args) + flags[0]
                    ext.extra_link_args = list(ext.extra_link_args) + flags[1]
        super().build_extensions()


setup(ext_modules=cythonize(extensions, compiler_directives=directives),
      cmdclass={"build_ext": BuildExt})
