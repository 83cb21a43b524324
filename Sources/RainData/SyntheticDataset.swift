import Foundation
import RainSupport

#if canImport(Glibc)
import Glibc
#endif

/// Writes era5625, imerg5625 and simsat5625 (or the 1.40625° equivalents) in exactly PyRain's
/// on-disk format from `SyntheticWeather`.
///
/// Ranges: each dataset's real range (DATA-FORMAT §2), cut to `--from … --to` when given. ERA5's
/// temporal file always spans its (cut) range, but only rows inside the fill window are written;
/// the rest stay holes of a sparse file, and the variables' `first_ts`/`last_ts` say where data
/// exist, so the holes are never read as data. The fill window defaults to `--from … --to`, or to
/// SimSat's period when no range is given (the full 1979–2019 ERA5 is 49 GiB; `--era-fill all`
/// writes it anyway).
public enum SyntheticDataset {
    public struct Options {
        public var out: String
        public var from: EpochSeconds? = nil
        public var to: EpochSeconds? = nil
        public var grid: Double = 5.625
        public var seed: UInt64 = 2020
        /// Any of "era", "imerg", "simsat".
        public var datasets: Set<String> = ["era", "imerg", "simsat"]
        /// ERA5 rows to write; nil = default (see type docs); an empty span writes none.
        public var eraFill: TimeSpan? = nil
        public init(out: String) { self.out = out }
    }

    public static let eraRange = TimeSpan(first: UTCTime.make(1979, 1, 1), last: UTCTime.make(2019, 12, 31, 23))
    public static let imergRange = TimeSpan(first: UTCTime.make(2000, 6, 1), last: UTCTime.make(2019, 12, 31, 23))
    public static let simsatRange = TimeSpan(first: UTCTime.make(2016, 4, 1), last: UTCTime.make(2020, 3, 31, 21))
    /// ERA5 tp is NaN before this time, as in the real file.
    public static let tpFirstValid = UTCTime.make(1979, 1, 1, 7)

    /// Dataset directory suffix for a grid: 5.625 → "5625", 1.40625 → "140625".
    public static func suffix(grid: Double) -> String {
        String(String(grid).filter { $0 != "." }.drop(while: { $0 == "0" }))
    }

    /// Writes the datasets; `progress` receives occasional status lines. Returns the directories written.
    @discardableResult
    public static func write(_ o: Options, progress: (String) -> Void = { _ in }) throws -> [String] {
        guard [5.625, 2.8125, 1.40625].contains(o.grid) else {
            throw SwiftRainError(
                "--grid", "unsupported grid", expected: "5.625, 2.8125 or 1.40625", found: "\(o.grid)",
                hint: "choose one of RainBench's grids")
        }
        var weather = SyntheticWeather(seed: o.seed, grid: o.grid)
        let h = weather.height, w = weather.width, plane = h * w
        let sfx = suffix(grid: o.grid)
        func cut(_ r: TimeSpan, step: EpochSeconds) -> TimeSpan {
            // Keep the dataset's own time grid (anchored at its real start).
            let lo = max(r.first, o.from ?? r.first), hi = min(r.last, o.to ?? r.last)
            return TimeSpan(
                first: r.first + ceilDiv(lo - r.first, step) * step, last: r.first + floorDiv(hi - r.first, step) * step
            )
        }
        var writers: [RowWriter] = []
        var dirs: [String] = []
        func open(
            _ name: String, _ file: String, span: TimeSpan, step: EpochSeconds, channels: Int,
            variables: [String: VariableInfo]
        ) throws -> RowWriter {
            let dir = URL(fileURLWithPath: o.out).appendingPathComponent(name)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let rows = span.isEmpty ? 0 : Int((span.last - span.first) / step) + 1
            guard rows > 0 else {
                throw SwiftRainError(
                    "--from/--to", "\(name) has no data in the chosen range",
                    hint: "widen the range or leave \(name) out with --datasets")
            }
            let info = DatasetInfo(
                variables: variables,
                memmap: [
                    file: MemmapInfo(
                        dims: [rows, channels, h, w], daterange: [Double(span.first), Double(span.last)],
                        tfreqS: Double(step))
                ])
            let writer = try RowWriter(
                path: dir.appendingPathComponent(file).path, span: span, step: step, rowFloats: channels * plane)
            writers.append(writer)
            dirs.append(dir.path)
            var merged = info
            if let existing = try? DatasetInfo.load(dir.appendingPathComponent("\(name)_info.json")),
                name.hasPrefix("era")
            {
                merged.memmap.merge(existing.memmap.filter { $0.key != file }) { a, _ in a }
                merged.variables.merge(existing.variables.filter { $0.value.mmapName != file }) { a, _ in a }
            }
            try merged.write(to: dir.appendingPathComponent("\(name)_info.json"))
            return writer
        }
        func temporal(
            _ name: String, _ file: String, offset: Int, levels: [Int], pressure: Int? = nil, span: TimeSpan,
            step: EpochSeconds
        ) -> VariableInfo {
            VariableInfo(
                name: name, mmapName: file, type: "temp", dims: [h, w], offset: offset, levels: levels,
                index2pressure: pressure.map { ["0": $0] }, firstTs: Double(span.first), lastTs: Double(span.last),
                tfreqS: Double(step))
        }

        var era: RowWriter?, imerg: RowWriter?, simsat: RowWriter?
        var eraFill = TimeSpan(first: 1, last: 0)
        let hour = UTCTime.hour
        if o.datasets.contains("era") {
            let name = "era" + sfx, file = "\(name)__\(name).mmap", cfile = "\(name)__\(name)_const.mmap"
            let span = cut(eraRange, step: hour)
            let defaultFill = (o.from == nil && o.to == nil) ? simsatRange : span
            let want = o.eraFill ?? defaultFill
            eraFill = TimeSpan(
                first: max(span.first, ceilDiv(want.first, hour) * hour),
                last: min(span.last, floorDiv(want.last, hour) * hour))
            var vars: [String: VariableInfo] = [:]
            for (i, v) in ["lat2d", "lon2d", "lsm", "orography", "slt"].enumerated() {
                vars["\(name)/\(v)"] = VariableInfo(
                    name: v, mmapName: cfile, type: "const", dims: [h, w], offset: i, levels: nil, firstTs: nil,
                    lastTs: nil, tfreqS: nil)
            }
            let pidx = [300: 5, 500: 7, 850: 10]  // PyRain's pressure_to_idx
            for (i, v) in ["t2m", "sp", "tp"].enumerated() {
                vars["\(name)/\(v)"] = temporal(v, file, offset: i, levels: [0], span: eraFill, step: hour)
            }
            for (j, p) in [300, 500, 850].enumerated() {
                for (k, v) in ["ciwc", "clwc", "t", "z", "q"].enumerated() {
                    vars["\(name)/\(v)_\(p)hPa"] = temporal(
                        "\(v)_\(p)hPa", file, offset: 3 + 5 * j + k, levels: [pidx[p]!], pressure: p, span: eraFill,
                        step: hour)
                }
            }
            era = try open(name, file, span: span, step: hour, channels: 18, variables: vars)
            // The constants file (C, H, W) is small: write it whole.
            let info = try DatasetInfo.load(
                URL(fileURLWithPath: o.out).appendingPathComponent("\(name)/\(name)_info.json"))
            var withConst = info
            withConst.memmap[cfile] = MemmapInfo(dims: [5, h, w], daterange: nil, tfreqS: nil)
            try withConst.write(to: URL(fileURLWithPath: o.out).appendingPathComponent("\(name)/\(name)_info.json"))
            let consts = weather.lat2d + weather.lon2d + weather.lsm + weather.orography + weather.slt
            try consts.withUnsafeBytes {
                try Data($0).write(to: URL(fileURLWithPath: o.out).appendingPathComponent("\(name)/\(cfile)"))
            }
        }
        if o.datasets.contains("imerg") {
            let name = "imerg" + sfx, file = "\(name)__\(name).mmap", span = cut(imergRange, step: hour)
            imerg = try open(
                name, file, span: span, step: hour, channels: 1,
                variables: [
                    "\(name)/precipitationcal": temporal(
                        "precipitationcal", file, offset: 0, levels: [0], span: span, step: hour)
                ])
        }
        if o.datasets.contains("simsat") {
            let name = "simsat" + sfx, file = "\(name)__\(name).mmap", span = cut(simsatRange, step: 3 * hour)
            simsat = try open(
                name, file, span: span, step: 3 * hour, channels: 3,
                variables: [
                    "\(name)/clbt": temporal("clbt", file, offset: 0, levels: [0, 1, 2], span: span, step: 3 * hour)
                ])
        }

        // One pass over time: each hour's weather is computed once and feeds every file that needs it.
        let eraWanted = era != nil && !eraFill.isEmpty
        let needs: [TimeSpan] = [imerg?.span, simsat?.span, eraWanted ? eraFill : nil].compactMap { $0 }
        guard let start = needs.map(\.first).min(), let end = needs.map(\.last).max() else { return dirs }
        var rain = [Float](repeating: 0, count: plane), cloud = rain, ts = rain
        var row = [Float](repeating: 0, count: 18 * plane)
        var lastReport = Date()
        var t = start
        while t <= end {
            let wantImerg = imerg?.span.contains(t) ?? false
            let wantSimsat = (simsat?.span.contains(t) ?? false) && (t - simsat!.span.first) % (3 * hour) == 0
            let wantEra = eraWanted && eraFill.contains(t)
            if wantImerg || wantSimsat || wantEra {
                weather.fields(at: t, rain: &rain, cloud: &cloud)
                let key = SplitMix.mix(o.seed &+ UInt64(bitPattern: t) &* 0x2545_F491_4F6C_DD1D)
                if wantImerg {
                    let k = key ^ 0x1
                    for i in 0..<plane {
                        row[i] = rain[i] > 0.02 ? rain[i] * exp(0.3 * SplitMix.noise(k, i) - 0.045) : 0
                    }
                    try imerg!.put(t, row)
                }
                if wantSimsat || wantEra { weather.surfaceTemperature(at: t, cloud: cloud, into: &ts) }
                if wantSimsat {
                    for i in 0..<plane {
                        let c = cloud[i]
                        row[i] = ts[i] * (1 - c) + 212 * c + SplitMix.noise(key ^ 0x10, i)
                        row[plane + i] = 238 - 12 * c + 1.5 * SplitMix.noise(key ^ 0x11, i)
                        row[2 * plane + i] = 252 - 18 * c + 1.5 * SplitMix.noise(key ^ 0x12, i)
                    }
                    try simsat!.put(t, row)
                }
                if wantEra {
                    fillERA(
                        &row, plane: plane, t: t, key: key, rain: rain, cloud: cloud, ts: ts,
                        orography: weather.orography)
                    try era!.put(t, row)
                }
            }
            if Date().timeIntervalSince(lastReport) > 5 {
                lastReport = Date()
                progress("synth: \(UTCTime.short(t)) (\(Int(100 * Double(t - start) / Double(max(1, end - start))))%)")
            }
            t += hour
        }
        for w in writers { try w.finish() }
        return dirs
    }

    /// One ERA5 row, channels in PyRain's file order (DATA-FORMAT §2).
    static func fillERA(
        _ row: inout [Float], plane: Int, t: EpochSeconds, key: UInt64, rain: [Float], cloud: [Float], ts: [Float],
        orography: [Float]
    ) {
        let nan = t < tpFirstValid
        for i in 0..<plane {
            let c = cloud[i], s = ts[i]
            row[i] = s + 0.5 * SplitMix.noise(key ^ 0x20, i)
            row[plane + i] = 101_325 * exp(-orography[i] / 8400) - 1200 * c + 80 * SplitMix.noise(key ^ 0x21, i)
            row[2 * plane + i] =
                nan ? .nan : (rain[i] > 0.02 ? rain[i] * exp(0.25 * SplitMix.noise(key ^ 0x22, i) - 0.03) / 1000 : 0)
        }
        let ice: [Float] = [6e-5, 3e-5, 4e-6], liquid: [Float] = [2e-6, 2e-5, 6e-5]
        let lapse: [Float] = [65, 38, 13], warm: [Float] = [2, 1, 0]
        let height: [Float] = [9200, 5600, 1460], dz: [Float] = [30, 20, 5], low: [Float] = [60, 40, 25]
        let q0: [Float] = [3e-4, 3e-3, 1.2e-2]
        for j in 0..<3 {
            let base = (3 + 5 * j) * plane
            let k = key ^ UInt64(0x100 + 16 * j)
            for i in 0..<plane {
                let c = cloud[i], s = ts[i]
                row[base + i] = max(0, ice[j] * c * (1 + 0.2 * SplitMix.noise(k, i)))
                row[base + plane + i] = max(0, liquid[j] * c * (1 + 0.2 * SplitMix.noise(k ^ 1, i)))
                row[base + 2 * plane + i] = s - lapse[j] + warm[j] * c + 0.5 * SplitMix.noise(k ^ 2, i)
                row[base + 3 * plane + i] =
                    9.80665 * (height[j] + dz[j] * (s - 288) - low[j] * c) + 20 * SplitMix.noise(k ^ 3, i)
                row[base + 4 * plane + i] =
                    q0[j] * exp((s - 300) / 15) * (0.5 + 0.5 * c) * (1 + 0.05 * SplitMix.noise(k ^ 4, i))
            }
        }
    }
}

/// Writes rows of one temporal file, batching consecutive rows into large pwrites. The file is
/// sized up front, so rows never written remain holes (a sparse file).
final class RowWriter {
    let span: TimeSpan, step: EpochSeconds, rowFloats: Int
    private let fd: Int32
    private let path: String
    private var pending: [Float] = []
    private var pendingFirstRow = 0
    private let batchRows: Int

    init(path: String, span: TimeSpan, step: EpochSeconds, rowFloats: Int) throws {
        self.path = path
        self.span = span
        self.step = step
        self.rowFloats = rowFloats
        fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else {
            throw SwiftRainError(
                path, "cannot create file: \(String(cString: strerror(errno)))",
                hint: "check the output directory is writable")
        }
        let rows = Int((span.last - span.first) / step) + 1
        guard ftruncate(fd, off_t(rows * rowFloats * 4)) == 0 else {
            throw SwiftRainError(
                path, "cannot size file: \(String(cString: strerror(errno)))", hint: "check free disk space")
        }
        batchRows = max(1, (8 << 20) / (rowFloats * 4))
        pending.reserveCapacity(batchRows * rowFloats)
    }

    func put(_ t: EpochSeconds, _ row: [Float]) throws {
        let r = Int((t - span.first) / step)
        if !pending.isEmpty
            && (r != pendingFirstRow + pending.count / rowFloats || pending.count >= batchRows * rowFloats)
        {
            try flush()
        }
        if pending.isEmpty { pendingFirstRow = r }
        pending.append(contentsOf: row[0..<rowFloats])
    }

    private func flush() throws {
        let bytes = pending.count * 4
        let n = pending.withUnsafeBytes { pwrite(fd, $0.baseAddress, bytes, off_t(pendingFirstRow * rowFloats * 4)) }
        guard n == bytes else {
            throw SwiftRainError(
                path, "write failed: \(String(cString: strerror(errno)))", hint: "check free disk space")
        }
        pending.removeAll(keepingCapacity: true)
    }

    func finish() throws {
        if !pending.isEmpty { try flush() }
        close(fd)
    }
}
