# Pieces shared by the three kernel files: activations over contiguous spans, their
# derivatives (expressed through the activation's output), and argument checks.
#
# Activation codes match crnn.ops.ACTIVATIONS.

from cython cimport floating
from libc.math cimport exp, tanh

cdef extern from "_fastmath.h" nogil:
    void crnn_sigmoid_span_f32(float *x, Py_ssize_t n)
    void crnn_tanh_span_f32(float *x, Py_ssize_t n)

cdef enum:
    LINEAR = 0
    TANH = 1
    SIGMOID = 2
    HARD_SIGMOID = 3
    RELU = 4
    # BLAS takes 32-bit ints for sizes and strides.
    BLAS_INT_MAX = 2147483647


cdef inline void activate(floating *x, Py_ssize_t n, int kind) noexcept nogil:
    """x[:n] = f(x[:n]) in place. The switch sits outside the loops so they vectorize.

    float32 tanh and sigmoid use _fastmath.h's vectorized versions; float64 keeps libm,
    the precise path that the finite-difference gradient checks run on."""
    cdef Py_ssize_t j
    # Typed constants: a bare 1.0 would promote float32 arithmetic to double.
    cdef floating zero = 0.0, half = 0.5, one = 1.0, sixth = 1.0 / 6.0
    if kind == TANH:
        if floating is float:
            crnn_tanh_span_f32(x, n)        # vectorized, see _fastmath.h
        else:
            for j in range(n):
                x[j] = tanh(x[j])
    elif kind == SIGMOID:
        if floating is float:
            crnn_sigmoid_span_f32(x, n)
        else:
            for j in range(n):
                x[j] = 1.0 / (1.0 + exp(-x[j]))
    elif kind == HARD_SIGMOID:
        # Keras 3: relu6(x + 3) / 6
        for j in range(n):
            x[j] = min(max(x[j] * sixth + half, zero), one)
    elif kind == RELU:
        for j in range(n):
            x[j] = max(x[j], zero)


cdef inline void derivative(const floating *y, floating *dy, Py_ssize_t n,
                            int kind) noexcept nogil:
    """dy[:n] = f'(x) for y = f(x), computed from y alone."""
    cdef Py_ssize_t j
    cdef floating zero = 0.0, one = 1.0, sixth = 1.0 / 6.0
    if kind == TANH:
        for j in range(n):
            dy[j] = one - y[j] * y[j]
    elif kind == SIGMOID:
        for j in range(n):
            dy[j] = y[j] * (one - y[j])
    elif kind == HARD_SIGMOID:
        for j in range(n):
            dy[j] = sixth if (y[j] > zero and y[j] < one) else zero
    elif kind == RELU:
        for j in range(n):
            dy[j] = one if y[j] > zero else zero
    else:
        for j in range(n):
            dy[j] = one


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


cdef inline object time_major(a):
    """(B, T, ...) -> C-contiguous (T, B, ...): the kernels' internal layout."""
    import numpy
    return numpy.ascontiguousarray(numpy.swapaxes(numpy.asarray(a), 0, 1))


cdef inline object batch_major(a):
    """(T, B, ...) -> C-contiguous (B, T, ...), the layout users see."""
    import numpy
    return numpy.ascontiguousarray(numpy.swapaxes(a, 0, 1))
