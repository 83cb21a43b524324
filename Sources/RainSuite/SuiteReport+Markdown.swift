import Foundation
import RainEvaluation

extension SuiteReport {
    /// Table 1's layout: methods as rows; per target (ERA5 tp, IMERG) the 1, 3 and 5 day leads as
    /// columns (every lead when those are absent), then the chosen configurations, skill and cells.
    public func markdown() -> String {
        let targets = [false, true].filter { t in
            baselines.contains { $0.imerg == t } || entries.contains { $0.imerg == t }
        }
        func leads(_ imerg: Bool) -> [Int] {
            let all = Set(
                (baselines.first { $0.imerg == imerg }?.leads.map(\.hours) ?? [])
                    + entries.filter { $0.imerg == imerg }.flatMap { $0.rmse.keys.compactMap { Int($0) } }
            ).sorted()
            let paper = all.filter { [24, 72, 120].contains($0) }
            return paper.isEmpty ? all : paper
        }
        func unit(_ imerg: Bool) -> String {
            baselines.first { $0.imerg == imerg }?.unit ?? cells.first { $0.imerg == imerg }?.unit ?? ""
        }
        func lead(_ h: Int) -> String { h % 24 == 0 ? "\(h / 24) day\(h == 24 ? "" : "s")" : "\(h) h" }
        func number(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "–" }
        func stat(_ s: Stat?) -> String {
            guard let s, let m = s.mean else { return "–" }
            return s.std.map { String(format: "%.3f ± %.3f", m, $0) } ?? number(m)
        }
        let columns = targets.flatMap { t in leads(t).map { (t, $0) } }

        var out = "# Suite report: \(suite)\n\n"
        out += """
            Latitude-weighted RMSE on the test partition (RainBench's Table 1 layout). ConvLSTM rows: per input \
            setting and target, the configuration with the lowest validation loss (mean over seeds), its test \
            RMSE as mean ± standard deviation over seeds. Units: 
            """
        out += targets.map { "\(Self.targetName($0)) in \(unit($0))" }.joined(separator: ", ") + ".\n\n"
        out +=
            "| method | " + columns.map { "\(Self.targetName($0.0)) \(lead($0.1))" }.joined(separator: " | ") + " |\n"
        out += "|---|" + columns.map { _ in "---:|" }.joined() + "\n"
        let baselineRows: [(String, KeyPath<LeadScores, Double?>)] = [
            ("persistence", \.persistence), ("climatology (training mean)", \.climatology),
            ("climatology (per pixel, week of year)", \.weeklyClimatology),
        ]
        for (name, key) in baselineRows {
            out += "| \(name) | "
            out +=
                columns.map { t, h in
                    number(baselines.first { $0.imerg == t }?.leads.first { $0.hours == h }?[keyPath: key])
                }.joined(separator: " | ") + " |\n"
        }
        let settings = Array(Set(entries.map(\.sources))).sorted()
        for s in settings {
            out += "| ConvLSTM, \(s) | "
            out +=
                columns.map { t, h in stat(entries.first { $0.sources == s && $0.imerg == t }?.rmse["\(h)"]) }
                .joined(separator: " | ") + " |\n"
        }

        out += "\n## Chosen configurations (by validation loss, never by test scores)\n\n"
        out += "| input | target | chosen | validation loss | seeds | other configurations (validation loss) |\n"
        out += "|---|---|---|---:|---:|---|\n"
        for e in entries.sorted(by: { ($0.imerg ? 1 : 0, $0.sources) < ($1.imerg ? 1 : 0, $1.sources) }) {
            let others = e.alternatives.sorted { $0.value < $1.value }
                .map { "\($0.key.isEmpty ? "base" : $0.key): \(String(format: "%.5f", $0.value))" }
            let chosen = e.chosen.isEmpty ? "base" : e.chosen.joined(separator: " ")
            let rest = others.isEmpty ? "–" : others.joined(separator: ", ")
            out += "| \(e.sources) | \(Self.targetName(e.imerg)) | \(chosen) | "
            out += "\(String(format: "%.5f", e.validLoss)) | \(e.cells.count) | \(rest) |\n"
        }

        if entries.contains(where: { !$0.skill.isEmpty }) {
            out += "\n## Skill of the chosen configurations\n\n"
            out += "ETS at the FSS threshold, FSS at the largest neighbourhood up to 5 × 5, ACC; mean over seeds.\n\n"
            out += "| input | target | lead | ETS | FSS | ACC |\n|---|---|---|---:|---:|---:|\n"
            for e in entries {
                for h in leads(e.imerg) {
                    guard let s = e.skill["\(h)"] else { continue }
                    out += "| \(e.sources) | \(Self.targetName(e.imerg)) | \(lead(h)) | "
                    out += "\(stat(s["ets"])) | \(stat(s["fss"])) | \(stat(s["acc"])) |\n"
                }
            }
        }

        out += "\n## Cells\n\n| cell | status | best validation loss | test RMSE per lead | curves |\n"
        out += "|---|---|---:|---|---|\n"
        for c in cells {
            let rmse = c.testRMSE.keys.sorted { Int($0)! < Int($1)! }.map {
                "\(lead(Int($0)!)) \(number(c.testRMSE[$0] ?? nil))"
            }
            out += "| \(c.name) | \(c.status) | \(c.bestValLoss.map { String(format: "%.5f", $0) } ?? "–") | "
            out += "\(rmse.isEmpty ? "–" : rmse.joined(separator: ", ")) | "
            out += (c.bestValLoss == nil ? "–" : "[png](figures/\(c.name)-curves.png)") + " |\n"
        }
        return out
    }
}
