/// The forward products and the output transform fused per block of tile rows, for models whose 16
/// products of a block fit in cache (the small model): M never goes to memory.
///
///     for each block of tile rows (blocks shared among threads):
///         Mξ[M][block] = Uξ · Vξ[:, block]   (16 products, one thread, a scratch of 16·M·block floats)
///         out[M][rows of the block] = bias + Aᵀ Mξ A
///
/// Unfused, the small model writes and reads back M (16·4F·T floats, 134 MB per step at B = 32) for every
/// time step; fused, the block stays in L2. Each output value is the same sum as unfused (a block's
/// product covers whole columns of the same k), so the bits do not depend on the thread count.
extension Winograd3x3 {
    /// Scratch per thread, in floats: three quarters of a 1 MiB L2 (the small model's blocks are then 3 tile
    /// rows, 96 tiles: two whole bf16 panels; measured faster than 2 or 4 rows).
    static let fusedBudget = 196_608

    /// Tile rows per block: as many as the budget holds (0: not even one, so the forward stays unfused).
    static func fusedRows(outputs m: Int, tileWidth: Int, tileRows: Int) -> Int {
        min(tileRows, fusedBudget / (16 * m * tileWidth))
    }

    func forwardFused(bias: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let (m, c, t, tw) = (self.m, self.c, tiles, (width + 1) / 2)
        let rowsTotal = batch * ((height + 1) / 2), per = fusedRows
        let blocks = (rowsTotal + per - 1) / per, ldm = per * tw
        let (batch, height, width, words) = (batch, height, width, packedWords)
        let bf16 = precision == .bf16Mixed, onednn = BF16Dispatch.backend == .onednn
        let (packed, v16p, up, vp) = (UnsafePointer(uPacked), UnsafePointer(v16.pointer), u.pointer, v.pointer)
        let u16p = UnsafePointer(u16.pointer)
        StepPhases.time(.gemm) {
            Parallel.forEach(blocks) { range in
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 16 * m * ldm)
                defer { scratch.deallocate() }
                for block in range {
                    let r0 = block * per, r1 = min(rowsTotal, r0 + per)
                    let (t0, nb) = (r0 * tw, (r1 - r0) * tw)
                    for f in 0..<16 {
                        if bf16 && onednn {
                            BF16GEMM.one(
                                BF16GEMM.Product(
                                    m: m, n: nb, k: c, a: u16p + f * m * c, lda: c, b: v16p + f * c * t + t0, ldb: t,
                                    c: scratch + f * m * ldm, ldc: ldm))
                        } else if bf16 {
                            let ok = BF16.gemm(
                                m: m, n: nb, k: c, packedA: packed + f * words, b: v16p + f * c * t + t0, ldb: t,
                                beta: 0, c: scratch + f * m * ldm, ldc: ldm)
                            precondition(ok, "bf16 GEMM without a kernel")
                        } else {
                            BLAS.sgemmOne(
                                m: m, n: nb, k: c, a: up + f * m * c, lda: c, b: vp + f * c * t + t0, ldb: t, beta: 0,
                                c: scratch + f * m * ldm, ldc: ldm)
                        }
                    }
                    WinogradTransforms.outputTiles(
                        planes: m, batch: batch, height: height, width: width, m: scratch, ldm: ldm, bias: bias,
                        into: out, rows: r0..<r1)
                }
            }
        }
    }
}
