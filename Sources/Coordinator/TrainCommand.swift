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
    @Option(name: .customLong("blas-threads"), help: "Threads per worker for the model's products (default: cores / workers); any value gives the same bits.") var blasThreads: Int?
    @Option(name: .customLong("checkpoint-every"), help: "Also write last.ckpt every N steps.") var checkpointEvery = 0
    @Option(name: .customLong("max-steps"), help: "Stop with a checkpoint after N steps (0: train to the end).") var maxSteps = 0
    @Option(name: .customLong("step-timeout"), help: "Seconds to wait for a step's results while workers are alive.") var stepTimeout = 600
    @Option(name: .customLong("worker-timeout"), help: "Seconds without a heartbeat after which a worker owing work is declared dead.") var workerTimeout = 10.0
    @Option(name: .customLong("min-workers"), help: "Below this many live workers, checkpoint and exit non-zero.") var minWorkers = 1
    @Option(help: "Gradient averaging: star (through the coordinator) or ring (among the workers).") var allreduce = "star"
    @Option(help: "Sample order: global (one seeded permutation, results independent of N) or locality (each worker reads one contiguous block of sample times, rotated every epoch).") var sharding = "global"
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
            // Role and addresses: flags first, then SLURM's or torchrun's environment.
            let launch = listen == nil && workers != nil ? nil : try LaunchEnvironment.detect()  // local runs ignore job variables
            if let listen { o.listen = listen; o.workers = expectWorkers ?? launch?.workers ?? 1 }
            else if let workers { o.workers = workers }
            else if let launch {
                guard launch.rank == 0 else {
                    throw SwiftRainError("\(launch.source.rawValue) rank \(launch.rank)", "this task is a worker, not the coordinator",
                                         hint: "start task 0 with `swiftrain train` and the others with `swiftrain-worker` (cluster/train.sbatch does)")
                }
                guard launch.workers >= 1 else {
                    throw SwiftRainError("\(launch.source.rawValue) tasks", "no worker tasks", expected: "at least 2 tasks (1 coordinator + workers)",
                                         found: "\(launch.worldSize)", hint: "ask for more tasks (sbatch --ntasks)")
                }
                o.listen = launch.listenEndpoint; o.workers = expectWorkers ?? launch.workers
                stderr("\(launch.source.rawValue): coordinator of \(launch.workers) worker(s) on \(launch.listenEndpoint); workers connect to \(launch.connectEndpoint)")
            }
            if let launch, let l = o.listen { try launch.checkReachable(l, role: "--listen") }
            o.blasThreads = blasThreads; o.checkpointEvery = checkpointEvery; o.maxSteps = maxSteps; o.stepTimeoutMs = stepTimeout * 1000
            o.workerTimeoutMs = Int(workerTimeout * 1000); o.minWorkers = minWorkers; o.progressEverySeconds = progressEvery; o.curve = curve
            guard ["star", "ring"].contains(allreduce) else {
                throw SwiftRainError("--allreduce", "unknown algorithm", expected: "star or ring", found: allreduce, hint: "choose one")
            }
            o.ring = allreduce == "ring"
            guard ["global", "locality"].contains(sharding) else {
                throw SwiftRainError("--sharding", "unknown sample order", expected: "global or locality", found: sharding, hint: "choose one")
            }
            o.locality = sharding == "locality"
            let summary = try Train.run(o, log: { stderr($0) })
            print("done: \(summary.globalStep) steps" + (summary.lastValLoss.map { ", val_loss \($0)" } ?? "") + (summary.stoppedEarly ? " (stopped early; resume with --resume \(path))" : ""))
        }
    }
}

/// `swiftrain checkpoint RUN|FILE`: loads and verifies a checkpoint and says where it stands.
struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "checkpoint", abstract: "Load and verify a run's checkpoint; print its epoch, step and learning rate.")
    @Argument(help: "A run directory (its checkpoints/last.ckpt) or a .ckpt file.") var path: String
    @Flag(help: "The run's best.ckpt instead of last.ckpt.") var best = false
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try SwiftRain.run {
            let s = try CheckpointSummary.load(path, best: best)
            if json { try printJSON(s); return }
            print("\(s.path): epoch \(s.epoch), step \(s.step) (global step \(s.globalStep)), lr \(s.lr), \(s.parameters) parameters"
                  + (s.bestValLoss.map { ", best val_loss \($0)" } ?? "") + (s.finished ? "; training finished" : ""))
        }
    }
}
