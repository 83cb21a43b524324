import Foundation
import RainData
import RainEvaluation
import RainSupport
import RainTraining

#if canImport(Glibc)
import Glibc
#endif

/// Runs a suite's cells one after another on this machine, each a `swiftrain train` child process
/// (`--workers N`) followed by `eval` on the test partition. Re-running skips finished cells and
/// resumes an interrupted one from its last checkpoint; a failed cell is reported and the rest go on.
public struct SuiteRunner {
    public var spec: SuiteSpec
    public var out: URL
    /// The `swiftrain` executable the cells are trained with.
    public var executable: String
    public var log: (String) -> Void

    public init(spec: SuiteSpec, out: URL, executable: String, log: @escaping (String) -> Void) {
        self.spec = spec
        self.out = out
        self.executable = executable
        self.log = log
    }

    /// What became of the cells.
    public struct Outcome {
        public var finished: [String] = [], skipped: [String] = [], failed: [String] = []
        /// Set when a stop signal ended the suite; the named cell resumes on the next run.
        public var interruptedIn: String?
    }

    public func runDirectory(_ cell: SuiteSpec.Cell) -> URL { out.appendingPathComponent(cell.name) }
    public func configPath(_ cell: SuiteSpec.Cell) -> String {
        out.appendingPathComponent("configs/\(cell.name).yaml").path
    }
    public func logPath(_ cell: SuiteSpec.Cell) -> String { out.appendingPathComponent("logs/\(cell.name).log").path }

    /// The arguments that train `cell` from where it stands (new, or resumed from last.ckpt).
    public func trainArguments(_ cell: SuiteSpec.Cell) -> (arguments: [String], resuming: Bool) {
        let run = runDirectory(cell)
        let resuming = FileManager.default.fileExists(atPath: run.appendingPathComponent("checkpoints/last.ckpt").path)
        let start =
            resuming ? ["train", "--resume", run.path] : ["train", "--config", configPath(cell), "--run", run.path]
        return (start + ["--workers", String(spec.workers)] + spec.trainArguments, resuming)
    }

    public func isFinished(_ cell: SuiteSpec.Cell) -> Bool {
        FileManager.default.fileExists(atPath: runDirectory(cell).appendingPathComponent("finished.json").path)
    }
    public func isEvaluated(_ cell: SuiteSpec.Cell) -> Bool {
        FileManager.default.fileExists(atPath: runDirectory(cell).appendingPathComponent("eval/test.json").path)
    }

    public func run(stop: StopSignal) throws -> Outcome {
        var outcome = Outcome()
        let cells = spec.cells()
        try FileManager.default.createDirectory(
            at: out.appendingPathComponent("logs"), withIntermediateDirectories: true)
        for (k, cell) in cells.enumerated() {
            let tag = "cell \(k + 1)/\(cells.count) \(cell.name)"
            if isFinished(cell) && isEvaluated(cell) {
                log("\(tag): finished earlier, skipped")
                outcome.skipped.append(cell.name)
                continue
            }
            if stop.isSet {
                outcome.interruptedIn = cell.name
                return outcome
            }
            if !isFinished(cell) {
                let (args, resuming) = trainArguments(cell)
                log("\(tag): \(resuming ? "resuming from its last checkpoint" : "training") (log: \(logPath(cell)))")
                let started = Date()
                let status = try train(args, log: logPath(cell), stop: stop)
                if stop.isSet && !isFinished(cell) {
                    log("\(tag): interrupted; its checkpoint is kept. Re-run the same command to resume it")
                    outcome.interruptedIn = cell.name
                    return outcome
                }
                guard status == 0, isFinished(cell) else {
                    log("\(tag): FAILED (train exited with status \(status)); see \(logPath(cell)). Going on")
                    outcome.failed.append(cell.name)
                    continue
                }
                log("\(tag): trained in \(String(format: "%.0f", Date().timeIntervalSince(started))) s")
            }
            do {
                let r = try Evaluate.run(runPath: runDirectory(cell).path, phase: .test, log: { _ in })
                let rmse = r.leads.map { l in l.model.map { String(format: "%.3f", $0) } ?? "–" }
                log("\(tag): test RMSE (\(r.unit)) per lead \(rmse.joined(separator: " "))")
                outcome.finished.append(cell.name)
            } catch {
                log("\(tag): FAILED in evaluation: \(error). Going on")
                outcome.failed.append(cell.name)
            }
        }
        return outcome
    }

    /// Runs `swiftrain` with `args`, output appended to `log`; a stop signal is passed on as SIGTERM
    /// (the coordinator checkpoints after its current step and stops).
    private func train(_ args: [String], log path: String, stop: StopSignal) throws -> Int32 {
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        handle.seekToEndOfFile()
        defer { try? handle.close() }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        var forwarded = false
        while p.isRunning {
            if stop.isSet && !forwarded {
                kill(p.processIdentifier, SIGTERM)
                forwarded = true
            }
            usleep(50_000)
        }
        return p.terminationStatus
    }
}
