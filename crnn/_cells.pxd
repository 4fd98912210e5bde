# The one compiled definition of each cell: the per-row maths of a step, forward and
# backward, on raw pointers. The sequence kernels (_lstm.pyx, _gru.pyx, _simple_rnn.pyx),
# streaming (_stream.pyx) and the recurrent-dropout loop (through _cells.pyx's batch
# wrappers) all run these; another .pyx reuses them with `from crnn._cells cimport ...`.
# The matrix products stay with the caller (it knows the batch and the weight layout); a
# row function starts from the pre-activations that the products left.
#
# Notation (Keras 3 layout; U units, one sample's row):
#   LSTM   z (4U: i, f, c, o) = x @ W + h_tm1 @ R + b
#          i, f, o = ract(z_i, z_f, z_o); g = act(z_c); c = f*c_tm1 + i*g; h = o*act(c)
#   GRU    z (3U: z, r, h) = x @ W + b_in, then
#          reset_after:  inner = h_tm1 @ R + b_rec; z, r = ract(z[:2U] + inner[:2U]);
#                        hh = act(z_h + r * inner_h)
#          reset before: z[:2U] += h_tm1 @ R[:, :2U]; z, r = ract(z[:2U]);
#                        z_h += (r * h_tm1) @ R_h; hh = act(z_h)
#          h = z * h_tm1 + (1 - z) * hh
#   SimpleRNN  h = act(z), z = x @ W + h_tm1 @ R + b
# Backward pieces take dh, the total gradient reaching h_t (from the output, the next
# step and the final-state gradient), and give the gradients of the pre-activations.

from cython cimport floating
from libc.string cimport memcpy

from crnn._activations cimport activate, derivative


# --------------------------------------------------------------------------- LSTM

cdef inline void lstm_forward_row(Py_ssize_t U, floating *z, floating *c, floating *h,
                                  floating *ac, int act, int ract) noexcept nogil:
    """z (4U): pre-activations in, activated i, f, g, o out; c: c_tm1 in, c_t out;
    ac (U): act(c_t) out; h: h_t out (may alias nothing else)."""
    cdef Py_ssize_t j
    activate(z, 2 * U, ract)          # i, f
    activate(z + 2 * U, U, act)       # g
    activate(z + 3 * U, U, ract)      # o
    for j in range(U):
        c[j] = z[U + j] * c[j] + z[j] * z[2 * U + j]
        ac[j] = c[j]
    activate(ac, U, act)
    for j in range(U):
        h[j] = z[3 * U + j] * ac[j]


cdef inline void lstm_backward_row(Py_ssize_t U, const floating *gates,
                                   const floating *c_tm1, const floating *ac,
                                   const floating *dh, floating *dc, floating *dz,
                                   floating *work, int act, int ract) noexcept nogil:
    """gates (4U): activated i, f, g, o of the step; c_tm1, ac = act(c_t) (U); dh (U):
    dL/dh_t; dc (U): dL/dc_t from later steps in, dL/dc_tm1 out; dz (4U): dL/dz out;
    work: 5U scratch."""
    cdef Py_ssize_t j
    cdef floating dcv
    # work = [i', f', g', o', act'(c_t)]
    derivative(gates, work, 2 * U, ract)
    derivative(gates + 2 * U, work + 2 * U, U, act)
    derivative(gates + 3 * U, work + 3 * U, U, ract)
    derivative(ac, work + 4 * U, U, act)
    for j in range(U):
        # h_t = o * act(c_t)
        dcv = dc[j] + dh[j] * gates[3 * U + j] * work[4 * U + j]
        dz[3 * U + j] = dh[j] * ac[j] * work[3 * U + j]
        # c_t = f * c_tm1 + i * g
        dz[j] = dcv * gates[2 * U + j] * work[j]
        dz[U + j] = dcv * c_tm1[j] * work[U + j]
        dz[2 * U + j] = dcv * gates[j] * work[2 * U + j]
        dc[j] = dcv * gates[U + j]


# --------------------------------------------------------------------------- GRU

cdef inline void gru_gates_after_row(Py_ssize_t U, floating *z, const floating *inner,
                                     int ract) noexcept nogil:
    """reset_after: z (3U) = x @ W + b_in in; z, r activated and z_h + r * inner_h out.
    inner (3U) = h_tm1 @ R + b_rec."""
    cdef Py_ssize_t j
    for j in range(2 * U):
        z[j] += inner[j]
    activate(z, 2 * U, ract)
    for j in range(U):
        z[2 * U + j] += z[U + j] * inner[2 * U + j]


cdef inline void gru_gates_before_row(Py_ssize_t U, floating *z, const floating *h_r,
                                      floating *rh, int ract) noexcept nogil:
    """reset before: z[:2U] (pre-activations, recurrent part included) activated in place;
    rh = r * h_r (U), the input of the candidate's recurrent product."""
    cdef Py_ssize_t j
    activate(z, 2 * U, ract)
    for j in range(U):
        rh[j] = z[U + j] * h_r[j]


cdef inline void gru_finish_row(Py_ssize_t U, floating *z, floating *h,
                                int act) noexcept nogil:
    """Both modes: z_h (the candidate's pre-activation) activated to hh in place; h: h_tm1
    in, h_t = z * h_tm1 + (1 - z) * hh out."""
    cdef Py_ssize_t j
    cdef floating one = 1.0   # typed, so float32 maths stays float32
    activate(z + 2 * U, U, act)
    for j in range(U):
        h[j] = z[j] * h[j] + (one - z[j]) * z[2 * U + j]


cdef inline void gru_backward_row(Py_ssize_t U, const floating *gates,
                                  const floating *h_tm1, const floating *inner_h,
                                  floating *dh, floating *dgx, floating *dgi,
                                  floating *work, int act, int ract,
                                  bint reset_after) noexcept nogil:
    """gates (3U): activated z, r, hh; h_tm1 (U); inner_h (U, reset_after only);
    dh (U): dL/dh_t in, its direct share dL/dh_tm1 = dh * z out; dgx (3U): dL/d(x @ W +
    b_in) out (reset before: only the z and h blocks; gru_reset_backward_row fills r);
    dgi (3U, reset_after only): dL/dinner out; work: 3U scratch."""
    cdef Py_ssize_t j
    cdef floating dhv, dhh, one = 1.0
    derivative(gates, work, 2 * U, ract)              # z', r'
    derivative(gates + 2 * U, work + 2 * U, U, act)   # hh'
    for j in range(U):
        dhv = dh[j]
        # h_t = z * h_tm1 + (1 - z) * hh
        dgx[j] = dhv * (h_tm1[j] - gates[2 * U + j]) * work[j]
        dhh = dhv * (one - gates[j]) * work[2 * U + j]
        dgx[2 * U + j] = dhh
        dh[j] = dhv * gates[j]
        if reset_after:
            # hh = act(x_h + r * inner_h)
            dgx[U + j] = dhh * inner_h[j] * work[U + j]
    if reset_after:
        for j in range(2 * U):
            dgi[j] = dgx[j]
        for j in range(U):
            dgi[2 * U + j] = dgx[2 * U + j] * gates[U + j]


cdef inline void gru_reset_backward_row(Py_ssize_t U, const floating *gates,
                                        const floating *h_r, const floating *d_rh,
                                        floating *dgx, floating *dh_r, floating *work,
                                        int ract) noexcept nogil:
    """reset before, after d_rh = dL/d(r * h_r) = dhh @ R_h^T: the r block of dgx out and
    dh_r += d_rh * r (the gradient reaching h_r through r * h_r); work: U scratch."""
    cdef Py_ssize_t j
    derivative(gates + U, work, U, ract)              # r'
    for j in range(U):
        dgx[U + j] = d_rh[j] * h_r[j] * work[j]
        dh_r[j] += d_rh[j] * gates[U + j]


# --------------------------------------------------------------------------- SimpleRNN

cdef inline void simple_rnn_forward_row(Py_ssize_t U, floating *z, floating *h,
                                        int act) noexcept nogil:
    """z (U): pre-activation in, h_t out; h: h_t out."""
    activate(z, U, act)
    memcpy(h, z, U * sizeof(floating))


cdef inline void simple_rnn_backward_row(Py_ssize_t U, const floating *y,
                                         const floating *dh, floating *dz,
                                         int act) noexcept nogil:
    """y (U): h_t; dh (U): dL/dh_t; dz (U): dL/dz out."""
    cdef Py_ssize_t j
    derivative(y, dz, U, act)
    for j in range(U):
        dz[j] = dz[j] * dh[j]
