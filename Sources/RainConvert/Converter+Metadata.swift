import Foundation
import RainData
import RainNetCDF
import RainSupport
import RainZarr

/// What an unfinished conversion has done, saved after every year so a re-run resumes there.
struct ConversionState: Codable, Equatable {
    /// The settings the state belongs to; a re-run with others is refused.
    var fingerprint: String
    /// The time of row 0 and the rows present before this conversion (appending).
    var origin: EpochSeconds
    var baseRows: Int
    var done: [Int]
    /// Per channel, the first and last time a file had.
    var coverage: [String: [EpochSeconds]]
    /// Per channel, the NaN rows' times (YearResult.missing), for the metadata's missing_ts.
    var missing: [String: [EpochSeconds]] = [:]
    var resumedFrom: [Int] = []
    /// Per year written, its inputs' fingerprint.
    var inputs: [String: String]? = [:]

    static func load(_ url: URL) throws -> ConversionState? {
        guard let data = try? Data(contentsOf: url) else { return nil }
        do {
            return try JSONDecoder().decode(ConversionState.self, from: data)
        } catch {
            throw SwiftRainError(
                url.path, "unreadable conversion state", hint: "delete the dataset directory and convert again")
        }
    }

    func save(_ url: URL) throws {
        try JSONEncoder().encode(self).write(to: url, options: .atomic)
    }
}

extension Converter {
    var metadataURLs: (dill: URL, json: URL) {
        (
            directory.appendingPathComponent("\(plan.dataset).dill"),
            directory.appendingPathComponent("\(plan.dataset)_info.json")
        )
    }

    func existingInfo() throws -> DatasetInfo? {
        let (dill, json) = metadataURLs
        for url in [dill, json] where FileManager.default.fileExists(atPath: url.path) {
            return try DatasetInfo.load(url)
        }
        return nil
    }

    /// The settings (not the input files: a year not yet written may get its files fixed between runs).
    func fingerprint() -> String {
        let parts = [
            plan.dataset, plan.grid.label, "\(plan.step)", plan.years.map(String.init).joined(separator: ","),
            append ? "append" : "new", plan.channels.map(\.name).joined(separator: ","),
        ]
        return String(format: "%016llx", fnv1a(parts.joined(separator: "\n")))
    }

    /// The input files of `year` with their sizes: a year already written whose files changed is not
    /// silently kept.
    func inputFingerprint(_ year: Int) -> String {
        let parts = (plan.inputs[year] ?? []).joined().map { p in
            let size = (try? FileManager.default.attributesOfItem(atPath: p)[.size] as? Int) ?? -1
            return "\(p):\(size)"
        }
        return String(format: "%016llx", fnv1a(parts.joined(separator: "\n")))
    }

    private func fnv1a(_ s: String) -> UInt64 {
        s.utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    }

    /// Row 0's time and the row count of the dataset being extended, after checking it can be.
    func appendBase(_ info: DatasetInfo) throws -> (EpochSeconds, Int) {
        let subject = metadataURLs.dill.deletingLastPathComponent().path
        guard let m = info.memmap[plan.temporalFile], m.dims.count == 4, let range = m.daterange, range.count == 2,
            let step = m.tfreqS
        else {
            throw SwiftRainError(
                subject, "no temporal file \(plan.temporalFile) to append to",
                hint: "convert the dataset with swiftrain convert first")
        }
        let names = info.variables.values.filter { $0.mmapName == plan.temporalFile }.sorted { $0.offset < $1.offset }
        let have = names.flatMap { v in
            v.channelCount == 1 ? [v.name ?? ""] : (0..<v.channelCount).map { _ in v.name ?? "" }
        }
        let want = plan.channels.map(\.group)
        guard have == want, m.dims[1] == want.count, EpochSeconds(step) == plan.step else {
            throw SwiftRainError(
                subject, "the existing dataset has other channels",
                expected: want.joined(separator: ", ") + " every \(plan.step / 3600) h",
                found: have.joined(separator: ", ") + " every \(Int(step) / 3600) h",
                hint: "append with the same --variables the dataset was converted with")
        }
        let origin = EpochSeconds(range[0]), lastRow = EpochSeconds(range[1])
        let rows = Int((lastRow - origin) / plan.step) + 1
        guard rows == m.dims[0] else {
            throw SwiftRainError(
                subject, "daterange and dims disagree (PyRain's converter writes 2019 rows its daterange omits)",
                expected: "\(rows) rows for \(UTCTime.iso(origin)) … \(UTCTime.iso(lastRow))",
                found: "\(m.dims[0]) rows", hint: "convert the dataset again with swiftrain convert, then append")
        }
        let next = UTCTime.fields(lastRow + plan.step)
        guard next.month == 1, next.day == 1, next.hour == 0, next.year == plan.years.first else {
            throw SwiftRainError(
                "--years", "appending must continue where the dataset ends",
                expected: "years from \(next.month == 1 && next.day == 1 ? next.year : next.year + 1)",
                found: "\(plan.years.first ?? 0)…\(plan.years.last ?? 0) after \(UTCTime.iso(lastRow))",
                hint: "pass --years \(next.year)-\(max(next.year, plan.years.last ?? 0))")
        }
        return (origin, rows)
    }

    func writeConstants(_ constants: (path: String, names: [String])) throws {
        if plan.zarrStore == constants.path { return try writeZarrConstants(constants) }
        let file = try NetCDFFile.open(path: constants.path)
        var values: [Float] = []
        for name in constants.names {
            values += try SourceField(file: file, variable: name, grid: plan.grid).read(0..<1, level: nil)
        }
        try file.close()
        let url = directory.appendingPathComponent(plan.constantFile)
        try values.withUnsafeBytes { try Data($0).write(to: url, options: .atomic) }
        progress("\(plan.dataset): \(constants.names.count) constants (\(constants.names.joined(separator: ", ")))")
    }

    /// Constants from a Zarr store's static arrays, lat2d/lon2d from the grid (as WeatherBench 1's
    /// constants file holds them: degrees north of each row, degrees east of each column).
    private func writeZarrConstants(_ constants: (path: String, names: [String])) throws {
        let store = try ZarrStore(path: constants.path)
        let g = plan.grid
        var values: [Float] = []
        for name in constants.names {
            switch name {
            case "lat2d": values += (0..<g.plane).map { Float(g.latitude($0 / g.width)) }
            case "lon2d": values += (0..<g.plane).map { Float(Double($0 % g.width) * g.resolution) }
            default:
                guard let (array, factor) = plan.zarrConstants[name] else { continue }
                let variable = try plan.zarrVariable(store, array, constant: true)
                let plane = try SourceField(variable, grid: g).read(0..<1, level: nil)
                values += plane.map { Float(Double($0) * factor) }
            }
        }
        let url = directory.appendingPathComponent(plan.constantFile)
        try values.withUnsafeBytes { try Data($0).write(to: url, options: .atomic) }
        progress("\(plan.dataset): \(constants.names.count) constants from \(store.url.lastPathComponent)")
    }

    /// PyRain's dict: per-level names, `levels` as PyRain's pressure indices, `index2pressure`, and a
    /// `daterange` that matches `dims` (PyRain's ERA5 converter's ends a year early).
    func writeMetadata(existing: DatasetInfo?, rows: Int, state: ConversionState) throws {
        var info = (append ? existing : nil) ?? DatasetInfo(variables: [:], memmap: [:])
        let hw = [plan.grid.height, plan.grid.width]
        if !plan.channels.isEmpty && !plan.years.isEmpty {
            let last = state.origin + EpochSeconds(rows - 1) * plan.step
            info.memmap[plan.temporalFile] = MemmapInfo(
                dims: [rows, plan.channels.count] + hw, daterange: [Double(state.origin), Double(last)],
                tfreqS: Double(plan.step))
            for (offset, c) in plan.channels.enumerated() where c.indexInGroup == 0 {
                let members = plan.channels.filter { $0.group == c.group }
                let cover = members.compactMap { state.coverage[$0.name] }
                let key = "\(plan.dataset)/\(c.group)"
                let old = info.variables[key]
                let firstTs = ([old?.firstTs].compactMap { $0 } + cover.map { Double($0[0]) }).min()
                let lastTs = ([old?.lastTs].compactMap { $0 } + cover.map { Double($0[1]) }).max()
                info.variables[key] = VariableInfo(
                    name: c.group, mmapName: plan.temporalFile, type: "temp", dims: hw, offset: offset,
                    levels: c.pressure.map { [ConversionPlan.pressureIndex[$0] ?? 0] } ?? Array(0..<members.count),
                    index2pressure: c.pressure.map { ["0": $0] }, firstTs: firstTs, lastTs: lastTs,
                    tfreqS: Double(plan.step))
                // NaN rows inside the span (any of the variable's channels), kept across --append.
                let nanTimes = Set(members.flatMap { state.missing[$0.name] ?? [] }.map(Double.init))
                    .union(old?.missingTs ?? [])
                    .filter { t in firstTs.map { t >= $0 } ?? false && lastTs.map { t <= $0 } ?? false }
                info.variables[key]?.missingTs = nanTimes.isEmpty ? nil : nanTimes.sorted()
                if c.name == "tp6h" {
                    info.variables[key]?.units = "m"
                    info.variables[key]?.longName =
                        "total precipitation over the 6 h ending at the row's time (WeatherBench 2's "
                        + "total_precipitation_6hr)"
                }
            }
        }
        if let c = plan.constants, !append {
            info.memmap[plan.constantFile] = MemmapInfo(dims: [c.names.count] + hw, daterange: nil, tfreqS: nil)
            for (i, name) in c.names.enumerated() {
                info.variables["\(plan.dataset)/\(name)"] = VariableInfo(
                    name: name, mmapName: plan.constantFile, type: "const", dims: hw, offset: i, levels: nil,
                    firstTs: nil, lastTs: nil, tfreqS: nil)
            }
        }
        try info.writeBoth(directory: directory, name: plan.dataset)
    }
}
