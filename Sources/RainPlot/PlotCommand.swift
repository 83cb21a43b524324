import Foundation
import RainData
import RainModel
import RainSupport
import RainTraining

/// `swiftrain plot`: the run's training curves, and truth vs forecast maps per lead time for a date.
public enum Plot {
    /// Writes figures/curves.png and figures/maps-<date>.png into the run; returns their paths.
    public static func run(runPath: String, date: EpochSeconds?, phase: Partition.Name, log: (String) -> Void) throws
        -> [String]
    {
        let run = try RunDirectory(path: runPath)
        let dir = run.url.appendingPathComponent("figures")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var written: [String] = []

        // Curves from metrics.jsonl.
        let curves = Figures.curves(metricsPath: run.metricsPath, title: "\(run.url.lastPathComponent)")
        let curvesPath = dir.appendingPathComponent("curves.png").path
        try curves.writePNG(path: curvesPath)
        written.append(curvesPath)

        // Maps for one sample time: the model's forecast and the truth at every lead.
        let model = try run.trainedModel()
        let ckpt = model.checkpoint
        let (maps, t0) = try mapsFigure(model.runner(), date: date, phase: phase, log: log)
        let stamp = UTCTime.iso(t0).replacingOccurrences(of: ":", with: "").replacingOccurrences(of: "-", with: "")
        let mapsPath = dir.appendingPathComponent("maps-\(stamp).png").path
        try maps.writePNG(path: mapsPath)
        written.append(mapsPath)
        log("figures from \(ckpt): " + written.joined(separator: ", "))
        return written
    }

    /// Truth vs forecast per lead time for one sample time of `phase` (default: the sample nearest the
    /// partition's middle that every lead has, the same for every checkpoint of a run), as `plot` draws it.
    public static func mapsFigure(
        _ compute: ModelRunner, date: EpochSeconds?, phase: Partition.Name, log: (String) -> Void
    ) throws -> (Canvas, EpochSeconds) {
        let part = compute.index.samples(phase)
        var offsets: [Int] = [], total = 0
        for l in part.leads {
            offsets.append(total)
            total += l.times.count
        }
        func index(t0: EpochSeconds, lead l: Int) -> Int? {
            part.leads[l].times.firstIndex(of: t0).map { offsets[l] + $0 }
        }
        guard let firstLead = part.leads.first, !firstLead.times.isEmpty else {
            throw SwiftRainError(
                "--phase \(phase.rawValue)", "no samples in this partition",
                hint: "`swiftrain inspect --config C` shows why")
        }
        // Default: the sample time nearest the partition's middle that every lead has.
        let t0 =
            date ?? firstLead.times.sorted {
                abs($0 - firstLead.times[firstLead.times.count / 2])
                    < abs($1 - firstLead.times[firstLead.times.count / 2])
            }
            .first { t in part.leads.indices.allSatisfy { index(t0: t, lead: $0) != nil } }
            ?? firstLead.times[firstLead.times.count / 2]
        let target = try compute.catalog.channels(of: compute.index.spec.target)[0]
        let (scale, unit) = compute.index.spec.targetUnits
        var truth: [[Float]?] = [], forecast: [[Float]?] = []
        for l in part.leads.indices {
            guard let i = index(t0: t0, lead: l) else {
                truth.append(nil)
                forecast.append(nil)
                continue
            }
            let s = part.sample(i)
            let y = try target.plane(at: s.t0 + s.lead)!
            truth.append((0..<compute.shape.plane).map { y[$0] * scale })
            forecast.append(try compute.forecast(samples: [i], partition: phase).forecast.map { $0 * scale })
        }
        if truth.allSatisfy({ $0 == nil }) {
            throw SwiftRainError(
                "--date", "no \(phase.rawValue) sample starts at \(UTCTime.iso(t0))",
                hint:
                    """
                    pick a time between \(UTCTime.short(firstLead.times.first!)) and \
                    \(UTCTime.short(firstLead.times.last!)) on the sample grid (every \
                    \(part.partition.stride / 3600) h)
                    """
            )
        }
        // Coastlines from the ERA5 land–sea mask, when a dataset of the run has it on this grid.
        let lsm = compute.catalog.variableKeys.first { $0.hasSuffix("/lsm") }
        let land = try lsm.flatMap { key -> [Float]? in
            guard let source = try? compute.catalog.channels(of: key).first, source.file.height == compute.shape.height,
                source.file.width == compute.shape.width, let plane = try source.plane(at: 0)
            else { return nil }
            return Array(UnsafeBufferPointer(start: plane, count: compute.shape.plane))
        }
        if land == nil { log("no land-sea mask (era*/lsm) among the run's datasets: maps without coastlines") }
        let maps = Figures.maps(
            title: "\(compute.index.spec.target) from \(UTCTime.short(t0)) UTC (\(phase.rawValue))",
            unit: unit, leads: part.leads.map(\.leadHours), truth: truth, forecast: forecast, land: land,
            height: compute.shape.height, width: compute.shape.width)
        return (maps, t0)
    }
}
