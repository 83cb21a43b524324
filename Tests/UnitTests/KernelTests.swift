import Foundation
import RainModel
import RainSupport
import XCTest

/// Distance in units in the last place: the number of floats between a and b (±0 count as one).
func ulps(_ a: Float, _ b: Float) -> Int {
    func ordered(_ x: Float) -> Int {
        let i = Int(Int32(bitPattern: x.bitPattern))
        return i < 0 ? -(i & 0x7fff_ffff) : i
    }
    return abs(ordered(a) - ordered(b))
}

/// The gate kernels (C, one body per instruction set) against float64 truth and the scalar loop.
final class GateKernelTests: XCTestCase {
    /// Every variant this CPU can run; baseline first.
    static var variants: [Gates.ISA] {
        let best = Gates.force(nil)
        return Gates.ISA.allCases.filter { $0.rawValue <= best.rawValue }
    }

    override func tearDown() { Gates.force(nil) }

    func testSigmoidAndTanhAreWithinTwoUlpOfTheTruthAndAgreeOnEveryVariant() {
        // Every 509th float in 0 < |x| < 120 (about 4.4 million values, both signs), then special values.
        var x: [Float] = []
        for bits in stride(from: UInt32(1), to: Float(120).bitPattern, by: 509) {
            x += [Float(bitPattern: bits), -Float(bitPattern: bits)]
        }
        x += [0, -0.0, .infinity, -.infinity, .nan, 88.72, 88.73, -103.9, -104, 0.625, -0.625, 9, 45]
        var baseline: ([Float], [Float])?
        for isa in Self.variants {
            XCTAssertEqual(Gates.force(isa), isa)
            var s = [Float](repeating: 0, count: x.count), t = s
            Gates.sigmoid(x, &s, count: x.count)
            Gates.tanh(x, &t, count: x.count)
            var worst = (sigmoid: 0, tanh: 0)
            for (j, v) in x.enumerated() where !v.isNaN {
                let st = Float(1 / (1 + Foundation.exp(-Double(v)))), tt = Float(Foundation.tanh(Double(v)))
                // Below −87.3 σ is subnormal: an absolute bound there, as for any float32 result.
                if st >= .leastNormalMagnitude {
                    worst.sigmoid = max(worst.sigmoid, ulps(s[j], st))
                } else {
                    XCTAssertLessThanOrEqual(abs(s[j] - st), .leastNormalMagnitude, "σ(\(v))")
                }
                worst.tanh = max(worst.tanh, ulps(t[j], tt))
            }
            XCTAssertLessThanOrEqual(worst.sigmoid, 2, "\(isa.name): σ")
            XCTAssertLessThanOrEqual(worst.tanh, 2, "\(isa.name): tanh")
            let n = x.count
            XCTAssertTrue(s[n - 9].isNaN && t[n - 9].isNaN, "NaN stays NaN")
            XCTAssertEqual([s[n - 13], s[n - 11], s[n - 10]], [0.5, 1, 0])
            XCTAssertEqual([t[n - 11], t[n - 10]], [1, -1])
            XCTAssertEqual(t[n - 12].sign, .minus, "tanh(−0) = −0")
            if let (bs, bt) = baseline {
                XCTAssertTrue(
                    zip(bs, s).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(isa.name) σ differs from SSE2")
                XCTAssertTrue(
                    zip(bt, t).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(isa.name) tanh differs from SSE2")
            } else {
                baseline = (s, t)
            }
        }
    }

    /// Random gate inputs, 2051 elements (an odd count: the vector loops' remainders run too).
    struct Case {
        let n = 2051
        var zi, zf, zg, zo, c0, wci, wcf, wco, dh, dc: [Float]
        init(seed: UInt64) {
            var rng = SplitMix(seed)
            func r(_ a: Float) -> [Float] { (0..<2051).map { _ in Float.random(in: -a...a, using: &rng) } }
            (zi, zf, zg, zo) = (r(6), r(6), r(6), r(6))
            (c0, wci, wcf, wco) = (r(3), r(0.5), r(0.5), r(0.5))
            (dh, dc) = (r(1), r(1))
        }
    }

    /// Buffers for the seven saved slots (i f g o c tc h) and the seven gradients (dz·4, gci gcf gco).
    final class Slots {
        let n: Int
        var v: [[Float]]
        init(_ n: Int, count: Int) {
            self.n = n
            v = [[Float]](repeating: [Float](repeating: 0, count: n), count: count)
        }
        /// Runs `body` with a pointer to each slot.
        func with<R>(_ body: ([UnsafeMutablePointer<Float>]) -> R) -> R {
            let p = v.map { a -> UnsafeMutablePointer<Float> in
                let q = UnsafeMutablePointer<Float>.allocate(capacity: n)
                q.initialize(from: a, count: n)
                return q
            }
            defer { p.forEach { $0.deallocate() } }
            let r = body(p)
            v = p.map { Array(UnsafeBufferPointer(start: $0, count: n)) }
            return r
        }
    }

    private func forward(_ k: Case) -> Slots {
        let s = Slots(k.n, count: 7)
        s.with { p in
            Gates.forward(
                count: k.n, Gates.Preactivations(zi: k.zi, zf: k.zf, zg: k.zg, zo: k.zo), c0: k.c0,
                Gates.Peepholes(wci: k.wci, wcf: k.wcf, wco: k.wco),
                into: Gates.State(i: p[0], f: p[1], g: p[2], o: p[3], c: p[4], tc: p[5], h: p[6]))
        }
        return s
    }

    /// Step by step: each σ and tanh within 2 ulp of the truth of its own float argument, and the
    /// products and sums exactly the float operations of the cell's formula.
    func testFusedForwardIsTheCellsFormulaOnEveryVariant() {
        let k = Case(seed: 11)
        func sig(_ a: Float) -> Float { Float(1 / (1 + Foundation.exp(-Double(a)))) }
        func th(_ a: Float) -> Float { Float(Foundation.tanh(Double(a))) }
        var first: [[Float]]?
        for isa in Self.variants {
            Gates.force(isa)
            let out = forward(k).v
            let (i, f, g, o, c, tc, h) = (out[0], out[1], out[2], out[3], out[4], out[5], out[6])
            var worst = 0
            for j in 0..<k.n {
                worst = max(worst, ulps(i[j], sig(k.zi[j] + k.wci[j] * k.c0[j])))
                worst = max(worst, ulps(f[j], sig(k.zf[j] + k.wcf[j] * k.c0[j])))
                worst = max(worst, ulps(g[j], th(k.zg[j])))
                XCTAssertEqual(c[j], f[j] * k.c0[j] + i[j] * g[j], "c[\(j)]")
                worst = max(worst, ulps(o[j], sig(k.zo[j] + k.wco[j] * c[j])))
                worst = max(worst, ulps(tc[j], th(c[j])))
                XCTAssertEqual(h[j], o[j] * tc[j], "h[\(j)]")
            }
            XCTAssertLessThanOrEqual(worst, 2, isa.name)
            if let first {
                XCTAssertEqual(first.map { $0.map(\.bitPattern) }, out.map { $0.map(\.bitPattern) }, isa.name)
            } else {
                first = out
            }
        }
    }

    /// The backward kernel has no transcendental function: it must give the scalar loop's bits.
    func testFusedBackwardEqualsTheScalarLoopBitForBit() {
        let k = Case(seed: 12)
        Gates.force(nil)
        let st = forward(k).v
        let (i, f, g, o, c, tc) = (st[0], st[1], st[2], st[3], st[4], st[5])
        // The loop SwiftRain ran before the kernels, as the oracle.
        var dc = k.dc, dz = [[Float]](repeating: [Float](repeating: 0, count: k.n), count: 4)
        var gp = [[Float]](repeating: [Float](repeating: 0.25, count: k.n), count: 3)
        for j in 0..<k.n {
            let dhv = k.dh[j]
            var dcv = dc[j] + dhv * o[j] * (1 - tc[j] * tc[j])
            let dzo = dhv * tc[j] * o[j] * (1 - o[j])
            dcv += dzo * k.wco[j]
            gp[2][j] += dzo * c[j]
            let dzi = dcv * g[j] * i[j] * (1 - i[j])
            let dzf = dcv * k.c0[j] * f[j] * (1 - f[j])
            let dzg = dcv * i[j] * (1 - g[j] * g[j])
            gp[0][j] += dzi * k.c0[j]
            gp[1][j] += dzf * k.c0[j]
            dc[j] = dcv * f[j] + dzi * k.wci[j] + dzf * k.wcf[j]
            (dz[0][j], dz[1][j], dz[2][j], dz[3][j]) = (dzi, dzf, dzg, dzo)
        }
        let expected = dz + gp + [dc]
        for isa in Self.variants {
            Gates.force(isa)
            let saved = Slots(k.n, count: 7), grads = Slots(k.n, count: 8)
            saved.v = st
            grads.v =
                [[Float]](repeating: [Float](repeating: 0, count: k.n), count: 4)
                + [[Float]](repeating: [Float](repeating: 0.25, count: k.n), count: 3) + [k.dc]
            saved.with { s in
                grads.with { d in
                    Gates.backward(
                        count: k.n, Gates.State(i: s[0], f: s[1], g: s[2], o: s[3], c: s[4], tc: s[5], h: s[6]),
                        c0: k.c0, Gates.Peepholes(wci: k.wci, wcf: k.wcf, wco: k.wco), dh: k.dh, dc: d[7],
                        Gates.Gradients(dzi: d[0], dzf: d[1], dzg: d[2], dzo: d[3], gci: d[4], gcf: d[5], gco: d[6]))
                }
            }
            XCTAssertEqual(
                grads.v.map { $0.map(\.bitPattern) }, expected.map { $0.map(\.bitPattern) },
                "\(isa.name): dz_i dz_f dz_g dz_o gci gcf gco dc")
        }
    }
}
