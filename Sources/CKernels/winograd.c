// Winograd F(2×2, 3×3) transforms for the 3×3 convolution (padding 1, stride 1), forward and adjoint.
//
//   tiles     T = B · ⌈H/2⌉ · ⌈W/2⌉, tile t = (b·TH + ty)·TW + tx covers outputs (2ty.., 2tx..)
//   input     d = in[2ty−1 .. 2ty+2][2tx−1 .. 2tx+2] (zeros outside), V = Bᵀ d B    V[16][C][T]
//   weights   U = G g Gᵀ                                                           U[16][M][C]
//   output    Y = Aᵀ (U ⊙ V summed over c) A, i.e. Y = Aᵀ Mξ A with Mξ = Uξ · Vξ     M[16][M][T]
//   ξ = 4·i + j for row i and column j of the 4×4 transform.
//
// Each adjoint is the transpose of its linear map, so the backward pass is exact for the forward's
// arithmetic. Work is split by the caller over channel ranges [lo, hi).
#pragma STDC FP_CONTRACT OFF
#include "ckernels.h"

#include <stdlib.h>
#include <string.h>

// Each transform is compiled for AVX-512, AVX2 and baseline x86-64 and the loader picks the widest the CPU
// has (target_clones): with contraction off every clone rounds the same operations in the same order, so
// all give the same bits, and the release build stays baseline.
#if defined(__x86_64__) && defined(__clang__)
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

#include "winograd_rows.h"

CLONES void swiftrain_wino_input(long channels, long batch, long h, long w, const float *const *planes, float *v,
                          long lo, long hi) {
    long th = (h + 1) / 2, tw = (w + 1) / 2, tiles = batch * th * tw, stride = 2 * tw + 2;
    long freq = channels * tiles;
    float *r = malloc(sizeof(float) * 4 * stride);
    for (long c = lo; c < hi; c++)
        for (long b = 0; b < batch; b++)
            for (long ty = 0; ty < th; ty++) {
                input_rows(planes[c * batch + b], h, w, ty, r, stride);
                float *out = v + c * tiles + (b * th + ty) * tw;
                for (int i = 0; i < 4; i++) {
                    const float *p = r + i * stride;  // p[2tx + j] = row i, column 2tx + j − 1
                    float *o0 = out + (4 * i) * freq, *o1 = o0 + freq, *o2 = o1 + freq, *o3 = o2 + freq;
                    for (long tx = 0; tx < tw; tx++) {
                        float a = p[2 * tx], bb = p[2 * tx + 1], c2 = p[2 * tx + 2], d = p[2 * tx + 3];
                        o0[tx] = a - c2, o1[tx] = bb + c2, o2[tx] = c2 - bb, o3[tx] = bb - d;
                    }
                }
            }
    free(r);
}

CLONES void swiftrain_wino_input_adjoint(long channels, long batch, long h, long w, const float *dv,
                                  float *const *grads, long lo, long hi) {
    long th = (h + 1) / 2, tw = (w + 1) / 2, tiles = batch * th * tw, stride = 2 * tw + 2;
    long freq = channels * tiles;
    float *r = malloc(sizeof(float) * 4 * stride);
    for (long c = lo; c < hi; c++)
        for (long b = 0; b < batch; b++) {
            float *g = grads[c * batch + b];
            for (long ty = 0; ty < th; ty++) {
                const float *in = dv + c * tiles + (b * th + ty) * tw;
                // Columns: B applied along j gives, per tile, padded columns 2tx + l (l = 0..3):
                //   e0, e1 − e2 + e3, −e0 + e1 + e2, −e3; tiles overlap by two columns, so column 2tx
                //   sums tile tx's l = 0 and tile tx−1's l = 2 (and 2tx + 1: l = 1 and l = 3).
                for (int i = 0; i < 4; i++) {
                    float *p = r + i * stride;
                    const float *q0 = in + (4 * i) * freq, *q1 = q0 + freq, *q2 = q1 + freq, *q3 = q2 + freq;
                    float carry2 = 0, carry3 = 0;
                    for (long tx = 0; tx < tw; tx++) {
                        float e0 = q0[tx], e1 = q1[tx], e2 = q2[tx], e3 = q3[tx];
                        p[2 * tx] = e0 + carry2;
                        p[2 * tx + 1] = (e1 - e2 + e3) + carry3;
                        carry2 = -e0 + e1 + e2;
                        carry3 = -e3;
                    }
                    p[2 * tw] = carry2;
                    p[2 * tw + 1] = carry3;
                }
                // Rows: input row 2ty + k − 1 gets (B applied along i)[k]: P0, P1 − P2 + P3, −P0 + P1 + P2, −P3.
                const float *p0 = r + 1, *p1 = r + stride + 1, *p2 = r + 2 * stride + 1, *p3 = r + 3 * stride + 1;
                long y = 2 * ty - 1;
                if (y >= 0) {
                    float *gy = g + y * w;
                    for (long x = 0; x < w; x++) gy[x] += p0[x];
                }
                if (y + 1 < h) {
                    float *gy = g + (y + 1) * w;
                    for (long x = 0; x < w; x++) gy[x] += p1[x] - p2[x] + p3[x];
                }
                if (y + 2 < h) {
                    float *gy = g + (y + 2) * w;
                    for (long x = 0; x < w; x++) gy[x] += -p0[x] + p1[x] + p2[x];
                }
                if (y + 3 < h) {
                    float *gy = g + (y + 3) * w;
                    for (long x = 0; x < w; x++) gy[x] += -p3[x];
                }
            }
        }
    free(r);
}

// One tile row (b, ty) of output plane o: `in` is tile (b, ty, 0) of frequency 0, `freq` the distance between
// frequencies; s is scratch of 8·tw floats.
static inline __attribute__((always_inline)) void output_tile_row(const float *in, long freq, long tw, long h,
                                                                  long w, long ty, float bias, float *plane,
                                                                  float *s) {
    for (int i = 0; i < 4; i++) {  // s[i][e][tx]: row i of Mξ·A, output column e
        const float *q0 = in + (4 * i) * freq, *q1 = q0 + freq, *q2 = q1 + freq, *q3 = q2 + freq;
        float *s0 = s + (2 * i) * tw, *s1 = s0 + tw;
        for (long tx = 0; tx < tw; tx++) {
            s0[tx] = q0[tx] + q1[tx] + q2[tx];
            s1[tx] = q1[tx] - q2[tx] - q3[tx];
        }
    }
    for (int e = 0; e < 2; e++) {  // output row 2ty + e
        long y = 2 * ty + e;
        if (y >= h) continue;
        float *oy = plane + y * w;
        for (int f = 0; f < 2; f++) {  // output column 2tx + f
            const float *a0 = s + f * tw, *a1 = s + (2 + f) * tw, *a2 = s + (4 + f) * tw, *a3 = s + (6 + f) * tw;
            long x1 = (w - f + 1) / 2;  // tiles whose column 2tx + f exists
            if (e == 0)
                for (long tx = 0; tx < x1; tx++) oy[2 * tx + f] = bias + (a0[tx] + a1[tx] + a2[tx]);
            else
                for (long tx = 0; tx < x1; tx++) oy[2 * tx + f] = bias + (a1[tx] - a2[tx] - a3[tx]);
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
// output_tile_row with AVX-512, 16 tiles at a time: the same operations in the same order, the two output
// columns of each tile interleaved in registers so that each output row is stored contiguously (the
// compiler's version stores every other float).
__attribute__((target("avx512f"))) static void output_tile_row_avx512(const float *in, long freq, long tw, long h,
                                                                      long w, long ty, float bias, float *plane) {
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    const __m512 vb = _mm512_set1_ps(bias);
    for (long tx = 0; tx < tw; tx += 16) {
        long nt = tw - tx < 16 ? tw - tx : 16;
        __mmask16 m = (__mmask16)((1u << nt) - 1);
        __m512 s[4][2];
        for (int i = 0; i < 4; i++) {
            const float *q0 = in + (4 * i) * freq + tx, *q1 = q0 + freq, *q2 = q1 + freq, *q3 = q2 + freq;
            __m512 a = _mm512_maskz_loadu_ps(m, q0), b = _mm512_maskz_loadu_ps(m, q1);
            __m512 c = _mm512_maskz_loadu_ps(m, q2), d = _mm512_maskz_loadu_ps(m, q3);
            s[i][0] = _mm512_add_ps(_mm512_add_ps(a, b), c);
            s[i][1] = _mm512_sub_ps(_mm512_sub_ps(b, c), d);
        }
        for (int e = 0; e < 2; e++) {
            long y = 2 * ty + e;
            if (y >= h) continue;
            __m512 col[2];
            for (int f = 0; f < 2; f++)
                col[f] = e == 0 ? _mm512_add_ps(vb, _mm512_add_ps(_mm512_add_ps(s[0][f], s[1][f]), s[2][f]))
                                : _mm512_add_ps(vb, _mm512_sub_ps(_mm512_sub_ps(s[1][f], s[2][f]), s[3][f]));
            // columns 2tx + f, tx in this group: 2·nt values, fewer where w is odd and this is the last tile
            long cols = 2 * nt - (2 * (tx + nt) > w ? 1 : 0);
            float *oy = plane + y * w + 2 * tx;
            __mmask16 m0 = (__mmask16)(cols >= 16 ? 0xffff : (1u << cols) - 1);
            __mmask16 m1 = (__mmask16)(cols <= 16 ? 0 : cols >= 32 ? 0xffff : (1u << (cols - 16)) - 1);
            _mm512_mask_storeu_ps(oy, m0, _mm512_permutex2var_ps(col[0], lo, col[1]));
            _mm512_mask_storeu_ps(oy + 16, m1, _mm512_permutex2var_ps(col[0], hi, col[1]));
        }
    }
}

static int output_avx512 = -1;
static inline int use_avx512(void) {
    if (output_avx512 < 0) {
        __builtin_cpu_init();
        output_avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0;
    }
    return output_avx512;
}
#define OUTPUT_ROW(in, freq, tw, h, w, ty, bias, plane, s) \
    (use_avx512() ? output_tile_row_avx512(in, freq, tw, h, w, ty, bias, plane) \
                  : output_tile_row(in, freq, tw, h, w, ty, bias, plane, s))
#else
#define OUTPUT_ROW(in, freq, tw, h, w, ty, bias, plane, s) output_tile_row(in, freq, tw, h, w, ty, bias, plane, s)
#endif

CLONES void swiftrain_wino_output(long rows, long batch, long h, long w, const float *m, const float *bias, float *out,
                                  long lo, long hi) {
    long th = (h + 1) / 2, tw = (w + 1) / 2, tiles = batch * th * tw, freq = rows * tiles, n = batch * h * w;
    float *s = malloc(sizeof(float) * 8 * tw);
    for (long o = lo; o < hi; o++)
        for (long b = 0; b < batch; b++)
            for (long ty = 0; ty < th; ty++)
                OUTPUT_ROW(m + o * tiles + (b * th + ty) * tw, freq, tw, h, w, ty, bias[o], out + o * n + b * h * w,
                           s);
    free(s);
}

CLONES void swiftrain_wino_output_tiles(long rows, long batch, long h, long w, const float *m, long ldm,
                                        const float *bias, float *out, long r0, long r1) {
    long th = (h + 1) / 2, tw = (w + 1) / 2, freq = rows * ldm, n = batch * h * w;
    float *s = malloc(sizeof(float) * 8 * tw);
    for (long o = 0; o < rows; o++)
        for (long r = r0; r < r1; r++) {
            long b = r / th, ty = r % th;
            OUTPUT_ROW(m + o * ldm + (r - r0) * tw, freq, tw, h, w, ty, bias[o], out + o * n + b * h * w, s);
        }
    free(s);
}

CLONES void swiftrain_wino_output_adjoint(long rows, long batch, long h, long w, const float *dz, float *dm, long lo,
                                   long hi) {
    long th = (h + 1) / 2, tw = (w + 1) / 2, tiles = batch * th * tw, freq = rows * tiles, n = batch * h * w;
    float *dy = malloc(sizeof(float) * 4 * tw);  // dY[e][f] per tile, zero where the output does not exist
    float *y00 = dy, *y01 = dy + tw, *y10 = dy + 2 * tw, *y11 = dy + 3 * tw;
    for (long o = lo; o < hi; o++)
        for (long b = 0; b < batch; b++)
            for (long ty = 0; ty < th; ty++) {
                output_tile_dy(dz + o * n + b * h * w, h, w, ty, tw, y00, y01, y10, y11);
                float *out = dm + o * tiles + (b * th + ty) * tw;
                // dMξ = A dY Aᵀ, A's rows (1,0), (1,1), (1,−1), (0,−1): row i of A·dY is
                // (y0f, y0f + y1f, y0f − y1f, −y1f), then the same combination along columns.
                // Written once and read by the next sgemms only: streamed past the cache.
                for (int i = 0; i < 4; i++) {
                    float *restrict q0 = out + (4 * i) * freq, *restrict q1 = q0 + freq, *restrict q2 = q1 + freq,
                                    *restrict q3 = q2 + freq;
                    for (long tx = 0; tx < tw; tx++) {
                        float a0 = y00[tx], a1 = y01[tx], b0 = y10[tx], b1 = y11[tx];
                        float r0 = i == 0 ? a0 : i == 1 ? a0 + b0 : i == 2 ? a0 - b0 : -b0;
                        float r1 = i == 0 ? a1 : i == 1 ? a1 + b1 : i == 2 ? a1 - b1 : -b1;
                        __builtin_nontemporal_store(r0, q0 + tx);
                        __builtin_nontemporal_store(r0 + r1, q1 + tx);
                        __builtin_nontemporal_store(r0 - r1, q2 + tx);
                        __builtin_nontemporal_store(-r1, q3 + tx);
                    }
                }
            }
    free(dy);
}

CLONES void swiftrain_wino_weights(long rows, long channels, const float *wt, float *u, long lo, long hi) {
    long freq = rows * channels;
    for (long o = lo; o < hi; o++)
        for (long c = 0; c < channels; c++) {
            const float *g = wt + (o * channels + c) * 9;
            float t[4][3];  // G g
            for (int k = 0; k < 3; k++) {
                t[0][k] = g[k];
                t[1][k] = 0.5f * (g[k] + g[3 + k] + g[6 + k]);
                t[2][k] = 0.5f * (g[k] - g[3 + k] + g[6 + k]);
                t[3][k] = g[6 + k];
            }
            for (int i = 0; i < 4; i++) {  // (G g) Gᵀ
                float *q = u + (4 * i) * freq + o * channels + c;
                q[0] = t[i][0];
                q[freq] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
                q[2 * freq] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
                q[3 * freq] = t[i][2];
            }
        }
}

CLONES void swiftrain_wino_weights_adjoint(long rows, long channels, const float *du, float *dwt, long lo, long hi) {
    long freq = rows * channels;
    for (long o = lo; o < hi; o++)
        for (long c = 0; c < channels; c++) {
            float t[4][3];  // dU G, row by row
            for (int i = 0; i < 4; i++) {
                const float *q = du + (4 * i) * freq + o * channels + c;
                float a = q[0], b = q[freq], e = q[2 * freq], d = q[3 * freq];
                t[i][0] = a + 0.5f * b + 0.5f * e;
                t[i][1] = 0.5f * b - 0.5f * e;
                t[i][2] = 0.5f * b + 0.5f * e + d;
            }
            float *g = dwt + (o * channels + c) * 9;
            for (int k = 0; k < 3; k++) {  // Gᵀ (dU G)
                g[k] += t[0][k] + 0.5f * t[1][k] + 0.5f * t[2][k];
                g[3 + k] += 0.5f * t[1][k] - 0.5f * t[2][k];
                g[6 + k] += 0.5f * t[1][k] + 0.5f * t[2][k] + t[3][k];
            }
        }
}
