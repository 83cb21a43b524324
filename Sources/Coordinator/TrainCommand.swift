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
            try coordinate(
                config: config, runPath: path, resume: resume != nil, options: training,
                stoppedEarly: "resume with --resume \(path)")
        }
    }
}

/// The coordinator of `train` and of `launch`'s rank 0: TensorBoard's maps drawn by a child, the run, its summary.
func coordinate(
    config: Config, runPath: String, resume: Bool, options: TrainingOptions, stoppedEarly: String,
    listening: ((String) throws -> Void)? = nil
) throws {
    let maps = options.noTensorBoard || options.logMapsEvery <= 0 ? nil : { try drawMaps(run: runPath, $0) }
    let summary = try Train.run(
        config: config, runPath: runPath, resume: resume, options: options, epochImages: maps,
        listening: listening, log: { stderr($0) })
    print(
        "done: \(summary.globalStep) steps" + (summary.lastValLoss.map { ", val_loss \($0)" } ?? "")
            + (summary.stoppedEarly ? " (stopped early; \(stoppedEarly))" : ""))
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

/// TensorBoard's maps for a checkpoint, drawn by a child `swiftrain plot --epoch-maps` (the model and the data
/// it maps stay out of the coordinator's memory); the PNG's bytes and size.
func drawMaps(run: String, _ checkpoint: String) throws -> (png: [UInt8], width: Int, height: Int) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: ThisProcess.executable)
    p.arguments = ["plot", "--run", run, "--epoch-maps", checkpoint]
    // stderr into a file, so a chatty child cannot fill a pipe nobody reads yet.
    let log = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("swiftrain-maps-\(getpid()).log")
    FileManager.default.createFile(atPath: log.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: log) }
    let out = Pipe()
    (p.standardOutput, p.standardError) = (out, try FileHandle(forWritingTo: log))
    try p.run()
    let path = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    let message = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
    let file = path.trimmingCharacters(in: .whitespacesAndNewlines)
    guard p.terminationStatus == 0, let png = FileManager.default.contents(atPath: file).map(Array.init),
        let size = EpochMaps.size(png: png)
    else {
        throw SwiftRainError(
            "swiftrain plot --epoch-maps", "the maps were not drawn", found: message.prefix(500).description,
            hint: "run `swiftrain plot --run \(run)` to see why; --log-maps-every 0 turns the maps off")
    }
    return (png, size.width, size.height)
}
