import ArgumentParser
import Foundation
import RainConfig
import RainData
import RainLaunch
import RainPlot
import RainSupport
import RainTraining

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract:
            "Train: a coordinator and N local worker processes, or a coordinator waiting for remote workers (--listen)."
    )
    @OptionGroup var options: ConfigOptions
    @OptionGroup var training: TrainingOptions
    @Option(name: .customLong("run"), help: "Run directory (default: runs/<UTC time>).") var runPath: String?
    @Option(help: "Continue the run in this directory from its last checkpoint.") var resume: String?

    func run() throws {
        try SwiftRain.run {
            var config = try options.resolve()
            var path =
                runPath ?? "runs/"
                + UTCTime.iso(EpochSeconds(Date().timeIntervalSince1970)).replacingOccurrences(of: ":", with: "")
            if let resume {
                path = resume
                if options.config == nil { config = try Config.load(path: resume + "/config.yaml") }
            }
            // TensorBoard's maps are drawn here, where RainPlot is (the coordinator's layer cannot draw).
            let maps = training.noTensorBoard || training.logMapsEvery <= 0 ? nil : EpochMaps(runPath: path)
            let summary = try Train.run(
                config: config, runPath: path, resume: resume != nil, options: training,
                epochImages: maps.map { m in { try m.render(checkpoint: $0) } }, log: { stderr($0) })
            print(
                "done: \(summary.globalStep) steps" + (summary.lastValLoss.map { ", val_loss \($0)" } ?? "")
                    + (summary.stoppedEarly ? " (stopped early; resume with --resume \(path))" : ""))
        }
    }
}

/// `swiftrain checkpoint RUN|FILE`: loads and verifies a checkpoint and says where it stands.
struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Load and verify a run's checkpoint; print its epoch, step and learning rate.")
    @Argument(help: "A run directory (its checkpoints/last.ckpt) or a .ckpt file.") var path: String
    @Flag(help: "The run's best.ckpt instead of last.ckpt.") var best = false
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try SwiftRain.run {
            let s = try CheckpointSummary.load(path, best: best)
            if json {
                try printJSON(s)
                return
            }
            print(
                """
                \(s.path): epoch \(s.epoch), step \(s.step) (global step \(s.globalStep)), lr \(s.lr), \
                \(s.parameters) parameters
                """
                    + (s.bestValLoss.map { ", best val_loss \($0)" } ?? "") + (s.finished ? "; training finished" : ""))
        }
    }
}
