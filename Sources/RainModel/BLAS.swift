// The only file that imports COpenBLAS: every matrix product in SwiftRain goes through `BLAS.sgemm`.
import COpenBLAS
import Dispatch

/// Typed access to OpenBLAS, with SwiftRain's own threading.
///
/// OpenBLAS runs single-threaded; `sgemm` cuts each product into the pieces of a `GEMMPlan` (fixed by
/// the shape) and shares them among `threads` threads. So the bits of every product, and of a
/// whole training step, are the same for any thread count.
public enum BLAS {
    /// Whether an operand is used as stored (row-major) or transposed.
    public enum Transpose { case no, yes }

    /// How products are spread over threads. `.openBLAS` hands `threads` to OpenBLAS and makes one
    /// call (results then depend on the thread count); it exists so `bench step` can compare the two.
    public enum Threading: String, Codable { case pieces, openBLAS = "openblas" }

    /// OpenBLAS's own default (OPENBLAS_NUM_THREADS, else the core count), read once before it is set
    /// to one thread for good.
    private static let openBLASDefault: Int = {
        let t = Int(openblas_get_num_threads())
        openblas_set_num_threads(1)
        return max(1, t)
    }()
    nonisolated(unsafe) private static var requestedThreads: Int?
    nonisolated(unsafe) private static var mode = Threading.pieces

    /// Threads for one product (and for the element-wise loops, see `Parallel`); by default what
    /// OpenBLAS would have used (OPENBLAS_NUM_THREADS, else the number of cores).
    public static var threads: Int {
        get { requestedThreads ?? openBLASDefault }
        set {
            requestedThreads = max(1, newValue)
            applyMode()
        }
    }

    public static var threading: Threading {
        get { mode }
        set {
            mode = newValue
            applyMode()
        }
    }

    private static func applyMode() {
        _ = openBLASDefault
        openblas_set_num_threads(Int32(mode == .openBLAS ? threads : 1))
    }

    /// The kernel OpenBLAS chose when it loaded (e.g. "Cooperlake", or "Prescott" on a CPU it does not know).
    public static var coreName: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// C[M×N] = alpha · op(A)[M×K] · op(B)[K×N] + beta · C, all row-major.
    ///
    /// `lda`, `ldb`, `ldc` default to the dense leading dimensions of the stored matrices.
    public static func sgemm(
        _ transA: Transpose, _ transB: Transpose,
        m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int? = nil,
        b: UnsafePointer<Float>, ldb: Int? = nil,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int? = nil
    ) {
        let lda = lda ?? (transA == .no ? k : m)
        let ldb = ldb ?? (transB == .no ? n : k)
        let ldc = ldc ?? n
        _ = openBLASDefault
        func call(
            _ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
            _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int
        ) {
            cblas_sgemm(
                CblasRowMajor, transA == .no ? CblasNoTrans : CblasTrans, transB == .no ? CblasNoTrans : CblasTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
        let plan = GEMMPlan(m: m, n: n, k: k)
        if mode == .openBLAS || plan.split == .none {
            call(m, n, k, a, b, beta, c, ldc)
            return
        }
        let bounds = plan.bounds
        switch plan.split {
        case .none:
            break
        case .columns:
            onPieces(plan.pieces) { p in
                let j0 = bounds[p], j1 = bounds[p + 1]
                call(m, j1 - j0, k, a, transB == .no ? b + j0 : b + j0 * ldb, beta, c + j0, ldc)
            }
        case .rows:
            onPieces(plan.pieces) { p in
                let i0 = bounds[p], i1 = bounds[p + 1]
                call(i1 - i0, n, k, transA == .no ? a + i0 * lda : a + i0, b, beta, c + i0 * ldc, ldc)
            }
        case .inner:
            // Partial products in their own buffers, then added to C in piece order.
            let mn = m * n
            let partial = UnsafeMutablePointer<Float>.allocate(capacity: plan.pieces * mn)
            defer { partial.deallocate() }
            onPieces(plan.pieces) { p in
                let k0 = bounds[p], k1 = bounds[p + 1]
                call(
                    m, n, k1 - k0, transA == .no ? a + k0 : a + k0 * lda, transB == .no ? b + k0 * ldb : b + k0,
                    0, partial + p * mn, n)
            }
            let pieces = plan.pieces
            Parallel.forEach(m) { rows in
                for i in rows {
                    let row = c + i * ldc
                    for j in 0..<n {
                        var s: Float = beta == 0 ? 0 : beta * row[j]
                        for p in 0..<pieces { s += partial[p * mn + i * n + j] }
                        row[j] = s
                    }
                }
            }
        }
    }

    /// C = A · B + beta · C as one OpenBLAS call on the calling thread (for callers that share their own
    /// pieces among threads; only while `threading` is `.pieces`, when OpenBLAS runs single-threaded).
    public static func sgemmOne(
        m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        _ = openBLASDefault
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb),
            beta, c, Int32(ldc))
    }

    /// One product for `sgemm(batch:)`: C = op(A) · op(B) + beta · C, dense leading dimensions unless given.
    public struct Product {
        public var transA: Transpose, transB: Transpose
        public var m: Int, n: Int, k: Int
        public var a: UnsafePointer<Float>, lda: Int?
        public var b: UnsafePointer<Float>, ldb: Int?
        public var beta: Float
        public var c: UnsafeMutablePointer<Float>
        public init(
            _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int? = nil,
            b: UnsafePointer<Float>, beta: Float = 0, c: UnsafeMutablePointer<Float>
        ) {
            (self.transA, self.transB, self.m, self.n, self.k) = (transA, transB, m, n, k)
            (self.a, self.lda, self.b, self.ldb, self.beta, self.c) = (a, lda, b, nil, beta, c)
        }
    }

    /// Independent products (e.g. Winograd's 16), each computed whole by one single-threaded OpenBLAS
    /// call, the products shared among `threads` threads: no operand is re-packed per piece, and each
    /// product's bits are the same for any thread count. With `.openBLAS` threading, one at a time.
    public static func sgemm(batch: [Product]) {
        _ = openBLASDefault
        func one(_ p: Product) {
            let lda = p.lda ?? (p.transA == .no ? p.k : p.m), ldb = p.ldb ?? (p.transB == .no ? p.n : p.k)
            cblas_sgemm(
                CblasRowMajor, p.transA == .no ? CblasNoTrans : CblasTrans, p.transB == .no ? CblasNoTrans : CblasTrans,
                Int32(p.m), Int32(p.n), Int32(p.k), 1, p.a, Int32(lda), p.b, Int32(ldb), p.beta, p.c, Int32(p.n))
        }
        if mode == .openBLAS {
            batch.forEach(one)
            return
        }
        onPieces(batch.count) { one(batch[$0]) }
    }

    /// Runs pieces 0..<count on `threads` threads, each thread a contiguous run of pieces.
    static func onPieces(_ count: Int, _ body: (Int) -> Void) {
        let t = min(threads, count)
        if t <= 1 {
            for p in 0..<count { body(p) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: t) { i in
            for p in (count * i / t)..<(count * (i + 1) / t) { body(p) }
        }
    }
}
