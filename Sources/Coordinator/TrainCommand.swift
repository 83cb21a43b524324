import ArgumentParser
import Core
import Foundation

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train: a coordinator and N local worker processes, or a coordinator waiting for remote workers (--listen).")
    @OptionGroup var options: ConfigOptions
    @Option(help: "Local worker processes (default: one per core).") var workers: Int?
    @Option(help: "Listen on tcp://ADDR:PORT for workers started elsewhere instead of spawning them.") var listen: String?
    @Option(name: .customLong("expect-workers"), help: "With --listen: how many workers to wait for.") var expectWorkers: Int?
    @Option(name: .customLong("run"), help: "Run directory (default: runs/<UTC time>).") var runPath: String?
    @Option(help: "Continue the run in this directory from its last checkpoint.") var resume: String?
    @Option(name: .customLong("blas-threads"), help: "OpenBLAS threads per worker (default: cores / workers).") var blasThreads: Int?
    @Option(name: .customLong("checkpoint-every"), help: "Also write last.ckpt every N steps.") var checkpointEvery = 0
    @Option(name: .customLong("max-steps"), help: "Stop with a checkpoint after N steps (0: train to the end).") var maxSteps = 0
    @Option(name: .customLong("step-timeout"), help: "Seconds to wait for a step's results while workers are alive.") var stepTimeout = 600
    @Option(name: .customLong("worker-timeout"), help: "Seconds without a heartbeat after which a worker owing work is declared dead.") var workerTimeout = 10.0
    @Option(name: .customLong("min-workers"), help: "Below this many live workers, checkpoint and exit non-zero.") var minWorkers = 1
    @Option(help: "Gradient averaging: star (through the coordinator) or ring (among the workers).") var allreduce = "star"
    @Flag(help: "Encrypt and authenticate with CURVE even on loopback (always on beyond loopback).") var curve = false
    @Option(name: .customLong("progress-every"), help: "Seconds between progress lines when stderr is not a terminal (0: every step).") var progressEvery = 30.0

    func run() throws {
        try SwiftRain.run {
            var config = try options.resolve()
            var path = runPath ?? "runs/" + UTCTime.iso(EpochSeconds(Date().timeIntervalSince1970)).replacingOccurrences(of: ":", with: "")
            if let resume {
                path = resume
                if options.config == nil { config = try Config.load(path: resume + "/config.yaml") }
            }
            var o = Train.Options(config: config, runPath: path)
            o.resume = resume != nil
            if let listen { o.listen = listen; o.workers = expectWorkers ?? 1 } else if let workers { o.workers = workers }
            o.blasThreads = blasThreads; o.checkpointEvery = checkpointEvery; o.maxSteps = maxSteps; o.stepTimeoutMs = stepTimeout * 1000
            o.workerTimeoutMs = Int(workerTimeout * 1000); o.minWorkers = minWorkers; o.progressEverySeconds = progressEvery; o.curve = curve
            guard ["star", "ring"].contains(allreduce) else {
                throw SwiftRainError("--allreduce", "unknown algorithm", expected: "star or ring", found: allreduce, hint: "choose one")
            }
            o.ring = allreduce == "ring"
            let summary = try Train.run(o, log: { stderr($0) })
            print("done: \(summary.globalStep) steps" + (summary.lastValLoss.map { ", val_loss \($0)" } ?? "") + (summary.stoppedEarly ? " (stopped early; resume with --resume \(path))" : ""))
        }
    }
}
