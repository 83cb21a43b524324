import Foundation
import RainConfig
import RainProtocol
import RainTraining
import XCTest

/// Messages lost with a reset connection, on the manual clock: a step that never reaches its worker and an
/// answer that never reaches the coordinator are both recovered from what the heartbeats say, within
/// seconds and not at the step deadline, and no request is carried out twice.
final class LossRecoveryTests: XCTestCase {
    typealias ScriptedWorker = CoordinatorProtocolTests.ScriptedWorker

    func run(beats: Bool) throws -> (TrainingCoordinator, [ScriptedWorker], URL, Double, Result<Int, Error>) {
        let dir = temporaryDirectory(self)
        let hub = InMemoryHub()
        let options = try TrainingOptions.from(["--worker-timeout", "10", "--step-timeout", "600"])
        var lines: [String] = []
        let coordinator = TrainingCoordinator(
            config: CoordinatorProtocolTests.config(),
            run: try RunDirectory(path: dir.appendingPathComponent("run").path), transport: hub, options: options,
            expectedWorkers: 3, clock: hub.clock, log: { lines.append($0) })
        let w = (0..<3).map { ScriptedWorker(hub: hub, id: "w\($0)", trainSamples: 40, validSamples: 12) }
        w[1].loseStepAt = 3
        w[2].loseAnswerAt = 6
        for worker in w { worker.beats = beats }
        hub.whenIdle = {
            for worker in w {
                worker.act()
                worker.beat()
            }
        }
        for worker in w { worker.hello() }
        let result = Result { try coordinator.train(resume: false).globalStep }
        try lines.joined(separator: "\n").write(
            to: dir.appendingPathComponent("run/coordinator.log"), atomically: true, encoding: .utf8)
        return (coordinator, w, dir.appendingPathComponent("run"), hub.clock.now, result)
    }

    func testALostStepAndALostAnswerAreSentAgainFromHeartbeatState() throws {
        let (coordinator, w, run, seconds, result) = try run(beats: true)
        XCTAssertEqual(try result.get(), 10)
        XCTAssertEqual(coordinator.deaths.map(\.rank), [], "nobody declared dead")
        // The lost step was sent again and carried out once; the lost answer was asked for again and repeated
        // from what the worker kept (the copy counted, not carried out again).
        XCTAssertEqual(coordinator.resentRequests, 2)
        XCTAssertEqual(w[1].answered.filter { $0.phase == .train && $0.step == 3 }.count, 1)
        XCTAssertEqual(w[2].answered.filter { $0.phase == .train && $0.step == 6 }.count, 1)
        XCTAssertEqual(w[2].copies, 1)
        for worker in w {
            let steps = worker.answered.filter { $0.phase == .train }.map(\.round)
            XCTAssertEqual(steps.count, Set(steps).count, "a round carried out twice: \(steps)")
        }
        // Logged once each, with what was lost, and counted in metrics.jsonl.
        let log = try String(contentsOf: run.appendingPathComponent("coordinator.log"), encoding: .utf8)
        XCTAssertTrue(log.contains("worker 1 waits idle") && log.contains("the request was lost"), log)
        XCTAssertTrue(log.contains("worker 2 waits idle") && log.contains("its answer was lost"), log)
        XCTAssertEqual(log.components(separatedBy: "sent it again").count - 1, 2, log)
        let metrics = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
        XCTAssertEqual(metrics.components(separatedBy: "\"kind\":\"resent\"").count - 1, 2, metrics)
        // Within seconds of manual-clock time per loss, far from the 600 s step deadline.
        XCTAssertLessThan(seconds, 60)
    }

    /// The same losses without the heartbeats' state (what the previous protocol had): nothing but the
    /// deadlines can end the wait, so the run needs the step deadline's 600 s or loses a worker.
    func testWithoutHeartbeatStateTheSameLossesWaitForADeadline() throws {
        let (coordinator, _, _, seconds, _) = try run(beats: false)
        XCTAssertEqual(coordinator.resentRequests, 0)
        XCTAssertTrue(!coordinator.deaths.isEmpty || seconds > 600, "\(coordinator.deaths) after \(seconds) s")
    }
}
