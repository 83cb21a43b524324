import Foundation
import RainConfig
import RainProtocol
import RainTraining
import XCTest

/// A rank is bound to the key its hello came under (the ZAP User-Id of a CURVE connection, played here
/// by the in-memory client's key): messages on its connection under another key are refused, a
/// heartbeat naming it must come under its key, and a new hello under its key replaces it.
final class KeyBindingTests: XCTestCase {
    typealias ScriptedWorker = CoordinatorProtocolTests.ScriptedWorker

    func testARankIsBoundToItsKey() throws {
        let dir = temporaryDirectory(self)
        let hub = InMemoryHub()
        let options = try TrainingOptions.from(["--worker-timeout", "10", "--step-timeout", "300"])
        let runId: UInt64 = 0xC0FFEE
        let coordinator = TrainingCoordinator(
            config: CoordinatorProtocolTests.config(),
            run: try RunDirectory(path: dir.appendingPathComponent("run").path), transport: hub, options: options,
            expectedWorkers: 2, clock: hub.clock, runId: runId, log: { _ in })
        let (train, valid) = (40, 12)
        // w0 and w1 hold keys K0 and K1; w2 is a second process given K1 (a restart by hand, or a mistake).
        let keys = ["K0", "K1", "K1"]
        let w = (0..<3).map {
            ScriptedWorker(hub: hub, id: "w\($0)", key: keys[$0], trainSamples: train, validSamples: valid)
        }
        let rogue = hub.client("rogue", key: "K9")
        w[0].forgeNextUnder = "K1"
        var replacedAt: Int?, forgedHeartbeat = false
        hub.whenIdle = {
            if !forgedHeartbeat && w[0].received.contains(where: { $0.step == 2 }) {
                forgedHeartbeat = true
                // Rank 0's token, but not under rank 0's key.
                try! rogue.send(
                    Message.frames(
                        .heartbeat, runId: runId,
                        body: Body.encode(Body.Heartbeat(rank: 0, token: w[0].welcome!.token))))
            }
            if replacedAt == nil && w[0].received.contains(where: { $0.step == 4 }) {
                replacedAt = 4
                w[2].hello()
            }
            for worker in w { worker.act() }
        }
        for worker in w[0..<2] { worker.hello() }
        let summary = try coordinator.train(resume: false)
        for worker in w { worker.act() }

        XCTAssertEqual(summary.globalStep, 10)
        // Refused: the forged result (rank 0's connection, K1), the heartbeat (rank 0's token, K9), and the
        // result rank 1 sent for step 4 after its key said hello again (its connection's key is unbound).
        XCTAssertEqual(coordinator.rejected[MessageHeader.Rejection.wrongKey.rawValue], 2)
        XCTAssertEqual(coordinator.rejected[MessageHeader.Rejection.forgedHeartbeat.rawValue], 1)
        // The hello under K1 replaced rank 1, which was told to leave; the newcomer trained in its place.
        XCTAssertEqual(coordinator.deaths.map(\.rank), [1])
        XCTAssertEqual(coordinator.deaths.first?.reason, "replaced")
        XCTAssertTrue(w[1].toldToShutDown)
        XCTAssertEqual(w[2].welcome?.rank, 2)
        XCTAssertTrue(w[2].answered.contains { $0.phase == .train && $0.step > 4 }, "the newcomer never trained")
        XCTAssertFalse(w[1].answered.contains { $0.step > 5 }, "the replaced worker kept training")
        // Every step's loss is the genuine workers' (Σ (sample + 1) over the batch), never the forged 1e6.
        let commits = w.reduce(Set<Int>()) { $0.union($1.commits) }
        let lines = try String(contentsOf: dir.appendingPathComponent("run/metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let steps = lines.filter { $0["kind"] as? String == "step" }
        XCTAssertEqual(steps.count, 10)
        for line in steps {
            let g = (line["global_step"] as! Int) - 1
            let samples = w.flatMap { worker in
                worker.answered.filter { $0.step == g && $0.phase == .train && commits.contains($0.round) }
                    .flatMap(\.samples)
            }
            XCTAssertEqual(samples.count, 8, "step \(g)")
            let loss = Double(samples.reduce(0) { $0 + $1 + 1 }) / Double(samples.count)
            XCTAssertEqual(line["loss"] as? Double ?? .nan, loss, accuracy: 1e-12, "step \(g)")
        }
    }
}

/// Every message is tagged with (run, membership version, step, round): an answer tagged with an older
/// membership version than its round's is refused as stale, whatever its body says.
final class MembershipTagTests: XCTestCase {
    typealias ScriptedWorker = CoordinatorProtocolTests.ScriptedWorker

    func testAnAnswerFromAnotherMembershipIsStale() throws {
        let dir = temporaryDirectory(self)
        let hub = InMemoryHub()
        let coordinator = TrainingCoordinator(
            config: CoordinatorProtocolTests.config(),
            run: try RunDirectory(path: dir.appendingPathComponent("run").path), transport: hub,
            options: try TrainingOptions.from([]), expectedWorkers: 2, clock: hub.clock, log: { _ in })
        let w = (0..<2).map { ScriptedWorker(hub: hub, id: "w\($0)", trainSamples: 40, validSamples: 12) }
        var tagged: Set<UInt32> = []
        hub.whenIdle = {
            if w[1].received.contains(where: { $0.step == 3 }) && !w[1].staleNext && tagged.isEmpty {
                w[1].staleNext = true
                tagged.insert(coordinator.membership)
            }
            for worker in w { worker.act() }
        }
        for worker in w { worker.hello() }
        let summary = try coordinator.train(resume: false)
        XCTAssertEqual(summary.globalStep, 10)
        XCTAssertEqual(coordinator.rejected[MessageHeader.Rejection.stale.rawValue], 1)
        // Two joins: the version moved from 0 to 2 and stayed there (nobody left).
        XCTAssertEqual(coordinator.membership, 2)
        XCTAssertEqual(tagged, [2])
        let lines = try String(contentsOf: dir.appendingPathComponent("run/metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        for line in lines where line["kind"] as? String == "step" {
            XCTAssertLessThan(line["loss"] as? Double ?? .infinity, 1e5, "a stale answer was counted")
        }
    }
}
