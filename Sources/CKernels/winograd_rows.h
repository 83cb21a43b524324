// Shared by the fp32 (winograd.c) and bf16 (winograd_bf16.c) input transforms: one tile row's input rows.
#ifndef SWIFTRAIN_WINOGRAD_ROWS_H
#define SWIFTRAIN_WINOGRAD_ROWS_H
#include <string.h>

// Input rows 2ty−1 .. 2ty+2 of one plane, each padded with a zero on the left and two on the right,
// combined by Bᵀ into four rows r0..r3 (r0 = d0 − d2, r1 = d1 + d2, r2 = d2 − d1, r3 = d1 − d3).
static inline __attribute__((always_inline)) void input_rows(const float *src, long h, long w, long ty, float *r,
                                                             long stride) {
    for (int k = 0; k < 4; k++) memset(r + k * stride, 0, sizeof(float) * stride);
    const float *row[4];
    for (int i = 0; i < 4; i++) {
        long y = 2 * ty + i - 1;
        row[i] = (src && y >= 0 && y < h) ? src + y * w : 0;
    }
    float *r0 = r + 1, *r1 = r + stride + 1, *r2 = r + 2 * stride + 1, *r3 = r + 3 * stride + 1;
    for (long x = 0; x < w; x++) {
        float d0 = row[0] ? row[0][x] : 0, d1 = row[1] ? row[1][x] : 0;
        float d2 = row[2] ? row[2][x] : 0, d3 = row[3] ? row[3][x] : 0;
        r0[x] = d0 - d2, r1[x] = d1 + d2, r2[x] = d2 - d1, r3[x] = d1 - d3;
    }
}

// The gradient dY of one tile row (ty) of an output plane: per tile its four outputs y00, y01 (row 2ty) and
// y10, y11 (row 2ty + 1), zero where the output does not exist (an odd height or width).
static inline __attribute__((always_inline)) void output_tile_dy(const float *plane, long h, long w, long ty,
                                                                 long tw, float *y00, float *y01, float *y10,
                                                                 float *y11) {
    const float *row0 = plane + 2 * ty * w, *row1 = row0 + w;
    int has1 = 2 * ty + 1 < h;
    for (long tx = 0; tx < w / 2; tx++) {
        y00[tx] = row0[2 * tx], y01[tx] = row0[2 * tx + 1];
        y10[tx] = has1 ? row1[2 * tx] : 0, y11[tx] = has1 ? row1[2 * tx + 1] : 0;
    }
    if (w % 2) {  // the last tile's right column is outside
        y00[tw - 1] = row0[w - 1], y01[tw - 1] = 0;
        y10[tw - 1] = has1 ? row1[w - 1] : 0, y11[tw - 1] = 0;
    }
}

#endif
