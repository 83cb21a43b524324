import Foundation

/// How the ConvLSTM's 3×3 convolution is computed.
public enum ConvAlgorithm: String, Codable, CaseIterable, Sendable {
    /// im2col and one sgemm per product (9 multiply-adds per weight and pixel).
    case direct
    /// Winograd F(2×2, 3×3): 16 sgemms on transformed tiles, 4 multiply-adds per weight and pixel
    /// (2.25× fewer FLOPs), at an error of a few fp32 roundings more than the direct sum.
    case winograd

    /// What a model uses unless told otherwise: Winograd, faster on both bench models
    /// (`bench step --conv direct` measures the other); SWIFTRAIN_CONV=direct overrides it.
    public static let standard: ConvAlgorithm = {
        guard let text = ProcessInfo.processInfo.environment["SWIFTRAIN_CONV"], !text.isEmpty else { return .winograd }
        guard let choice = ConvAlgorithm(rawValue: text) else {
            FileHandle.standardError.write(
                Data("error: SWIFTRAIN_CONV=\(text): expected direct or winograd; set one of them or unset it\n".utf8))
            exit(2)
        }
        return choice
    }()
}

/// The 3×3 convolution (padding 1) by Winograd F(2×2, 3×3), for one shape, buffers allocated once.
///
///     weights   w[M][C][3][3] → U[16][M][C]                  (once per forward)
///     forward   planes → V[16][C][T];  Mξ = Uξ · Vξ  (16 sgemms);  out[M][N] = bias + Aᵀ M A
///     backward  dz[M][N] → dM[16][M][T];  dUξ += dMξ · Vξᵀ;  dVξ = Uξ[:, rows]ᵀ · dMξ;
///               planes += the input transform's adjoint of dV
///               and, once per backward pass, dw += the weight transform's adjoint of dU
///
/// The 16 products of a pass are one `BLAS.sgemm(batch:)`: each computed whole by one thread, so the
/// bits do not depend on the thread count.
final class Winograd3x3 {
    let m: Int, c: Int, batch: Int, height: Int, width: Int
    /// Tiles T = B·⌈H/2⌉·⌈W/2⌉.
    let tiles: Int
    private let u, v, prod, du: FlatBuffer
    /// dV for the channels whose gradient is wanted (`gradientChannels`).
    private let dv: FlatBuffer
    let gradientChannels: Range<Int>

    init(outputs m: Int, channels c: Int, batch: Int, height: Int, width: Int, gradientChannels: Range<Int>) {
        (self.m, self.c, self.batch, self.height, self.width) = (m, c, batch, height, width)
        self.gradientChannels = gradientChannels
        tiles = batch * ((height + 1) / 2) * ((width + 1) / 2)
        u = FlatBuffer(count: 16 * m * c)
        du = FlatBuffer(count: 16 * m * c)
        v = FlatBuffer(count: 16 * c * tiles)
        prod = FlatBuffer(count: 16 * m * tiles)
        dv = FlatBuffer(count: 16 * gradientChannels.count * tiles)
    }

    var bytes: Int { 4 * (u.count + du.count + v.count + prod.count + dv.count) }

    /// U from the weights; call once per forward pass (the backward pass uses the same U).
    func prepare(weights w: UnsafePointer<Float>) {
        StepPhases.time(.columns) {
            Parallel.forEach(m) { WinogradTransforms.weights(rows: m, channels: c, w: w, into: u.pointer, $0) }
        }
    }

    private func transformInput(_ source: Conv3x3.PlaneSource) {
        let planes = (0..<(c * batch)).map { source($0 / batch, $0 % batch) }
        StepPhases.time(.columns) {
            Parallel.forEach(c) {
                WinogradTransforms.input(
                    channels: c, batch: batch, height: height, width: width, planes: planes, into: v.pointer, $0)
            }
        }
    }

    /// out[M][B·H·W] = conv3×3(planes) + bias.
    func forward(source: Conv3x3.PlaneSource, bias: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        transformInput(source)
        let (m, c, t) = (self.m, self.c, tiles)
        StepPhases.time(.gemm) {
            BLAS.sgemm(
                batch: (0..<16).map { f in
                    BLAS.Product(
                        .no, .no, m: m, n: t, k: c, a: u.pointer + f * m * c, b: v.pointer + f * c * t,
                        c: prod.pointer + f * m * t)
                })
        }
        StepPhases.time(.columns) {
            Parallel.forEach(m) {
                WinogradTransforms.output(
                    rows: m, batch: batch, height: height, width: width, m: prod.pointer, bias: bias, into: out, $0)
            }
        }
    }

    /// Starts a backward pass: the weight gradient accumulates in U's domain until `finish`.
    func beginBackward() { StepPhases.time(.reductions) { du.zero() } }

    /// One step back: the planes are the forward's (V is recomputed); dBias += Σ dOut; when `grad` is
    /// given, grad(c, b) += the input gradient for c in `gradientChannels`.
    func backward(
        source: Conv3x3.PlaneSource, dOut: UnsafePointer<Float>, dBias: UnsafeMutablePointer<Float>,
        grad: ((_ c: Int, _ b: Int) -> UnsafeMutablePointer<Float>)?
    ) {
        let (m, c, t) = (self.m, self.c, tiles)
        transformInput(source)
        Conv3x3.biasGradient(m: m, n: batch * height * width, dOut: dOut, dBias: dBias)
        StepPhases.time(.columns) {
            Parallel.forEach(m) {
                WinogradTransforms.outputAdjoint(
                    rows: m, batch: batch, height: height, width: width, dz: dOut, into: prod.pointer, $0)
            }
        }
        let g = gradientChannels, cg = g.count
        StepPhases.time(.gemm) {
            var products = (0..<16).map { f in
                BLAS.Product(
                    .no, .yes, m: m, n: c, k: t, a: prod.pointer + f * m * t, b: v.pointer + f * c * t, beta: 1,
                    c: du.pointer + f * m * c)
            }
            if grad != nil {
                products += (0..<16).map { f in
                    BLAS.Product(
                        .yes, .no, m: cg, n: t, k: m, a: u.pointer + f * m * c + g.lowerBound, lda: c,
                        b: prod.pointer + f * m * t, c: dv.pointer + f * cg * t)
                }
            }
            BLAS.sgemm(batch: products)
        }
        guard let grad else { return }
        let planes = (0..<(cg * batch)).map { Optional(grad(g.lowerBound + $0 / batch, $0 % batch)) }
        StepPhases.time(.columns) {
            Parallel.forEach(cg) {
                WinogradTransforms.inputAdjoint(
                    channels: cg, batch: batch, height: height, width: width, dv: dv.pointer, into: planes, $0)
            }
        }
    }

    /// dw[M][C][3][3] += the gradient accumulated since `beginBackward`.
    func finishBackward(weightGradient dw: UnsafeMutablePointer<Float>) {
        StepPhases.time(.columns) {
            Parallel.forEach(m) {
                WinogradTransforms.weightsAdjoint(rows: m, channels: c, du: du.pointer, into: dw, $0)
            }
        }
    }
}
