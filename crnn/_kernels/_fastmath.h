/* Vectorizable float32 and float64 sigmoid and tanh over contiguous spans.
 *
 * libm's expf/tanhf are scalar calls, and at the sizes crnn runs they cost more than the
 * GEMMs. These loops use only arithmetic, selects and integer bit operations, so GCC
 * vectorizes them (given -fno-trapping-math, see setup.py); CRNN_MULTIVERSION builds
 * AVX-512, AVX2 and baseline versions and picks one at run time, so the same binary runs
 * on any x86-64 CPU.
 *
 * Accuracy (tested in tests/test_fastmath.py against NumPy over [-30, 30]): a few ulps
 * of the type, i.e. relative error below 3e-7 (float32) and 1e-15 (float64).
 *
 * exp: x = n ln2 + r with |r| <= ln2/2, ln2 split in two parts so r is exact; e^r by a
 * degree-6 polynomial (Cephes expf coefficients), 2^n by building the float's exponent.
 * tanh: odd polynomial below |x| = 0.625 (Cephes tanhf coefficients), else
 * 1 - 2 / (e^{2|x|} + 1) with the sign restored.
 * float64: the same reduction with |r| <= ln2/2 and e^r by its Taylor polynomial of degree
 * 13 (truncation error below 1e-17); 2^n built by adding 1.5 * 2^52 (no double-to-int64
 * conversion, which AVX2 lacks); tanh below |x| = 0.625 by Cephes' rational
 * x + x^3 P(x^2) / Q(x^2).
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
#define CRNN_MULTIVERSION(NAME, PARAMS, ARGS) static void NAME PARAMS { NAME##_body ARGS; }
#endif

#define CRNN_INLINE static inline __attribute__((always_inline))

CRNN_INLINE float crnn_expf(float x) {
    /* clamp so that 2^n stays a normal float; exp(-87.3) is about the smallest normal */
    x = x > 88.0f ? 88.0f : x;
    x = x < -87.0f ? -87.0f : x;
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
    p = p * r2 + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

CRNN_INLINE float crnn_tanhf(float x) {
    float a = x < 0.0f ? -x : x;
    /* small |x|: tanh(x) = x + x^3 P(x^2) */
    float z = x * x;
    float small = (((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z
                   + 1.33314422036e-1f) * z - 3.33332819422e-1f;
    small = small * z * x + x;
    /* large |x|: 1 - 2 / (e^{2|x|} + 1), saturating to 1 as e^{2|x|} grows */
    float large = 1.0f - 2.0f / (crnn_expf(2.0f * a) + 1.0f);
    large = x < 0.0f ? -large : large;
    return a < 0.625f ? small : large;
}

CRNN_INLINE void crnn_sigmoid_span_f32_body(float *x, Py_ssize_t n) {
    for (Py_ssize_t j = 0; j < n; j++) {
        x[j] = 1.0f / (1.0f + crnn_expf(-x[j]));
    }
}
CRNN_MULTIVERSION(crnn_sigmoid_span_f32, (float *x, Py_ssize_t n), (x, n))

CRNN_INLINE void crnn_tanh_span_f32_body(float *x, Py_ssize_t n) {
    for (Py_ssize_t j = 0; j < n; j++) {
        x[j] = crnn_tanhf(x[j]);
    }
}
CRNN_MULTIVERSION(crnn_tanh_span_f32, (float *x, Py_ssize_t n), (x, n))

CRNN_INLINE double crnn_exp(double x) {
    /* e^x stays a normal double for x in [-708, 709] */
    x = x > 709.0 ? 709.0 : x;
    x = x < -708.0 ? -708.0 : x;
    double n = (x * 1.4426950408889634074 + 6755399441055744.0) - 6755399441055744.0;
    double r = x - n * 6.93145751953125e-1;
    r = r - n * 1.42860682030941723212e-6;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    /* 2^n: n + 1023 lands in the low mantissa bits of k; shifting them into the exponent */
    double k = n + (1023.0 + 6755399441055744.0);
    int64_t bits;
    memcpy(&bits, &k, sizeof bits);
    bits <<= 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

CRNN_INLINE double crnn_tanh(double x) {
    double a = x < 0.0 ? -x : x;
    double z = x * x;
    double num = (-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z
                 - 1.61468768441708447952e3;
    double den = ((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z
                 + 4.84406305325125486048e3;
    double small = x + x * z * (num / den);
    double large = 1.0 - 2.0 / (crnn_exp(2.0 * a) + 1.0);
    large = x < 0.0 ? -large : large;
    return a < 0.625 ? small : large;
}

CRNN_INLINE void crnn_sigmoid_span_f64_body(double *x, Py_ssize_t n) {
    for (Py_ssize_t j = 0; j < n; j++) {
        x[j] = 1.0 / (1.0 + crnn_exp(-x[j]));
    }
}
CRNN_MULTIVERSION(crnn_sigmoid_span_f64, (double *x, Py_ssize_t n), (x, n))

CRNN_INLINE void crnn_tanh_span_f64_body(double *x, Py_ssize_t n) {
    for (Py_ssize_t j = 0; j < n; j++) {
        x[j] = crnn_tanh(x[j]);
    }
}
CRNN_MULTIVERSION(crnn_tanh_span_f64, (double *x, Py_ssize_t n), (x, n))

#endif
