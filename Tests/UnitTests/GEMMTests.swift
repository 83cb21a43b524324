import Foundation
import RainEvaluation
import RainModel
import RainSupport
import XCTest

/// `BLAS.sgemm` cuts products into pieces fixed by the shape: the same bits for any thread count,
/// and the right values (checked against a plain double-precision loop written here).
final class GEMMTests: XCTestCase {
    override func tearDown() { BLAS.threads = 1 }

    struct Case {
        var ta: BLAS.Transpose, tb: BLAS.Transpose
        var m: Int, n: Int, k: Int
        var alpha: Float = 1, beta: Float = 0
        var expect: GEMMPlan.Split
    }

    /// Shapes of the model's products that take each kind of cut (and the uncut one).
    static let cases: [Case] = [
        Case(ta: .no, tb: .no, m: 40, n: 2000, k: 300, expect: .columns),  // a convolution: wide output
        Case(ta: .yes, tb: .no, m: 1700, n: 40, k: 300, beta: 0.5, expect: .rows),  // tall output
        Case(ta: .no, tb: .yes, m: 24, n: 30, k: 40000, alpha: 0.5, beta: 1, expect: .inner),  // a weight gradient
        Case(ta: .yes, tb: .yes, m: 7, n: 9, k: 11, expect: .none),
    ]

    func testEveryKindOfCutGivesTheSameBitsForAnyThreadCount() {
        var rng = SplitMix(11)
        for c in Self.cases {
            XCTAssertEqual(GEMMPlan(m: c.m, n: c.n, k: c.k).split, c.expect, "\(c.m)×\(c.n)×\(c.k)")
            let a = (0..<(c.m * c.k)).map { _ in Float.random(in: -1...1, using: &rng) }
            let b = (0..<(c.k * c.n)).map { _ in Float.random(in: -1...1, using: &rng) }
            let c0 = (0..<(c.m * c.n)).map { _ in Float.random(in: -1...1, using: &rng) }
            func product(threads: Int) -> [Float] {
                BLAS.threads = threads
                var out = c0
                BLAS.sgemm(c.ta, c.tb, m: c.m, n: c.n, k: c.k, alpha: c.alpha, a: a, b: b, beta: c.beta, c: &out)
                return out
            }
            let one = product(threads: 1)
            for t in [2, 3, 4, 7] {
                XCTAssertTrue(product(threads: t) == one, "\(c.expect): \(t) threads changed the bits")
            }
            // The oracle: op(A)[i][p] and op(B)[p][j] read straight from row-major storage, summed in Double.
            var worst = 0.0
            for i in 0..<c.m {
                for j in 0..<c.n {
                    var s = 0.0
                    for p in 0..<c.k {
                        let x = c.ta == .no ? a[i * c.k + p] : a[p * c.m + i]
                        let y = c.tb == .no ? b[p * c.n + j] : b[j * c.k + p]
                        s += Double(x) * Double(y)
                    }
                    let want = Double(c.alpha) * s + Double(c.beta) * Double(c0[i * c.n + j])
                    worst = max(worst, abs(Double(one[i * c.n + j]) - want))
                }
            }
            // Float32 sums of k products of magnitude ≤ 1 are off by far less than k·1e-6.
            XCTAssertLessThan(worst, 1e-6 * Double(c.k), "\(c.expect): max error \(worst)")
        }
    }

    /// beta = 0 ignores whatever C held (NaN included), as BLAS defines it, in every kind of cut.
    func testBetaZeroOverwrites() {
        for c in Self.cases {
            let a = [Float](repeating: 1, count: c.m * c.k), b = [Float](repeating: 1, count: c.k * c.n)
            var out = [Float](repeating: .nan, count: c.m * c.n)
            BLAS.threads = 2
            BLAS.sgemm(c.ta, c.tb, m: c.m, n: c.n, k: c.k, a: a, b: b, c: &out)
            XCTAssertTrue(out.allSatisfy { $0 == Float(c.k) }, "\(c.expect)")
        }
    }

    func testPlansCoverTheirDimensionInEvenAlignedPieces() {
        for (m, n, k) in [
            (1536, 2048, 3600), (1536, 3600, 2048), (3600, 8192, 1536), (128, 65536, 432), (128, 432, 65536),
            (32, 2048, 384), (1, 8192, 16), (5, 5, 5), (3000, 17, 3000),
        ] {
            let p = GEMMPlan(m: m, n: n, k: k)
            let dim = [.columns: n, .rows: m, .inner: k, .none: n][p.split]!
            XCTAssertEqual(p.bounds.first, 0)
            XCTAssertEqual(p.bounds.last, dim, "\(m)×\(n)×\(k)")
            XCTAssertTrue(zip(p.bounds, p.bounds.dropFirst()).allSatisfy { $0 < $1 }, "\(p.bounds)")
            XCTAssertTrue(p.bounds.dropLast().allSatisfy { $0 % GEMMPlan.alignment == 0 }, "\(p.bounds)")
            XCTAssertTrue([1, 2, 4, 6, 8, 12, 16, 24, 32].contains(p.pieces), "\(m)×\(n)×\(k): \(p.pieces) pieces")
            XCTAssertEqual(p.split == .none, p.pieces == 1)
        }
        // The paper's model at one sample: the convolution is cut (threads have work), but into few
        // pieces (each re-packs the 22 MB weight).
        let conv = GEMMPlan(m: 1536, n: 2048, k: 3600)
        XCTAssertEqual(conv.split, .columns)
        XCTAssertTrue((2...4).contains(conv.pieces), "\(conv.pieces)")
    }

    /// A whole training step (forward, loss, backward through time, Adam) of a small ConvLSTM gives
    /// the same gradient and parameter bits on 1, 2 and 3 threads.
    func testTrainingStepIsThreadCountInvariant() {
        let shape = ModelShape(cin: 5, hidden: 12, head: 6, height: 16, width: 32, relu: false)
        let batch = 3, steps = 4
        var rng = SplitMix(3)
        let x = (0..<(batch * steps * shape.cin * shape.plane)).map { _ in Float.random(in: -1...1, using: &rng) }
        let target = (0..<(batch * shape.plane)).map { _ in Float.random(in: 0...1, using: &rng) }
        func step(threads: Int) -> (grads: [Float], params: [Float], loss: Double) {
            BLAS.threads = threads
            let model = ConvLSTMForecaster(shape: shape, batch: batch, steps: steps)
            let p = FlatBuffer.initialParameters(model.layout, seed: 9), g = FlatBuffer(count: model.layout.count)
            let m = FlatBuffer(count: p.count), v = FlatBuffer(count: p.count)
            var adam = Adam(lr: 1e-3)
            var loss = 0.0
            for _ in 0..<2 {
                g.zero()
                model.forward(params: p, input: x)
                loss = model.loss(target: target)
                model.backward(params: p, grads: g, input: x)
                adam.update(params: p, grads: g, m: m, v: v)
            }
            return (g.values, p.values, loss)
        }
        let one = step(threads: 1)
        XCTAssertTrue(one.grads.contains { $0 != 0 } && one.loss.isFinite)
        for t in [2, 3] {
            let other = step(threads: t)
            XCTAssertTrue(other.grads == one.grads, "\(t) threads: gradients differ")
            XCTAssertTrue(other.params == one.params, "\(t) threads: parameters differ")
            XCTAssertEqual(other.loss.bitPattern, one.loss.bitPattern)
        }
    }
}
