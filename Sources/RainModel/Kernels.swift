// The only file that imports CKernels: the gate kernels and the Winograd transforms, typed.
import CKernels

/// The ConvLSTM gates (PyRain's peephole cell), fused and vectorised in C for the widest instruction
/// set the CPU has: AVX-512, AVX2 or baseline SSE2, chosen at run time. Every variant gives the same
/// bits (no fused multiply-add), so a run does not change with the host's vector width.
///
///     forward   i = σ(zi + wci⊙c0), f = σ(zf + wcf⊙c0), g = tanh(zg), c = f⊙c0 + i⊙g,
///               o = σ(zo + wco⊙c), tc = tanh(c), h = o⊙tc                 all [n]
///     backward  dc (from step t+1) → dc (for step t−1); dz_i, dz_f, dz_g, dz_o; gci, gcf, gco +=
///
/// σ and tanh are the kernels' own (exp by Cephes's reduction and polynomial): within 2 ulp of the
/// correctly rounded value, as libm's expf/tanhf composed are.
public enum Gates {
    /// The instruction sets, as the C side numbers them.
    public enum ISA: Int32, CaseIterable, Sendable {
        case baseline = 0, avx2 = 2, avx512 = 3
        public var name: String { [0: "SSE2", 2: "AVX2", 3: "AVX-512"][Int(rawValue)]! }
    }

    /// The variant in use.
    public static var isa: ISA { ISA(rawValue: swiftrain_gates_isa()) ?? .baseline }

    /// Uses `isa` (or the best the CPU has, if it has less, or when nil); returns the one in use.
    @discardableResult
    public static func force(_ isa: ISA?) -> ISA {
        ISA(rawValue: swiftrain_gates_force_isa(isa?.rawValue ?? -1)) ?? .baseline
    }

    public static func sigmoid(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        swiftrain_sigmoid(count, x, y)
    }

    public static func tanh(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        swiftrain_tanh(count, x, y)
    }

    /// The pre-activations z_i, z_f, z_g, z_o (the convolution's four row blocks).
    public struct Preactivations {
        public var zi, zf, zg, zo: UnsafePointer<Float>
        public init(
            zi: UnsafePointer<Float>, zf: UnsafePointer<Float>, zg: UnsafePointer<Float>, zo: UnsafePointer<Float>
        ) {
            (self.zi, self.zf, self.zg, self.zo) = (zi, zf, zg, zo)
        }
    }

    /// The peephole weights of one channel, one per pixel.
    public struct Peepholes {
        public var wci, wcf, wco: UnsafePointer<Float>
        public init(wci: UnsafePointer<Float>, wcf: UnsafePointer<Float>, wco: UnsafePointer<Float>) {
            (self.wci, self.wcf, self.wco) = (wci, wcf, wco)
        }
    }

    /// What the forward pass keeps: the gates, the new cell, its tanh, the new hidden state.
    public struct State {
        public var i, f, g, o, c, tc, h: UnsafeMutablePointer<Float>
        public init(
            i: UnsafeMutablePointer<Float>, f: UnsafeMutablePointer<Float>, g: UnsafeMutablePointer<Float>,
            o: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>, tc: UnsafeMutablePointer<Float>,
            h: UnsafeMutablePointer<Float>
        ) {
            (self.i, self.f, self.g, self.o, self.c, self.tc, self.h) = (i, f, g, o, c, tc, h)
        }
    }

    /// The pre-activation gradients the backward pass writes, and the peephole gradients it adds to.
    public struct Gradients {
        public var dzi, dzf, dzg, dzo, gci, gcf, gco: UnsafeMutablePointer<Float>
        public init(
            dzi: UnsafeMutablePointer<Float>, dzf: UnsafeMutablePointer<Float>, dzg: UnsafeMutablePointer<Float>,
            dzo: UnsafeMutablePointer<Float>, gci: UnsafeMutablePointer<Float>, gcf: UnsafeMutablePointer<Float>,
            gco: UnsafeMutablePointer<Float>
        ) {
            (self.dzi, self.dzf, self.dzg, self.dzo) = (dzi, dzf, dzg, dzo)
            (self.gci, self.gcf, self.gco) = (gci, gcf, gco)
        }
    }

    /// One step forward over `n` elements: c0 is the previous cell state.
    public static func forward(
        count n: Int, _ z: Preactivations, c0: UnsafePointer<Float>, _ w: Peepholes, into s: State
    ) {
        swiftrain_gates_forward(n, z.zi, z.zf, z.zg, z.zo, c0, w.wci, w.wcf, w.wco, s.i, s.f, s.g, s.o, s.c, s.tc, s.h)
    }

    /// Its backward: `s` as the forward pass left it (`s.h` unused), `dh` the hidden state's gradient,
    /// `dc` the cell's (updated in place).
    public static func backward(
        count n: Int, _ s: State, c0: UnsafePointer<Float>, _ w: Peepholes, dh: UnsafePointer<Float>,
        dc: UnsafeMutablePointer<Float>, _ d: Gradients
    ) {
        swiftrain_gates_backward(
            n, s.i, s.f, s.g, s.o, s.c, s.tc, c0, w.wci, w.wcf, w.wco, dh, dc, d.dzi, d.dzf, d.dzg, d.dzo,
            d.gci, d.gcf, d.gco)
    }
}

/// The Winograd F(2×2, 3×3) transforms (winograd.c), each over a range of channels (or output rows) so
/// callers can share the work among threads. T = B·⌈H/2⌉·⌈W/2⌉ tiles; ξ = 4i + j the 16 frequencies.
public enum WinogradTransforms {
    /// V[16][C][T] from planes[c·B + b] (nil: a zero plane).
    public static func input(
        channels: Int, batch: Int, height: Int, width: Int, planes: [UnsafePointer<Float>?],
        into v: UnsafeMutablePointer<Float>, _ r: Range<Int>
    ) {
        planes.withUnsafeBufferPointer { p in
            swiftrain_wino_input(channels, batch, height, width, p.baseAddress, v, r.lowerBound, r.upperBound)
        }
    }

    /// grads[c·B + b] += the adjoint of `input` applied to dV[16][C][T].
    public static func inputAdjoint(
        channels: Int, batch: Int, height: Int, width: Int, dv: UnsafePointer<Float>,
        into grads: [UnsafeMutablePointer<Float>?], _ r: Range<Int>
    ) {
        grads.withUnsafeBufferPointer { g in
            swiftrain_wino_input_adjoint(channels, batch, height, width, dv, g.baseAddress, r.lowerBound, r.upperBound)
        }
    }

    /// out[M][B·H·W] = bias + the inverse transform of M[16][M][T].
    public static func output(
        rows: Int, batch: Int, height: Int, width: Int, m: UnsafePointer<Float>, bias: UnsafePointer<Float>,
        into out: UnsafeMutablePointer<Float>, _ r: Range<Int>
    ) {
        swiftrain_wino_output(rows, batch, height, width, m, bias, out, r.lowerBound, r.upperBound)
    }

    /// `output` for tile rows `rows` (row r = b·⌈H/2⌉ + ty) of every plane, from a block M[16][M][ldm] that
    /// holds those rows' tiles from column 0.
    public static func outputTiles(
        planes: Int, batch: Int, height: Int, width: Int, m: UnsafePointer<Float>, ldm: Int,
        bias: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, rows: Range<Int>
    ) {
        swiftrain_wino_output_tiles(planes, batch, height, width, m, ldm, bias, out, rows.lowerBound, rows.upperBound)
    }

    /// dM[16][M][T] = the adjoint of `output` applied to dz[M][B·H·W].
    public static func outputAdjoint(
        rows: Int, batch: Int, height: Int, width: Int, dz: UnsafePointer<Float>, into dm: UnsafeMutablePointer<Float>,
        _ r: Range<Int>
    ) {
        swiftrain_wino_output_adjoint(rows, batch, height, width, dz, dm, r.lowerBound, r.upperBound)
    }

    /// U[16][M][C] from w[M][C][3][3].
    public static func weights(
        rows: Int, channels: Int, w: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>, _ r: Range<Int>
    ) {
        swiftrain_wino_weights(rows, channels, w, u, r.lowerBound, r.upperBound)
    }

    /// dw[M][C][3][3] += the adjoint of `weights` applied to dU[16][M][C].
    public static func weightsAdjoint(
        rows: Int, channels: Int, du: UnsafePointer<Float>, into dw: UnsafeMutablePointer<Float>, _ r: Range<Int>
    ) {
        swiftrain_wino_weights_adjoint(rows, channels, du, dw, r.lowerBound, r.upperBound)
    }
}

/// The bfloat16 kernels (bf16.c): conversion, the bf16 GEMM with fp32 sums, the bf16 peak loop.
public enum BF16 {
    /// The GEMM kernels, as the C side numbers them.
    public enum Kernel: Int32, Sendable {
        /// No bf16 dot-product instructions: bf16-mixed cannot run here.
        case none = 0
        /// The scalar loop the vector kernels are held to (tests).
        case reference = 1
        /// VDPBF16PS micro-kernels (AVX512_BF16: AMD Zen 4 and later, Intel Cooper Lake, Sapphire Rapids and later).
        case avx512bf16 = 2
    }

    /// The kernel in use.
    public static var kernel: Kernel { Kernel(rawValue: swiftrain_bf16_isa()) ?? .none }

    /// Uses `kernel` (never one the CPU cannot run; nil: the CPU's best); returns the one in use.
    @discardableResult
    public static func force(_ kernel: Kernel?) -> Kernel {
        Kernel(rawValue: swiftrain_bf16_force_isa(kernel?.rawValue ?? -1)) ?? .none
    }

    /// x rounded to bfloat16 (nearest even), as its 16 bits.
    public static func round(_ x: Float) -> UInt16 { swiftrain_bf16_round(x) }
    /// The Float a bfloat16 stands for (exact).
    public static func float(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    public static func convert(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt16>, count: Int) {
        swiftrain_bf16_from_f32(count, x, y)
    }

    /// C = beta·C + op(A)·op(B) in one thread; false when there is no kernel (or for Aᵀ·Bᵀ).
    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<UInt16>, lda: Int,
        b: UnsafePointer<UInt16>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) -> Bool {
        swiftrain_gemm_bf16(transA ? 1 : 0, transB ? 1 : 0, m, n, k, a, lda, b, ldb, beta, c, ldc) == 0
    }

    /// 32-bit words of op(A)[m×k] packed for `gemm(packedA:…)`.
    static func packedAWords(m: Int, k: Int) -> Int { swiftrain_bf16_packed_a_words(m, k) }
    /// Packs op(A) once for many products that share it.
    static func packA(
        transA: Bool, m: Int, k: Int, a: UnsafePointer<UInt16>, lda: Int, into packed: UnsafeMutablePointer<UInt32>
    ) {
        swiftrain_bf16_pack_a(transA ? 1 : 0, m, k, a, lda, packed)
    }
    /// C = beta·C + A·B with A packed by `packA`, in one thread; false when there is no kernel.
    static func gemm(
        m: Int, n: Int, k: Int, packedA: UnsafePointer<UInt32>, b: UnsafePointer<UInt16>, ldb: Int, beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) -> Bool {
        swiftrain_gemm_bf16_packed(m, n, k, packedA, b, ldb, beta, c, ldc) == 0
    }
}

extension WinogradTransforms {
    /// `input` with V stored as bfloat16 (AVX512_BF16 only).
    public static func inputBF16(
        channels: Int, batch: Int, height: Int, width: Int, planes: [UnsafePointer<Float>?],
        into v: UnsafeMutablePointer<UInt16>, _ r: Range<Int>
    ) {
        planes.withUnsafeBufferPointer { p in
            swiftrain_wino_input_bf16(channels, batch, height, width, p.baseAddress, v, r.lowerBound, r.upperBound)
        }
    }

    /// `outputAdjoint` with dM stored as bfloat16 (AVX512_BF16 only).
    public static func outputAdjointBF16(
        rows: Int, batch: Int, height: Int, width: Int, dz: UnsafePointer<Float>,
        into dm: UnsafeMutablePointer<UInt16>, _ r: Range<Int>
    ) {
        swiftrain_wino_output_adjoint_bf16(rows, batch, height, width, dz, dm, r.lowerBound, r.upperBound)
    }
}
