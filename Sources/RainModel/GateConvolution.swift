import RainConfig

/// The ConvLSTM's 3×3 convolution z[4F][N] = conv([x_t, h]) + bias, by either algorithm, with the
/// buffers that algorithm needs and no others.
///
///     forward   prepare(weights) once, then forward(source) per time step
///     backward  beginBackward(), backward(source, dz) per time step (last first), finishBackward()
///
/// Only h's channels get an input gradient: none flows into the data.
public final class GateConvolution {
    public let algorithm: ConvAlgorithm
    private let m: Int, channels: Int, batch: Int, height: Int, width: Int
    private let hChannels: Range<Int>
    /// direct: the columns and h's rows of their gradient. winograd: unused (one float each).
    private let col, dcol: FlatBuffer
    private let winograd: Winograd3x3?
    private var weight: UnsafePointer<Float>?

    /// `cin` data channels then `hidden` recurrent ones; `m` output channels. bf16-mixed runs on Winograd only.
    public init(
        algorithm: ConvAlgorithm, outputs m: Int, inputs cin: Int, hidden: Int, batch: Int, height: Int, width: Int,
        precision: Precision = .fp32
    ) {
        precondition(precision == .fp32 || algorithm == .winograd, "bf16-mixed runs the Winograd convolution only")
        self.algorithm = algorithm
        (self.m, channels, self.batch, self.height, self.width) = (m, cin + hidden, batch, height, width)
        hChannels = cin..<(cin + hidden)
        let n = batch * height * width
        let direct = algorithm == .direct
        col = FlatBuffer(count: direct ? 9 * channels * n : 0)
        dcol = FlatBuffer(count: direct ? 9 * hidden * n : 0)
        winograd =
            direct
            ? nil
            : Winograd3x3(
                outputs: m, channels: channels, batch: batch, height: height, width: width, gradientChannels: hChannels,
                precision: precision)
    }

    public var bytes: Int { 4 * (col.count + dcol.count) + (winograd?.bytes ?? 0) }

    /// The weights w[M][C][3][3] of this pass; the backward pass uses those of the last forward.
    public func prepare(weights w: UnsafePointer<Float>) {
        weight = w
        winograd?.prepare(weights: w)
    }

    private func fillColumns(_ source: Conv3x3.PlaneSource) {
        Conv3x3.im2col(
            channels: channels, batch: batch, height: height, width: width, source: source, col: col.pointer)
    }

    public func forward(source: Conv3x3.PlaneSource, bias: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        if let winograd { return winograd.forward(source: source, bias: bias, out: out) }
        fillColumns(source)
        Conv3x3.forward(
            m: m, k: 9 * channels, n: batch * height * width, weight: weight!, bias: bias, col: col.pointer, out: out)
    }

    public func beginBackward() { winograd?.beginBackward() }

    /// dw += dz · colᵀ (direct: now; winograd: at `finishBackward`), dBias += Σ dz, and, when `grad` is
    /// given, grad(c, b) += the input gradient of h's channel c.
    public func backward(
        source: Conv3x3.PlaneSource, dOut: UnsafePointer<Float>, dWeight: UnsafeMutablePointer<Float>,
        dBias: UnsafeMutablePointer<Float>, grad: ((_ c: Int, _ b: Int) -> UnsafeMutablePointer<Float>)?
    ) {
        if let winograd { return winograd.backward(source: source, dOut: dOut, dBias: dBias, grad: grad) }
        fillColumns(source)
        let k = 9 * channels, n = batch * height * width
        Conv3x3.backward(
            m: m, k: k, n: n, weight: weight!, col: col.pointer, dOut: dOut, dWeight: dWeight, dBias: dBias,
            dCol: grad != nil ? dcol.pointer : nil, dColRows: (9 * hChannels.lowerBound)..<k)
        guard let grad else { return }
        Conv3x3.col2im(
            channels: hChannels, batch: batch, height: height, width: width, col: dcol.pointer, grad: grad)
    }

    public func finishBackward(weightGradient dw: UnsafeMutablePointer<Float>) {
        winograd?.finishBackward(weightGradient: dw)
    }
}
