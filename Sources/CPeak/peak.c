// Each function is compiled for its own instruction set (target attributes) and chosen at run time,
// so the release build stays baseline x86-64 and still measures what the CPU can do.
#include "cpeak.h"

#if defined(__x86_64__)
#include <immintrin.h>

static volatile float sink;

// 12 independent chains: enough to cover FMA latency (4 cycles) on two FMA ports.
#define CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

__attribute__((target("avx512f"))) static double run512(long n) {
    const __m512 b = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
#define DECL(i) __m512 a##i = _mm512_set1_ps(1.0f + (i));
    CHAINS(DECL)
    for (long r = 0; r < n; r++) {
#define STEP(i) a##i = _mm512_fmadd_ps(a##i, b, c);
        CHAINS(STEP)
    }
    __m512 s = a0;
#define SUM(i) s = _mm512_add_ps(s, a##i);
    CHAINS(SUM)
    sink = _mm512_reduce_add_ps(s);
    return (double)n * 12 * 16 * 2;
}

// bf16 dot products: VDPBF16PS adds two products per lane, 64 FLOPs per instruction (the bf16 peak).
__attribute__((target("avx512f,avx512bf16"))) static double runBF16(long n) {
    const __m512bh b = (__m512bh)_mm512_set1_epi32(0x3f803f80), c = (__m512bh)_mm512_set1_epi32(0x33d633d6);
    CHAINS(DECL)
    for (long r = 0; r < n; r++) {
#define STEPBF(i) a##i = _mm512_dpbf16_ps(a##i, b, c);
        CHAINS(STEPBF)
    }
    __m512 s = a0;
    CHAINS(SUM)
    sink = _mm512_reduce_add_ps(s);
    return (double)n * 12 * 64;
}

double swiftrain_peak_bf16_run(long n) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") ? runBF16(n) : 0;
}

__attribute__((target("avx2,fma"))) static double run256(long n) {
    const __m256 b = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
#define DECL8(i) __m256 a##i = _mm256_set1_ps(1.0f + (i));
    CHAINS(DECL8)
    for (long r = 0; r < n; r++) {
#define STEP8(i) a##i = _mm256_fmadd_ps(a##i, b, c);
        CHAINS(STEP8)
    }
    __m256 s = a0;
#define SUM8(i) s = _mm256_add_ps(s, a##i);
    CHAINS(SUM8)
    float o[8];
    _mm256_storeu_ps(o, s);
    sink = o[0] + o[7];
    return (double)n * 12 * 8 * 2;
}

// Without FMA: a multiply and an add per lane (AVX, 8 lanes; SSE, 4), which the two ports overlap.
__attribute__((target("avx"))) static double runAVX(long n) {
    const __m256 b = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
    CHAINS(DECL8)
    for (long r = 0; r < n; r++) {
#define STEPA(i) a##i = _mm256_add_ps(_mm256_mul_ps(a##i, b), c);
        CHAINS(STEPA)
    }
    __m256 s = a0;
    CHAINS(SUM8)
    float o[8];
    _mm256_storeu_ps(o, s);
    sink = o[0] + o[7];
    return (double)n * 12 * 8 * 2;
}

static double runSSE(long n) {
    const __m128 b = _mm_set1_ps(0.9999999f), c = _mm_set1_ps(1e-7f);
#define DECL4(i) __m128 a##i = _mm_set1_ps(1.0f + (i));
    CHAINS(DECL4)
    for (long r = 0; r < n; r++) {
#define STEP4(i) a##i = _mm_add_ps(_mm_mul_ps(a##i, b), c);
        CHAINS(STEP4)
    }
    __m128 s = a0;
#define SUM4(i) s = _mm_add_ps(s, a##i);
    CHAINS(SUM4)
    float o[4];
    _mm_storeu_ps(o, s);
    sink = o[0] + o[3];
    return (double)n * 12 * 4 * 2;
}

int swiftrain_peak_isa(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 3;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 2;
    if (__builtin_cpu_supports("avx")) return 1;
    return 0;
}

double swiftrain_peak_run(long n, int isa) {
    switch (isa) {
    case 3: return run512(n);
    case 2: return run256(n);
    case 1: return runAVX(n);
    default: return runSSE(n);
    }
}
#else
// Other architectures: a scalar loop the compiler vectorises as it can (a lower bound, labelled as such).
static volatile float sink;
int swiftrain_peak_isa(void) { return 0; }
double swiftrain_peak_bf16_run(long n) {
    (void)n;
    return 0;
}
double swiftrain_peak_run(long n, int isa) {
    (void)isa;
    float a[32];
    for (int i = 0; i < 32; i++) a[i] = 1.0f + i;
    for (long r = 0; r < n; r++)
        for (int i = 0; i < 32; i++) a[i] = a[i] * 0.9999999f + 1e-7f;
    float s = 0;
    for (int i = 0; i < 32; i++) s += a[i];
    sink = s;
    return (double)n * 32 * 2;
}
#endif
