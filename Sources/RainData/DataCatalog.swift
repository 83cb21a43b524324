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

/// One RainBench dataset directory (e.g. `era5625/`): its metadata and mapped files.
public final class Dataset {
    public let name: String
    public let directory: URL
    public let infoURL: URL
    public let info: DatasetInfo
    public let files: [String: DataFile]

    /// Opens `directory` (or an `_info.json` path), validating every file it describes.
    public init(path: String) throws {
        var url = URL(fileURLWithPath: path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw SwiftRainError(
                path, "dataset directory not found",
                hint:
                    """
                    pass the directory holding <name>_info.json and the .mmap files (e.g. data/era5625), or run \
                    `swiftrain synth --out data`
                    """
            )
        }
        if isDir.boolValue {
            let infos = ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? [])
                .filter { $0.hasSuffix("_info.json") }.sorted()
            guard infos.count == 1 else {
                throw SwiftRainError(
                    path,
                    infos.isEmpty
                        ? "no <name>_info.json in this directory"
                        : "several metadata files: \(infos.joined(separator: ", "))",
                    expected: "exactly one <name>_info.json (PyRain's dataset description)",
                    hint: infos.isEmpty
                        ? "point at the dataset directory itself (e.g. data/simsat5625), or regenerate its metadata"
                        : "pass the path of the one you mean instead of the directory")
            }
            url = url.appendingPathComponent(infos[0])
        }
        infoURL = url
        directory = url.deletingLastPathComponent()
        name = String(url.lastPathComponent.dropLast("_info.json".count))
        info = try DatasetInfo.load(url)

        var problems: [SwiftRainError] = []
        var files: [String: DataFile] = [:]
        for (fileName, m) in info.memmap.sorted(by: { $0.key < $1.key }) {
            let where_ = "\(url.lastPathComponent): memmap[\"\(fileName)\"]"
            guard m.dtype == "float32" else {
                problems.append(
                    SwiftRainError(
                        where_, "unsupported dtype", expected: "float32", found: m.dtype,
                        hint: "convert the file to float32"))
                continue
            }
            if m.daterange != nil {
                guard m.dims.count == 4, let r = m.daterange, r.count == 2, let f = m.tfreqS, f > 0 else {
                    problems.append(
                        SwiftRainError(
                            where_, "temporal file needs dims (T, C, H, W), daterange [first, last] and tfreq_s > 0",
                            found:
                                """
                                dims \(m.dims), daterange \(m.daterange ?? []), tfreq_s \
                                \(m.tfreqS.map { "\($0)" } ?? "null")
                                """,
                            hint: "fix the metadata"))
                    continue
                }
                let expectRows = Int(((r[1] - r[0]) / f).rounded()) + 1
                if expectRows != m.dims[0] {
                    problems.append(
                        SwiftRainError(
                            where_, "row count does not match the date range",
                            expected:
                                """
                                (\(UTCTime.short(EpochSeconds(r[1])) ) − \(UTCTime.short(EpochSeconds(r[0])))) / \
                                \(Int(f)) s + 1 = \(expectRows) rows
                                """,
                            found: "dims[0] = \(m.dims[0])", hint: "fix daterange or dims in the metadata"))
                    continue
                }
            } else if m.dims.count != 3 {
                problems.append(
                    SwiftRainError(
                        where_, "constant file needs dims (C, H, W)", found: "\(m.dims)", hint: "fix the metadata"))
                continue
            }
            do {
                let mapped = try MappedFile(
                    path: directory.appendingPathComponent(fileName).path, expectedBytes: m.byteCount, shape: m.dims)
                files[fileName] = DataFile(name: fileName, info: m, mapped: mapped)
            } catch let e as SwiftRainError { problems.append(e) }
        }
        for (key, v) in info.variables.sorted(by: { $0.key < $1.key }) {
            let where_ = "\(url.lastPathComponent): variables[\"\(key)\"]"
            guard info.memmap[v.mmapName] != nil else {
                problems.append(
                    SwiftRainError(
                        where_, "mmap_name names a file the metadata does not describe",
                        expected: "one of \(info.memmap.keys.sorted())", found: v.mmapName, hint: "fix mmap_name"))
                continue
            }
            guard let file = files[v.mmapName] else { continue }  // already reported
            if v.isTemporal != file.isTemporal {
                problems.append(
                    SwiftRainError(
                        where_, "type does not match its file", expected: file.isTemporal ? "temp" : "const",
                        found: v.type, hint: "fix type"))
            }
            if v.dims != [file.height, file.width] {
                problems.append(
                    SwiftRainError(
                        where_, "grid differs from its file", expected: "[\(file.height), \(file.width)]",
                        found: "\(v.dims)", hint: "fix dims"))
            }
            if v.offset < 0 || v.offset + v.channelCount > file.channels {
                problems.append(
                    SwiftRainError(
                        where_, "channels outside the file",
                        expected: "offset + \(v.channelCount) level(s) ≤ \(file.channels) channels",
                        found: "offset \(v.offset)", hint: "fix offset or levels"))
            }
        }
        if !problems.isEmpty { throw ValidationErrors(errors: problems) }
        self.files = files
    }
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
            do { sets.append(try Dataset(path: p)) } catch let e as ValidationErrors { problems += e.errors } catch let
                e as SwiftRainError
            { problems.append(e) }
        }
        if !problems.isEmpty { throw ValidationErrors(errors: problems) }
        datasets = sets
    }

    /// Every variable key known, sorted.
    public var variableKeys: [String] { datasets.flatMap { $0.info.variables.keys }.sorted() }

    /// Resolves `key` (e.g. `era5625/sp`, `era5625/z_300hPa`, `simsat5625/clbt`) to its channels.
    ///
    /// A level name `<v>_<p>hPa` is found either as its own variable or as level `p` of `<v>` through
    /// `index2pressure`, the two ways PyRain's converters write them.
    public func channels(of key: String) throws -> [ChannelSource] {
        for ds in datasets {
            if let v = ds.info.variables[key], let f = ds.files[v.mmapName] {
                let n = v.channelCount
                return (0..<n).map { i in
                    ChannelSource(
                        variable: key, normKey: n > 1 ? "\(key):\(i)" : key, file: f, channel: v.offset + i,
                        available: availability(v, f))
                }
            }
            if let m = key.range(of: #"_(\d+)hPa$"#, options: .regularExpression),
                let p = Int(key[m].dropFirst().dropLast(3))
            {
                let base = String(key[..<m.lowerBound])
                if let v = ds.info.variables[base], let f = ds.files[v.mmapName],
                    let idx = v.index2pressure?.first(where: { $0.value == p }).flatMap({ Int($0.key) })
                {
                    return [
                        ChannelSource(
                            variable: key, normKey: key, file: f, channel: v.offset + idx, available: availability(v, f)
                        )
                    ]
                }
            }
        }
        let prefix = key.split(separator: "/").first.map(String.init) ?? key
        let near = variableKeys.filter { $0.hasPrefix(prefix + "/") }
        throw SwiftRainError(
            key, "no dataset has this variable",
            expected: "a variable of the datasets given: "
                + (near.isEmpty ? variableKeys : near).joined(separator: ", "),
            found: "datasets " + datasets.map(\.name).joined(separator: ", "),
            hint: "add the dataset directory that holds it to `data` in the configuration, or choose other --sources")
    }

    private func availability(_ v: VariableInfo, _ f: DataFile) -> TimeSpan? {
        guard f.isTemporal else { return nil }
        // A variable may cover less than its file (first_ts/last_ts); reads outside either are unavailable.
        let lo = max(f.firstTime, v.firstTs.map { EpochSeconds($0.rounded()) } ?? f.firstTime)
        let hi = min(f.lastTime, v.lastTs.map { EpochSeconds($0.rounded()) } ?? f.lastTime)
        return TimeSpan(first: lo, last: hi)
    }
}
