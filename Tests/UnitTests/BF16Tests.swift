import Foundation
import RainConfig
import RainModel
import RainSupport
import XCTest

/// The bf16 kernels held to oracles written here: rounding to nearest even decided by exact distances
/// in Double, GEMMs against a Double sum of the rounded operands with the fp32-accumulation bound, the
/// bf16 transforms against the fp32 transforms rounded, and the dispatch table against cpuinfo flags.
final class BF16Tests: XCTestCase {
    override func tearDown() { BF16.force(nil) }

    /// bf16-mixed runs only on CPUs with the instructions (it is never emulated): elsewhere these cannot run.
    private func requireBF16() throws {
        guard BF16Dispatch.selected == .avx512bf16 else {
            throw XCTSkip("this CPU has no AVX512_BF16 (\(BF16Dispatch.missing(cpuFlags: BF16Dispatch.cpuFlags)))")
        }
    }

    /// The nearest bfloat16 to x by exact distance (ties to the even pattern); subnormals flush to ±0.
    static func nearest(_ x: Float) -> UInt16 {
        if x.isNaN { return 0x7FC0 }
        if x.isSubnormal || x == 0 { return x.sign == .minus ? 0x8000 : 0 }
        let down = UInt16(x.bitPattern >> 16)  // toward zero
        let up = down &+ 1
        let dd = abs(Double(x) - Double(BF16.float(down)))
        // One step away from zero; past the largest finite value that step is 2¹²⁸ (IEEE rounds to infinity
        // from the midpoint between the largest finite value and 2¹²⁸ on).
        let upValue = Double(BF16.float(up))
        let du = upValue.isInfinite ? 0x1p128 - abs(Double(x)) : abs(upValue - Double(x))
        if dd < du { return down }
        if du < dd { return up }
        return down & 1 == 0 ? down : up
    }

    func testConversionRoundsToNearestEven() {
        var rng = SplitMix(11)
        var values: [Float] = [
            0, -0, 1, -1, 1 + 1 / 256, 1 + 3 / 256, 1 + 1 / 512, 1 + 3 / 512, 1 + 1 / 512 + 1 / 4096, .infinity,
            -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNormalMagnitude,
            .leastNonzeroMagnitude, -.leastNonzeroMagnitude, 3.3895314e38, 65504, 1e-38,
        ]
        for _ in 0..<20_000 {
            values.append(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())))
        }
        // The scalar path (one value) and the vector path (16 at a time) both.
        var out = [UInt16](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { BF16.convert($0.baseAddress!, &out, count: values.count) }
        for (i, x) in values.enumerated() {
            if x.isNaN {
                XCTAssertTrue(BF16.float(out[i]).isNaN && BF16.float(BF16.round(x)).isNaN, "NaN \(x.bitPattern)")
                continue
            }
            let want = Self.nearest(x)
            XCTAssertEqual(BF16.round(x), want, "scalar \(x) (\(String(x.bitPattern, radix: 16)))")
            XCTAssertEqual(out[i], want, "vector \(x) (\(String(x.bitPattern, radix: 16)))")
        }
    }

    /// Every form on awkward shapes (odd k, edges of every register tile and cache block, beta 0 and 1; A·Bᵀ
    /// both as dot products, long k, and on packed panels, several k blocks)
    /// against Σ in Double of the rounded operands: the products of two bfloat16 are exact in fp32, so
    /// the only error is fp32 accumulation, |err| ≤ γ_k Σ|a·b| with γ_k = k·2⁻²⁴ / (1 − k·2⁻²⁴).
    func testGEMMFormsAgainstTheRoundedOperandsSummedInDouble() throws {
        var kernels: [BF16.Kernel] = [.reference]
        if BF16Dispatch.selected == .avx512bf16 { kernels.append(.avx512bf16) }
        var rng = SplitMix(29)
        let shapes: [(m: Int, n: Int, k: Int)] = [
            (1, 1, 1), (1, 1, 2), (3, 5, 7), (8, 48, 2), (9, 49, 33), (17, 97, 48), (16, 17, 515),
            (7, 1600, 9), (24, 50, 1100), (13, 3, 2049), (100, 90, 701),
        ]
        // nil: oneDNN's matmul (the other backend), held to the same oracle.
        for kernel in kernels.map(Optional.some) + (BF16Dispatch.selected == .avx512bf16 ? [nil] : []) {
            if let kernel { XCTAssertEqual(BF16.force(kernel), kernel) }
            for s in shapes {
                for (transA, transB) in [(false, false), (true, false), (false, true)] {
                    for beta: Float in [0, 1] {
                        try checkGEMM(
                            s.m, s.n, s.k, transA, transB, beta, &rng,
                            "\(kernel.map { "\($0)" } ?? "oneDNN") \(s) "
                                + "\(transA) \(transB)", oneDNN: kernel == nil)
                    }
                }
            }
        }
    }

    private func checkGEMM(
        _ m: Int, _ n: Int, _ k: Int, _ transA: Bool, _ transB: Bool, _ beta: Float, _ rng: inout SplitMix,
        _ what: String, oneDNN: Bool = false
    ) throws {
        let a = (0..<(m * k)).map { _ in BF16.round(Float(rng.uniform() * 4 - 2)) }
        let b = (0..<(k * n)).map { _ in BF16.round(Float(rng.uniform() * 4 - 2)) }
        let c0 = (0..<(m * n)).map { _ in Float(rng.uniform() * 2 - 1) }
        // Leading dimensions one wider than needed, so a kernel that assumes dense rows fails.
        let lda = (transA ? m : k) + 1, ldb = (transB ? k : n) + 1, ldc = n + 2
        var ap = [UInt16](repeating: 0x7FC0, count: (transA ? k : m) * lda)  // NaN in the gaps
        var bp = [UInt16](repeating: 0x7FC0, count: (transB ? n : k) * ldb)
        for i in 0..<m { for p in 0..<k { ap[transA ? p * lda + i : i * lda + p] = a[i * k + p] } }
        for p in 0..<k { for j in 0..<n { bp[transB ? j * ldb + p : p * ldb + j] = b[p * n + j] } }
        var c = [Float](repeating: .nan, count: m * ldc)
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] = c0[i * n + j] } }
        let ok =
            oneDNN
            ? OneDNN.gemm(
                OneDNN.Form(
                    transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc,
                    accumulate: beta != 0),
                a: ap, b: bp, c: &c)
            : BF16.gemm(
                transA: transA, transB: transB, m: m, n: n, k: k, a: ap, lda: lda, b: bp, ldb: ldb, beta: beta, c: &c,
                ldc: ldc)
        XCTAssertTrue(ok, what)
        let u = 1.0 / Double(1 << 24), gamma = Double(k + 1) * u / (1 - Double(k + 1) * u)
        for i in 0..<m {
            for j in 0..<n {
                var sum = beta == 0 ? 0 : Double(c0[i * n + j]), mag = abs(sum)
                for p in 0..<k {
                    let x = Double(BF16.float(a[i * k + p])) * Double(BF16.float(b[p * n + j]))
                    sum += x
                    mag += abs(x)
                }
                let got = Double(c[i * ldc + j])
                XCTAssertLessThanOrEqual(abs(got - sum), gamma * mag + 1e-30, "\(what) (\(i), \(j))")
                if abs(got - sum) > gamma * mag + 1e-30 { return }
            }
            // Columns past n are never written.
            XCTAssertTrue(c[i * ldc + n].isNaN && c[i * ldc + n + 1].isNaN, "\(what): wrote past n")
        }
    }

    /// The bf16 transforms write the fp32 transforms' values rounded to nearest even, bit for bit.
    func testBF16TransformsAreTheFP32TransformsRounded() throws {
        try requireBF16()
        var rng = SplitMix(31)
        for (c, b, h, w) in [(3, 2, 5, 7), (2, 1, 32, 64), (1, 3, 1, 1), (4, 1, 6, 33), (2, 2, 9, 40)] {
            let t = b * ((h + 1) / 2) * ((w + 1) / 2), n = b * h * w
            let x = (0..<(c * n)).map { _ in Float(rng.uniform() * 8 - 4) }
            let xp = UnsafeMutablePointer<Float>.allocate(capacity: x.count)
            defer { xp.deallocate() }
            xp.initialize(from: x, count: x.count)
            let planes: [UnsafePointer<Float>?] = (0..<(c * b)).map { i in
                i % 3 == 2 ? nil : UnsafePointer(xp + i * h * w)
            }
            var v32 = [Float](repeating: 0, count: 16 * c * t), v16 = [UInt16](repeating: 0, count: 16 * c * t)
            WinogradTransforms.input(channels: c, batch: b, height: h, width: w, planes: planes, into: &v32, 0..<c)
            WinogradTransforms.inputBF16(channels: c, batch: b, height: h, width: w, planes: planes, into: &v16, 0..<c)
            XCTAssertEqual(v16, v32.map(BF16.round), "input \(c) \(b) \(h)×\(w)")
            var m32 = [Float](repeating: 0, count: 16 * c * t), m16 = [UInt16](repeating: 0, count: 16 * c * t)
            WinogradTransforms.outputAdjoint(rows: c, batch: b, height: h, width: w, dz: x, into: &m32, 0..<c)
            WinogradTransforms.outputAdjointBF16(rows: c, batch: b, height: h, width: w, dz: x, into: &m16, 0..<c)
            XCTAssertEqual(m16, m32.map(BF16.round), "output adjoint \(c) \(b) \(h)×\(w)")
        }
    }

    /// The dispatch table: cpuinfo flags → kernel, and what a CPU without it lacks.
    func testDispatchTableFromCPUFlags() {
        let zen4: Set<String> = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_bf16"]
        XCTAssertEqual(BF16Dispatch.choice(cpuFlags: zen4), .avx512bf16)
        XCTAssertEqual(BF16Dispatch.choice(cpuFlags: zen4.union(["amx_bf16", "amx_tile"])), .avx512bf16)
        let skylake = zen4.subtracting(["avx512_bf16"])
        XCTAssertEqual(BF16Dispatch.choice(cpuFlags: skylake), BF16.Kernel.none)
        XCTAssertEqual(BF16Dispatch.missing(cpuFlags: skylake), ["avx512_bf16"])
        XCTAssertEqual(BF16Dispatch.choice(cpuFlags: ["avx2", "fma"]), BF16.Kernel.none)
        XCTAssertEqual(
            BF16Dispatch.missing(cpuFlags: ["avx2"]), ["avx512_bf16", "avx512bw", "avx512f", "avx512vl"])
        // The backend: oneDNN wherever there is AMX (only it uses the tiles), the mix on AVX512_BF16 alone.
        XCTAssertEqual(BF16Dispatch.backend(cpuFlags: zen4), .mixed)
        XCTAssertEqual(BF16Dispatch.backend(cpuFlags: zen4.union(["amx_bf16", "amx_tile"])), .onednn)
        // This machine: the table's choice from /proc/cpuinfo is what the C side detects for itself.
        let fromFlags = BF16Dispatch.choice(cpuFlags: BLASKernel.cpuFlags())
        XCTAssertEqual(BF16.force(.avx512bf16), fromFlags)
    }

    /// A bf16 training step gives the same bits on 1, 2 and 3 threads (products whole per thread), with each
    /// backend (the fused forward's path included: 9 × 14 planes fit its blocks).
    func testBF16StepBitsDoNotDependOnThreads() throws {
        try requireBF16()
        let shape = ModelShape(cin: 5, hidden: 12, head: 4, height: 9, width: 14, relu: true)
        let (b, s) = (3, 3)
        var rng = SplitMix(41)
        let x = (0..<(b * s * shape.cin * shape.plane)).map { _ in Float(rng.uniform() * 2 - 1) }
        let target = (0..<(b * shape.plane)).map { _ in Float(rng.uniform()) }
        let peepholes = (0..<(3 * shape.hidden * shape.plane)).map { _ in Float(rng.uniform() * 0.2 - 0.1) }
        let before = BLAS.threads, backend = BF16Dispatch.backend
        defer { (BLAS.threads, BF16Dispatch.backend) = (before, backend) }
        for kind in BF16Dispatch.Backend.allCases {
            BF16Dispatch.backend = kind
            try stepBits(shape, b, s, x, target, peepholes, "backend \(kind)")
        }
    }

    private func stepBits(
        _ shape: ModelShape, _ b: Int, _ s: Int, _ x: [Float], _ target: [Float], _ peepholes: [Float], _ what: String
    ) throws {
        var results: [[Float]] = []
        for threads in [1, 2, 3] {
            BLAS.threads = threads
            let model = ConvLSTMForecaster(shape: shape, batch: b, steps: s, precision: .bf16Mixed)
            let p = FlatBuffer.initialParameters(model.layout, seed: 3), g = FlatBuffer(count: model.layout.count)
            for (k, e) in model.layout.entries.filter({ $0.name.hasPrefix("Wc") }).enumerated() {
                for i in 0..<e.count { p[e][i] = peepholes[k * e.count + i] }
            }
            x.withUnsafeBufferPointer { xp in
                model.forward(params: p, input: xp.baseAddress!)
                _ = target.withUnsafeBufferPointer { model.loss(target: $0.baseAddress!) }
                model.backward(params: p, grads: g, input: xp.baseAddress!)
            }
            results.append(model.output.values + g.values)
        }
        XCTAssertFalse(results[0].contains { $0.isNaN }, what)
        XCTAssertEqual(results[0].map(\.bitPattern), results[1].map(\.bitPattern), "\(what): 1 vs 2 threads")
        XCTAssertEqual(results[0].map(\.bitPattern), results[2].map(\.bitPattern), "\(what): 1 vs 3 threads")
    }

    /// bf16-mixed against PyTorch's fixture, with the tolerances `check-gradients` states and derives.
    func testBF16MatchesThePyTorchFixtureWithinItsTolerances() throws {
        try requireBF16()
        let rows = try CheckGradients.run(fixture: ModelTests.fixture, precision: .bf16Mixed)
        XCTAssertGreaterThan(rows.count, 20)
        for r in rows { XCTAssertTrue(r.ok, "\(r.tensor): \(r.relative) > \(r.tolerance)") }
        // And it is bf16: the output is not within fp32's tolerance (the operands really were rounded).
        let output = try XCTUnwrap(rows.first { $0.tensor == "output" })
        XCTAssertGreaterThan(output.relative, CheckGradients.forwardTolerance)
    }
}
