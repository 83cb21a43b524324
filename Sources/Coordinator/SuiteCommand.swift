import ArgumentParser
import Foundation
import RainSuite
import RainSupport

/// `swiftrain suite`: a grid of runs (locally one after another, or as a SLURM job array) and the
/// paper's Table 1 from them.
struct SuiteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "suite",
        abstract: "Train a grid of configurations (one run per cell) and report RainBench's Table 1 from them.",
        discussion: """
            swiftrain suite --config BASE.yaml --grid sources=simsat,era16_3,simsat_era,era \\
              --grid imerg=true,false [--grid lr=1e-4,5e-5] [--seeds 3] --out DIR [--workers N | --slurm]
            swiftrain suite --report DIR

            Every cell is a normal run directory DIR/<key-value_…> (config.yaml, metrics, checkpoints, eval). \
            Re-running the same command skips finished cells and resumes an interrupted one; a failed cell is \
            reported and the others go on. --report evaluates finished cells not yet evaluated, computes the \
            baselines once per target, chooses per input setting the configuration with the lowest \
            validation loss and writes DIR/report.md, DIR/report.json and DIR/figures/<cell>-curves.png.
            """)

    @Option(help: "Base YAML configuration every cell starts from.") var config: String?
    @Option(help: ArgumentHelp("A grid axis: a configuration key and its values (repeatable).", valueName: "key=v1,v2"))
    var grid: [String] = []
    @Option(help: "Repeats of every setting with seeds seed, seed+1, …") var seeds = 1
    @Option(help: "The suite directory.") var out: String?
    @Option(help: "Worker processes per cell (SLURM: worker tasks per array task).") var workers = 1
    @Option(
        name: .customLong("train-arg"), parsing: .unconditionalSingleValue,
        help: "An extra `swiftrain train` flag for every cell (repeatable, e.g. --train-arg=--blas-threads=1).")
    var trainArguments: [String] = []
    @Flag(help: "Submit the grid as a SLURM job array (one task per cell, through cluster/train.sbatch).")
    var slurm = false
    @Option(help: "SLURM: at most this many cells at once (the array's %).") var maxParallel: Int?
    @Option(help: "SLURM: cluster/train.sbatch to submit (default: next to the binaries' package).") var sbatch: String?
    @Option(
        parsing: .unconditional, help: "SLURM: extra sbatch flags, e.g. \"--partition=cpu --time=04:00:00\".")
    var sbatchArgs = ""
    @Option(help: "Write the report of this suite directory (and evaluate finished cells) instead of running.")
    var report: String?

    func run() throws {
        try SwiftRain.run {
            if let report {
                let dir = URL(fileURLWithPath: report)
                let r = try SuiteReport.assemble(out: dir, executable: ThisProcess.executable, log: { stderr($0) })
                try r.write(to: dir)
                print(r.markdown())
                stderr("written: \(dir.appendingPathComponent("report.md").path), report.json, figures/")
                return
            }
            guard let config, let out else {
                throw SwiftRainError(
                    "swiftrain suite", "nothing to run",
                    expected: "--config BASE.yaml --grid … --out DIR, or --report DIR",
                    hint: "see swiftrain suite --help")
            }
            let spec = try SuiteSpec(
                base: config, grid: grid, seeds: seeds, workers: workers, trainArguments: trainArguments)
            let dir = URL(fileURLWithPath: out)
            try spec.save(in: dir)
            let cells = spec.cells()
            if slurm {
                let job = try SuiteSLURM(spec: spec, out: dir, executable: ThisProcess.executable)
                    .submit(maxParallel: maxParallel, sbatch: sbatch, extra: sbatchArgs, log: { stderr($0) })
                print(job)
                return
            }
            stderr("suite: \(cells.count) cell(s) in \(dir.path), \(workers) worker(s) each")
            let stop = StopSignal()
            stop.install(
                signals: [SIGINT, SIGTERM], log: { _ in stderr("suite: stopping after checkpointing the current cell") }
            )
            let o = try SuiteRunner(spec: spec, out: dir, executable: ThisProcess.executable, log: { stderr($0) })
                .run(stop: stop)
            stderr(
                "suite: \(o.finished.count) finished now, \(o.skipped.count) finished earlier, \(o.failed.count) failed"
                    + (o.failed.isEmpty ? "" : " (\(o.failed.joined(separator: ", ")))"))
            if let cell = o.interruptedIn {
                stderr("suite: interrupted in \(cell); re-run the same command to resume")
                throw ExitCode(3)
            }
            if !o.failed.isEmpty { throw ExitCode(1) }
            stderr("next: swiftrain suite --report \(dir.path)")
        }
    }
}
