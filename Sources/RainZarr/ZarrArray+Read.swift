import Foundation
import RainSupport

extension ZarrArray {
    /// The hyperslab `start ..< start + count` as Doubles in C order of `count`. Chunks are decoded one at a
    /// time, so memory is the result plus one chunk; missing chunks (and missing inner chunks of a shard)
    /// read as the fill value.
    public func read(start: [Int], count: [Int]) throws -> [Double] {
        let rank = shape.count
        guard start.count == rank, count.count == rank,
            (0..<rank).allSatisfy({ start[$0] >= 0 && count[$0] >= 0 && start[$0] + count[$0] <= shape[$0] })
        else {
            throw SwiftRainError(
                subject, "read outside the array", expected: "within shape \(shape)",
                found: "start \(start), count \(count)", hint: "this is a bug in the caller; please report it")
        }
        let total = count.reduce(1, *)
        var out = [Double](repeating: fillValue, count: total)
        guard total > 0 else { return out }
        var outStrides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) { outStrides[i] = outStrides[i + 1] * count[i + 1] }
        let first = (0..<rank).map { start[$0] / chunkShape[$0] }
        let last = (0..<rank).map { (start[$0] + count[$0] - 1) / chunkShape[$0] }
        var shards = ShardCache()
        if rank == 0 { return try decodedChunk([], shards: &shards).map { $0.doubles(self) } ?? out }
        try forEachIndex(from: first, through: last) { c in
            guard let chunk = try decodedChunk(c, shards: &shards) else { return }  // missing: fill stays
            // The overlap of this chunk with the region, in the chunk's and the output's coordinates.
            let lo = (0..<rank).map { max(start[$0], c[$0] * chunkShape[$0]) }
            let hi = (0..<rank).map { min(start[$0] + count[$0], (c[$0] + 1) * chunkShape[$0]) }
            var chunkStrides = [Int](repeating: 1, count: rank)
            for i in stride(from: rank - 2, through: 0, by: -1) {
                chunkStrides[i] = chunkStrides[i + 1] * chunkShape[i + 1]
            }
            let run = hi[rank - 1] - lo[rank - 1]
            // Only the overlap is converted: a read of one level of a 13-level chunk converts 1/13 of it.
            try chunk.withElements(self) { element in
                try out.withUnsafeMutableBufferPointer { o in
                    try forEachIndex(
                        from: lo.dropLast() + [lo[rank - 1]], through: hi.dropLast().map { $0 - 1 } + [lo[rank - 1]]
                    ) { p in
                        var src = 0, dst = 0
                        for i in 0..<rank {
                            src += (p[i] - c[i] * chunkShape[i]) * chunkStrides[i]
                            dst += (p[i] - start[i]) * outStrides[i]
                        }
                        for k in 0..<run { o[dst + k] = element(src + k) }
                    }
                }
            }
        }
        return out
    }

    /// Every value (small coordinate arrays).
    public func readAll() throws -> [Double] { try read(start: shape.map { _ in 0 }, count: shape) }

    /// Calls `body` for every index of the box `from ... through` (inclusive), last axis fastest.
    private func forEachIndex(from: [Int], through: [Int], _ body: ([Int]) throws -> Void) throws {
        guard zip(from, through).allSatisfy({ $0 <= $1 }) else { return }
        var i = from
        while true {
            try body(i)
            var axis = i.count - 1
            while axis >= 0 {
                i[axis] += 1
                if i[axis] <= through[axis] { break }
                i[axis] = from[axis]
                axis -= 1
            }
            if axis < 0 { return }
        }
    }

    /// The key of chunk (or shard) `c`: "0.1.2" (v2), "c/0/1/2" (v3).
    func key(_ c: [Int]) -> String {
        let joined = c.map(String.init).joined(separator: separator)
        guard let keyPrefix else { return c.isEmpty ? "0" : joined }
        return c.isEmpty ? keyPrefix : keyPrefix + separator + joined
    }

    private var arrayDirectory: URL { name.isEmpty ? store : store.appendingPathComponent(name) }

    /// A decoded chunk: its stored bytes when they are already in C order of `chunkShape`, else its
    /// values put in that order.
    enum Chunk {
        case bytes([UInt8])
        case doubles([Double])

        func doubles(_ a: ZarrArray) -> [Double] {
            switch self {
            case .doubles(let d): return d
            case .bytes(let b):
                return b.withUnsafeBytes { r in (0..<(b.count / a.dataType.size)).map { a.dataType.value(r, $0) } }
            }
        }

        /// Calls `body` with a function giving element i (C order of the chunk) as a Double.
        func withElements(_ a: ZarrArray, _ body: ((Int) -> Double) throws -> Void) rethrows {
            switch self {
            case .doubles(let d): try d.withUnsafeBufferPointer { p in try body { p[$0] } }
            case .bytes(let b):
                try b.withUnsafeBytes { r in
                    if a.dataType == DataType(kind: .float, size: 4) {
                        let f = r.bindMemory(to: Float.self)  // little-endian float32: WB2's and ARCO's type
                        try body { Double(f[$0]) }
                    } else {
                        try body { a.dataType.value(r, $0) }
                    }
                }
            }
        }
    }

    /// The decoded chunk `c`, or nil when it is not stored.
    private func decodedChunk(_ c: [Int], shards: inout ShardCache) throws -> Chunk? {
        let elements = chunkShape.reduce(1, *)
        let bytes: [UInt8]
        let chunkName: String
        if let sharding {
            let perShard = zip(sharding.shardShape, chunkShape).map { $0 / $1 }
            let s = zip(c, perShard).map { $0 / $1 }
            chunkName = key(s) + " (inner chunk \(zip(c, perShard).map { String($0 % $1) }.joined(separator: ",")))"
            let inner = zip(c, perShard).map { $0 % $1 }.enumerated().reduce(0) {
                $0 * perShard[$1.offset] + $1.element
            }
            guard let b = try shards.chunk(self, shard: s, inner: inner, count: perShard.reduce(1, *)) else {
                return nil
            }
            bytes = b
        } else {
            chunkName = key(c)
            guard let b = try readFile(arrayDirectory.appendingPathComponent(chunkName), offset: 0, length: nil) else {
                return nil
            }
            bytes = b
        }
        var decoded = bytes
        let subject = "\(self.subject): chunk \(chunkName)"
        for (i, codec) in compressors.enumerated().reversed() {
            // The innermost codec's output is the chunk's bytes, whose size the metadata fixes.
            decoded = try codec.decode(
                decoded, expected: i == 0 ? elements * dataType.size : nil, limit: Self.chunkLimit, subject: subject)
        }
        guard decoded.count == elements * dataType.size else {
            throw SwiftRainError(
                subject, "the chunk holds \(decoded.count) bytes",
                expected: "\(elements * dataType.size) bytes (\(chunkShape) of \(dataType.size)-byte elements)",
                hint: "the chunk is truncated or the metadata does not describe it; rewrite the store")
        }
        if storedOrder == Array(0..<chunkShape.count) { return .bytes(decoded) }
        return .doubles(decoded.withUnsafeBytes { raw in logicalOrder(raw, elements) })
    }

    /// Stored elements into C order of `chunkShape` (undoing v2's F order or v3's transpose).
    private func logicalOrder(_ raw: UnsafeRawBufferPointer, _ elements: Int) -> [Double] {
        let rank = chunkShape.count
        // The stored array has shape chunkShape[storedOrder[i]]; find each logical axis's stride in it.
        var storedStrides = [Int](repeating: 1, count: rank)
        for i in stride(from: rank - 2, through: 0, by: -1) {
            storedStrides[i] = storedStrides[i + 1] * chunkShape[storedOrder[i + 1]]
        }
        var strideOf = [Int](repeating: 0, count: rank)
        for i in 0..<rank { strideOf[storedOrder[i]] = storedStrides[i] }
        var out = [Double](repeating: 0, count: elements)
        var index = [Int](repeating: 0, count: rank), offset = 0
        for k in 0..<elements {
            out[k] = dataType.value(raw, offset)
            var axis = rank - 1
            while axis >= 0 {
                index[axis] += 1
                offset += strideOf[axis]
                if index[axis] < chunkShape[axis] { break }
                offset -= strideOf[axis] * chunkShape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
        return out
    }

    /// Bytes `offset ..< offset + length` of `url` (the whole file when length is nil; from the end when
    /// offset is negative); nil when the file does not exist. Never more than the chunk limit.
    func readFile(_ url: URL, offset: Int, length: Int?) throws -> [UInt8]? {
        guard let handle = FileHandle(forReadingAtPath: url.path) else { return nil }
        defer { try? handle.close() }
        let size = Int(try handle.seekToEnd())
        let start = offset < 0 ? size + offset : offset
        let n = length ?? size - start
        guard start >= 0, n >= 0, start + n <= size, n <= Self.chunkLimit + 1024 else {
            throw SwiftRainError(
                "\(subject): \(url.lastPathComponent)", "the file is \(size) bytes",
                expected: "bytes \(start)..<\(start + n) (at most \(Self.chunkLimit >> 20) MiB at once)",
                hint: "the chunk file is truncated or its index is damaged; rewrite the store")
        }
        try handle.seek(toOffset: UInt64(start))
        return [UInt8](try handle.read(upToCount: n) ?? Data())
    }
}

/// The index of the last shard read, so a region inside one shard reads its index once.
struct ShardCache {
    private var key: [Int]?
    private var index: [(offset: UInt64, length: UInt64)] = []

    mutating func chunk(_ a: ZarrArray, shard: [Int], inner: Int, count: Int) throws -> [UInt8]? {
        guard let sharding = a.sharding else { return nil }
        let url = a.store.appendingPathComponent(a.name).appendingPathComponent(a.key(shard))
        if key != shard {
            key = shard
            index = []
            let size = count * 16 + (sharding.indexChecksum ? 4 : 0)
            guard var raw = try a.readFile(url, offset: sharding.indexAtEnd ? -size : 0, length: size) else {
                return nil
            }
            if sharding.indexChecksum {
                raw = try ZarrCompressor.crc32c.decode(
                    raw, expected: nil, limit: size, subject: "\(a.subject): shard \(a.key(shard)) index")
            }
            index = raw.withUnsafeBytes { r in
                (0..<count).map { i in
                    (
                        UInt64(littleEndian: r.loadUnaligned(fromByteOffset: 16 * i, as: UInt64.self)),
                        UInt64(littleEndian: r.loadUnaligned(fromByteOffset: 16 * i + 8, as: UInt64.self))
                    )
                }
            }
        }
        guard !index.isEmpty else { return nil }  // the shard is missing
        let (offset, length) = index[inner]
        if offset == .max && length == .max { return nil }
        guard offset < 1 << 50, length < 1 << 40 else {
            throw SwiftRainError(
                "\(a.subject): shard \(a.key(shard))", "inner chunk \(inner) points outside any file",
                found: "offset \(offset), length \(length)", hint: "the shard's index is damaged; rewrite the store")
        }
        return try a.readFile(url, offset: Int(offset), length: Int(length))
    }
}
