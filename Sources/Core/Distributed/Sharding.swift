/// What each worker computes, and when (DESIGN.md §5): per epoch a seeded permutation of the train
/// samples, cut into global batches of fixed size whatever the number of workers, each split into
/// contiguous per-worker shards. Pure, so every process and every test computes the same plan.
public enum Sharding {
    /// Permutation of 0..<count for (seed, epoch): Fisher–Yates with SplitMix64.
    public static func permutation(count: Int, seed: Int, epoch: Int) -> [Int] {
        var rng = SplitMix(UInt64(bitPattern: Int64(seed)) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(epoch) &* 0xD1B5_4A32_D192_ED03)
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
}
