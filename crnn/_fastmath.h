/* Vectorizable float32 sigmoid and tanh over contiguous spans.
 *
 * libm's expf/tanhf are scalar calls, and at the sizes crnn runs they cost more than the
 * GEMMs. These loops use only arithmetic, selects and integer bit operations, so GCC
 * vectorizes them; target_clones builds AVX-512, AVX2 and baseline (SSE2) versions and picks
 * one at load time, so the same binary runs on any x86-64 CPU.
 *
 * Accuracy (tested in tests/test_fastmath.py against float64 NumPy over [-30, 30]):
 * a few float32 ulps, i.e. relative error below 1e-6.
 *
 * exp: x = n ln2 + r with |r| <= ln2/2, ln2 split in two parts so r is exact; e^r by a
 * degree-6 polynomial (Cephes expf coefficients), 2^n by building the float's exponent.
 * tanh: odd polynomial below |x| = 0.625 (Cephes tanhf coefficients), else
 * 1 - 2 / (e^{2|x|} + 1) with the sign restored.
 */
#ifndef CRNN_FASTMATH_H
#define CRNN_FASTMATH_H

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CRNN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CRNN_CLONES
#endif

static inline float crnn_expf(float x) {
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

static inline float crnn_tanhf(float x) {
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

CRNN_CLONES static void crnn_sigmoid_span_f32(float *x, Py_ssize_t n) {
    for (Py_ssize_t j = 0; j < n; j++) {
        x[j] = 1.0f / (1.0f + crnn_expf(-x[j]));
    }
}

CRNN_CLONES static void crnn_tanh_span_f32(float *x, Py_ssize_t n) {
    for (Py_ssize_t j = 0; j < n; j++) {
        x[j] = crnn_tanhf(x[j]);
    }
}

#endif
