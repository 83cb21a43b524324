// The ConvLSTM gates, fused and vectorised. One body (GATE_KERNELS) is compiled three times with
// target attributes and chosen at run time, so the release build stays baseline x86-64 and still
// uses AVX-512 where the CPU has it. Contraction is off: every variant rounds the same operations in
// the same order, so all give the same bits (and the backward gives the bits of the scalar loop).
#pragma STDC FP_CONTRACT OFF
#include "ckernels.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float from_bits(int32_t i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

// e^x for x in [−103.97, 88.72] (Cephes's reduction and polynomial: x = n·ln2 + r, |r| ≤ ln2/2).
// 2^n is applied as two factors so that n = 128 and the subnormal range stay exact.
static inline float exp_core(float x) {
    float nf = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest
    float r = x - nf * 0.693359375f;
    r = r + nf * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    int32_t n = (int32_t)nf, n1 = n >> 1, n2 = n - n1;
    return p * from_bits((n1 + 127) << 23) * from_bits((n2 + 127) << 23);
}

static inline float exp_(float x) {
    const float lo = -103.972084f, hi = 88.7228394f;
    float xc = x > lo ? x : lo;  // a NaN becomes lo here (no undefined conversion) and is put back below
    xc = xc < hi ? xc : hi;
    float y = exp_core(xc);
    y = x > hi ? INFINITY : y;
    y = x < lo ? 0.0f : y;
    return x != x ? x : y;
}

static inline float sigmoid_(float x) { return 1.0f / (1.0f + exp_(-x)); }

// tanh: an odd polynomial below 0.625 (Cephes's), 1 − 2/(e^2|x| + 1) above, where it cannot cancel;
// computed for |x| and given x's sign, so it is odd exactly (tanh(−0) = −0).
static inline float tanh_(float x) {
    float s = fabsf(x), z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    float small = p * z * s + s;
    float big = 1.0f - 2.0f / (exp_(s + s) + 1.0f);
    return copysignf(s < 0.625f ? small : big, x);
}

#define GATE_KERNELS(SUFFIX)                                                                               \
    static void sigmoid_##SUFFIX(long n, const float *x, float *y) {                                       \
        for (long j = 0; j < n; j++) y[j] = sigmoid_(x[j]);                                                \
    }                                                                                                      \
    static void tanh_##SUFFIX(long n, const float *x, float *y) {                                          \
        for (long j = 0; j < n; j++) y[j] = tanh_(x[j]);                                                   \
    }                                                                                                      \
    static void forward_##SUFFIX(                                                                          \
        long n, const float *restrict zi, const float *restrict zf, const float *restrict zg,              \
        const float *restrict zo, const float *restrict c0, const float *restrict wci,                     \
        const float *restrict wcf, const float *restrict wco, float *restrict i, float *restrict f,        \
        float *restrict g, float *restrict o, float *restrict c, float *restrict tc, float *restrict h) {  \
        for (long j = 0; j < n; j++) {                                                                     \
            float cp = c0[j];                                                                              \
            float iv = sigmoid_(zi[j] + wci[j] * cp), fv = sigmoid_(zf[j] + wcf[j] * cp);                  \
            float gv = tanh_(zg[j]);                                                                       \
            float cv = fv * cp + iv * gv;                                                                  \
            float ov = sigmoid_(zo[j] + wco[j] * cv), tv = tanh_(cv);                                      \
            i[j] = iv, f[j] = fv, g[j] = gv, o[j] = ov, c[j] = cv, tc[j] = tv, h[j] = ov * tv;             \
        }                                                                                                  \
    }                                                                                                      \
    static void backward_##SUFFIX(                                                                         \
        long n, const float *restrict i, const float *restrict f, const float *restrict g,                 \
        const float *restrict o, const float *restrict c, const float *restrict tc,                        \
        const float *restrict c0, const float *restrict wci, const float *restrict wcf,                    \
        const float *restrict wco, const float *restrict dh, float *restrict dc, float *restrict dzi,      \
        float *restrict dzf, float *restrict dzg, float *restrict dzo, float *restrict gci,                \
        float *restrict gcf, float *restrict gco) {                                                        \
        for (long j = 0; j < n; j++) {                                                                     \
            float iv = i[j], fv = f[j], gv = g[j], ov = o[j], tv = tc[j], cp = c0[j], dhv = dh[j];         \
            float dcv = dc[j] + dhv * ov * (1 - tv * tv);                                                  \
            float dzov = dhv * tv * ov * (1 - ov);                                                         \
            dcv += dzov * wco[j];                                                                          \
            gco[j] += dzov * c[j];                                                                         \
            float dziv = dcv * gv * iv * (1 - iv), dzfv = dcv * cp * fv * (1 - fv);                        \
            float dzgv = dcv * iv * (1 - gv * gv);                                                         \
            gci[j] += dziv * cp;                                                                           \
            gcf[j] += dzfv * cp;                                                                           \
            dc[j] = dcv * fv + dziv * wci[j] + dzfv * wcf[j];                                              \
            dzi[j] = dziv, dzf[j] = dzfv, dzg[j] = dzgv, dzo[j] = dzov;                                    \
        }                                                                                                  \
    }

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512vl"), min_vector_width(512))), \
                             apply_to = function)
GATE_KERNELS(avx512)
#pragma clang attribute pop
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
GATE_KERNELS(avx2)
#pragma clang attribute pop
#endif
GATE_KERNELS(base)

typedef void (*unary_fn)(long, const float *, float *);
typedef void (*forward_fn)(long, const float *, const float *, const float *, const float *, const float *,
                           const float *, const float *, const float *, float *, float *, float *, float *,
                           float *, float *, float *);
typedef void (*backward_fn)(long, const float *, const float *, const float *, const float *, const float *,
                            const float *, const float *, const float *, const float *, const float *,
                            const float *, float *, float *, float *, float *, float *, float *, float *, float *);

static struct {
    int isa;
    unary_fn sigmoid, tanh;
    forward_fn forward;
    backward_fn backward;
} table = {-1, 0, 0, 0, 0};

static int best_isa(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
        return 3;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 2;
#endif
    return 0;
}

int swiftrain_gates_force_isa(int isa) {
    int best = best_isa();
    if (isa < 0 || isa > best) isa = best;
    if (isa == 1) isa = 0;
#if defined(__x86_64__)
    if (isa == 3) {
        table.sigmoid = sigmoid_avx512, table.tanh = tanh_avx512;
        table.forward = forward_avx512, table.backward = backward_avx512;
    } else if (isa == 2) {
        table.sigmoid = sigmoid_avx2, table.tanh = tanh_avx2;
        table.forward = forward_avx2, table.backward = backward_avx2;
    } else
#endif
    {
        table.sigmoid = sigmoid_base, table.tanh = tanh_base;
        table.forward = forward_base, table.backward = backward_base;
    }
    table.isa = isa;
    return isa;
}

static inline void ready(void) {
    if (table.isa < 0) swiftrain_gates_force_isa(-1);
}

int swiftrain_gates_isa(void) {
    ready();
    return table.isa;
}

void swiftrain_sigmoid(long n, const float *x, float *y) {
    ready();
    table.sigmoid(n, x, y);
}

void swiftrain_tanh(long n, const float *x, float *y) {
    ready();
    table.tanh(n, x, y);
}

void swiftrain_gates_forward(long n, const float *zi, const float *zf, const float *zg, const float *zo,
                             const float *c0, const float *wci, const float *wcf, const float *wco, float *i,
                             float *f, float *g, float *o, float *c, float *tc, float *h) {
    ready();
    table.forward(n, zi, zf, zg, zo, c0, wci, wcf, wco, i, f, g, o, c, tc, h);
}

void swiftrain_gates_backward(long n, const float *i, const float *f, const float *g, const float *o,
                              const float *c, const float *tc, const float *c0, const float *wci,
                              const float *wcf, const float *wco, const float *dh, float *dc, float *dzi,
                              float *dzf, float *dzg, float *dzo, float *gci, float *gcf, float *gco) {
    ready();
    table.backward(n, i, f, g, o, c, tc, c0, wci, wcf, wco, dh, dc, dzi, dzf, dzg, dzo, gci, gcf, gco);
}
