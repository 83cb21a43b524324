// The only file that imports CPeak.
import CPeak
import Foundation

/// The machine's measured FP32 peak: independent multiply-add chains in the widest vectors the CPU has,
/// on `threads` threads at once. The yardstick `bench step` holds every row against, so a slow BLAS
/// kernel cannot hide behind a ceiling measured with itself (e.g. 2 FMA units × 16 lanes × 2 FLOP per
/// cycle per core with AVX-512).
public enum MachinePeak {
    /// The instruction set the loop uses.
    public static var isa: String {
        ["SSE (mul + add)", "AVX (mul + add)", "AVX2 FMA", "AVX-512 FMA"][Int(swiftrain_peak_isa())]
    }

    /// GFLOP/s of `threads` threads running the loop together, median of `reps` runs of about 0.2 s.
    public static func gflops(threads: Int, reps: Int = 5) -> Double {
        let level = swiftrain_peak_isa()
        let iterations = 20_000_000 >> (level == 3 ? 1 : 0)
        var samples: [Double] = []
        for _ in 0..<max(1, reps) {
            let flops = UnsafeMutableBufferPointer<Double>.allocate(capacity: threads)
            defer { flops.deallocate() }
            let t0 = DispatchTime.now().uptimeNanoseconds
            DispatchQueue.concurrentPerform(iterations: threads) { i in
                flops[i] = swiftrain_peak_run(iterations, level)
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            samples.append(flops.reduce(0, +) / seconds / 1e9)
        }
        return samples.sorted()[samples.count / 2]
    }

    /// The bf16 dot-product peak (VDPBF16PS chains, 64 FLOPs each) of `threads` threads; 0 without the instruction.
    public static func bf16GFlops(threads: Int, reps: Int = 5) -> Double {
        var samples: [Double] = []
        for _ in 0..<max(1, reps) {
            let flops = UnsafeMutableBufferPointer<Double>.allocate(capacity: threads)
            defer { flops.deallocate() }
            let t0 = DispatchTime.now().uptimeNanoseconds
            DispatchQueue.concurrentPerform(iterations: threads) { i in flops[i] = swiftrain_peak_bf16_run(10_000_000) }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            samples.append(flops.reduce(0, +) / seconds / 1e9)
        }
        return samples.sorted()[samples.count / 2]
    }
}
