import Foundation
import RainConfig
import RainData
import RainModel
import RainSupport

/// `runs/<name>/`: resolved config, metrics.jsonl, checkpoints (DESIGN.md §6).
public final class RunDirectory {
    public let url: URL
    public init(path: String) throws {
        url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(
            at: url.appendingPathComponent("checkpoints"), withIntermediateDirectories: true)
    }
    public var configPath: String { url.appendingPathComponent("config.yaml").path }
    public var metricsPath: String { url.appendingPathComponent("metrics.jsonl").path }
    public var checkpointsPath: String { url.appendingPathComponent("checkpoints").path }
    public var lastCheckpoint: String { url.appendingPathComponent("checkpoints/last.ckpt").path }
    public var bestCheckpoint: String { url.appendingPathComponent("checkpoints/best.ckpt").path }
    /// The run's trained model: its configuration and the parameters of `checkpoint` (default:
    /// best.ckpt if present, else last.ckpt), verified as `--resume` would.
    public func trainedModel(checkpoint: String? = nil) throws -> TrainedModel {
        let config = try Config.load(path: configPath)
        let layout = ParameterLayout(try ModelShape(config: config))
        let path =
            checkpoint ?? (FileManager.default.fileExists(atPath: bestCheckpoint) ? bestCheckpoint : lastCheckpoint)
        let (state, params, _, _) = try Checkpoint.read(path: path, layout: layout)
        return TrainedModel(config: config, layout: layout, checkpoint: path, state: state, params: params)
    }

    /// Written when training reaches its last epoch (not when stopped early): batch scripts test it.
    public var finishedPath: String { url.appendingPathComponent("finished.json").path }

    public func markFinished(globalStep: Int, valLoss: Double?) {
        let o: [String: Any] = [
            "global_step": globalStep, "val_loss": valLoss ?? NSNull(),
            "time": UTCTime.iso(EpochSeconds(Date().timeIntervalSince1970)),
        ]
        if let d = try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]) {
            try? d.write(to: URL(fileURLWithPath: finishedPath), options: .atomic)
        }
    }

    /// Lines that could not be written yet (a full disk): written, in order, before the next one. Bounded.
    private var pendingMetrics: [Data] = []
    private static let maxPendingMetrics = 10_000

    /// Appends one JSON object as a line of metrics.jsonl. On a full disk the line waits in memory and goes out
    /// with a later one; a partly written line is cut off again, so the file never holds a torn line.
    public func appendMetrics(_ object: [String: Any]) {
        guard let d = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        pendingMetrics.append(d + Data("\n".utf8))
        if pendingMetrics.count > Self.maxPendingMetrics { pendingMetrics.removeFirst() }
        let fd = open(metricsPath, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        guard fd >= 0 else { return }
        defer { close(fd) }
        while let line = pendingMetrics.first {
            let size = lseek(fd, 0, SEEK_END)
            let n = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n == line.count else {
                if n > 0 { _ = ftruncate(fd, size) }
                return
            }
            pendingMetrics.removeFirst()
        }
    }
}

/// A run's configuration and the parameters of one of its checkpoints.
public struct TrainedModel {
    public var config: Config
    public var layout: ParameterLayout
    /// The checkpoint file the parameters came from.
    public var checkpoint: String
    public var state: TrainingState
    public var params: FlatBuffer

    /// The model ready to run on the run's data: the data mapped, these parameters loaded; in the run's
    /// precision unless `precision` is given.
    public func runner(precision: Precision? = nil) throws -> ModelRunner {
        var config = config
        if let precision { config.precision = precision }
        let r = try ModelRunner(config: config)
        r.load(parameters: UnsafeBufferPointer(params.buffer))
        return r
    }
}
