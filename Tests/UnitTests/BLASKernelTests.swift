import RainModel
import XCTest

/// Which OpenBLAS kernel SwiftRain asks for, from what OpenBLAS chose and what the CPU supports.
final class BLASKernelTests: XCTestCase {
    let avx512: Set<String> = ["sse3", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq"]

    func testChoiceTable() {
        let cases: [(core: String, flags: Set<String>, expect: String?, why: String)] = [
            ("Prescott", avx512.union(["avx512_bf16"]), "Cooperlake", "the issue's Xeon: SSE3 fallback on BF16"),
            ("Prescott", avx512, "SkylakeX", "AVX-512 without BF16"),
            ("Prescott", ["avx", "avx2", "fma"], "Haswell", "AVX2 + FMA"),
            ("Prescott", ["avx", "avx2"], "Sandybridge", "AVX2 without FMA is not Haswell's kernel"),
            ("Prescott", ["sse3", "ssse3"], nil, "nothing better to ask for"),
            ("Nehalem", ["avx"], "Sandybridge", "any SSE kernel is a fallback"),
            ("Sandybridge", ["avx", "avx2", "fma"], "Haswell", "an older AVX kernel on an AVX2 CPU"),
            ("Haswell", ["avx", "avx2", "fma"], nil, "already the best"),
            ("Zen", ["avx", "avx2", "fma"], nil, "Zen's kernel is AVX2"),
            ("Cooperlake", avx512.union(["avx512_bf16"]), nil, "already the best"),
            ("SkylakeX", avx512.union(["avx512_bf16"]), "Cooperlake", "BF16 available"),
            ("SapphireRapids", avx512.union(["avx512_bf16"]), nil, "never downgraded"),
            ("NEOVERSEN1", [], nil, "not an x86-64 kernel: left alone"),
            ("haswell", avx512, "SkylakeX", "names compared case-insensitively"),
        ]
        for c in cases {
            XCTAssertEqual(BLASKernel.choice(coreName: c.core, cpuFlags: c.flags), c.expect, "\(c.core): \(c.why)")
        }
    }

    func testFlagsFromCpuinfo() {
        let cpuinfo = """
            processor\t: 0
            vendor_id\t: GenuineIntel
            flags\t\t: fpu sse3 avx avx2 fma avx512f avx512_bf16
            bugs\t\t: spectre_v1

            processor\t: 1
            flags\t\t: fpu
            """
        XCTAssertEqual(BLASKernel.cpuFlags(cpuinfo), ["fpu", "sse3", "avx", "avx2", "fma", "avx512f", "avx512_bf16"])
        XCTAssertEqual(BLASKernel.cpuFlags(nil), [])
    }

    func testSelfCheckPassesOnTheKernelInUse() { XCTAssertTrue(BLASKernel.selfCheck()) }
}
