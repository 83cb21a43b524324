import RainSupport

/// What each worker computes, and when (DESIGN.md §5): per epoch a seeded permutation of the train
/// samples, cut into global batches of fixed size whatever the number of workers, each split into
/// contiguous per-worker shards. Pure, so every process and every test computes the same plan.
public enum Sharding {
    /// Permutation of 0..<count for (seed, epoch): Fisher–Yates with SplitMix64.
    public static func permutation(count: Int, seed: Int, epoch: Int) -> [Int] {
        var rng = SplitMix(
            UInt64(bitPattern: Int64(seed)) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(epoch) &* 0xD1B5_4A32_D192_ED03)
        var p = Array(0..<count)
        if count < 2 { return p }
        for i in stride(from: count - 1, to: 0, by: -1) {
            let j = Int(rng.next() % UInt64(i + 1))
            p.swapAt(i, j)
        }
        return p
    }

    /// Steps per epoch: the last, smaller batch is kept (PyTorch DataLoader's default).
    public static func stepsPerEpoch(count: Int, batch: Int) -> Int { (count + batch - 1) / batch }

    /// The samples of global batch `step` of an epoch's permutation.
    public static func batch(_ permutation: [Int], step: Int, size: Int) -> ArraySlice<Int> {
        permutation[(step * size)..<min(permutation.count, (step + 1) * size)]
    }

    /// Contiguous shards of `items` for `workers` workers; sizes differ by at most one.
    public static func shards<C: Collection>(_ items: C, workers: Int) -> [[C.Element]] where C.Index == Int {
        let n = items.count, lo = items.startIndex
        return (0..<workers).map { w in Array(items[(lo + n * w / workers)..<(lo + n * (w + 1) / workers)]) }
    }

    /// `--sharding locality`: the train samples cut into `workers` blocks of contiguous sample times; in
    /// epoch e worker w reads block (w + e) mod workers only, in a seeded order, so each step's shard
    /// comes from one contiguous slice of the files. Samples are indexed lead by lead (`segments` holds
    /// each lead's count, its times ascending), so block b takes the b-th slice of every lead: the same
    /// stretch of time. Blocks rotate every epoch, so over `workers` epochs every worker sees every
    /// block. Unlike the global permutation, results depend on N.
    public struct LocalityPlan: Equatable {
        public let workers: Int
        /// Per worker, this epoch's samples in the order it reads them.
        public let orders: [[Int]]
        public let stepsPerEpoch: Int

        public init(segments: [Int], workers: Int, batch: Int, seed: Int, epoch: Int) {
            let w = max(1, workers)
            self.workers = w
            let blocks = (0..<w).map { b -> [Int] in
                var start = 0, out: [Int] = []
                for n in segments {
                    out += (start + n * b / w)..<(start + n * (b + 1) / w)
                    start += n
                }
                return out
            }
            let orders = (0..<w).map { worker -> [Int] in
                let block = blocks[(worker + epoch) % w]
                return permutation(count: block.count, seed: seed &+ 7919 &* (worker + 1), epoch: epoch).map {
                    block[$0]
                }
            }
            self.orders = orders
            // The global batch stays `batch`, cut into per-worker shares as `shards` cuts it.
            stepsPerEpoch =
                (0..<w).map { i in
                    let share = max(1, Self.share(batch: batch, worker: i, workers: w))
                    return (orders[i].count + share - 1) / share
                }.max() ?? 0
        }

        static func share(batch: Int, worker w: Int, workers: Int) -> Int {
            batch * (w + 1) / workers - batch * w / workers
        }

        /// The shards of global step `step`: worker w's next slice of its own block.
        public func shards(step: Int, batch: Int) -> [[Int]] {
            (0..<workers).map { w in
                let share = Self.share(batch: batch, worker: w, workers: workers)
                let lo = min(orders[w].count, step * share), hi = min(orders[w].count, (step + 1) * share)
                return Array(orders[w][lo..<hi])
            }
        }
    }
}
