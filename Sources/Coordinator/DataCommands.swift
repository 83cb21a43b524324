import ArgumentParser
import Foundation
import RainConfig
import RainData
import RainSupport

struct Synth: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a synthetic RainBench dataset (era, imerg, simsat) in PyRain's on-disk format.",
        discussion: """
            Without --from/--to every dataset spans its real range. ERA5's temporal file then spans 1979–2019 \
            but only SimSat's period (2016-04-01 … 2019-12-31) is written; the rest stays a hole of a sparse \
            file and is marked unavailable. --era-fill all writes all 49 GiB (at 5.625°).
            """)
    @Option(help: "Output directory (datasets go to OUT/era5625, OUT/imerg5625, OUT/simsat5625).") var out: String
    @Option(help: "First time to write (UTC, YYYY-MM-DD[ HH:MM]).") var from: String?
    @Option(help: "Last time to write (UTC; a bare date means its 23:00).") var to: String?
    @Option(help: "Grid spacing in degrees: 5.625 or 1.40625.") var grid: Double = 5.625
    @Option(help: "Seed; the same seed gives the same data for any range.") var seed: UInt64 = 2020
    @Option(help: "Datasets to write, comma-separated.") var datasets: String = "era,imerg,simsat"
    @Option(
        name: .customLong("era-fill"),
        help: "ERA5 rows to write: FROM,TO | all | none (default: --from…--to, else SimSat's period).")
    var eraFill: String?

    func run() throws {
        try SwiftRain.run {
            var o = SyntheticDataset.Options(out: out)
            func time(_ s: String?, _ flag: String, end: Bool = false) throws -> EpochSeconds? {
                guard let s else { return nil }
                guard let t = UTCTime.parse(s, endOfDay: end) else {
                    throw SwiftRainError(
                        flag, "not a date", expected: "YYYY-MM-DD[ HH:MM] (UTC)", found: s,
                        hint: "e.g. \(flag) 2016-04-01")
                }
                return t
            }
            o.from = try time(from, "--from")
            o.to = try time(to, "--to", end: true)
            o.grid = grid
            o.seed = seed
            o.datasets = Set(datasets.split(separator: ",").map { String($0) })
            if let f = eraFill {
                switch f {
                case "all": o.eraFill = SyntheticDataset.eraRange
                case "none": o.eraFill = TimeSpan(first: 1, last: 0)
                default:
                    let p = f.split(separator: ",").map(String.init)
                    guard p.count == 2, let a = try time(p[0], "--era-fill"),
                        let b = try time(p[1], "--era-fill", end: true)
                    else {
                        throw SwiftRainError(
                            "--era-fill", "expected FROM,TO, all or none", found: f,
                            hint: "e.g. --era-fill 2016-04-01,2017-12-31")
                    }
                    o.eraFill = TimeSpan(first: a, last: b)
                }
            }
            let dirs = try SyntheticDataset.write(o, progress: { stderr($0) })
            print("wrote " + dirs.joined(separator: ", "))
        }
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            """
            Datasets, variables, date ranges and sizes; per partition and lead time the samples kept and dropped, \
            and why.
            """
    )
    @Argument(help: "Dataset directories (default: `data` of the configuration).") var paths: [String] = []
    @OptionGroup var options: ConfigOptions
    @Flag(help: "Print JSON instead of text.") var json = false

    func run() throws {
        try SwiftRain.run {
            var c = try options.resolve()
            if !paths.isEmpty { c.data = paths }
            let (report, indexError) = try DataCommands.inspect(config: c, inferred: !options.saysWhatToPredict)
            print(json ? report.json() : report.text())
            if let indexError {
                stderr("error: cannot build the sample index:\n\(indexError)")
                throw ExitCode(1)
            }
        }
    }
}

struct Normalize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stream over the train partition and write mean/std per variable in PyRain's normalisation JSON.")
    @OptionGroup var options: ConfigOptions
    @Option(help: "Output file (default: `normalisation` of the configuration).") var out: String?

    func run() throws {
        try SwiftRain.run {
            let c = try options.resolve()
            let path = out ?? c.normalisation
            let n = try DataCommands.normalize(config: c, out: path, progress: { stderr($0) })
            print("wrote \(n.stats.count) entries to \(path)")
        }
    }
}

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Write one assembled sample (input, target, manifest) for other tools to check.")
    @OptionGroup var options: ConfigOptions
    @Option(help: "train | valid | test") var partition: String = "train"
    @Option(help: "Lead time in hours.") var lead: Int
    @Option(help: "Sample time t0 (UTC, ISO 8601).") var time: String
    @Option(help: "Output directory.") var out: String

    func run() throws {
        try SwiftRain.run {
            guard let p = Partition.Name(rawValue: partition) else {
                throw SwiftRainError(
                    "--partition", "unknown partition", expected: "train, valid or test", found: partition,
                    hint: "choose one")
            }
            guard let t = UTCTime.parse(time) else {
                throw SwiftRainError(
                    "--time", "not a date", expected: "ISO 8601 UTC, e.g. 2016-06-01T12:00:00Z", found: time,
                    hint: "fix the time")
            }
            print(
                "wrote "
                    + (try DataCommands.writeSample(
                        config: try options.resolve(), partition: p, leadHours: lead, time: t, dir: out)))
        }
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks: measured medians and ratios.",
        subcommands: [
            BenchDataCommand.self, BenchStepCommand.self, BenchAllreduceCommand.self, BenchScalingCommand.self,
            BenchKernelCommand.self,
        ])
}

struct BenchDataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Sample assembly throughput from mapped files, one core.")
    @OptionGroup var options: ConfigOptions
    @Option(name: .customLong("bench-sources"), help: "Sources to measure, comma-separated.") var benchSources =
        "simsat,simsat_era"
    @Option(help: "Samples per run.") var samples = 2000
    @Flag(help: "Print JSON too.") var json = false

    func run() throws {
        try SwiftRain.run {
            let c = try options.resolve()
            let list = try benchSources.split(separator: ",").map { s -> Sources in
                guard let v = Sources(rawValue: String(s)) else {
                    throw SwiftRainError(
                        "--bench-sources", "unknown source", found: String(s),
                        hint: "simsat, era, simsat_era or era16_3")
                }
                return v
            }
            let rows = try BenchData.run(config: c, sources: list, samples: samples, note: { stderr($0) })
            try printTable(BenchData.table(rows), rows, json: json)
        }
    }
}
