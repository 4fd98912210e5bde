# The one compiled definition of each cell: the per-row maths of a step, forward and
# backward, on raw pointers. The sequence kernels (_lstm.pyx, _gru.pyx, _simple_rnn.pyx),
# streaming (_stream.pyx) and the recurrent-dropout loop (through _cells.pyx's batch
# wrappers) all run these; another .pyx reuses them with `from crnn._kernels._cells cimport ...`.
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
from libc.string cimport memcpy, memset

from crnn._kernels._activations cimport SIGMOID, TANH, activate, derivative

# The elementwise loops, vectorized per instruction set (see _cellmath.h).
cdef extern from "_cellmath.h" nogil:
    void crnn_add_f32(Py_ssize_t n, const float *x, float *y)
    void crnn_add_f64(Py_ssize_t n, const double *x, double *y)
    void crnn_gather_dh_f32(Py_ssize_t n, float *dh, const float *d_out, float *carry)
    void crnn_gather_dh_f64(Py_ssize_t n, double *dh, const double *d_out, double *carry)
    void crnn_lstm_state_f32(Py_ssize_t U, const float *z, float *c, float *ac)
    void crnn_lstm_state_f64(Py_ssize_t U, const double *z, double *c, double *ac)
    void crnn_mul_f32(Py_ssize_t n, const float *a, const float *b, float *y)
    void crnn_mul_f64(Py_ssize_t n, const double *a, const double *b, double *y)
    void crnn_mul2_f32(Py_ssize_t n, const float *a, const float *b, float *y, float *y2)
    void crnn_mul2_f64(Py_ssize_t n, const double *a, const double *b, double *y, double *y2)
    void crnn_lstm_backward_st_f32(Py_ssize_t U, const float *gates, const float *c_tm1,
                                   const float *ac, float *dh, const float *d_out,
                                   float *carry, float *dc, float *dz)
    void crnn_lstm_backward_st_f64(Py_ssize_t U, const double *gates, const double *c_tm1,
                                   const double *ac, double *dh, const double *d_out,
                                   double *carry, double *dc, double *dz)
    void crnn_gru_backward_st_f32(Py_ssize_t U, const float *gates, const float *h_tm1,
                                  const float *inner_h, float *dh, const float *d_out,
                                  float *carry, float *dgx, float *dgi, int reset_after)
    void crnn_gru_backward_st_f64(Py_ssize_t U, const double *gates, const double *h_tm1,
                                  const double *inner_h, double *dh, const double *d_out,
                                  double *carry, double *dgx, double *dgi, int reset_after)
    void crnn_lstm_backward_f32(Py_ssize_t U, const float *gates, const float *c_tm1,
                                const float *ac, const float *dh, float *dc, float *dz,
                                const float *w)
    void crnn_lstm_backward_f64(Py_ssize_t U, const double *gates, const double *c_tm1,
                                const double *ac, const double *dh, double *dc, double *dz,
                                const double *w)
    void crnn_gru_backward_f32(Py_ssize_t U, const float *gates, const float *h_tm1,
                               const float *inner_h, float *dh, float *dgx, float *dgi,
                               const float *w, int reset_after)
    void crnn_gru_backward_f64(Py_ssize_t U, const double *gates, const double *h_tm1,
                               const double *inner_h, double *dh, double *dgx, double *dgi,
                               const double *w, int reset_after)
    # the fused GRU rows for ract = sigmoid, act = tanh
    void crnn_gru_after_s_f32(Py_ssize_t U, float *z, const float *inner)
    void crnn_gru_after_s_f64(Py_ssize_t U, double *z, const double *inner)
    void crnn_gru_finish_t_f32(Py_ssize_t U, float *z, const float *hp, float *h, float *out)
    void crnn_gru_finish_t_f64(Py_ssize_t U, double *z, const double *hp, double *h,
                               double *out)
    void crnn_rnn_row_t_f32(Py_ssize_t U, float *z, const float *b, float *h, float *out)
    void crnn_rnn_row_t_f64(Py_ssize_t U, double *z, const double *b, double *h, double *out)


cdef inline void add_span(Py_ssize_t n, const floating *x, floating *y) noexcept nogil:
    """y[:n] += x[:n] (no overlap): e.g. the bias onto a row of pre-activations."""
    if floating is float:
        crnn_add_f32(n, x, y)
    else:
        crnn_add_f64(n, x, y)


cdef inline void gather_dh(Py_ssize_t n, floating *dh, const floating *d_out,
                           floating *carry) noexcept nogil:
    """dh += d_out + carry; carry = 0: the total gradient reaching h_t in a backward loop
    (carry holds what masked steps passed through)."""
    if floating is float:
        crnn_gather_dh_f32(n, dh, d_out, carry)
    else:
        crnn_gather_dh_f64(n, dh, d_out, carry)


# --------------------------------------------------------------------------- LSTM

cdef inline void lstm_forward_row(Py_ssize_t U, floating *z, floating *c, floating *h,
                                  floating *ac, int act, int ract,
                                  floating *out=NULL) noexcept nogil:
    """z (4U): pre-activations in, activated i, f, g, o out; c: c_tm1 in, c_t out;
    ac (U): act(c_t) out; h: h_t out (may alias nothing else), and into ``out`` too
    unless NULL (the layer's output row: no copy of h afterwards)."""
    activate(z, 2 * U, ract)          # i, f
    activate(z + 2 * U, U, act)       # g
    activate(z + 3 * U, U, ract)      # o
    # c = f * c_tm1 + i * g; ac = act(c); h = o * ac
    if floating is float:
        crnn_lstm_state_f32(U, z, c, ac)
    else:
        crnn_lstm_state_f64(U, z, c, ac)
    activate(ac, U, act)
    if out != NULL:
        if floating is float:
            crnn_mul2_f32(U, z + 3 * U, ac, h, out)
        else:
            crnn_mul2_f64(U, z + 3 * U, ac, h, out)
    elif floating is float:
        crnn_mul_f32(U, z + 3 * U, ac, h)
    else:
        crnn_mul_f64(U, z + 3 * U, ac, h)


cdef inline void lstm_backward_row(Py_ssize_t U, const floating *gates,
                                   const floating *c_tm1, const floating *ac,
                                   const floating *dh, floating *dc, floating *dz,
                                   floating *work, int act, int ract) noexcept nogil:
    """gates (4U): activated i, f, g, o of the step; c_tm1, ac = act(c_t) (U); dh (U):
    dL/dh_t; dc (U): dL/dc_t from later steps in, dL/dc_tm1 out; dz (4U): dL/dz out;
    work: 5U scratch."""
    # work = [i', f', g', o', act'(c_t)]
    derivative(gates, work, 2 * U, ract)
    derivative(gates + 2 * U, work + 2 * U, U, act)
    derivative(gates + 3 * U, work + 3 * U, U, ract)
    derivative(ac, work + 4 * U, U, act)
    # h_t = o * act(c_t):        dc += dh * o * act'(c_t); dz_o = dh * act(c_t) * o'
    # c_t = f * c_tm1 + i * g:   dz_i = dc * g * i'; dz_f = dc * c_tm1 * f';
    #                            dz_g = dc * i * g'; dc_tm1 = dc * f
    if floating is float:
        crnn_lstm_backward_f32(U, gates, c_tm1, ac, dh, dc, dz, work)
    else:
        crnn_lstm_backward_f64(U, gates, c_tm1, ac, dh, dc, dz, work)


cdef inline void lstm_backward_step_row(Py_ssize_t U, const floating *gates,
                                        const floating *c_tm1, const floating *ac,
                                        floating *dh, const floating *d_out,
                                        floating *carry, floating *dc, floating *dz,
                                        floating *work, int act, int ract) noexcept nogil:
    """A row of a backward loop's step: gather_dh (dh += d_out + carry; carry = 0), then
    lstm_backward_row, then dh = 0 (h_tm1 reaches h_t only through the step's product). For
    sigmoid gates and tanh, in one pass (_cellmath.h), with the same products."""
    if ract == SIGMOID and act == TANH:
        if floating is float:
            crnn_lstm_backward_st_f32(U, gates, c_tm1, ac, dh, d_out, carry, dc, dz)
        else:
            crnn_lstm_backward_st_f64(U, gates, c_tm1, ac, dh, d_out, carry, dc, dz)
        return
    gather_dh(U, dh, d_out, carry)
    lstm_backward_row(U, gates, c_tm1, ac, dh, dc, dz, work, act, ract)
    memset(dh, 0, U * sizeof(floating))


# --------------------------------------------------------------------------- GRU

cdef inline void gru_gates_after_row(Py_ssize_t U, floating *z, const floating *inner,
                                     int ract) noexcept nogil:
    """reset_after: z (3U) = x @ W + b_in in; z, r activated and z_h + r * inner_h out.
    inner (3U) = h_tm1 @ R + b_rec."""
    cdef Py_ssize_t j
    if ract == SIGMOID:
        # the same maths in one pass (_cellmath.h)
        if floating is float:
            crnn_gru_after_s_f32(U, z, inner)
        else:
            crnn_gru_after_s_f64(U, z, inner)
        return
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


cdef inline void gru_finish_row(Py_ssize_t U, floating *z, const floating *h_tm1,
                                floating *h, floating *out, int act) noexcept nogil:
    """Both modes: z_h (the candidate's pre-activation) activated to hh in place;
    h_t = z * h_tm1 + (1 - z) * hh into h (h_tm1 may be h: in place) and, unless ``out``
    is NULL, into out (the layer's output row: no copy of h afterwards)."""
    cdef Py_ssize_t j
    cdef floating one = 1.0   # typed, so float32 maths stays float32
    if act == TANH:
        # the same maths in one pass (_cellmath.h)
        if floating is float:
            crnn_gru_finish_t_f32(U, z, h_tm1, h, out)
        else:
            crnn_gru_finish_t_f64(U, z, h_tm1, h, out)
        return
    activate(z + 2 * U, U, act)
    for j in range(U):
        h[j] = z[j] * h_tm1[j] + (one - z[j]) * z[2 * U + j]
    if out != NULL:
        memcpy(out, h, U * sizeof(floating))


cdef inline void gru_backward_row(Py_ssize_t U, const floating *gates,
                                  const floating *h_tm1, const floating *inner_h,
                                  floating *dh, floating *dgx, floating *dgi,
                                  floating *work, int act, int ract,
                                  bint reset_after) noexcept nogil:
    """gates (3U): activated z, r, hh; h_tm1 (U); inner_h (U, reset_after only);
    dh (U): dL/dh_t in, its direct share dL/dh_tm1 = dh * z out; dgx (3U): dL/d(x @ W +
    b_in) out (reset before: only the z and h blocks; gru_reset_backward_row fills r);
    dgi (3U, reset_after only): dL/dinner out; work: 3U scratch."""
    derivative(gates, work, 2 * U, ract)              # z', r'
    derivative(gates + 2 * U, work + 2 * U, U, act)   # hh'
    # h_t = z * h_tm1 + (1 - z) * hh:  dz = dh * (h_tm1 - hh) * z'; dhh = dh * (1 - z) * hh';
    #                                  dh_tm1 (direct) = dh * z
    # reset_after, hh = act(x_h + r * inner_h):  dr = dhh * inner_h * r';
    #                                  d_inner = [dz, dr, dhh * r]
    if floating is float:
        crnn_gru_backward_f32(U, gates, h_tm1, inner_h, dh, dgx, dgi, work, reset_after)
    else:
        crnn_gru_backward_f64(U, gates, h_tm1, inner_h, dh, dgx, dgi, work, reset_after)


cdef inline void gru_backward_step_row(Py_ssize_t U, const floating *gates,
                                       const floating *h_tm1, const floating *inner_h,
                                       floating *dh, const floating *d_out, floating *carry,
                                       floating *dgx, floating *dgi, floating *work, int act,
                                       int ract, bint reset_after) noexcept nogil:
    """A row of a backward loop's step: gather_dh (dh += d_out + carry; carry = 0), then
    gru_backward_row. For sigmoid gates and tanh, in one pass (_cellmath.h), with the same
    products."""
    if ract == SIGMOID and act == TANH:
        if floating is float:
            crnn_gru_backward_st_f32(U, gates, h_tm1, inner_h, dh, d_out, carry, dgx, dgi,
                                     reset_after)
        else:
            crnn_gru_backward_st_f64(U, gates, h_tm1, inner_h, dh, d_out, carry, dgx, dgi,
                                     reset_after)
        return
    gather_dh(U, dh, d_out, carry)
    gru_backward_row(U, gates, h_tm1, inner_h, dh, dgx, dgi, work, act, ract, reset_after)


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

cdef inline void simple_rnn_forward_row(Py_ssize_t U, floating *z, const floating *bias,
                                        floating *h, floating *out, int act) noexcept nogil:
    """z (U): pre-activation in (plus ``bias`` unless NULL), h_t out; h: h_t out, and
    ``out`` too unless NULL (the layer's output row). For tanh in one pass (_cellmath.h)."""
    if act == TANH:
        if floating is float:
            crnn_rnn_row_t_f32(U, z, bias, h, out)
        else:
            crnn_rnn_row_t_f64(U, z, bias, h, out)
        return
    if bias != NULL:
        add_span(U, bias, z)
    activate(z, U, act)
    memcpy(h, z, U * sizeof(floating))
    if out != NULL:
        memcpy(out, z, U * sizeof(floating))


cdef inline void simple_rnn_backward_row(Py_ssize_t U, const floating *y,
                                         const floating *dh, floating *dz,
                                         int act) noexcept nogil:
    """y (U): h_t; dh (U): dL/dh_t; dz (U): dL/dz out."""
    cdef Py_ssize_t j
    derivative(y, dz, U, act)
    for j in range(U):
        dz[j] = dz[j] * dh[j]
