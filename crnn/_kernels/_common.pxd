# Pieces shared by the kernel files: argument checks and layout changes. (Activations
# live in _activations.pxd, the cells' step maths in _cells.pxd.)

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
