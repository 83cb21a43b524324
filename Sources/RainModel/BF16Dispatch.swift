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

    /// Who computes the bf16 products.
    public enum Backend: String, CaseIterable, Sendable {
        /// SwiftRain's kernels for every product.
        case own
        /// oneDNN's matmul primitive for every product.
        case onednn
        /// oneDNN for whole products, SwiftRain's kernels inside the fused forward's blocks (their operand
        /// packed once per pass): the faster of the two for each, measured on an AVX512_BF16 CPU (Zen 4).
        case mixed
    }

    /// SWIFTRAIN_BF16_BACKEND (own, onednn or mixed) if set, else the CPU's (`backend(cpuFlags:)`); tests set it.
    nonisolated(unsafe) public static var backend: Backend = {
        if let text = ProcessInfo.processInfo.environment["SWIFTRAIN_BF16_BACKEND"], let b = Backend(rawValue: text) {
            return b
        }
        return backend(cpuFlags: cpuFlags)
    }()

    /// The backend for a CPU: with AMX (Sapphire Rapids and later) oneDNN for everything, since only it uses
    /// the tile unit; with AVX512_BF16 alone the mix (oneDNN's brgemm is 11 % faster on the full model's
    /// products, SwiftRain's kernels level or faster on the small model's fused blocks).
    public static func backend(cpuFlags: Set<String>) -> Backend {
        cpuFlags.contains("amx_bf16") && cpuFlags.contains("amx_tile") ? .onednn : .mixed
    }

    /// One line for logs and `bench`: the backend, and what oneDNN runs on this CPU.
    public static var backendNote: String {
        let form = OneDNN.Form(
            transA: false, transB: false, m: 1536, n: 512, k: 400, lda: 400, ldb: 512, ldc: 512, accumulate: false)
        let impl = selected == .avx512bf16 ? OneDNN.implementation(of: form) ?? "none" : "not used"
        let what: String =
            switch backend {
            case .own: "SwiftRain's kernels"
            case .onednn: "oneDNN's matmul"
            case .mixed: "oneDNN's matmul for whole products, SwiftRain's kernels in fused blocks"
            }
        return "bf16 products: \(what) (backend \(backend.rawValue); oneDNN's implementation here: \(impl))"
    }

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
        BLAS.onPieces(batch.count) { one(batch[$0]) }
    }

    /// One product on this thread, by the process's backend (SwiftRain's kernels if oneDNN has none for it).
    static func one(_ p: Product) {
        if BF16Dispatch.backend != .own {
            let form = OneDNN.Form(
                transA: p.transA, transB: p.transB, m: p.m, n: p.n, k: p.k, lda: p.lda, ldb: p.ldb, ldc: p.ldc,
                accumulate: p.beta != 0)
            if p.beta == 0 || p.beta == 1, OneDNN.gemm(form, a: p.a, b: p.b, c: p.c) { return }
        }
        let ok = BF16.gemm(
            transA: p.transA, transB: p.transB, m: p.m, n: p.n, k: p.k, a: p.a, lda: p.lda, b: p.b, ldb: p.ldb,
            beta: p.beta, c: p.c, ldc: p.ldc)
        precondition(ok, "bf16 GEMM form not supported (Aᵀ·Bᵀ)")
    }
}
