import Foundation

/// The coordinator (DESIGN.md §5 "roles"): owns configuration, sample order, the parameters of
/// record, the optimiser step, validation aggregation, the LR scheduler, metrics and checkpoints.
/// It talks to workers only through a `ServerTransport`.
public final class TrainingCoordinator {
    public struct Options {
        public var workers: Int
        public var blasThreadsPerWorker: Int = 1
        public var joinTimeoutMs: Int = 120_000
        /// Deadline for one step's results (a validation pass gets this per worker share of samples × 4).
        public var stepTimeoutMs: Int = 600_000
        /// Write last.ckpt every this many steps too (0: at epoch ends only).
        public var checkpointEvery: Int = 0
        /// Stop (with a checkpoint) after this many optimiser steps in this process (0: no limit); for tests.
        public var maxSteps: Int = 0
        public init(workers: Int) { self.workers = workers }
    }
    public struct Summary { public var globalStep: Int; public var stoppedEarly: Bool; public var lastValLoss: Double? }

    public let config: Config
    public let run: RunDirectory
    public let options: Options
    let transport: ServerTransport
    let runId: UInt64
    let log: (String) -> Void
    /// Set from a signal handler: checkpoint after the current step and return.
    public var stopRequested: () -> Bool = { false }
    /// Messages refused, by reason.
    public private(set) var rejected: [String: Int] = [:]

    private var peers: [[UInt8]] = []  // rank → transport id
    private var trainCount = 0, validCount = 0

    public init(config: Config, run: RunDirectory, transport: ServerTransport, options: Options, runId: UInt64 = .random(in: 1...UInt64.max), log: @escaping (String) -> Void) {
        self.config = config; self.run = run; self.transport = transport; self.options = options; self.runId = runId; self.log = log
    }

    private func reject(_ why: MessageHeader.Rejection, from peer: [UInt8]) {
        rejected[why.rawValue, default: 0] += 1
        log("rejected a message (\(why.rawValue)) from peer \(peer.map { String($0, radix: 16) }.joined().prefix(16)); \(rejected.values.reduce(0, +)) so far")
    }

    /// Receives the next valid message of `kind` from a known worker (or a hello from anyone), counting the rest.
    private func receive(_ kinds: Set<MessageHeader.Kind>, deadlineMs: Int) throws -> (rank: Int?, peer: [UInt8], message: Message)? {
        let end = Date().addingTimeInterval(Double(deadlineMs) / 1000)
        while true {
            let left = Int(end.timeIntervalSinceNow * 1000)
            if left <= 0 { return nil }
            guard let (peer, frames) = try transport.receive(timeoutMs: min(left, 1000)) else { if stopRequested() { return nil }; continue }
            let rank = peers.firstIndex(of: peer)
            do {
                let m = try Message.decode(frames, runId: rank == nil ? nil : runId, maxPayloadBytes: 4 * (trainParamsCount + 1024))
                guard kinds.contains(m.header.kind) else { throw MessageHeader.Rejection.unexpected }
                if m.header.kind != .hello && rank == nil { throw MessageHeader.Rejection.foreignRun }
                return (rank, peer, m)
            } catch let r as MessageHeader.Rejection { reject(r, from: peer) }
        }
    }
    private var trainParamsCount = 1 << 26

    /// Runs (or resumes) training to the configured number of epochs.
    public func train(resume: Bool) throws -> Summary {
        try config.yaml().write(toFile: run.configPath, atomically: true, encoding: .utf8)
        // 1. Workers join: hello → welcome (rank, resolved configuration) → ready (their sample counts).
        log("waiting for \(options.workers) worker(s)")
        while peers.count < options.workers {
            guard let (_, peer, m) = try receive([.hello], deadlineMs: options.joinTimeoutMs) else {
                throw SwiftRainError("workers", "only \(peers.count) of \(options.workers) worker(s) connected within \(options.joinTimeoutMs / 1000) s",
                                     hint: "start the workers (swiftrain-worker --connect …) or lower --workers/--expect-workers")
            }
            guard let hello = try? m.decodeBody(Body.Hello.self), hello.version == Int(MessageHeader.version) else { reject(.badVersion, from: peer); continue }
            if peers.contains(peer) { continue }
            let rank = peers.count
            peers.append(peer)
            try transport.send(to: peer, Message.frames(.welcome, runId: runId, body: Body.encode(
                Body.Welcome(rank: rank, config: config.yaml(), parameterCount: 0, blasThreads: options.blasThreadsPerWorker))))
            log("worker \(rank) joined from \(hello.host) (pid \(hello.pid))")
        }
        var counts: [Body.Ready] = []
        while counts.count < peers.count {
            guard let (_, peer, m) = try receive([.ready, .abort], deadlineMs: options.joinTimeoutMs) else {
                throw SwiftRainError("workers", "not every worker became ready within \(options.joinTimeoutMs / 1000) s", hint: "check the workers' output; they map the data and build the sample index first")
            }
            if m.header.kind == .abort {
                throw SwiftRainError("worker \(peers.firstIndex(of: peer)!)", "failed to start", found: String(decoding: m.body, as: UTF8.self), hint: "fix the problem it reports (usually the data or normalisation paths on that host)")
            }
            counts.append(try m.decodeBody(Body.Ready.self))
        }
        guard Set(counts.map(\.trainSamples)).count == 1, Set(counts.map(\.validSamples)).count == 1 else {
            throw SwiftRainError("workers", "workers see different data", found: counts.map { "\($0.trainSamples)/\($0.validSamples)" }.joined(separator: ", "),
                                 hint: "give every worker the same dataset and configuration")
        }
        trainCount = counts[0].trainSamples; validCount = counts[0].validSamples
        guard trainCount > 0, validCount > 0 else {
            throw SwiftRainError("data", "no \(trainCount == 0 ? "train" : "valid") samples", hint: "`swiftrain inspect --config C` shows why samples are dropped")
        }

        // 2. Parameters and optimiser: fresh, or from the run's last checkpoint.
        let shape = try config.modelShape()
        let layout = ParameterLayout(shape)
        trainParamsCount = layout.count
        var params = FlatBuffer.initialParameters(layout, seed: UInt64(config.seed))
        var m = FlatBuffer(count: layout.count), v = FlatBuffer(count: layout.count)
        var state = TrainingState(layout: layout.entries, configHash: config.hash, epoch: 0, step: 0, globalStep: 0,
                                  adam: Adam(lr: config.lr, beta1: config.beta1, beta2: config.beta2, eps: config.eps),
                                  scheduler: PlateauScheduler(factor: config.lrFactor, patience: config.lrPatience, threshold: config.lrThreshold))
        if resume {
            (state, params, m, v) = try Checkpoint.read(path: run.lastCheckpoint, layout: layout)
            if state.configHash != config.hash { log("warning: the configuration differs from the checkpoint's (hash \(state.configHash) → \(config.hash))") }
            log("resuming at epoch \(state.epoch), step \(state.step) (global step \(state.globalStep))")
        }
        let grads = FlatBuffer(count: layout.count)
        let stepsPerEpoch = Sharding.stepsPerEpoch(count: trainCount, batch: config.batchSize)
        var stepsThisRun = 0, lastVal: Double? = nil
        let started = Date()

        func save(_ path: String) throws { try Checkpoint.write(path: path, state: state, params: params, m: m, v: v) }

        // 3. Epochs: seeded permutation → global batches → contiguous shards; star averaging.
        while state.epoch < config.epochs {
            let perm = Sharding.permutation(count: trainCount, seed: config.seed, epoch: state.epoch)
            while state.step < stepsPerEpoch {
                let batch = Sharding.batch(perm, step: state.step, size: config.batchSize)
                let t0 = Date()
                let (loss, n) = try runStep(.train, shards: Sharding.shards(batch, workers: peers.count), globalBatch: batch.count,
                                            epoch: state.epoch, step: state.globalStep, params: params, sum: grads)
                guard grads.buffer.allSatisfy({ $0.isFinite }) else {
                    throw SwiftRainError("step \(state.globalStep)", "non-finite averaged gradient", hint: "lower lr; the last checkpoint is intact")
                }
                state.adam.update(params: params, grads: grads, m: m, v: v)
                state.step += 1; state.globalStep += 1; stepsThisRun += 1
                run.appendMetrics(["kind": "step", "epoch": state.epoch, "step": state.step, "global_step": state.globalStep,
                                   "loss": loss / Double(n), "lr": state.adam.lr, "samples": n, "seconds": Date().timeIntervalSince(t0)])
                let rate = Double(stepsThisRun * config.batchSize) / Date().timeIntervalSince(started)
                log("epoch \(state.epoch + 1)/\(config.epochs) step \(state.step)/\(stepsPerEpoch) loss \(String(format: "%.5f", loss / Double(n))) \(String(format: "%.1f", rate)) samples/s")
                if options.checkpointEvery > 0 && state.globalStep % options.checkpointEvery == 0 { try save(run.lastCheckpoint) }
                if stopRequested() || (options.maxSteps > 0 && stepsThisRun >= options.maxSteps) {
                    try save(run.lastCheckpoint)
                    log("stopped at epoch \(state.epoch), step \(state.step); checkpoint written to \(run.lastCheckpoint); resume with: swiftrain train --resume \(run.url.path)")
                    shutdown()
                    return Summary(globalStep: state.globalStep, stoppedEarly: true, lastValLoss: lastVal)
                }
            }
            // Validation, sharded across the workers; it drives the scheduler.
            let valid = Array(0..<validCount)
            let r = try runValidation(Sharding.shards(valid, workers: peers.count), epoch: state.epoch, step: state.globalStep, params: params)
            let valLoss = r.lossSum / Double(r.count)
            lastVal = valLoss
            let newLR = state.scheduler.step(valLoss, lr: state.adam.lr)
            var rmse: [String: Double] = [:]
            for (i, lead) in try SampleSpec(config).leads.enumerated() where r.leadWeight[i] > 0 {
                rmse["\(lead / 3600)"] = (r.leadSquaredError[i] / r.leadWeight[i]).squareRoot()
            }
            run.appendMetrics(["kind": "valid", "epoch": state.epoch, "global_step": state.globalStep, "val_loss": valLoss, "rmse": rmse,
                               "lr": state.adam.lr, "lr_next": newLR, "samples": r.count])
            log("epoch \(state.epoch + 1) val_loss \(String(format: "%.5f", valLoss)) rmse " + rmse.sorted { Int($0.key)! < Int($1.key)! }.map { "\($0.key)h \(String(format: "%.4f", $0.value))" }.joined(separator: " ")
                + (newLR != state.adam.lr ? "; lr \(state.adam.lr) → \(newLR)" : ""))
            state.adam.lr = newLR
            state.epoch += 1; state.step = 0
            let isBest = valLoss < (state.bestValLoss ?? .infinity)
            if isBest { state.bestValLoss = valLoss }
            try save(run.lastCheckpoint)
            if isBest { try save(run.bestCheckpoint) }
        }
        shutdown()
        return Summary(globalStep: state.globalStep, stoppedEarly: false, lastValLoss: lastVal)
    }

    /// Sends each worker its shard with the current parameters and sums the gradients in rank order.
    private func runStep(_ phase: MessageHeader.Phase, shards: [[Int]], globalBatch: Int, epoch: Int, step: Int,
                         params: FlatBuffer, sum: FlatBuffer) throws -> (Double, Int) {
        let results = try dispatch(phase, shards: shards, globalBatch: globalBatch, epoch: epoch, step: step, params: params, timeoutMs: options.stepTimeoutMs)
        sum.zero()
        var loss = 0.0, n = 0
        for (rank, (r, g)) in results.enumerated() {
            guard g.count == sum.count else { throw SwiftRainError("worker \(rank)", "gradient of the wrong size", expected: "\(sum.count)", found: "\(g.count)", hint: "all processes must run the same SwiftRain version and configuration") }
            for j in 0..<g.count { sum.pointer[j] += g[j] }
            loss += r.lossSum; n += r.count
        }
        return (loss, n)
    }

    private func runValidation(_ shards: [[Int]], epoch: Int, step: Int, params: FlatBuffer) throws -> Body.Result {
        let longest = shards.map(\.count).max() ?? 0
        let results = try dispatch(.valid, shards: shards, globalBatch: 0, epoch: epoch, step: step, params: params,
                                   timeoutMs: max(options.stepTimeoutMs, options.stepTimeoutMs / max(1, config.batchSize) * longest * 4))
        var total = Body.Result(step: step, count: 0, lossSum: 0, leadSquaredError: [], leadWeight: [])
        for (r, _) in results {
            total.count += r.count; total.lossSum += r.lossSum
            if total.leadWeight.isEmpty { total.leadSquaredError = r.leadSquaredError; total.leadWeight = r.leadWeight; continue }
            for i in r.leadWeight.indices { total.leadSquaredError[i] += r.leadSquaredError[i]; total.leadWeight[i] += r.leadWeight[i] }
        }
        return total
    }

    /// One round: a step message per worker, then one valid result from each, by rank.
    private func dispatch(_ phase: MessageHeader.Phase, shards: [[Int]], globalBatch: Int, epoch: Int, step: Int,
                          params: FlatBuffer, timeoutMs: Int) throws -> [(Body.Result, [Float])] {
        let payload = UnsafeBufferPointer(params.buffer)
        for (rank, peer) in peers.enumerated() {
            let body = Body.Step(epoch: epoch, step: step, samples: shards[rank], globalBatch: globalBatch, hasParameters: true)
            try transport.send(to: peer, Message.frames(.step, phase: phase, runId: runId, step: UInt64(step), body: Body.encode(body), payload: payload))
        }
        var results = [(Body.Result, [Float])?](repeating: nil, count: peers.count)
        while results.contains(where: { $0 == nil }) {
            guard let (rank, peer, m) = try receive([.result, .abort], deadlineMs: timeoutMs), let rank else {
                let missing = results.indices.filter { results[$0] == nil }
                throw SwiftRainError("workers \(missing)", "no result for step \(step) within \(timeoutMs / 1000) s",
                                     hint: "a worker died or hangs; resume from the last checkpoint with: swiftrain train --resume \(run.url.path)")
            }
            if m.header.kind == .abort {
                throw SwiftRainError("worker \(rank)", "aborted", found: String(decoding: m.body, as: UTF8.self), hint: "fix what it reports, then resume with: swiftrain train --resume \(run.url.path)")
            }
            guard m.header.step == UInt64(step), m.header.phase == phase, results[rank] == nil else { reject(.unexpected, from: peer); continue }
            guard m.payload.allSatisfy({ $0.isFinite }) else { reject(.nonFinite, from: peer); continue }
            guard let r = try? m.decodeBody(Body.Result.self) else { reject(.malformed, from: peer); continue }
            results[rank] = (r, m.payload)
        }
        return results.map { $0! }
    }

    private func shutdown() {
        for peer in peers { try? transport.send(to: peer, Message.frames(.shutdown, runId: runId)) }
    }
}

extension Config {
    /// The model's shape from the configuration alone (the coordinator needs no data): C_in from the
    /// sources, time channels, constants and lead times (DATA-FORMAT §5); the grid from `grid`.
    public func modelShape() throws -> ModelShape {
        let spec = try SampleSpec(self)
        let sfx = SyntheticDataset.suffix(grid: grid)
        let inputs = spec.inputs.reduce(0) { $0 + ($1 == "simsat\(sfx)/clbt" ? 3 : 1) }
        let cin = inputs + (spec.includeTime ? 3 : 0) + spec.constants.count + spec.leads.count
        return ModelShape(cin: cin, hidden: hidden1, head: hidden2, height: Int((180 / grid).rounded()),
                          width: Int((360 / grid).rounded()), relu: !noRelu)
    }
}
