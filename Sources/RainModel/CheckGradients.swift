import Foundation

/// `swiftrain check-gradients`: forward, backward and the recorded Adam steps on a PyTorch fixture,
/// compared tensor by tensor.
public enum CheckGradients {
    public struct Row: Encodable {
        public var tensor: String
        public var maxAbs: Double
        /// max |ours − ref| / max |ref|: the error relative to the tensor's scale.
        public var relative: Double
        public var tolerance: Double
        public var ok: Bool { relative <= tolerance }
    }

    /// Tolerances, relative to each tensor's largest magnitude. The fixture is float64 from float32
    /// values; we compute in float32 (PyTorch's own float32 run deviates by ~1e-6 relative).
    public static let forwardTolerance = 1e-5
    public static let gradientTolerance = 1e-4
    /// Adam updates (parameter after − before) are ~lr = 5e-5 while the parameters are ~0.1, so
    /// float32 rounding of the parameter alone (ulp ≈ 7e-9) is ~1.5e-4 of an update: compare updates at 2e-3.
    public static let updateTolerance = 2e-3

    static func compare<C: Collection>(_ name: String, _ oursIn: C, _ ref: [Float], tolerance: Double) -> Row
    where C.Element == Float {
        let ours = Array(oursIn)
        var maxAbs = 0.0, scale = 0.0
        for i in 0..<ref.count {
            maxAbs = max(maxAbs, abs(Double(ours[i]) - Double(ref[i])))
            scale = max(scale, abs(Double(ref[i])))
        }
        return Row(tensor: name, maxAbs: maxAbs, relative: scale > 0 ? maxAbs / scale : maxAbs, tolerance: tolerance)
    }

    public static func run(fixture path: String) throws -> [Row] {
        let fx = try Fixture(path: path)
        let s = fx.shape
        let model = ConvLSTMForecaster(shape: s, batch: fx.batch, steps: fx.steps)
        let layout = model.layout
        let params = try fx.parameters("param.", layout: layout)
        let x = try fx.tensor("input", expect: [fx.batch, fx.steps, s.cin, s.height, s.width])
        let target = try fx.tensor("target", expect: [fx.batch, 1, s.height, s.width])
        var rows: [Row] = []
        let lat = try fx.tensor("lat_weights", expect: [s.height])
        rows.append(compare("lat_weights", model.latWeights, lat, tolerance: forwardTolerance))

        let grads = FlatBuffer(count: layout.count)
        var loss = 0.0
        x.withUnsafeBufferPointer { xp in
            model.forward(params: params, input: xp.baseAddress!)
            loss = target.withUnsafeBufferPointer { model.loss(target: $0.baseAddress!) }
            model.backward(params: params, grads: grads, input: xp.baseAddress!)
        }
        rows.append(compare("output", model.output.buffer, try fx.tensor("output"), tolerance: forwardTolerance))
        rows.append(
            Row(
                tensor: "loss", maxAbs: abs(loss - fx.loss), relative: abs(loss - fx.loss) / abs(fx.loss),
                tolerance: forwardTolerance))
        for e in layout.entries {
            rows.append(
                compare(
                    "grad." + e.name, grads[e], try fx.tensor("grad." + e.name, expect: e.shape),
                    tolerance: gradientTolerance))
        }

        // The recorded Adam steps, each recomputing loss and gradient on the same batch.
        var adam = Adam(lr: fx.lr, beta1: fx.beta1, beta2: fx.beta2, eps: fx.eps)
        let m = FlatBuffer(count: layout.count), v = FlatBuffer(count: layout.count)
        let before = FlatBuffer(count: layout.count)
        var refBefore = try fx.parameters("param.", layout: layout)
        for step in 1...max(1, fx.adamSteps) where fx.adamSteps > 0 {
            before.copy(from: params)
            grads.zero()
            x.withUnsafeBufferPointer { xp in
                model.forward(params: params, input: xp.baseAddress!)
                _ = target.withUnsafeBufferPointer { model.loss(target: $0.baseAddress!) }
                model.backward(params: params, grads: grads, input: xp.baseAddress!)
            }
            adam.update(params: params, grads: grads, m: m, v: v)
            let ref = try fx.parameters("adam\(step).param.", layout: layout)
            for e in layout.entries {
                let ours = params[e], b = before[e], rb = refBefore[e], r = ref[e]
                let oursUpdate = (0..<e.count).map { ours[$0] - b[$0] }
                let refUpdate = (0..<e.count).map { r[$0] - rb[$0] }
                rows.append(compare("adam\(step).update.\(e.name)", oursUpdate, refUpdate, tolerance: updateTolerance))
            }
            refBefore = ref
        }
        return rows
    }

    public static func table(_ rows: [Row]) -> String {
        var out = "tensor".padding(toLength: 32, withPad: " ", startingAt: 0) + "     max abs    relative   tolerance\n"
        for r in rows {
            out +=
                r.tensor.padding(toLength: 32, withPad: " ", startingAt: 0)
                + String(format: "%12.3e%12.3e%12.0e  %@\n", r.maxAbs, r.relative, r.tolerance, r.ok ? "ok" : "FAIL")
        }
        return out
    }
}
