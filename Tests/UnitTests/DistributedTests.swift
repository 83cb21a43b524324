import Foundation
import RainModel
import RainProtocol
import RainTraining
import RainZMQ
import XCTest

/// The pure protocol pieces: sharding, message validation, checkpoints. (The coordinator over the
/// in-memory transport is in CoordinatorProtocolTests.)
final class DistributedTests: XCTestCase {
    func testShardingIsDeterministicContiguousAndIndependentOfWorkers() {
        let p = Sharding.permutation(count: 100, seed: 2020, epoch: 3)
        XCTAssertEqual(p, Sharding.permutation(count: 100, seed: 2020, epoch: 3))
        XCTAssertNotEqual(p, Sharding.permutation(count: 100, seed: 2020, epoch: 4))
        XCTAssertEqual(p.sorted(), Array(0..<100))
        XCTAssertEqual(Sharding.stepsPerEpoch(count: 100, batch: 32), 4)
        XCTAssertEqual(Sharding.batch(p, step: 3, size: 32).count, 4)  // the last, smaller batch is kept
        let batch = Sharding.batch(p, step: 1, size: 32)
        for n in 1...5 {
            let s = Sharding.shards(batch, workers: n)
            XCTAssertEqual(s.flatMap { $0 }, Array(batch), "shards are contiguous and cover the batch in order")
            XCTAssertLessThanOrEqual(s.map(\.count).max()! - s.map(\.count).min()!, 1)
        }
    }

    func testMessagesAreValidatedBeforeUse() throws {
        let payload: [Float] = [1, 2, 3]
        let frames = payload.withUnsafeBufferPointer {
            Message.frames(
                .result, phase: .train, runId: 42, step: 7, membership: 5, round: 3_000_000_001, body: Array("{}".utf8),
                payload: $0)
        }
        let m = try Message.decode(frames, runId: 42, maxPayloadBytes: 1024)
        XCTAssertEqual(m.payload, payload)
        XCTAssertEqual(m.header.step, 7)
        XCTAssertEqual(m.header.membership, 5)
        XCTAssertEqual(m.header.round, 3_000_000_001)
        XCTAssertEqual(m.header.kind, .result)
        func rejection(_ f: Frames, runId: UInt64? = 42, max: Int = 1024) -> MessageHeader.Rejection? {
            do {
                _ = try Message.decode(f, runId: runId, maxPayloadBytes: max)
                return nil
            } catch {
                return error as? MessageHeader.Rejection
            }
        }
        XCTAssertEqual(rejection([Array("garbage".utf8)]), .malformed)
        XCTAssertEqual(rejection([[UInt8](repeating: 7, count: MessageHeader.size), []]), .badMagic)
        XCTAssertEqual(rejection([[UInt8](repeating: 7, count: 40), []]), .malformed, "a version 2 header's size")
        XCTAssertEqual(rejection(frames, runId: 43), .foreignRun)
        XCTAssertEqual(rejection(frames, max: 8), .badSize)
        var flipped = frames
        flipped[2][5] ^= 1
        XCTAssertEqual(rejection(flipped), .badChecksum)
        var truncated = frames
        truncated[2].removeLast(4)
        XCTAssertEqual(rejection(truncated), .badSize)
        var version = frames
        version[0][4] = 9
        XCTAssertEqual(rejection(version), .badVersion)
    }

    func testCheckpointRoundTripAndDamageDetection() throws {
        let dir = temporaryDirectory(self)
        let layout = ParameterLayout(ModelShape(cin: 2, hidden: 3, head: 2, height: 4, width: 5, relu: true))
        let p = FlatBuffer.initialParameters(layout, seed: 9), m = FlatBuffer(count: layout.count),
            v = FlatBuffer(count: layout.count)
        m.pointer[3] = 0.5
        v.pointer[4] = 0.25
        // A scheduler and an optimiser in the middle of their lives: best loss, bad epochs, cooldown,
        // a reduced rate, Adam's step count; all must come back exactly.
        var sched = PlateauScheduler(factor: 0.5, patience: 1, threshold: 1e-4, cooldown: 1)
        var lr = 1e-3
        for loss in [1.5, 1.2, 1.3, 1.3] { lr = sched.step(loss, lr: lr) }
        XCTAssertEqual(sched.best, 1.2)
        XCTAssertEqual(lr, 5e-4)
        XCTAssertEqual(sched.cooldownCounter, 1)
        var adam = Adam(lr: lr, beta1: 0.8, beta2: 0.99, eps: 1e-7)
        let g = FlatBuffer(count: layout.count)
        g.pointer[0] = 0.25
        for _ in 0..<3 {
            adam.update(
                params: FlatBuffer(count: layout.count), grads: g, m: FlatBuffer(count: layout.count),
                v: FlatBuffer(count: layout.count))
        }
        XCTAssertEqual(adam.step, 3)
        let state = TrainingState(
            layout: layout.entries, configHash: "abc", epoch: 2, step: 5, globalStep: 17, adam: adam,
            scheduler: sched, bestValLoss: 1.2)
        let path = dir.appendingPathComponent("checkpoints/last.ckpt").path
        try Checkpoint.write(path: path, state: state, params: p, m: m, v: v)
        let (s2, p2, m2, v2) = try Checkpoint.read(path: path, layout: layout)
        var restored = s2
        restored.payloadChecksum = state.payloadChecksum  // filled in by write
        XCTAssertEqual(restored, state)
        XCTAssertEqual(s2.scheduler, sched)
        XCTAssertEqual(s2.adam.step, 3)
        XCTAssertEqual(s2.adam.lr, 5e-4)
        // The restored scheduler carries on exactly as the original would.
        var (a, b) = (sched, s2.scheduler)
        for loss in [1.3, 1.3, 1.1, 1.2, 1.2] { XCTAssertEqual(a.step(loss, lr: 5e-4), b.step(loss, lr: 5e-4)) }
        XCTAssertEqual(p2.values, p.values)
        XCTAssertEqual(m2.values, m.values)
        XCTAssertEqual(v2.values, v.values)
        // A flipped byte in the payload, and a checkpoint of another model, are refused with a reason.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 3] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: path))
        XCTAssertTrue(errorText { _ = try Checkpoint.read(path: path, layout: layout) }.contains("checksum mismatch"))
        try Checkpoint.write(path: path, state: state, params: p, m: m, v: v)
        let other = ParameterLayout(ModelShape(cin: 2, hidden: 4, head: 2, height: 4, width: 5, relu: true))
        let e = errorText { _ = try Checkpoint.read(path: path, layout: other) }
        XCTAssertTrue(e.contains("Wci: shape mismatch") && e.contains("[1, 4, 4, 5]") && e.contains("[1, 3, 4, 5]"), e)
    }
}

/// The per-step bodies leave out defaults and use short keys; every field still comes back.
final class CompactBodyTests: XCTestCase {
    func testStepsAndResultsRoundTripAndStaySmall() throws {
        var full = Body.Step(
            epoch: 3, step: 1234, samples: [5, 70, 900], globalBatch: 32, shard: 2, ring: ["ipc:///a", "ipc:///b"],
            position: 1, round: 1250)
        full.hosts = [0, 1]
        full.ringKeys = ["rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"]
        full.lr = 2.5e-4
        full.adamStep = 1235
        full.commit = 1249
        full.load = "/runs/x/checkpoints/last.ckpt"
        let bare = Body.Step(epoch: 0, step: 0, samples: [], globalBatch: 0)
        for s in [full, bare] {
            let back = try JSONDecoder().decode(Body.Step.self, from: Data(Body.encode(s)))
            XCTAssertEqual(back.epoch, s.epoch)
            XCTAssertEqual(back.step, s.step)
            XCTAssertEqual(back.samples, s.samples)
            XCTAssertEqual(back.globalBatch, s.globalBatch)
            XCTAssertEqual(back.shard, s.shard)
            XCTAssertEqual(back.ring, s.ring)
            XCTAssertEqual(back.hosts, s.hosts)
            XCTAssertEqual(back.ringKeys, s.ringKeys)
            XCTAssertEqual(back.position, s.position)
            XCTAssertEqual(back.round, s.round)
            XCTAssertEqual(back.lr, s.lr)
            XCTAssertEqual(back.adamStep, s.adamStep)
            XCTAssertEqual(back.commit, s.commit)
            XCTAssertEqual(back.load, s.load)
        }
        var r = Body.Result(
            step: 1234, shard: 2, count: 1, lossSum: 0.123456789, leadSquaredError: [1, 2], leadWeight: [3, 4])
        r.ringFailed = true
        r.ringError = "ring: no chunk from the left neighbour within 600 s"
        r.round = 1250
        r.computeSeconds = 1.23456789
        r.nonFinite = true
        r.paramsChecksum = 77
        r.ringBytes = 31_589_232
        let back = try JSONDecoder().decode(Body.Result.self, from: Data(Body.encode(r)))
        XCTAssertEqual(
            [back.step, back.shard, back.count, back.round, back.ringBytes], [1234, 2, 1, 1250, 31_589_232])
        XCTAssertEqual(back.lossSum, r.lossSum)
        XCTAssertEqual(back.computeSeconds, 1.234568, "kept to the microsecond")
        XCTAssertTrue(back.ringFailed && back.nonFinite)
        XCTAssertEqual(back.ringError, r.ringError)
        XCTAssertEqual(back.paramsChecksum, 77)
        XCTAssertEqual(back.leadSquaredError, [1, 2])
        XCTAssertEqual(back.leadWeight, [3, 4])
        // A typical step (one sample, mid-run) and its answer: what the coordinator moves per worker.
        var typical = Body.Step(
            epoch: 4, step: 52_311, samples: [48_112], globalBatch: 256, shard: 117, position: 117, round: 52_420)
        typical.lr = 0.0005
        typical.adamStep = 52_312
        typical.commit = 52_419
        var answer = Body.Result(step: 52_311, shard: 117, count: 1, lossSum: 0.1534219861030579)
        answer.round = 52_420
        answer.computeSeconds = 1.9934567
        answer.ringBytes = 63_178_417
        let bytes = Body.encode(typical).count + Body.encode(answer).count
        XCTAssertLessThan(
            bytes, 200,
            String(decoding: Body.encode(typical) + [32] + Body.encode(answer), as: UTF8.self)
        )
    }
}

/// The coordinator's socket limits, on a real TCP connection: a frame over `Message.maxControlBytes`
/// never reaches the coordinator (libzmq drops the connection, the peer reconnects), the next one does.
final class ServerLimitTests: XCTestCase {
    func testAFrameOverTheLimitNeverArrives() throws {
        let ctx = try ZMQContext()
        let server = try ZMQServer(context: ctx, bind: "tcp://127.0.0.1:*")
        let peer = try ZMQSocket(ctx, .dealer)
        try peer.connect(server.endpoint)
        try peer.send([[UInt8](repeating: 1, count: Message.maxControlBytes + 1)])
        try peer.send([[UInt8](repeating: 2, count: Message.maxControlBytes)])
        var got: [[[UInt8]]] = []
        let deadline = Date().addingTimeInterval(10)
        while got.isEmpty && Date() < deadline {
            if let m = try server.receive(timeoutMs: 200) { got.append(m.frames) }
        }
        while let m = try server.receive(timeoutMs: 300) { got.append(m.frames) }
        XCTAssertEqual(got.map { $0.map(\.count) }, [[Message.maxControlBytes]], "only the frame within the limit")
        XCTAssertEqual(got.first?.first?.first, 2)
        peer.close()
    }
}
