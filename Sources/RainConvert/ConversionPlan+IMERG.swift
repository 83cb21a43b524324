import Foundation
import RainSupport

extension ConversionPlan {
    /// PyRain's daily 5.625° (or 1.40625°) IMERG files, `imergYYYYMMDD.nc`, each 24 hourly rows of
    /// `precipitationcal` (mm/h), into `imerg5625`. Rows go by the file's time coordinate, or, without
    /// one, by the file name's date (row k at hh = k, as PyRain assumes). Days without a file are NaN.
    /// The data file is `imerg5625__imerg5625.mmap`, the name the metadata gives (PyRain writes `…bi.mmap`).
    public static func imergDaily(directory: String, grid: RainGrid, years: ClosedRange<Int>?) throws -> ConversionPlan
    {
        let files = try InputFiles(directory: directory)
        var days: [(EpochSeconds, String)] = []
        for (name, path) in files.byName where name.hasPrefix("imerg") && name.hasSuffix(".nc") {
            let digits = name.dropFirst(5).dropLast(3)
            guard digits.count == 8, digits.allSatisfy(\.isNumber), let v = Int(digits) else { continue }
            let y = v / 10_000, m = v / 100 % 100, d = v % 100
            guard let t = UTCTime.parse(String(format: "%04d-%02d-%02d", y, m, d)) else { continue }
            if let years, !years.contains(y) { continue }
            days.append((t, path))
        }
        days.sort { $0.0 < $1.0 }
        guard let first = days.first?.0, let last = days.last?.0 else {
            throw SwiftRainError(
                directory, "no daily IMERG files" + (years.map { " in \($0.lowerBound)…\($0.upperBound)" } ?? ""),
                expected: "files named imergYYYYMMDD.nc (PyRain's daily \(grid.label)° IMERG)",
                found: "\(files.byName.count) files, none matching", hint: "point --from at them, or check --years")
        }
        let y0 = UTCTime.fields(first).year, y1 = UTCTime.fields(last).year
        var inputs: [Int: [[String]]] = [:]
        var implied: [String: EpochSeconds] = [:]
        for (t, path) in days {
            inputs[UTCTime.fields(t).year, default: [[]]][0].append(path)
            implied[path] = t
        }
        var plan = ConversionPlan(
            dataset: "imerg" + grid.suffix, grid: grid, step: UTCTime.hour, years: Array(y0...y1),
            channels: [Channel(name: "precipitationcal", sourceVariable: "precipitationcal")], inputs: inputs)
        for y in y0...y1 where inputs[y] == nil { plan.inputs[y] = [[]] }
        plan.impliedStart = implied
        // The dataset starts at its first day (IMERG: 2000-06-01), not on 1 January.
        plan.first = first
        return plan
    }
}

extension ConversionPlan {
    /// GPM IMERG's half-hourly HDF5 files (`3B-HHR.MS.MRG.3IMERG.20160101-S003000-E005959.0030.V06B.HDF5`,
    /// V06 `Grid/precipitationCal` or V07 `Grid/precipitation`, mm/h on 0.1° in time, lon, lat order, fill
    /// −9999.9) into `imerg5625`: each half-hour averaged by area onto the grid, then the two half-hours of
    /// an hour averaged into the row of the hour's start (00:00 and 00:30 → 00:00).
    public static func imergHalfHourly(directory: String, grid: RainGrid, years: ClosedRange<Int>?) throws
        -> ConversionPlan
    {
        let files = try InputFiles(directory: directory)
        var halves: [(EpochSeconds, String)] = []
        for (name, path) in files.byName {
            guard let t = gpmStart(name) else { continue }
            if let years, !years.contains(UTCTime.fields(t).year) { continue }
            halves.append((t, path))
        }
        halves.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        guard let first = halves.first?.0, let last = halves.last?.0 else {
            throw SwiftRainError(
                directory,
                "no GPM IMERG half-hourly files" + (years.map { " in \($0.lowerBound)…\($0.upperBound)" } ?? ""),
                expected: "files named 3B-HHR…3IMERG.YYYYMMDD-ShhmmSS-EhhmmSS.NNNN.V06B.HDF5 (or V07B)",
                found: "\(files.byName.count) files, none matching", hint: "point --from at them, or check --years")
        }
        let y0 = UTCTime.fields(first).year, y1 = UTCTime.fields(last).year
        var inputs: [Int: [[String]]] = [:]
        var implied: [String: EpochSeconds] = [:]
        for y in y0...y1 { inputs[y] = [[]] }
        for (t, path) in halves {
            inputs[UTCTime.fields(t).year]![0].append(path)
            implied[path] = t
        }
        var plan = ConversionPlan(
            dataset: "imerg" + grid.suffix, grid: grid, step: UTCTime.hour, years: Array(y0...y1),
            channels: [
                Channel(name: "precipitationcal", sourceVariable: "Grid/precipitationCal|Grid/precipitation")
            ], inputs: inputs)
        plan.impliedStart = implied
        plan.meanOverStep = true
        plan.first = floorDiv(first, UTCTime.hour) * UTCTime.hour
        return plan
    }

    /// The start time in a GPM file name: `…3IMERG.YYYYMMDD-ShhmmSS-…HDF5`.
    static func gpmStart(_ name: String) -> EpochSeconds? {
        guard name.hasPrefix("3B-HHR"), name.uppercased().hasSuffix(".HDF5") || name.hasSuffix(".nc4"),
            let r = name.range(of: "3IMERG.")
        else { return nil }
        let rest = name[r.upperBound...]
        let date = rest.prefix(8), time = rest.dropFirst(10).prefix(6)
        guard rest.dropFirst(8).hasPrefix("-S"), date.count == 8, time.count == 6,
            date.allSatisfy(\.isNumber), time.allSatisfy(\.isNumber)
        else { return nil }
        let d = Array(date), h = Array(time)
        let text =
            "\(String(d[0..<4]))-\(String(d[4..<6]))-\(String(d[6..<8])) "
            + "\(String(h[0..<2])):\(String(h[2..<4])):\(String(h[4..<6]))"
        return UTCTime.parse(text)
    }
}
