import Foundation
import RainConfig
import RainData
import RainEvaluation
import RainPlot
import RainSupport
import RainTraining

/// `swiftrain suite --report DIR`: RainBench's Table 1 from a suite's cells. Per input setting and
/// target, the configuration with the lowest validation loss (mean over its seeds; never the test
/// scores) is chosen and its test RMSE given as mean ± std over seeds; the baselines are computed once
/// per target. Finished cells not yet evaluated are evaluated first.
public struct SuiteReport: Codable {
    /// Mean and sample standard deviation over seeds (std nil for one seed).
    public struct Stat: Codable, Equatable {
        public var mean: Double?, std: Double?, n: Int

        init(_ values: [Double?]) {
            let v = values.compactMap { $0 }
            n = v.count
            mean = v.isEmpty ? nil : v.reduce(0, +) / Double(v.count)
            std =
                v.count > 1
                ? (v.map { ($0 - mean!) * ($0 - mean!) }.reduce(0, +) / Double(v.count - 1)).squareRoot() : nil
        }
    }

    public struct CellResult: Codable {
        public var name: String
        public var setting: [String]
        public var seed: Int?
        public var sources: String
        public var imerg: Bool
        /// finished, interrupted, not started, failed.
        public var status: String
        public var bestValLoss: Double?
        /// Test RMSE of the model per lead ("24": …), from the cell's eval/test.json.
        public var testRMSE: [String: Double?]
        public var unit: String?

        public init(
            name: String, setting: [String], seed: Int?, sources: String, imerg: Bool, status: String,
            bestValLoss: Double?, testRMSE: [String: Double?], unit: String?
        ) {
            self.name = name
            self.setting = setting
            self.seed = seed
            self.sources = sources
            self.imerg = imerg
            self.status = status
            self.bestValLoss = bestValLoss
            self.testRMSE = testRMSE
            self.unit = unit
        }
    }

    /// One ConvLSTM row entry: the chosen configuration of an input setting for a target.
    public struct Entry: Codable {
        public var sources: String
        public var imerg: Bool
        /// The chosen settings apart from sources, target and seed (empty: the base configuration).
        public var chosen: [String]
        public var validLoss: Double
        public var cells: [String]
        public var rmse: [String: Stat]
        /// Per lead: ETS at the FSS threshold, FSS at the largest scale ≤ 5, ACC (the model's).
        public var skill: [String: [String: Stat]]
        /// The other configurations tried for this setting, with their mean validation loss.
        public var alternatives: [String: Double]
    }

    public struct Baseline: Codable {
        public var imerg: Bool
        public var unit: String
        public var samples: Int
        public var leads: [LeadScores]
    }

    public var suite: String
    public var entries: [Entry]
    public var baselines: [Baseline]
    public var cells: [CellResult]

    /// Targets' names as the paper's columns.
    static func targetName(_ imerg: Bool) -> String { imerg ? "IMERG" : "ERA5 tp" }
}

extension SuiteReport {
    public static func assemble(out: URL, executable: String, log: (String) -> Void) throws -> SuiteReport {
        let spec = try SuiteSpec.load(out)
        let runner = SuiteRunner(spec: spec, out: out, executable: executable, log: { _ in })
        let figures = out.appendingPathComponent("figures")
        try FileManager.default.createDirectory(at: figures, withIntermediateDirectories: true)
        var results: [CellResult] = []
        var reports: [String: EvaluationReport] = [:]
        var configs: [String: Config] = [:]
        for cell in spec.cells() {
            let config = try Config.load(path: runner.configPath(cell))
            configs[cell.name] = config
            let run = runner.runDirectory(cell)
            var status = "not started"
            if runner.isFinished(cell) {
                if !runner.isEvaluated(cell) {
                    log("evaluating \(cell.name) on the test partition")
                    _ = try Evaluate.run(runPath: run.path, phase: .test, log: { _ in })
                }
                let data = try Data(contentsOf: run.appendingPathComponent("eval/test.json"))
                reports[cell.name] = try JSONDecoder().decode(EvaluationReport.self, from: data)
                status = "finished"
            } else if FileManager.default.fileExists(atPath: run.appendingPathComponent("checkpoints/last.ckpt").path) {
                status = "interrupted"
            } else if FileManager.default.fileExists(atPath: run.path) {
                status = "failed"
            }
            let metrics = run.appendingPathComponent("metrics.jsonl").path
            if FileManager.default.fileExists(atPath: metrics) {
                try Figures.curves(metricsPath: metrics, title: cell.name)
                    .writePNG(path: figures.appendingPathComponent("\(cell.name)-curves.png").path)
            }
            let r = reports[cell.name]
            results.append(
                CellResult(
                    name: cell.name, setting: cell.setting, seed: cell.seed, sources: config.sources.rawValue,
                    imerg: config.imerg, status: status, bestValLoss: bestValidLoss(metrics),
                    testRMSE: Dictionary(uniqueKeysWithValues: (r?.leads ?? []).map { ("\($0.hours)", $0.model) }),
                    unit: r?.unit))
        }

        // Baselines once per target, on the configuration of its first finished cell.
        var baselines: [Baseline] = []
        for imerg in [false, true] {
            guard let first = results.first(where: { $0.imerg == imerg && $0.status == "finished" }) else { continue }
            log("baselines for \(targetName(imerg)) (configuration of \(first.name))")
            let b = try Evaluate.baselines(config: configs[first.name]!, phase: .test)
            baselines.append(Baseline(imerg: imerg, unit: b.unit, samples: b.samples, leads: b.leads))
        }

        return SuiteReport(
            suite: out.path, entries: entries(results, reports: reports), baselines: baselines, cells: results)
    }

    /// Per (input setting, target): the configuration with the lowest mean validation loss over its
    /// finished seeds, and its test scores over those seeds. Test scores play no part in the choice.
    public static func entries(_ results: [CellResult], reports: [String: EvaluationReport]) -> [Entry] {
        var entries: [Entry] = []
        let done = results.filter { $0.status == "finished" && $0.bestValLoss != nil }
        let groups = Dictionary(grouping: done) { "\($0.sources)|\($0.imerg)" }
        for key in groups.keys.sorted() {
            let group = groups[key]!
            func sweepKey(_ c: CellResult) -> [String] {
                c.setting.filter { !$0.hasPrefix("sources=") && !$0.hasPrefix("imerg=") }
            }
            let byConfig = Dictionary(grouping: group) { sweepKey($0).joined(separator: " ") }
            let losses = byConfig.mapValues { cs in cs.map { $0.bestValLoss! }.reduce(0, +) / Double(cs.count) }
            let best = losses.min { ($0.value, $0.key) < ($1.value, $1.key) }!
            let cells = byConfig[best.key]!
            let leads = Set(cells.flatMap { $0.testRMSE.keys }).sorted { Int($0)! < Int($1)! }
            var rmse: [String: Stat] = [:], skill: [String: [String: Stat]] = [:]
            for lead in leads {
                rmse[lead] = Stat(cells.map { $0.testRMSE[lead] ?? nil })
                var scores: [String: [Double?]] = [:]
                for c in cells {
                    guard let l = reports[c.name]?.leads.first(where: { "\($0.hours)" == lead }),
                        let s = l.skill?["model"], let settings = reports[c.name]?.skillSettings
                    else { continue }
                    let ets = s.categorical.first { $0.threshold == settings.fssThreshold }?.ets
                    let fss = s.fss.filter { $0.scale <= 5 }.max { $0.scale < $1.scale }?.fss
                    scores["ets", default: []].append(ets)
                    scores["fss", default: []].append(fss)
                    scores["acc", default: []].append(s.acc)
                }
                skill[lead] = scores.mapValues { Stat($0) }
            }
            entries.append(
                Entry(
                    sources: group[0].sources, imerg: group[0].imerg, chosen: sweepKey(cells[0]), validLoss: best.value,
                    cells: cells.map(\.name), rmse: rmse, skill: skill,
                    alternatives: losses.filter { $0.key != best.key }))
        }
        return entries
    }

    /// The lowest val_loss in a run's metrics.jsonl.
    static func bestValidLoss(_ path: String) -> Double? {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line -> Double? in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                o["kind"] as? String == "valid"
            else { return nil }
            return o["val_loss"] as? Double
        }.min()
    }

    /// Writes report.json and report.md into the suite directory.
    public func write(to out: URL) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(self).write(to: out.appendingPathComponent("report.json"), options: .atomic)
        try markdown().write(to: out.appendingPathComponent("report.md"), atomically: true, encoding: .utf8)
    }
}
