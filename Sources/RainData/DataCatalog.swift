import Foundation
import RainConfig
import RainSupport

/// One mapped `.mmap` file with its geometry and time axis.
public final class DataFile {
    public let name: String
    public let info: MemmapInfo
    public let mapped: MappedFile
    public var isTemporal: Bool { info.daterange != nil }
    /// Time of row 0, last row, and the step between rows (temporal files only).
    public let firstTime: EpochSeconds, lastTime: EpochSeconds, step: EpochSeconds
    public let rows: Int, channels: Int, height: Int, width: Int

    init(name: String, info: MemmapInfo, mapped: MappedFile) {
        self.name = name
        self.info = info
        self.mapped = mapped
        let d = info.dims
        if let r = info.daterange, d.count == 4 {
            firstTime = EpochSeconds(r[0].rounded())
            lastTime = EpochSeconds(r[1].rounded())
            step = EpochSeconds((info.tfreqS ?? 0).rounded())
            rows = d[0]
            channels = d[1]
            height = d[2]
            width = d[3]
        } else {
            firstTime = 0
            lastTime = 0
            step = 0
            rows = 1
            channels = d.count == 3 ? d[0] : 0
            height = d.count == 3 ? d[1] : 0
            width = d.count == 3 ? d[2] : 0
        }
    }

    /// Element index of [row, channel, 0, 0].
    @inline(__always)
    public func elementIndex(row: Int, channel: Int) -> Int { (row * channels + channel) * height * width }
}

/// An inclusive span of times; empty when `first > last`.
public struct TimeSpan: Equatable, Codable {
    public var first: EpochSeconds
    public var last: EpochSeconds
    public init(first: EpochSeconds, last: EpochSeconds) {
        self.first = first
        self.last = last
    }
    @inline(__always) public func contains(_ t: EpochSeconds) -> Bool { first <= t && t <= last }
    public var isEmpty: Bool { first > last }
}

/// Where one channel of one variable lives, and when it is available.
public struct ChannelSource {
    /// Variable key as the benchmark names it, e.g. `era5625/z_300hPa` or `simsat5625/clbt`.
    public let variable: String
    /// Normalisation key, e.g. `simsat5625/clbt:1` for multi-channel variables.
    public let normKey: String
    public let file: DataFile
    public let channel: Int
    /// Times (inclusive) at which a read is available; nil for constants.
    public let available: TimeSpan?
    /// Times inside `available` whose rows are NaN (the metadata's `missing_ts`): samples reading them are
    /// dropped up front.
    public var missing: Set<EpochSeconds> = []

    /// Row for time `t` (nearest past), or nil if `t` is unavailable.
    @inline(__always)
    public func row(at t: EpochSeconds) -> Int? {
        guard let available else { return 0 }
        guard available.contains(t) else { return nil }
        return Int(floorDiv(t - file.firstTime, file.step))
    }

    /// The H×W plane at time `t` (ignored for constants), or nil if unavailable.
    @inline(__always)
    public func plane(at t: EpochSeconds) throws -> UnsafePointer<Float>? {
        guard let r = row(at: t) else { return nil }
        return try file.mapped.floats(at: file.elementIndex(row: r, channel: channel))
    }
}

/// Several datasets joined: resolves benchmark variable names to channels in mapped files.
public final class DataCatalog {
    public let datasets: [Dataset]

    /// Opens and validates every directory; problems from all of them are reported together.
    public init(paths: [String]) throws {
        var sets: [Dataset] = []
        var problems: [SwiftRainError] = []
        for p in paths {
            do { sets.append(try Dataset(path: p)) } catch let e as ValidationErrors {
                problems += e.errors
            } catch let e as SwiftRainError { problems.append(e) }
        }
        if !problems.isEmpty { throw ValidationErrors(errors: problems) }
        datasets = sets
    }

    /// Every variable key known, sorted.
    public var variableKeys: [String] { datasets.flatMap { $0.info.variables.keys }.sorted() }

    /// The quirks survived, each prefixed by its dataset.
    public var warnings: [String] { datasets.flatMap { ds in ds.warnings.map { "\(ds.name): \($0)" } } }

    /// Resolves `key` (e.g. `era5625/sp`, `era5625/z_300hPa`, `simsat5625/clbt`) to its channels; throws
    /// when no dataset has it, or when its file is absent or broken (the error says which file).
    ///
    /// A level name `<v>_<p>hPa` is found either as its own variable or as level `p` of `<v>` through
    /// `index2pressure`, the two ways PyRain's converters write them.
    public func channels(of key: String) throws -> [ChannelSource] {
        guard let (ds, v, channel) = try find(key) else {
            let prefix = key.split(separator: "/").first.map(String.init) ?? key
            let near = variableKeys.filter { $0.hasPrefix(prefix + "/") }
            throw SwiftRainError(
                key, "no dataset has this variable",
                expected: "a variable of the datasets given: "
                    + (near.isEmpty ? variableKeys : near).joined(separator: ", "),
                found: "datasets " + datasets.map(\.name).joined(separator: ", "),
                hint:
                    "add the dataset directory that holds it to `data` in the configuration, or choose other --sources")
        }
        guard let f = ds.files[v.mmapName] else {
            var e = ds.unavailable[v.mmapName]!
            e.problem += " (needed for \(key))"
            e.hint = (e.hint ?? "") + "; or choose --sources that do not read \(key)"
            throw e
        }
        let missing = Set((v.missingTs ?? []).map { EpochSeconds($0) })
        if let channel {
            return [
                ChannelSource(
                    variable: key, normKey: key, file: f, channel: channel, available: availability(v, f),
                    missing: missing)
            ]
        }
        let n = v.channelCount
        return (0..<n).map { i in
            ChannelSource(
                variable: key, normKey: n > 1 ? "\(key):\(i)" : key, file: f, channel: v.offset + i,
                available: availability(v, f), missing: missing)
        }
    }

    /// Whether `key`'s channels can be read: false when no dataset has it or its file is absent.
    public func isReadable(_ key: String) -> Bool { (try? channels(of: key)) != nil }

    /// The dataset and entry holding `key`, and the channel when it is one level of a variable; nil
    /// when no dataset has it. Throws when the metadata has the variable but not at that level.
    func find(_ key: String) throws -> (Dataset, VariableInfo, Int?)? {
        for ds in datasets {
            if let v = ds.info.variables[key] { return (ds, v, nil) }
        }
        guard let m = key.range(of: #"_(\d+)hPa$"#, options: .regularExpression),
            let p = Int(key[m].dropFirst().dropLast(3))
        else { return nil }
        let base = String(key[..<m.lowerBound])
        for ds in datasets {
            guard let v = ds.info.variables[base] else { continue }
            if let idx = v.index2pressure?.first(where: { $0.value == p }).flatMap({ Int($0.key) }) {
                return (ds, v, v.offset + idx)
            }
            let have = (v.index2pressure ?? [:]).values.sorted().map { "\($0) hPa" }.joined(separator: ", ")
            let short = base.split(separator: "/").last.map(String.init) ?? base
            // RainBench's ERA5 file: channels 3… are ciwc, clwc, t, z, q at 300, then 500, then 850 hPa.
            let channels = ["ciwc", "clwc", "t", "z", "q"].firstIndex(of: short).map { vi in
                " (in RainBench's ERA5 file \(short) at 300, 500, 850 hPa is channel \(3 + vi), \(8 + vi), \(13 + vi))"
            }
            // Worded without the level, so the levels of one variable share one message.
            throw SwiftRainError(
                key, "this release's metadata describes only \(short) at \(have)",
                expected: "each level as its own variable (\(base)_<p>hPa), or in \(base)'s index2pressure",
                found:
                    "\(ds.infoURL.lastPathComponent): variables[\"\(base)\"] with index2pressure "
                    + "\(v.index2pressure ?? [:])",
                hint:
                    """
                    --sources simsat (SimSat → IMERG) reads no ERA5 levels; the settings that do (era, era16_3, \
                    simsat_era) need an _info.json that names each level with its channel\(channels ?? "") \
                    (PyRain's converter writes one key per variable, so only the last level survives in its .dill)
                    """)
        }
        return nil
    }

    private func availability(_ v: VariableInfo, _ f: DataFile) -> TimeSpan? {
        guard f.isTemporal else { return nil }
        // A variable may cover less than its file (first_ts/last_ts); reads outside either are unavailable.
        let lo = max(f.firstTime, v.firstTs.map { EpochSeconds($0.rounded()) } ?? f.firstTime)
        let hi = min(f.lastTime, v.lastTs.map { EpochSeconds($0.rounded()) } ?? f.lastTime)
        return TimeSpan(first: lo, last: hi)
    }
}
