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
    /// Categorical, neighbourhood and anomaly scores per method (`Evaluator.methods`' names).
    public var skill: [String: SkillScores]?
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
    /// The thresholds and neighbourhoods of the skill scores.
    public var skillSettings: SkillSettings?
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

    /// The methods scored, in table order: the model and the three baselines (JSON keys of `skill`).
    public static let methods = ["model", "persistence", "climatology", "weekly_climatology"]

    /// Scores the runner's model (unless `baselinesOnly`) and the baselines on `partition`; `progress`
    /// gets (done, total).
    public func run(
        baselinesOnly: Bool = false, partition: Partition.Name, checkpoint: String? = nil,
        skill settings: SkillSettings = SkillSettings(), progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> EvaluationReport {
        let part = compute.index.samples(partition)
        let spec = compute.index.spec, shape = compute.shape, plane = shape.plane, w = shape.width
        try settings.check(width: w)
        let lat = ConvLSTMForecaster.latitudeWeights(shape.height)
        let methods = baselinesOnly ? Array(Self.methods.dropFirst()) : Self.methods
        var rmse = [[PooledRMSE]](
            repeating: [PooledRMSE](repeating: .init(), count: methods.count), count: spec.leads.count)
        var skill = [[SkillAccumulator]](
            repeating: methods.map { _ in SkillAccumulator(settings: settings, latWeights: lat, width: w) },
            count: spec.leads.count)
        // Persistence needs the target at t0: samples where it is missing are left out of every row.
        let kept = try (0..<part.count).filter { try target.plane(at: part.sample($0).t0) != nil }
        var loss = 0.0
        let batch = 16
        for start in stride(from: 0, to: kept.count, by: batch) {
            let chunk = Array(kept[start..<min(kept.count, start + batch)])
            let outputs = baselinesOnly ? nil : try compute.forecast(samples: chunk, partition: partition)
            for (j, i) in chunk.enumerated() {
                let s = part.sample(i)
                let l = spec.leadIndex(s.lead)!
                let y = try target.plane(at: s.t0 + s.lead)!, y0 = try target.plane(at: s.t0)!
                let truth = (0..<plane).map { y[$0] * scale }
                let weekly = weekly.forecast(at: s.t0 + s.lead).map { $0 * scale }
                // Every method's forecast in physical units, in `methods` order.
                var forecasts = [
                    (0..<plane).map { y0[$0] * scale }, [Float](repeating: climatologyMean * scale, count: plane),
                    weekly,
                ]
                if let outputs { forecasts.insert((0..<plane).map { outputs.forecast[j * plane + $0] * scale }, at: 0) }
                truth.withUnsafeBufferPointer { t in
                    for (k, f) in forecasts.enumerated() {
                        rmse[l][k].add(forecast: { f[$0] }, truth: t.baseAddress!, latWeights: lat, width: w)
                        skill[l][k].add(forecast: f, truth: truth, climatology: weekly)
                    }
                }
            }
            if let outputs { loss += outputs.lossSum }
            progress(min(kept.count, start + batch), kept.count)
        }
        let leads = spec.leads.enumerated().map { l, lead in
            let value = { (name: String) in methods.firstIndex(of: name).flatMap { rmse[l][$0].value } }
            return LeadScores(
                hours: Int(lead / 3600), samples: rmse[l].last!.samples, model: value("model"),
                persistence: value("persistence"), climatology: value("climatology"),
                weeklyClimatology: value("weekly_climatology"),
                skill: Dictionary(uniqueKeysWithValues: zip(methods, skill[l].map(\.scores))))
        }
        return EvaluationReport(
            phase: partition.rawValue, target: spec.target, unit: unit, checkpoint: checkpoint,
            loss: baselinesOnly || kept.isEmpty ? nil : loss / Double(kept.count), samples: kept.count,
            skipped: part.count - kept.count, skillSettings: settings, leads: leads)
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
        out += skillMarkdown(leads: cols)
        if let loss {
            out += "\nModel loss (transformed space, latitude-weighted MSE): \(String(format: "%.5f", loss)).\n"
        }
        return out
    }
}

extension EvaluationReport {
    static let methodTitles = [
        "model": "SwiftRain ConvLSTM", "persistence": "persistence", "climatology": "climatology (training mean)",
        "weekly_climatology": "climatology (per pixel, week of year)",
    ]

    /// One table per lead time shown: per method the mean bias, the ACC, CSI / ETS per threshold and the FSS
    /// per neighbourhood (every score, POD, FAR and the frequency bias included, is in the JSON).
    func skillMarkdown(leads cols: [LeadScores]) -> String {
        guard let settings = skillSettings else { return "" }
        func cell(_ v: Double?) -> String { v.map { String(format: "%.2f", abs($0) < 0.005 ? 0 : $0) } ?? "–" }
        func number(_ t: Double) -> String { String(format: "%g", t) }
        var out = "\n### Skill\n\n"
        out += """
            Area-weighted over the grid. CSI / ETS: event = at least the threshold (\(unit)); FSS: fraction of \
            cells ≥ \(number(settings.fssThreshold)) \(unit) in n × n windows; ACC: anomaly correlation against \
            the per-pixel week-of-year training climatology; – where undefined (no events, or no anomaly).\n
            """
        for lead in cols {
            guard let skill = lead.skill else { continue }
            let days = lead.hours % 24 == 0 ? "\(lead.hours / 24) day\(lead.hours == 24 ? "" : "s")" : "\(lead.hours) h"
            out += "\n#### \(days)\n\n| method | mean bias | ACC | "
            out += settings.thresholds.map { "CSI / ETS ≥ \(number($0))" }.joined(separator: " | ")
            out += " | " + settings.fssScales.map { "FSS \($0)×\($0)" }.joined(separator: " | ") + " |\n"
            out +=
                "|---|---:|---:|"
                + (settings.thresholds + settings.fssScales.map(Double.init)).map { _ in "---:|" }
                .joined() + "\n"
            for name in ["persistence", "climatology", "weekly_climatology", "model"] {
                guard let s = skill[name] else { continue }
                let categorical = s.categorical.map { "\(cell($0.csi)) / \(cell($0.ets))" }
                out += "| \(Self.methodTitles[name]!) | \(cell(s.meanBias)) | \(cell(s.acc)) | "
                out += (categorical + s.fss.map { cell($0.fss) }).joined(separator: " | ") + " |\n"
            }
        }
        return out
    }
}

/// `swiftrain eval` and `swiftrain baselines`.
public enum Evaluate {
    /// Scores a run's checkpoint (best.ckpt if present, else last.ckpt) and writes eval/<phase>.json and .md.
    public static func run(
        runPath: String, phase: Partition.Name, checkpoint: String? = nil, skill: SkillSettings = SkillSettings(),
        precision: Precision? = nil, log: (String) -> Void
    ) throws -> EvaluationReport {
        let run = try RunDirectory(path: runPath)
        let model = try run.trainedModel(checkpoint: checkpoint)
        log(
            """
            evaluating \(model.checkpoint) (epoch \(model.state.epoch), global step \(model.state.globalStep)) on \
            \(phase.rawValue)
            """
        )
        let evaluator = try Evaluator(runner: try model.runner(precision: precision), config: model.config)
        let report = try evaluator.run(partition: phase, checkpoint: model.checkpoint, skill: skill)
        let dir = run.url.appendingPathComponent("eval")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(report).write(to: dir.appendingPathComponent("\(phase.rawValue).json"), options: .atomic)
        try report.markdown(title: "## \(phase.rawValue.capitalized) scores of \(run.url.lastPathComponent)")
            .write(to: dir.appendingPathComponent("\(phase.rawValue).md"), atomically: true, encoding: .utf8)
        // Beside the training's scalars, at the checkpoint's step; TensorBoard is a view, not the record.
        do { try report.writeTensorBoard(runDirectory: run.url, step: model.state.globalStep) } catch {
            log("warning: the scores were not written for TensorBoard: \(error)")
        }
        return report
    }

    public static func baselines(config: Config, phase: Partition.Name, skill: SkillSettings = SkillSettings())
        throws -> EvaluationReport
    {
        try Evaluator(runner: try ModelRunner(config: config), config: config).run(
            baselinesOnly: true, partition: phase, skill: skill)
    }
}
