import Foundation
import RainSupport

/// PyRain's `<name>_info.json`: the same dictionary as the `.dill` next to it (DATA-FORMAT §1).
public struct DatasetInfo: Codable, Equatable {
    public var variables: [String: VariableInfo]
    public var memmap: [String: MemmapInfo]

    public init(variables: [String: VariableInfo], memmap: [String: MemmapInfo]) {
        self.variables = variables
        self.memmap = memmap
    }

    /// Reads a dataset's metadata: PyRain's `.dill` or its `_info.json`, turning every pickle, JSON or
    /// schema problem into an error naming the file and key.
    public static func load(_ url: URL) throws -> DatasetInfo {
        let data: Data
        do {
            let size = (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
            guard size <= PickleReader.maxBytes else {
                throw SwiftRainError(
                    url.path, "too large to be dataset metadata",
                    expected: "at most \(PickleReader.maxBytes >> 10) KiB",
                    found: "\(size) bytes", hint: "point `data` at the dataset's .dill or _info.json, not a data file")
            }
            data = try Data(contentsOf: url)
        } catch let e as SwiftRainError { throw e } catch {
            throw SwiftRainError(
                url.path, "cannot read the dataset metadata",
                hint: "check the path; a RainBench dataset directory holds <name>.dill next to its .mmap files")
        }
        if url.pathExtension == "dill" { return try loadDill(url, bytes: [UInt8](data)) }
        return try decode(data, source: url.path)
    }

    /// Decodes metadata JSON; `source` names it in errors.
    static func decode(_ data: Data, source: String) throws -> DatasetInfo {
        let url = URL(fileURLWithPath: source)
        do {
            return try JSONDecoder().decode(DatasetInfo.self, from: data)
        } catch let DecodingError.keyNotFound(key, ctx) {
            throw SwiftRainError(
                url.path, "missing key '\(key.stringValue)' at \(pathString(ctx.codingPath))",
                expected:
                    """
                    PyRain's metadata keys (variables.*: mmap_name, type, dims, offset, levels, first_ts, \
                    last_ts, tfreq_s; memmap.*: dims, dtype, daterange, tfreq_s)
                    """,
                hint: "regenerate the file with PyRain's converter or `swiftrain synth`, or add the key")
        } catch let DecodingError.typeMismatch(type, ctx) {
            throw SwiftRainError(
                url.path, "wrong type at \(pathString(ctx.codingPath))",
                expected: "\(type)", found: ctx.debugDescription,
                hint: "fix the value in the JSON file")
        } catch let DecodingError.valueNotFound(type, ctx) {
            throw SwiftRainError(
                url.path, "null where a value is needed at \(pathString(ctx.codingPath))",
                expected: "\(type)", found: "null", hint: "fix the value in the JSON file")
        } catch {
            throw SwiftRainError(
                url.path, "malformed metadata JSON",
                found: (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)",
                hint:
                    "the file must be valid JSON as written by PyRain's converters (json.dump of the .dill dictionary)")
        }
    }

    private static func pathString(_ path: [CodingKey]) -> String {
        path.isEmpty ? "top level" : path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    public func write(to url: URL) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try enc.encode(self).write(to: url, options: .atomic)
    }
}

/// One entry of `variables`: where a variable lives in which file.
public struct VariableInfo: Codable, Equatable {
    public var name: String?
    public var mmapName: String
    /// "temp" or "const".
    public var type: String
    /// [H, W].
    public var dims: [Int]
    /// First channel in the file.
    public var offset: Int
    /// Channel count = levels.count (1 when null).
    public var levels: [Int]?
    /// Level index (as a string key, as JSON writes Python's int keys) → pressure in hPa.
    public var index2pressure: [String: Int]?
    public var firstTs: Double?
    public var lastTs: Double?
    public var tfreqS: Double?
    /// What the values mean, for variables PyRain has no name for (SwiftRain's `tp6h`: "m" and "total
    /// precipitation over the 6 h ending at the row's time"); absent from PyRain's own metadata.
    public var units: String?
    public var longName: String?
    /// Times inside first_ts … last_ts whose rows are NaN (a missing date, chunk or file when converted):
    /// reads there are unavailable, like reads outside the span. SwiftRain's key; PyRain's loader ignores it.
    public var missingTs: [Double]?

    public var channelCount: Int { levels?.count ?? 1 }
    public var isTemporal: Bool { type == "temp" }

    enum CodingKeys: String, CodingKey {
        case name, type, dims, offset, levels, index2pressure
        case mmapName = "mmap_name", firstTs = "first_ts", lastTs = "last_ts", tfreqS = "tfreq_s"
        case units, longName = "long_name", missingTs = "missing_ts"
    }

    public init(
        name: String?, mmapName: String, type: String, dims: [Int], offset: Int, levels: [Int]?,
        index2pressure: [String: Int]? = nil, firstTs: Double?, lastTs: Double?, tfreqS: Double?
    ) {
        self.name = name
        self.mmapName = mmapName
        self.type = type
        self.dims = dims
        self.offset = offset
        self.levels = levels
        self.index2pressure = index2pressure
        self.firstTs = firstTs
        self.lastTs = lastTs
        self.tfreqS = tfreqS
    }

    // PyRain writes None as null; keep the nulls so the file round-trips with PyRain's.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(mmapName, forKey: .mmapName)
        try c.encode(type, forKey: .type)
        try c.encode(dims, forKey: .dims)
        try c.encode(offset, forKey: .offset)
        try c.encode(levels, forKey: .levels)
        if let index2pressure { try c.encode(index2pressure, forKey: .index2pressure) }
        try c.encode(firstTs, forKey: .firstTs)
        try c.encode(lastTs, forKey: .lastTs)
        try c.encode(tfreqS, forKey: .tfreqS)
        if let units { try c.encode(units, forKey: .units) }
        if let longName { try c.encode(longName, forKey: .longName) }
        if let missingTs { try c.encode(missingTs, forKey: .missingTs) }
    }
}

/// One entry of `memmap`: a raw float32 file.
public struct MemmapInfo: Codable, Equatable {
    /// Full array shape: (T, C, H, W) temporal or (C, H, W) constant.
    public var dims: [Int]
    public var dtype: String
    /// [first row time, last row time] in epoch seconds; null for constants.
    public var daterange: [Double]?
    public var tfreqS: Double?

    enum CodingKeys: String, CodingKey { case dims, dtype, daterange, tfreqS = "tfreq_s" }

    public init(dims: [Int], dtype: String = "float32", daterange: [Double]?, tfreqS: Double?) {
        self.dims = dims
        self.dtype = dtype
        self.daterange = daterange
        self.tfreqS = tfreqS
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(dims, forKey: .dims)
        try c.encode(dtype, forKey: .dtype)
        try c.encode(daterange, forKey: .daterange)
        try c.encode(tfreqS, forKey: .tfreqS)
    }

    /// Expected file size in bytes: 4 · ∏dims.
    public var byteCount: Int { 4 * dims.reduce(1, *) }
}
