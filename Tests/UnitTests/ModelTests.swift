import Foundation
import RainModel
import RainSupport
import XCTest

final class ModelTests: XCTestCase {
    static var fixture: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../../shared/fixtures/convlstm-small"
        ).standardized.path
    }

    /// PyTorch's own numbers (shared/fixtures/convlstm-small, computed in float64 from float32 values),
    /// read and compared here, not by `check-gradients`: lat weights, output and loss to 1e-5, every
    /// gradient to 1e-4, and each of two Adam updates (after − before) to 2e-3, all relative to the
    /// reference tensor's largest magnitude. (Float32 compute deviates ~1e-6 relative; an Adam update
    /// is ~5e-5 on parameters ~0.1, so float32 rounding of the parameter is ~1.5e-4 of the update.)
    func testMatchesPyTorchFixtureWinograd() throws { try matchesPyTorchFixture(.winograd) }
    func testMatchesPyTorchFixtureDirect() throws { try matchesPyTorchFixture(.direct) }

    private func matchesPyTorchFixture(_ algorithm: ConvAlgorithm) throws {
        let dir = URL(fileURLWithPath: Self.fixture)
        let manifest = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("manifest.json")))
                as? [String: Any])
        let config = try XCTUnwrap(manifest["config"] as? [String: Any])
        let tensors = try XCTUnwrap(manifest["tensors"] as? [String: [String: Any]])
        func int(_ k: String) throws -> Int { try XCTUnwrap(config[k] as? Int, k) }
        func read(_ name: String) throws -> [Float] {
            let t = try XCTUnwrap(tensors[name], name)
            let d = try Data(contentsOf: dir.appendingPathComponent(try XCTUnwrap(t["file"] as? String)))
            let shape = try XCTUnwrap(t["shape"] as? [Int])
            XCTAssertEqual(d.count, 4 * shape.reduce(1, *), name)
            return d.withUnsafeBytes { raw in
                (0..<(d.count / 4)).map {
                    Float(bitPattern: raw.load(fromByteOffset: 4 * $0, as: UInt32.self).littleEndian)
                }
            }
        }
        /// max |ours − ref| / max |ref|, asserted ≤ `tolerance`; the reference must not be all zeros.
        func expectClose(_ ours: [Float], _ ref: [Float], _ tolerance: Double, _ what: String) {
            XCTAssertEqual(ours.count, ref.count, what)
            let scale = ref.map { abs(Double($0)) }.max() ?? 0
            let err = zip(ours, ref).map { abs(Double($0) - Double($1)) }.max() ?? .infinity
            XCTAssertGreaterThan(scale, 0, "\(what): the reference is all zeros")
            XCTAssertLessThanOrEqual(err / scale, tolerance, "\(what): max error \(err), scale \(scale)")
        }
        let (b, s) = (try int("B"), try int("S"))
        let shape = ModelShape(
            cin: try int("Cin"), hidden: try int("F"), head: try int("F2"), height: try int("H"),
            width: try int("W"), relu: try XCTUnwrap(config["relu"] as? Bool))
        let model = ConvLSTMForecaster(shape: shape, batch: b, steps: s, algorithm: algorithm)
        XCTAssertEqual(model.algorithm, algorithm)
        let l = model.layout
        XCTAssertEqual(l.entries.map(\.name), manifest["param_order"] as? [String])
        func parameters(_ prefix: String) throws -> FlatBuffer {
            let p = FlatBuffer(count: l.count)
            for e in l.entries {
                let v = try read(prefix + e.name)
                XCTAssertEqual(v.count, e.count, e.name)
                for i in 0..<min(v.count, e.count) { p[e][i] = v[i] }
            }
            return p
        }
        let params = try parameters("param."), grads = FlatBuffer(count: l.count)
        let x = try read("input"), target = try read("target")
        XCTAssertEqual(x.count, b * s * shape.cin * shape.plane)
        func step() -> Double {
            x.withUnsafeBufferPointer { xp in
                model.forward(params: params, input: xp.baseAddress!)
                let loss = target.withUnsafeBufferPointer { model.loss(target: $0.baseAddress!) }
                model.backward(params: params, grads: grads, input: xp.baseAddress!)
                return loss
            }
        }
        let loss = step()
        expectClose(model.latWeights, try read("lat_weights"), 1e-5, "lat_weights")
        expectClose(model.output.values, try read("output"), 1e-5, "output")
        let refLoss = try XCTUnwrap(manifest["loss"] as? Double)
        XCTAssertLessThanOrEqual(abs(loss - refLoss) / refLoss, 1e-5, "loss \(loss), PyTorch \(refLoss)")
        for e in l.entries { expectClose(Array(grads[e]), try read("grad." + e.name), 1e-4, "grad." + e.name) }

        let adam = try XCTUnwrap(config["adam"] as? [String: Any]), betas = try XCTUnwrap(adam["betas"] as? [Double])
        var opt = Adam(
            lr: try XCTUnwrap(adam["lr"] as? Double), beta1: betas[0], beta2: betas[1],
            eps: try XCTUnwrap(adam["eps"] as? Double))
        let m = FlatBuffer(count: l.count), v = FlatBuffer(count: l.count)
        var before = params.values, refBefore = try parameters("param.").values
        let steps = try XCTUnwrap(adam["steps"] as? Int)
        XCTAssertEqual(steps, 2)
        for k in 1...steps {
            if k > 1 {
                grads.zero()
                _ = step()
            }
            opt.update(params: params, grads: grads, m: m, v: v)
            let after = params.values, refAfter = try parameters("adam\(k).param.").values
            for e in l.entries {
                let r = e.offset..<(e.offset + e.count)
                expectClose(
                    r.map { after[$0] - before[$0] }, r.map { refAfter[$0] - refBefore[$0] }, 2e-3, "adam\(k).\(e.name)"
                )
            }
            (before, refBefore) = (after, refAfter)
        }
    }

    func testParameterCountsArePyRains() {
        func count(_ cin: Int) -> Int {
            ParameterLayout(ModelShape(cin: cin, hidden: 384, head: 32, height: 32, width: 64, relu: true)).count
        }
        XCTAssertEqual(count(16), 7_902_785)  // simsat + time
        XCTAssertEqual(count(29), 8_082_497)  // era + time
        XCTAssertEqual(count(32), 8_123_969)  // simsat_era + time
        let l = ParameterLayout(ModelShape(cin: 6, hidden: 8, head: 4, height: 32, width: 64, relu: false))
        XCTAssertEqual(
            l.entries.map(\.name),
            [
                "Wci", "Wcf", "Wco", "conv.weight", "conv.bias", "head1.weight", "head1.bias", "head2.weight",
                "head2.bias",
            ])
        let e = errorText { try l.check("conv.weight", shape: [32, 15, 3, 3], source: "run.ckpt") }
        XCTAssertTrue(
            e.contains("run.ckpt: conv.weight: shape mismatch") && e.contains("[32, 14, 3, 3]")
                && e.contains("[32, 15, 3, 3]"), e)
    }

    func testInitialisationBounds() {
        let l = ParameterLayout(ModelShape(cin: 6, hidden: 8, head: 4, height: 4, width: 5, relu: true))
        let p = FlatBuffer.initialParameters(l, seed: 1)
        XCTAssertTrue(p[l[.wci]].allSatisfy { $0 == 0 })
        let bound = 1 / Float(14 * 9).squareRoot()
        let w = p[l[.convWeight]]
        XCTAssertTrue(w.allSatisfy { abs($0) <= bound })
        XCTAssertGreaterThan(w.map { abs($0) }.max()!, 0.9 * bound)  // spans the interval
        XCTAssertTrue(FlatBuffer.initialParameters(l, seed: 1).values == p.values, "deterministic for a seed")
        XCTAssertFalse(FlatBuffer.initialParameters(l, seed: 2).values == p.values, "another seed, other weights")
    }

    func testIm2colConvolutionEqualsDirectLoop() {
        var rng = SplitMix(85)
        for (c, m, b, h, w) in [(3, 5, 2, 4, 7), (1, 1, 1, 1, 1), (2, 4, 3, 5, 3)] {
            let x = (0..<(c * b * h * w)).map { _ in Float.random(in: -1...1, using: &rng) }
            let wt = (0..<(m * c * 9)).map { _ in Float.random(in: -1...1, using: &rng) }
            let bias = (0..<m).map { _ in Float.random(in: -1...1, using: &rng) }
            let n = b * h * w
            var col = [Float](repeating: .nan, count: c * 9 * n), out = [Float](repeating: 0, count: m * n)
            x.withUnsafeBufferPointer { xp in
                col.withUnsafeMutableBufferPointer { cp in
                    Conv3x3.im2col(
                        channels: c, batch: b, height: h, width: w,
                        source: { ci, bi in xp.baseAddress! + (ci * b + bi) * h * w }, col: cp.baseAddress!)
                }
            }
            Conv3x3.forward(m: m, k: c * 9, n: n, weight: wt, bias: bias, col: col, out: &out)
            for o in 0..<m {
                for bi in 0..<b {
                    for y in 0..<h {
                        for xx in 0..<w {
                            var s = bias[o]
                            for ci in 0..<c {
                                for ky in 0..<3 {
                                    for kx in 0..<3 {
                                        let sy = y + ky - 1, sx = xx + kx - 1
                                        if sy >= 0, sy < h, sx >= 0, sx < w {
                                            s +=
                                                wt[(o * c + ci) * 9 + ky * 3 + kx]
                                                * x[((ci * b + bi) * h + sy) * w + sx]
                                        }
                                    }
                                }
                            }
                            XCTAssertEqual(out[o * n + bi * h * w + y * w + xx], s, accuracy: 1e-5)
                        }
                    }
                }
            }
            // col2im is im2col's adjoint: ⟨im2col(x), r⟩ = ⟨x, col2im(r)⟩.
            let r = (0..<(c * 9 * n)).map { _ in Float.random(in: -1...1, using: &rng) }
            var back = [Float](repeating: 0, count: x.count)
            back.withUnsafeMutableBufferPointer { bp in
                Conv3x3.col2im(
                    channels: 0..<c, batch: b, height: h, width: w, col: r,
                    grad: { ci, bi in bp.baseAddress! + (ci * b + bi) * h * w })
            }
            let lhs = zip(col, r).reduce(0.0) { $0 + Double($1.0 * $1.1) },
                rhs = zip(x, back).reduce(0.0) { $0 + Double($1.0 * $1.1) }
            XCTAssertEqual(lhs, rhs, accuracy: 1e-3)
        }
    }

    /// Directional finite differences per tensor, on shapes unlike the fixture's.
    func testFiniteDifferences() {
        let cases: [(ModelShape, Int, Int)] = [
            (ModelShape(cin: 3, hidden: 4, head: 3, height: 5, width: 6, relu: false), 2, 3),
            (ModelShape(cin: 2, hidden: 3, head: 2, height: 4, width: 3, relu: true), 1, 1),  // S = 1, B = 1, ReLU
            (ModelShape(cin: 1, hidden: 5, head: 2, height: 3, width: 7, relu: true), 3, 2),
        ]
        var rng = SplitMix(42)
        for (shape, b, s) in cases {
            for algorithm in ConvAlgorithm.allCases {
                finiteDifferences(shape, batch: b, steps: s, algorithm, &rng)
            }
        }
    }

    private func finiteDifferences(
        _ shape: ModelShape, batch b: Int, steps s: Int, _ algorithm: ConvAlgorithm, _ rng: inout SplitMix
    ) {
        do {
            let model = ConvLSTMForecaster(shape: shape, batch: b, steps: s, algorithm: algorithm)
            let l = model.layout
            let params = FlatBuffer.initialParameters(l, seed: 3)
            for t in [ParameterTensor.wci, .wcf, .wco] {
                for i in 0..<l[t].count { params[l[t]][i] = Float.random(in: -0.5...0.5, using: &rng) }
            }
            // A positive output bias keeps most ReLU inputs away from the kink.
            if shape.relu { params[l[.head2Bias]][0] = 1.5 }
            let x = (0..<(b * s * shape.cin * shape.plane)).map { _ in Float.random(in: -1...1, using: &rng) }
            let t = (0..<(b * shape.plane)).map { _ in Float.random(in: 0...2, using: &rng) }
            let grads = FlatBuffer(count: l.count)
            func loss(_ p: FlatBuffer) -> Double {
                x.withUnsafeBufferPointer { model.forward(params: p, input: $0.baseAddress!) }
                return t.withUnsafeBufferPointer { model.loss(target: $0.baseAddress!) }
            }
            _ = loss(params)
            x.withUnsafeBufferPointer { model.backward(params: params, grads: grads, input: $0.baseAddress!) }
            for e in l.entries {
                let dir = (0..<e.count).map { _ in Float.random(in: -1...1, using: &rng) }
                let analytic = (0..<e.count).reduce(0.0) { $0 + Double(grads[e][$1] * dir[$1]) }
                let eps: Float = 1e-2
                let plus = FlatBuffer(count: l.count), minus = FlatBuffer(count: l.count)
                plus.copy(from: params)
                minus.copy(from: params)
                for i in 0..<e.count {
                    plus[e][i] += eps * dir[i]
                    minus[e][i] -= eps * dir[i]
                }
                let numeric = (loss(plus) - loss(minus)) / Double(2 * eps)
                XCTAssertEqual(
                    analytic, numeric, accuracy: 2e-3 * max(1e-2, abs(numeric)) + 1e-5,
                    "\(e.name) for \(shape), B \(b), S \(s), \(algorithm): analytic \(analytic), numeric \(numeric)")
            }
        }
    }

    /// torch's rule by hand: factor 0.5, patience 2, threshold 1e-4 (relative), mode min.
    func testPlateauSchedulerMatchesTorchsRule() {
        var sched = PlateauScheduler(factor: 0.5, patience: 2, threshold: 1e-4)
        let losses = [1.0, 0.9, 0.95, 0.9, 0.89995, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.7]
        // epoch: 1.0 best; 0.9 best; 0.95 bad1; 0.9 bad2 (not < 0.9·(1−1e-4));
        // 0.89995 bad3 → halve (5e-5 → 2.5e-5);
        // 0.8 best; then 0.8 ×3: bad1, bad2, bad3 → halve (1.25e-5); 0.8 ×2: bad1, bad2; 0.7 best.
        let expected = [5e-5, 5e-5, 5e-5, 5e-5, 2.5e-5, 2.5e-5, 2.5e-5, 2.5e-5, 1.25e-5, 1.25e-5, 1.25e-5, 1.25e-5]
        var lr = 5e-5
        var got: [Double] = []
        for v in losses {
            lr = sched.step(v, lr: lr)
            got.append(lr)
        }
        XCTAssertEqual(got, expected)
        // min_lr floors the rate; a change below eps is not applied.
        var floor = PlateauScheduler(factor: 0.1, patience: 0, threshold: 1e-4, minLR: 1e-3)
        XCTAssertEqual(floor.step(1, lr: 1e-2), 1e-2)
        XCTAssertEqual(floor.step(1, lr: 1e-2), 1e-3)
        XCTAssertEqual(floor.step(1, lr: 1e-3), 1e-3)
        var cool = PlateauScheduler(factor: 0.5, patience: 0, threshold: 1e-4, cooldown: 1)
        XCTAssertEqual([1.0, 1, 1, 1].map { cool.step($0, lr: 1) }, [1, 0.5, 1, 0.5])
    }

    func testAdamStepByHand() {
        let p = FlatBuffer(count: 2), g = FlatBuffer(count: 2), m = FlatBuffer(count: 2), v = FlatBuffer(count: 2)
        p.pointer[0] = 1
        p.pointer[1] = -1
        g.pointer[0] = 0.5
        g.pointer[1] = -2
        var adam = Adam(lr: 0.1)
        adam.update(params: p, grads: g, m: m, v: v)
        // Step 1: m̂ = g, v̂ = g², update = lr · g / (|g| + ε) ≈ ±0.1.
        XCTAssertEqual(p.pointer[0], 1 - 0.1 * 0.5 / (0.5 + 1e-8), accuracy: 1e-6)
        XCTAssertEqual(p.pointer[1], -1 + 0.1, accuracy: 1e-6)
        g.pointer[0] = 0
        adam.update(params: p, grads: g, m: m, v: v)
        // Step 2 with g = 0: m = 0.045, v = 0.00025·0.999; m̂ = 0.045/0.19, v̂ = 0.00024975/0.001999.
        let mh = 0.045 / 0.19, vh = 0.000_249_75 / (1 - 0.999 * 0.999)
        XCTAssertEqual(
            Double(p.pointer[0]), 1 - 0.1 * 0.5 / (0.5 + 1e-8) - 0.1 * mh / (vh.squareRoot() + 1e-8), accuracy: 1e-5)
    }

    /// A learnable toy problem: the target is a shifted copy of the last input frame.
    func testShortTrainingLowersTheLoss() {
        let shape = ModelShape(cin: 1, hidden: 6, head: 4, height: 6, width: 8, relu: false)
        let b = 4, s = 2
        let model = ConvLSTMForecaster(shape: shape, batch: b, steps: s)
        let l = model.layout
        let params = FlatBuffer.initialParameters(l, seed: 7), grads = FlatBuffer(count: l.count)
        let m = FlatBuffer(count: l.count), v = FlatBuffer(count: l.count)
        var adam = Adam(lr: 1e-2)
        var rng = SplitMix(5)
        var first = 0.0, last = 0.0
        for step in 0..<150 {
            let x = (0..<(b * s * shape.plane)).map { _ in Float.random(in: 0...1, using: &rng) }
            var t = [Float](repeating: 0, count: b * shape.plane)
            for bi in 0..<b {
                for y in 0..<6 {
                    for xx in 0..<8 {
                        // shift right by one column
                        t[bi * 48 + y * 8 + xx] = x[(bi * s + s - 1) * 48 + y * 8 + (xx + 7) % 8]
                    }
                }
            }
            grads.zero()
            let loss = x.withUnsafeBufferPointer { xp -> Double in
                model.forward(params: params, input: xp.baseAddress!)
                let v = t.withUnsafeBufferPointer { model.loss(target: $0.baseAddress!) }
                model.backward(params: params, grads: grads, input: xp.baseAddress!)
                return v
            }
            adam.update(params: params, grads: grads, m: m, v: v)
            if step < 10 { first += loss / 10 }
            if step >= 140 { last += loss / 10 }
        }
        XCTAssertLessThan(last, 0.3 * first, "loss \(first) → \(last)")
    }
}
