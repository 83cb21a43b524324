import ArgumentParser
import Foundation
import RainProtocol
import RainSupport
import RainTraining

/// `swiftrain launch`'s own options (beside `train`'s): one command line for every rank of every launcher.
public struct LaunchOptions: ParsableArguments {
    @Option(
        help: """
            Rank 0's address HOST:PORT, given to every rank: rank 0 listens on PORT, the others connect to it \
            (default: SLURM's or torchrun's variables; under MPI rank 0 picks a port and publishes \
            RUN/coordinator.json).
            """)
    public var coordinator: String?
    @Option(
        name: .customLong("wait-timeout"),
        help: "Seconds a worker rank waits for rank 0's address and its keys to appear in the run directory.")
    public var waitTimeout = 300.0
    @Option(
        name: .customLong("coordinator-timeout"),
        help: "Seconds of unanswered heartbeats after which a worker rank takes the coordinator for dead and exits.")
    public var coordinatorTimeout = 60.0
    @Option(help: "Threads for each worker rank's model products (default: as swiftrain-worker's --threads).")
    public var threads: Int?

    public init() {}
}

/// What one process of a launched job does: rank 0 coordinates (fresh, or resuming the run directory's last
/// checkpoint), every other rank is worker rank − 1 with the run's key `keys/workers/w<rank − 1>`.
public enum Launch {
    public enum Role: Equatable {
        /// Rank 0: listen here; `resume` when the run directory has a checkpoint.
        case coordinator(listen: String, resume: Bool)
        case worker(rank: Int)
        /// The run directory says training finished: every rank exits 0 (a re-submitted finished job).
        case finished
    }

    /// The launcher's environment, or an error saying how to start `launch`.
    public static func environment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws
        -> LaunchEnvironment
    {
        guard let l = try LaunchEnvironment.detect(env) else {
            throw SwiftRainError(
                "swiftrain launch", "no launcher's environment",
                expected:
                    "OMPI_COMM_WORLD_RANK (Open MPI), PMI_RANK (MPICH, Intel MPI), PMIX_RANK, SLURM_PROCID or RANK",
                hint:
                    """
                    start it under `mpirun -np N+1`, `mpiexec -n N+1` or `srun`; on one machine use \
                    `swiftrain train --workers N`
                    """
            )
        }
        guard l.worldSize >= 2, l.rank < l.worldSize else {
            throw SwiftRainError(
                "\(l.source.rawValue) size", "a job needs a coordinator and at least one worker",
                expected: "at least 2 processes, rank below size", found: "rank \(l.rank) of \(l.worldSize)",
                hint: "start N+1 processes for N workers (mpirun -np 4 for 3 workers)")
        }
        return l
    }

    public static func role(_ l: LaunchEnvironment, run: String, coordinator: String?) throws -> Role {
        let dir = URL(fileURLWithPath: run)
        if FileManager.default.fileExists(atPath: dir.appendingPathComponent("finished.json").path) {
            return .finished
        }
        guard l.rank == 0 else { return .worker(rank: l.rank - 1) }
        let resume = FileManager.default.fileExists(atPath: dir.appendingPathComponent("checkpoints/last.ckpt").path)
        let port = try coordinator.map { try Self.split($0).port }
        return .coordinator(listen: port.map { "tcp://0.0.0.0:\($0)" } ?? l.listenEndpoint, resume: resume)
    }

    /// HOST:PORT (or tcp://HOST:PORT) split, with an error naming the flag.
    static func split(_ s: String) throws -> (host: String, port: Int) {
        let bare = s.hasPrefix("tcp://") ? String(s.dropFirst(6)) : s
        guard let colon = bare.lastIndex(of: ":"), let port = Int(bare[bare.index(after: colon)...]),
            (1...65535).contains(port), colon != bare.startIndex
        else {
            throw SwiftRainError(
                "--coordinator", "not HOST:PORT", found: s,
                hint: "pass the coordinator's host and a free port, e.g. node1:5555")
        }
        return (String(bare[..<colon]), port)
    }

    /// Rank 0, once listening on `endpoint` (tcp://0.0.0.0:PORT): writes RUN/coordinator.json for the workers.
    public static func publish(
        _ l: LaunchEnvironment, run: String, endpoint: String, coordinator: String?, log: (String) -> Void
    ) throws {
        guard coordinator == nil, l.connectEndpoint == nil, let port = Endpoint.port(endpoint) else { return }
        let host = Rendezvous.advertisedHost(nodes: l.nodes)
        let r = try Rendezvous.publish(run: run, endpoint: "tcp://\(host):\(port)", job: l.job)
        log(
            "\(l.source.rawValue): rank 0 of \(l.worldSize); workers find \(r.endpoint) in \(Rendezvous.path(run: run))"
        )
    }

    /// A worker rank: finds the coordinator (flag, launcher's variables, else the published file) and runs.
    public static func worker(
        _ l: LaunchEnvironment, rank: Int, run: String, options o: LaunchOptions, startedAt start: Double,
        log: @escaping (String) -> Void
    ) throws {
        let connect: String
        if let c = o.coordinator {
            let (host, port) = try split(c)
            connect = "tcp://\(host):\(port)"
        } else if let c = l.connectEndpoint {
            connect = c
        } else {
            connect = try Rendezvous.wait(run: run, job: l.job, startedAt: start, timeout: o.waitTimeout, log: log)
                .endpoint
        }
        let keys = URL(fileURLWithPath: run).appendingPathComponent("keys/workers").path
        var args = [
            "--connect", connect, "--rank", "\(rank)", "--keys", keys, "--keys-timeout", "\(o.waitTimeout)",
            "--coordinator-timeout", "\(o.coordinatorTimeout)",
        ]
        if let t = o.threads { args += ["--threads", "\(t)"] }
        try WorkerProcess.run(try WorkerOptions.parse(args), log: log)
    }
}
