import Foundation
import RainConfig
import RainData
import RainModel
import RainProtocol
import RainSupport

/// The training loop: join, then epochs of rounds and a validation each, checkpoints by the workers.
extension TrainingCoordinator {
    /// Runs (or resumes) training to the configured number of epochs.
    public func train(resume: Bool) throws -> Summary {
        try writeProbe()
        lastCheckpointAt = clock.now
        defer { removeProbe() }
        // The kernel this process's OpenBLAS runs (local workers inherit its choice; each worker logs its own).
        let kernel = BLASKernel.note.isEmpty ? "OpenBLAS kernel \(BLAS.coreName)" : BLASKernel.note
        try ("# \(kernel)\n" + config.yaml()).write(toFile: run.configPath, atomically: true, encoding: .utf8)
        run.appendMetrics(["kind": "start", "blas_kernel": BLAS.coreName, "blas_kernel_note": kernel, "resume": resume])
        openEvents()
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

        // 2. The position, learning rate and scheduler: fresh, or from the run's last checkpoint (whose
        // parameters and moments the workers load themselves).
        state = TrainingState.start(layout: layout, config: config)
        if resume {
            state = try Checkpoint.read(path: run.lastCheckpoint, layout: layout).0
            origin = .checkpoint(run.lastCheckpoint)
            lastGoodCheckpoint = (run.lastCheckpoint, state.globalStep)
            for r in live { joined(r) }
            if state.configHash != config.hash {
                log(
                    """
                    warning: the configuration differs from the checkpoint's (hash \(state.configHash) → \
                    \(config.hash))
                    """
                )
            }
            log("resuming at epoch \(state.epoch), step \(state.step) (global step \(state.globalStep))")
        } else if let b = options.batchPerWorker {
            guard b >= 1 else {
                throw SwiftRainError(
                    "--batch-per-worker", "must be at least 1", found: "\(b)", hint: "pass a positive sample count")
            }
            state.globalBatch = b * expectedWorkers
            let scale = Double(b * expectedWorkers) / Double(config.batchSize)
            state.adam.lr = config.lr * scale
            let epochSteps = Sharding.stepsPerEpoch(count: trainCount, batch: b * expectedWorkers)
            state.warmup = LRWarmup(scale: scale, steps: options.warmupSteps ?? epochSteps)
            log(
                """
                global batch \(b) × \(expectedWorkers) = \(b * expectedWorkers): lr \(config.lr) × \
                \(String(format: "%.3g", scale)) = \(state.adam.lr), reached over \(state.warmup!.steps) step(s)
                """
            )
        }
        let batch = state.globalBatch ?? config.batchSize
        if resume, let b = options.batchPerWorker, b * expectedWorkers != batch {
            log(
                """
                warning: --batch-per-worker \(b) × \(expectedWorkers) asks for a global batch of \
                \(b * expectedWorkers); the checkpoint's run uses \(batch), and continues with it
                """
            )
        }
        let stepsPerEpoch =
            options.sharding == .locality
            ? Sharding.LocalityPlan(
                segments: trainLeadCounts, workers: expectedWorkers, batch: batch, seed: config.seed,
                epoch: 0
            ).stepsPerEpoch
            : Sharding.stepsPerEpoch(count: trainCount, batch: batch)
        var stepsThisRun = 0, lastVal: Double? = nil
        let progress = Progress(
            plainEverySeconds: options.progressEvery,
            write: { try? FileHandle.standardError.write(contentsOf: Data($0.utf8)) })
        let plainLog = log
        log = {
            progress.clearLine()
            plainLog($0)
        }
        defer { log = plainLog }
        let totalSteps = config.epochs * stepsPerEpoch

        /// Below --min-workers: a checkpoint from the survivors if any still hold the state, then the error.
        func notEnough(_ e: NotEnoughWorkers, during what: String) -> SwiftRainError {
            let saved = (try? saveCheckpoint()) != nil
            shutdown()
            return SwiftRainError(
                "workers", "fewer than --min-workers \(options.minWorkers) live worker(s)\(what): \(e.reason)",
                found: saved
                    ? "checkpoint written at epoch \(state.epoch), step \(state.step)"
                    : "the last checkpoint (\(run.lastCheckpoint)) stands; later steps are lost",
                hint: "restart workers and resume with: swiftrain train --resume \(run.url.path)")
        }

        // 3. Epochs: seeded permutation → global batches → contiguous shards; the ring among the workers.
        while state.epoch < config.epochs {
            let perm = Sharding.permutation(count: trainCount, seed: config.seed, epoch: state.epoch)
            // Locality blocks are cut for the expected worker count, so they do not move when a worker dies or joins.
            let plan =
                options.sharding == .locality
                ? Sharding.LocalityPlan(
                    segments: trainLeadCounts, workers: expectedWorkers, batch: batch,
                    seed: config.seed, epoch: state.epoch) : nil
            while state.step < (plan?.stepsPerEpoch ?? stepsPerEpoch) {
                let t0 = clock.now, bytes0 = bytesIn + bytesOut
                do { try syncJoiners() } catch let e as NotEnoughWorkers { throw notEnough(e, during: "") }
                let n0 = holding.count
                var shards = Sharding.shards(
                    Sharding.batch(perm, step: state.step, size: batch), workers: n0)
                if let plan {
                    shards = plan.shards(step: state.step, batch: batch)
                    if shards.count != n0 { shards = Sharding.shards(shards.flatMap { $0 }, workers: n0) }
                }
                let batchCount = shards.reduce(0) { $0 + $1.count }
                let (loss, n): (Double, Int)
                // The scheduler's rate, ramped up during a warm-up (--batch-per-worker).
                let lr = state.warmup?.rate(state.adam.lr, step: state.globalStep) ?? state.adam.lr
                do { (loss, n) = try runStep(shards: shards, globalBatch: batchCount, lr: lr) } catch let e
                    as NotEnoughWorkers
                { throw notEnough(e, during: "") }
                state.adam.step += 1
                state.step += 1
                state.globalStep += 1
                stepsThisRun += 1
                let seconds = clock.now - t0
                run.appendMetrics([
                    "kind": "step", "epoch": state.epoch, "step": state.step, "global_step": state.globalStep,
                    "loss": loss / Double(n), "lr": lr, "samples": n, "seconds": seconds,
                    "compute_seconds": lastComputeSeconds, "wait_seconds": max(0, seconds - lastComputeSeconds),
                    "coordinator_bytes": bytesIn + bytesOut - bytes0, "ring_bytes": lastRingBytes,
                ])
                if options.logEvery > 0 && state.globalStep % options.logEvery == 0 {
                    logScalars(
                        [
                            ("train_loss", loss / Double(n)), ("lr-Adam", lr), ("epoch", Double(state.epoch)),
                            ("samples_per_s", Double(n) / seconds), ("comm_s", max(0, seconds - lastComputeSeconds)),
                            ("live_workers", Double(live.count)),
                        ], step: state.globalStep)
                }
                let remaining =
                    options.maxSteps > 0
                    ? min(options.maxSteps - stepsThisRun, totalSteps - state.globalStep)
                    : totalSteps - state.globalStep
                progress.step(
                    epoch: state.epoch, epochs: config.epochs, step: state.step,
                    stepsPerEpoch: plan?.stepsPerEpoch ?? stepsPerEpoch,
                    loss: loss / Double(n), samples: n, remainingSteps: remaining)
                let due =
                    options.checkpointMinutes > 0 && clock.now - lastCheckpointAt >= options.checkpointMinutes * 60
                if due || (options.checkpointEvery > 0 && state.globalStep % options.checkpointEvery == 0) {
                    do { try checkpointOrRetryLater() } catch let e as NotEnoughWorkers {
                        throw notEnough(e, during: "")
                    }
                }
                if stopRequested() || (options.maxSteps > 0 && stepsThisRun >= options.maxSteps) {
                    do { try finalCheckpoint() } catch let e as NotEnoughWorkers { throw notEnough(e, during: "") }
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
                try syncJoiners()
                r = try runValidation(
                    Sharding.shards(valid, workers: holding.count), epoch: state.epoch, step: state.globalStep)
            } catch let e as NotEnoughWorkers { throw notEnough(e, during: " during validation") }
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
            logScalars(
                [("val_loss", valLoss), ("hp_metric", state.bestValLoss ?? valLoss)]
                    + rmse.sorted { Int($0.key)! < Int($1.key)! }.map { ("val_rmse_\($0.key)h", $0.value) },
                step: state.globalStep)
            do { try checkpointOrRetryLater(best: isBest) } catch let e as NotEnoughWorkers {
                throw notEnough(e, during: "")
            }
            logMaps(checkpoint: run.lastCheckpoint, step: state.globalStep)
        }
        shutdown()
        run.markFinished(globalStep: state.globalStep, valLoss: lastVal)
        return Summary(globalStep: state.globalStep, stoppedEarly: false, lastValLoss: lastVal)
    }

    /// One training round among the live workers; returns Σ loss and the sample count. The round's
    /// update is committed by the next message the workers get.
    private func runStep(shards: [[Int]], globalBatch: Int, lr: Double) throws -> (Double, Int) {
        let results = try dispatchRing(
            shards: shards, globalBatch: globalBatch, epoch: state.epoch, step: state.globalStep,
            lr: lr, adamStep: state.adam.step + 1)
        lastComputeSeconds = results.map(\.computeSeconds).max() ?? 0
        lastRingBytes = results.map(\.ringBytes)
        if results.contains(where: \.nonFinite) {
            shutdown()
            throw SwiftRainError(
                "step \(state.globalStep)", "non-finite averaged gradient (NaN or Inf); no worker applied it",
                hint: "lower lr; the last checkpoint is intact")
        }
        committedRound = results.first?.round
        origin = .workers
        return (results.reduce(0) { $0 + $1.lossSum }, results.reduce(0) { $0 + $1.count })
    }

    private func runValidation(_ shards: [[Int]], epoch: Int, step: Int) throws -> Body.Result {
        let longest = shards.map(\.count).max() ?? 0
        let results = try dispatch(
            .valid, shards: shards, globalBatch: 0, epoch: epoch, step: step,
            timeoutMs: max(stepTimeoutMs, stepTimeoutMs / max(1, state.globalBatch ?? config.batchSize) * longest * 4))
        let sums = Set(results.compactMap(\.paramsChecksum))
        guard sums.count <= 1 else {
            shutdown()
            throw SwiftRainError(
                "workers", "the workers' parameters differ (\(sums.count) versions)",
                hint: "a worker computes differently (another SwiftRain build?); resume from the last checkpoint")
        }
        var total = Body.Result(step: step, count: 0, lossSum: 0, leadSquaredError: [], leadWeight: [])
        for r in results {
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

    func shutdown() {
        for r in live + joining.sorted() { try? send(to: peers[r], frames(.shutdown)) }
    }
}
