// bfloat16 GEMMs with fp32 accumulation, C[m×n] = beta·C + op(A)[m×k] · op(B)[k×n], for bf16-mixed.
//
//   operands  bf16 (uint16_t), row-major with leading dimensions, as the fp32 GEMMs take them
//   C         fp32, row-major
//   nn form   op(B) = B [k][ldb]: B's pairs of rows (2p, 2p+1) are interleaved into 32-bit words
//             [p][j] (packed panels NR wide); op(A)'s pairs (A(i,2p), A(i,2p+1)) packed [p][i] (MR
//             tall); each k pair is one VDPBF16PS: lane j += a(i,2p)·b(2p,j) + a(i,2p+1)·b(2p+1,j)
//   nt form   op(B) = Bᵀ, B [n][ldb], and op(A) = A [m][lda]: both have k contiguous, so the kernel
//             takes dot products along k, 32 values per instruction, and sums the lanes at the end
//             (for the weight gradient's products, whose k is the long dimension)
//
// Each call is single-threaded; callers share pieces among threads. The blocking depends on the
// shape only (never the thread count), so every element of C is summed in the same order whoever
// computes it. A scalar reference (ISA 1) does the same arithmetic in a plain loop for the tests; a
// CPU without AVX512_BF16 has no kernel (ISA 0) and the caller says so: bf16 is never emulated.
#include "ckernels.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

// ---- conversion -----------------------------------------------------------------------------------

// Round to nearest even, as VCVTNEPS2BF16 does: a NaN stays a (quiet) NaN, and fp32 subnormals become
// signed zeros (the instruction treats input denormals as zero).
static inline uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float from_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

uint16_t swiftrain_bf16_round(float x) { return to_bf16(x); }

#if defined(__x86_64__)
#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
#endif

static int selected = -1;

static int detect(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
        return 2;
#endif
    return 0;
}

int swiftrain_bf16_isa(void) {
    if (selected < 0) selected = detect();
    return selected;
}

int swiftrain_bf16_force_isa(int isa) {
    int best = detect();
    selected = (isa < 0 || isa > best) ? (isa == 1 ? 1 : best) : isa;
    return selected;
}

#if defined(__x86_64__)
BF16_TARGET static void convert_avx512(long n, const float *x, uint16_t *y) {
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(x + i));
        _mm256_storeu_si256((__m256i *)(y + i), (__m256i)h);
    }
    for (; i < n; i++) y[i] = to_bf16(x[i]);
}
#endif

void swiftrain_bf16_from_f32(long n, const float *x, uint16_t *y) {
#if defined(__x86_64__)
    if (swiftrain_bf16_isa() == 2) {
        convert_avx512(n, x, y);
        return;
    }
#endif
    for (long i = 0; i < n; i++) y[i] = to_bf16(x[i]);
}

void swiftrain_bf16_to_f32(long n, const uint16_t *x, float *y) {
    for (long i = 0; i < n; i++) y[i] = from_bf16(x[i]);
}

// ---- blocking -------------------------------------------------------------------------------------

#define MR 8        // rows of a register tile (nn form)
#define NV 3        // 16-lane vectors across a register tile
#define NR (16 * NV)
#define KC 256      // k pairs per block: the packed A block (KC·MC words) and B panel stay in cache
#define NC 1536     // columns per packed B block

// The nt form: TM × TN dot products at once, k in blocks of KD values.
#define TM 4
#define TN 4
#define KD 2048

static inline uint32_t word(uint16_t lo, uint16_t hi) { return (uint32_t)lo | ((uint32_t)hi << 16); }

// op(A)'s rows i0..i0+MR (zeros past m), k pairs p0..p0+kc (zeros past k), as words [p][MR].
static void pack_a(int trans, long m, long k, const uint16_t *a, long lda, long i0, long p0, long kc,
                   uint32_t *out) {
    for (long p = 0; p < kc; p++) {
        long k0 = 2 * (p0 + p);
        for (long r = 0; r < MR; r++) {
            long i = i0 + r;
            uint16_t lo = 0, hi = 0;
            if (i < m) {
                if (trans) {  // op(A)(i, k) = a[k][i]
                    lo = a[k0 * lda + i];
                    hi = k0 + 1 < k ? a[(k0 + 1) * lda + i] : 0;
                } else {
                    lo = a[i * lda + k0];
                    hi = k0 + 1 < k ? a[i * lda + k0 + 1] : 0;
                }
            }
            out[p * MR + r] = word(lo, hi);
        }
    }
}

// B's columns j0..j0+NR (zeros past n), k pairs p0..p0+kc, as words [p][NR]: rows 2p and 2p+1 interleaved.
static void pack_b(long n, long k, const uint16_t *b, long ldb, long j0, long p0, long kc, uint32_t *out) {
    long w = n - j0 < NR ? n - j0 : NR;
    for (long p = 0; p < kc; p++) {
        long k0 = 2 * (p0 + p);
        const uint16_t *r0 = b + k0 * ldb + j0, *r1 = k0 + 1 < k ? r0 + ldb : 0;
        uint32_t *o = out + p * NR;
        long j = 0;
        for (; j < w; j++) o[j] = word(r0[j], r1 ? r1[j] : 0);
        for (; j < NR; j++) o[j] = 0;
    }
}

// The same panel of op(B) = Bᵀ, B stored [n][ldb] (k contiguous): each pair is one 32-bit word of a row of B.
static void pack_bt(long n, long k, const uint16_t *b, long ldb, long j0, long p0, long kc, uint32_t *out) {
    long w = n - j0 < NR ? n - j0 : NR;
    for (long j = 0; j < NR; j++) {
        const uint16_t *row = b + (j0 + j) * ldb;
        for (long p = 0; p < kc; p++) {
            long k0 = 2 * (p0 + p);
            out[p * NR + j] = j < w ? word(row[k0], k0 + 1 < k ? row[k0 + 1] : 0) : 0;
        }
    }
}

#if defined(__x86_64__)
// pack_b for a whole panel (NR columns, both rows of every pair inside B): rows 2p and 2p+1 interleaved by
// VPERMT2W, 32 columns per instruction; edge panels take the scalar loop.
BF16_TARGET static void pack_b_avx512(long n, long k, const uint16_t *b, long ldb, long j0, long p0, long kc,
                                      uint32_t *out) {
    if (n - j0 < NR || 2 * (p0 + kc) > k) {
        pack_b(n, k, b, ldb, j0, p0, kc, out);
        return;
    }
    static const uint16_t lo[32] = {0, 32, 1, 33, 2, 34, 3, 35, 4, 36, 5, 37, 6, 38, 7, 39,
                                    8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
    __m512i ilo = _mm512_loadu_si512(lo), ihi = _mm512_add_epi16(ilo, _mm512_set1_epi16(16));
    for (long p = 0; p < kc; p++) {
        const uint16_t *r0 = b + 2 * (p0 + p) * ldb + j0, *r1 = r0 + ldb;
        uint32_t *o = out + p * NR;
        __m512i x0 = _mm512_loadu_si512(r0), y0 = _mm512_loadu_si512(r1);
        __m512i x1 = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(r0 + 32)));
        __m512i y1 = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(r1 + 32)));
        _mm512_storeu_si512(o, _mm512_permutex2var_epi16(x0, ilo, y0));
        _mm512_storeu_si512(o + 16, _mm512_permutex2var_epi16(x0, ihi, y0));
        _mm512_storeu_si512(o + 32, _mm512_permutex2var_epi16(x1, ilo, y1));
    }
}
#endif

// ---- nn tiles -------------------------------------------------------------------------------------

// Scalar reference of a tile: the same sums in the same order as the vector tile (per lane: the k
// pairs in order, each pair's high product then its low one, as VDPBF16PS specifies).
static void tile_ref(long kc, const uint32_t *ap, const uint32_t *bp, float *c, long ldc, int load, float beta,
                     long mr, long nr) {
    for (long r = 0; r < mr; r++)
        for (long j = 0; j < nr; j++) {
            float s = load ? (beta == 1.0f ? c[r * ldc + j] : beta * c[r * ldc + j]) : 0.0f;
            for (long p = 0; p < kc; p++) {
                uint32_t x = ap[p * MR + r], y = bp[p * NR + j];
                s += from_bf16((uint16_t)(x >> 16)) * from_bf16((uint16_t)(y >> 16));
                s += from_bf16((uint16_t)x) * from_bf16((uint16_t)y);
            }
            c[r * ldc + j] = s;
        }
}

#if defined(__x86_64__)
BF16_TARGET static void tile_avx512(long kc, const uint32_t *ap, const uint32_t *bp, float *c, long ldc, int load,
                                    float beta, long mr, long nr) {
    __m512 acc[MR][NV];
    __mmask16 mask[NV];
    for (int v = 0; v < NV; v++) {
        long left = nr - 16 * v;
        mask[v] = left >= 16 ? (__mmask16)0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
    }
    const __m512 vb = _mm512_set1_ps(beta);
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NV; v++) {
            acc[r][v] = _mm512_setzero_ps();
            if (load && r < mr) {
                __m512 x = _mm512_maskz_loadu_ps(mask[v], c + r * ldc + 16 * v);
                acc[r][v] = beta == 1.0f ? x : _mm512_mul_ps(x, vb);
            }
        }
    for (long p = 0; p < kc; p++) {
        __m512bh b[NV];
        for (int v = 0; v < NV; v++) b[v] = (__m512bh)_mm512_loadu_si512(bp + p * NR + 16 * v);
        for (int r = 0; r < MR; r++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)ap[p * MR + r]);
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], a, b[v]);
        }
    }
    for (int r = 0; r < MR; r++) {
        if (r >= mr) break;
        for (int v = 0; v < NV; v++) _mm512_mask_storeu_ps(c + r * ldc + 16 * v, mask[v], acc[r][v]);
    }
}
#endif

typedef void (*tile_fn)(long, const uint32_t *, const uint32_t *, float *, long, int, float, long, long);
typedef void (*pack_fn)(long, long, const uint16_t *, long, long, long, long, uint32_t *);

// op(A) for all k blocks: block p0 (KC pairs, the last shorter) at word panels·MR·p0, panel ip inside it at
// ip·MR·kc: [kc][MR] words each.
static void pack_a_all(int transA, long m, long k, const uint16_t *a, long lda, uint32_t *pa) {
    long kp = (k + 1) / 2, panels = (m + MR - 1) / MR;
    for (long p0 = 0; p0 < kp; p0 += KC) {
        long kc = kp - p0 < KC ? kp - p0 : KC;
        for (long ip = 0; ip < panels; ip++)
            pack_a(transA, m, k, a, lda, ip * MR, p0, kc, pa + panels * MR * p0 + ip * MR * kc);
    }
}

long swiftrain_bf16_packed_a_words(long m, long k) { return ((m + MR - 1) / MR) * MR * ((k + 1) / 2) + 1; }

void swiftrain_bf16_pack_a(int transA, long m, long k, const uint16_t *a, long lda, uint32_t *packed) {
    pack_a_all(transA, m, k, a, lda, packed);
}

static void gemm_nn_packed(tile_fn tile, pack_fn packb, long m, long n, long k, const uint32_t *pa,
                           const uint16_t *b, long ldb, float beta, float *c, long ldc) {
    long kp = (k + 1) / 2;
    long panels = (m + MR - 1) / MR;
    long kcmax = kp < KC ? kp : KC;
    long ncmax = n < NC ? n : NC;
    uint32_t *pb = malloc(sizeof(uint32_t) * (size_t)(((ncmax + NR - 1) / NR) * NR * kcmax + 1));
    if (kp == 0) {  // no products: C = beta·C
        for (long i = 0; i < m; i++)
            for (long j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    }
    for (long p0 = 0; p0 < kp; p0 += KC) {
        long kc = kp - p0 < KC ? kp - p0 : KC;
        int load = p0 > 0 || beta != 0.0f;
        float bt = p0 > 0 ? 1.0f : beta;
        const uint32_t *pblock = pa + panels * MR * p0;
        for (long j0 = 0; j0 < n; j0 += NC) {
            long nc = n - j0 < NC ? n - j0 : NC;
            for (long jr = 0; jr < nc; jr += NR) packb(n, k, b, ldb, j0 + jr, p0, kc, pb + (jr / NR) * NR * kc);
            for (long jr = 0; jr < nc; jr += NR) {
                long nr = nc - jr < NR ? nc - jr : NR;
                for (long ip = 0; ip < panels; ip++) {
                    long mr = m - ip * MR < MR ? m - ip * MR : MR;
                    tile(kc, pblock + ip * MR * kc, pb + (jr / NR) * NR * kc, c + ip * MR * ldc + j0 + jr, ldc, load,
                         bt, mr, nr);
                }
            }
        }
    }
    free(pb);
}

static void gemm_nn(tile_fn tile, pack_fn packb, int transA, long m, long n, long k, const uint16_t *a, long lda,
                    const uint16_t *b, long ldb, float beta, float *c, long ldc) {
    uint32_t *pa = malloc(sizeof(uint32_t) * (size_t)swiftrain_bf16_packed_a_words(m, k));
    pack_a_all(transA, m, k, a, lda, pa);
    gemm_nn_packed(tile, packb, m, n, k, pa, b, ldb, beta, c, ldc);
    free(pa);
}

// ---- nt dots --------------------------------------------------------------------------------------

// C[i][j] (+)= Σ_k a[i][k]·b[j][k] over k blocks of KD; within a block each of 16 lanes sums the pairs
// (2l, 2l+1) of every 32 values in order, then the 16 lanes of each of the TM·TN = 16 sums are added in a
// fixed tree: four levels (s = 8, 4, 2, 1), each adding every lane to the one s after it in its group of
// 2s, for two sums at once (the first's partial sums go to the low half, the second's to the high).
static void tree_sum16(float v[16][16], float *out) {
    int count = 16;
    for (int s = 8; s >= 1; s /= 2) {
        float w[8][16];
        for (int i = 0; i < count / 2; i++) {
            int o = 0;
            for (int half = 0; half < 2; half++) {
                const float *src = v[2 * i + half];
                for (int g = 0; g < 16; g += 2 * s)
                    for (int l = 0; l < s; l++, o++) w[i][o] = src[g + l] + src[g + s + l];
            }
        }
        count /= 2;
        memcpy(v, w, sizeof(float) * 16 * (size_t)count);
    }
    for (int q = 0; q < 16; q++) out[q] = v[0][q];
}

static void dots_ref(long len, const uint16_t *const *ar, const uint16_t *const *br, float *out) {
    float lanes[16][16];
    for (long r = 0; r < TM; r++)
        for (long q = 0; q < TN; q++) {
            float *lane = lanes[r * TN + q];
            for (int l = 0; l < 16; l++) lane[l] = 0;
            for (long k0 = 0; k0 < len; k0 += 32)
                for (int l = 0; l < 16; l++) {
                    long e = k0 + 2 * l;
                    float x1 = e + 1 < len ? from_bf16(ar[r][e + 1]) : 0;
                    float y1 = e + 1 < len ? from_bf16(br[q][e + 1]) : 0;
                    float x0 = e < len ? from_bf16(ar[r][e]) : 0, y0 = e < len ? from_bf16(br[q][e]) : 0;
                    lane[l] += x1 * y1;
                    lane[l] += x0 * y0;
                }
        }
    tree_sum16(lanes, out);
}

#if defined(__x86_64__)
BF16_TARGET static void dots_avx512(long len, const uint16_t *const *ar, const uint16_t *const *br, float *out) {
    __m512 acc[TM * TN];
    for (int i = 0; i < TM * TN; i++) acc[i] = _mm512_setzero_ps();
    // One loop for whole and partial blocks (masked loads cost the same), so the sums stay in registers.
    for (long k0 = 0; k0 < len; k0 += 32) {
        __mmask32 mk = len - k0 >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1ull << (len - k0)) - 1);
        __m512bh x[TM];
        for (int r = 0; r < TM; r++) x[r] = (__m512bh)_mm512_maskz_loadu_epi16(mk, ar[r] + k0);
        for (int q = 0; q < TN; q++) {
            __m512bh y = (__m512bh)_mm512_maskz_loadu_epi16(mk, br[q] + k0);
            for (int r = 0; r < TM; r++) acc[r * TN + q] = _mm512_dpbf16_ps(acc[r * TN + q], x[r], y);
        }
    }
    // tree_sum16 in registers.
    static const int32_t idx[4][2][16] = {
        {{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23},
         {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}},
        {{0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27},
         {4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31}},
        {{0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29},
         {2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31}},
        {{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30},
         {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31}},
    };
    int count = 16;
    for (int level = 0; level < 4; level++) {
        __m512i ilo = _mm512_loadu_si512(idx[level][0]), ihi = _mm512_loadu_si512(idx[level][1]);
        for (int i = 0; i < count / 2; i++)
            acc[i] = _mm512_add_ps(_mm512_permutex2var_ps(acc[2 * i], ilo, acc[2 * i + 1]),
                                   _mm512_permutex2var_ps(acc[2 * i], ihi, acc[2 * i + 1]));
        count /= 2;
    }
    _mm512_storeu_ps(out, acc[0]);
}
#endif

typedef void (*dots_fn)(long, const uint16_t *const *, const uint16_t *const *, float *);

static void gemm_nt(dots_fn dots, long m, long n, long k, const uint16_t *a, long lda, const uint16_t *b, long ldb,
                    float beta, float *c, long ldc) {
    float out[TM * TN];
    const uint16_t *ar[TM], *br[TN];
    if (k == 0) {
        for (long i = 0; i < m; i++)
            for (long j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    }
    for (long k0 = 0; k0 < k; k0 += KD) {
        long len = k - k0 < KD ? k - k0 : KD;
        for (long i0 = 0; i0 < m; i0 += TM) {
            long tm = m - i0 < TM ? m - i0 : TM;
            for (int r = 0; r < TM; r++) ar[r] = a + (i0 + (r < tm ? r : 0)) * lda + k0;
            for (long j0 = 0; j0 < n; j0 += TN) {
                long tn = n - j0 < TN ? n - j0 : TN;
                for (int q = 0; q < TN; q++) br[q] = b + (j0 + (q < tn ? q : 0)) * ldb + k0;
                dots(len, ar, br, out);
                for (long r = 0; r < tm; r++)
                    for (long q = 0; q < tn; q++) {
                        float *x = c + (i0 + r) * ldc + j0 + q;
                        float prior = k0 > 0 ? *x : beta == 0.0f ? 0.0f : beta == 1.0f ? *x : beta * *x;
                        *x = prior + out[r * TN + q];
                    }
            }
        }
    }
}

// ---- entry ----------------------------------------------------------------------------------------

// The kernels of one instruction set: the vector ones, or the scalar reference the tests hold them to.
struct kernels {
    tile_fn tile;
    pack_fn pack_b, pack_bt;
    dots_fn dots;
};

static const struct kernels reference = {tile_ref, pack_b, pack_bt, dots_ref};
#if defined(__x86_64__)
static const struct kernels avx512 = {tile_avx512, pack_b_avx512, pack_bt, dots_avx512};
#endif

static const struct kernels *kernels_in_use(void) {
    int isa = swiftrain_bf16_isa();
#if defined(__x86_64__)
    if (isa == 2) return &avx512;
#endif
    return isa == 1 ? &reference : 0;
}

int swiftrain_gemm_bf16(int transA, int transB, long m, long n, long k, const uint16_t *a, long lda,
                        const uint16_t *b, long ldb, float beta, float *c, long ldc) {
    const struct kernels *kn = kernels_in_use();
    if (!kn) return -1;
    if (transB && transA) return -2;  // not a form the model uses
    // A·Bᵀ: dot products along k when k is long against the output (the small model's weight gradient,
    // k = the tiles), else the broadcast kernel on panels packed from Bᵀ (the shape alone decides).
    if (transB && k >= 8 * (m > n ? m : n))
        gemm_nt(kn->dots, m, n, k, a, lda, b, ldb, beta, c, ldc);
    else
        gemm_nn(kn->tile, transB ? kn->pack_bt : kn->pack_b, transA, m, n, k, a, lda, b, ldb, beta, c, ldc);
    return 0;
}

int swiftrain_gemm_bf16_packed(long m, long n, long k, const uint32_t *packed_a, const uint16_t *b, long ldb,
                               float beta, float *c, long ldc) {
    const struct kernels *kn = kernels_in_use();
    if (!kn) return -1;
    gemm_nn_packed(kn->tile, kn->pack_b, m, n, k, packed_a, b, ldb, beta, c, ldc);
    return 0;
}
