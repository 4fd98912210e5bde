"""Conv1D kernels: im2col + one GEMM forward, two GEMMs + col2im backward, over SciPy BLAS.

Notation (channels last):
    x      (B, T, C)        inputs
    W      (K * C, F)       the Keras kernel (K, C, F) seen as a matrix: row j * C + c
    cols   (B * T_out, K * C)  cols[b * T_out + t, j * C + c] = x[b, p, c], zero outside
    y      (B * T_out, F)   y = cols @ W (bias and activation are added by the layer)
where output step t, tap j reads input step p = t * stride + j * dilation - pad_left.
"""

from cython cimport floating

import numpy as np

from crnn._kernels._blas cimport gemm


cdef void _im2col(const floating *x, floating *cols, int B, int T, int C, int T_out, int K,
                  int stride, int dilation, int pad_left) noexcept nogil:
    cdef int b, t, j, c, p
    cdef floating *row
    cdef const floating *src
    for b in range(B):
        for t in range(T_out):
            row = cols + (<long> (b * T_out + t)) * K * C
            for j in range(K):
                p = t * stride + j * dilation - pad_left
                if p < 0 or p >= T:
                    for c in range(C):
                        row[j * C + c] = 0
                else:
                    src = x + (<long> (b * T + p)) * C
                    for c in range(C):
                        row[j * C + c] = src[c]


cdef void _col2im(const floating *dcols, floating *dx, int B, int T, int C, int T_out, int K,
                  int stride, int dilation, int pad_left) noexcept nogil:
    # dx[b, p, c] += dcols[b * T_out + t, j * C + c] (dx starts at zero)
    cdef int b, t, j, c, p
    cdef const floating *row
    cdef floating *dst
    for b in range(B):
        for t in range(T_out):
            row = dcols + (<long> (b * T_out + t)) * K * C
            for j in range(K):
                p = t * stride + j * dilation - pad_left
                if 0 <= p < T:
                    dst = dx + (<long> (b * T + p)) * C
                    for c in range(C):
                        dst[c] += row[j * C + c]


def conv1d_forward(const floating[:, :, ::1] x, const floating[:, ::1] w, int t_out, int k,
                   int stride, int dilation, int pad_left):
    """``(y, cols)``: ``y = im2col(x) @ W`` of shape ``(B * t_out, F)``, and the columns.

    Args:
        x: inputs ``(B, T, C)``, C-contiguous.
        w: the kernel as ``(k * C, F)``, same dtype.
        t_out, k, stride, dilation, pad_left: the geometry (see the module notes).
    """
    cdef int b = x.shape[0], t = x.shape[1], c = x.shape[2], f = w.shape[1]
    cdef int m = b * t_out, kc = k * c
    if w.shape[0] != kc:
        raise ValueError(f"kernel has {w.shape[0]} rows, expected k * channels = {kc}")
    dtype = np.float32 if floating is float else np.float64
    cols = np.zeros((m, kc), dtype=dtype)
    y = np.zeros((m, f), dtype=dtype)
    cdef floating[:, ::1] cols_v = cols
    cdef floating[:, ::1] y_v = y
    if m == 0 or kc == 0 or f == 0:
        return y, cols
    with nogil:
        _im2col(&x[0, 0, 0], &cols_v[0, 0], b, t, c, t_out, k, stride, dilation, pad_left)
        # y = cols @ W
        gemm(False, False, m, f, kc, 1.0, &cols_v[0, 0], kc, &w[0, 0], f, 0.0, &y_v[0, 0], f)
    return y, cols


def conv1d_backward(const floating[:, ::1] cols, const floating[:, ::1] w,
                    const floating[:, ::1] dy, int b, int t, int c, int t_out, int k, int stride,
                    int dilation, int pad_left):
    """``(dx, d_w)`` for ``y = im2col(x) @ W``: ``d_w = cols^T @ dy``, ``dx = col2im(dy @ W^T)``.

    Args:
        cols: the columns from ``conv1d_forward`` ``(B * t_out, k * C)``.
        w: the kernel as ``(k * C, F)``.
        dy: the gradient of ``y`` ``(B * t_out, F)``.
        b, t, c, t_out, k, stride, dilation, pad_left: the geometry.
    """
    cdef int m = b * t_out, kc = k * c, f = w.shape[1]
    if cols.shape[0] != m or cols.shape[1] != kc or dy.shape[0] != m or dy.shape[1] != f:
        raise ValueError("conv1d_backward: cols, w and dy don't match the geometry")
    dtype = np.float32 if floating is float else np.float64
    dx = np.zeros((b, t, c), dtype=dtype)
    d_w = np.zeros((kc, f), dtype=dtype)
    dcols = np.empty((m, kc), dtype=dtype)
    cdef floating[:, :, ::1] dx_v = dx
    cdef floating[:, ::1] dw_v = d_w
    cdef floating[:, ::1] dcols_v = dcols
    if m == 0 or kc == 0 or f == 0:
        return dx, d_w
    with nogil:
        # d_W = cols^T @ dy
        gemm(True, False, kc, f, m, 1.0, &cols[0, 0], kc, &dy[0, 0], f, 0.0, &dw_v[0, 0], f)
        # dcols = dy @ W^T
        gemm(False, True, m, kc, f, 1.0, &dy[0, 0], f, &w[0, 0], f, 0.0, &dcols_v[0, 0], kc)
        _col2im(&dcols_v[0, 0], &dx_v[0, 0, 0], b, t, c, t_out, k, stride, dilation, pad_left)
    return dx, d_w
