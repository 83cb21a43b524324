import Foundation
import RainConfig
import RainSupport

/// Mean and standard deviation of one channel.
public struct ChannelStats: Codable, Equatable {
    public var mean: Double
    public var std: Double
    public init(mean: Double, std: Double) {
        self.mean = mean
        self.std = std
    }
}

/// PyRain's normalisation JSON (DATA-FORMAT §6): `{"<ds>/<var>[:level]": {"mean", "std"}, "1plog::<ds>/<var>": …}`.
public struct Normalisation: Equatable {
    public var stats: [String: ChannelStats]
    /// Where it was read from, for error messages.
    public var source: String

    public init(stats: [String: ChannelStats], source: String = "normalisation") {
        self.stats = stats
        self.source = source
    }

    public static func load(path: String) throws -> Normalisation {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SwiftRainError(
                path, "normalisation file not found",
                hint: "run `swiftrain normalize --config C --out \(path)`, or set `normalisation` in the configuration")
        }
        do {
            return Normalisation(stats: try JSONDecoder().decode([String: ChannelStats].self, from: data), source: path)
        } catch {
            throw SwiftRainError(
                path, "malformed normalisation JSON",
                expected: #"{"<dataset>/<variable>[:channel]": {"mean": m, "std": s}, ...}"#,
                found: "\(error)", hint: "regenerate it with `swiftrain normalize`")
        }
    }

    public func write(path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(stats).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// Statistics for `key` (e.g. `simsat5625/clbt:0`), with a usable standard deviation.
    public func require(_ key: String) throws -> ChannelStats {
        guard let s = stats[key] else {
            let prefix = key.split(separator: "/").first.map(String.init) ?? ""
            let near = stats.keys.filter { $0.hasPrefix(prefix) }.sorted()
            throw SwiftRainError(
                source, "no statistics for '\(key)'",
                expected: "an entry \"\(key)\": {\"mean\": …, \"std\": …}",
                found: near.isEmpty
                    ? "\(stats.count) entries, none for \(prefix)" : "entries " + near.joined(separator: ", "),
                hint: "recompute the file for this configuration: swiftrain normalize --config C --out \(source)")
        }
        guard s.std.isFinite, s.std > 0, s.mean.isFinite else {
            throw SwiftRainError(
                "\(source): \(key)", "unusable statistics", expected: "finite mean and std > 0",
                found: "mean \(s.mean), std \(s.std)", hint: "recompute the file with `swiftrain normalize`")
        }
        return s
    }

    /// Target transform y′ = ln(1 + y/std), with the plain entry's std (PyRain's mapping: the plain key
    /// wins over `1plog::`).
    @inline(__always)
    public static func forward(_ y: Float, std: Float) -> Float { log1p(y / std) }
    /// Back to physical units: (exp(ŷ′) − 1)·std.
    @inline(__always)
    public static func inverse(_ yp: Float, std: Float) -> Float { expm1(yp) * std }
}

/// Streaming mean/variance (Chan et al.'s pairwise merge of per-plane moments, in Double), so that
/// memory is one plane whatever the number of rows.
public struct RunningStats {
    public private(set) var count: Double = 0
    private var mean: Double = 0
    private var m2: Double = 0

    public init() {}

    /// Adds every finite value of `values` (NaNs, as in ERA5 tp's first hours, are skipped).
    public mutating func add(_ values: UnsafeBufferPointer<Float>, transform: ((Float) -> Float)? = nil) {
        var n = 0.0, s = 0.0
        for v in values {
            let x = transform?(v) ?? v
            if x.isFinite {
                n += 1
                s += Double(x)
            }
        }
        guard n > 0 else { return }
        let m = s / n
        var q = 0.0
        for v in values {
            let x = transform?(v) ?? v
            if x.isFinite {
                let d = Double(x) - m
                q += d * d
            }
        }
        let total = count + n
        let delta = m - mean
        mean += delta * n / total
        m2 += q + delta * delta * count * n / total
        count = total
    }

    /// Population statistics (numpy's default, ddof = 0).
    public var stats: ChannelStats { ChannelStats(mean: mean, std: count > 0 ? (m2 / count).squareRoot() : 0) }
}

extension Normalisation {
    /// Computes statistics over the train partition for every variable of every dataset (as PyRain's
    /// file has them, so one file serves any `sources`), in one streaming pass per file: each row is
    /// read once with pread, so memory does not depend on the data size.
    ///
    /// Temporal variables use every available row inside [train start, train end]; constants their one
    /// plane. Precipitation variables (IMERG precipitationcal, ERA5 tp) also get `1plog::` entries
    /// (statistics of ln(1 + y)).
    public static func compute(spec: SampleSpec, catalog: DataCatalog, progress: ((String) -> Void)? = nil) throws
        -> Normalisation
    {
        let train = spec.partition(.train)
        // The run's own variables must be readable; the others are computed where their files are present.
        try catalog.requireReads(for: spec)
        let everything = try catalog.variableKeys.filter(catalog.isReadable).flatMap { try catalog.channels(of: $0) }
        let temporal = everything.filter { $0.available != nil }
        let constants = everything.filter { $0.available == nil }
        let precipitation = Set(
            catalog.variableKeys.filter { key in ["/precipitationcal", "/tp", "/tp6h"].contains { key.hasSuffix($0) } }
                + [spec.target])
        var acc: [String: RunningStats] = [:]
        var logAcc: [String: RunningStats] = [:]

        // Group channels by file so each row is read once.
        let byFile = Dictionary(grouping: temporal, by: { ObjectIdentifier($0.file) })
        for (_, chans) in byFile.sorted(by: { $0.value[0].file.name < $1.value[0].file.name }) {
            let f = chans[0].file
            let plane = f.height * f.width
            var row = [Float](repeating: 0, count: f.channels * plane)
            let lo = chans.compactMap { $0.available?.first }.min().map { max($0, train.start) } ?? train.start
            let hi = chans.compactMap { $0.available?.last }.max().map { min($0, train.end) } ?? train.end
            guard lo <= hi else { continue }
            let first = Int(ceilDiv(lo - f.firstTime, f.step)), last = Int(floorDiv(hi - f.firstTime, f.step))
            guard first <= last else { continue }
            progress?("\(f.name): rows \(first)…\(last) (\(UTCTime.short(lo)) … \(UTCTime.short(hi)))")
            for r in first...last {
                let t = f.firstTime + EpochSeconds(r) * f.step
                try row.withUnsafeMutableBufferPointer { b in
                    try f.mapped.read(into: b.baseAddress!, at: f.elementIndex(row: r, channel: 0), count: b.count)
                    for c in chans where c.available?.contains(t) ?? true {
                        let values = UnsafeBufferPointer(rebasing: b[(c.channel * plane)..<((c.channel + 1) * plane)])
                        acc[c.normKey, default: RunningStats()].add(values)
                        if precipitation.contains(c.variable) {
                            logAcc["1plog::" + c.variable, default: RunningStats()].add(
                                values, transform: { log1p($0) })
                        }
                    }
                }
            }
        }
        for c in constants {
            let plane = c.file.height * c.file.width
            var buf = [Float](repeating: 0, count: plane)
            try buf.withUnsafeMutableBufferPointer { b in
                try c.file.mapped.read(
                    into: b.baseAddress!, at: c.file.elementIndex(row: 0, channel: c.channel), count: plane)
                acc[c.normKey, default: RunningStats()].add(UnsafeBufferPointer(b))
            }
        }
        return Normalisation(stats: acc.merging(logAcc) { a, _ in a }.mapValues(\.stats))
    }
}
