import Foundation
import RainSupport

/// One array of a Zarr store (v2 or v3), described by its metadata alone: shape, chunk grid, element type,
/// fill value, codecs, dimension names and attributes. `read(start:count:)` (ZarrArray+Read) decodes one
/// chunk at a time.
public final class ZarrArray {
    /// Element types: integers, floats and bools of 1–8 bytes, either byte order.
    public struct DataType: Equatable {
        public enum Kind { case float, signed, unsigned, bool }
        public var kind: Kind
        public var size: Int
        public var bigEndian = false
        /// NumPy's datetime64 (`<M8[s]`, anemoi-datasets' `dates`): 8-byte counts of this unit since
        /// 1970-01-01T00:00 (`s`, `m`, `h`, `D`, `ms`, `us`, `ns`), read as plain integers.
        public var datetimeUnit: String?
    }

    /// The sharding of a v3 array: outer chunks (shards) of `shardShape` hold inner chunks of the array's
    /// `chunkShape`, found through an index of (offset, length) pairs.
    struct Sharding {
        var shardShape: [Int]
        var indexAtEnd: Bool
        var indexChecksum: Bool
    }

    /// The store's directory and the array's path inside it.
    public let store: URL
    public let name: String
    public let format: Int
    public let shape: [Int]
    /// The unit read at once: the chunk, or the inner chunk of a sharded array.
    public let chunkShape: [Int]
    public let dataType: DataType
    /// What a missing chunk reads as (zarr-python: zero when the metadata says null).
    public let fillValue: Double
    /// `dimension_names` (v3) or `_ARRAY_DIMENSIONS` (xarray's v2 attribute); nil when neither is given.
    public let dimensionNames: [String]?
    public let attributes: [String: ZarrJSON]
    /// The stored chunk's axis order: stored axis i is logical axis `storedOrder[i]` (v2 `order: "F"` reverses).
    let storedOrder: [Int]
    /// Bytes-to-bytes codecs in the order they were applied when writing.
    let compressors: [ZarrCompressor]
    let sharding: Sharding?
    let separator: String
    /// v3's default chunk keys start with "c/"; v2's (and v3's `v2` encoding) do not.
    let keyPrefix: String?

    /// A chunk decoded larger than this is refused before any allocation (hostile metadata costs no more).
    public static let chunkLimit = 512 << 20

    public var subject: String { "\(store.lastPathComponent)/\(name)" }
    public var count: Int { shape.reduce(1, *) }

    init(
        store: URL, name: String, format: Int, shape: [Int], chunkShape: [Int], dataType: DataType, fillValue: Double,
        dimensionNames: [String]?, attributes: [String: ZarrJSON], storedOrder: [Int], compressors: [ZarrCompressor],
        sharding: Sharding?, separator: String, keyPrefix: String?
    ) throws {
        self.store = store
        self.name = name
        self.format = format
        self.shape = shape
        self.chunkShape = chunkShape
        self.dataType = dataType
        self.fillValue = fillValue
        self.dimensionNames = dimensionNames
        self.attributes = attributes
        self.storedOrder = storedOrder
        self.compressors = compressors
        self.sharding = sharding
        self.separator = separator
        self.keyPrefix = keyPrefix
        try validate()
    }

    /// Shapes a hostile file could make overflow or allocate without end are refused here.
    private func validate() throws {
        func bad(_ what: String, _ found: String, _ expected: String) -> SwiftRainError {
            SwiftRainError(subject, what, expected: expected, found: found, hint: "the array's metadata is damaged")
        }
        guard chunkShape.count == shape.count else {
            throw bad(
                "chunks and shape differ in rank", "chunks \(chunkShape), shape \(shape)", "one chunk length per axis")
        }
        guard shape.allSatisfy({ $0 >= 0 }), chunkShape.allSatisfy({ $0 > 0 }) else {
            throw bad("negative or zero lengths", "shape \(shape), chunks \(chunkShape)", "shape ≥ 0, chunks > 0")
        }
        var total = 1, chunk = dataType.size
        for (n, c) in zip(shape, chunkShape) {
            let (t, o1) = total.multipliedReportingOverflow(by: n)
            let (k, o2) = chunk.multipliedReportingOverflow(by: c)
            guard !o1, !o2, t < 1 << 50 else {
                throw bad("a shape too large to address", "shape \(shape)", "fewer than 2⁵⁰ elements")
            }
            total = t
            chunk = o2 ? Int.max : k
        }
        guard chunk <= Self.chunkLimit else {
            throw bad(
                "a chunk of \(chunk) bytes", "chunks \(chunkShape) of \(dataType.size)-byte elements",
                "chunks of at most \(Self.chunkLimit >> 20) MiB")
        }
        if let s = sharding {
            guard s.shardShape.count == shape.count,
                zip(s.shardShape, chunkShape).allSatisfy({ $0 > 0 && $0 % $1 == 0 }),
                s.shardShape.reduce(1, { $0.multipliedReportingOverflow(by: $1).partialValue }) < 1 << 40
            else {
                throw bad(
                    "shards that are not whole inner chunks", "shards \(s.shardShape), chunks \(chunkShape)",
                    "each shard length a multiple of the inner chunk's")
            }
        }
        guard storedOrder.sorted() == Array(0..<shape.count) else {
            throw bad("a transpose that is not a permutation", "\(storedOrder)", "a permutation of 0..<\(shape.count)")
        }
    }

    /// The CF attribute `key` as text (`units`, `calendar`).
    public func text(_ key: String) -> String? { attributes[key]?.string }
}

extension ZarrArray.DataType {
    /// NumPy's type strings of Zarr v2 (`<f4`, `>i8`, `|u1`, `|b1`).
    init?(numpy s: String) {
        if let unit = Self.datetime64Unit(s) {
            (kind, size, bigEndian, datetimeUnit) = (.signed, 8, s.hasPrefix(">"), unit)
            return
        }
        let chars = Array(s)
        guard chars.count >= 3, let size = Int(String(chars[2...])), [1, 2, 4, 8].contains(size) else { return nil }
        switch chars[1] {
        case "f" where size >= 2: kind = .float
        case "i": kind = .signed
        case "u": kind = .unsigned
        case "b" where size == 1: kind = .bool
        default: return nil
        }
        self.size = size
        bigEndian = chars[0] == ">"
        guard "<>|=".contains(chars[0]) else { return nil }
    }

    /// The unit of a datetime64 type string (`<M8[s]` → `s`); nil for anything else (NaT is not special).
    private static func datetime64Unit(_ s: String) -> String? {
        guard let first = s.first, "<>=".contains(first), s.dropFirst().hasPrefix("M8["), s.hasSuffix("]") else {
            return nil
        }
        let unit = String(s.dropFirst(4).dropLast())
        return ["s", "m", "h", "D", "ms", "us", "ns"].contains(unit) ? unit : nil
    }

    /// Zarr v3's names (`float32`, `int64`, `bool`).
    init?(v3 s: String) {
        let table: [String: (Kind, Int)] = [
            "bool": (.bool, 1), "int8": (.signed, 1), "int16": (.signed, 2), "int32": (.signed, 4),
            "int64": (.signed, 8), "uint8": (.unsigned, 1), "uint16": (.unsigned, 2), "uint32": (.unsigned, 4),
            "uint64": (.unsigned, 8), "float16": (.float, 2), "float32": (.float, 4), "float64": (.float, 8),
        ]
        guard let (k, n) = table[s] else { return nil }
        kind = k
        size = n
    }

    /// Element `i` of raw chunk bytes, as a Double.
    @inline(__always)
    func value(_ raw: UnsafeRawBufferPointer, _ i: Int) -> Double {
        let o = i * size
        switch (kind, size) {
        case (.float, 4):
            let b = raw.loadUnaligned(fromByteOffset: o, as: UInt32.self)
            return Double(Float(bitPattern: bigEndian ? b.byteSwapped : b))
        case (.float, 8):
            let b = raw.loadUnaligned(fromByteOffset: o, as: UInt64.self)
            return Double(bitPattern: bigEndian ? b.byteSwapped : b)
        case (.float, _):
            let b = raw.loadUnaligned(fromByteOffset: o, as: UInt16.self)
            return Double(Float16(bitPattern: bigEndian ? b.byteSwapped : b))
        case (.signed, 1): return Double(raw.load(fromByteOffset: o, as: Int8.self))
        case (.unsigned, 1), (.bool, _): return Double(raw.load(fromByteOffset: o, as: UInt8.self))
        case (.signed, 2):
            let b = raw.loadUnaligned(fromByteOffset: o, as: Int16.self)
            return Double(bigEndian ? b.byteSwapped : b)
        case (.unsigned, 2):
            let b = raw.loadUnaligned(fromByteOffset: o, as: UInt16.self)
            return Double(bigEndian ? b.byteSwapped : b)
        case (.signed, 4):
            let b = raw.loadUnaligned(fromByteOffset: o, as: Int32.self)
            return Double(bigEndian ? b.byteSwapped : b)
        case (.unsigned, 4):
            let b = raw.loadUnaligned(fromByteOffset: o, as: UInt32.self)
            return Double(bigEndian ? b.byteSwapped : b)
        case (.signed, _):
            let b = raw.loadUnaligned(fromByteOffset: o, as: Int64.self)
            return Double(bigEndian ? b.byteSwapped : b)
        case (.unsigned, _):
            let b = raw.loadUnaligned(fromByteOffset: o, as: UInt64.self)
            return Double(bigEndian ? b.byteSwapped : b)
        }
    }
}
