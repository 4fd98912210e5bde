# The one activation table of the compiled code: codes, activations over contiguous spans
# and their derivatives. Used by the cell steps (crnn/_cells.pxd, so by the sequence kernels
# and streaming) and by streaming's Dense/Activation stages. Python sees the codes through
# crnn._kernels._cells.ACTIVATION_CODES (which crnn.ops.ACTIVATIONS and crnn.streaming read).
#
# Codes 0-4 are the recurrent set (the cells' `activation`/`recurrent_activation`); the
# rest occur only in Dense and Activation stages of a stream.

from cython cimport floating
from libc.math cimport erf, exp, expm1, fabs, log, log1p, sqrt, tanh

cdef extern from "_fastmath.h" nogil:
    void crnn_sigmoid_span_f32(float *x, Py_ssize_t n)
    void crnn_tanh_span_f32(float *x, Py_ssize_t n)
    void crnn_sigmoid_span_f64(double *x, Py_ssize_t n)
    void crnn_tanh_span_f64(double *x, Py_ssize_t n)

cdef extern from "_cellmath.h" nogil:
    void crnn_derivative_f32(const float *y, float *dy, Py_ssize_t n, int kind)
    void crnn_derivative_f64(const double *y, double *dy, Py_ssize_t n, int kind)

cdef enum:
    LINEAR = 0
    TANH = 1
    SIGMOID = 2
    HARD_SIGMOID = 3
    RELU = 4
    N_RECURRENT_ACTIVATIONS = 5      # codes below this run inside the cells
    SOFTMAX = 5
    ELU = 6
    SELU = 7
    SOFTPLUS = 8
    SOFTSIGN = 9
    SILU = 10
    EXPONENTIAL = 11
    RELU6 = 12
    LEAKY_RELU = 13
    GELU = 14
    MISH = 15
    HARD_SILU = 16
    LOG_SOFTMAX = 17
    N_ACTIVATIONS = 18


cdef inline void activate(floating *x, Py_ssize_t n, int kind) noexcept nogil:
    """x[:n] = f(x[:n]) in place for the recurrent set (codes 0-4). The switch sits outside
    the loops so they vectorize; tanh and sigmoid use _fastmath.h's vectorized versions
    (a few ulps of either dtype)."""
    cdef Py_ssize_t j
    # Typed constants: a bare 1.0 would promote float32 arithmetic to double.
    cdef floating zero = 0.0, half = 0.5, one = 1.0, sixth = 1.0 / 6.0
    if kind == TANH:
        if floating is float:
            crnn_tanh_span_f32(x, n)
        else:
            crnn_tanh_span_f64(x, n)
    elif kind == SIGMOID:
        if floating is float:
            crnn_sigmoid_span_f32(x, n)
        else:
            crnn_sigmoid_span_f64(x, n)
    elif kind == HARD_SIGMOID:
        # Keras 3: relu6(x + 3) / 6
        for j in range(n):
            x[j] = min(max(x[j] * sixth + half, zero), one)
    elif kind == RELU:
        for j in range(n):
            x[j] = max(x[j], zero)


cdef inline void derivative(const floating *y, floating *dy, Py_ssize_t n,
                            int kind) noexcept nogil:
    """dy[:n] = f'(x) for y = f(x) (recurrent set), computed from y alone; y and dy must
    not overlap (vectorized in _cellmath.h)."""
    if floating is float:
        crnn_derivative_f32(y, dy, n, kind)
    else:
        crnn_derivative_f64(y, dy, n, kind)


cdef inline void activate_any(floating *x, Py_ssize_t n, int kind) noexcept nogil:
    """x[:n] = f(x[:n]) for every code (softmax and log_softmax over all n): the Dense and
    Activation stages of a stream. Keras's definitions (crnn.layers.activations has the
    NumPy versions)."""
    cdef Py_ssize_t j
    cdef double v, m, total
    cdef double selu_alpha = 1.6732632423543772, selu_scale = 1.0507009873554805
    cdef double leaky_slope = 0.2      # Keras's leaky_relu activation function default
    if kind < N_RECURRENT_ACTIVATIONS:
        activate(x, n, kind)
    elif kind == SOFTMAX:
        m = x[0]
        for j in range(1, n):
            m = max(m, <double> x[j])
        total = 0.0
        for j in range(n):
            x[j] = exp(x[j] - m)
            total += x[j]
        for j in range(n):
            x[j] = x[j] / total
    elif kind == ELU:
        for j in range(n):
            v = x[j]
            x[j] = v if v > 0 else expm1(v)
    elif kind == SELU:
        for j in range(n):
            v = x[j]
            x[j] = selu_scale * (v if v > 0 else selu_alpha * expm1(v))
    elif kind == SOFTPLUS:
        # log(1 + e^v) without overflow
        for j in range(n):
            v = x[j]
            x[j] = max(v, 0.0) + log1p(exp(-fabs(v)))
    elif kind == SOFTSIGN:
        for j in range(n):
            v = x[j]
            x[j] = v / (1.0 + fabs(v))
    elif kind == SILU:
        for j in range(n):
            v = x[j]
            x[j] = v / (1.0 + exp(-v)) if v >= 0 else v * exp(v) / (1.0 + exp(v))
    elif kind == EXPONENTIAL:
        for j in range(n):
            x[j] = exp(x[j])
    elif kind == RELU6:
        for j in range(n):
            x[j] = min(max(<double> x[j], 0.0), 6.0)
    elif kind == LEAKY_RELU:
        for j in range(n):
            v = x[j]
            x[j] = v if v > 0 else leaky_slope * v
    elif kind == GELU:
        # Keras's default, exact form
        for j in range(n):
            v = x[j]
            x[j] = 0.5 * v * (1.0 + erf(v / sqrt(2.0)))
    elif kind == MISH:
        for j in range(n):
            v = x[j]
            x[j] = v * tanh(max(v, 0.0) + log1p(exp(-fabs(v))))
    elif kind == HARD_SILU:
        for j in range(n):
            v = x[j]
            x[j] = v * min(max(v / 6.0 + 0.5, 0.0), 1.0)
    elif kind == LOG_SOFTMAX:
        m = x[0]
        for j in range(1, n):
            m = max(m, <double> x[j])
        total = 0.0
        for j in range(n):
            total += exp(x[j] - m)
        total = log(total)
        for j in range(n):
            x[j] = x[j] - m - total
