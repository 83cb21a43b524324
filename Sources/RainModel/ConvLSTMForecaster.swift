import Foundation

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

    private let n: Int, k: Int
    private let col, dcol, z, dz, saved, zeros, y1, dy1, pre, dy, dh, dc: FlatBuffer
    /// The forecast y[B][1][H][W] of the last `forward` (after the optional ReLU).
    public let output: FlatBuffer
    /// Where each tensor starts in the parameter and gradient buffers, resolved once.
    private let at: Offsets

    /// What the forward pass keeps per time step for the backward pass, each [F][N].
    private enum Slot: Int, CaseIterable {
        case inputGate, forgetGate, candidate, outputGate, cell, tanhCell, hidden
    }

    public init(shape: ModelShape, batch: Int, steps: Int) {
        self.shape = shape
        self.batch = batch
        self.steps = steps
        layout = ParameterLayout(shape)
        at = Offsets(layout)
        let f = shape.hidden
        n = batch * shape.plane
        k = (shape.cin + f) * 9
        col = FlatBuffer(count: k * n)
        dcol = FlatBuffer(count: k * n)
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

    /// cos(lat) / mean(cos(lat)) at latitudes −90 + (180/H)(y + ½).
    public static func latitudeWeights(_ h: Int) -> [Float] {
        let c = (0..<h).map { cos((-90 + 180 / Double(h) * (Double($0) + 0.5)) * .pi / 180) }
        let mean = c.reduce(0, +) / Double(h)
        return c.map { Float($0 / mean) }
    }

    /// Bytes of activations and workspace held for this B and S.
    public var workspaceBytes: Int {
        4 * [col, dcol, z, dz, saved, zeros, y1, dy1, pre, dy, dh, dc, output].reduce(0) { $0 + $1.count }
    }

    /// Slot `s` of time step `t`: [F][N].
    private func slot(_ t: Int, _ s: Slot) -> UnsafeMutablePointer<Float> {
        saved.pointer + (t * Slot.allCases.count + s.rawValue) * shape.hidden * n
    }

    private func fillColumns(_ t: Int, input x: UnsafePointer<Float>) {
        let cin = shape.cin, hw = shape.plane, s = steps, nn = n
        let h = t > 0 ? slot(t - 1, .hidden) : nil
        Conv3x3.im2col(
            channels: cin + shape.hidden, batch: batch, height: shape.height, width: shape.width,
            source: { c, b in
                if c < cin { return x + ((b * s + t) * cin + c) * hw }
                return h.map { UnsafePointer($0 + (c - cin) * nn + b * hw) }
            }, col: col.pointer)
    }

    /// Runs the model on x[B][S][C_in][H][W]; the forecast is left in `output`.
    public func forward(params: FlatBuffer, input x: UnsafePointer<Float>) {
        let f = shape.hidden, hw = shape.plane, nn = n
        let p = params.pointer
        let wci = p + at.wci, wcf = p + at.wcf, wco = p + at.wco
        for t in 0..<steps {
            fillColumns(t, input: x)
            Conv3x3.forward(
                m: 4 * f, k: k, n: nn, weight: p + at.convWeight, bias: p + at.convBias,
                col: col.pointer, out: z.pointer)
            let cp = t > 0 ? UnsafePointer(slot(t - 1, .cell)) : UnsafePointer(zeros.pointer)
            let si = slot(t, .inputGate), sf = slot(t, .forgetGate), sg = slot(t, .candidate),
                so = slot(t, .outputGate), sc = slot(t, .cell), stc = slot(t, .tanhCell), sh = slot(t, .hidden)
            let zp = z.pointer
            Parallel.forEach(f) { chs in
                for ch in chs {
                    for b in 0..<batch {
                        let base = ch * nn + b * hw
                        for q in 0..<hw {
                            let idx = base + q, pi = ch * hw + q
                            let c0 = cp[idx]
                            let i = sigmoid(zp[idx] + wci[pi] * c0)
                            let fg = sigmoid(zp[f * nn + idx] + wcf[pi] * c0)
                            let g = tanhf(zp[2 * f * nn + idx])
                            let c = fg * c0 + i * g
                            let o = sigmoid(zp[3 * f * nn + idx] + wco[pi] * c)
                            let tc = tanhf(c)
                            si[idx] = i
                            sf[idx] = fg
                            sg[idx] = g
                            so[idx] = o
                            sc[idx] = c
                            stc[idx] = tc
                            sh[idx] = o * tc
                        }
                    }
                }
            }
        }
        // Heads: two 1×1 convolutions are two GEMMs over the channel dimension.
        let f2 = shape.head
        let hLast = UnsafePointer(slot(steps - 1, .hidden))
        Conv3x3.denseForward(
            m: f2, k: f, n: nn, weight: p + at.head1Weight, bias: p + at.head1Bias, x: hLast, out: y1.pointer)
        Conv3x3.denseForward(
            m: 1, k: f2, n: nn, weight: p + at.head2Weight, bias: p + at.head2Bias, x: y1.pointer, out: pre.pointer)
        for j in 0..<nn { output.pointer[j] = shape.relu ? max(0, pre.pointer[j]) : pre.pointer[j] }
    }

    /// Latitude-weighted MSE of `output` against target[B][1][H][W]; leaves dLoss/dOutput for `backward`,
    /// multiplied by `gradientScale` (B / global batch when micro-batches add up to one global batch).
    @discardableResult
    public func loss(target: UnsafePointer<Float>, gradientScale: Float = 1) -> Double {
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
        dc.zero()
        let wci = p + at.wci, wcf = p + at.wcf, wco = p + at.wco
        let gci = g + at.wci, gcf = g + at.wcf, gco = g + at.wco
        for t in stride(from: steps - 1, through: 0, by: -1) {
            let cp = t > 0 ? UnsafePointer(slot(t - 1, .cell)) : UnsafePointer(zeros.pointer)
            let si = slot(t, .inputGate), sf = slot(t, .forgetGate), sg = slot(t, .candidate),
                so = slot(t, .outputGate), sc = slot(t, .cell), stc = slot(t, .tanhCell)
            let dzp = dz.pointer, dhp = dh.pointer, dcp = dc.pointer
            // Channels are independent (peephole gradients are per channel), so they split across threads.
            Parallel.forEach(f) { chs in
                for ch in chs {
                    for b in 0..<batch {
                        let base = ch * nn + b * hw
                        for q in 0..<hw {
                            let idx = base + q, pi = ch * hw + q
                            let i = si[idx], fg = sf[idx], gg = sg[idx], o = so[idx], c = sc[idx], tc = stc[idx],
                                c0 = cp[idx]
                            let dhv = dhp[idx]
                            var dcv = dcp[idx] + dhv * o * (1 - tc * tc)
                            let dzo = dhv * tc * o * (1 - o)
                            dcv += dzo * wco[pi]
                            gco[pi] += dzo * c
                            let dzi = dcv * gg * i * (1 - i)
                            let dzf = dcv * c0 * fg * (1 - fg)
                            let dzg = dcv * i * (1 - gg * gg)
                            gci[pi] += dzi * c0
                            gcf[pi] += dzf * c0
                            dcp[idx] = dcv * fg + dzi * wci[pi] + dzf * wcf[pi]
                            dzp[idx] = dzi
                            dzp[f * nn + idx] = dzf
                            dzp[2 * f * nn + idx] = dzg
                            dzp[3 * f * nn + idx] = dzo
                        }
                    }
                }
            }
            fillColumns(t, input: x)
            // No gradient flows into h₀ = 0 or the data, so the first step skips the input-gradient GEMM.
            Conv3x3.backward(
                m: 4 * f, k: k, n: nn, weight: p + at.convWeight, col: col.pointer, dOut: dz.pointer,
                dWeight: g + at.convWeight, dBias: g + at.convBias, dCol: t > 0 ? dcol.pointer : nil)
            if t > 0 {
                dh.zero()
                let cin = shape.cin
                Conv3x3.col2im(
                    channels: cin..<(cin + f), batch: batch, height: shape.height, width: shape.width,
                    col: dcol.pointer,
                    grad: { c, b in dhp + (c - cin) * nn + b * hw })
            }
        }
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

@inline(__always) func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }

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
