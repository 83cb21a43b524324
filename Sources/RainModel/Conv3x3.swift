/// 3×3 convolution, padding 1, stride 1, as im2col + one sgemm.
///
///     source planes  src[c][b][H·W]           (channel-major: c over sources, b over the batch)
///     columns        col[K = C·9][N = B·H·W]  row k = c·9 + ky·3 + kx (PyTorch's weight order)
///     weight         w[M][K]                  (M = output channels)
///     output         out[M][N] = w · col + bias
///
/// Keeping activations channel-major ([C][B][HW]) makes the GEMM output directly the next layer's
/// input and keeps every gate computation a flat loop.
public enum Conv3x3 {
    /// A source of input planes for im2col: channel c, batch b → pointer to an H·W plane.
    public typealias PlaneSource = (_ c: Int, _ b: Int) -> UnsafePointer<Float>?
    // Both closures are called concurrently for different channels.

    /// Fills col[C·9][B·H·W]; a nil plane (e.g. h₀ = 0) writes zeros.
    public static func im2col(
        channels: Int, batch: Int, height h: Int, width w: Int,
        source: PlaneSource, col: UnsafeMutablePointer<Float>
    ) {
        let hw = h * w, n = batch * hw
        StepPhases.time(.columns) {
            Parallel.forEach(channels) { cs in
                for c in cs {
                    for b in 0..<batch {
                        let src = source(c, b)
                        for ky in 0..<3 {
                            for kx in 0..<3 {
                                let dst = col + (c * 9 + ky * 3 + kx) * n + b * hw
                                guard let src else {
                                    dst.update(repeating: 0, count: hw)
                                    continue
                                }
                                let dx = kx - 1
                                for y in 0..<h {
                                    let sy = y + ky - 1
                                    let row = dst + y * w
                                    if sy < 0 || sy >= h {
                                        row.update(repeating: 0, count: w)
                                        continue
                                    }
                                    let s = src + sy * w
                                    // Interior copy, zero padding at the edge the shift exposes.
                                    if dx == 0 {
                                        row.update(from: s, count: w)
                                    } else if dx < 0 {
                                        row[0] = 0
                                        (row + 1).update(from: s, count: w - 1)
                                    } else {
                                        row.update(from: s + 1, count: w - 1)
                                        row[w - 1] = 0
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds the column gradient back into source-plane gradients (the adjoint of im2col), for
    /// channels in `range` only: `col` holds their rows alone, row (c − range.lowerBound)·9 + ky·3 + kx.
    /// `grad(c, b)` is the H·W plane to accumulate into.
    public static func col2im(
        channels range: Range<Int>, batch: Int, height h: Int, width w: Int,
        col: UnsafePointer<Float>, grad: (_ c: Int, _ b: Int) -> UnsafeMutablePointer<Float>
    ) {
        let hw = h * w, n = batch * hw
        StepPhases.time(.columns) {
            Parallel.forEach(range.count) { part in
                for c in part.map({ $0 + range.lowerBound }) {
                    for b in 0..<batch {
                        let g = grad(c, b)
                        for ky in 0..<3 {
                            for kx in 0..<3 {
                                let src = col + ((c - range.lowerBound) * 9 + ky * 3 + kx) * n + b * hw
                                let dx = kx - 1
                                for y in 0..<h {
                                    let sy = y + ky - 1
                                    if sy < 0 || sy >= h { continue }
                                    let r = src + y * w, d = g + sy * w
                                    let x0 = max(0, -dx), x1 = min(w, w - dx)
                                    for x in x0..<x1 { d[x + dx] += r[x] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// out[M][N] = w[M][K] · col[K][N] + bias[M].
    public static func forward(
        m: Int, k: Int, n: Int, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
        col: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>
    ) {
        StepPhases.time(.reductions) {
            Parallel.forEach(m) { rows in
                for i in rows { (out + i * n).update(repeating: bias[i], count: n) }
            }
        }
        StepPhases.time(.gemm) { BLAS.sgemm(.no, .no, m: m, n: n, k: k, a: weight, b: col, beta: 1, c: out) }
    }

    /// dW[M][K] += dOut · colᵀ; dBias[M] += Σₙ dOut; dCol[K′][N] = (wᵀ · dOut) restricted to the rows
    /// `dColRows` of K (default all; skipped when nil): col2im of a recurrent layer needs only h's rows.
    public static func backward(
        m: Int, k: Int, n: Int, weight: UnsafePointer<Float>, col: UnsafePointer<Float>,
        dOut: UnsafePointer<Float>, dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>,
        dCol: UnsafeMutablePointer<Float>?, dColRows: Range<Int>? = nil
    ) {
        StepPhases.time(.gemm) { BLAS.sgemm(.no, .yes, m: m, n: k, k: n, a: dOut, b: col, beta: 1, c: dWeight) }
        biasGradient(m: m, n: n, dOut: dOut, dBias: dBias)
        guard let dCol else { return }
        let rows = dColRows ?? 0..<k
        StepPhases.time(.gemm) {
            BLAS.sgemm(
                .yes, .no, m: rows.count, n: n, k: m, a: weight + rows.lowerBound, lda: k, b: dOut, c: dCol)
        }
    }

    /// dBias[M] += Σₙ dOut[M][N].
    static func biasGradient(m: Int, n: Int, dOut: UnsafePointer<Float>, dBias: UnsafeMutablePointer<Float>) {
        StepPhases.time(.reductions) {
            Parallel.forEach(m) { rows in
                for i in rows {
                    // Four partial sums: the compiler keeps the order, so this is what lets it vectorise.
                    var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0
                    let r = dOut + i * n
                    var j = 0
                    while j + 4 <= n {
                        s0 += r[j]
                        s1 += r[j + 1]
                        s2 += r[j + 2]
                        s3 += r[j + 3]
                        j += 4
                    }
                    while j < n {
                        s0 += r[j]
                        j += 1
                    }
                    dBias[i] += (s0 + s1) + (s2 + s3)
                }
            }
        }
    }
}
