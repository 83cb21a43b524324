import Foundation
import RainConfig
import RainData
import RainModel
import RainSupport
import RainTraining

/// One row per lead time of an evaluation: pooled latitude-weighted RMSE in physical units of the
/// model (if any) and the three baselines, on the same samples.
public struct LeadScores: Codable, Equatable {
    public var hours: Int
    public var samples: Int
    public var model: Double?
    public var persistence: Double?
    /// PyRain's: the scalar training mean of the target.
    public var climatology: Double?
    /// Per pixel, per week of the year, over the training period.
    public var weeklyClimatology: Double?
}

/// `swiftrain eval` / `swiftrain baselines` output (eval/<phase>.json).
public struct EvaluationReport: Codable {
    public var phase: String
    public var target: String
    public var unit: String
    public var checkpoint: String?
    /// Mean transformed-space loss of the model (the training loss's metric).
    public var loss: Double?
    public var samples: Int
    /// Samples left out of every row because the target at t0 (persistence's forecast) is missing.
    public var skipped: Int
    public var leads: [LeadScores]
}

/// Scores a model and the baselines on one partition, in one process (every core to OpenBLAS).
public final class Evaluator {
    public let compute: ModelRunner
    public let scale: Float, unit: String
    let target: ChannelSource
    public let climatologyMean: Float
    public let weekly: WeeklyClimatology

    /// Scores `runner`'s model (its parameters as loaded) and the baselines on `config`'s data.
    public init(runner: ModelRunner, config: Config) throws {
        compute = runner
        let spec = compute.index.spec
        target = try compute.catalog.channels(of: spec.target)[0]
        (scale, unit) = spec.targetUnits
        let stats = try Normalisation.load(path: config.normalisation).require(target.normKey)
        climatologyMean = Float(stats.mean)
        guard let train = spec.partitions.first(where: { $0.name == .train }) else {
            throw SwiftRainError("config", "no train partition", hint: "set train_start and train_end")
        }
        weekly = try WeeklyClimatology(
            source: target, span: TimeSpan(first: train.start, last: train.end), fallback: climatologyMean)
    }

    /// Scores the runner's model (unless `baselinesOnly`) and the baselines on `partition`; `progress`
    /// gets (done, total).
    public func run(
        baselinesOnly: Bool = false, partition: Partition.Name, checkpoint: String? = nil,
        progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> EvaluationReport {
        let part = compute.index.samples(partition)
        let spec = compute.index.spec, shape = compute.shape, plane = shape.plane, w = shape.width
        let lat = ConvLSTMForecaster.latitudeWeights(shape.height)
        var model = [PooledRMSE](repeating: .init(), count: spec.leads.count)
        var persistence = model, climatology = model, weeklyScores = model
        // Persistence needs the target at t0: samples where it is missing are left out of every row.
        let kept = try (0..<part.count).filter { try target.plane(at: part.sample($0).t0) != nil }
        var loss = 0.0
        var truth = [Float](repeating: 0, count: plane)
        let batch = 16
        for start in stride(from: 0, to: kept.count, by: batch) {
            let chunk = Array(kept[start..<min(kept.count, start + batch)])
            let outputs = baselinesOnly ? nil : try compute.forecast(samples: chunk, partition: partition)
            for (j, i) in chunk.enumerated() {
                let s = part.sample(i)
                let l = spec.leadIndex(s.lead)!
                let y = try target.plane(at: s.t0 + s.lead)!, y0 = try target.plane(at: s.t0)!
                for q in 0..<plane { truth[q] = y[q] * scale }
                truth.withUnsafeBufferPointer { t in
                    guard let tp = t.baseAddress else { return }
                    if let outputs {
                        model[l].add(
                            forecast: { outputs.forecast[j * plane + $0] * self.scale }, truth: tp, latWeights: lat,
                            width: w)
                    }
                    persistence[l].add(forecast: { y0[$0] * self.scale }, truth: tp, latWeights: lat, width: w)
                    climatology[l].add(
                        forecast: { _ in self.climatologyMean * self.scale }, truth: tp, latWeights: lat, width: w)
                    let wk = weekly.forecast(at: s.t0 + s.lead)
                    weeklyScores[l].add(forecast: { wk[$0] * self.scale }, truth: tp, latWeights: lat, width: w)
                }
            }
            if let outputs { loss += outputs.lossSum }
            progress(min(kept.count, start + batch), kept.count)
        }
        let leads = spec.leads.enumerated().map { l, lead in
            LeadScores(
                hours: Int(lead / 3600), samples: persistence[l].samples, model: baselinesOnly ? nil : model[l].value,
                persistence: persistence[l].value, climatology: climatology[l].value,
                weeklyClimatology: weeklyScores[l].value)
        }
        return EvaluationReport(
            phase: partition.rawValue, target: spec.target, unit: unit, checkpoint: checkpoint,
            loss: baselinesOnly || kept.isEmpty ? nil : loss / Double(kept.count), samples: kept.count,
            skipped: part.count - kept.count, leads: leads)
    }
}

extension EvaluationReport {
    /// The RainBench paper's Table 1 layout: methods as rows, 1, 3 and 5 days as columns (the lead
    /// times present; every lead is in the JSON).
    public func markdown(title: String) -> String {
        let shown = leads.filter { [24, 72, 120].contains($0.hours) }
        let cols = shown.isEmpty ? leads : shown
        func cell(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "–" }
        var out =
            """
            \(title)\n\nLatitude-weighted RMSE (\(unit)) of \(target) on the \(phase) partition, pooled over \
            \(samples) samples
            """
            + (skipped > 0 ? " (\(skipped) left out: no target at t0)" : "") + ".\n\n"
        out +=
            "| method | "
            + cols.map { $0.hours % 24 == 0 ? "\($0.hours / 24) day\($0.hours == 24 ? "" : "s")" : "\($0.hours) h" }
            .joined(separator: " | ") + " |\n"
        out += "|---|" + cols.map { _ in "---:|" }.joined() + "\n"
        var rows: [(String, KeyPath<LeadScores, Double?>)] = [
            ("persistence", \.persistence), ("climatology (training mean)", \.climatology),
            ("climatology (per pixel, week of year)", \.weeklyClimatology),
        ]
        if leads.contains(where: { $0.model != nil }) { rows.append(("SwiftRain ConvLSTM", \.model)) }
        for (name, key) in rows {
            out += "| \(name) | " + cols.map { cell($0[keyPath: key]) }.joined(separator: " | ") + " |\n"
        }
        if let loss {
            out += "\nModel loss (transformed space, latitude-weighted MSE): \(String(format: "%.5f", loss)).\n"
        }
        return out
    }
}

/// `swiftrain eval` and `swiftrain baselines`.
public enum Evaluate {
    /// Scores a run's checkpoint (best.ckpt if present, else last.ckpt) and writes eval/<phase>.json and .md.
    public static func run(runPath: String, phase: Partition.Name, checkpoint: String? = nil, log: (String) -> Void)
        throws -> EvaluationReport
    {
        let run = try RunDirectory(path: runPath)
        let model = try run.trainedModel(checkpoint: checkpoint)
        log(
            """
            evaluating \(model.checkpoint) (epoch \(model.state.epoch), global step \(model.state.globalStep)) on \
            \(phase.rawValue)
            """
        )
        let evaluator = try Evaluator(runner: try model.runner(), config: model.config)
        let report = try evaluator.run(partition: phase, checkpoint: model.checkpoint)
        let dir = run.url.appendingPathComponent("eval")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(report).write(to: dir.appendingPathComponent("\(phase.rawValue).json"), options: .atomic)
        try report.markdown(title: "## \(phase.rawValue.capitalized) scores of \(run.url.lastPathComponent)")
            .write(to: dir.appendingPathComponent("\(phase.rawValue).md"), atomically: true, encoding: .utf8)
        return report
    }

    public static func baselines(config: Config, phase: Partition.Name) throws -> EvaluationReport {
        try Evaluator(runner: try ModelRunner(config: config), config: config).run(
            baselinesOnly: true, partition: phase)
    }
}
