import ArgumentParser
import Foundation
import RainModel
import RainProtocol
import RainSupport
import RainTraining
import RainZMQ

/// `swiftrain-worker`'s options: started by `swiftrain train`, by SLURM's srun, or by hand.
public struct WorkerOptions: ParsableArguments {
    @Option(
        help: "Coordinator address, tcp://HOST:PORT (default: from SLURM's environment, or MASTER_ADDR/MASTER_PORT).")
    public var connect: String?
    @Option(help: "Requested rank (informational; the coordinator assigns ranks).")
    public var rank: Int?
    @Option(
        help: """
            Threads for the model's products (default: the coordinator's --blas-threads, else SLURM_CPUS_PER_TASK, \
            else OPENBLAS_NUM_THREADS or the core count); any value gives the same bits.
            """)
    public var threads: Int?
    @Flag(
        name: .customLong("exit-with-parent"), help: "Exit when the parent process (a local `swiftrain train`) is gone."
    )
    public var exitWithParent = false
    @Option(
        help: """
            This worker's key directory, RUN/keys/workers/wK (CURVE: any TCP coordinator); under SLURM or torchrun \
            RUN/keys/workers itself, where the task's rank picks wK.
            """)
    public var keys: String?
    @Option(
        name: .customLong("coordinator-timeout"),
        help: "Seconds of unanswered heartbeats after which the coordinator is taken for dead and the worker exits.")
    public var coordinatorTimeout = 60.0
    @Option(
        name: .customLong("keys-timeout"),
        help: "Seconds to wait for the keys to appear (the coordinator writes them as it starts).")
    public var keysTimeout = 120.0
    @Option(
        name: .customLong("rejoin-timeout"),
        help: """
            Seconds to wait for a restarted coordinator (swiftrain train --resume at the same address) once \
            this one stops answering, then rejoin it (default: 600 when started by hand, 0 under SLURM or \
            `swiftrain train`, where the job ends instead).
            """)
    public var rejoinTimeout: Double?
    @Option(
        name: .customLong("ring-bind"),
        help: """
            Where this worker's ring inbox listens, tcp://IFACE:PORT (default: a free port, on loopback when the \
            coordinator is, else on every interface).
            """)
    public var ringBind: String?
    @Option(
        name: .customLong("ring-advertise"),
        help: """
            The address the other workers reach the ring inbox at, tcp://HOST:PORT, when it is not the one it \
            listens on (NAT, a forwarded port, a proxy); default: the listening address under this host's name.
            """)
    public var ringAdvertise: String?

    public init() {}
}

/// One worker process: finds its coordinator (flags, then SLURM or torchrun variables), waits for the
/// run's keys, connects, and runs the worker protocol until the coordinator shuts it down.
public enum WorkerProcess {
    public static func run(
        _ o: WorkerOptions, environment: [String: String] = ProcessInfo.processInfo.environment,
        log: @escaping (String) -> Void
    ) throws {
        let launch = try LaunchEnvironment.detect(environment)
        guard let connect = o.connect ?? launch?.connectEndpoint else {
            throw SwiftRainError(
                "--connect", "no coordinator address",
                hint:
                    """
                    pass --connect tcp://HOST:PORT, or run under srun (SLURM) or with MASTER_ADDR, MASTER_PORT, \
                    RANK and WORLD_SIZE set
                    """
            )
        }
        if let launch { try launch.checkReachable(connect, role: "--connect") }
        if let t = o.threads ?? launch?.cpusPerTask { BLAS.threads = t }
        // SIGUSR1 (SLURM's warning before a time limit) reaches every task of a step: the coordinator
        // checkpoints and then shuts the workers down, so a worker only notes it. Under a launcher SIGTERM too:
        // mpirun and srun forward the scheduler's SIGTERM to every rank, and the checkpoint needs the workers'
        // state (if the coordinator is gone instead, its unanswered heartbeats end the worker).
        let usr1 = StopSignal()
        usr1.install(
            signals: launch == nil ? [SIGUSR1] : [SIGUSR1, SIGUSR2, SIGTERM],
            log: { _ in log("worker: signal noted; the coordinator checkpoints and will shut the workers down") })
        let context = try ZMQContext()
        let keyRank = o.rank ?? launch.map { $0.rank - 1 }
        let curve = try o.keys.map { dir -> CurveKeys in
            // The coordinator writes the keys as it starts (under SLURM, at the same moment as this task).
            let clock = MonotonicClock(), deadline = clock.now + o.keysTimeout
            while CurveKeys.ownDirectory(dir, rank: keyRank) == nil && clock.now < deadline { usleep(200_000) }
            return try CurveKeys.loadForWorker(dir: dir, rank: keyRank)
        }
        let rejoin = o.rejoinTimeout ?? (launch != nil || o.exitWithParent ? 0 : 600)
        var welcomeTimeoutMs = 120_000
        while true {
            let worker = try makeWorker(o, connect: connect, context: context, curve: curve, log: log)
            worker.rejoins = rejoin > 0
            worker.welcomeTimeoutMs = welcomeTimeoutMs
            do {
                try withExtendedLifetime(usr1) { try worker.run(rank: o.rank ?? launch.map { $0.rank - 1 }) }
                return
            } catch let gone as TrainingWorker.CoordinatorGone {
                // Its model state is in the run's last checkpoint: a restarted coordinator hands it back.
                log(
                    """
                    worker: \(gone); waiting up to \(Int(rejoin)) s for a coordinator at \(connect) (restart it \
                    with swiftrain train --resume RUN and the same --listen), then rejoining
                    """)
                welcomeTimeoutMs = Int(rejoin * 1000)
            }
        }
    }

    /// A worker on fresh sockets (a rejoin starts over: a new routing id, hello, welcome).
    static func makeWorker(
        _ o: WorkerOptions, connect: String, context: ZMQContext, curve: CurveKeys?, log: @escaping (String) -> Void
    ) throws -> TrainingWorker {
        let client = try ZMQClient(context: context, connect: connect, curve: curve)
        let heartbeat = try ZMQClient(context: context, connect: connect, curve: curve)
        let worker = TrainingWorker(transport: client, heartbeat: heartbeat, log: log)
        worker.reconnect = {
            try ZMQClient(context: context, connect: connect, curve: curve, routingId: client.routingId)
        }
        if o.exitWithParent { worker.parentPid = getppid() }
        worker.threadsFixed = o.threads != nil
        worker.coordinatorTimeoutMs = Int(o.coordinatorTimeout * 1000)
        // The ring inbox: beside the coordinator's socket for a local run (the same 0700 directory),
        // loopback when the coordinator is, else every interface, advertised by host name.
        let bind =
            o.ringBind ?? LocalSockets.directory(of: connect).map { "ipc://\($0)/ring-\(getpid())" }
            ?? (Endpoint.isLoopback(connect) ? "tcp://127.0.0.1:*" : "tcp://*:*")
        worker.makeRing = { runId, floats in
            try RingAllreduce(
                context: context, bind: bind, advertiseHost: ProcessInfo.processInfo.hostName,
                advertise: o.ringAdvertise, runId: runId, curve: curve, floats: floats, log: log)
        }
        return worker
    }
}
