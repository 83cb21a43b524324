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
            Message.frames(.result, phase: .train, runId: 42, step: 7, body: Array("{}".utf8), payload: $0)
        }
        let m = try Message.decode(frames, runId: 42, maxPayloadBytes: 1024)
        XCTAssertEqual(m.payload, payload)
        XCTAssertEqual(m.header.step, 7)
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
        XCTAssertEqual(rejection([[UInt8](repeating: 7, count: 40), []]), .badMagic)
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
