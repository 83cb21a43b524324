import ArgumentParser
import Foundation
import RainConfig
import RainData
import RainEvaluation
import RainPlot
import RainSupport

private func parsePhase(_ text: String) throws -> Partition.Name {
    guard let p = Partition.Name(rawValue: text) else {
        throw SwiftRainError(
            "--phase", "unknown partition", expected: "test, valid or train", found: text, hint: "e.g. --phase test")
    }
    return p
}

/// The thresholds and neighbourhoods of the skill scores (`eval`, `baselines`).
struct SkillOptions: ParsableArguments {
    @Option(help: "Event thresholds of CSI, ETS, POD, FAR and frequency bias, in the target's units.")
    var thresholds = "0.1,1,2,5,10"
    @Option(name: .customLong("fss-scales"), help: "Neighbourhood sizes of the Fractions Skill Score (odd, cells).")
    var fssScales = "1,3,5,9"
    @Option(name: .customLong("fss-threshold"), help: "Event threshold of the Fractions Skill Score.")
    var fssThreshold = 1.0

    func resolve() throws -> SkillSettings {
        func list<T>(_ text: String, _ flag: String, _ parse: (String) -> T?) throws -> [T] {
            try text.split(separator: ",").map { part in
                guard let v = parse(part.trimmingCharacters(in: .whitespaces)) else {
                    throw SwiftRainError(
                        flag, "not a number", expected: "a comma-separated list", found: String(part),
                        hint: "e.g. \(flag) \(flag == "--thresholds" ? "0.1,1,5" : "1,3,9")")
                }
                return v
            }
        }
        return SkillSettings(
            thresholds: try list(thresholds, "--thresholds") { Double($0) },
            fssScales: try list(fssScales, "--fss-scales") { Int($0) }, fssThreshold: fssThreshold)
    }
}

/// `swiftrain eval --run DIR --phase test`: the model against the baselines, per lead time.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract:
            "Score a trained run per lead time against persistence and climatology; writes eval/<phase>.json and .md.")
    @Option(name: .customLong("run"), help: "The run directory.") var runPath: String
    @Option(help: "Partition: test or valid.") var phase = "test"
    @Option(help: "A checkpoint file (default: the run's best.ckpt, else last.ckpt).") var checkpoint: String?
    @OptionGroup var skill: SkillOptions
    @Option(help: "32 or bf16-mixed (default: the run's own).") var precision: Precision?
    @Flag(help: "Print JSON instead of the table.") var json = false

    func run() throws {
        try SwiftRain.run {
            let report = try Evaluate.run(
                runPath: runPath, phase: try parsePhase(phase), checkpoint: checkpoint, skill: try skill.resolve(),
                precision: precision, log: { stderr($0) })
            if json {
                try printJSON(report)
            } else {
                print(report.markdown(title: "## \(report.phase.capitalized) scores"))
            }
        }
    }
}

/// `swiftrain baselines --config C`: persistence and the two climatologies on a partition.
struct BaselinesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baselines",
        abstract: "Persistence, the training-mean climatology and a per-pixel week-of-year climatology, per lead time.")
    @OptionGroup var options: ConfigOptions
    @Option(help: "Partition: test or valid.") var phase = "test"
    @OptionGroup var skill: SkillOptions
    @Flag(help: "Print JSON instead of the table.") var json = false

    func run() throws {
        try SwiftRain.run {
            let report = try Evaluate.baselines(
                config: try options.resolve(), phase: try parsePhase(phase), skill: try skill.resolve())
            if json { try printJSON(report) } else { print(report.markdown(title: "## Baselines")) }
        }
    }
}

/// `swiftrain predict --run DIR (--time T | --from D --to D)`: forecasts as NetCDF.
struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract:
            """
            Forecasts for every lead time from a run's checkpoint, as CF NetCDF-4 [init_time, lead_time, lat, lon].
            """
    )
    @Option(name: .customLong("run"), help: "The run directory.") var runPath: String
    @Option(help: "One init time (the last input frame), ISO 8601 UTC.") var time: String?
    @Option(help: "First init time of a range, ISO 8601 UTC.") var from: String?
    @Option(help: "Last init time of a range (inclusive).") var to: String?
    @Option(help: "Hours between the init times of a range.") var every = 24
    @Option(help: "Output file (default: RUN/predict/<from>_<to>.nc, or .zarr).") var out: String?
    @Option(help: "netcdf (CF NetCDF-4), or zarr (WeatherBench 2's forecast layout, for xarray.open_zarr).")
    var format: Predict.Format = .netcdf
    @Option(help: "A checkpoint file (default: the run's best.ckpt, else last.ckpt).") var checkpoint: String?
    @Flag(help: "Add the observed field (`truth`) on the same grid, NaN where it is missing.") var truth = false
    @Option(help: "32 or bf16-mixed (default: the run's own).") var precision: Precision?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        try SwiftRain.run {
            func parse(_ text: String, _ flag: String) throws -> EpochSeconds {
                guard let t = UTCTime.parse(text) else {
                    throw SwiftRainError(
                        flag, "not a date", expected: "ISO 8601 UTC, e.g. 2018-01-06T12:00", found: text,
                        hint: "write the init time in UTC")
                }
                return t
            }
            let times: [EpochSeconds]
            switch (time, from, to) {
            case (let t?, nil, nil): times = [try parse(t, "--time")]
            case (nil, let f?, let t?):
                times = try Predict.initTimes(
                    from: try parse(f, "--from"), to: try parse(t, "--to"), every: EpochSeconds(every) * 3600)
            default:
                throw SwiftRainError(
                    "predict", "which init times?", expected: "--time T, or --from D and --to D",
                    hint: "e.g. --time 2018-01-06T12:00, or --from 2018-01-01 --to 2018-01-31")
            }
            let result = try Predict.run(
                runPath: runPath, times: times, out: out, truth: truth, checkpoint: checkpoint, precision: precision,
                format: format, log: { stderr($0) })
            if json { try printJSON(result) } else { print(result.path) }
        }
    }
}

/// `swiftrain plot --run DIR`: training curves and truth vs forecast maps (PNG).
struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot", abstract: "Write figures/curves.png and figures/maps-<date>.png for a run.")
    @Option(name: .customLong("run"), help: "The run directory.") var runPath: String
    @Option(help: "Sample time t0 of the maps, ISO 8601 (default: the middle of the partition).") var date: String?
    @Option(help: "Partition of the maps: test or valid.") var phase = "test"
    /// The coordinator's child: the maps of a fixed validation sample for this checkpoint (TensorBoard).
    @Option(help: .hidden) var epochMaps: String?

    func run() throws {
        try SwiftRain.run {
            if let epochMaps { return print(try EpochMaps.render(runPath: runPath, checkpoint: epochMaps)) }
            let t = try date.map { d -> EpochSeconds in
                guard let t = UTCTime.parse(d) else {
                    throw SwiftRainError(
                        "--date", "not a date", expected: "e.g. 2018-01-06T12:00", found: d, hint: "use ISO 8601, UTC")
                }
                return t
            }
            for p in try Plot.run(runPath: runPath, date: t, phase: try parsePhase(phase), log: { stderr($0) }) {
                print(p)
            }
        }
    }
}

/// `swiftrain export --run DIR --format pytorch`.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract:
            """
            Export a run's parameters under PyRain's state_dict names (safetensors) with a sample to check them \
            in PyTorch.
            """
    )
    @Option(name: .customLong("run"), help: "The run directory.") var runPath: String
    @Option(help: "Format: pytorch (safetensors).") var format = "pytorch"
    @Option(help: "Output directory (default: RUN/export).") var out: String?
    @Flag(help: "Prefix every name with `net.`, as in a PyRain Lightning checkpoint's state_dict.") var lightning =
        false

    func run() throws {
        try SwiftRain.run {
            guard format == "pytorch" else {
                throw SwiftRainError(
                    "--format", "unknown format", expected: "pytorch", found: format, hint: "use --format pytorch")
            }
            print(try Export.run(runPath: runPath, out: out, lightning: lightning, log: { stderr($0) }))
        }
    }
}

/// `swiftrain import --safetensors FILE --config C --run DIR`: PyRain's weights as a SwiftRain run.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract:
            """
            Turn PyRain-named ConvLSTMForecaster weights (safetensors, plain or net.-prefixed) into a run that \
            eval, predict, plot and train --resume accept.
            """
    )
    @Option(help: "The weights: a safetensors file of PyRain's state_dict names.") var safetensors: String
    @OptionGroup var options: ConfigOptions
    @Option(name: .customLong("run"), help: "The new run directory.") var runPath: String

    func run() throws {
        try SwiftRain.run {
            print(
                try Import.run(safetensors: safetensors, config: try options.resolve(), runPath: runPath) { stderr($0) }
            )
        }
    }
}
extension Predict.Format: ExpressibleByArgument {}
