// oneDNN's matmul primitive against SwiftRain's bf16 GEMM kernels (Sources/CKernels/bf16.c), shape for shape,
// one thread each, bf16 operands and fp32 output, on the Winograd products of the bench models. Not part of
// the build: oneDNN is measured here, not used (README "Precision: bf16-mixed"; docs/performance.md).
//
//   apt-get install libdnnl-dev
//   clang -O2 -ffp-contract=off -ISources/CKernels/include tools/bench_onednn.c Sources/CKernels/bf16.c \
//     -ldnnl -o /tmp/bench_onednn && env -u OPENBLAS_CORETYPE OMP_NUM_THREADS=1 /tmp/bench_onednn
//
// (clang, as SwiftPM builds CKernels: GCC keeps the intrinsics' register tiles in memory.)
#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ckernels.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define CHECK(x)                                                        \
    do {                                                                \
        dnnl_status_t s = (x);                                          \
        if (s != dnnl_success) {                                        \
            fprintf(stderr, "oneDNN error %d in %s\n", (int)s, #x);     \
            exit(1);                                                    \
        }                                                               \
    } while (0)

static dnnl_engine_t engine;
static dnnl_stream_t stream;

// C[m×n] = op(A)·op(B), row-major, by oneDNN and by SwiftRain: the best of `reps` runs of each, in turns.
static void measure(const char *name, int ta, int tb, long m, long n, long k, int reps) {
    long lda = ta ? m : k, ldb = tb ? k : n;
    uint16_t *a = malloc(2 * m * k + 64), *b = malloc(2 * k * n + 64);
    float *c = malloc(4 * m * n + 64);
    for (long i = 0; i < m * k; i++) a[i] = 0x3f80 + (i % 7);
    for (long i = 0; i < k * n; i++) b[i] = 0x3f80 + (i % 5);
    dnnl_memory_desc_t amd, bmd, cmd;
    dnnl_dims_t ad = {m, k}, bd = {k, n}, cd = {m, n};
    dnnl_dims_t as = {ta ? 1 : lda, ta ? lda : 1}, bs = {tb ? 1 : ldb, tb ? ldb : 1}, cs = {n, 1};
    CHECK(dnnl_memory_desc_init_by_strides(&amd, 2, ad, dnnl_bf16, as));
    CHECK(dnnl_memory_desc_init_by_strides(&bmd, 2, bd, dnnl_bf16, bs));
    CHECK(dnnl_memory_desc_init_by_strides(&cmd, 2, cd, dnnl_f32, cs));
    dnnl_matmul_desc_t md;
    CHECK(dnnl_matmul_desc_init(&md, &amd, &bmd, NULL, &cmd));
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_primitive_desc_create(&pd, &md, NULL, engine, NULL));
    const char *impl = "?";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    dnnl_primitive_t prim;
    CHECK(dnnl_primitive_create(&prim, pd));
    dnnl_memory_t am, bm, cm;
    CHECK(dnnl_memory_create(&am, &amd, engine, a));
    CHECK(dnnl_memory_create(&bm, &bmd, engine, b));
    CHECK(dnnl_memory_create(&cm, &cmd, engine, c));
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
    CHECK(dnnl_primitive_execute(prim, stream, 3, args));  // warm-up
    dnnl_stream_wait(stream);
    swiftrain_gemm_bf16(ta, tb, m, n, k, a, lda, b, ldb, 0, c, n);
    double theirs = 1e9, ours = 1e9;
    for (int r = 0; r < reps; r++) {
        double t = now();
        dnnl_primitive_execute(prim, stream, 3, args);
        dnnl_stream_wait(stream);
        t = now() - t;
        if (t < theirs) theirs = t;
        t = now();
        swiftrain_gemm_bf16(ta, tb, m, n, k, a, lda, b, ldb, 0, c, n);
        t = now() - t;
        if (t < ours) ours = t;
    }
    double flops = 2.0 * m * n * k;
    printf("%-18s m=%5ld n=%6ld k=%6ld  oneDNN %6.1f GFLOP/s (%s)  SwiftRain %6.1f GFLOP/s  SwiftRain/oneDNN %.2f\n",
           name, m, n, k, flops / theirs / 1e9, impl, flops / ours / 1e9, theirs / ours);
    dnnl_memory_destroy(am), dnnl_memory_destroy(bm), dnnl_memory_destroy(cm);
    dnnl_primitive_destroy(prim), dnnl_primitive_desc_destroy(pd);
    free(a), free(b), free(c);
}

int main(void) {
    if (swiftrain_bf16_isa() != 2) {
        fprintf(stderr, "this CPU has no AVX512_BF16\n");
        return 1;
    }
    CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    for (int round = 0; round < 2; round++) {
        measure("small fwd A·B", 0, 0, 128, 16384, 48, 7);
        measure("small dU A·Bt", 0, 1, 128, 48, 16384, 7);
        measure("small dV At·B", 1, 0, 32, 16384, 128, 7);
        measure("small fused blk", 0, 0, 128, 96, 48, 50);
        measure("full fwd A·B", 0, 0, 1536, 512, 400, 7);
        measure("full dU A·Bt", 0, 1, 1536, 400, 512, 7);
        measure("full dV At·B", 1, 0, 384, 512, 1536, 7);
    }
    return 0;
}
