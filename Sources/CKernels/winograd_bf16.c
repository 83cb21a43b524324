// The Winograd transforms whose outputs are GEMM operands, writing bfloat16 directly (bf16-mixed):
// the input transform V[16][C][T] and the output transform's adjoint dM[16][M][T], in the layouts and
// with the arithmetic of winograd.c, each value rounded to nearest even as it is stored. They run only
// where the bf16 GEMM does (AVX512_BF16), so they are written for AVX-512 alone, 16 tiles at a time.
#pragma STDC FP_CONTRACT OFF
#include "ckernels.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "winograd_rows.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

BF16_TARGET static inline void store16(uint16_t *dst, __m512 x, __mmask16 m) {
    _mm256_mask_storeu_epi16(dst, m, (__m256i)_mm512_cvtneps_pbh(x));
}

static inline __mmask16 tail_mask(long left) { return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1); }

BF16_TARGET void swiftrain_wino_input_bf16(long channels, long batch, long h, long w, const float *const *planes,
                                           uint16_t *v, long lo, long hi) {
    long th = (h + 1) / 2, tw = (w + 1) / 2, tiles = batch * th * tw;
    // Each row of Bᵀ d: a zero on the left, the w values, zeros to the right; padded so that 16 tiles
    // read past the last one stay inside (their values are never stored).
    long stride = 2 * tw + 2 + 64;
    long freq = channels * tiles;
    float *r = aligned_alloc(64, sizeof(float) * 4 * stride);
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    for (long c = lo; c < hi; c++)
        for (long b = 0; b < batch; b++)
            for (long ty = 0; ty < th; ty++) {
                input_rows(planes[c * batch + b], h, w, ty, r, stride);
                uint16_t *out = v + c * tiles + (b * th + ty) * tw;
                for (int i = 0; i < 4; i++) {
                    const float *p = r + i * stride;  // p[2tx + j] = row i, column 2tx + j − 1
                    uint16_t *o0 = out + (4 * i) * freq, *o1 = o0 + freq, *o2 = o1 + freq, *o3 = o2 + freq;
                    for (long tx = 0; tx < tw; tx += 16) {
                        __mmask16 m = tail_mask(tw - tx);
                        __m512 l0 = _mm512_loadu_ps(p + 2 * tx), h0 = _mm512_loadu_ps(p + 2 * tx + 16);
                        __m512 l2 = _mm512_loadu_ps(p + 2 * tx + 2), h2 = _mm512_loadu_ps(p + 2 * tx + 18);
                        __m512 a = _mm512_permutex2var_ps(l0, even, h0), bb = _mm512_permutex2var_ps(l0, odd, h0);
                        __m512 c2 = _mm512_permutex2var_ps(l2, even, h2), d = _mm512_permutex2var_ps(l2, odd, h2);
                        store16(o0 + tx, _mm512_sub_ps(a, c2), m);
                        store16(o1 + tx, _mm512_add_ps(bb, c2), m);
                        store16(o2 + tx, _mm512_sub_ps(c2, bb), m);
                        store16(o3 + tx, _mm512_sub_ps(bb, d), m);
                    }
                }
            }
    free(r);
}

BF16_TARGET void swiftrain_wino_output_adjoint_bf16(long rows, long batch, long h, long w, const float *dz,
                                                    uint16_t *dm, long lo, long hi) {
    long th = (h + 1) / 2, tw = (w + 1) / 2, tiles = batch * th * tw, freq = rows * tiles, n = batch * h * w;
    long tp = (tw + 15) / 16 * 16;
    float *dy = aligned_alloc(64, sizeof(float) * 4 * tp);  // dY[e][f] per tile, zero where no output exists
    memset(dy, 0, sizeof(float) * 4 * tp);
    float *y00 = dy, *y01 = dy + tp, *y10 = dy + 2 * tp, *y11 = dy + 3 * tp;
    for (long o = lo; o < hi; o++)
        for (long b = 0; b < batch; b++)
            for (long ty = 0; ty < th; ty++) {
                output_tile_dy(dz + o * n + b * h * w, h, w, ty, tw, y00, y01, y10, y11);
                uint16_t *out = dm + o * tiles + (b * th + ty) * tw;
                // dMξ = A dY Aᵀ (winograd.c): row i of A·dY is (y0f, y0f + y1f, y0f − y1f, −y1f), then the
                // same combination along columns.
                for (long tx = 0; tx < tw; tx += 16) {
                    __mmask16 m = tail_mask(tw - tx);
                    __m512 a0 = _mm512_loadu_ps(y00 + tx), a1 = _mm512_loadu_ps(y01 + tx);
                    __m512 b0 = _mm512_loadu_ps(y10 + tx), b1 = _mm512_loadu_ps(y11 + tx);
                    const __m512 sign = _mm512_set1_ps(-0.0f);  // negation flips the sign bit, as −x does
                    __m512 r0s[4] = {a0, _mm512_add_ps(a0, b0), _mm512_sub_ps(a0, b0), _mm512_xor_ps(b0, sign)};
                    __m512 r1s[4] = {a1, _mm512_add_ps(a1, b1), _mm512_sub_ps(a1, b1), _mm512_xor_ps(b1, sign)};
                    for (int i = 0; i < 4; i++) {
                        uint16_t *q0 = out + (4 * i) * freq + tx, *q1 = q0 + freq, *q2 = q1 + freq, *q3 = q2 + freq;
                        __m512 r0 = r0s[i], r1 = r1s[i];
                        store16(q0, r0, m);
                        store16(q1, _mm512_add_ps(r0, r1), m);
                        store16(q2, _mm512_sub_ps(r0, r1), m);
                        store16(q3, _mm512_xor_ps(r1, sign), m);
                    }
                }
            }
    free(dy);
}
#else
void swiftrain_wino_input_bf16(long channels, long batch, long h, long w, const float *const *planes, uint16_t *v,
                               long lo, long hi) {
    (void)channels, (void)batch, (void)h, (void)w, (void)planes, (void)v, (void)lo, (void)hi;
}
void swiftrain_wino_output_adjoint_bf16(long rows, long batch, long h, long w, const float *dz, uint16_t *dm,
                                        long lo, long hi) {
    (void)rows, (void)batch, (void)h, (void)w, (void)dz, (void)dm, (void)lo, (void)hi;
}
#endif
