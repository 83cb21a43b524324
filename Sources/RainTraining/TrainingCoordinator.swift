import Foundation
import RainConfig
import RainData
import RainModel
import RainProtocol
import RainSupport
import RainTensorBoard

/// The coordinator (DESIGN.md §5 "roles"): owns configuration, membership, sample order, the learning
/// rate, validation aggregation, the LR scheduler, metrics and the checkpoint commit. The workers own
/// the model state (`Replica`); per step the coordinator moves control messages and scalars only.
/// It talks to workers only through a `ServerTransport`.
public final class TrainingCoordinator {
    public struct Summary {
        public var globalStep: Int
        public var stoppedEarly: Bool
        public var lastValLoss: Double?
    }

    public let config: Config
    public let run: RunDirectory
    public let options: TrainingOptions
    /// Workers to wait for before the first step (and the locality plan's block count).
    public let expectedWorkers: Int
    /// Threads each worker should use (0: the worker's own choice), sent in `welcome`.
    public let blasThreadsPerWorker: Int
    /// Releases ring members after a failed round (ring mode only).
    let ringAbandoner: RingAbandoner?
    let clock: Clock
    let transport: ServerTransport
    let runId: UInt64
    /// Log lines; while training, routed through the progress line so they do not run into it.
    var log: (String) -> Void
    /// Set from a signal handler: checkpoint after the current step and return.
    public var stopRequested: () -> Bool = { false }
    /// Messages refused, by reason.
    public private(set) var rejected: [String: Int] = [:]

    var peers: [[UInt8]] = []  // rank → transport id (dead ranks keep their slot)
    /// Ranks that take part in rounds, ascending; every change bumps the membership version.
    var live: [Int] = [] { didSet { if live != oldValue { membership &+= 1 } } }
    /// The membership version every message the coordinator sends carries (MessageHeader).
    public private(set) var membership: UInt32 = 0
    var joining: Set<Int> = []  // welcomed, index not yet built
    var leftOut: Set<Int> = []  // heard from after being left out, and told to leave
    var lastRound: [Int: Int] = [:]  // the last ring round each rank was sent
    var lastSeen: [Int: Double] = [:]
    var ringAddress: [Int: String] = [:]
    /// Each rank's host name (from its hello): the topology hierarchical sums follow.
    var hostOf: [Int: String] = [:]
    /// Each rank's heartbeat token, given in its welcome.
    var tokens: [Int: String] = [:]
    /// The public key each rank's hello came under ("" without CURVE): all its messages must come under it.
    var keyOf: [Int: String] = [:]
    /// The name of a worker key for the log (`w3`); nil for a key the run does not know.
    public var keyName: (String) -> String? = { _ in nil }
    /// Hellos welcomed but not yet ready, at most.
    var maxPendingJoins: Int { max(8, 2 * expectedWorkers) }
    var roundCounter = 0
    /// Requests numbered so far, those unanswered, and those answered lately (TrainingCoordinator+Recovery).
    var requestCounter = 0
    var outstanding: [Int: Outstanding] = [:]
    var answeredRequests: [Int: [UInt64]] = [:]
    /// Requests sent again, answers received twice, and rounds released because the ring lost a piece.
    public internal(set) var resentRequests = 0, duplicateAnswers = 0, stalledRounds = 0
    var ringWatch: [Int: RingWatch] = [:]
    /// Live workers whose model state is current (the others load a checkpoint with their next step).
    var holders: Set<Int> = []
    /// The checkpoint a worker must load with its next step.
    var loadFor: [Int: String] = [:]
    /// The ring addresses last sent to each worker (sent again only when they change).
    var ringSent: [Int: [String]] = [:]
    var hostsSent: [Int: [Int]?] = [:]
    /// The last round every member reached: the workers apply its update before anything else.
    var committedRound: Int? = nil
    /// Bytes through the coordinator's socket, both ways (control messages only, by design).
    public internal(set) var bytesIn = 0, bytesOut = 0
    var saveCounter = 0
    /// When the last checkpoint was committed or failed (the coordinator's monotonic clock; the run's start before).
    var lastCheckpointAt = 0.0
    /// Checkpoints in a row that could not be written (a full disk…), and the last one that was.
    var checkpointFailures = 0
    var lastGoodCheckpoint: (path: String, globalStep: Int)? = nil
    /// Seconds of the last step's slowest worker compute (the rest of the step is communication and waiting).
    var lastComputeSeconds = 0.0
    /// The run's TensorBoard event file (RUN/tensorboard; the coordinator alone writes), nil when off or
    /// after a write failed (warned once; training goes on).
    var events: EventFile?
    /// Draws the maps of a fixed validation sample for a checkpoint (PNG bytes and size), for TensorBoard's
    /// images after each `--log-maps-every` epochs; set by the command line, which can draw (RainPlot).
    public var epochImages: ((String) throws -> (png: [UInt8], width: Int, height: Int))?
    /// Bytes each member of the last round sent over the ring, by ring position.
    var lastRingBytes: [Int] = []
    let probe = String(UInt64.random(in: 1...UInt64.max), radix: 36)
    var trainCount = 0, validCount = 0
    var trainLeadCounts: [Int] = []
    /// Ranks declared dead so far, with the reason (for logs and tests).
    public internal(set) var deaths: [(rank: Int, reason: String)] = []

    struct NotEnoughWorkers: Error { var reason: String }
    enum Event {
        case result(Int, Message), abort(Int, Message), saved(Int, Message)
        /// A new worker said hello under this rank's key: the old incarnation has left the run (see
        /// `pump`); a round or checkpoint it was part of must go on without it.
        case replaced(Int)
    }
    /// Where a joining worker's model state comes from.
    enum StateOrigin: Equatable {
        /// No step taken yet: the seeded initial parameters, which every worker computes itself.
        case seed
        /// Resumed, no step taken yet: this checkpoint.
        case checkpoint(String)
        /// The live workers that hold it (a joiner loads a checkpoint they write first).
        case workers
    }
    var origin = StateOrigin.seed
    /// The run's position, learning rate and scheduler (no parameters: those live with the workers).
    var state: TrainingState!

    /// A worker became live: it holds the state already (seed), loads it with its next message
    /// (resumed run), or waits for the holders to write a checkpoint (`syncJoiners`).
    func joined(_ r: Int) {
        ringSent[r] = nil
        hostsSent[r] = nil
        switch origin {
        case .seed: holders.insert(r)
        case .checkpoint(let path):
            holders.insert(r)
            loadFor[r] = path
        case .workers: break
        }
    }

    /// Live workers holding the current model state, ascending: the members of every round.
    var holding: [Int] { live.filter(holders.contains) }

    /// Declares dead every live member that `owes` an answer and has been silent past the worker timeout
    /// since `start`; returns one of them, if any.
    func declareSilent(_ members: [Int], since start: Double, owes: (Int) -> Bool) -> Int? {
        var dead: Int? = nil
        for r in members
        where live.contains(r) && owes(r)
            && (clock.now - (lastSeen[r] ?? start)) * 1000 > Double(workerTimeoutMs)
        {
            remove(r)
            deaths.append((r, "silent"))
            log("worker \(r) declared dead (silent for \(workerTimeoutMs / 1000) s); \(live.count) live")
            dead = r
        }
        return dead
    }

    /// Removes a worker from the run (dead or sent away).
    func remove(_ r: Int) {
        live.removeAll { $0 == r }
        holders.remove(r)
        loadFor[r] = nil
    }

    public init(
        config: Config, run: RunDirectory, transport: ServerTransport, options: TrainingOptions, expectedWorkers: Int,
        blasThreadsPerWorker: Int = 0, ringAbandoner: RingAbandoner? = nil, clock: Clock = MonotonicClock(),
        runId: UInt64 = .random(in: 1...UInt64.max), log: @escaping (String) -> Void
    ) {
        self.config = config
        self.run = run
        self.transport = transport
        self.options = options
        self.expectedWorkers = max(1, expectedWorkers)
        self.blasThreadsPerWorker = blasThreadsPerWorker
        self.ringAbandoner = ringAbandoner
        self.clock = clock
        self.runId = runId
        self.log = log
    }

    var workerTimeoutMs: Int { Int(options.workerTimeout * 1000) }
    var stepTimeoutMs: Int { Int(options.stepTimeout * 1000) }

    /// A message of this run, tagged with the current membership version (and `round`, for ring steps).
    func frames(
        _ kind: MessageHeader.Kind, phase: MessageHeader.Phase = .none, step: UInt64 = 0, round: Int = 0,
        body: [UInt8] = []
    ) -> Frames {
        Message.frames(
            kind, phase: phase, runId: runId, step: step, membership: membership,
            round: UInt32(truncatingIfNeeded: round), body: body)
    }

    /// Sends through the transport, counting the bytes.
    func send(to peer: [UInt8], _ frames: Frames) throws {
        bytesOut += frames.reduce(0) { $0 + $1.count }
        try transport.send(to: peer, frames)
    }

    /// Counts and logs a refused message, naming the key it came under (nil: the key of the peer's rank).
    func reject(_ why: MessageHeader.Rejection, from peer: [UInt8], key: String? = nil) {
        rejected[why.rawValue, default: 0] += 1
        let key = key ?? peers.firstIndex(of: peer).flatMap { keyOf[$0] } ?? ""
        log(
            """
            rejected a message (\(why.rawValue)) from peer \
            \(peer.map { String($0, radix: 16) }.joined().prefix(16))\(named(key, " under key ")); \
            \(rejected.values.reduce(0, +)) so far
            """
        )
    }

    /// `prefix` and the key's name for a log line (`w3`, or its first characters if the run does not
    /// know it); nothing without a key.
    func named(_ key: String, _ prefix: String) -> String {
        key.isEmpty ? "" : prefix + (keyName(key) ?? String(key.prefix(8)))
    }

    /// Waits up to `timeoutMs` for a result or abort from a live worker. Handles everything else
    /// itself: hellos (welcome, a rank), readiness (a joining worker takes part from the next round),
    /// heartbeats (liveness); refuses and counts what does not validate. Returns nil early after a
    /// hello or a ready, so callers re-check their conditions (e.g. "all workers joined").
    func pump(timeoutMs: Int) throws -> Event? {
        let end = clock.now + Double(timeoutMs) / 1000
        while true {
            let left = Int(((end - clock.now) * 1000).rounded(.up))
            guard left > 0, let (peer, incoming, key) = try transport.receive(timeoutMs: left) else { return nil }
            bytesIn += incoming.reduce(0) { $0 + $1.count }
            let rank = peers.firstIndex(of: peer)
            do {
                // Nothing a worker sends carries a payload.
                let m = try Message.decode(
                    incoming, runId: rank == nil && isHello(incoming) ? nil : runId, maxPayloadBytes: 0)
                // A rank is bound to the key it said hello under: its connection (routing id) cannot be
                // taken over by a peer holding another worker's key.
                if let rank, keyOf[rank] != key { throw MessageHeader.Rejection.wrongKey }
                switch (m.header.kind, rank) {
                case (.hello, nil):
                    guard let hello = try? m.decodeBody(Body.Hello.self), hello.version == Int(MessageHeader.version)
                    else { throw MessageHeader.Rejection.badVersion }
                    // Welcomed peers that never become ready are forgotten after the join timeout; at most
                    // `maxPendingJoins` wait at once, so hellos alone cannot make the coordinator hold much.
                    for r in joining where clock.now - (lastSeen[r] ?? 0) > options.joinTimeout { joining.remove(r) }
                    guard joining.count < maxPendingJoins else { throw MessageHeader.Rejection.tooManyJoins }
                    // One key, one worker: a hello under a key a rank holds is that worker restarted (by hand,
                    // before its death was noticed) or a second process given the same key. Either way the
                    // newcomer takes over and the old incarnation leaves.
                    let previous =
                        key.isEmpty
                        ? nil
                        : keyOf.first { $0.value == key && (live.contains($0.key) || joining.contains($0.key)) }?.key
                    let taken = live.count + joining.count - (previous == nil ? 0 : 1)
                    if let max = options.maxWorkers, taken >= max {
                        log(
                            "refused worker from \(hello.host) (pid \(hello.pid)): \(max) worker(s) already "
                                + "(--max-workers)"
                        )
                        try? send(
                            to: peer,
                            frames(
                                .abort,
                                body: Array("the run is full: it takes at most \(max) worker(s) (--max-workers)".utf8)))
                        return nil
                    }
                    let r = peers.count
                    peers.append(peer)
                    hostOf[r] = hello.host
                    keyOf[r] = key
                    tokens[r] = String(UInt64.random(in: 1...UInt64.max), radix: 36)
                    joining.insert(r)
                    lastSeen[r] = clock.now
                    try send(
                        to: peer,
                        frames(
                            .welcome,
                            body: Body.encode(
                                Body.Welcome(
                                    rank: r, config: config.yaml(), parameterCount: trainParamsCount,
                                    blasThreads: blasThreadsPerWorker, checkpoints: run.checkpointsPath,
                                    probe: probe, token: tokens[r]!))))
                    log("worker \(r) connected from \(hello.host) (pid \(hello.pid)\(named(key, ", key ")))")
                    guard let old = previous else { return nil }
                    tokens[old] = nil
                    keyOf[old] = nil  // its connection's messages are refused from now on
                    let why = "another worker connected with this worker's key: each worker needs its own key directory"
                    try? send(to: peers[old], frames(.shutdown, body: Array(why.utf8)))
                    log("worker \(old) replaced by worker \(r), which said hello under its key")
                    if joining.remove(old) != nil { return nil }
                    remove(old)
                    deaths.append((old, "replaced"))
                    return .replaced(old)
                case (.heartbeat, _):
                    let hb = try m.decodeBody(Body.Heartbeat.self)
                    guard let token = tokens[hb.rank], hb.token == token, keyOf[hb.rank] == key else {
                        throw MessageHeader.Rejection.forgedHeartbeat
                    }
                    lastSeen[hb.rank] = clock.now
                    if live.contains(hb.rank) { heard(hb, from: hb.rank) }
                    // A worker left out (declared dead, evicted, or too slow to join) that is alive after all
                    // (a network partition healed, SIGCONT): told to leave rather than left idling forever.
                    if !live.contains(hb.rank) && !joining.contains(hb.rank) {
                        if leftOut.insert(hb.rank).inserted {
                            log("worker \(hb.rank) is back after it was left out; told to leave (restart it to rejoin)")
                        }
                        // It may be blocked in its last ring round, which the others left long ago.
                        if let round = lastRound[hb.rank], let address = ringAddress[hb.rank] {
                            ringAbandoner?.abandon(runId: runId, round: round, step: 0, members: [(address, key)])
                        }
                        let why = "this worker was left out of the run (silent too long); restart it to rejoin"
                        try? send(to: peers[hb.rank], frames(.shutdown, body: Array(why.utf8)))
                        return nil
                    }
                    // Answered, so a worker can tell a dead coordinator from a busy one.
                    try? send(to: peer, frames(.heartbeat, body: m.body))
                case (.ready, let r?) where joining.contains(r):
                    let ready = try m.decodeBody(Body.Ready.self)
                    joining.remove(r)
                    lastSeen[r] = clock.now
                    if trainCount > 0 && (ready.trainSamples != trainCount || ready.validSamples != validCount) {
                        log(
                            """
                            worker \(r) sees different data (\(ready.trainSamples)/\(ready.validSamples) samples, \
                            expected \(trainCount)/\(validCount)); sent away
                            """
                        )
                        try? send(to: peer, frames(.shutdown))
                    } else if !ready.sharesRunDirectory {
                        log(
                            """
                            worker \(r) cannot see the run directory \(run.url.path) (no probe file there); sent \
                            away: every worker writes its slice of each checkpoint there, so put the run directory \
                            on a filesystem all hosts share, at the same path
                            """
                        )
                        try? send(to: peer, frames(.shutdown))
                    } else {
                        if trainCount == 0 {
                            trainCount = ready.trainSamples
                            validCount = ready.validSamples
                            trainLeadCounts = ready.trainLeadCounts ?? [trainCount]
                        }
                        ringAddress[r] = ready.ringAddress
                        live = (live + [r]).sorted()
                        joined(r)
                        log("worker \(r) ready; \(live.count) live")
                    }
                    return nil
                case (.result, let r?) where live.contains(r):
                    lastSeen[r] = clock.now
                    if accept(answer: requestNumber(m), header: m.header, from: r) { return .result(r, m) }
                case (.saved, let r?) where live.contains(r):
                    lastSeen[r] = clock.now
                    if accept(answer: requestNumber(m), header: m.header, from: r) { return .saved(r, m) }
                case (.abort, let r?) where live.contains(r) || joining.contains(r):
                    return .abort(r, m)
                case (_, let r?) where !live.contains(r) && !joining.contains(r):
                    // A worker already declared dead (e.g. resumed after SIGSTOP): tell it to leave.
                    try? send(to: peer, frames(.shutdown))
                    throw MessageHeader.Rejection.unexpected
                default:
                    throw MessageHeader.Rejection.unexpected
                }
            } catch let r as MessageHeader.Rejection { reject(r, from: peer, key: key) }
        }
    }

    private func isHello(_ frames: Frames) -> Bool {
        (try? MessageHeader.decode(frames.first ?? []))?.kind == .hello
    }

    var trainParamsCount = 0
}
