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
