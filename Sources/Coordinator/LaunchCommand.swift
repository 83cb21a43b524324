import ArgumentParser
import Foundation
import RainConfig
import RainLaunch
import RainSupport
import RainTraining

/// `swiftrain launch`: the same command line on every rank of `mpirun`, `mpiexec`, `srun` or torchrun-style
/// variables; the launcher's rank decides the role (see `Launch`).
struct LaunchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "launch",
        abstract: "One rank of a launched job: rank 0 coordinates, the others are workers (mpirun -np N+1 …).",
        discussion: """
            Every rank runs the same command: `mpirun -np 4 swiftrain launch --config C --run DIR` trains with \
            3 workers. Rank 0 resumes DIR's last checkpoint when there is one, so a re-submitted job continues; \
            SIGTERM or SIGUSR1 (forwarded by mpirun from the scheduler) checkpoints after the current step.
            """)
    @OptionGroup var options: ConfigOptions
    @OptionGroup var training: TrainingOptions
    @OptionGroup var launch: LaunchOptions
    @Option(name: .customLong("run"), help: "Run directory, shared by every rank (checkpoints, keys, address).")
    var runPath: String

    func run() throws {
        let start = Date().timeIntervalSince1970
        try SwiftRain.run {
            let env = try Launch.environment()
            switch try Launch.role(env, run: runPath, coordinator: launch.coordinator) {
            case .finished:
                stderr("\(env.source.rawValue) rank \(env.rank): \(runPath) has finished training (finished.json)")
            case .worker(let rank):
                try Launch.worker(
                    env, rank: rank, run: runPath, options: launch, startedAt: start, log: { stderr($0) })
            case .coordinator(let listen, let resume):
                try rankZero(env, listen: listen, resume: resume)
            }
        }
    }

    func rankZero(_ env: LaunchEnvironment, listen: String, resume: Bool) throws {
        // A resumed run keeps its own configuration unless --config says otherwise (as `train --resume`).
        let config =
            resume && options.config == nil ? try Config.load(path: runPath + "/config.yaml") : try options.resolve()
        var t = training
        t.listen = listen
        if t.expectWorkers == nil { t.expectWorkers = env.workers }
        stderr(
            "\(env.source.rawValue): rank 0 of \(env.worldSize), "
                + (resume ? "resuming \(runPath)" : "new run \(runPath)"))
        defer { Rendezvous.withdraw(run: runPath) }
        try coordinate(
            config: config, runPath: runPath, resume: resume, options: t,
            stoppedEarly: "submit the same job again to resume",
            listening: {
                try Launch.publish(
                    env, run: runPath, endpoint: $0, coordinator: launch.coordinator, log: { stderr($0) })
            })
    }
}
