/* The elementwise loops of the cell steps (crnn/_cells.pxd), as C with restrict-qualified
 * pointers, built per instruction set (CRNN_MULTIVERSION, see _fastmath.h).
 *
 * Cython's code is compiled for the x86-64 baseline (SSE2), and its loops over several
 * pointers that GCC must assume may alias are left scalar or guarded by alias checks;
 * these helpers say which spans do not overlap, so GCC vectorizes them with the widest
 * vectors the CPU has. Each one is a line of the maths in _cells.pxd, which documents the
 * names; callers guarantee that the spans passed as restrict do not overlap.
 */
#ifndef CRNN_CELLMATH_H
#define CRNN_CELLMATH_H

#include "_fastmath.h"

#define CRNN_R __restrict__

/* Activation codes of _activations.pxd, as far as the derivative needs them. */
enum { CRNN_LINEAR = 0, CRNN_TANH = 1, CRNN_SIGMOID = 2, CRNN_HARD_SIGMOID = 3,
       CRNN_RELU = 4 };

#define CRNN_DEFINE_CELLMATH(S, T)                                                            \
/* dy = f'(x) from y = f(x) */                                                                \
CRNN_INLINE void crnn_derivative_##S##_body(const T *CRNN_R y, T *CRNN_R dy, Py_ssize_t n,    \
                                            int kind) {                                       \
    const T zero = 0, one = 1, sixth = (T)(1.0 / 6.0);                                        \
    Py_ssize_t j;                                                                             \
    if (kind == CRNN_TANH) {                                                                  \
        for (j = 0; j < n; j++) dy[j] = one - y[j] * y[j];                                    \
    } else if (kind == CRNN_SIGMOID) {                                                        \
        for (j = 0; j < n; j++) dy[j] = y[j] * (one - y[j]);                                  \
    } else if (kind == CRNN_HARD_SIGMOID) {                                                   \
        for (j = 0; j < n; j++) dy[j] = (y[j] > zero && y[j] < one) ? sixth : zero;           \
    } else if (kind == CRNN_RELU) {                                                           \
        for (j = 0; j < n; j++) dy[j] = y[j] > zero ? one : zero;                             \
    } else {                                                                                  \
        for (j = 0; j < n; j++) dy[j] = one;                                                  \
    }                                                                                         \
}                                                                                             \
CRNN_MULTIVERSION(crnn_derivative_##S, (const T *y, T *dy, Py_ssize_t n, int kind),           \
                  (y, dy, n, kind))                                                           \
                                                                                              \
/* y += x */                                                                                  \
CRNN_INLINE void crnn_add_##S##_body(Py_ssize_t n, const T *CRNN_R x, T *CRNN_R y) {          \
    for (Py_ssize_t j = 0; j < n; j++) y[j] += x[j];                                          \
}                                                                                             \
CRNN_MULTIVERSION(crnn_add_##S, (Py_ssize_t n, const T *x, T *y), (n, x, y))                  \
                                                                                              \
/* dh += d_out + carry; carry = 0 (the gradient reaching h_t) */                              \
CRNN_INLINE void crnn_gather_dh_##S##_body(Py_ssize_t n, T *CRNN_R dh,                        \
                                           const T *CRNN_R d_out, T *CRNN_R carry) {          \
    for (Py_ssize_t j = 0; j < n; j++) { dh[j] += d_out[j] + carry[j]; carry[j] = 0; }       \
}                                                                                             \
CRNN_MULTIVERSION(crnn_gather_dh_##S, (Py_ssize_t n, T *dh, const T *d_out, T *carry),        \
                  (n, dh, d_out, carry))                                                      \
                                                                                              \
/* LSTM: c = f * c_tm1 + i * g; ac = c (activated by the caller) */                           \
CRNN_INLINE void crnn_lstm_state_##S##_body(Py_ssize_t U, const T *CRNN_R z, T *CRNN_R c,     \
                                            T *CRNN_R ac) {                                   \
    for (Py_ssize_t j = 0; j < U; j++) {                                                      \
        T v = z[U + j] * c[j] + z[j] * z[2 * U + j];                                          \
        c[j] = v;                                                                             \
        ac[j] = v;                                                                            \
    }                                                                                         \
}                                                                                             \
CRNN_MULTIVERSION(crnn_lstm_state_##S, (Py_ssize_t U, const T *z, T *c, T *ac), (U, z, c, ac))\
                                                                                              \
/* y = a * b */                                                                               \
CRNN_INLINE void crnn_mul_##S##_body(Py_ssize_t n, const T *CRNN_R a, const T *CRNN_R b,      \
                                     T *CRNN_R y) {                                           \
    for (Py_ssize_t j = 0; j < n; j++) y[j] = a[j] * b[j];                                    \
}                                                                                             \
CRNN_MULTIVERSION(crnn_mul_##S, (Py_ssize_t n, const T *a, const T *b, T *y), (n, a, b, y))   \
                                                                                              \
/* y = y2 = a * b (a state row and the layer's output row in one pass) */                     \
CRNN_INLINE void crnn_mul2_##S##_body(Py_ssize_t n, const T *CRNN_R a, const T *CRNN_R b,     \
                                      T *CRNN_R y, T *CRNN_R y2) {                            \
    for (Py_ssize_t j = 0; j < n; j++) { T v = a[j] * b[j]; y[j] = v; y2[j] = v; }            \
}                                                                                             \
CRNN_MULTIVERSION(crnn_mul2_##S, (Py_ssize_t n, const T *a, const T *b, T *y, T *y2),         \
                  (n, a, b, y, y2))                                                           \
                                                                                              \
/* LSTM backward, given w = [i', f', g', o', act'(c_t)] (5U) */                               \
CRNN_INLINE void crnn_lstm_backward_##S##_body(Py_ssize_t U, const T *CRNN_R gates,           \
        const T *CRNN_R c_tm1, const T *CRNN_R ac, const T *CRNN_R dh, T *CRNN_R dc,          \
        T *CRNN_R dz, const T *CRNN_R w) {                                                    \
    for (Py_ssize_t j = 0; j < U; j++) {                                                      \
        T dcv = dc[j] + dh[j] * gates[3 * U + j] * w[4 * U + j];                              \
        dz[3 * U + j] = dh[j] * ac[j] * w[3 * U + j];                                         \
        dz[j] = dcv * gates[2 * U + j] * w[j];                                                \
        dz[U + j] = dcv * c_tm1[j] * w[U + j];                                                \
        dz[2 * U + j] = dcv * gates[j] * w[2 * U + j];                                        \
        dc[j] = dcv * gates[U + j];                                                           \
    }                                                                                         \
}                                                                                             \
CRNN_MULTIVERSION(crnn_lstm_backward_##S,                                                     \
                  (Py_ssize_t U, const T *gates, const T *c_tm1, const T *ac, const T *dh,    \
                   T *dc, T *dz, const T *w), (U, gates, c_tm1, ac, dh, dc, dz, w))           \
                                                                                              \
/* LSTM backward for sigmoid gates and tanh, in one pass: the derivatives from the gates   \
 * (i' = i (1 - i), ..., tanh'(c_t) = 1 - act(c_t)^2) and the gradient reaching h_t       \
 * (dh + d_out + carry; dh and carry are zeroed for the next step), with the same products \
 * as crnn_lstm_backward on crnn_derivative's w */                                         \
CRNN_INLINE void crnn_lstm_backward_st_##S##_body(Py_ssize_t U, const T *CRNN_R gates,        \
        const T *CRNN_R c_tm1, const T *CRNN_R ac, T *CRNN_R dh, const T *CRNN_R d_out,       \
        T *CRNN_R carry, T *CRNN_R dc, T *CRNN_R dz) {                                        \
    const T one = 1;                                                                          \
    for (Py_ssize_t j = 0; j < U; j++) {                                                      \
        T d = dh[j] + (d_out[j] + carry[j]);                                                  \
        T i = gates[j], f = gates[U + j], g = gates[2 * U + j], o = gates[3 * U + j];         \
        T wi = i * (one - i), wf = f * (one - f), wg = one - g * g, wo = o * (one - o);       \
        T wc = one - ac[j] * ac[j];                                                           \
        T dcv = dc[j] + d * o * wc;                                                           \
        dz[3 * U + j] = d * ac[j] * wo;                                                       \
        dz[j] = dcv * g * wi;                                                                 \
        dz[U + j] = dcv * c_tm1[j] * wf;                                                      \
        dz[2 * U + j] = dcv * i * wg;                                                         \
        dc[j] = dcv * f;                                                                      \
        dh[j] = 0;                                                                            \
        carry[j] = 0;                                                                         \
    }                                                                                         \
}                                                                                             \
CRNN_MULTIVERSION(crnn_lstm_backward_st_##S,                                                  \
                  (Py_ssize_t U, const T *gates, const T *c_tm1, const T *ac, T *dh,          \
                   const T *d_out, T *carry, T *dc, T *dz),                                   \
                  (U, gates, c_tm1, ac, dh, d_out, carry, dc, dz))                            \
                                                                                              \
/* GRU backward for sigmoid gates and tanh, in one pass: the derivatives from the gates     \
 * and the gradient reaching h_t (dh + d_out + carry; carry is zeroed), with the same       \
 * products as crnn_gru_backward on crnn_derivative's w; inner_h and dgi with reset_after  \
 * only */                                                                                  \
CRNN_INLINE void crnn_gru_backward_st_##S##_body(Py_ssize_t U, const T *CRNN_R gates,         \
        const T *CRNN_R h_tm1, const T *CRNN_R inner_h, T *CRNN_R dh, const T *CRNN_R d_out,  \
        T *CRNN_R carry, T *CRNN_R dgx, T *CRNN_R dgi, int reset_after) {                     \
    const T one = 1;                                                                          \
    Py_ssize_t j;                                                                             \
    for (j = 0; j < U; j++) {                                                                 \
        T d = dh[j] + (d_out[j] + carry[j]);                                                  \
        T z = gates[j], hh = gates[2 * U + j];                                                \
        T wz = z * (one - z), wh = one - hh * hh;                                             \
        dgx[j] = d * (h_tm1[j] - hh) * wz;                                                    \
        dgx[2 * U + j] = d * (one - z) * wh;                                                  \
        dh[j] = d * z;                                                                        \
        carry[j] = 0;                                                                         \
    }                                                                                         \
    if (reset_after) {                                                                        \
        for (j = 0; j < U; j++) {                                                             \
            T r = gates[U + j], dhh = dgx[2 * U + j];                                         \
            T wr = r * (one - r);                                                             \
            dgx[U + j] = dhh * inner_h[j] * wr;                                               \
            dgi[j] = dgx[j];                                                                  \
            dgi[U + j] = dgx[U + j];                                                          \
            dgi[2 * U + j] = dhh * r;                                                         \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
CRNN_MULTIVERSION(crnn_gru_backward_st_##S,                                                   \
                  (Py_ssize_t U, const T *gates, const T *h_tm1, const T *inner_h, T *dh,     \
                   const T *d_out, T *carry, T *dgx, T *dgi, int reset_after),                \
                  (U, gates, h_tm1, inner_h, dh, d_out, carry, dgx, dgi, reset_after))        \
                                                                                              \
/* GRU backward, given w = [z', r', hh'] (3U); inner_h and dgi with reset_after only */       \
CRNN_INLINE void crnn_gru_backward_##S##_body(Py_ssize_t U, const T *CRNN_R gates,            \
        const T *CRNN_R h_tm1, const T *CRNN_R inner_h, T *CRNN_R dh, T *CRNN_R dgx,          \
        T *CRNN_R dgi, const T *CRNN_R w, int reset_after) {                                  \
    const T one = 1;                                                                          \
    Py_ssize_t j;                                                                             \
    for (j = 0; j < U; j++) {                                                                 \
        T dhv = dh[j];                                                                        \
        dgx[j] = dhv * (h_tm1[j] - gates[2 * U + j]) * w[j];                                  \
        dgx[2 * U + j] = dhv * (one - gates[j]) * w[2 * U + j];                               \
        dh[j] = dhv * gates[j];                                                               \
    }                                                                                         \
    if (reset_after) {                                                                        \
        for (j = 0; j < U; j++) {                                                             \
            T dhh = dgx[2 * U + j];                                                           \
            dgx[U + j] = dhh * inner_h[j] * w[U + j];                                         \
            dgi[j] = dgx[j];                                                                  \
            dgi[U + j] = dgx[U + j];                                                          \
            dgi[2 * U + j] = dhh * gates[U + j];                                              \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
CRNN_MULTIVERSION(crnn_gru_backward_##S,                                                      \
                  (Py_ssize_t U, const T *gates, const T *h_tm1, const T *inner_h, T *dh,     \
                   T *dgx, T *dgi, const T *w, int reset_after),                              \
                  (U, gates, h_tm1, inner_h, dh, dgx, dgi, w, reset_after))

CRNN_DEFINE_CELLMATH(f32, float)
CRNN_DEFINE_CELLMATH(f64, double)


/* The fused GRU rows: a row's gate maths in one pass for the usual activations (ract =
 * sigmoid, act = tanh; the other codes run the passes of _cells.pxd). On AVX-512 they run
 * _fastmath.h's intrinsic vector functions over blocks of 16 floats / 8 doubles, the last
 * block under a mask; else the same loop in C, vectorized by GCC.
 * (The LSTM row stays in passes: fused into one pass, or with its state update fused into
 * the tanh(c_t) pass, it measured no faster on AVX-512 and slower on AVX2; its time is the
 * activations' arithmetic, and a block's chain of dependent activations is too long for
 * the out-of-order window to overlap the next block's.) */
#define CRNN_DEFINE_FUSED(S, T, SIG, TANH)                                                    \
/* GRU reset_after: z (3U): z, r = sigmoid(z + inner) and z_h += r * inner_h, in place */     \
CRNN_INLINE void crnn_gru_after_s_##S##_body(Py_ssize_t U, T *CRNN_R z,                       \
                                             const T *CRNN_R inner) {                         \
    for (Py_ssize_t j = 0; j < U; j++) {                                                      \
        T zz = SIG(z[j] + inner[j]), r = SIG(z[U + j] + inner[U + j]);                        \
        z[j] = zz; z[U + j] = r;                                                              \
        z[2 * U + j] += r * inner[2 * U + j];                                                 \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* GRU, both modes: hh = tanh(z_h) in place; h = z * h_tm1 + (1 - z) * hh, from h_tm1 at   \
 * hp (hp == h: in place), also into out unless NULL (a layer's output row) */               \
CRNN_INLINE void crnn_gru_finish_t_##S##_body(Py_ssize_t U, T *CRNN_R z, const T *hp, T *h,   \
                                              T *out) {                                       \
    const T one = 1;                                                                          \
    for (Py_ssize_t j = 0; j < U; j++) {                                                      \
        T hh = TANH(z[2 * U + j]);                                                            \
        T hv = z[j] * hp[j] + (one - z[j]) * hh;                                              \
        z[2 * U + j] = hh;                                                                    \
        h[j] = hv;                                                                            \
        if (out) out[j] = hv;                                                                 \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* SimpleRNN with tanh: z = tanh(z + b) in place (b unless NULL), into h and, unless NULL,   \
 * out (the layer's output row) */                                                           \
CRNN_INLINE void crnn_rnn_row_t_##S##_body(Py_ssize_t U, T *CRNN_R z, const T *CRNN_R b,      \
                                           T *CRNN_R h, T *CRNN_R out) {                      \
    for (Py_ssize_t j = 0; j < U; j++) {                                                      \
        T v = TANH(b ? z[j] + b[j] : z[j]);                                                   \
        z[j] = v;                                                                             \
        h[j] = v;                                                                             \
        if (out) out[j] = v;                                                                  \
    }                                                                                         \
}

CRNN_DEFINE_FUSED(f32, float, crnn_sigmoidf, crnn_tanhf)
CRNN_DEFINE_FUSED(f64, double, crnn_sigmoid, crnn_tanh)

#ifdef CRNN_HAVE_AVX512
/* A block of W lanes at j: whole (FULL, plain loads and stores) or the tail under mask m. */
#define CRNN_LD(V, FULL, m, p) ((FULL) ? _mm512_loadu_##V(p) : _mm512_maskz_loadu_##V(m, p))
#define CRNN_ST(V, FULL, m, p, x)                                                             \
    do { if (FULL) _mm512_storeu_##V(p, x); else _mm512_mask_storeu_##V(p, m, x); } while (0)

#define CRNN_DEFINE_FUSED512(S, T, V, W, VT, MT, SIG, TANH)                                   \
CRNN_AVX512 void crnn_gru_after_block_##S(Py_ssize_t U, T *z, const T *inner, Py_ssize_t j,  \
                                          MT m, int full) {                                   \
    VT zz = SIG(_mm512_add_##V(CRNN_LD(V, full, m, z + j), CRNN_LD(V, full, m, inner + j)));  \
    VT r = SIG(_mm512_add_##V(CRNN_LD(V, full, m, z + U + j),                                 \
                              CRNN_LD(V, full, m, inner + U + j)));                           \
    VT zh = _mm512_fmadd_##V(r, CRNN_LD(V, full, m, inner + 2 * U + j),                       \
                             CRNN_LD(V, full, m, z + 2 * U + j));                             \
    CRNN_ST(V, full, m, z + j, zz);                                                           \
    CRNN_ST(V, full, m, z + U + j, r);                                                        \
    CRNN_ST(V, full, m, z + 2 * U + j, zh);                                                   \
}                                                                                             \
__attribute__((target("avx512f,fma"))) static void crnn_gru_after_s_##S##_avx512(            \
        Py_ssize_t U, T *z, const T *inner) {                                                 \
    Py_ssize_t j = 0;                                                                         \
    for (; j + W <= U; j += W) crnn_gru_after_block_##S(U, z, inner, j, (MT)-1, 1);          \
    if (j < U) crnn_gru_after_block_##S(U, z, inner, j, (MT)((1u << (U - j)) - 1u), 0);       \
}                                                                                             \
                                                                                              \
CRNN_AVX512 void crnn_gru_finish_block_##S(Py_ssize_t U, T *z, const T *hp, T *h, T *out,     \
                                           Py_ssize_t j, MT m, int full) {                    \
    VT hh = TANH(CRNN_LD(V, full, m, z + 2 * U + j));                                         \
    VT zz = CRNN_LD(V, full, m, z + j);                                                       \
    VT one_z = _mm512_sub_##V(_mm512_set1_##V(1), zz);                                        \
    VT hv = _mm512_fmadd_##V(zz, CRNN_LD(V, full, m, hp + j), _mm512_mul_##V(one_z, hh));    \
    CRNN_ST(V, full, m, z + 2 * U + j, hh);                                                   \
    CRNN_ST(V, full, m, h + j, hv);                                                           \
    if (out) CRNN_ST(V, full, m, out + j, hv);                                                \
}                                                                                             \
__attribute__((target("avx512f,fma"))) static void crnn_gru_finish_t_##S##_avx512(           \
        Py_ssize_t U, T *z, const T *hp, T *h, T *out) {                                      \
    Py_ssize_t j = 0;                                                                         \
    for (; j + W <= U; j += W) crnn_gru_finish_block_##S(U, z, hp, h, out, j, (MT)-1, 1);    \
    if (j < U)                                                                                \
        crnn_gru_finish_block_##S(U, z, hp, h, out, j, (MT)((1u << (U - j)) - 1u), 0);        \
}                                                                                             \
                                                                                              \
CRNN_AVX512 void crnn_rnn_block_##S(T *z, const T *b, T *h, T *out, Py_ssize_t j, MT m,       \
                                    int full) {                                               \
    VT v = CRNN_LD(V, full, m, z + j);                                                        \
    if (b) v = _mm512_add_##V(v, CRNN_LD(V, full, m, b + j));                                 \
    v = TANH(v);                                                                              \
    CRNN_ST(V, full, m, z + j, v);                                                            \
    CRNN_ST(V, full, m, h + j, v);                                                            \
    if (out) CRNN_ST(V, full, m, out + j, v);                                                 \
}                                                                                             \
__attribute__((target("avx512f,fma"))) static void crnn_rnn_row_t_##S##_avx512(              \
        Py_ssize_t U, T *z, const T *b, T *h, T *out) {                                       \
    Py_ssize_t j = 0;                                                                         \
    for (; j + W <= U; j += W) crnn_rnn_block_##S(z, b, h, out, j, (MT)-1, 1);               \
    if (j < U) crnn_rnn_block_##S(z, b, h, out, j, (MT)((1u << (U - j)) - 1u), 0);            \
}

CRNN_DEFINE_FUSED512(f32, float, ps, 16, __m512, __mmask16, crnn_v16_sigmoid, crnn_v16_tanh)
CRNN_DEFINE_FUSED512(f64, double, pd, 8, __m512d, __mmask8, crnn_v8_sigmoid, crnn_v8_tanh)
#endif

#define CRNN_DISPATCH_FUSED(S, T)                                                             \
CRNN_MULTIVERSION_OWN512(crnn_gru_after_s_##S, (Py_ssize_t U, T *z, const T *inner),          \
                         (U, z, inner))                                                       \
CRNN_MULTIVERSION_OWN512(crnn_gru_finish_t_##S, (Py_ssize_t U, T *z, const T *hp, T *h, T *out), \
                         (U, z, hp, h, out))                                                  \
CRNN_MULTIVERSION_OWN512(crnn_rnn_row_t_##S, (Py_ssize_t U, T *z, const T *b, T *h, T *out),  \
                         (U, z, b, h, out))

CRNN_DISPATCH_FUSED(f32, float)
CRNN_DISPATCH_FUSED(f64, double)

#endif
