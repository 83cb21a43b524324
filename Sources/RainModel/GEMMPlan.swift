/// How one product C[M×N] = op(A)[M×K] · op(B)[K×N] is cut into pieces, each computed by one
/// single-threaded OpenBLAS call.
///
/// The cut depends on M, N and K only, never on the thread count: every element of C is then
/// produced by the same sequence of kernel calls whether one thread runs all pieces or eight threads
/// share them, so a training step gives the same bits for any `--threads` (OpenBLAS's own threading
/// splits by thread count, and its sums change with it).
///
///     columns  C[:, j0..<j1] = op(A) · op(B)[:, j0..<j1]     each piece re-packs all of op(A)
///     rows     C[i0..<i1, :] = op(A)[i0..<i1, :] · op(B)     each piece re-packs all of op(B)
///     inner    P_p = op(A)[:, k0..<k1] · op(B)[k0..<k1, :];  C = βC + P_0 + P_1 + …  (in that order)
///
/// Re-packing the shared operand is the cost of a cut: about 0.5 ns per element when it does not fit
/// in cache, against 0.01 ns per FLOP of kernel time (measured on the bench shapes), so pieces w
/// columns wide cost about 0.5 / (2 · 0.01 · w) of the product: ~3% at w = `largeEdge`. Pieces are
/// therefore 1 + dim / `largeEdge` (or `smallEdge` when the re-packed operand is cache-sized),
/// rounded down to a count that 2, 3 and 4 threads share evenly. The inner cut is for products
/// whose output is small and whose inner dimension is long (a weight gradient summed over the batch).
public struct GEMMPlan: Equatable {
    public enum Split: Equatable { case none, columns, rows, inner }
    public let split: Split
    /// Piece p covers bounds[p]..<bounds[p + 1] of the split dimension (N, M or K).
    public let bounds: [Int]
    public var pieces: Int { bounds.count - 1 }

    /// Most pieces per product: enough to share among 8–16 threads, few enough that packing stays cheap.
    public static let maxPieces = 32
    /// Piece edges start at multiples of this (a whole number of kernel register tiles).
    public static let alignment = 16
    /// Columns (or rows) per extra piece when the re-packed operand is larger than `cachedOperandFloats`.
    public static let largeEdge = 768
    /// The same when it is smaller (packing from cache is cheap).
    public static let smallEdge = 128
    public static let cachedOperandFloats = 1 << 18
    /// Below this many FLOPs per piece, the call overhead outweighs the parallelism.
    public static let minPieceFlops = 4_000_000.0
    /// The inner cut: its partial products must be small, its chunks long.
    public static let innerMaxOutputFloats = 1 << 18
    public static let innerMinChunk = 1024
    public static let innerMaxPieces = 16
    /// Piece counts that 1, 2, 3 and 4 threads (and most larger counts) share evenly.
    static let evenCounts = [1, 2, 4, 6, 8, 12, 16, 24, 32]

    public init(m: Int, n: Int, k: Int) {
        let flops = 2 * Double(m) * Double(n) * Double(k)
        let byFlops = Int(min(Double(Self.maxPieces), flops / Self.minPieceFlops))
        func count(_ dim: Int, repacked: Int) -> Int {
            let edge = repacked > Self.cachedOperandFloats ? Self.largeEdge : Self.smallEdge
            return Self.even(min(byFlops, dim / Self.alignment, 1 + dim / edge))
        }
        let cols = count(n, repacked: m * k), rows = count(m, repacked: k * n)
        if max(cols, rows) >= 2 {
            split = cols >= rows ? .columns : .rows
            bounds = Self.cut(cols >= rows ? n : m, into: max(cols, rows))
            return
        }
        let inner = Self.even(min(Self.innerMaxPieces, byFlops, k / Self.innerMinChunk))
        if m * n <= Self.innerMaxOutputFloats && inner >= 2 {
            split = .inner
            bounds = Self.cut(k, into: inner)
            return
        }
        split = .none
        bounds = [0, n]
    }

    static func even(_ x: Int) -> Int { Self.evenCounts.last { $0 <= x } ?? 1 }

    /// 0 = b₀ < b₁ < … < b_p = dim, interior bounds on multiples of `alignment`, sizes within one unit.
    static func cut(_ dim: Int, into pieces: Int) -> [Int] {
        let units = (dim + Self.alignment - 1) / Self.alignment
        let p = max(1, min(pieces, units))
        return (0...p).map { i in min(dim, units * i / p * Self.alignment) }
    }
}
