#ifndef SWIFTRAIN_CPEAK_H
#define SWIFTRAIN_CPEAK_H
// The machine's FP32 peak: independent multiply-add chains in the widest vectors the CPU has.

/// The widest instruction set available: 3 AVX-512F, 2 AVX2+FMA, 1 AVX, 0 SSE.
int swiftrain_peak_isa(void);
/// Runs `iterations` rounds of the peak loop for `isa` on this thread; returns the FLOPs done.
double swiftrain_peak_run(long iterations, int isa);
#endif
