import Foundation
import RainConfig
import RainData
import RainModel
import RainProtocol
import RainSupport

/// The coordinator (DESIGN.md §5 "roles"): owns configuration, sample order, the parameters of
/// record, the optimiser step, validation aggregation, the LR scheduler, metrics and checkpoints.
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
    var live: [Int] = []  // ranks that take part in rounds, ascending
    var joining: Set<Int> = []  // welcomed, index not yet built
    var lastSeen: [Int: Double] = [:]
    var ringAddress: [Int: String] = [:]
    var roundCounter = 0
    private var trainCount = 0, validCount = 0
    private var trainLeadCounts: [Int] = []
    /// Ranks declared dead so far, with the reason (for logs and tests).
    public internal(set) var deaths: [(rank: Int, reason: String)] = []

    struct NotEnoughWorkers: Error { var reason: String }
    enum Event { case result(Int, Message), abort(Int, Message) }

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

    func reject(_ why: MessageHeader.Rejection, from peer: [UInt8]) {
        rejected[why.rawValue, default: 0] += 1
        log(
            """
            rejected a message (\(why.rawValue)) from peer \
            \(peer.map { String($0, radix: 16) }.joined().prefix(16)); \(rejected.values.reduce(0, +)) so far
            """
        )
    }

    /// Waits up to `timeoutMs` for a result or abort from a live worker. Handles everything else
    /// itself: hellos (welcome, a rank), readiness (a joining worker takes part from the next round),
    /// heartbeats (liveness); refuses and counts what does not validate. Returns nil early after a
    /// hello or a ready, so callers re-check their conditions (e.g. "all workers joined").
    func pump(timeoutMs: Int) throws -> Event? {
        let end = clock.now + Double(timeoutMs) / 1000
        while true {
            let left = Int(((end - clock.now) * 1000).rounded(.up))
            guard left > 0, let (peer, frames) = try transport.receive(timeoutMs: left) else { return nil }
            let rank = peers.firstIndex(of: peer)
            do {
                let m = try Message.decode(
                    frames, runId: rank == nil && isHello(frames) ? nil : runId,
                    maxPayloadBytes: 4 * (trainParamsCount + 1024))
                switch (m.header.kind, rank) {
                case (.hello, nil):
                    guard let hello = try? m.decodeBody(Body.Hello.self), hello.version == Int(MessageHeader.version)
                    else { throw MessageHeader.Rejection.badVersion }
                    let r = peers.count
                    peers.append(peer)
                    joining.insert(r)
                    lastSeen[r] = clock.now
                    try transport.send(
                        to: peer,
                        Message.frames(
                            .welcome, runId: runId,
                            body: Body.encode(
                                Body.Welcome(
                                    rank: r, config: config.yaml(), parameterCount: trainParamsCount,
                                    blasThreads: blasThreadsPerWorker))))
                    log("worker \(r) connected from \(hello.host) (pid \(hello.pid))")
                    return nil
                case (.heartbeat, _):
                    let hb = try m.decodeBody(Body.Heartbeat.self)
                    if hb.rank >= 0 && hb.rank < peers.count { lastSeen[hb.rank] = clock.now }
                    // Answered, so a worker can tell a dead coordinator from a busy one.
                    try? transport.send(to: peer, Message.frames(.heartbeat, runId: runId, body: m.body))
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
                        try? transport.send(to: peer, Message.frames(.shutdown, runId: runId))
                    } else {
                        if trainCount == 0 {
                            trainCount = ready.trainSamples
                            validCount = ready.validSamples
                            trainLeadCounts = ready.trainLeadCounts ?? [trainCount]
                        }
                        ringAddress[r] = ready.ringAddress
                        live = (live + [r]).sorted()
                        log("worker \(r) ready; \(live.count) live")
                    }
                    return nil
                case (.result, let r?) where live.contains(r):
                    lastSeen[r] = clock.now
                    return .result(r, m)
                case (.abort, let r?) where live.contains(r) || joining.contains(r):
                    return .abort(r, m)
                case (_, let r?) where !live.contains(r) && !joining.contains(r):
                    // A worker already declared dead (e.g. resumed after SIGSTOP): tell it to leave.
                    try? transport.send(to: peer, Message.frames(.shutdown, runId: runId))
                    throw MessageHeader.Rejection.unexpected
                default:
                    throw MessageHeader.Rejection.unexpected
                }
            } catch let r as MessageHeader.Rejection { reject(r, from: peer) }
        }
    }

    private func isHello(_ frames: Frames) -> Bool {
        (try? MessageHeader.decode(frames.first ?? []))?.kind == .hello
    }

    private var trainParamsCount = 0

    /// Runs (or resumes) training to the configured number of epochs.
    public func train(resume: Bool) throws -> Summary {
        // The kernel this process's OpenBLAS runs (local workers inherit its choice; each worker logs its own).
        let kernel = BLASKernel.note.isEmpty ? "OpenBLAS kernel \(BLAS.coreName)" : BLASKernel.note
        try ("# \(kernel)\n" + config.yaml()).write(toFile: run.configPath, atomically: true, encoding: .utf8)
        run.appendMetrics(["kind": "start", "blas_kernel": BLAS.coreName, "blas_kernel_note": kernel, "resume": resume])
        // The model's shape follows from the configuration alone, so it is known before any worker joins.
        let shape = try ModelShape(config: config)
        let layout = ParameterLayout(shape)
        trainParamsCount = layout.count
        // 1. Workers join: hello → welcome (rank, resolved configuration) → ready (their sample counts).
        log("waiting for \(expectedWorkers) worker(s)")
        let joinEnd = clock.now + options.joinTimeout
        while live.count < expectedWorkers {
            let left = Int((joinEnd - clock.now) * 1000)
            if left <= 0 {
                throw SwiftRainError(
                    "workers",
                    "only \(live.count) of \(expectedWorkers) worker(s) ready within \(Int(options.joinTimeout)) s",
                    hint:
                        """
                        start the workers (swiftrain-worker --connect …) or lower --workers/--expect-workers; the \
                        workers' own output says why one failed
                        """
                )
            }
            if case .abort(let r, let m)? = try pump(timeoutMs: left) {
                throw SwiftRainError(
                    "worker \(r)", "failed to start", found: String(decoding: m.body, as: UTF8.self),
                    hint: "fix the problem it reports (usually the data or normalisation paths on that host)")
            }
        }
        guard trainCount > 0, validCount > 0 else {
            throw SwiftRainError(
                "data", "no \(trainCount == 0 ? "train" : "valid") samples",
                hint: "`swiftrain inspect --config C` shows why samples are dropped")
        }

        // 2. Parameters and optimiser: fresh, or from the run's last checkpoint.
        var params = FlatBuffer.initialParameters(layout, seed: UInt64(config.seed))
        var m = FlatBuffer(count: layout.count), v = FlatBuffer(count: layout.count)
        var state = TrainingState(
            layout: layout.entries, configHash: config.hash, epoch: 0, step: 0, globalStep: 0,
            adam: Adam(lr: config.lr, beta1: config.beta1, beta2: config.beta2, eps: config.eps),
            scheduler: PlateauScheduler(
                factor: config.lrFactor, patience: config.lrPatience, threshold: config.lrThreshold))
        if resume {
            (state, params, m, v) = try Checkpoint.read(path: run.lastCheckpoint, layout: layout)
            if state.configHash != config.hash {
                log(
                    """
                    warning: the configuration differs from the checkpoint's (hash \(state.configHash) → \
                    \(config.hash))
                    """
                )
            }
            log("resuming at epoch \(state.epoch), step \(state.step) (global step \(state.globalStep))")
        }
        let grads = FlatBuffer(count: layout.count)
        let stepsPerEpoch =
            options.sharding == .locality
            ? Sharding.LocalityPlan(
                segments: trainLeadCounts, workers: expectedWorkers, batch: config.batchSize, seed: config.seed,
                epoch: 0
            ).stepsPerEpoch
            : Sharding.stepsPerEpoch(count: trainCount, batch: config.batchSize)
        var stepsThisRun = 0, lastVal: Double? = nil
        let progress = Progress(
            plainEverySeconds: options.progressEvery, write: { FileHandle.standardError.write(Data($0.utf8)) })
        let plainLog = log
        log = {
            progress.clearLine()
            plainLog($0)
        }
        defer { log = plainLog }
        let totalSteps = config.epochs * stepsPerEpoch

        func save(_ path: String) throws { try Checkpoint.write(path: path, state: state, params: params, m: m, v: v) }

        // 3. Epochs: seeded permutation → global batches → contiguous shards; star averaging.
        while state.epoch < config.epochs {
            let perm = Sharding.permutation(count: trainCount, seed: config.seed, epoch: state.epoch)
            // Locality blocks are cut for the expected worker count, so they do not move when a worker dies or joins.
            let plan =
                options.sharding == .locality
                ? Sharding.LocalityPlan(
                    segments: trainLeadCounts, workers: expectedWorkers, batch: config.batchSize,
                    seed: config.seed, epoch: state.epoch) : nil
            while state.step < (plan?.stepsPerEpoch ?? stepsPerEpoch) {
                var shards = Sharding.shards(
                    Sharding.batch(perm, step: state.step, size: config.batchSize), workers: live.count)
                if let plan {
                    shards = plan.shards(step: state.step, batch: config.batchSize)
                    if shards.count != live.count {
                        shards = Sharding.shards(shards.flatMap { $0 }, workers: live.count)
                    }
                }
                let batchCount = shards.reduce(0) { $0 + $1.count }
                let t0 = clock.now
                let (loss, n): (Double, Int)
                do {
                    (loss, n) = try runStep(
                        .train, shards: shards, globalBatch: batchCount,
                        epoch: state.epoch, step: state.globalStep, params: params, sum: grads)
                } catch let e as NotEnoughWorkers {
                    try save(run.lastCheckpoint)
                    shutdown()
                    throw SwiftRainError(
                        "workers", "fewer than --min-workers \(options.minWorkers) live worker(s): \(e.reason)",
                        found: "checkpoint written at epoch \(state.epoch), step \(state.step)",
                        hint: "restart workers and resume with: swiftrain train --resume \(run.url.path)")
                }
                guard grads.buffer.allSatisfy({ $0.isFinite }) else {
                    throw SwiftRainError(
                        "step \(state.globalStep)", "non-finite averaged gradient",
                        hint: "lower lr; the last checkpoint is intact")
                }
                state.adam.update(params: params, grads: grads, m: m, v: v)
                state.step += 1
                state.globalStep += 1
                stepsThisRun += 1
                let seconds = clock.now - t0
                run.appendMetrics([
                    "kind": "step", "epoch": state.epoch, "step": state.step, "global_step": state.globalStep,
                    "loss": loss / Double(n), "lr": state.adam.lr, "samples": n, "seconds": seconds,
                    "compute_seconds": lastComputeSeconds, "wait_seconds": max(0, seconds - lastComputeSeconds),
                ])
                let remaining =
                    options.maxSteps > 0
                    ? min(options.maxSteps - stepsThisRun, totalSteps - state.globalStep)
                    : totalSteps - state.globalStep
                progress.step(
                    epoch: state.epoch, epochs: config.epochs, step: state.step,
                    stepsPerEpoch: plan?.stepsPerEpoch ?? stepsPerEpoch,
                    loss: loss / Double(n), samples: n, remainingSteps: remaining)
                if options.checkpointEvery > 0 && state.globalStep % options.checkpointEvery == 0 {
                    try save(run.lastCheckpoint)
                }
                if stopRequested() || (options.maxSteps > 0 && stepsThisRun >= options.maxSteps) {
                    try save(run.lastCheckpoint)
                    log(
                        """
                        stopped at epoch \(state.epoch), step \(state.step); checkpoint written to \
                        \(run.lastCheckpoint); resume with: swiftrain train --resume \(run.url.path)
                        """
                    )
                    shutdown()
                    return Summary(globalStep: state.globalStep, stoppedEarly: true, lastValLoss: lastVal)
                }
            }
            // Validation, sharded across the workers; it drives the scheduler.
            let valid = Array(0..<validCount)
            let r: Body.Result
            do {
                r = try runValidation(
                    Sharding.shards(valid, workers: live.count), epoch: state.epoch, step: state.globalStep,
                    params: params)
            } catch let e as NotEnoughWorkers {
                try save(run.lastCheckpoint)
                shutdown()
                throw SwiftRainError(
                    "workers",
                    "fewer than --min-workers \(options.minWorkers) live worker(s) during validation: \(e.reason)",
                    found: "checkpoint written at the end of epoch \(state.epoch)'s training steps",
                    hint: "restart workers and resume with: swiftrain train --resume \(run.url.path)")
            }
            let valLoss = r.lossSum / Double(r.count)
            lastVal = valLoss
            let newLR = state.scheduler.step(valLoss, lr: state.adam.lr)
            var rmse: [String: Double] = [:]
            for (i, lead) in try SampleSpec(config).leads.enumerated() where r.leadWeight[i] > 0 {
                rmse["\(lead / 3600)"] = (r.leadSquaredError[i] / r.leadWeight[i]).squareRoot()
            }
            run.appendMetrics([
                "kind": "valid", "epoch": state.epoch, "global_step": state.globalStep, "val_loss": valLoss,
                "rmse": rmse,
                "lr": state.adam.lr, "lr_next": newLR, "samples": r.count,
            ])
            log(
                "epoch \(state.epoch + 1) val_loss \(String(format: "%.5f", valLoss)) rmse "
                    + rmse.sorted { Int($0.key)! < Int($1.key)! }.map {
                        "\($0.key)h \(String(format: "%.4f", $0.value))"
                    }.joined(separator: " ")
                    + (newLR != state.adam.lr ? "; lr \(state.adam.lr) → \(newLR)" : ""))
            state.adam.lr = newLR
            state.epoch += 1
            state.step = 0
            let isBest = valLoss < (state.bestValLoss ?? .infinity)
            if isBest { state.bestValLoss = valLoss }
            try save(run.lastCheckpoint)
            if isBest { try save(run.bestCheckpoint) }
        }
        shutdown()
        run.markFinished(globalStep: state.globalStep, valLoss: lastVal)
        return Summary(globalStep: state.globalStep, stoppedEarly: false, lastValLoss: lastVal)
    }

    /// Sends each worker its shard with the current parameters and sums the gradients in rank order.
    /// Seconds of the last step's slowest worker compute (the rest of the step is communication and waiting).
    private(set) var lastComputeSeconds = 0.0

    private func runStep(
        _ phase: MessageHeader.Phase, shards: [[Int]], globalBatch: Int, epoch: Int, step: Int,
        params: FlatBuffer, sum: FlatBuffer
    ) throws -> (Double, Int) {
        let results =
            options.allreduce == .ring && phase == .train
            ? try dispatchRing(shards: shards, globalBatch: globalBatch, epoch: epoch, step: step, params: params)
            : try dispatch(
                phase, shards: shards, globalBatch: globalBatch, epoch: epoch, step: step, params: params,
                timeoutMs: stepTimeoutMs)
        sum.zero()
        var loss = 0.0, n = 0
        lastComputeSeconds = results.map(\.0.computeSeconds).max() ?? 0
        for (shard, (r, g)) in results.enumerated() {
            loss += r.lossSum
            n += r.count
            // ring: only the first worker returns the (already summed) gradient
            if options.allreduce == .ring && g.isEmpty { continue }
            guard g.count == sum.count else {
                throw SwiftRainError(
                    "shard \(shard)", "gradient of the wrong size", expected: "\(sum.count)", found: "\(g.count)",
                    hint: "all processes must run the same SwiftRain version and configuration")
            }
            for j in 0..<g.count { sum.pointer[j] += g[j] }
        }
        return (loss, n)
    }

    private func runValidation(_ shards: [[Int]], epoch: Int, step: Int, params: FlatBuffer) throws -> Body.Result {
        let longest = shards.map(\.count).max() ?? 0
        let results = try dispatch(
            .valid, shards: shards, globalBatch: 0, epoch: epoch, step: step, params: params,
            timeoutMs: max(stepTimeoutMs, stepTimeoutMs / max(1, config.batchSize) * longest * 4))
        var total = Body.Result(step: step, count: 0, lossSum: 0, leadSquaredError: [], leadWeight: [])
        for (r, _) in results {
            total.count += r.count
            total.lossSum += r.lossSum
            if total.leadWeight.isEmpty {
                total.leadSquaredError = r.leadSquaredError
                total.leadWeight = r.leadWeight
                continue
            }
            for i in r.leadWeight.indices {
                total.leadSquaredError[i] += r.leadSquaredError[i]
                total.leadWeight[i] += r.leadWeight[i]
            }
        }
        return total
    }

    private func shutdown() {
        for r in live + joining.sorted() { try? transport.send(to: peers[r], Message.frames(.shutdown, runId: runId)) }
    }
}
