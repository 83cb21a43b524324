/// Per-cell means of the planes that fall in one output row (GPM's two half-hours of an hour): the
/// mean of the values present, NaN where none is. Rows are handed back once no later file can add
/// to them, so memory stays at a few planes.
struct StepMeans {
    struct Key: Hashable, Comparable {
        var row: Int, channel: Int
        static func < (a: Key, b: Key) -> Bool { (a.row, a.channel) < (b.row, b.channel) }
    }
    let plane: Int
    private var sums: [Key: [Double]] = [:]
    private var counts: [Key: [Int32]] = [:]

    init(plane: Int) { self.plane = plane }

    mutating func add(_ values: ArraySlice<Float>, row: Int, channel: Int) {
        let key = Key(row: row, channel: channel)
        var s = sums[key] ?? [Double](repeating: 0, count: plane)
        var n = counts[key] ?? [Int32](repeating: 0, count: plane)
        for (k, v) in values.enumerated() where !v.isNaN {
            s[k] += Double(v)
            n[k] += 1
        }
        sums[key] = s
        counts[key] = n
    }

    /// Removes and returns the means of rows before `row` (nil: all), in row order.
    mutating func take(before row: Int?) -> [(key: Key, mean: [Float])] {
        let keys = sums.keys.filter { row == nil || $0.row < row! }.sorted()
        return keys.map { key in
            let s = sums.removeValue(forKey: key)!, n = counts.removeValue(forKey: key)!
            return (key, (0..<plane).map { n[$0] > 0 ? Float(s[$0] / Double(n[$0])) : .nan })
        }
    }
}
