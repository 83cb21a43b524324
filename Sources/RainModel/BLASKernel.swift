import Foundation
import RainSupport

#if canImport(Glibc)
import Glibc
#endif

/// Getting the right OpenBLAS kernel on every CPU.
///
/// A DYNAMIC_ARCH OpenBLAS picks its kernel when it loads, and on a CPU newer than the library it
/// silently falls back to a generic one (Debian's 0.3.21 runs SSE3 "Prescott" kernels on recent
/// Xeons, 3–5× slower). The kernel can only be chosen before the library loads (`OPENBLAS_CORETYPE`),
/// so a process that finds a fallback re-executes itself once with the best kernel the CPU supports,
/// checks that kernel's numbers against a plain loop, and goes back if they are wrong. A user's own
/// `OPENBLAS_CORETYPE` always wins.
public enum BLASKernel {
    /// The instruction set an OpenBLAS x86-64 kernel's sgemm uses.
    public enum Level: Int, Comparable, Sendable {
        case sse, avx, avx2, avx512, avx512bf16
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    }

    /// OpenBLAS's x86-64 core names (lower-cased) by level.
    static let levels: [String: Level] = {
        var m: [String: Level] = [:]
        for n in [
            "prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "opteron", "opteron_sse3",
            "barcelona", "bobcat", "katmai", "coppermine", "northwood", "banias",
        ] { m[n] = .sse }
        for n in ["sandybridge", "bulldozer", "piledriver", "steamroller", "excavator"] { m[n] = .avx }
        for n in ["haswell", "zen"] { m[n] = .avx2 }
        m["skylakex"] = .avx512
        for n in ["cooperlake", "sapphirerapids"] { m[n] = .avx512bf16 }
        return m
    }()

    /// The kernel to ask OpenBLAS for, given the one it chose and the CPU's feature flags (as
    /// /proc/cpuinfo names them); nil to keep its choice (already as good, or not an x86-64 kernel).
    public static func choice(coreName: String, cpuFlags: Set<String>) -> String? {
        guard let current = levels[coreName.lowercased()] else { return nil }
        let best: (String, Level)?
        if cpuFlags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"]) {
            best = cpuFlags.contains("avx512_bf16") ? ("Cooperlake", .avx512bf16) : ("SkylakeX", .avx512)
        } else if cpuFlags.isSuperset(of: ["avx2", "fma"]) {
            best = ("Haswell", .avx2)
        } else if cpuFlags.contains("avx") {
            best = ("Sandybridge", .avx)
        } else {
            best = nil
        }
        guard let best, best.1 > current else { return nil }
        return best.0
    }

    /// The CPU's feature flags from /proc/cpuinfo (empty where there is none).
    public static func cpuFlags(_ cpuinfo: String? = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))
        -> Set<String>
    {
        guard let line = cpuinfo?.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
            let colon = line.firstIndex(of: ":")
        else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// What was decided at start-up, for logs: the kernel in use and why.
    nonisolated(unsafe) public private(set) static var note = ""

    /// Environment between a process and its re-executed self: "<asked for>:<OpenBLAS's own choice>",
    /// or "rejected:<name>" when the asked-for kernel failed its check.
    static let reexecKey = "SWIFTRAIN_BLAS_REEXEC"
    /// Test hook: act as if OpenBLAS had chosen this kernel (to exercise the re-execution anywhere).
    static let assumeKey = "SWIFTRAIN_BLAS_ASSUME_CORENAME"
    /// Fault hook: the re-executed process treats the kernel it asked for as failing its self-check
    /// (to exercise the way back to OpenBLAS's own choice, which no healthy library takes).
    static let failCheckKey = "SWIFTRAIN_BLAS_FAIL_CHECK"

    /// Call first thing in `main`: may replace the process (execv) with itself under a better kernel.
    public static func ensureBest() {
        let env = ProcessInfo.processInfo.environment
        let marker = env[reexecKey]
        if let marker, !marker.hasPrefix("rejected:") {
            let parts = marker.split(separator: ":").map(String.init)
            let picked = parts.count > 1 ? parts[1] : "?"
            if env[failCheckKey] == nil && selfCheck() {
                note = "OpenBLAS kernel \(BLAS.coreName) (SwiftRain's choice: OpenBLAS picked \(picked) on this CPU)"
                return
            }
            unsetenv("OPENBLAS_CORETYPE")
            setenv(reexecKey, "rejected:\(BLAS.coreName)", 1)
            reexec()
            note = "OpenBLAS kernel \(BLAS.coreName): \(parts[0]) failed its check and could not be undone"
            return
        }
        if let marker {
            note =
                "OpenBLAS kernel \(BLAS.coreName), OpenBLAS's own choice (OPENBLAS_CORETYPE=\(marker.dropFirst(9)) "
                + "gave wrong products in the self-check and was not used)"
            return
        }
        if let user = env["OPENBLAS_CORETYPE"] {
            note = "OpenBLAS kernel \(BLAS.coreName) (OPENBLAS_CORETYPE=\(user))"
            return
        }
        let picked = env[assumeKey] ?? BLAS.coreName
        guard let better = choice(coreName: picked, cpuFlags: cpuFlags()) else {
            note = "OpenBLAS kernel \(BLAS.coreName)"
            return
        }
        setenv("OPENBLAS_CORETYPE", better, 1)
        setenv(reexecKey, "\(better):\(picked)", 1)
        reexec()
        // execv failed: carry on with the fallback, and say so.
        unsetenv("OPENBLAS_CORETYPE")
        unsetenv(reexecKey)
        note =
            "OpenBLAS kernel \(BLAS.coreName) (could not re-execute to use \(better): set OPENBLAS_CORETYPE=\(better))"
    }

    private static func reexec() {
        let args = CommandLine.arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", args)  // returns only on failure
        for a in args { free(a) }
    }

    /// A product of awkward sizes through `BLAS.sgemm` against a plain loop in Double.
    public static func selfCheck() -> Bool {
        let m = 19, n = 23, k = 37
        var rng = SplitMix(5)
        let a = (0..<(m * k)).map { _ in Float(rng.uniform() * 2 - 1) }
        let b = (0..<(k * n)).map { _ in Float(rng.uniform() * 2 - 1) }
        var c = [Float](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    BLAS.sgemm(.no, .no, m: m, n: n, k: k, a: pa.baseAddress!, b: pb.baseAddress!, c: pc.baseAddress!)
                }
            }
        }
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k { s += Double(a[i * k + p]) * Double(b[p * n + j]) }
                if abs(Double(c[i * n + j]) - s) > 1e-4 { return false }
            }
        }
        return true
    }
}
