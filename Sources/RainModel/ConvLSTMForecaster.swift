import Foundation
import RainConfig
import RainSupport

/// PyRain's ConvLSTMForecaster (DATA-FORMAT §7) for a fixed batch B and sequence length S, with
/// every buffer allocated once.
///
///     input   x[B][S][C_in][H][W]                 (the data layer's samples, stacked)
///     per t   z = Conv3×3([x_t, h]) → i, f, g, o  z[4F][N], N = B·H·W
///             i = σ(z_i + Wci⊙c), f = σ(z_f + Wcf⊙c), c′ = f⊙c + i⊙tanh(z_g),
///             o = σ(z_o + Wco⊙c′), h′ = o⊙tanh(c′)          h, c [F][N], h₀ = c₀ = 0
///     heads   y = head2(head1(h_S)) [1][N] = [B][1][H][W], then ReLU unless no_relu
///     loss    mean over B·H·W of w(lat)·(y − target)², w = cos(lat) / mean(cos(lat))
///
/// Activations are channel-major ([C][B][HW]) so each GEMM output feeds the next step directly.
/// The backward pass recomputes im2col columns instead of keeping S copies (9× less memory).
public final class ConvLSTMForecaster {
    public let shape: ModelShape
    public let layout: ParameterLayout
    public let batch: Int, steps: Int
    /// Latitude weights w[H], mean 1.
    public let latWeights: [Float]

    private let n: Int
    private let conv: GateConvolution
    private let z, dz, saved, zeros, y1, dy1, pre, dy, dh, dc: FlatBuffer
    /// The forecast y[B][1][H][W] of the last `forward` (after the optional ReLU).
    public let output: FlatBuffer
    /// Where each tensor starts in the parameter and gradient buffers, resolved once.
    private let at: Offsets

    /// What the forward pass keeps per time step for the backward pass, each [F][N].
    private enum Slot: Int, CaseIterable {
        case inputGate, forgetGate, candidate, outputGate, cell, tanhCell, hidden
    }

    /// The 3×3 convolution's algorithm.
    public var algorithm: ConvAlgorithm { conv.algorithm }

    /// The arithmetic of the convolution's products (`precision`; bf16-mixed needs `BF16Dispatch.require`).
    public let precision: Precision

    public init(
        shape: ModelShape, batch: Int, steps: Int, algorithm: ConvAlgorithm = .standard, precision: Precision = .fp32
    ) {
        self.precision = precision
        self.shape = shape
        self.batch = batch
        self.steps = steps
        layout = ParameterLayout(shape)
        at = Offsets(layout)
        let f = shape.hidden
        n = batch * shape.plane
        conv = GateConvolution(
            algorithm: algorithm, outputs: 4 * f, inputs: shape.cin, hidden: f, batch: batch, height: shape.height,
            width: shape.width, precision: precision)
        z = FlatBuffer(count: 4 * f * n)
        dz = FlatBuffer(count: 4 * f * n)
        saved = FlatBuffer(count: steps * Slot.allCases.count * f * n)
        zeros = FlatBuffer(count: f * n)
        y1 = FlatBuffer(count: shape.head * n)
        dy1 = FlatBuffer(count: shape.head * n)
        pre = FlatBuffer(count: n)
        dy = FlatBuffer(count: n)
        output = FlatBuffer(count: n)
        dh = FlatBuffer(count: f * n)
        dc = FlatBuffer(count: f * n)
        latWeights = Self.latitudeWeights(shape.height)
    }

    /// Throws when this CPU cannot run `precision`, or `algorithm` does not run it (bf16-mixed is Winograd's).
    public static func check(precision: Precision, algorithm: ConvAlgorithm, subject: String = "precision") throws {
        try BF16Dispatch.require(precision, subject: subject)
        guard precision == .fp32 || algorithm == .winograd else {
            throw SwiftRainError(
                subject, "bf16-mixed runs the Winograd convolution only", expected: "conv: winograd",
                found: "conv: \(algorithm.rawValue) (SWIFTRAIN_CONV or --conv)",
                hint: "unset SWIFTRAIN_CONV (or drop --conv direct), or use precision 32 with the direct convolution")
        }
    }

    /// cos(lat) / mean(cos(lat)) at latitudes −90 + (180/H)(y + ½).
    public static func latitudeWeights(_ h: Int) -> [Float] {
        let c = (0..<h).map { cos((-90 + 180 / Double(h) * (Double($0) + 0.5)) * .pi / 180) }
        let mean = c.reduce(0, +) / Double(h)
        return c.map { Float($0 / mean) }
    }

    /// Bytes of activations and workspace held for this B and S.
    public var workspaceBytes: Int {
        conv.bytes + 4 * [z, dz, saved, zeros, y1, dy1, pre, dy, dh, dc, output].reduce(0) { $0 + $1.count }
    }

    /// Slot `s` of time step `t`: [F][N].
    private func slot(_ t: Int, _ s: Slot) -> UnsafeMutablePointer<Float> {
        saved.pointer + (t * Slot.allCases.count + s.rawValue) * shape.hidden * n
    }

    /// The gate slots of step t, as the gate kernels take them.
    private func gateState(_ t: Int) -> Gates.State {
        Gates.State(
            i: slot(t, .inputGate), f: slot(t, .forgetGate), g: slot(t, .candidate), o: slot(t, .outputGate),
            c: slot(t, .cell), tc: slot(t, .tanhCell), h: slot(t, .hidden))
    }

    /// Calls `body(channel, offset, peepholes)` for each H·W run of the gate slots, channels split
    /// across threads (each channel's peephole gradients are its own, so no two threads share one).
    private func forEachGateRun(
        wci: UnsafePointer<Float>, wcf: UnsafePointer<Float>, wco: UnsafePointer<Float>,
        _ body: (_ ch: Int, _ at: Int, Gates.Peepholes) -> Void
    ) {
        let hw = shape.plane, nn = n
        StepPhases.time(.gates) {
            Parallel.forEach(shape.hidden) { chs in
                for ch in chs {
                    let w = Gates.Peepholes(wci: wci + ch * hw, wcf: wcf + ch * hw, wco: wco + ch * hw)
                    for b in 0..<batch { body(ch, ch * nn + b * hw, w) }
                }
            }
        }
    }

    /// The planes of [x_t, h_{t−1}] for channel c and sample b (nil: h₀ = 0).
    private func planes(_ t: Int, input x: UnsafePointer<Float>) -> Conv3x3.PlaneSource {
        let cin = shape.cin, hw = shape.plane, s = steps, nn = n
        let h = t > 0 ? slot(t - 1, .hidden) : nil
        return { c, b in
            if c < cin { return x + ((b * s + t) * cin + c) * hw }
            return h.map { UnsafePointer($0 + (c - cin) * nn + b * hw) }
        }
    }

    /// Runs the model on x[B][S][C_in][H][W]; the forecast is left in `output`.
    public func forward(params: FlatBuffer, input x: UnsafePointer<Float>) {
        let f = shape.hidden, hw = shape.plane, nn = n
        let p = params.pointer
        let wci = p + at.wci, wcf = p + at.wcf, wco = p + at.wco
        conv.prepare(weights: p + at.convWeight)
        for t in 0..<steps {
            conv.forward(source: planes(t, input: x), bias: p + at.convBias, out: z.pointer)
            let cp = t > 0 ? UnsafePointer(slot(t - 1, .cell)) : UnsafePointer(zeros.pointer)
            let state = gateState(t), zp = UnsafePointer(z.pointer)
            forEachGateRun(wci: wci, wcf: wcf, wco: wco) { _, at, w in
                let zs = Gates.Preactivations(
                    zi: zp + at, zf: zp + f * nn + at, zg: zp + 2 * f * nn + at, zo: zp + 3 * f * nn + at)
                Gates.forward(count: hw, zs, c0: cp + at, w, into: state.offset(by: at))
            }
        }
        // Heads: two 1×1 convolutions are two GEMMs over the channel dimension.
        let f2 = shape.head
        let hLast = UnsafePointer(slot(steps - 1, .hidden))
        Conv3x3.denseForward(
            m: f2, k: f, n: nn, weight: p + at.head1Weight, bias: p + at.head1Bias, x: hLast, out: y1.pointer)
        Conv3x3.denseForward(
            m: 1, k: f2, n: nn, weight: p + at.head2Weight, bias: p + at.head2Bias, x: y1.pointer, out: pre.pointer)
        StepPhases.time(.reductions) {
            for j in 0..<nn { output.pointer[j] = shape.relu ? max(0, pre.pointer[j]) : pre.pointer[j] }
        }
    }

    /// Latitude-weighted MSE of `output` against target[B][1][H][W]; leaves dLoss/dOutput for `backward`,
    /// multiplied by `gradientScale` (B / global batch when micro-batches add up to one global batch).
    @discardableResult
    public func loss(target: UnsafePointer<Float>, gradientScale: Float = 1) -> Double {
        StepPhases.time(.reductions) { lossAndGradient(target: target, gradientScale: gradientScale) }
    }

    private func lossAndGradient(target: UnsafePointer<Float>, gradientScale: Float) -> Double {
        let hw = shape.plane, w = shape.width, scale = gradientScale / Float(n)
        var sum = 0.0
        for j in 0..<n {
            let lw = latWeights[(j % hw) / w]
            let d = output.pointer[j] - target[j]
            sum += Double(lw * d * d)
            // ReLU passes the gradient only where its input was positive (torch's rule).
            dy.pointer[j] = (shape.relu && pre.pointer[j] <= 0) ? 0 : 2 * lw * d * scale
        }
        return sum / Double(n)
    }

    /// Backpropagates the last `loss` through time, adding every gradient into `grads`.
    public func backward(params: FlatBuffer, grads: FlatBuffer, input x: UnsafePointer<Float>) {
        let f = shape.hidden, f2 = shape.head, hw = shape.plane, nn = n
        let p = params.pointer, g = grads.pointer
        let hLast = UnsafePointer(slot(steps - 1, .hidden))
        // Heads, last first.
        Conv3x3.denseBackward(
            m: 1, k: f2, n: nn, weight: p + at.head2Weight, x: y1.pointer, dOut: dy.pointer,
            dWeight: g + at.head2Weight, dBias: g + at.head2Bias, dX: dy1.pointer)
        Conv3x3.denseBackward(
            m: f2, k: f, n: nn, weight: p + at.head1Weight, x: hLast, dOut: dy1.pointer,
            dWeight: g + at.head1Weight, dBias: g + at.head1Bias, dX: dh.pointer)
        StepPhases.time(.reductions) { dc.zero() }
        conv.beginBackward()
        let wci = p + at.wci, wcf = p + at.wcf, wco = p + at.wco
        let gci = g + at.wci, gcf = g + at.wcf, gco = g + at.wco
        for t in stride(from: steps - 1, through: 0, by: -1) {
            let cp = t > 0 ? UnsafePointer(slot(t - 1, .cell)) : UnsafePointer(zeros.pointer)
            let state = gateState(t), dzp = dz.pointer, dhp = dh.pointer, dcp = dc.pointer
            // Channels are independent (peephole gradients are per channel), so they split across threads.
            forEachGateRun(wci: wci, wcf: wcf, wco: wco) { ch, at, w in
                let d = Gates.Gradients(
                    dzi: dzp + at, dzf: dzp + f * nn + at, dzg: dzp + 2 * f * nn + at,
                    dzo: dzp + 3 * f * nn + at, gci: gci + ch * hw, gcf: gcf + ch * hw, gco: gco + ch * hw)
                Gates.backward(
                    count: hw, state.offset(by: at), c0: cp + at, w, dh: dhp + at, dc: dcp + at, d)
            }
            // dh is consumed: it now collects step t−1's gradient. None flows into h₀ = 0 or the data,
            // so the first step skips the input gradient.
            if t > 0 { StepPhases.time(.reductions) { dh.zero() } }
            let cin = shape.cin
            conv.backward(
                source: planes(t, input: x), dOut: dz.pointer, dWeight: g + at.convWeight, dBias: g + at.convBias,
                grad: t > 0 ? { c, b in dhp + (c - cin) * nn + b * hw } : nil)
        }
        conv.finishBackward(weightGradient: g + at.convWeight)
    }
}

extension ConvLSTMForecaster {
    /// Each tensor's offset in the flat buffers, named.
    struct Offsets {
        let wci, wcf, wco, convWeight, convBias, head1Weight, head1Bias, head2Weight, head2Bias: Int
        init(_ l: ParameterLayout) {
            (wci, wcf, wco) = (l[.wci].offset, l[.wcf].offset, l[.wco].offset)
            (convWeight, convBias) = (l[.convWeight].offset, l[.convBias].offset)
            (head1Weight, head1Bias) = (l[.head1Weight].offset, l[.head1Bias].offset)
            (head2Weight, head2Bias) = (l[.head2Weight].offset, l[.head2Bias].offset)
        }
    }
}

extension Gates.State {
    func offset(by k: Int) -> Gates.State {
        Gates.State(i: i + k, f: f + k, g: g + k, o: o + k, c: c + k, tc: tc + k, h: h + k)
    }
}

extension Conv3x3 {
    /// 1×1 convolution: out[M][N] = w[M][K] · x[K][N] + bias.
    static func denseForward(
        m: Int, k: Int, n: Int, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
        x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>
    ) {
        forward(m: m, k: k, n: n, weight: weight, bias: bias, col: x, out: out)
    }
    /// Its backward: dW += dOut · xᵀ, dBias += Σ dOut, dX = wᵀ · dOut.
    static func denseBackward(
        m: Int, k: Int, n: Int, weight: UnsafePointer<Float>, x: UnsafePointer<Float>, dOut: UnsafePointer<Float>,
        dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>, dX: UnsafeMutablePointer<Float>
    ) {
        backward(m: m, k: k, n: n, weight: weight, col: x, dOut: dOut, dWeight: dWeight, dBias: dBias, dCol: dX)
    }
}
