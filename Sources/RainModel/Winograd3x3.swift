import Foundation
import RainConfig

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
/// The 16 products of a pass are one batch of GEMMs: each computed whole by one thread, so the bits do
/// not depend on the thread count.
///
/// In bf16-mixed, V, U and dM — the products' operands — are stored as bfloat16 (the transforms write
/// them so), the products' sums and outputs (M, dU, dV) stay fp32, and so does everything after them.
final class Winograd3x3 {
    let m: Int, c: Int, batch: Int, height: Int, width: Int
    let precision: Precision
    /// Tiles T = B·⌈H/2⌉·⌈W/2⌉.
    let tiles: Int
    /// fp32: U, V, and M (forward) or dM (backward). bf16: U is transformed in fp32 and then rounded; `v` is unused.
    let u, v, prod, du: FlatBuffer
    /// dV for the channels whose gradient is wanted (`gradientChannels`).
    let dv: FlatBuffer
    /// bf16-mixed: the operands U, V and dM as bfloat16 (empty in fp32).
    let u16, v16, dm16: BF16Buffer
    let gradientChannels: Range<Int>
    /// The fused forward (`Winograd3x3+Fused.swift`): tile rows per block, 0 when unfused; and U packed
    /// once per pass for the bf16 kernel (16 × `packedWords` words).
    let fusedRows: Int
    let packedWords: Int
    let uPacked: UnsafeMutablePointer<UInt32>

    init(
        outputs m: Int, channels c: Int, batch: Int, height: Int, width: Int, gradientChannels: Range<Int>,
        precision: Precision = .fp32
    ) {
        (self.m, self.c, self.batch, self.height, self.width) = (m, c, batch, height, width)
        self.gradientChannels = gradientChannels
        self.precision = precision
        tiles = batch * ((height + 1) / 2) * ((width + 1) / 2)
        let half = precision == .bf16Mixed
        u = FlatBuffer(count: 16 * m * c)
        du = FlatBuffer(count: 16 * m * c)
        v = FlatBuffer(count: half ? 0 : 16 * c * tiles)
        prod = FlatBuffer(count: 16 * m * tiles)
        dv = FlatBuffer(count: 16 * gradientChannels.count * tiles)
        u16 = BF16Buffer(count: half ? 16 * m * c : 0)
        v16 = BF16Buffer(count: half ? 16 * c * tiles : 0)
        dm16 = BF16Buffer(count: half ? 16 * m * tiles : 0)
        fusedRows = Self.fusedRows(outputs: m, tileWidth: (width + 1) / 2, tileRows: batch * ((height + 1) / 2))
        packedWords = half && fusedRows > 0 ? BF16.packedAWords(m: m, k: c) : 0
        uPacked = .allocate(capacity: max(1, 16 * packedWords))
    }

    deinit { uPacked.deallocate() }

    var bytes: Int {
        4 * (u.count + du.count + v.count + prod.count + dv.count) + 2 * (u16.count + v16.count + dm16.count)
    }

    /// U from the weights; call once per forward pass (the backward pass uses the same U).
    func prepare(weights w: UnsafePointer<Float>) {
        StepPhases.time(.columns) {
            Parallel.forEach(m) { WinogradTransforms.weights(rows: m, channels: c, w: w, into: u.pointer, $0) }
            guard precision == .bf16Mixed else { return }
            let n = u.count, src = u.pointer, dst = u16.pointer
            Parallel.forEach(16) { r in
                let lo = n * r.lowerBound / 16, hi = n * r.upperBound / 16
                BF16.convert(src + lo, dst + lo, count: hi - lo)
            }
            guard packedWords > 0 else { return }
            let (rows, cols, words, u16p, packed) = (m, c, packedWords, u16.pointer, uPacked)
            Parallel.forEach(16) { r in
                for f in r {
                    BF16.packA(
                        transA: false, m: rows, k: cols, a: u16p + f * rows * cols, lda: cols, into: packed + f * words)
                }
            }
        }
    }

    private func transformInput(_ source: Conv3x3.PlaneSource) {
        let planes = (0..<(c * batch)).map { source($0 / batch, $0 % batch) }
        StepPhases.time(.columns) {
            Parallel.forEach(c) {
                if precision == .bf16Mixed {
                    WinogradTransforms.inputBF16(
                        channels: c, batch: batch, height: height, width: width, planes: planes, into: v16.pointer, $0)
                } else {
                    WinogradTransforms.input(
                        channels: c, batch: batch, height: height, width: width, planes: planes, into: v.pointer, $0)
                }
            }
        }
    }

    /// out[M][B·H·W] = conv3×3(planes) + bias.
    func forward(source: Conv3x3.PlaneSource, bias: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        transformInput(source)
        if fusedRows > 0 && BLAS.threading == .pieces { return forwardFused(bias: bias, out: out) }
        let (m, c, t) = (self.m, self.c, tiles)
        StepPhases.time(.gemm) {
            if precision == .bf16Mixed {
                return BF16GEMM.run(
                    batch: (0..<16).map { f in
                        BF16GEMM.Product(
                            m: m, n: t, k: c, a: u16.pointer + f * m * c, lda: c, b: v16.pointer + f * c * t, ldb: t,
                            c: prod.pointer + f * m * t, ldc: t)
                    })
            }
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
                if precision == .bf16Mixed {
                    WinogradTransforms.outputAdjointBF16(
                        rows: m, batch: batch, height: height, width: width, dz: dOut, into: dm16.pointer, $0)
                } else {
                    WinogradTransforms.outputAdjoint(
                        rows: m, batch: batch, height: height, width: width, dz: dOut, into: prod.pointer, $0)
                }
            }
        }
        let g = gradientChannels, cg = g.count
        StepPhases.time(.gemm) {
            if precision == .bf16Mixed { return bf16Products(gradient: grad != nil) }
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

    /// The backward products in bf16: dUξ += dMξ · Vξᵀ (dot products along the tiles) and
    /// dVξ = Uξ[:, rows]ᵀ · dMξ.
    private func bf16Products(gradient: Bool) {
        let (m, c, t) = (self.m, self.c, tiles)
        let g = gradientChannels, cg = g.count
        var products = (0..<16).map { f in
            BF16GEMM.Product(
                transB: true, m: m, n: c, k: t, a: dm16.pointer + f * m * t, lda: t, b: v16.pointer + f * c * t,
                ldb: t, beta: 1, c: du.pointer + f * m * c, ldc: c)
        }
        if gradient {
            products += (0..<16).map { f in
                BF16GEMM.Product(
                    transA: true, m: cg, n: t, k: m, a: u16.pointer + f * m * c + g.lowerBound, lda: c,
                    b: dm16.pointer + f * m * t, ldb: t, c: dv.pointer + f * cg * t, ldc: t)
            }
        }
        BF16GEMM.run(batch: products)
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
