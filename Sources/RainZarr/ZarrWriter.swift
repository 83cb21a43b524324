import Foundation
import RainSupport

/// Writes a Zarr v2 group the way xarray's `to_zarr(consolidated=True)` does: one directory per array with
/// `.zarray` and `.zattrs` (`_ARRAY_DIMENSIONS` naming the axes), Blosc-LZ4 byte-shuffled chunks, and the
/// consolidated `.zmetadata` last — so a reader never sees a store without it, the store is built under a
/// temporary name and renamed into place by `finish`.
public final class ZarrWriter {
    public struct ArraySpec {
        public var name: String
        /// NumPy type string: "<f4", "<f8", "<i8", "<i4".
        public var dtype: String
        public var shape: [Int]
        public var chunks: [Int]
        public var dimensions: [String]
        public var attributes: [String: ZarrJSON]
        public var fillValue: ZarrJSON

        public init(
            name: String, dtype: String, shape: [Int], chunks: [Int], dimensions: [String],
            attributes: [String: ZarrJSON] = [:], fillValue: ZarrJSON = .null
        ) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.chunks = chunks
            self.dimensions = dimensions
            self.attributes = attributes
            self.fillValue = fillValue
        }
    }

    public let path: String
    private let partial: URL
    private var metadata: [String: ZarrJSON] = [".zgroup": .object(["zarr_format": .number(2)])]
    private var specs: [String: ArraySpec] = [:]

    /// Starts a store to be placed at `path` (replacing what is there when `finish` succeeds).
    public init(path: String, attributes: [String: ZarrJSON]) throws {
        self.path = path
        partial = URL(fileURLWithPath: path + ".partial")
        try? FileManager.default.removeItem(at: partial)
        try FileManager.default.createDirectory(at: partial, withIntermediateDirectories: true)
        metadata[".zattrs"] = .object(attributes)
    }

    public func addArray(_ spec: ArraySpec) throws {
        let array: ZarrJSON = .object([
            "zarr_format": .number(2), "shape": .array(spec.shape.map { .number(Double($0)) }),
            "chunks": .array(spec.chunks.map { .number(Double($0)) }), "dtype": .string(spec.dtype),
            "fill_value": spec.fillValue, "order": .string("C"), "filters": .null, "dimension_separator": .string("."),
            "compressor": .object([
                "id": .string("blosc"), "cname": .string("lz4"), "clevel": .number(5), "shuffle": .number(1),
                "blocksize": .number(0),
            ]),
        ])
        var attributes = spec.attributes
        attributes["_ARRAY_DIMENSIONS"] = .array(spec.dimensions.map { .string($0) })
        metadata["\(spec.name)/.zarray"] = array
        metadata["\(spec.name)/.zattrs"] = .object(attributes)
        specs[spec.name] = spec
        let dir = partial.appendingPathComponent(spec.name)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try write(array, to: dir.appendingPathComponent(".zarray"))
        try write(.object(attributes), to: dir.appendingPathComponent(".zattrs"))
    }

    /// Writes chunk `coords` of array `name` from its elements' little-endian bytes (a whole chunk, edge
    /// chunks padded as Zarr stores them).
    public func writeChunk(_ name: String, _ coords: [Int], bytes: [UInt8]) throws {
        guard let spec = specs[name], let size = Int(spec.dtype.dropFirst(2)),
            bytes.count == spec.chunks.reduce(size, *)
        else {
            throw SwiftRainError(
                "\(path)/\(name)", "a chunk of the wrong size", found: "\(bytes.count) bytes",
                hint: "this is a bug; please report it")
        }
        let key = coords.map(String.init).joined(separator: ".")
        let url = partial.appendingPathComponent(name).appendingPathComponent(coords.isEmpty ? "0" : key)
        try Data(ZarrCompressor.bloscCompress(bytes, typesize: size)).write(to: url)
    }

    /// Writes a whole small array (coordinates) as one chunk.
    public func writeArray(_ spec: ArraySpec, values: [Double]) throws {
        var s = spec
        s.chunks = spec.shape
        try addArray(s)
        try writeChunk(s.name, s.shape.map { _ in 0 }, bytes: Self.encode(values, dtype: s.dtype))
    }

    /// Values as little-endian bytes of `dtype` ("<f4", "<f8", "<i8", "<i4").
    public static func encode(_ values: [Double], dtype: String) -> [UInt8] {
        var out: [UInt8] = []
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        for v in values {
            switch dtype {
            case "<f4": put(Float(v).bitPattern)
            case "<f8": put(v.bitPattern)
            case "<i4": put(Int32(v))
            default: put(Int64(v))
            }
        }
        return out
    }

    /// Writes `.zgroup`, `.zattrs` and the consolidated `.zmetadata`, then moves the store into place.
    public func finish() throws {
        try write(metadata[".zgroup"]!, to: partial.appendingPathComponent(".zgroup"))
        try write(metadata[".zattrs"]!, to: partial.appendingPathComponent(".zattrs"))
        try write(
            .object(["metadata": .object(metadata), "zarr_consolidated_format": .number(1)]),
            to: partial.appendingPathComponent(".zmetadata"))
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.moveItem(at: partial, to: URL(fileURLWithPath: path))
    }

    private func write(_ json: ZarrJSON, to url: URL) throws {
        try Data(json.text.utf8).write(to: url)
    }
}

extension ZarrJSON {
    /// Compact JSON text, keys sorted; non-finite numbers as Zarr's strings ("NaN").
    public var text: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let d):
            if d.isNaN { return "\"NaN\"" }
            if d.isInfinite { return d > 0 ? "\"Infinity\"" : "\"-Infinity\"" }
            if d == d.rounded() && abs(d) < 1e15 { return String(Int64(d)) }
            return "\(d)"
        case .string(let s):
            var out = "\""
            for u in s.unicodeScalars {
                switch u {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
                default: out.unicodeScalars.append(u)
                }
            }
            return out + "\""
        case .array(let a): return "[" + a.map(\.text).joined(separator: ", ") + "]"
        case .object(let o):
            return "{" + o.keys.sorted().map { ZarrJSON.string($0).text + ": " + o[$0]!.text }.joined(separator: ", ")
                + "}"
        }
    }
}
