import Foundation
import RainConfig
import RainSupport

/// Which bf16 kernel a CPU runs, from its /proc/cpuinfo flags, and the error for a CPU that has none.
///
/// bf16-mixed runs only where the CPU multiplies bfloat16 natively: an emulated run would be slower than
/// `precision: 32` and give nothing for it, so a CPU without the instructions is told so instead.
public enum BF16Dispatch {
    /// The flags each kernel needs, best first.
    public static let table: [(kernel: BF16.Kernel, flags: Set<String>)] = [
        (.avx512bf16, ["avx512f", "avx512bw", "avx512vl", "avx512_bf16"])
    ]

    /// The kernel for a CPU with these flags (`.none`: bf16-mixed cannot run there).
    public static func choice(cpuFlags: Set<String>) -> BF16.Kernel {
        table.first { cpuFlags.isSuperset(of: $0.flags) }?.kernel ?? .none
    }

    /// What the CPU lacks for the first (widest) kernel, in the table's order; empty when it has it all.
    public static func missing(cpuFlags: Set<String>) -> [String] {
        table[0].flags.subtracting(cpuFlags).sorted()
    }

    /// Test hook: flags (comma-separated) this process acts as if the CPU did not have.
    static let hideKey = "SWIFTRAIN_HIDE_CPU_FLAGS"

    /// The CPU's flags as this process goes by them: /proc/cpuinfo's, less those in SWIFTRAIN_HIDE_CPU_FLAGS.
    public static let cpuFlags: Set<String> = {
        let hidden = (ProcessInfo.processInfo.environment[hideKey] ?? "").split(separator: ",").map(String.init)
        return BLASKernel.cpuFlags().subtracting(hidden)
    }()

    /// The kernel this process uses, chosen once by the table (the C side never takes one the CPU cannot run).
    public static let selected: BF16.Kernel = BF16.force(choice(cpuFlags: cpuFlags))

    /// The precisions this CPU runs natively.
    public static var nativePrecisions: [Precision] {
        selected == .avx512bf16 ? [.fp32, .bf16Mixed] : [.fp32]
    }

    /// Throws when `precision` is bf16-mixed and this CPU has no bf16 kernel; `subject` names where it was asked for.
    public static func require(_ precision: Precision, subject: String = "precision") throws {
        guard precision == .bf16Mixed, selected != .avx512bf16 else { return }
        let lacking = missing(cpuFlags: cpuFlags)
        throw SwiftRainError(
            subject, "bf16-mixed needs bfloat16 dot-product instructions, and this CPU has none",
            expected: "a CPU with " + table[0].flags.sorted().joined(separator: ", ")
                + " (AMD Zen 4 or later, Intel Cooper Lake, Sapphire Rapids or later)",
            found: "this CPU lacks " + (lacking.isEmpty ? "them" : lacking.joined(separator: ", ")),
            hint: "use precision: 32 here (--precision 32), which is this CPU's fastest; bf16 is not emulated")
    }
}

/// A bfloat16 buffer (16-bit patterns), owned and zero-initialised.
final class BF16Buffer {
    let count: Int
    let pointer: UnsafeMutablePointer<UInt16>
    init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(1, count))
        pointer.initialize(repeating: 0, count: max(1, count))
    }
    deinit { pointer.deallocate() }
}

/// bf16 GEMMs with fp32 sums, C = beta·C + op(A)·op(B), on SwiftRain's threads.
enum BF16GEMM {
    struct Product {
        var transA = false, transB = false
        var m: Int, n: Int, k: Int
        var a: UnsafePointer<UInt16>, lda: Int
        var b: UnsafePointer<UInt16>, ldb: Int
        var beta: Float = 0
        var c: UnsafeMutablePointer<Float>, ldc: Int
    }

    /// Independent products, each computed whole by one thread (so its bits do not depend on the
    /// thread count), shared among `BLAS.threads` threads as `BLAS.sgemm(batch:)` shares them.
    static func run(batch: [Product]) {
        precondition(BF16Dispatch.selected != .none, "bf16 GEMM without a kernel: BF16Dispatch.require first")
        BLAS.onPieces(batch.count) { i in
            let p = batch[i]
            let ok = BF16.gemm(
                transA: p.transA, transB: p.transB, m: p.m, n: p.n, k: p.k, a: p.a, lda: p.lda, b: p.b, ldb: p.ldb,
                beta: p.beta, c: p.c, ldc: p.ldc)
            precondition(ok, "bf16 GEMM form not supported (Aᵀ·Bᵀ)")
        }
    }
}
