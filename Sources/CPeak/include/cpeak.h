#ifndef SWIFTRAIN_CPEAK_H
#define SWIFTRAIN_CPEAK_H
// The machine's FP32 peak: independent multiply-add chains in the widest vectors the CPU has; and its bf16
// dot-product peak where the CPU has AVX512_BF16.

/// The widest instruction set available: 3 AVX-512F, 2 AVX2+FMA, 1 AVX, 0 SSE.
int swiftrain_peak_isa(void);
/// Runs `iterations` rounds of the peak loop for `isa` on this thread; returns the FLOPs done.
double swiftrain_peak_run(long iterations, int isa);
/// FLOPs of n rounds of 12 independent VDPBF16PS chains (the bf16 dot-product peak); 0 without AVX512_BF16.
double swiftrain_peak_bf16_run(long n);
#endif
