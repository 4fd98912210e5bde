# Pieces shared by the three kernel files: activations over contiguous spans, their
# derivatives (expressed through the activation's output), and argument checks.
#
# Activation codes match crnn.ops.ACTIVATIONS.

from cython cimport floating
from libc.math cimport exp, expf, tanh, tanhf

cdef enum:
    LINEAR = 0
    TANH = 1
    SIGMOID = 2
    HARD_SIGMOID = 3
    RELU = 4
    # BLAS takes 32-bit ints for sizes and strides.
    BLAS_INT_MAX = 2147483647


cdef inline void activate(floating *x, Py_ssize_t n, int kind) noexcept nogil:
    """x[:n] = f(x[:n]) in place. The switch sits outside the loops so they vectorize."""
    cdef Py_ssize_t j
    if kind == TANH:
        for j in range(n):
            if floating is float:
                x[j] = tanhf(x[j])
            else:
                x[j] = tanh(x[j])
    elif kind == SIGMOID:
        for j in range(n):
            if floating is float:
                x[j] = 1.0 / (1.0 + expf(-x[j]))
            else:
                x[j] = 1.0 / (1.0 + exp(-x[j]))
    elif kind == HARD_SIGMOID:
        # Keras 3: relu6(x + 3) / 6
        for j in range(n):
            x[j] = min(max(x[j] / 6.0 + 0.5, 0.0), 1.0)
    elif kind == RELU:
        for j in range(n):
            x[j] = max(x[j], 0.0)


cdef inline void derivative(const floating *y, floating *dy, Py_ssize_t n,
                            int kind) noexcept nogil:
    """dy[:n] = f'(x) for y = f(x), computed from y alone."""
    cdef Py_ssize_t j
    if kind == TANH:
        for j in range(n):
            dy[j] = 1.0 - y[j] * y[j]
    elif kind == SIGMOID:
        for j in range(n):
            dy[j] = y[j] * (1.0 - y[j])
    elif kind == HARD_SIGMOID:
        for j in range(n):
            dy[j] = (1.0 / 6.0) if (y[j] > 0.0 and y[j] < 1.0) else 0.0
    elif kind == RELU:
        for j in range(n):
            dy[j] = 1.0 if y[j] > 0.0 else 0.0
    else:
        for j in range(n):
            dy[j] = 1.0


cdef inline int check_shape(str name, tuple actual, tuple expected) except -1:
    """The kernels' own guard: a wrong shape must never reach the pointer code."""
    if actual != expected:
        raise ValueError(f"{name} must have shape {expected}, received shape {actual}")
    return 0


cdef inline int check_blas_size(Py_ssize_t rows, Py_ssize_t cols) except -1:
    if rows * cols > BLAS_INT_MAX:
        raise ValueError(
            f"arrays of {rows} x {cols} elements exceed BLAS's 32-bit index range; "
            f"split the batch or the sequence into smaller calls")
    return 0
