import Foundation
import RainConfig
import RainModel
import RainProtocol
import RainSupport

/// One worker process's protocol loop: hello → welcome → (map data, build index) → ready → steps
/// until shutdown. Every receive has a deadline; a silent coordinator ends the worker with an error.
public final class TrainingWorker {
    var transport: ClientTransport
    /// Builds a new control connection with this incarnation's routing id (after a reset).
    public var reconnect: (() throws -> ClientTransport)? = nil
    /// A second connection used only by the heartbeat thread (sockets are not shared between threads).
    let heartbeat: ClientTransport?
    let log: (String) -> Void
    public var welcomeTimeoutMs = 120_000
    public var idleTimeoutMs = 1_800_000
    public var heartbeatIntervalMs = 1000
    /// A worker whose heartbeats go unanswered this long concludes the coordinator is gone and exits
    /// (so a batch job whose coordinator died ends instead of idling to its time limit).
    public var coordinatorTimeoutMs = 60_000
    /// For workers spawned by `swiftrain train`: exit when that process is gone (no orphans).
    public var parentPid: Int32? = nil
    /// Creates this worker's ring endpoint once the run id and the gradient's size (floats) are known.
    public var makeRing: ((UInt64, Int) throws -> GradientRing)? = nil
    /// The worker's own --threads flag was given: it wins over the coordinator's --blas-threads.
    public var threadsFixed = false
    /// How long to wait for a ring neighbour's chunk.
    public var ringTimeoutMs = 600_000
    /// When the coordinator's heartbeats stop: false, exit the process (a batch job ends); true,
    /// `run` throws `CoordinatorGone` so the caller can wait for a restarted coordinator and rejoin.
    public var rejoins = false
    let gone = StopSignal()
    /// The latest membership version heard from the coordinator (its heartbeats carry it).
    let membership = SharedValue<UInt32>(0)
    /// Where the worker is, for its heartbeats: the coordinator sees from them a request or an answer lost
    /// with a reset connection, or a ring that lost a piece (`Body.Heartbeat`).
    let position = SharedValue(Position())
    struct Position {
        /// The highest request number received.
        var got = 0
        /// When the worker began waiting for a message (nil: busy with one).
        var idleSince: Double? = nil
        /// The ring round it is summing in.
        var ring: Int? = nil
        var gradientRing: GradientRing? = nil
    }

    /// The coordinator stopped answering heartbeats (and `rejoins` is set).
    public struct CoordinatorGone: Error, CustomStringConvertible {
        public let silentSeconds: Int
        public var description: String { "the coordinator has not answered heartbeats for \(silentSeconds) s" }
    }

    public init(transport: ClientTransport, heartbeat: ClientTransport? = nil, log: @escaping (String) -> Void) {
        self.transport = transport
        self.heartbeat = heartbeat
        self.log = log
    }

    /// Sends a heartbeat every interval until `stop` is set: a frozen (SIGSTOP) or killed process
    /// stops them, which is how the coordinator tells a dead worker from a slow one.
    private func startHeartbeat(runId: UInt64, rank: Int, token: String, stop: StopSignal) {
        guard let hb = heartbeat else { return }
        let membership = self.membership, position = self.position
        let interval = UInt32(heartbeatIntervalMs * 1000)
        let parent = parentPid, log = self.log, silentLimit = Double(coordinatorTimeoutMs) / 1000
        let gone = rejoins ? self.gone : nil
        Thread.detachNewThread {
            let clock = MonotonicClock()
            var lastAnswer = clock.now
            while !stop.isSet {
                if let parent, getppid() != parent {
                    log("worker \(rank): the coordinator process is gone; exiting")
                    exit(1)
                }
                let now = clock.now, p = position.value
                var beat = Body.Heartbeat(rank: rank, token: token)
                beat.got = p.got
                beat.idle = p.idleSince.map { max(0, now - $0) }
                beat.ring = p.ring
                beat.pieces = p.ring == nil ? nil : p.gradientRing?.piecesReceived
                try? hb.send(
                    Message.frames(.heartbeat, runId: runId, membership: membership.value, body: Body.encode(beat)))
                usleep(interval)
                while let f = try? hb.receive(timeoutMs: 0),
                    (try? Message.decode(f, runId: runId, maxPayloadBytes: 0))?.header.kind == .heartbeat
                {
                    lastAnswer = clock.now
                }
                if clock.now - lastAnswer > silentLimit {
                    if let gone {  // the main thread notices within a poll and rejoins
                        gone.set()
                        break
                    }
                    log(
                        """
                        worker \(rank): error: the coordinator has not answered heartbeats for \
                        \(Int(silentLimit)) s (dead or unreachable); exiting. Restart the job; it resumes from \
                        the last checkpoint
                        """
                    )
                    exit(1)
                }
            }
            hb.close()
        }
    }

    public func run(rank: Int?) throws {
        try transport.send(
            Message.frames(
                .hello, runId: 0,
                body: Body.encode(
                    Body.Hello(
                        version: Int(MessageHeader.version), host: ProcessInfo.processInfo.hostName,
                        pid: ProcessInfo.processInfo.processIdentifier, rank: rank))))
        guard let wf = try receive(timeoutMs: welcomeTimeoutMs) else {
            throw SwiftRainError(
                "coordinator", "no answer within \(welcomeTimeoutMs / 1000) s",
                hint: """
                    check the --connect address, that `swiftrain train` is listening there, and (TCP: CURVE is \
                    on) that --keys names this worker's own directory of that run, RUN/keys/workers/wK
                    """)
        }
        let welcomeMessage = try Message.decode(wf, runId: nil, maxPayloadBytes: 0)
        if welcomeMessage.header.kind == .abort {
            throw SwiftRainError(
                "coordinator", "refused this worker: \(String(decoding: welcomeMessage.body, as: UTF8.self))",
                hint: "start it when a worker has left, or raise the coordinator's --max-workers")
        }
        guard welcomeMessage.header.kind == .welcome else {
            throw SwiftRainError(
                "coordinator", "unexpected first message", hint: "is --connect pointing at a SwiftRain coordinator?")
        }
        let runId = welcomeMessage.header.runId
        membership.set(welcomeMessage.header.membership)
        let welcome = try welcomeMessage.decodeBody(Body.Welcome.self)
        FaultInjection.arm(rank: welcome.rank)
        let stop = StopSignal()
        defer { stop.set() }
        startHeartbeat(runId: runId, rank: welcome.rank, token: welcome.token, stop: stop)
        if welcome.blasThreads > 0 && !threadsFixed { BLAS.threads = welcome.blasThreads }
        var config = Config()
        try config.apply(yaml: welcome.config, source: "coordinator's configuration")
        let compute: ModelRunner
        do {
            compute = try ModelRunner(config: config)
            guard compute.layout.count == welcome.parameterCount else {
                throw SwiftRainError(
                    "model", "this worker's data give another model than the coordinator's configuration",
                    expected: "\(welcome.parameterCount) parameters",
                    found: "\(compute.layout.count) (\(compute.shape))",
                    hint: "set grid to the resolution of the data on this host, and give every host the same datasets")
            }
        } catch {
            try? transport.send(Message.frames(.abort, runId: runId, body: Array("\(error)".utf8)))
            throw error
        }
        if welcome.rank == 0 {  // the quirks survived, said once per run rather than once per worker
            for w in compute.catalog.warnings { log("warning: \(w)") }
        }
        let ring = try makeRing?(runId, compute.layout.count)
        ring?.wire = config.gradWire
        defer { ring?.close() }
        let replica = Replica(runner: compute, config: config)
        let probe = try? String(contentsOfFile: welcome.checkpoints + "/" + Self.probeName(runId), encoding: .utf8)
        let shares = !welcome.probe.isEmpty && probe == welcome.probe
        log(
            """
            worker \(welcome.rank): \(compute.index.samples(.train).count) train, \
            \(compute.index.samples(.valid).count) valid samples; \(BLAS.threads) BLAS thread(s), \
            kernel \(BLAS.coreName)
            """
        )
        try transport.send(
            Message.frames(
                .ready, runId: runId,
                body: Body.encode(
                    Body.Ready(
                        trainSamples: compute.index.samples(.train).count,
                        validSamples: compute.index.samples(.valid).count, ringAddress: ring?.address,
                        trainLeadCounts: compute.index.samples(.train).leads.map(\.times.count),
                        sharesRunDirectory: shares))))
        try serve(
            runId: runId, rank: welcome.rank, replica: replica, ring: ring, checkpoints: welcome.checkpoints)
    }

    /// A receive that also watches for the heartbeat thread's verdict that the coordinator is gone.
    func receive(timeoutMs: Int) throws -> Frames? {
        let clock = MonotonicClock(), end = clock.now + Double(timeoutMs) / 1000
        update { $0.idleSince = clock.now }
        defer { update { $0.idleSince = nil } }
        while true {
            if gone.isSet { throw CoordinatorGone(silentSeconds: coordinatorTimeoutMs / 1000) }
            if let refusal = transport.refusal {
                throw SwiftRainError(
                    "coordinator", refusal,
                    hint: """
                        pass this worker's own key directory of the run it joins, --keys RUN/keys/workers/wK \
                        (issued by swiftrain train or swiftrain keys --run RUN --workers N; a deleted one is revoked)
                        """)
            }
            let left = Int((end - clock.now) * 1000)
            if left <= 0 { return nil }
            if let f = try transport.receive(timeoutMs: min(left, 500)) { return f }
        }
    }

    func update(_ change: (inout Position) -> Void) {
        var p = position.value
        change(&p)
        position.set(p)
    }

    /// The probe file a coordinator writes in its checkpoints directory for run `runId`.
    public static func probeName(_ runId: UInt64) -> String { ".probe-\(String(runId, radix: 16))" }
}

extension Body.Result {
    /// A worker's answer for shard `shard` of step `step`: its sums.
    init(step: Int, shard: Int, _ s: ShardSums) {
        self.init(
            step: step, shard: shard, count: s.count, lossSum: s.lossSum, leadSquaredError: s.leadSquaredError,
            leadWeight: s.leadWeight)
    }
}
