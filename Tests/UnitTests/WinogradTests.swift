import Foundation
import RainModel
import RainSupport
import XCTest

/// Winograd F(2×2, 3×3) and im2col against the convolution written out as a plain sum, forward and
/// every gradient, on random shapes (odd and even sizes, one-pixel planes, h₀ = 0).
final class WinogradTests: XCTestCase {
    struct Shape {
        let cin: Int, hidden: Int, m: Int, b: Int, h: Int, w: Int
        var c: Int { cin + hidden }
        var n: Int { b * h * w }
    }

    /// x[c][b][y][x] with zeros off the grid.
    private static func at(_ x: [Float], _ s: Shape, _ c: Int, _ b: Int, _ y: Int, _ xx: Int) -> Double {
        guard y >= 0, y < s.h, xx >= 0, xx < s.w else { return 0 }
        return Double(x[((c * s.b + b) * s.h + y) * s.w + xx])
    }

    func testBothAlgorithmsEqualThePlainSum() {
        var rng = SplitMix(2024)
        let shapes = [
            Shape(cin: 2, hidden: 3, m: 5, b: 2, h: 4, w: 7), Shape(cin: 1, hidden: 1, m: 1, b: 1, h: 1, w: 1),
            Shape(cin: 3, hidden: 2, m: 8, b: 3, h: 5, w: 3), Shape(cin: 0, hidden: 4, m: 4, b: 1, h: 8, w: 8),
            Shape(cin: 4, hidden: 6, m: 12, b: 2, h: 6, w: 10),
        ]
        for s in shapes {
            func r(_ count: Int) -> [Float] { (0..<count).map { _ in Float.random(in: -1...1, using: &rng) } }
            let x = r(s.c * s.n), wt = r(s.m * s.c * 9), bias = r(s.m), dOut = r(s.m * s.n)
            // The oracle: out = bias + Σ w·x; dW = Σ dOut·x; dBias = Σ dOut; dX = Σ w·dOut (h's channels).
            var out = [Double](repeating: 0, count: s.m * s.n), dW = [Double](repeating: 0, count: wt.count)
            var dX = [Double](repeating: 0, count: s.hidden * s.n)
            for o in 0..<s.m {
                for b in 0..<s.b {
                    for y in 0..<s.h {
                        for xx in 0..<s.w {
                            let j = o * s.n + (b * s.h + y) * s.w + xx
                            var sum = Double(bias[o])
                            for c in 0..<s.c {
                                for ky in 0..<3 {
                                    for kx in 0..<3 {
                                        let wi = (o * s.c + c) * 9 + ky * 3 + kx
                                        let v = Self.at(x, s, c, b, y + ky - 1, xx + kx - 1)
                                        sum += Double(wt[wi]) * v
                                        dW[wi] += Double(dOut[j]) * v
                                        let (sy, sx) = (y + ky - 1, xx + kx - 1)
                                        if c >= s.cin, sy >= 0, sy < s.h, sx >= 0, sx < s.w {
                                            dX[((c - s.cin) * s.b + b) * s.h * s.w + sy * s.w + sx] +=
                                                Double(wt[wi]) * Double(dOut[j])
                                        }
                                    }
                                }
                            }
                            out[j] = sum
                        }
                    }
                }
            }
            let dBias = (0..<s.m).map { o in (0..<s.n).reduce(0.0) { $0 + Double(dOut[o * s.n + $1]) } }
            for algorithm in ConvAlgorithm.allCases {
                let what = "\(algorithm) \(s)"
                let conv = GateConvolution(
                    algorithm: algorithm, outputs: s.m, inputs: s.cin, hidden: s.hidden, batch: s.b, height: s.h,
                    width: s.w)
                var got = [Float](repeating: .nan, count: s.m * s.n), gW = [Float](repeating: 0.5, count: wt.count)
                var gB = [Float](repeating: 0.5, count: s.m), gX = [Float](repeating: 0.5, count: s.hidden * s.n)
                x.withUnsafeBufferPointer { xp in
                    let source: Conv3x3.PlaneSource = { c, b in xp.baseAddress! + (c * s.b + b) * s.h * s.w }
                    wt.withUnsafeBufferPointer { conv.prepare(weights: $0.baseAddress!) }
                    conv.forward(source: source, bias: bias, out: &got)
                    conv.beginBackward()
                    gX.withUnsafeMutableBufferPointer { buffer in
                        let gp = buffer.baseAddress!
                        conv.backward(
                            source: source, dOut: dOut, dWeight: &gW, dBias: &gB,
                            grad: { c, b in gp + ((c - s.cin) * s.b + b) * s.h * s.w })
                    }
                    conv.finishBackward(weightGradient: &gW)
                }
                // Gradients were added to 0.5 everywhere.
                expectClose(got, out, what + " forward")
                expectClose(gW.map { $0 - 0.5 }, dW, what + " dW")
                expectClose(gB.map { $0 - 0.5 }, dBias, what + " dBias")
                expectClose(gX.map { $0 - 0.5 }, dX, what + " dX")
            }
        }
    }

    /// max |ours − truth| ≤ 2e-6 · max(1, max |truth|) · √terms: float32 sums of up to 9·C·N products.
    private func expectClose(_ ours: [Float], _ truth: [Double], _ what: String) {
        XCTAssertEqual(ours.count, truth.count, what)
        let scale = max(1, truth.map(abs).max() ?? 0)
        let err = zip(ours, truth).map { abs(Double($0) - $1) }.max() ?? .infinity
        XCTAssertLessThanOrEqual(err, 2e-6 * scale * Double(max(4, truth.count)).squareRoot(), what)
    }

    /// An input with no gradient wanted (the first time step) leaves the planes alone.
    func testNoInputGradientWhenNoneIsAsked() {
        let s = Shape(cin: 1, hidden: 2, m: 3, b: 1, h: 4, w: 4)
        let x = (0..<(s.c * s.n)).map { Float($0 % 5) }, wt = [Float](repeating: 0.1, count: s.m * s.c * 9)
        for algorithm in ConvAlgorithm.allCases {
            let conv = GateConvolution(
                algorithm: algorithm, outputs: s.m, inputs: s.cin, hidden: s.hidden, batch: s.b, height: s.h, width: s.w
            )
            var out = [Float](repeating: 0, count: s.m * s.n), gW = [Float](repeating: 0, count: wt.count)
            var gB = [Float](repeating: 0, count: s.m)
            x.withUnsafeBufferPointer { xp in
                let source: Conv3x3.PlaneSource = { c, b in c < s.cin ? xp.baseAddress! + c * s.n : nil }
                wt.withUnsafeBufferPointer { conv.prepare(weights: $0.baseAddress!) }
                conv.forward(source: source, bias: [0, 0, 0], out: &out)
                conv.beginBackward()
                conv.backward(source: source, dOut: out, dWeight: &gW, dBias: &gB, grad: nil)
                conv.finishBackward(weightGradient: &gW)
            }
            // Zero h planes: the weights that read them get no gradient, the data's weights do.
            for o in 0..<s.m {
                XCTAssertTrue((9..<27).allSatisfy { gW[o * 27 + $0] == 0 }, "\(algorithm): h's weights")
                XCTAssertTrue((0..<9).contains { gW[o * 27 + $0] != 0 }, "\(algorithm): the data's weights")
            }
        }
    }
}
