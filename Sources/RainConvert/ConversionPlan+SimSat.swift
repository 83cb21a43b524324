import Foundation
import RainSupport

extension ConversionPlan {
    /// SimSat's yearly files, `satYYYY.nc`: `clbt` (time, channel, lat, lon), three brightness
    /// temperatures (K) every 3 hours, into `simsat5625` as one 3-channel variable `clbt`. The channel
    /// axis may have any name; rows go by the time coordinate, or, without one, from the year's start
    /// (2016: 1 April, where RainBench's SimSat begins), as PyRain's converter assumes.
    public static func simsat(directory: String, grid: RainGrid, years: ClosedRange<Int>?) throws -> ConversionPlan {
        let files = try InputFiles(directory: directory)
        let found = files.years({ "sat\($0).nc" }, in: years ?? 1900...2100)
        guard let y0 = found.first, let y1 = found.last else {
            throw SwiftRainError(
                directory, "no SimSat files" + (years.map { " in \($0.lowerBound)…\($0.upperBound)" } ?? ""),
                expected: "files named satYYYY.nc (sat2016.nc … sat2020.nc)",
                found: "\(files.byName.count) files, none matching", hint: "point --from at them, or check --years")
        }
        func start(_ y: Int) -> EpochSeconds { y == 2016 ? UTCTime.make(2016, 4, 1) : UTCTime.make(y, 1, 1) }
        var inputs: [Int: [[String]]] = [:]
        var implied: [String: EpochSeconds] = [:]
        for y in y0...y1 {
            let path = files.byName["sat\(y).nc"]
            inputs[y] = (0..<3).map { _ in path.map { [$0] } ?? [] }
            if let path { implied[path] = start(y) }
        }
        var plan = ConversionPlan(
            dataset: "simsat" + grid.suffix, grid: grid, step: 3 * UTCTime.hour, years: Array(y0...y1),
            channels: (0..<3).map {
                Channel(name: "clbt_\($0)", sourceVariable: "clbt", levelIndex: $0, group: "clbt", indexInGroup: $0)
            }, inputs: inputs)
        plan.impliedStart = implied
        plan.first = start(y0)
        return plan
    }
}
