import Dispatch

/// Splits loops that OpenBLAS does not run (gates, im2col, col2im, Adam) across the same number of
/// threads the GEMMs use, so a 2-thread step is not half single-threaded.
public enum Parallel {
    /// Threads for element-wise work; follows `BLAS.threads` unless set.
    nonisolated(unsafe) public static var threads: Int = 0

    /// Calls `body` on disjoint contiguous parts of 0..<count, concurrently.
    @inline(__always)
    public static func forEach(_ count: Int, minimumPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
        let t = min(threads > 0 ? threads : BLAS.threads, max(1, count / max(1, minimumPerThread)))
        if t <= 1 {
            body(0..<count)
            return
        }
        DispatchQueue.concurrentPerform(iterations: t) { i in
            body((count * i / t)..<(count * (i + 1) / t))
        }
    }
}
