#ifndef SWIFTRAIN_CKERNELS_H
#define SWIFTRAIN_CKERNELS_H
// SwiftRain's element-wise kernels: the ConvLSTM gates, vectorised for the widest instruction set the
// CPU has (chosen at run time), with their own exp and tanh. Every variant gives the same bits: no
// fused multiply-add (contraction is off), only correctly rounded +, −, ×, ÷ in the same order.

/// The instruction set the gate kernels use: 3 AVX-512F, 2 AVX2+FMA, 0 baseline (SSE2).
int swiftrain_gates_isa(void);
/// Forces a variant (tests, benchmarks); −1 returns to the best the CPU has. Returns the one in use.
int swiftrain_gates_force_isa(int isa);

/// σ(x) = 1 / (1 + e^−x) and tanh(x), element-wise over n values (the kernels' own functions).
void swiftrain_sigmoid(long n, const float *x, float *y);
void swiftrain_tanh(long n, const float *x, float *y);

/// One LSTM step with peepholes over n elements of one channel (PyRain's ConvLSTM cell):
///   i = σ(zi + wci⊙c0), f = σ(zf + wcf⊙c0), g = tanh(zg), c = f⊙c0 + i⊙g,
///   o = σ(zo + wco⊙c), tc = tanh(c), h = o⊙tc
void swiftrain_gates_forward(
    long n, const float *zi, const float *zf, const float *zg, const float *zo, const float *c0,
    const float *wci, const float *wcf, const float *wco,
    float *i, float *f, float *g, float *o, float *c, float *tc, float *h);

/// Its backward over the same n elements: dc (in: the gradient from step t+1; out: the one for step
/// t−1) and the pre-activation gradients dz*; the peephole gradients are added into gci, gcf, gco.
void swiftrain_gates_backward(
    long n, const float *i, const float *f, const float *g, const float *o, const float *c, const float *tc,
    const float *c0, const float *wci, const float *wcf, const float *wco, const float *dh, float *dc,
    float *dzi, float *dzf, float *dzg, float *dzo, float *gci, float *gcf, float *gco);


// Winograd F(2×2, 3×3) (winograd.c): tiles T = B·⌈H/2⌉·⌈W/2⌉; each call covers channels (or output
// rows) [lo, hi) so the caller can share the work among threads.
/// V[16][C][T] from planes[c·B + b] (each H·W, NULL for a zero plane).
void swiftrain_wino_input(long channels, long batch, long h, long w, const float *const *planes, float *v,
                          long lo, long hi);
/// Adds the adjoint of the input transform of dV[16][C][T] into grads[c·B + b].
void swiftrain_wino_input_adjoint(long channels, long batch, long h, long w, const float *dv,
                                  float *const *grads, long lo, long hi);
/// out[M][B·H·W] = bias + the inverse transform of M[16][M][T].
void swiftrain_wino_output(long rows, long batch, long h, long w, const float *m, const float *bias, float *out,
                           long lo, long hi);
/// The output transform for tile rows [r0, r1) (row r = b·⌈H/2⌉ + ty) of all M planes, from a block
/// M[16][M][ldm] holding those rows' tiles from column 0 (the fused forward's block).
void swiftrain_wino_output_tiles(long rows, long batch, long h, long w, const float *m, long ldm,
                                 const float *bias, float *out, long r0, long r1);
/// dM[16][M][T] = the adjoint of the output transform of dz[M][B·H·W].
void swiftrain_wino_output_adjoint(long rows, long batch, long h, long w, const float *dz, float *dm, long lo,
                                   long hi);
/// U[16][M][C] from the weights w[M][C][3][3].
void swiftrain_wino_weights(long rows, long channels, const float *w, float *u, long lo, long hi);
/// dw[M][C][3][3] += the adjoint of the weight transform of dU[16][M][C].
void swiftrain_wino_weights_adjoint(long rows, long channels, const float *du, float *dw, long lo, long hi);
// bfloat16 with fp32 accumulation (bf16.c), for precision bf16-mixed.
#include <stdint.h>
/// The bf16 GEMM kernels in use: 2 AVX512_BF16, 1 the scalar reference (tests only), 0 none (the CPU
/// has no bf16 dot-product instructions).
int swiftrain_bf16_isa(void);
/// Forces a variant (1: the reference; 0: act as a CPU without bf16); −1 returns to the CPU's best.
int swiftrain_bf16_force_isa(int isa);
/// x rounded to bfloat16, to nearest even (fp32 subnormals to signed zero, NaN stays NaN).
uint16_t swiftrain_bf16_round(float x);
void swiftrain_bf16_from_f32(long n, const float *x, uint16_t *y);
void swiftrain_bf16_to_f32(long n, const uint16_t *x, float *y);
/// C[m×n] = beta·C + op(A)·op(B), bf16 operands row-major, fp32 products and sums, one thread. Forms:
/// (A, B), (Aᵀ, B) and (A, Bᵀ). Returns 0, −1 without a kernel, −2 for (Aᵀ, Bᵀ).
int swiftrain_gemm_bf16(int transA, int transB, long m, long n, long k, const uint16_t *a, long lda,
                        const uint16_t *b, long ldb, float beta, float *c, long ldc);
/// swiftrain_wino_input with V stored as bf16 (AVX512_BF16 CPUs only).
void swiftrain_wino_input_bf16(long channels, long batch, long h, long w, const float *const *planes, uint16_t *v,
                               long lo, long hi);
/// swiftrain_wino_output_adjoint with dM stored as bf16 (AVX512_BF16 CPUs only).
void swiftrain_wino_output_adjoint_bf16(long rows, long batch, long h, long w, const float *dz, uint16_t *dm,
                                        long lo, long hi);
/// op(A) packed once for many products with the same A (`swiftrain_gemm_bf16_packed`): its size in
/// 32-bit words, and the packing.
long swiftrain_bf16_packed_a_words(long m, long k);
void swiftrain_bf16_pack_a(int transA, long m, long k, const uint16_t *a, long lda, uint32_t *packed);
/// C = beta·C + A·B with A packed by `swiftrain_bf16_pack_a`; B as in `swiftrain_gemm_bf16` (not transposed).
int swiftrain_gemm_bf16_packed(long m, long n, long k, const uint32_t *packed_a, const uint16_t *b, long ldb,
                               float beta, float *c, long ldc);
#endif
