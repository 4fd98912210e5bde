/* Vectorizable float32 and float64 sigmoid and tanh over contiguous spans.
 *
 * libm's expf/tanhf are scalar calls, and at the sizes crnn runs they cost more than the
 * GEMMs. These loops use only arithmetic, selects and integer bit operations, so GCC
 * vectorizes them (given -fno-trapping-math, see setup.py); CRNN_MULTIVERSION builds
 * AVX-512, AVX2 and baseline versions and picks one at run time, so the same binary runs
 * on any x86-64 CPU.
 *
 * Accuracy (tested in tests/test_fastmath.py against NumPy over [-30, 30] and small |x|):
 * about 2 ulps of the type, i.e. relative error below 3e-7 (float32) and 5e-16 (float64).
 *
 * exp: x = n ln2 + r with |r| <= ln2/2, ln2 split in two parts so r is exact; e^r by a
 * degree-6 polynomial (Cephes expf coefficients), 2^n by building the float's exponent.
 * tanh (float32): e^{2|x|} - 1 from the same reduction without cancellation (the
 * polynomial's r + r^2 P(r), scaled by 2^n, plus 2^n - 1, exact), then tanh|x| =
 * (e^{2|x|} - 1) / (e^{2|x|} + 1), the sign restored: one exp and one division, no
 * second polynomial for small |x| nor a select between the two (a third fewer
 * operations than that form, which it replaced).
 * float64: the same reduction with |r| <= ln2/2 and e^r by a polynomial of degree 11 fitted
 * on Chebyshev nodes (relative error below 2e-17; Taylor would need degree 13); 2^n built
 * by adding 1.5 * 2^52 (no double-to-int64 conversion, which AVX2 lacks); tanh as float32's,
 * from e^{2|x|} - 1 without cancellation (it replaced Cephes' rational
 * x + x^3 P(x^2) / Q(x^2) below |x| = 0.625 and a select, a third of the operations).
 */
#ifndef CRNN_FASTMATH_H
#define CRNN_FASTMATH_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Runtime dispatch: a function's body is written once, as an always_inline function,
 * and compiled three times into wrappers built for AVX-512+FMA, AVX2+FMA and the x86-64
 * baseline (SSE2); the first call picks the best one the CPU supports. (GCC's
 * target_clones cannot express "AVX2 and FMA" as one clone.) */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
static int crnn_isa_level = -1;

/* CRNN_ISA=avx2 or CRNN_ISA=baseline in the environment caps the choice (read at the first
 * call): for testing the other builds on an AVX-512 machine. */
static inline int crnn_isa(void) {
    if (crnn_isa_level < 0) {
        int level;
        const char *cap = getenv("CRNN_ISA");
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) {
            level = 2;
        } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
            level = 1;
        } else {
            level = 0;
        }
        if (cap != NULL && strcmp(cap, "avx2") == 0 && level > 1) level = 1;
        if (cap != NULL && strcmp(cap, "baseline") == 0) level = 0;
        crnn_isa_level = level;
    }
    return crnn_isa_level;
}

/* 1 on an AVX-512 CPU whose 512-bit instructions run on 256-bit units: AMD's Zen 4
 * (family 19h; its Zen 3 models have no AVX-512). There crnn's own whole-sequence GEMM
 * runs on par with or faster than OpenBLAS's SkylakeX kernel, which is tuned for
 * full-width units (crnn.threads.use_own_gemm). 0 elsewhere, and under CRNN_ISA=avx2 or
 * baseline. */
#include <cpuid.h>
static inline int crnn_avx512_half_width(void) {
    unsigned int a, b, c, d, family;
    if (crnn_isa() < 2 || !__get_cpuid(0, &a, &b, &c, &d))
        return 0;
    if (b != 0x68747541u || d != 0x69746e65u || c != 0x444d4163u)    /* "AuthenticAMD" */
        return 0;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    family = (a >> 8) & 0xfu;
    if (family == 0xfu)
        family += (a >> 20) & 0xffu;
    return family == 0x19u;
}

#define CRNN_MULTIVERSION(NAME, PARAMS, ARGS)                                                \
    __attribute__((target("avx512f,fma"))) static void NAME##_avx512 PARAMS { NAME##_body ARGS; } \
    __attribute__((target("avx2,fma"))) static void NAME##_avx2 PARAMS { NAME##_body ARGS; }     \
    static void NAME##_base PARAMS { NAME##_body ARGS; }                                     \
    static void NAME PARAMS {                                                                \
        switch (crnn_isa()) {                                                                \
            case 2: NAME##_avx512 ARGS; return;                                              \
            case 1: NAME##_avx2 ARGS; return;                                                \
            default: NAME##_base ARGS; return;                                               \
        }                                                                                    \
    }
#else
static inline int crnn_isa(void) { return 0; }
static inline int crnn_avx512_half_width(void) { return 0; }
#define CRNN_MULTIVERSION(NAME, PARAMS, ARGS) static void NAME PARAMS { NAME##_body ARGS; }
#endif

#define CRNN_INLINE static inline __attribute__((always_inline))

/* e^x = 2^n (1 + q) for x in [-87, 88]: returns q = e^r - 1 = r + r^2 P(r) (r = x - n ln2,
 * no cancellation for small x) and sets *scale = 2^n; crnn_expf and crnn_tanhf share it */
CRNN_INLINE float crnn_expf_parts(float x, float *scale) {
    /* n = round(x / ln2) via the 1.5 * 2^23 trick (round to nearest, no libm call) */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float r2 = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    int32_t bits = ((int32_t)n + 127) << 23;
    memcpy(scale, &bits, sizeof *scale);
    return p * r2 + r;
}

CRNN_INLINE float crnn_expf(float x) {
    /* clamp so that 2^n stays a normal float; exp(-87.3) is about the smallest normal */
    x = x > 88.0f ? 88.0f : x;
    x = x < -87.0f ? -87.0f : x;
    float scale;
    float q = crnn_expf_parts(x, &scale);
    return (q + 1.0f) * scale;
}

CRNN_INLINE float crnn_tanhf(float x) {
    float a = x < 0.0f ? -x : x;
    float y = 2.0f * a;
    y = y > 88.0f ? 88.0f : y;        /* e^88 + 1 is still a finite float */
    /* e^y - 1 = 2^n (e^r - 1) + (2^n - 1), exactly where 2^n - 1 is */
    float scale;
    float q = crnn_expf_parts(y, &scale);
    float em1 = scale * q + (scale - 1.0f);
    float t = em1 / (em1 + 2.0f);
    return x < 0.0f ? -t : t;
}

CRNN_INLINE float crnn_sigmoidf(float x) { return 1.0f / (1.0f + crnn_expf(-x)); }

/* e^x = 2^n (1 + r q) with r = x - n ln2, |r| <= ln2/2, for x in [-708, 709]: returns
 * q = (e^r - 1) / r (the polynomial below but its last step) and sets *r_out = r,
 * *scale = 2^n; crnn_exp and crnn_tanh share it */
CRNN_INLINE double crnn_exp_poly(double x, double *r_out, double *scale) {
    double n = (x * 1.4426950408889634074 + 6755399441055744.0) - 6755399441055744.0;
    double r = x - n * 6.93145751953125e-1;
    r = r - n * 1.42860682030941723212e-6;
    /* e^r = 1 + r + r^2 P(r), P of degree 9 fitted on Chebyshev nodes (relative error
     * below 2e-17 on |r| <= ln2/2) */
    double p = 2.5100375832561234e-08;
    p = p * r + 2.7620075879983367e-07;
    p = p * r + 2.7557268480310024e-06;
    p = p * r + 2.4801521322368692e-05;
    p = p * r + 1.9841269863040545e-04;
    p = p * r + 1.3888888917196719e-03;
    p = p * r + 8.3333333333300650e-03;
    p = p * r + 4.1666666666624164e-02;
    p = p * r + 1.6666666666666669e-01;
    p = p * r + 5.0000000000000011e-01;
    p = p * r + 1.0;
    /* 2^n: n + 1023 lands in the low mantissa bits of k; shifting them into the exponent */
    double k = n + (1023.0 + 6755399441055744.0);
    int64_t bits;
    memcpy(&bits, &k, sizeof bits);
    bits <<= 52;
    memcpy(scale, &bits, sizeof *scale);
    *r_out = r;
    return p;
}

CRNN_INLINE double crnn_exp(double x) {
    /* e^x stays a normal double for x in [-708, 709] */
    x = x > 709.0 ? 709.0 : x;
    x = x < -708.0 ? -708.0 : x;
    double r, scale;
    double p = crnn_exp_poly(x, &r, &scale);
    return (p * r + 1.0) * scale;
}

/* as crnn_tanhf: (e^{2|x|} - 1) / (e^{2|x|} + 1) with e^{2|x|} - 1 = 2^n r q + (2^n - 1)
 * (no cancellation for small |x|) */
CRNN_INLINE double crnn_tanh(double x) {
    double a = x < 0.0 ? -x : x;
    double y = 2.0 * a;
    y = y > 709.0 ? 709.0 : y;        /* e^709 + 1 is still a finite double */
    double r, scale;
    double p = crnn_exp_poly(y, &r, &scale);
    double em1 = scale * (p * r) + (scale - 1.0);
    double t = em1 / (em1 + 2.0);
    return x < 0.0 ? -t : t;
}

CRNN_INLINE double crnn_sigmoid(double x) { return 1.0 / (1.0 + crnn_exp(-x)); }

/* AVX-512: the same maths as whole-vector functions (16 floats, 8 doubles) written with
 * intrinsics (their clamps take the constant as the first operand of min and max, which
 * return the second when either is NaN: NaN in, NaN out, as in the scalar forms), used by
 * the spans below and the fused GRU rows (_cellmath.h). Against GCC's vectorization of the
 * scalar code: mask blends and no int conversions (2^n comes from the rounding constant's
 * low bits). (A reciprocal
 * estimate, vrcp14, with Newton steps instead of the divisions, and vscalef for 2^n,
 * measured slower on AMD Zen 5, whose divider is about as fast as an FMA.) */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CRNN_HAVE_AVX512 1
#include <immintrin.h>
#define CRNN_AVX512 static inline __attribute__((always_inline, target("avx512f,fma")))

/* bit operations on floats (the float forms are AVX512DQ; these are AVX512F) */
#define CRNN_PS_BITS(OP, A, B) _mm512_castsi512_ps(OP(_mm512_castps_si512(A),              \
                                                      _mm512_castps_si512(B)))
#define CRNN_PD_BITS(OP, A, B) _mm512_castsi512_pd(OP(_mm512_castpd_si512(A),              \
                                                      _mm512_castpd_si512(B)))

/* crnn_expf_parts on 16 floats: q = e^r - 1, *scale = 2^n (n + 127 from t's low bits
 * shifted into the exponent) */
CRNN_AVX512 __m512 crnn_v16_exp_parts(__m512 x, __m512 *scale) {
    /* t = n + 1.5 * 2^23 with n = round(x / ln2) in its low bits */
    __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f),
                               _mm512_set1_ps(12582912.0f));
    __m512 n = _mm512_sub_ps(t, _mm512_set1_ps(12582912.0f));
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 r2 = _mm512_mul_ps(r, r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    *scale = _mm512_castsi512_ps(_mm512_slli_epi32(
        _mm512_add_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(127)), 23));
    return _mm512_fmadd_ps(p, r2, r);
}

/* e^x for x <= 88 (clamped below at -87, as crnn_expf) */
CRNN_AVX512 __m512 crnn_v16_exp(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(-87.0f), x);      /* (x when x is NaN) */
    __m512 scale;
    __m512 q = crnn_v16_exp_parts(x, &scale);
    return _mm512_mul_ps(_mm512_add_ps(q, _mm512_set1_ps(1.0f)), scale);
}

CRNN_AVX512 __m512 crnn_v16_sigmoid(__m512 x) {
    __m512 e = crnn_v16_exp(_mm512_min_ps(_mm512_set1_ps(88.0f),
                                          _mm512_sub_ps(_mm512_setzero_ps(), x)));
    return _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f)));
}

CRNN_AVX512 __m512 crnn_v16_tanh(__m512 x) {
    const __m512 sign = _mm512_castsi512_ps(_mm512_set1_epi32((int)0x80000000u));
    __m512 a = CRNN_PS_BITS(_mm512_andnot_si512, sign, x);
    /* min(88, y): y when y is NaN (the second operand), so NaN propagates */
    __m512 y = _mm512_min_ps(_mm512_set1_ps(88.0f), _mm512_add_ps(a, a));
    __m512 scale;
    __m512 q = crnn_v16_exp_parts(y, &scale);
    __m512 em1 = _mm512_fmadd_ps(scale, q, _mm512_sub_ps(scale, _mm512_set1_ps(1.0f)));
    __m512 th = _mm512_div_ps(em1, _mm512_add_ps(em1, _mm512_set1_ps(2.0f)));
    return CRNN_PS_BITS(_mm512_or_si512, th, CRNN_PS_BITS(_mm512_and_si512, sign, x));
}

/* crnn_exp_poly on 8 doubles: returns (e^r - 1) / r, sets *r_out = r and *scale = 2^n */
CRNN_AVX512 __m512d crnn_v8_exp_poly(__m512d x, __m512d *r_out, __m512d *scale) {
    __m512d t = _mm512_fmadd_pd(x, _mm512_set1_pd(1.4426950408889634074),
                                _mm512_set1_pd(6755399441055744.0));
    __m512d n = _mm512_sub_pd(t, _mm512_set1_pd(6755399441055744.0));
    __m512d r = _mm512_fnmadd_pd(n, _mm512_set1_pd(6.93145751953125e-1), x);
    r = _mm512_fnmadd_pd(n, _mm512_set1_pd(1.42860682030941723212e-6), r);
    __m512d p = _mm512_set1_pd(2.5100375832561234e-08);
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(2.7620075879983367e-07));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(2.7557268480310024e-06));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(2.4801521322368692e-05));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.9841269863040545e-04));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.3888888917196719e-03));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(8.3333333333300650e-03));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(4.1666666666624164e-02));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.6666666666666669e-01));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(5.0000000000000011e-01));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
    *scale = _mm512_castsi512_pd(_mm512_slli_epi64(
        _mm512_add_epi64(_mm512_castpd_si512(t), _mm512_set1_epi64(1023)), 52));
    *r_out = r;
    return p;
}

/* e^x for x <= 709 */
CRNN_AVX512 __m512d crnn_v8_exp(__m512d x) {
    x = _mm512_max_pd(_mm512_set1_pd(-708.0), x);      /* (x when x is NaN) */
    __m512d r, scale;
    __m512d p = crnn_v8_exp_poly(x, &r, &scale);
    return _mm512_mul_pd(_mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0)), scale);
}

CRNN_AVX512 __m512d crnn_v8_sigmoid(__m512d x) {
    __m512d e = crnn_v8_exp(_mm512_min_pd(_mm512_set1_pd(709.0),
                                          _mm512_sub_pd(_mm512_setzero_pd(), x)));
    return _mm512_div_pd(_mm512_set1_pd(1.0), _mm512_add_pd(e, _mm512_set1_pd(1.0)));
}

CRNN_AVX512 __m512d crnn_v8_tanh(__m512d x) {
    const __m512d sign = _mm512_castsi512_pd(_mm512_set1_epi64((long long)0x8000000000000000ull));
    __m512d a = CRNN_PD_BITS(_mm512_andnot_si512, sign, x);
    /* min(709, y): y when y is NaN (the second operand), so NaN propagates */
    __m512d y = _mm512_min_pd(_mm512_set1_pd(709.0), _mm512_add_pd(a, a));
    __m512d r, scale;
    __m512d p = crnn_v8_exp_poly(y, &r, &scale);
    __m512d em1 = _mm512_fmadd_pd(scale, _mm512_mul_pd(p, r),
                                  _mm512_sub_pd(scale, _mm512_set1_pd(1.0)));
    __m512d th = _mm512_div_pd(em1, _mm512_add_pd(em1, _mm512_set1_pd(2.0)));
    return CRNN_PD_BITS(_mm512_or_si512, th, CRNN_PD_BITS(_mm512_and_si512, sign, x));
}

/* AVX-512 span loops: whole vectors, then the tail under a mask */
#define CRNN_DEFINE_SPAN512(NAME, T, V, W, F)                                                \
__attribute__((target("avx512f,fma"))) static void NAME##_avx512(T *x, Py_ssize_t n) {      \
    Py_ssize_t j = 0;                                                                        \
    for (; j + W <= n; j += W) _mm512_storeu_##V(x + j, F(_mm512_loadu_##V(x + j)));       \
    if (j < n) {                                                                             \
        unsigned m = (1u << (n - j)) - 1u;                                                   \
        _mm512_mask_storeu_##V(x + j, m, F(_mm512_maskz_loadu_##V(m, x + j)));              \
    }                                                                                        \
}

#define CRNN_MULTIVERSION_OWN512(NAME, PARAMS, ARGS)                                         \
    __attribute__((target("avx2,fma"))) static void NAME##_avx2 PARAMS { NAME##_body ARGS; }     \
    static void NAME##_base PARAMS { NAME##_body ARGS; }                                     \
    static void NAME PARAMS {                                                                \
        switch (crnn_isa()) {                                                                \
            case 2: NAME##_avx512 ARGS; return;                                              \
            case 1: NAME##_avx2 ARGS; return;                                                \
            default: NAME##_base ARGS; return;                                               \
        }                                                                                    \
    }
#else
#define CRNN_MULTIVERSION_OWN512 CRNN_MULTIVERSION
#endif

#ifdef CRNN_HAVE_AVX512
CRNN_DEFINE_SPAN512(crnn_sigmoid_span_f32, float, ps, 16, crnn_v16_sigmoid)
CRNN_DEFINE_SPAN512(crnn_tanh_span_f32, float, ps, 16, crnn_v16_tanh)
CRNN_DEFINE_SPAN512(crnn_sigmoid_span_f64, double, pd, 8, crnn_v8_sigmoid)
CRNN_DEFINE_SPAN512(crnn_tanh_span_f64, double, pd, 8, crnn_v8_tanh)
#endif

CRNN_INLINE void crnn_sigmoid_span_f32_body(float *x, Py_ssize_t n) {
    for (Py_ssize_t j = 0; j < n; j++) {
        x[j] = crnn_sigmoidf(x[j]);
    }
}
CRNN_MULTIVERSION_OWN512(crnn_sigmoid_span_f32, (float *x, Py_ssize_t n), (x, n))

CRNN_INLINE void crnn_tanh_span_f32_body(float *x, Py_ssize_t n) {
    for (Py_ssize_t j = 0; j < n; j++) {
        x[j] = crnn_tanhf(x[j]);
    }
}
CRNN_MULTIVERSION_OWN512(crnn_tanh_span_f32, (float *x, Py_ssize_t n), (x, n))

CRNN_INLINE void crnn_sigmoid_span_f64_body(double *x, Py_ssize_t n) {
    for (Py_ssize_t j = 0; j < n; j++) {
        x[j] = crnn_sigmoid(x[j]);
    }
}
CRNN_MULTIVERSION_OWN512(crnn_sigmoid_span_f64, (double *x, Py_ssize_t n), (x, n))

CRNN_INLINE void crnn_tanh_span_f64_body(double *x, Py_ssize_t n) {
    for (Py_ssize_t j = 0; j < n; j++) {
        x[j] = crnn_tanh(x[j]);
    }
}
CRNN_MULTIVERSION_OWN512(crnn_tanh_span_f64, (double *x, Py_ssize_t n), (x, n))

#endif
