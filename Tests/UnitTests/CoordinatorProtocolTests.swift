import Foundation
import RainConfig
import RainModel
import RainProtocol
import RainSupport
import RainTraining
import XCTest

/// The coordinator's protocol logic over the in-memory twin of the transport, on a manual clock: no
/// processes, no sockets, no sleeps. The workers are played by the test (`ScriptedWorker`), so every
/// message the coordinator sees is one the test chose, and the oracle is what the workers computed.
final class CoordinatorProtocolTests: XCTestCase {
    /// A worker played by the test: it answers by the protocol's rules and records what it was sent.
    final class ScriptedWorker {
        let client: InMemoryHub.Client
        let trainSamples: Int, validSamples: Int
        private(set) var welcome: Body.Welcome?
        private(set) var runId: UInt64 = 0
        /// Every step message received: (phase, global step, shard, samples, checkpoint to load).
        private(set) var received:
            [(phase: MessageHeader.Phase, step: Int, shard: Int, samples: [Int], load: String?)] = []
        /// What it answered: (phase, global step, samples, round), in order.
        private(set) var answered: [(phase: MessageHeader.Phase, step: Int, samples: [Int], round: Int)] = []
        /// Rounds the coordinator declared complete (the `commit` of later messages).
        private(set) var commits: Set<Int> = []
        /// Checkpoint slices it wrote: (global step, part, parts).
        private(set) var saves: [(step: Int, part: Int, parts: Int)] = []
        /// Its "model state": zeros, written as real slices when the coordinator asks.
        private var state: (FlatBuffer, FlatBuffer, FlatBuffer)?
        private(set) var toldToShutDown = false
        /// From this global step on, the worker stops answering (a hung or SIGSTOPped process).
        var silentFrom: Int?
        /// When it becomes true the silent worker sends the result it held back (it "wakes up").
        var wakeWhen: () -> Bool = { false }
        private var heldBack: (Message, Body.Step)?

        /// Before its next train result, the same result with a wrong loss under this key (a peer holding
        /// another worker's key presenting this worker's routing id): the coordinator must refuse it.
        var forgeNextUnder: String?
        /// Every train result reports a failed ring with this error (a fault no retry mends).
        var ringError: String?
        /// Before its next train result, the same result with a wrong loss tagged with the previous
        /// membership version (an answer to an older round): the coordinator must refuse it.
        var staleNext = false

        /// Lossy links (`CoordinatorProtocolTests+Recovery`): the train step of this global step never
        /// arrives, or the answer to it is lost on the way back (once each).
        var loseStepAt: Int?, loseAnswerAt: Int?
        /// Send a heartbeat whenever it acts, saying where it is (highest request received, seconds idle).
        var beats = false
        /// Requests handled, by number, with the answer sent; copies of handled requests received.
        private var handled: [Int: Frames] = [:]
        private(set) var copies = 0
        private var idleSince = 0.0, lastBeat = -1.0
        let clock: ManualClock

        init(hub: InMemoryHub, id: String, key: String = "", trainSamples: Int, validSamples: Int) {
            clock = hub.clock
            client = hub.client(id, key: key)
            self.trainSamples = trainSamples
            self.validSamples = validSamples
        }

        func hello() {
            let body = Body.Hello(version: Int(MessageHeader.version), host: "scripted", pid: 1, rank: nil)
            try! client.send(Message.frames(.hello, runId: 0, body: Body.encode(body)))
        }

        /// Reads everything sent to it and answers.
        func act() {
            if let (m, step) = heldBack, wakeWhen() {
                heldBack = nil
                answer(m, step)
            }
            while let frames = try! client.receive(timeoutMs: 0) {
                let m = try! Message.decode(frames, runId: nil, maxPayloadBytes: 1 << 30)
                switch m.header.kind {
                case .welcome:
                    welcome = try! m.decodeBody(Body.Welcome.self)
                    runId = m.header.runId
                    let n = welcome!.parameterCount
                    state = (FlatBuffer(count: n), FlatBuffer(count: n), FlatBuffer(count: n))
                    let probe = try? String(
                        contentsOfFile: welcome!.checkpoints + "/" + TrainingWorker.probeName(runId), encoding: .utf8)
                    let ready = Body.Ready(
                        trainSamples: trainSamples, validSamples: validSamples, ringAddress: "inproc://\(n)",
                        sharesRunDirectory: probe == welcome!.probe)
                    try! client.send(Message.frames(.ready, runId: runId, body: Body.encode(ready)))
                case .step:
                    let step = try! m.decodeBody(Body.Step.self)
                    if let seq = step.seq, let kept = handled[seq] {
                        copies += 1
                        if !kept.isEmpty { try! client.send(kept) }
                        continue
                    }
                    if m.header.phase == .train && loseStepAt == step.step {
                        loseStepAt = nil
                        continue
                    }
                    if let seq = step.seq { handled[seq] = [] }
                    idleSince = clock.now
                    received.append((m.header.phase, step.step, step.shard, step.samples, step.load))
                    if let c = step.commit { commits.insert(c) }
                    if let s = silentFrom, step.step >= s {
                        if heldBack == nil { heldBack = (m, step) }
                    } else {
                        answer(m, step)
                    }
                case .save:
                    let save = try! m.decodeBody(Body.Save.self)
                    if let seq = save.seq, let kept = handled[seq] {
                        copies += 1
                        if !kept.isEmpty { try! client.send(kept) }
                        continue
                    }
                    idleSince = clock.now
                    if let c = save.commit { commits.insert(c) }
                    let (p, mo, v) = state!
                    let slice = try! Checkpoint.writeSlice(
                        checkpoints: welcome!.checkpoints, directory: save.directory, part: save.part, of: save.parts,
                        globalStep: save.globalStep, params: p, m: mo, v: v)
                    saves.append((save.globalStep, save.part, save.parts))
                    var saved = Body.Saved(
                        part: save.part, file: slice.file, lower: slice.lower, upper: slice.upper,
                        checksum: slice.checksum, paramsChecksum: 7)
                    saved.seq = save.seq
                    let frames = Message.frames(
                        .saved, runId: runId, step: m.header.step, membership: m.header.membership,
                        body: Body.encode(saved))
                    if let seq = save.seq { handled[seq] = frames }
                    try! client.send(frames)
                case .shutdown:
                    toldToShutDown = true
                case .heartbeat:
                    break  // the coordinator's answer to one
                default:
                    XCTFail("unexpected \(m.header.kind) to a worker")
                }
            }
        }

        /// A result whose loss is Σ (sample + 1): the coordinator's sums are then checkable by hand.
        /// (No gradient travels: the workers sum them among themselves.)
        private func answer(_ m: Message, _ step: Body.Step) {
            let leads = 5
            var result = Body.Result(
                step: step.step, shard: step.shard, count: step.samples.count,
                lossSum: Double(step.samples.reduce(0) { $0 + $1 + 1 }),
                leadSquaredError: [Double](repeating: 1, count: leads),
                leadWeight: [Double](repeating: 4, count: leads))
            result.computeSeconds = 0.5
            result.round = step.round
            result.seq = step.seq
            if let ringError, m.header.phase == .train {
                result.ringFailed = true
                result.ringError = ringError
            }
            func send(_ r: Body.Result, membership: UInt32) {
                try! client.send(
                    Message.frames(
                        .result, phase: m.header.phase, runId: runId, step: m.header.step, membership: membership,
                        round: m.header.round, body: Body.encode(r)))
            }
            var forged = result
            forged.lossSum = 1e6
            if let key = forgeNextUnder, m.header.phase == .train {
                forgeNextUnder = nil
                let own = client.key
                client.key = key
                send(forged, membership: m.header.membership)
                client.key = own
            }
            if staleNext && m.header.phase == .train {
                staleNext = false
                send(forged, membership: m.header.membership &- 1)
            }
            if let seq = step.seq {
                handled[seq] = Message.frames(
                    .result, phase: m.header.phase, runId: runId, step: m.header.step,
                    membership: m.header.membership, round: m.header.round, body: Body.encode(result))
            }
            if m.header.phase == .train && loseAnswerAt == step.step {
                loseAnswerAt = nil
            } else {
                send(result, membership: m.header.membership)
            }
            answered.append((m.header.phase, step.step, step.samples, step.round))
        }

        /// A heartbeat saying where it is, as `TrainingWorker`'s heartbeat thread does.
        func beat() {
            // Once a second of the hub's clock, as the real thread does (a beat on every turn would keep the
            // coordinator's queue from ever running dry, and the manual clock from moving).
            guard beats, let welcome, clock.now - lastBeat >= 1 else { return }
            lastBeat = clock.now
            var hb = Body.Heartbeat(rank: welcome.rank, token: welcome.token)
            hb.got = handled.keys.max() ?? 0
            hb.idle = clock.now - idleSince
            try! client.send(Message.frames(.heartbeat, runId: runId, body: Body.encode(hb)))
        }
    }

    func config() -> Config { Self.config() }

    static func config() -> Config {
        var c = Config()
        c.hidden1 = 4
        c.hidden2 = 2
        c.batchSize = 8
        c.epochs = 2
        c.lr = 1e-3
        return c
    }

    /// Joins, a worker that falls silent mid-round (declared dead on the manual clock, the round
    /// restarted among the survivors), a worker joining mid-run (it loads a checkpoint the others write
    /// first), foreign and garbage messages, and the dead worker waking up: training still finishes,
    /// and every committed round's results cover its batch.
    func testJoinsDeathResplitLateJoinAndForeignMessages() throws {
        let dir = temporaryDirectory(self)
        let hub = InMemoryHub()
        let options = try TrainingOptions.from([
            "--worker-timeout", "10", "--step-timeout", "300", "--join-timeout", "60",
        ])
        let runId: UInt64 = 0x5EED
        let coordinator = TrainingCoordinator(
            config: config(), run: try RunDirectory(path: dir.appendingPathComponent("run").path), transport: hub,
            options: options, expectedWorkers: 3, clock: hub.clock, runId: runId, log: { _ in })
        let (train, valid) = (40, 12)
        let workers = (0..<4).map { ScriptedWorker(hub: hub, id: "w\($0)", trainSamples: train, validSamples: valid) }
        let intruder = hub.client("intruder")
        let w = workers
        w[2].silentFrom = 3
        w[2].wakeWhen = { w[0].received.contains { $0.step == 6 } }
        var lateJoinSent = false, intruded = false, silentSince: Double?
        hub.whenIdle = {
            // The fourth worker says hello once the first has been sent step 1.
            if !lateJoinSent && w[0].received.contains(where: { $0.step == 1 }) {
                lateJoinSent = true
                w[3].hello()
            }
            if !intruded && w[0].received.contains(where: { $0.step == 5 }) {
                intruded = true
                try! intruder.send([Array("not a message".utf8)])
                let forged = Message.frames(
                    .result, phase: .train, runId: runId &+ 1, step: 5,
                    body: Body.encode(Body.Result(step: 5, count: 1, lossSum: 0)))
                try! intruder.send(forged)
                try! w[0].client.send(forged)  // a known peer with another run's id
                // A worker of the run keeping another rank "alive" with its own token.
                try! w[0].client.send(
                    Message.frames(
                        .heartbeat, runId: runId,
                        body: Body.encode(Body.Heartbeat(rank: 2, token: w[0].welcome!.token))))
            }
            if silentSince == nil && w[2].received.contains(where: { $0.step == 3 }) { silentSince = hub.clock.now }
            for worker in w { worker.act() }
        }
        for worker in w[0..<3] { worker.hello() }

        let summary = try coordinator.train(resume: false)
        for worker in w { worker.act() }  // read the goodbyes

        // Joins: ranks in hello order; the welcome carries ConvLSTMForecaster's parameter count for
        // C_in = 3 clbt levels + 5 constants + 5 lead one-hots (DATA-FORMAT §5: simsat without time is 13),
        // F = 4, F2 = 2 on 32 × 64, counted by hand.
        let (cin, f, f2, plane) = (13, 4, 2, 32 * 64)
        let expectedCount = 3 * f * plane + 4 * f * (cin + f) * 9 + 4 * f + f2 * f + f2 + f2 + 1
        XCTAssertEqual(w.map { $0.welcome?.rank }, [0, 1, 2, 3])
        XCTAssertEqual(Set(w.map { $0.welcome?.parameterCount }), [expectedCount])
        XCTAssertEqual(Set(w.map(\.runId)), [runId])

        // Training ran to the end: 2 epochs × 5 steps, finished.json written, every worker left alive told to stop.
        XCTAssertEqual(summary.globalStep, 10)
        XCTAssertFalse(summary.stoppedEarly)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("run/finished.json").path))
        XCTAssertEqual(w.map(\.toldToShutDown), [true, true, true, true])

        // The silent worker: declared dead after --worker-timeout of manual-clock time, no earlier.
        XCTAssertEqual(coordinator.deaths.map(\.rank), [2])
        XCTAssertTrue(coordinator.deaths.first?.reason.contains("silent") ?? false, "\(coordinator.deaths)")
        XCTAssertGreaterThan(hub.clock.now - (silentSince ?? .infinity), 10)
        // Step 3 was redone among the survivors: the committed round's samples are the whole batch,
        // with the dead worker's samples computed once, by someone else.
        let held = try XCTUnwrap(w[2].received.first { $0.step == 3 && $0.phase == .train })
        XCTAssertFalse(held.samples.isEmpty)
        let commits = w.reduce(Set<Int>()) { $0.union($1.commits) }
        /// The samples answered for `step` in rounds the coordinator committed.
        func answered(_ step: Int) -> [Int] {
            w.flatMap { worker in
                worker.answered.filter { $0.step == step && $0.phase == .train && commits.contains($0.round) }
                    .flatMap(\.samples)
            }
        }
        XCTAssertEqual(commits.count, 10, "one committed round per step: \(commits.sorted())")
        XCTAssertTrue(Set(held.samples).isSubset(of: Set(answered(3))))
        // It woke up at step 6 and sent its stale result: refused, and told to leave.
        XCTAssertTrue(w[2].answered.contains { $0.step == 3 }, "the silent worker never woke up")
        XCTAssertEqual(coordinator.rejected[MessageHeader.Rejection.unexpected.rawValue], 1)

        // The late joiner took part in later steps, after loading the checkpoint the others wrote for it.
        XCTAssertTrue(w[3].answered.contains { $0.phase == .train }, "the late joiner never got a shard")
        let firstStep = try XCTUnwrap(w[3].received.first)
        XCTAssertEqual(firstStep.load, dir.appendingPathComponent("run/checkpoints/last.ckpt").path)
        XCTAssertTrue(
            w[0].saves.contains { $0.step == firstStep.step }, "no checkpoint just before the joiner's first step")
        // Epoch ends: every live holder wrote one slice of each checkpoint.
        XCTAssertEqual(w[0].saves.filter { $0.step == 10 }.map(\.parts), [3])

        // Foreign and garbage messages were refused and counted, and changed nothing.
        XCTAssertEqual(coordinator.rejected[MessageHeader.Rejection.malformed.rawValue], 1)
        XCTAssertEqual(coordinator.rejected[MessageHeader.Rejection.foreignRun.rawValue], 2)
        XCTAssertEqual(coordinator.rejected[MessageHeader.Rejection.forgedHeartbeat.rawValue], 1)
        XCTAssertEqual(Set(w.map { $0.welcome!.token }).count, 4, "every rank its own token")

        // Every step's results (stale ones aside) cover a full batch exactly once: the metrics' sample
        // count and mean loss equal what the workers computed.
        let lines = try String(contentsOf: dir.appendingPathComponent("run/metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let steps = lines.filter { $0["kind"] as? String == "step" }
        XCTAssertEqual(steps.count, 10)
        var epochSamples: [Int: Set<Int>] = [:]
        for line in steps {
            let g = (line["global_step"] as! Int) - 1
            let samples = answered(g)
            XCTAssertEqual(samples.count, 8, "step \(g): \(samples)")
            XCTAssertEqual(Set(samples).count, samples.count, "step \(g): a sample computed twice")
            XCTAssertEqual(line["samples"] as? Int, samples.count)
            let loss = Double(samples.reduce(0) { $0 + $1 + 1 }) / Double(samples.count)
            XCTAssertEqual(line["loss"] as? Double ?? .nan, loss, accuracy: 1e-12, "step \(g)")
            epochSamples[g / 5, default: []].formUnion(samples)
        }
        // Each epoch visits every train sample once.
        XCTAssertEqual(epochSamples, [0: Set(0..<train), 1: Set(0..<train)])
        // Validation covered the validation set once per epoch, over the live workers.
        for (epoch, line) in lines.filter({ $0["kind"] as? String == "valid" }).enumerated() {
            XCTAssertEqual(line["samples"] as? Int, valid, "epoch \(epoch)")
        }
    }

    /// A ring that fails at once on every try among the same members (a deterministic fault) is retried a
    /// few times, then the run stops with the workers' own error rather than spinning forever.
    func testARingThatAlwaysFailsStopsTheRunWithTheWorkersError() throws {
        let hub = InMemoryHub()
        let coordinator = TrainingCoordinator(
            config: config(), run: try RunDirectory(path: temporaryDirectory(self).appendingPathComponent("run").path),
            transport: hub, options: try TrainingOptions.from([]), expectedWorkers: 2, clock: hub.clock, log: { _ in })
        let w = (0..<2).map { ScriptedWorker(hub: hub, id: "w\($0)", trainSamples: 40, validSamples: 12) }
        w[1].ringError = "ring: no public key for the ring member at tcp://h:1"
        hub.whenIdle = { for worker in w { worker.act() } }
        for worker in w { worker.hello() }
        let e = errorText { _ = try coordinator.train(resume: false) }
        XCTAssertTrue(e.contains("the ring failed 5 times in a row among the same workers"), e)
        XCTAssertTrue(e.contains("worker 1: ring: no public key for the ring member at tcp://h:1"), e)
        XCTAssertTrue(e.contains("swiftrain train --resume"), e)
        XCTAssertEqual(w[0].answered.count, 5, "one try and four retries")
        XCTAssertTrue(coordinator.deaths.isEmpty)
    }

    /// No worker ever comes: the join deadline passes on the manual clock and the error says what to do.
    func testJoinTimeoutOnTheManualClock() throws {
        let hub = InMemoryHub()
        let options = try TrainingOptions.from(["--join-timeout", "30"])
        let coordinator = TrainingCoordinator(
            config: config(), run: try RunDirectory(path: temporaryDirectory(self).appendingPathComponent("run").path),
            transport: hub, options: options, expectedWorkers: 2, clock: hub.clock, log: { _ in })
        let e = errorText { _ = try coordinator.train(resume: false) }
        XCTAssertTrue(e.contains("only 0 of 2 worker(s) ready within 30 s") && e.contains("start the workers"), e)
        XCTAssertGreaterThanOrEqual(hub.clock.now, 30)
        XCTAssertLessThan(hub.clock.now, 31)
    }
}

/// Hellos that never become workers: at most max(8, 2N) are welcomed and wait at once; the rest are
/// refused (no welcome, no configuration) and counted.
final class PendingJoinTests: XCTestCase {
    func testHellosAloneAreCapped() throws {
        let hub = InMemoryHub()
        let options = try TrainingOptions.from(["--join-timeout", "30"])
        let coordinator = TrainingCoordinator(
            config: Config(),
            run: try RunDirectory(path: temporaryDirectory(self).appendingPathComponent("run").path), transport: hub,
            options: options, expectedWorkers: 1, clock: hub.clock, log: { _ in })
        let hello = Message.frames(
            .hello, runId: 0,
            body: Body.encode(Body.Hello(version: Int(MessageHeader.version), host: "x", pid: 1, rank: nil)))
        let strangers = (0..<12).map { hub.client("s\($0)") }
        for s in strangers { try s.send(hello) }
        var welcomed = 0
        hub.whenIdle = {
            for s in strangers { while (try? s.receive(timeoutMs: 0)).flatMap({ $0 }) != nil { welcomed += 1 } }
        }
        let e = errorText { _ = try coordinator.train(resume: false) }
        XCTAssertTrue(e.contains("only 0 of 1 worker(s) ready"), e)
        XCTAssertEqual(welcomed, 8)
        XCTAssertEqual(coordinator.rejected[MessageHeader.Rejection.tooManyJoins.rawValue], 4)
    }
}
