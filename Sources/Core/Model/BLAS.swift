// The only file that imports COpenBLAS: every matrix product in SwiftRain goes through `BLAS.sgemm`.
import COpenBLAS

/// Thin, typed access to OpenBLAS.
public enum BLAS {
    /// Whether an operand is used as stored (row-major) or transposed.
    public enum Transpose { case no, yes }

    /// C[M×N] = alpha · op(A)[M×K] · op(B)[K×N] + beta · C, all row-major.
    ///
    /// `lda`, `ldb`, `ldc` default to the dense leading dimensions of the stored matrices.
    @inlinable
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
        cblas_sgemm(
            CblasRowMajor,
            transA == .no ? CblasNoTrans : CblasTrans,
            transB == .no ? CblasNoTrans : CblasTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Number of threads OpenBLAS uses for one call.
    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(max(1, newValue))) }
    }
}
