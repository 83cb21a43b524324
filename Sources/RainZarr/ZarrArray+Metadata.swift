import Foundation
import RainSupport

extension ZarrArray {
    /// An array from Zarr v2's `.zarray` and `.zattrs` objects.
    convenience init(store: URL, name: String, v2 meta: ZarrJSON, attributes: ZarrJSON?) throws {
        let subject = "\(store.lastPathComponent)/\(name)/.zarray"
        let shape = try Self.ints(meta["shape"], "shape", subject)
        let chunks = try Self.ints(meta["chunks"], "chunks", subject)
        guard let dt = meta["dtype"]?.string, let dataType = DataType(numpy: dt) else {
            throw Self.unsupported(
                subject, "dtype", meta["dtype"],
                "<f4, <f8, <i2, <i4, <i8, |u1, |b1 (either byte order), <M8[s] (datetime64)")
        }
        let order = meta["order"]?.string ?? "C"
        guard order == "C" || order == "F" else { throw Self.unsupported(subject, "order", meta["order"], "C or F") }
        if let filters = meta["filters"]?.array, !filters.isEmpty {
            let names = filters.map { $0["id"]?.string ?? "?" }.joined(separator: ", ")
            throw SwiftRainError(
                subject, "filters \(names) are not supported", expected: "filters: null",
                found: names, hint: "rewrite the array without filters (zarr-python: filters=None)")
        }
        var compressors: [ZarrCompressor] = []
        if let c = meta["compressor"], c != .null { compressors = [try Self.compressor(c, subject)] }
        let attrs = attributes?.object ?? [:]
        try self.init(
            store: store, name: name, format: 2, shape: shape, chunkShape: chunks, dataType: dataType,
            fillValue: try Self.fill(meta["fill_value"], dataType, subject),
            dimensionNames: attrs["_ARRAY_DIMENSIONS"]?.strings,
            attributes: attrs, storedOrder: order == "F" ? Array((0..<shape.count).reversed()) : Array(0..<shape.count),
            compressors: compressors, sharding: nil, separator: meta["dimension_separator"]?.string ?? ".",
            keyPrefix: nil)
    }

    /// An array from Zarr v3's `zarr.json`.
    convenience init(store: URL, name: String, v3 meta: ZarrJSON) throws {
        let subject = "\(store.lastPathComponent)/\(name)/zarr.json"
        let shape = try Self.ints(meta["shape"], "shape", subject)
        guard meta["chunk_grid"]?["name"]?.string == "regular" else {
            throw Self.unsupported(subject, "chunk_grid", meta["chunk_grid"]?["name"], "regular")
        }
        var chunks = try Self.ints(meta["chunk_grid"]?["configuration"]?["chunk_shape"], "chunk_shape", subject)
        guard let dt = meta["data_type"]?.string, var dataType = DataType(v3: dt) else {
            throw Self.unsupported(subject, "data_type", meta["data_type"], "bool, (u)int8…64, float16/32/64")
        }
        let encoding = meta["chunk_key_encoding"]
        let v2Keys = encoding?["name"]?.string == "v2"
        let separator = encoding?["configuration"]?["separator"]?.string ?? (v2Keys ? "." : "/")
        if let storage = meta["storage_transformers"]?.array, !storage.isEmpty {
            throw Self.unsupported(subject, "storage_transformers", storage.first?["name"], "none")
        }
        guard var codecs = meta["codecs"]?.array, !codecs.isEmpty else {
            throw SwiftRainError(
                subject, "no codecs", expected: "at least the bytes codec", hint: "the metadata is damaged")
        }
        var sharding: Sharding?
        if codecs.count == 1, codecs[0]["name"]?.string == "sharding_indexed", let config = codecs[0]["configuration"] {
            let inner = try Self.ints(config["chunk_shape"], "sharding chunk_shape", subject)
            let index = config["index_codecs"]?.array ?? []
            let names = index.compactMap { $0["name"]?.string }
            guard names == ["bytes"] || names == ["bytes", "crc32c"],
                index.first?["configuration"]?["endian"]?.string ?? "little" == "little"
            else {
                throw Self.unsupported(
                    subject, "index_codecs", .string(names.joined(separator: ", ")), "bytes[, crc32c]")
            }
            sharding = Sharding(
                shardShape: chunks, indexAtEnd: config["index_location"]?.string ?? "end" == "end",
                indexChecksum: names.count == 2)
            chunks = inner
            codecs = config["codecs"]?.array ?? []
        }
        var order = Array(0..<shape.count), compressors: [ZarrCompressor] = [], sawBytes = false
        for codec in codecs {
            let name = codec["name"]?.string ?? "?", config = codec["configuration"]
            switch name {
            case "transpose" where !sawBytes:
                order = try Self.ints(config?["order"], "transpose order", subject)
            case "bytes" where !sawBytes:
                sawBytes = true
                dataType.bigEndian = config?["endian"]?.string == "big"
            case "blosc" where sawBytes, "zstd" where sawBytes, "gzip" where sawBytes, "crc32c" where sawBytes:
                compressors.append(try Self.compressor(codec, subject))
            default:
                throw SwiftRainError(
                    subject, "codec '\(name)' is not supported here",
                    expected: "[transpose,] bytes, then blosc, zstd, gzip or crc32c; or sharding_indexed of those",
                    found: codecs.compactMap { $0["name"]?.string }.joined(separator: ", "),
                    hint: "rewrite the array with those codecs (zarr-python: compressors=ZstdCodec())")
            }
        }
        guard sawBytes else {
            throw SwiftRainError(
                subject, "no bytes codec", expected: "the bytes codec", hint: "the metadata is damaged")
        }
        let attrs = meta["attributes"]?.object ?? [:]
        try self.init(
            store: store, name: name, format: 3, shape: shape, chunkShape: chunks, dataType: dataType,
            fillValue: try Self.fill(meta["fill_value"], dataType, subject),
            dimensionNames: meta["dimension_names"]?.array.map { $0.map { $0.string ?? "" } }
                ?? attrs["_ARRAY_DIMENSIONS"]?.strings,
            attributes: attrs, storedOrder: order, compressors: compressors, sharding: sharding,
            separator: separator, keyPrefix: v2Keys ? nil : "c")
    }

    private static func ints(_ j: ZarrJSON?, _ field: String, _ subject: String) throws -> [Int] {
        guard let a = j?.array, a.count <= 32, case let v = a.compactMap(\.int), v.count == a.count else {
            throw SwiftRainError(
                subject, "'\(field)' is missing or not a list of whole numbers", expected: "at most 32 integers",
                found: j.map { "\($0)" } ?? "nothing", hint: "the metadata is damaged")
        }
        return v
    }

    private static func unsupported(_ subject: String, _ field: String, _ found: ZarrJSON?, _ expected: String)
        -> SwiftRainError
    {
        let shown = found?.string ?? found.map { "\($0)" } ?? "nothing"
        return SwiftRainError(
            subject, "\(field) '\(shown)' is not supported", expected: expected, found: shown,
            hint: "rewrite the array with a supported \(field)")
    }

    private static func compressor(_ c: ZarrJSON, _ subject: String) throws -> ZarrCompressor {
        let id = c["id"]?.string ?? c["name"]?.string ?? "?"
        let config = c["configuration"] ?? c
        switch id {
        case "blosc":
            let shuffle: Int
            switch config["shuffle"] {
            case .string("noshuffle"): shuffle = 0
            case .string("shuffle"): shuffle = 1
            case .string("bitshuffle"): shuffle = 2
            case let j: shuffle = j?.int ?? 1
            }
            return .blosc(cname: config["cname"]?.string ?? "lz4", clevel: config["clevel"]?.int ?? 5, shuffle: shuffle)
        case "zstd": return .zstd(level: config["level"]?.int ?? 0)
        case "zlib": return .zlib
        case "gzip": return .gzip
        case "crc32c": return .crc32c
        default:
            throw SwiftRainError(
                subject, "compressor '\(id)' is not supported", expected: "blosc, zstd, zlib or gzip",
                found: id, hint: "rewrite the array with one of those (WeatherBench 2 and ARCO-ERA5 use blosc)")
        }
    }

    /// `fill_value`: a number, "NaN"/"Infinity"/"-Infinity", a v3 hex bit pattern ("0x7fc00000"), a bool,
    /// or null (zero).
    private static func fill(_ j: ZarrJSON?, _ t: DataType, _ subject: String) throws -> Double {
        switch j {
        case nil, .null?: return 0
        case .bool(let b)?: return b ? 1 : 0
        case .string(let s)? where s.hasPrefix("0x") && t.kind == .float:
            guard let bits = UInt64(s.dropFirst(2), radix: 16) else { break }
            switch t.size {
            case 2: return Double(Float16(bitPattern: UInt16(truncatingIfNeeded: bits)))
            case 4: return Double(Float(bitPattern: UInt32(truncatingIfNeeded: bits)))
            default: return Double(bitPattern: bits)
            }
        case let v?: if let d = v.double { return d }
        }
        throw SwiftRainError(
            subject, "fill_value not understood", expected: "a number, NaN, Infinity, a hex bit pattern or null",
            found: "\(j!)", hint: "the metadata is damaged")
    }
}
