import Foundation
import RainSupport

/// A suite as a SLURM job array: one array task per unfinished cell, each running
/// `cluster/train.sbatch` on that cell (the script picks its run directory and configuration from
/// `DIR/cells.txt` by `SLURM_ARRAY_TASK_ID`), `%` capping how many run at once.
public struct SuiteSLURM {
    public var spec: SuiteSpec
    public var out: URL
    public var executable: String

    public init(spec: SuiteSpec, out: URL, executable: String) {
        self.spec = spec
        self.out = out
        self.executable = executable
    }

    /// `cells.txt`: per cell, its run directory and configuration, tab-separated (line k = task k).
    public func writeCellList() throws -> URL {
        let runner = SuiteRunner(spec: spec, out: out, executable: executable, log: { _ in })
        let lines = spec.cells().map { "\(runner.runDirectory($0).path)\t\(runner.configPath($0))" }
        let url = out.appendingPathComponent("cells.txt")
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// The `--array` value: the unfinished cells' indices, `%maxParallel` when given; nil if all are done.
    public func arraySpec(maxParallel: Int?) -> String? {
        let runner = SuiteRunner(spec: spec, out: out, executable: executable, log: { _ in })
        let pending = spec.cells().enumerated().filter { !runner.isFinished($0.element) }.map { String($0.offset) }
        guard !pending.isEmpty else { return nil }
        return pending.joined(separator: ",") + (maxParallel.map { "%\($0)" } ?? "")
    }

    /// Submits the array with sbatch; returns the job id (or a note that every cell is finished).
    public func submit(maxParallel: Int?, sbatch: String?, extra: String, log: (String) -> Void) throws -> String {
        let cells = try writeCellList()
        guard let array = arraySpec(maxParallel: maxParallel) else {
            log("suite: every cell is finished; nothing to submit (report: swiftrain suite --report \(out.path))")
            return ""
        }
        let bin = URL(fileURLWithPath: executable).deletingLastPathComponent()
        // The checkout's script: above the binaries (.build/<triple>/release), else in the working directory.
        let candidates =
            (1...4).map { up in
                (0..<up).reduce(bin) { u, _ in u.deletingLastPathComponent() }
                    .appendingPathComponent("cluster/train.sbatch").path
            } + [FileManager.default.currentDirectoryPath + "/cluster/train.sbatch"]
        let script = sbatch ?? candidates.first { FileManager.default.fileExists(atPath: $0) } ?? candidates[1]
        guard FileManager.default.fileExists(atPath: script) else {
            throw SwiftRainError(
                script, "no batch script", expected: "cluster/train.sbatch of the SwiftRain checkout",
                hint: "pass --sbatch PATH/cluster/train.sbatch")
        }
        try FileManager.default.createDirectory(
            at: out.appendingPathComponent("logs"), withIntermediateDirectories: true)
        let args =
            [
                "--parsable", "--array=\(array)", "--ntasks=\(spec.workers + 1)", "--job-name=swiftrain-suite",
                "--output=\(out.appendingPathComponent("logs").path)/slurm-%A_%a.log",
                "--export=ALL,SUITE_CELLS=\(cells.path),SWIFTRAIN_BIN=\(bin.path),"
                    + "TRAIN_ARGS=\(spec.trainArguments.joined(separator: " "))",
            ] + extra.split(separator: " ").map(String.init) + [script]
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["sbatch"] + args
        let pipe = Pipe(), errors = Pipe()
        p.standardOutput = pipe
        p.standardError = errors
        do { try p.run() } catch {
            throw SwiftRainError(
                "sbatch", "cannot run sbatch", found: "\(error)", hint: "run on a SLURM login node, or without --slurm")
        }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw SwiftRainError(
                "sbatch", "the submission was refused", found: message.trimmingCharacters(in: .whitespacesAndNewlines),
                hint: "check --sbatch-args (partition, time limit) and that the cluster has "
                    + "\(spec.workers + 1) tasks free"
            )
        }
        let job = output.trimmingCharacters(in: .whitespacesAndNewlines)
        log("suite: submitted job array \(job) (tasks \(array)); logs in \(out.appendingPathComponent("logs").path)")
        log("when it is done: swiftrain suite --report \(out.path)")
        return job
    }
}
