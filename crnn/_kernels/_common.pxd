# Pieces shared by the kernel files: argument checks and layout changes. (Activations
# live in _activations.pxd, the cells' step maths in _cells.pxd.)

from cython cimport floating
from libc.string cimport memcpy

cdef enum:
    # BLAS takes 32-bit ints for sizes and strides.
    BLAS_INT_MAX = 2147483647


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


cdef inline object _swapped_copy(a):
    """C-contiguous copy of ``a`` with its first two axes swapped, in workspace memory."""
    import numpy
    from crnn._kernels._workspace import empty
    view = numpy.swapaxes(numpy.asarray(a), 0, 1)
    out = empty(view.shape, view.dtype)
    numpy.copyto(out, view)
    return out


cdef inline object time_major(a):
    """(B, T, ...) -> C-contiguous (T, B, ...): the kernels' internal layout."""
    return _swapped_copy(a)


cdef inline object batch_major(a):
    """(T, B, ...) -> C-contiguous (B, T, ...), the layout users see."""
    return _swapped_copy(a)


# --------------------------------------------------------------------------- row parts
# Inference splits a batch's rows into parts, one per thread of crnn's pool (_pool.h, from
# the forward entries): the rows of a recurrent layer never meet, so each part runs its
# whole time loop on its rows, on its own scratch memory, with no synchronization per step.

cdef enum:
    # Each part's slice of a shared scratch array starts on a 64-byte line (in elements of
    # a double; float32 slices are rounded the same way): no line is written by two parts.
    PART_ALIGN = 16


cdef inline Py_ssize_t part_count(Py_ssize_t batch, Py_ssize_t n_threads,
                                  bint training) except -1:
    """The number of parts for a forward call asked to run on ``n_threads`` threads: at
    most one per row (so no part is empty); 1 for training (its saved arrays are
    whole-batch)."""
    if n_threads < 1:
        raise ValueError(f"n_threads must be at least 1, received {n_threads}")
    if training and n_threads > 1:
        raise ValueError("n_threads > 1 splits the rows of inference only (training=False); "
                         "training splits only the units (where units_split_parts says so)")
    return max(1, min(n_threads, batch))


cdef inline list part_edges(Py_ssize_t batch, Py_ssize_t n):
    """Row edges [0, ..., batch] of ``n`` non-empty parts (1 <= n <= batch): inner edges on
    multiples of 8 rows (the micro-kernel's row block) where that keeps every part
    non-empty, else plain shares (crnn.ops._row_parts's rule)."""
    cdef Py_ssize_t i
    cdef list edges = [batch * i // n for i in range(n + 1)]
    cdef list aligned = [0] + [8 * round(e / 8) for e in edges[1:-1]] + [batch]
    for i in range(n):
        if aligned[i + 1] <= aligned[i]:
            return edges
    return aligned


cdef inline Py_ssize_t part_round(Py_ssize_t n) noexcept nogil:
    """``n`` elements rounded up to whole PART_ALIGN blocks."""
    return (n + PART_ALIGN - 1) // PART_ALIGN * PART_ALIGN


cdef inline Py_ssize_t gate_stride(Py_ssize_t G, bint double_precision) noexcept nogil:
    """Row stride (elements) of inference's buffer of a chunk's gates: G and one cache line.
    With G a multiple of 1024 elements (4 KiB rows: LSTM and GRU with units a power of two
    from 256 floats), the 8 rows a product's register block writes fell in one L1 cache
    set: LSTM inference at (64, 100, 128, 256) ran 4% faster with the padding (AVX-512 Zen
    4, bench/RESULTS.md, the sixth session's pairs). Training keeps G (its gates are saved
    whole for the backward pass)."""
    return G + (8 if double_precision else 16)


cdef inline void rows_time_major(Py_ssize_t rows, Py_ssize_t T, Py_ssize_t F,
                                 const floating *x, floating *dst) noexcept nogil:
    """``rows`` batch-major rows x (rows, T, F) -> dst (T, rows, F), C-contiguous both:
    one part's input in the kernels' time-major layout."""
    cdef Py_ssize_t b, t
    for t in range(T):
        for b in range(rows):
            memcpy(dst + (t * rows + b) * F, x + (b * T + t) * F, F * sizeof(floating))
